"""The Mask R-CNN network as one functional Keras model: build_network and its small graph layers.

build_network(mode, config) reads the config once and hands every stage (backbone, RPN,
proposals, detection targets, heads, detections) plain values, so the stage modules never see
a Config. Training mode outputs what the losses need (mrcnn.training); inference mode outputs
Matterport's seven tensors (detections first). Layer names are Matterport's, so their weight
files load by name.
"""
import re
import types

import keras
import numpy as np
import tensorflow as tf

from mrcnn import utils
from mrcnn.backbone import build_backbone
from mrcnn.data import get_anchors
from mrcnn.detection import DetectionLayer
from mrcnn.heads import build_fpn_mask_graph, fpn_classifier_graph
from mrcnn.meta import norm_boxes_graph
from mrcnn.proposals import ProposalLayer
from mrcnn.rpn import apply_rpn, build_rpn_model
from mrcnn.targets import DetectionTargetLayer


# -- small graph layers ---------------------------------------------------------------------

class ConstantAnchors(keras.layers.Layer):
    """The (normalised) anchors of a fixed image shape, repeated for every image of the batch."""

    def __init__(self, anchors, **kwargs):
        super().__init__(**kwargs)
        self.anchors = np.asarray(anchors, dtype=np.float32)

    def call(self, image):
        batch = tf.shape(image)[0]
        anchors = tf.constant(self.anchors)
        return tf.broadcast_to(anchors[None], tf.stack([batch, anchors.shape[0], 4]))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.anchors.shape[0], 4)


class NormaliseBoxes(keras.layers.Layer):
    """Pixel gt boxes -> normalised boxes, for the image size of the batch; zero padding stays zero.

    Normalising alone would move an all-zero padding row to (0, 0, -1/(H-1), -1/(W-1)): not zero,
    so it would join the proposals (AppendBoxes) as a degenerate negative ROI, one per padding
    row, instead of being dropped by the detection-target layer.
    """

    def call(self, inputs):
        boxes, image = inputs
        normalised = norm_boxes_graph(boxes, tf.shape(image)[1:3])
        padding = tf.reduce_all(tf.equal(boxes, 0), axis=-1, keepdims=True)
        return tf.where(padding, tf.zeros_like(normalised), normalised)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]


class AppendBoxes(keras.layers.Layer):
    """Proposals plus the ground-truth boxes (B, N + G, 4): every object has a perfect ROI.

    Detectron-style Faster/Mask R-CNN training adds the gt boxes to the proposals, so the
    heads see positive ROIs from the first step, when the RPN's proposals are still random.
    Zero rows (padding) are dropped later by the detection-target layer.
    """

    def call(self, inputs):
        proposals, gt_boxes = inputs
        return tf.concat([proposals, tf.cast(gt_boxes, proposals.dtype)], axis=1)

    def compute_output_shape(self, input_shapes):
        first, second = input_shapes
        count = None if first[1] is None or second[1] is None else first[1] + second[1]
        return (first[0], count, 4)


def positive_rows(class_ids, values):
    """values[b, t] where class_ids[b, t] > 0, image by image, packed as (1, P, ...); see PositiveRows."""
    positions = tf.where(tf.cast(class_ids, tf.int32) > 0)               # (P, 2) [image, row]
    rows = tf.gather_nd(values, positions)
    missing = tf.maximum(1 - tf.shape(rows)[0], 0)
    padding = tf.concat([[[0, missing]], tf.zeros([tf.rank(rows) - 1, 2], tf.int32)], axis=0)
    return tf.pad(rows, padding)[None]


class PositiveRows(keras.layers.Layer):
    """The rows of the positive ROIs of the whole batch, packed along one axis: (1, P, ...).

    call([target_class_ids (B, T), values (B, T, ...)]) keeps values[b, t] where
    target_class_ids[b, t] > 0, image by image (the order the mask loss sums in). A batch
    without any positive gets one zero row (class 0, so no loss), so the mask head never sees
    an empty batch (batch norm statistics of no rows would be NaN).
    """

    def call(self, inputs):
        return positive_rows(*inputs)

    def compute_output_spec(self, inputs):
        values = inputs[1]
        return keras.KerasTensor((1, None) + tuple(values.shape[2:]), dtype=values.dtype)


class PositiveImageIds(keras.layers.Layer):
    """For PositiveRows' packed rows, the image (batch index) each comes from: (1, P) int32."""

    def call(self, class_ids):
        batch_rows = tf.shape(class_ids)
        return positive_rows(class_ids, tf.broadcast_to(tf.range(batch_rows[0])[:, None], batch_rows))

    def compute_output_spec(self, class_ids):
        return keras.KerasTensor((1, None), dtype="int32")


class DetectionBoxes(keras.layers.Layer):
    """The box columns [y1, x1, y2, x2] of the detection rows."""

    def call(self, detections):
        return detections[..., :4]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (4,)


# -- the network ----------------------------------------------------------------------------

def build_network(mode, config):
    """The functional Keras model of Mask R-CNN for `mode` ('training' or 'inference').

    With config.MIXED_PRECISION the layers are made under Keras' "mixed_float16" dtype policy
    (float16 arithmetic, float32 variables), and the global policy is put back afterwards, so
    models built later (a float32 one, the user's own) are not changed behind their back. The
    global policy rather than a dtype argument for every layer: it reaches every layer, a
    callable BACKBONE's too; the few that must stay float32 (box geometry, proposals, targets,
    detections, probabilities) say so themselves.
    """
    previous = keras.config.dtype_policy()
    if config.MIXED_PRECISION:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        return _build_network(mode, config)
    finally:
        keras.config.set_dtype_policy(previous)


def network_settings(mode, config):
    """What every stage of the network needs from `config`, read once, as plain values (a namespace).

    Checks the mode, and that training has a fixed image shape (IMAGE_RESIZE_MODE "square" or
    "crop"); with one, `height` and `width` are its sides, else None (any size at inference).
    """
    if mode not in ("training", "inference"):
        raise ValueError(f"mode must be 'training' or 'inference', not {mode!r}")
    fixed = config.IMAGE_RESIZE_MODE in ("square", "crop")
    if mode == "training" and not fixed:
        raise ValueError(f"Training needs a fixed image shape: IMAGE_RESIZE_MODE 'square' or 'crop', "
                         f"not {config.IMAGE_RESIZE_MODE!r}")
    height, width = (int(config.IMAGE_SHAPE[0]), int(config.IMAGE_SHAPE[1])) if fixed else (None, None)
    training = mode == "training"
    return types.SimpleNamespace(
        training=training, height=height, width=width, channels=int(config.IMAGE_CHANNEL_COUNT),
        meta_size=int(config.IMAGE_META_SIZE), backbone=config.BACKBONE, pyramid_size=config.TOP_DOWN_PYRAMID_SIZE,
        train_bn=config.TRAIN_BN, conv_init=config.CONV_INIT, roi_align=config.ROI_ALIGN,
        anchor_stride=config.RPN_ANCHOR_STRIDE, anchors_per_location=len(config.RPN_ANCHOR_RATIOS),
        anchors=(utils.norm_boxes(get_anchors(config, config.IMAGE_SHAPE), config.IMAGE_SHAPE[:2])
                 if training else None),
        proposal_count=config.POST_NMS_ROIS_TRAINING if training else config.POST_NMS_ROIS_INFERENCE,
        rpn_nms_threshold=config.RPN_NMS_THRESHOLD, pre_nms_limit=config.PRE_NMS_LIMIT,
        rpn_bbox_std_dev=config.RPN_BBOX_STD_DEV, bbox_std_dev=config.BBOX_STD_DEV,
        mini_mask_shape=tuple(config.MINI_MASK_SHAPE), use_mini_mask=config.USE_MINI_MASK,
        train_rois_per_image=config.TRAIN_ROIS_PER_IMAGE, roi_positive_ratio=config.ROI_POSITIVE_RATIO,
        mask_shape=config.MASK_SHAPE, mask_target_sampling=config.MASK_TARGET_SAMPLING,
        image_shape=config.IMAGE_SHAPE, pool_size=config.POOL_SIZE, mask_pool_size=config.MASK_POOL_SIZE,
        num_classes=config.NUM_CLASSES, fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE,
        detection_max_instances=config.DETECTION_MAX_INSTANCES,
        detection_min_confidence=config.DETECTION_MIN_CONFIDENCE,
        detection_nms_threshold=config.DETECTION_NMS_THRESHOLD, batch_norm_momentum=config.BATCH_NORM_MOMENTUM)


def _build_network(mode, config):
    """build_network's graph, made under whatever dtype policy is global."""
    s = network_settings(mode, config)
    height, width = s.height, s.width
    input_image = keras.Input(shape=(height, width, s.channels), name="input_image")
    input_image_meta = keras.Input(shape=(s.meta_size,), name="input_image_meta")

    p2, p3, p4, p5, p6 = build_backbone(input_image, s.backbone, s.pyramid_size, s.train_bn, s.conv_init)
    rpn_feature_maps = [p2, p3, p4, p5, p6]
    mrcnn_feature_maps = [p2, p3, p4, p5]

    rpn = build_rpn_model(s.anchor_stride, s.anchors_per_location, s.pyramid_size)
    rpn_class_logits, rpn_class, rpn_bbox = apply_rpn(rpn, rpn_feature_maps)

    # Layers that carry boxes or targets from one float32 layer to the next are float32 too:
    # under mixed precision Keras would otherwise round their inputs to float16.
    if s.training:
        anchors = ConstantAnchors(s.anchors, name="anchors", dtype="float32")(input_image)
        input_gt_class_ids = keras.Input(shape=(None,), dtype="int32", name="input_gt_class_ids")
        input_gt_boxes = keras.Input(shape=(None, 4), name="input_gt_boxes")
        mask_hw = s.mini_mask_shape if s.use_mini_mask else (height, width)
        input_gt_masks = keras.Input(shape=mask_hw + (None,), dtype="bool", name="input_gt_masks")
        gt_boxes = NormaliseBoxes(name="gt_boxes_normalised", dtype="float32")([input_gt_boxes, input_image])

        rpn_rois = ProposalLayer(s.proposal_count, s.rpn_nms_threshold, s.pre_nms_limit, s.rpn_bbox_std_dev,
                                 name="ROI")([rpn_class, rpn_bbox, anchors])
        candidate_rois = AppendBoxes(name="proposals_and_gt", dtype="float32")([rpn_rois, gt_boxes])
        rois, target_class_ids, target_bbox, target_mask = DetectionTargetLayer(
            s.train_rois_per_image, s.roi_positive_ratio, s.bbox_std_dev, s.mask_shape, s.use_mini_mask,
            s.mask_target_sampling, s.image_shape, name="proposal_targets")(
                [candidate_rois, input_gt_class_ids, gt_boxes, input_gt_masks])
        mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
            rois, mrcnn_feature_maps, input_image_meta, s.pool_size, s.num_classes,
            train_bn=s.train_bn, fc_layers_size=s.fc_layers_size, roi_align=s.roi_align)
        # Only positive ROIs have mask targets: the (costly) mask head runs on those rows alone,
        # packed over the batch, which gives the same loss as running it on every row.
        mask_rois = PositiveRows(name="positive_rois", dtype="float32")([target_class_ids, rois])
        mask_image_ids = PositiveImageIds(name="positive_image_ids")(target_class_ids)
        mrcnn_mask_logits = build_fpn_mask_graph(
            mask_rois, mrcnn_feature_maps, input_image_meta, s.mask_pool_size, s.num_classes,
            train_bn=s.train_bn, roi_image_ids=mask_image_ids, logits=True,
            conv_init=s.conv_init, roi_align=s.roi_align)
        mask_class_ids = PositiveRows(name="positive_class_ids")([target_class_ids, target_class_ids])
        target_mask = PositiveRows(name="positive_target_mask", dtype="float32")([target_class_ids, target_mask])
        # The RPN's targets (input_rpn_match, input_rpn_bbox) feed only the losses, which the
        # trainer computes from the batch: they are not inputs of the network (Keras 3.13 refuses
        # a model input that no layer reads).
        inputs = {
            "input_image": input_image, "input_image_meta": input_image_meta,
            "input_gt_class_ids": input_gt_class_ids, "input_gt_boxes": input_gt_boxes,
            "input_gt_masks": input_gt_masks,
        }
        outputs = {
            "rpn_class_logits": rpn_class_logits, "rpn_class": rpn_class, "rpn_bbox": rpn_bbox,
            "mrcnn_class_logits": mrcnn_class_logits, "mrcnn_class": mrcnn_class, "mrcnn_bbox": mrcnn_bbox,
            "mrcnn_mask_logits": mrcnn_mask_logits, "rpn_rois": rpn_rois, "rois": rois,
            "target_class_ids": target_class_ids, "target_bbox": target_bbox, "target_mask": target_mask,
            "mask_class_ids": mask_class_ids,
        }
        model = keras.Model(inputs, outputs, name="mask_rcnn")
        set_batch_norm_momentum(model, s.batch_norm_momentum)
        return model

    input_anchors = keras.Input(shape=(None, 4), name="input_anchors")
    rpn_rois = ProposalLayer(s.proposal_count, s.rpn_nms_threshold, s.pre_nms_limit, s.rpn_bbox_std_dev,
                             name="ROI")([rpn_class, rpn_bbox, input_anchors])
    mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
        rpn_rois, mrcnn_feature_maps, input_image_meta, s.pool_size, s.num_classes,
        train_bn=s.train_bn, fc_layers_size=s.fc_layers_size, roi_align=s.roi_align)
    detections = DetectionLayer(s.detection_max_instances, s.detection_min_confidence, s.detection_nms_threshold,
                                s.bbox_std_dev, name="mrcnn_detection")([rpn_rois, mrcnn_class, mrcnn_bbox,
                                                                         input_image_meta])
    detection_boxes = DetectionBoxes(name="detection_boxes", dtype="float32")(detections)
    mrcnn_mask = build_fpn_mask_graph(detection_boxes, mrcnn_feature_maps, input_image_meta,
                                      s.mask_pool_size, s.num_classes, train_bn=s.train_bn,
                                      conv_init=s.conv_init, roi_align=s.roi_align)
    model = keras.Model([input_image, input_image_meta, input_anchors],
                        [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox],
                        name="mask_rcnn")
    set_batch_norm_momentum(model, s.batch_norm_momentum)
    return model


def network_inputs(network, batch):
    """The entries of a training batch (dict) that `network` takes as inputs; the rest feed the losses."""
    return {name: batch[name] for name in network.input}


def batch_norm_layers(model):
    """Every BatchNormalization layer of `model`: nested models and per-ROI wrappers included."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from batch_norm_layers(layer)
            continue
        inner = getattr(layer, "layer", None)      # TimeDistributed and other wrappers
        for candidate in (layer, inner):
            if isinstance(candidate, keras.layers.BatchNormalization):
                yield candidate


def set_batch_norm_momentum(model, momentum):
    """Give every BatchNormalization layer the moving-average momentum."""
    for layer in batch_norm_layers(model):
        layer.momentum = float(momentum)


def ancestor(tensor, name, checked=None):
    """The nearest upstream tensor of `tensor` made by a layer whose name fully matches `name`.

    tensor: a symbolic output of keras_model (e.g. keras_model.get_layer("ROI").output);
    name: a layer name, a regular expression over layer names, or a compiled pattern.
    Returns that layer's output tensor (for run_graph), or None when no such layer feeds
    `tensor`. checked: tensors already searched (Matterport's argument; extended in place).

    Matterport searched TensorFlow 1 operation names, e.g. "ROI/pre_nms_anchors:0" inside the
    ROI layer. Keras 3 keeps only whole layers in a model's graph, so such a name raises a
    ValueError that says what to ask for instead.
    """
    if isinstance(name, str):
        if "/" in name or ":" in name:
            layer = name.split("/")[0].split(":")[0]
            raise ValueError(
                f"ancestor: {name!r} names a TensorFlow operation inside the layer {layer!r}; Keras 3 "
                f"models expose whole layers only. Ask for the layer ({layer!r}, i.e. keras_model."
                f"get_layer({layer!r}).output); the proposal layer's steps can be redone in numpy from "
                "rpn_class and rpn_bbox (utils.apply_box_deltas on the anchors, utils.non_max_suppression).")
        name = re.compile(name)
    checked = checked if checked is not None else []
    seen = {id(t) for t in checked}
    frontier = [tensor]
    while frontier:
        parents = []
        for current in frontier:
            history = getattr(current, "_keras_history", None)
            if history is None:
                continue
            operation, node_index, _ = history
            for parent in operation._inbound_nodes[node_index].input_tensors:
                if id(parent) in seen:
                    continue
                seen.add(id(parent))
                checked.append(parent)
                if name.fullmatch(parent._keras_history[0].name):
                    return parent
                parents.append(parent)
        frontier = parents
    return None
