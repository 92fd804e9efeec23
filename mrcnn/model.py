"""MaskRCNN: builds the network in training or inference mode, trains it, detects with it.

Matterport's public API on Keras 3:

    model = MaskRCNN(mode="training", config=config, model_dir="runs")
    model.load_weights(path, by_name=True, exclude=[...])
    model.train(train_set, val_set, learning_rate=config.LEARNING_RATE, epochs=10, layers="heads")
    model = MaskRCNN(mode="inference", config=config, model_dir="runs")
    model.load_weights(model.find_last(), by_name=True)
    results = model.detect([image])   # one dict per image: rois, class_ids, scores, masks

`keras_model` is the plain functional Keras model (Matterport's layer names, so its weight files
load by name). Training wraps it in a small keras.Model whose train_step computes Matterport's
five losses (rpn_class_loss, rpn_bbox_loss, mrcnn_class_loss, mrcnn_bbox_loss, mrcnn_mask_loss)
from the network's outputs and the batch; Keras prints them and their val_ twins.
"""
import collections
import datetime
import logging
import os
import re
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mrcnn import losses, utils, weights
from mrcnn.backbone import build_backbone, get_imagenet_weights as _imagenet_weights_path
from mrcnn.callbacks import TimeBudget, TrainingProgress
from mrcnn.data import get_anchors, make_inference_inputs, make_training_dataset
from mrcnn.detection import DetectionLayer
from mrcnn.heads import build_fpn_mask_graph, fpn_classifier_graph
from mrcnn.meta import norm_boxes_graph, parse_image_meta_graph
from mrcnn.proposals import ProposalLayer
from mrcnn.rpn import apply_rpn, build_rpn_model
from mrcnn.targets import DetectionTargetLayer

# Matterport's other module-level names, for their tutorials and users' scripts (`modellib.X`):
# the same functions as our modules', or thin ones in mrcnn.compat (see there).
from mrcnn.backbone import BatchNorm  # noqa: E402,F401
from mrcnn.box_graph import apply_box_deltas_graph, clip_boxes_graph, overlaps_graph, trim_zeros_graph  # noqa: F401
from mrcnn.compat import (batch_pack_graph, build_detection_targets, conv_block, data_generator,  # noqa: F401
                          detection_targets_graph, generate_random_rois, identity_block, load_image_gt, log,
                          log2_graph, refine_detections_graph, resnet_graph, smooth_l1_loss)
from mrcnn.data import build_rpn_targets  # noqa: F401
from mrcnn.losses import (mrcnn_bbox_loss_graph, mrcnn_class_loss_graph, mrcnn_mask_loss_graph,  # noqa: F401
                          rpn_bbox_loss_graph, rpn_class_loss_graph)
from mrcnn.meta import (compose_image_meta, compute_backbone_shapes, denorm_boxes_graph, mold_image,  # noqa: F401
                        parse_image_meta, unmold_image)
from mrcnn.roi_align import PyramidROIAlign  # noqa: F401
from mrcnn.rpn import rpn_graph  # noqa: F401

logger = logging.getLogger(__name__)

LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")

# `layers=` shortcuts of train(): which layers (by name) are trained.
LAYER_REGEX = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}

CHECKPOINT_PATTERN = re.compile(r"mask_rcnn_(?P<name>[\w-]+)_(?P<epoch>\d{4})\.h5$")
RUN_DIR_PATTERN = re.compile(r"(?P<name>[\w-]+?)(?P<stamp>\d{8}T\d{4})$")


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


def _build_network(mode, config):
    """build_network's graph, made under whatever dtype policy is global."""
    if mode not in ("training", "inference"):
        raise ValueError(f"mode must be 'training' or 'inference', not {mode!r}")
    fixed = config.IMAGE_RESIZE_MODE in ("square", "crop")
    if mode == "training" and not fixed:
        raise ValueError(f"Training needs a fixed image shape: IMAGE_RESIZE_MODE 'square' or 'crop', "
                         f"not {config.IMAGE_RESIZE_MODE!r}")
    height, width = (int(config.IMAGE_SHAPE[0]), int(config.IMAGE_SHAPE[1])) if fixed else (None, None)
    channels = int(config.IMAGE_CHANNEL_COUNT)
    input_image = keras.Input(shape=(height, width, channels), name="input_image")
    input_image_meta = keras.Input(shape=(int(config.IMAGE_META_SIZE),), name="input_image_meta")

    p2, p3, p4, p5, p6 = build_backbone(input_image, config)
    rpn_feature_maps = [p2, p3, p4, p5, p6]
    mrcnn_feature_maps = [p2, p3, p4, p5]

    rpn = build_rpn_model(config.RPN_ANCHOR_STRIDE, len(config.RPN_ANCHOR_RATIOS),
                          config.TOP_DOWN_PYRAMID_SIZE)
    rpn_class_logits, rpn_class, rpn_bbox = apply_rpn(rpn, rpn_feature_maps)

    # Layers that carry boxes or targets from one float32 layer to the next are float32 too:
    # under mixed precision Keras would otherwise round their inputs to float16.
    if mode == "training":
        anchors = utils.norm_boxes(get_anchors(config, config.IMAGE_SHAPE), config.IMAGE_SHAPE[:2])
        anchors = ConstantAnchors(anchors, name="anchors", dtype="float32")(input_image)
        input_gt_class_ids = keras.Input(shape=(None,), dtype="int32", name="input_gt_class_ids")
        input_gt_boxes = keras.Input(shape=(None, 4), name="input_gt_boxes")
        mask_hw = tuple(config.MINI_MASK_SHAPE) if config.USE_MINI_MASK else (height, width)
        input_gt_masks = keras.Input(shape=mask_hw + (None,), dtype="bool", name="input_gt_masks")
        gt_boxes = NormaliseBoxes(name="gt_boxes_normalised", dtype="float32")([input_gt_boxes, input_image])

        rpn_rois = ProposalLayer(config.POST_NMS_ROIS_TRAINING, config.RPN_NMS_THRESHOLD, config,
                                 name="ROI")([rpn_class, rpn_bbox, anchors])
        candidate_rois = AppendBoxes(name="proposals_and_gt", dtype="float32")([rpn_rois, gt_boxes])
        rois, target_class_ids, target_bbox, target_mask = DetectionTargetLayer(
            config, name="proposal_targets")([candidate_rois, input_gt_class_ids, gt_boxes, input_gt_masks])
        mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
            rois, mrcnn_feature_maps, input_image_meta, config.POOL_SIZE, config.NUM_CLASSES,
            train_bn=config.TRAIN_BN, fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE,
            roi_align=config.ROI_ALIGN)
        # Only positive ROIs have mask targets: the (costly) mask head runs on those rows alone,
        # packed over the batch, which gives the same loss as running it on every row.
        mask_rois = PositiveRows(name="positive_rois", dtype="float32")([target_class_ids, rois])
        mask_image_ids = PositiveImageIds(name="positive_image_ids")(target_class_ids)
        mrcnn_mask_logits = build_fpn_mask_graph(
            mask_rois, mrcnn_feature_maps, input_image_meta, config.MASK_POOL_SIZE, config.NUM_CLASSES,
            train_bn=config.TRAIN_BN, roi_image_ids=mask_image_ids, logits=True,
            conv_init=config.CONV_INIT, roi_align=config.ROI_ALIGN)
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
        set_batch_norm_momentum(model, config.BATCH_NORM_MOMENTUM)
        return model

    input_anchors = keras.Input(shape=(None, 4), name="input_anchors")
    rpn_rois = ProposalLayer(config.POST_NMS_ROIS_INFERENCE, config.RPN_NMS_THRESHOLD, config,
                             name="ROI")([rpn_class, rpn_bbox, input_anchors])
    mrcnn_class_logits, mrcnn_class, mrcnn_bbox = fpn_classifier_graph(
        rpn_rois, mrcnn_feature_maps, input_image_meta, config.POOL_SIZE, config.NUM_CLASSES,
        train_bn=config.TRAIN_BN, fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE,
        roi_align=config.ROI_ALIGN)
    detections = DetectionLayer(config, name="mrcnn_detection")([rpn_rois, mrcnn_class, mrcnn_bbox,
                                                                 input_image_meta])
    detection_boxes = DetectionBoxes(name="detection_boxes", dtype="float32")(detections)
    mrcnn_mask = build_fpn_mask_graph(detection_boxes, mrcnn_feature_maps, input_image_meta,
                                      config.MASK_POOL_SIZE, config.NUM_CLASSES, train_bn=config.TRAIN_BN,
                                      conv_init=config.CONV_INIT, roi_align=config.ROI_ALIGN)
    model = keras.Model([input_image, input_image_meta, input_anchors],
                        [detections, mrcnn_class, mrcnn_bbox, mrcnn_mask, rpn_rois, rpn_class, rpn_bbox],
                        name="mask_rcnn")
    set_batch_norm_momentum(model, config.BATCH_NORM_MOMENTUM)
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


# -- training -------------------------------------------------------------------------------

def compute_losses(config, batch, outputs):
    """Matterport's five losses (dict of scalars) for one batch and the network's outputs."""
    active_class_ids = parse_image_meta_graph(batch["input_image_meta"])["active_class_ids"]
    return {
        "rpn_class_loss": losses.rpn_class_loss_graph(batch["input_rpn_match"], outputs["rpn_class_logits"]),
        "rpn_bbox_loss": rpn_bbox_loss(config, batch, outputs),
        "mrcnn_class_loss": losses.mrcnn_class_loss_graph(outputs["target_class_ids"],
                                                          outputs["mrcnn_class_logits"], active_class_ids,
                                                          rois=outputs["rois"]),
        "mrcnn_bbox_loss": mrcnn_bbox_loss(config, outputs),
        "mrcnn_mask_loss": losses.mrcnn_mask_loss_graph(outputs["target_mask"], outputs["mask_class_ids"],
                                                        outputs["mrcnn_mask_logits"], from_logits=True),
    }


def rpn_bbox_loss(config, batch, outputs):
    """The RPN's box loss in the form config.RPN_BBOX_LOSS names (see Config)."""
    return losses.rpn_bbox_loss_graph(config, batch["input_rpn_bbox"], batch["input_rpn_match"], outputs["rpn_bbox"],
                                      form=config.RPN_BBOX_LOSS)


def mrcnn_bbox_loss(config, outputs):
    """The box head's loss in the form config.MRCNN_BBOX_LOSS names (see Config)."""
    if config.MRCNN_BBOX_LOSS == "per_positive":
        return losses.mrcnn_bbox_loss_graph(outputs["target_bbox"], outputs["target_class_ids"], outputs["mrcnn_bbox"])
    return losses.mrcnn_bbox_loss_graph(outputs["target_bbox"], outputs["target_class_ids"], outputs["mrcnn_bbox"],
                                        rois=outputs["rois"], beta=1.0 / 9.0)


class MaskRCNNTrainer(keras.Model):
    """Wraps the training network; its train/test steps weigh and sum the five losses.

    With config.MIXED_PRECISION, compile() wraps the optimizer in Keras' LossScaleOptimizer
    (dynamic loss scaling): small gradients underflow to zero in float16 (below about 6e-8), so
    train_step multiplies the loss by the optimizer's scale before differentiating; the
    optimizer divides the gradients back, skips a step whose gradients are not all finite
    (halving the scale) and doubles the scale after a run of good steps. The wrapped optimizer
    clips (clipnorm) the gradients after they are divided back, so the norm is the true one.

    Under a strategy with several replicas (GPU_COUNT > 1) each replica gets IMAGES_PER_GPU images
    of the global batch; its losses are its shares of the global batch's losses (mrcnn.losses),
    the metrics report their sum, and the gradients are summed before they are clipped
    (_clipped_over_replicas): one step is the step one device would take on the whole batch.
    Keras' fit() under a strategy builds from a first batch: see _maybe_symbolic_build.
    """

    def __init__(self, network, config, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.config = config
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss",) + LOSS_NAMES}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' fit/evaluate under a strategy build the model from a first batch that Keras
        averages over the replicas (strategy.reduce "MEAN"), which MultiWorkerMirroredStrategy
        cannot do for a dict of tensors ("Attempt to convert a value ({'input_image': PerReplica
        ..."). Only the batch's shapes and dtypes matter: this hands Keras the first local
        replica's part instead. (A private Keras method, 3.13-3.15: were it renamed, this would
        simply not be called, and one machine's MirroredStrategy would still work.)
        """
        if iterator is not None and self._distribute_strategy is not None:
            for _, _, batches in iterator:
                data_batch = next(batches)
                break
            data_batch = tf.nest.map_structure(
                lambda value: (self.distribute_strategy.experimental_local_results(value)[0]
                               if isinstance(value, tf.distribute.DistributedValues) else value), data_batch)
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile(self, optimizer="rmsprop", **kwargs):
        """keras.Model.compile; under MIXED_PRECISION with the optimizer in a LossScaleOptimizer."""
        optimizer = keras.optimizers.get(optimizer)
        if self.config.MIXED_PRECISION and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        super().compile(optimizer=optimizer, **kwargs)
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) and not self.optimizer.built:
            # Built now, so that scale_loss() reads the scale variable from the first traced step
            # on (unbuilt, it returns the initial scale as a constant).
            self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=False):
        return self.network(network_inputs(self.network, inputs), training=training)

    def _weighted_losses(self, batch, training):
        outputs = self.network(network_inputs(self.network, batch), training=training)
        parts = compute_losses(self.config, batch, outputs)
        total = tf.add_n([float(self.config.LOSS_WEIGHTS.get(name, 1.0)) * value
                          for name, value in parts.items()])
        return total, parts

    def _report(self, total, parts):
        values = {"loss": total, **parts}
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Each replica holds its share of every loss (mrcnn.losses._ratio); the loss of the
            # global batch is their sum, and every replica reports that.
            values = dict(zip(values, context.all_reduce(tf.distribute.ReduceOp.SUM, list(values.values()))))
        for name, value in values.items():
            self.trackers[name].update_state(value)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if getattr(self.distribute_strategy.extended, "_in_multi_worker_mode", lambda: False)():
            # On several machines Keras' fit averages each log with strategy.reduce("MEAN", log,
            # axis=0), which fails on a scalar (tensorflow/tensorflow#72388): give it that axis.
            logs = {name: value[None] for name, value in logs.items()}
        return logs

    def _clipped_over_replicas(self, gradients):
        """Under several replicas: the global batch's gradients, clipped here, divided by the replicas.

        Why: Keras' optimizer clips each replica's gradients (each tensor's norm, clipnorm) and
        only then sums them over the replicas, so with two replicas a tensor could move up to
        twice as far as GRADIENT_CLIP_NORM allows, and not as far as on one device. Here every
        replica first sums the replicas' gradients (those of the global batch: the losses are
        shares of its loss), clips that sum as the optimizer would, and hands the optimizer 1/R
        of it: the optimizer's own clipping then changes nothing and its sum gives the clipped
        sum back. Gradients are still in loss-scale units (MIXED_PRECISION): the limit is too.
        One replica, or no clipping: the gradients as they are.
        """
        context = tf.distribute.get_replica_context()
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        clipping = optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue
        if context is None or context.num_replicas_in_sync == 1 or not clipping:
            return gradients
        present = [i for i, g in enumerate(gradients) if g is not None]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [gradients[i] for i in present])
        scale = self.optimizer.scale_loss(tf.constant(1.0))      # 1 without loss scaling
        if optimizer.clipnorm:
            summed = [tf.clip_by_norm(g, optimizer.clipnorm * scale) for g in summed]
        elif optimizer.global_clipnorm:
            summed = tf.clip_by_global_norm(summed, optimizer.global_clipnorm * scale)[0]
        else:
            summed = [tf.clip_by_value(g, -optimizer.clipvalue * scale, optimizer.clipvalue * scale) for g in summed]
        gradients = list(gradients)
        for i, g in zip(present, summed):
            gradients[i] = g / context.num_replicas_in_sync
        return gradients

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, parts = self._weighted_losses(data, training=True)
            # The loss times the loss scale (a LossScaleOptimizer's; other optimizers return it
            # unchanged): apply_gradients divides the gradients back.
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = self._clipped_over_replicas(tape.gradient(scaled, variables))
        self.optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
        return self._report(total, parts)

    def test_step(self, data):
        total, parts = self._weighted_losses(data, training=False)
        return self._report(total, parts)


class WeightsCheckpoint(keras.callbacks.Callback):
    """Saves the network's weights (Keras 2 HDF5 layout) at the end of every epoch.

    keep: None keeps every checkpoint; N deletes this run's older checkpoints once the new one
    is safely written, so that the newest N remain (resuming needs only the newest).
    """

    def __init__(self, network, path_pattern, keep=None):
        super().__init__()
        self.network = network
        self.path_pattern = str(path_pattern)
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        saved = weights.save_weights(self.network, self.path_pattern.format(epoch=epoch + 1))
        if self.keep is not None:
            self._delete_older_than_newest(saved)

    def _delete_older_than_newest(self, saved):
        """Delete checkpoints of this run from before `saved`, all but the newest `keep` (with it)."""
        this = CHECKPOINT_PATTERN.search(saved.name)
        name, epoch = this.group("name"), int(this.group("epoch"))
        older = []
        for path in saved.parent.glob("mask_rcnn_*.h5"):
            match = CHECKPOINT_PATTERN.search(path.name)
            if match and match.group("name") == name and int(match.group("epoch")) < epoch:
                older.append((int(match.group("epoch")), path))
        for _, path in sorted(older)[:max(0, len(older) - (self.keep - 1))]:
            path.unlink(missing_ok=True)


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-measures the trained BatchNorm layers' statistics after the last training step of every
    epoch, before validation and the checkpoint (Config.PRECISE_BN_BATCHES, "precise BN"); also
    after the step at which training is told to stop (a time budget), since that partial
    epoch is validated and saved too.

    Why: from scratch the moving averages lag weights that still move fast, so an epoch's
    checkpoint can detect far worse than its weights can; measured on `batches` training batches
    (MaskRCNN.calibrate_batch_norm) they are the statistics of the weights being saved. A stop
    is seen only when set by a callback before this one (train() puts TimeBudget first).
    """

    def __init__(self, maskrcnn, dataset, batches, steps_per_epoch, seed=None):
        super().__init__()
        self.maskrcnn = maskrcnn
        self.dataset = dataset
        self.batches = int(batches)
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = seed
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        stopping = bool(getattr(self.model, "stop_training", False))
        if batch + 1 == self.steps_per_epoch or stopping:
            seed = None if self.seed is None else int(self.seed) + self.epoch + 1
            self.maskrcnn.calibrate_batch_norm(self.dataset, batches=self.batches, seed=seed, trainable_only=True)


def _tensorboard_callback(log_dir):
    """[TensorBoard callback] when the tensorboard package is installed, else [] with a warning."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        logger.warning("tensorboard is not installed: no TensorBoard logs (the CSV log is still written).")
        return []
    return [keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0)]


# -- the public class -----------------------------------------------------------------------

def distribution_strategy(config):
    """The tf.distribute strategy for config.GPU_COUNT: TensorFlow's default one for 1; for more,
    MirroredStrategy over the first GPU_COUNT GPUs, or, on a machine without GPUs, over the first
    GPU_COUNT logical CPU devices (tf.config.set_logical_device_configuration, set before TensorFlow
    starts: a rehearsal or test of multi-GPU training on a CPU).

    Why the devices are named: MirroredStrategy() alone takes every GPU (else every logical CPU
    device), whatever GPU_COUNT says, and splits the batch of IMAGES_PER_GPU * GPU_COUNT images
    over all of them. Fewer devices than GPU_COUNT: ValueError saying what there is.
    """
    count = int(config.GPU_COUNT)
    if count == 1:
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    if len(devices) < count:
        found = f"{len(gpus)} GPU(s)" if gpus else f"no GPU and {len(devices)} logical CPU device(s)"
        raise ValueError(f"GPU_COUNT is {count} but TensorFlow sees {found}: set GPU_COUNT to at most "
                         f"{len(devices)} (and IMAGES_PER_GPU so that BATCH_SIZE stays what you want)")
    return tf.distribute.MirroredStrategy(devices=[device.name for device in devices[:count]])


def _unmold_as_matterport(boxes, class_ids, scores, masks, original_image_shape, image_shape, window):
    """unmold_detections as Matterport's: boxes rounded to whole pixels of the original image (through
    normalised window coordinates), each mask resized to its rounded box (utils.resize_mask_to_box)."""
    window = utils.norm_boxes(np.asarray(window, dtype=np.float64), image_shape[:2]).astype(np.float64)
    window_size = np.tile(window[2:] - window[:2], 2)
    on_window = (np.asarray(boxes, dtype=np.float64) - np.tile(window[:2], 2)) / window_size
    boxes = utils.denorm_boxes(on_window, original_image_shape[:2])
    nonempty = np.where((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0)[0]
    boxes, class_ids, scores, masks = boxes[nonempty], class_ids[nonempty], scores[nonempty], masks[nonempty]
    height, width = original_image_shape[:2]
    full = [utils.resize_mask_to_box(m, b, original_image_shape) for m, b in zip(masks, boxes)]
    full_masks = np.stack(full, axis=-1) if full else np.zeros((height, width, 0), dtype=bool)
    return boxes, class_ids, scores, full_masks


class MaskRCNN:
    """Mask R-CNN with Matterport's interface; see the module docstring."""

    def __init__(self, mode, config, model_dir, strategy=None):
        """strategy: a tf.distribute strategy to build and train under (e.g. MultiWorkerMirroredStrategy
        for several machines, docs/multi_gpu.md); its replicas must number config.GPU_COUNT.
        None: distribution_strategy(config), i.e. MirroredStrategy over GPU_COUNT devices when > 1.
        """
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', not {mode!r}")
        self.mode = mode
        self.config = config
        self.model_dir = str(model_dir)
        self.epoch = 0
        self.set_log_dir()
        self.strategy = distribution_strategy(config) if strategy is None else strategy
        if self.strategy.num_replicas_in_sync != int(config.GPU_COUNT):
            raise ValueError(f"MaskRCNN: the strategy has {self.strategy.num_replicas_in_sync} replicas but GPU_COUNT "
                             f"is {config.GPU_COUNT}; set GPU_COUNT to the replicas (BATCH_SIZE = IMAGES_PER_GPU * "
                             "GPU_COUNT is the global batch they share)")
        with self.strategy.scope():
            self.keras_model = build_network(mode, config)
        self._anchor_cache = {}
        self._graph_probes = {}              # run_graph's models, by their outputs

    # -- runs and checkpoints ---------------------------------------------------------------
    def set_log_dir(self, model_path=None):
        """Choose the run folder; a checkpoint path from an earlier run continues that run.

        New run: model_dir/<name><YYYYmmddTHHMM>/; checkpoints mask_rcnn_<name>_<epoch>.h5 inside.
        """
        name = self.config.NAME.lower()
        now = datetime.datetime.now()
        if model_path:
            model_path = Path(model_path)
            match = CHECKPOINT_PATTERN.search(model_path.name)
            if match and RUN_DIR_PATTERN.search(model_path.parent.name):
                self.epoch = int(match.group("epoch"))
                self.log_dir = str(model_path.parent)
                self.checkpoint_path = os.path.join(self.log_dir, f"mask_rcnn_{name}_{{epoch:04d}}.h5")
                return
        self.log_dir = os.path.join(self.model_dir, f"{name}{now:%Y%m%dT%H%M}")
        self.checkpoint_path = os.path.join(self.log_dir, f"mask_rcnn_{name}_{{epoch:04d}}.h5")

    def find_last(self):
        """Path of the newest checkpoint of the newest run of this config's NAME in model_dir.

        Raises FileNotFoundError saying where it looked when there is none.
        """
        name = self.config.NAME.lower()
        root = Path(self.model_dir)
        runs = sorted(p for p in root.glob(f"{name}*") if p.is_dir() and RUN_DIR_PATTERN.fullmatch(p.name)
                      and RUN_DIR_PATTERN.fullmatch(p.name).group("name") == name) if root.is_dir() else []
        for run in reversed(runs):
            checkpoints = sorted(p for p in run.glob(f"mask_rcnn_{name}_*.h5") if CHECKPOINT_PATTERN.search(p.name))
            if checkpoints:
                return str(checkpoints[-1])
        raise FileNotFoundError(f"Could not find a checkpoint of '{name}' under {root}: train first, "
                                "or pass the path of a weight file.")

    def load_weights(self, filepath, by_name=False, exclude=None):
        """Load an HDF5 weight file (ours or Matterport's); returns the load report.

        A checkpoint of one of our runs also sets the epoch counter and run folder, so that
        train() continues that run (epochs counting on).
        """
        report = weights.load_weights(self.keras_model, filepath, by_name=by_name, exclude=exclude)
        self.set_log_dir(filepath)
        return report

    def calibrate_batch_norm(self, dataset, batches=20, seed=0, trainable_only=False):
        """Set every BatchNorm layer's inference statistics to their mean over `batches` batches.

        Why: a network built from random weights has statistics 0 and 1 everywhere, far from
        what its layers see; with TRAIN_BN = False they would stay wrong, and with TRAIN_BN =
        True and two images a batch the network learns to lean on each batch's own statistics,
        which inference does not have. Measuring them once on the data (before training from
        scratch) gives a network whose training and inference agree. trainable_only: measure
        only the layers that training moves; frozen layers keep their statistics (and normalise
        with them while the others are measured). Returns the count of layers measured.
        """
        if self.mode != "training":
            raise RuntimeError("calibrate_batch_norm needs the model in mode='training'")
        layers = [layer for layer in batch_norm_layers(self.keras_model)
                  if layer.trainable or not trainable_only]
        saved = [(layer.momentum, getattr(layer, "train_bn", None), layer.trainable) for layer in layers]
        data = iter(make_training_dataset(dataset, self.config, shuffle=True, seed=seed))
        try:
            for layer in layers:
                layer.trainable = True
                if hasattr(layer, "train_bn"):
                    layer.train_bn = True
            for count in range(int(batches)):
                for layer in layers:          # running mean over the batches seen so far
                    layer.momentum = count / (count + 1)
                self.keras_model(network_inputs(self.keras_model, next(data)), training=True)
        finally:
            for layer, (momentum, train_bn, trainable) in zip(layers, saved):
                layer.momentum, layer.trainable = momentum, trainable
                if hasattr(layer, "train_bn"):
                    layer.train_bn = train_bn
        return len(layers)

    def get_imagenet_weights(self):
        """Download (once) the ImageNet ResNet-50 weights and return their path."""
        return _imagenet_weights_path()

    # -- training ---------------------------------------------------------------------------
    def set_trainable(self, layer_regex, keras_model=None, indent=0, verbose=0):
        """Make the layers whose names fully match `layer_regex` trainable, freeze the rest.

        indent: kept for Matterport's signature (it indented its printed list); unused.
        """
        model = keras_model or self.keras_model
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                self.set_trainable(layer_regex, keras_model=layer, verbose=verbose)
                continue
            if not layer.weights:
                continue
            trainable = bool(re.fullmatch(layer_regex, layer.name))
            layer.trainable = trainable
            if trainable and verbose > 0:
                logger.info("trainable: %s (%s)", layer.name, type(layer).__name__)

    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers, augmentation=None,
              custom_callbacks=None, no_augmentation_sources=None, verbose=1, seed=None,
              time_budget=None, clock=None, progress=False):
        """Train until epoch `epochs` (counting on from the loaded checkpoint), `layers` chosen by
        'heads' | '3+' | '4+' | '5+' | 'all' or a regular expression over layer names.

        augmentation: an albumentations transform, an imgaug augmenter, or a callable
        (image, masks) -> (image, masks); applied to training images only.
        time_budget: seconds; training stops at the first step boundary after them, and that
        partial epoch is validated and saved like a full one (mrcnn.callbacks.TimeBudget), so
        `epochs` is an upper bound. clock: the time source (time.monotonic; tests fake it).
        progress: one progress bar with an ETA over all steps (mrcnn.callbacks.TrainingProgress)
        instead of Keras' own lines (`verbose` is then 0).
        Afterwards `self.epoch` is the epoch reached (the number of its checkpoint) and
        `self.last_train_stop` says how training ended: reason ("epochs done", "time budget",
        "stopped" by another callback, "interrupted"), epoch, step (steps done in that epoch),
        steps (in this call), seconds (of this call), budget (seconds or None).
        Returns the Keras History of this call.
        """
        if self.mode != "training":
            raise RuntimeError("Create the model with mode='training' to train it.")
        if no_augmentation_sources:
            logger.warning("no_augmentation_sources is not supported; augmentation applies to every source.")
        layer_regex = LAYER_REGEX.get(layers, layers)
        config = self.config
        train_data = make_training_dataset(train_dataset, config, shuffle=True, augmentation=augmentation, seed=seed)
        val_data = make_training_dataset(val_dataset, config, shuffle=True, seed=seed)

        os.makedirs(self.log_dir, exist_ok=True)
        clock = clock or time.monotonic
        # first, so that every later callback sees a stop at the step that made it
        budget = TimeBudget(time_budget, clock=clock)
        precise = ([PreciseBatchNorm(self, train_dataset, config.PRECISE_BN_BATCHES, config.STEPS_PER_EPOCH, seed)]
                   if config.PRECISE_BN_BATCHES else [])
        bar = ([TrainingProgress(config.STEPS_PER_EPOCH, self.epoch, epochs, budget=budget, clock=clock,
                                 desc=f"training {layers}")] if progress else [])
        callbacks = [budget] + precise + [
            WeightsCheckpoint(self.keras_model, self.checkpoint_path, keep=config.KEEP_CHECKPOINTS),
            keras.callbacks.CSVLogger(os.path.join(self.log_dir, "training_log.csv"), append=True),
        ] + _tensorboard_callback(self.log_dir) + list(custom_callbacks or []) + bar

        with self.strategy.scope():
            self.set_trainable(layer_regex)
            trainer = MaskRCNNTrainer(self.keras_model, config, name="mask_rcnn_trainer")
            optimizer = keras.optimizers.SGD(
                learning_rate=learning_rate, momentum=config.LEARNING_MOMENTUM,
                weight_decay=config.WEIGHT_DECAY or None,
                clipnorm=config.GRADIENT_CLIP_NORM)   # each gradient tensor on its own, as Matterport's
            optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
            trainer.compile(optimizer=optimizer, jit_compile=False)
        logger.info("Training from epoch %d to %d, layers %r, learning rate %g, run folder %s",
                 self.epoch, epochs, layers, learning_rate, self.log_dir)
        reason = "interrupted"
        try:
            history = trainer.fit(
                train_data, initial_epoch=self.epoch, epochs=epochs, steps_per_epoch=config.STEPS_PER_EPOCH,
                validation_data=val_data, validation_steps=config.VALIDATION_STEPS, callbacks=callbacks,
                verbose=0 if progress else verbose, shuffle=False)  # the tf.data pipeline shuffles
            reason = None
        finally:
            for callback in bar:
                callback.close()
            self._record_train_stop(budget, epochs, reason)
        return history

    def _record_train_stop(self, budget, epochs, reason=None):
        """Set self.epoch to the epoch reached and self.last_train_stop to how training ended."""
        if budget.last_epoch_ended is not None:
            self.epoch = budget.last_epoch_ended + 1          # its checkpoint is mask_rcnn_<name>_<epoch>
        if reason is None:
            finished = self.epoch >= epochs and budget.step in (0, int(self.config.STEPS_PER_EPOCH))
            reason = "epochs done" if finished else "time budget" if budget.stopped else "stopped"
        seconds = budget.seconds_trained if reason != "interrupted" else budget.elapsed()
        self.last_train_stop = {"reason": reason, "epoch": int(self.epoch), "step": int(budget.step),
                                "steps": int(budget.steps), "seconds": float(seconds), "budget": budget.seconds}

    # -- inference --------------------------------------------------------------------------
    def get_anchors(self, image_shape):
        """Normalised anchors for a molded image shape (cached)."""
        key = tuple(int(v) for v in image_shape[:2])
        if key not in self._anchor_cache:
            self._anchor_cache[key] = utils.norm_boxes(get_anchors(self.config, image_shape), key)
        return self._anchor_cache[key]

    def mold_inputs(self, images):
        """Resize and normalise a list of (H, W, 3) uint8 images as the network takes them.

        Returns (molded_images (N, H', W', 3) float32, image_metas (N, IMAGE_META_SIZE),
        windows (N, 4) int32: where each image lies inside its molded one), as Matterport's.
        """
        return make_inference_inputs(images, self.config)

    def _inference_inputs(self, molded_images, image_metas):
        """The three inputs of the inference network: images, metas and anchors for the batch."""
        if self.mode != "inference":
            raise RuntimeError("Create the model with mode='inference' to detect or run its graph.")
        molded_images = np.asarray(molded_images, dtype=np.float32)
        anchors = self.get_anchors(molded_images.shape[1:])
        return [molded_images, np.asarray(image_metas, dtype=np.float32),
                np.broadcast_to(anchors, (len(molded_images),) + anchors.shape)]

    def detect(self, images, verbose=0):
        """Detect instances in a list of RGB uint8 images (any number; batched by BATCH_SIZE).

        Returns one dict per image: rois (N, 4) [y1, x1, y2, x2] in that image's pixels,
        class_ids (N,), scores (N,), masks (H, W, N) bool at the image's own size.
        """
        if self.mode != "inference":
            raise RuntimeError("Create the model with mode='inference' to detect.")
        images = list(images)
        batch = int(self.config.BATCH_SIZE)
        results = []
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            padded = chunk + [chunk[-1]] * (batch - len(chunk))
            molded, metas, windows = self.mold_inputs(padded)
            if verbose:
                log(f"Processing {len(chunk)} images")
                for image in chunk:
                    log("image", image)
                log("molded_images", molded)
                log("image_metas", metas)
            detections, _, _, mrcnn_mask, _, _, _ = self.keras_model.predict_on_batch(
                self._inference_inputs(molded, metas))
            for i, image in enumerate(chunk):
                rois, class_ids, scores, masks = self.unmold_detections(
                    np.asarray(detections[i]), np.asarray(mrcnn_mask[i]), image.shape, molded[i].shape, windows[i])
                results.append({"rois": rois, "class_ids": class_ids, "scores": scores, "masks": masks})
        return results

    def detect_molded(self, molded_images, image_metas, verbose=0):
        """detect() for images already molded (mold_inputs, or load_image_gt's with mold_image).

        Boxes and masks are in the molded image's pixels (its window is the whole image), as
        Matterport's. Any number of images, batched by BATCH_SIZE.
        """
        molded_images, image_metas = np.asarray(molded_images), np.asarray(image_metas)
        if molded_images.ndim != 4 or len(image_metas) != len(molded_images):
            raise ValueError(f"detect_molded: need molded images (N, H, W, C) and N image metas, got "
                             f"{molded_images.shape} and {image_metas.shape}")
        if verbose:
            log(f"Processing {len(molded_images)} images")
        batch = int(self.config.BATCH_SIZE)
        results = []
        for start in range(0, len(molded_images), batch):
            chunk, metas = molded_images[start:start + batch], image_metas[start:start + batch]
            missing = batch - len(chunk)
            if missing:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], missing, axis=0)])
                metas = np.concatenate([metas, np.repeat(metas[-1:], missing, axis=0)])
            detections, _, _, mrcnn_mask, _, _, _ = self.keras_model.predict_on_batch(
                self._inference_inputs(chunk, metas))
            for i in range(batch - missing):
                shape = chunk[i].shape
                rois, class_ids, scores, masks = self.unmold_detections(
                    np.asarray(detections[i]), np.asarray(mrcnn_mask[i]), shape, shape, [0, 0, shape[0], shape[1]])
                results.append({"rois": rois, "class_ids": class_ids, "scores": scores, "masks": masks})
        return results

    def run_graph(self, images, outputs, image_metas=None, verbose=1):
        """Run part of the inference graph: the values of the named tensors, for inspection.

        outputs: a list of (name, tensor) with tensors of keras_model, e.g.
        ("proposals", model.keras_model.get_layer("ROI").output). images: a list of images (molded
        here), or with image_metas, already molded images. Returns an OrderedDict name -> array
        and logs each one's shape and range, as Matterport's (verbose=0: silently).
        """
        outputs = collections.OrderedDict(outputs)
        for name, tensor in outputs.items():
            if tensor is None:
                raise ValueError(f"run_graph: output {name!r} is None (a layer name that is not in the model?)")
        if image_metas is None:
            molded_images, image_metas, _ = self.mold_inputs(images)
        else:
            molded_images = images
        key = tuple(id(t) for t in outputs.values())
        probe = self._graph_probes.get(key)
        if probe is None:
            probe = self._graph_probes[key] = keras.Model(self.keras_model.inputs, list(outputs.values()))
        values = probe.predict_on_batch(self._inference_inputs(molded_images, image_metas))
        values = values if isinstance(values, (list, tuple)) else [values]
        result = collections.OrderedDict((name, np.asarray(v)) for name, v in zip(outputs, values))
        for name, value in result.items() if verbose else ():
            log(name, value)
        return result

    def unmold_detections(self, detections, mrcnn_mask, original_image_shape, image_shape, window):
        """One image's detection rows and masks -> boxes, class ids, scores, full-size masks."""
        keep = np.where(detections[:, 4] > 0)[0]
        detections, count = detections[keep], len(keep)
        boxes = detections[:, :4]
        class_ids = detections[:, 4].astype(np.int32)
        scores = detections[:, 5].astype(np.float32)
        masks = mrcnn_mask[keep, :, :, class_ids] if count else np.zeros((0,) + mrcnn_mask.shape[1:3])

        if self.config.MASK_TARGET_SAMPLING == "resized":
            return _unmold_as_matterport(boxes, class_ids, scores, masks, original_image_shape, image_shape, window)
        # From normalised coordinates of the molded image to pixel edges of the original image:
        # the molded image is the original scaled into `window`, so edges map linearly.
        edges = utils.molded_to_original_edges(boxes, image_shape, window, original_image_shape)
        boxes = np.rint(edges).astype(np.int32)

        nonempty = np.where((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0)[0]
        boxes, class_ids, scores, masks = boxes[nonempty], class_ids[nonempty], scores[nonempty], masks[nonempty]
        height, width = original_image_shape[:2]
        # Masks go where the box really is (fractional edges), not where its rounding puts it.
        full = [utils.unmold_mask(m, e, original_image_shape) for m, e in zip(masks, edges[nonempty])]
        full_masks = np.stack(full, axis=-1) if full else np.zeros((height, width, 0), dtype=bool)
        return boxes, class_ids, scores, full_masks

    # -- Matterport's remaining methods (their tutorials call them) ------------------------
    def build(self, mode, config):
        """A new functional Keras model of Mask R-CNN for `mode` and `config` (build_network).

        The model MaskRCNN() makes as keras_model; calling build again gives a fresh, separate
        model and leaves self.keras_model as it is.
        """
        with self.strategy.scope():
            return build_network(mode, config)

    def compile(self, learning_rate, momentum):
        """The compiled trainer train() uses, with SGD at `learning_rate` and `momentum`; returns it.

        Matterport's compile added the five losses to keras_model and compiled it for
        keras_model.fit on data_generator's batches. A Keras 3 model cannot carry losses added
        that way, so ours live in a wrapping keras.Model (MaskRCNNTrainer, kept as self.trainer)
        whose fit() takes the batches of mrcnn.data.make_training_dataset. train() compiles its
        own; call this to run fit yourself. The optimizer is train()'s: Config's
        GRADIENT_CLIP_NORM per gradient and WEIGHT_DECAY on kernels only.
        """
        if self.mode != "training":
            raise RuntimeError("compile: create the model with mode='training' to train it.")
        config = self.config
        with self.strategy.scope():
            trainer = MaskRCNNTrainer(self.keras_model, config, name="mask_rcnn_trainer")
            optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum,
                                             weight_decay=config.WEIGHT_DECAY or None,
                                             clipnorm=config.GRADIENT_CLIP_NORM)
            optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
            trainer.compile(optimizer=optimizer, jit_compile=False)
        self.trainer = trainer
        return trainer

    def ancestor(self, tensor, name, checked=None):
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

    def find_trainable_layer(self, layer):
        """The layer that holds the weights: `layer` itself, or the one a wrapper (TimeDistributed) wraps."""
        if isinstance(layer, keras.layers.Wrapper):
            return self.find_trainable_layer(layer.layer)
        return layer

    def get_trainable_layers(self):
        """The layers of keras_model that have weights (wrappers unwrapped; nested models as a whole)."""
        layers = []
        for layer in self.keras_model.layers:
            layer = self.find_trainable_layer(layer)
            if layer.weights:
                layers.append(layer)
        return layers
