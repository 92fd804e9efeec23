"""Matterport's module-level names of `mrcnn/model.py` that our own engine does not call.

Tutorials and users' scripts written for Matterport's Mask R-CNN call these through
`mrcnn.model` (`import mrcnn.model as modellib`), which re-exports them: `log`,
`load_image_gt`, `data_generator`, the layers that Matterport built from a config (ProposalLayer,
DetectionTargetLayer, DetectionLayer: ours take plain values), the ResNet building blocks, a
few per-image graph functions, and the numpy helpers of Matterport's data generator (`generate_random_rois`,
`build_detection_targets`). They keep Matterport's signatures and return values; where they are
built on our modules they say so, and where Keras 3 changes the meaning the docstring says how.

Our training does not use them: it streams batches through tf.data
(mrcnn.data.make_training_dataset), with the detection targets made inside the graph
(mrcnn.targets.DetectionTargetLayer).
"""
import logging

import numpy as np
import tensorflow as tf

from mrcnn import backbone, data, detection, proposals, targets, utils
from mrcnn.augment import apply_augmentation
from mrcnn.losses import smooth_l1
from mrcnn.meta import mold_image

logger = logging.getLogger(__name__)

# Matterport's data generator gives up after this many images that fail to load.
MAX_LOAD_ERRORS = 5
# generate_random_rois: the share of the ROIs drawn around the gt boxes (the rest anywhere).
ROIS_NEAR_GT_SHARE = 0.9
# build_detection_targets: IoU above which a ROI is positive, below which it is negative.
DETECTION_TARGET_IOU = 0.5


def log(text, array=None):
    """Print `text`; with a numpy array, also its shape, min, max and dtype (Matterport's format).

    The text is padded to 25 characters, then "shape: ...  min: ...  max: ...  dtype". An empty
    array prints blanks for min and max (Matterport's raised an error there).
    """
    if array is not None:
        array = np.asarray(array)
        low = f"{array.min():10.5f}" if array.size else " " * 10
        high = f"{array.max():10.5f}" if array.size else " " * 10
        text = f"{text:<25}shape: {str(array.shape):20}  min: {low}  max: {high}  {array.dtype}"
    print(text)


# -- the stage layers, built from a config (Matterport's signatures) ---------------------------

def _settings(owner, config, given, names):
    """`given` (keyword arguments) with every argument of `names` {argument: config attribute}
    that is missing or None filled from `config`; neither is a ValueError naming `owner`."""
    settings = dict(given)
    for argument, attribute in names.items():
        if settings.get(argument) is None:
            if config is None:
                raise ValueError(f"{owner} needs a config (or {argument})")
            settings[argument] = getattr(config, attribute)
    return settings


class ProposalLayer(proposals.ProposalLayer):
    """mrcnn.proposals.ProposalLayer as Matterport's made it: ProposalLayer(proposal_count,
    nms_threshold, config); pre_nms_limit and rpn_bbox_std_dev given by name win over the config's."""

    def __init__(self, proposal_count, nms_threshold, config=None, **kwargs):
        super().__init__(proposal_count, nms_threshold, **_settings("ProposalLayer", config, kwargs, {
            "pre_nms_limit": "PRE_NMS_LIMIT", "rpn_bbox_std_dev": "RPN_BBOX_STD_DEV"}))


class DetectionTargetLayer(targets.DetectionTargetLayer):
    """mrcnn.targets.DetectionTargetLayer as Matterport's made it: DetectionTargetLayer(config);
    its settings given by name (train_rois_per_image=...) win over the config's."""

    def __init__(self, config=None, **kwargs):
        super().__init__(**_settings("DetectionTargetLayer", config, kwargs, {
            "train_rois_per_image": "TRAIN_ROIS_PER_IMAGE", "roi_positive_ratio": "ROI_POSITIVE_RATIO",
            "bbox_std_dev": "BBOX_STD_DEV", "mask_shape": "MASK_SHAPE", "use_mini_mask": "USE_MINI_MASK",
            "mask_target_sampling": "MASK_TARGET_SAMPLING", "image_shape": "IMAGE_SHAPE"}))


class DetectionLayer(detection.DetectionLayer):
    """mrcnn.detection.DetectionLayer as Matterport's made it: DetectionLayer(config); its settings
    given by name (min_confidence=...) win over the config's."""

    def __init__(self, config=None, **kwargs):
        super().__init__(**_settings("DetectionLayer", config, kwargs, {
            "max_instances": "DETECTION_MAX_INSTANCES", "min_confidence": "DETECTION_MIN_CONFIDENCE",
            "nms_threshold": "DETECTION_NMS_THRESHOLD", "bbox_std_dev": "BBOX_STD_DEV"}))


# -- ResNet, with Matterport's defaults -------------------------------------------------------

def resnet_graph(input_image, architecture, stage5=False, train_bn=True):
    """ResNet C1..C5 of mrcnn.backbone.resnet_graph, with Matterport's defaults (no stage 5).

    train_bn=True lets the BatchNorm layers follow the model's training flag (Keras 3); False
    freezes them to their inference statistics (Matterport's TRAIN_BN = False).
    """
    return backbone.resnet_graph(input_image, architecture, stage5=stage5, train_bn=train_bn)


def _check_block_arguments(name, kernel_size, use_bias):
    if int(kernel_size) != 3 or not use_bias:
        raise ValueError(f"{name}: only kernel_size=3 and use_bias=True are built (the blocks of "
                         "Matterport's resnet_graph); write your own block for other choices")


def identity_block(input_tensor, kernel_size, filters, stage, block, use_bias=True, train_bn=True):
    """ResNet bottleneck block whose shortcut is the input itself; Matterport's layer names."""
    _check_block_arguments("identity_block", kernel_size, use_bias)
    return backbone._bottleneck(input_tensor, filters, stage, block, (1, 1), projection=False,
                                train_bn=train_bn)


def conv_block(input_tensor, kernel_size, filters, stage, block, strides=(2, 2), use_bias=True, train_bn=True):
    """ResNet bottleneck block with a strided 1x1 convolution on its shortcut (first of a stage)."""
    _check_block_arguments("conv_block", kernel_size, use_bias)
    return backbone._bottleneck(input_tensor, filters, stage, block, tuple(strides), projection=True,
                                train_bn=train_bn)


# -- small graph functions ------------------------------------------------------------------

def log2_graph(x):
    """Base-2 logarithm of a tensor."""
    return tf.math.log(tf.cast(x, tf.float32)) / tf.math.log(2.0)


def smooth_l1_loss(y_true, y_pred):
    """Element-wise smooth-L1 with beta 1 (mrcnn.losses.smooth_l1), Matterport's box loss term."""
    return smooth_l1(y_true, y_pred, beta=1.0)


def batch_pack_graph(x, counts, num_rows):
    """The first counts[i] entries of row i of x, for i < num_rows, concatenated along axis 0."""
    return tf.concat([x[i, :counts[i]] for i in range(int(num_rows))], axis=0)


def detection_targets_graph(proposals, gt_class_ids, gt_boxes, gt_masks, config):
    """One image's detection targets, as mrcnn.targets.DetectionTargetLayer makes them in training.

    proposals (N, 4) and gt_boxes (G, 4) normalised, gt_class_ids (G,), gt_masks (h, w, G).
    Returns (rois (T, 4), class_ids (T,), deltas (T, 4), masks (T, MASK_SHAPE...)), T =
    TRAIN_ROIS_PER_IMAGE, zero padded; the ROI sampling is random, as in training.
    """
    layer = DetectionTargetLayer(config)
    return layer._one_image((tf.cast(proposals, tf.float32), tf.cast(gt_class_ids, tf.int32),
                             tf.cast(gt_boxes, tf.float32), tf.cast(gt_masks, tf.float32)))


def refine_detections_graph(rois, probs, deltas, window, config):
    """One image's detections (DETECTION_MAX_INSTANCES, 6) [y1, x1, y2, x2, class_id, score].

    rois (N, 4) and window (4,) normalised; probs (N, C); deltas (N, C, 4). This is
    mrcnn.detection.DetectionLayer on a batch of one, so the rule is ours (per-class candidates,
    see that module; the same detections as Matterport's from DETECTION_MIN_CONFIDENCE 0.5 up).
    The layer reads the window from an image meta row: here the row of a 2 x 2 pixel image, for
    which a pixel window is the normalised one plus 1 on its far edges.
    """
    window = tf.cast(tf.reshape(window, [4]), tf.float32)
    size = int(config.IMAGE_META_SIZE)
    meta = tf.concat([tf.zeros([4]), [2.0, 2.0, 0.0], window + tf.constant([0.0, 0.0, 1.0, 1.0]),
                      tf.zeros([size - 11])], axis=0)
    detections = DetectionLayer(config)([tf.cast(rois, tf.float32)[None], tf.cast(probs, tf.float32)[None],
                                         tf.cast(deltas, tf.float32)[None], meta[None]])
    return detections[0]


# -- Matterport's data generator -------------------------------------------------------------

def _flip_then(augmentation, rng):
    """A callable (image, masks) -> (image, masks): a left-right flip half of the time, then `augmentation`."""
    def augment(image, masks):
        if rng.random() < 0.5:
            image, masks = np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(masks[:, ::-1])
        return apply_augmentation(augmentation, image, masks, rng=rng)
    return augment


def load_image_gt(dataset, config, image_id, augment=False, augmentation=None, use_mini_mask=False):
    """Load one image with its instances, resized for the network (Matterport's signature).

    Returns (image (H, W, 3) uint8, image_meta (IMAGE_META_SIZE,), class_ids (N,) int32,
    bbox (N, 4) int32, mask (H, W, N) bool, or MINI_MASK_SHAPE + (N,) with use_mini_mask).
    augment: Matterport's deprecated flag, a left-right flip half of the time (numpy's global
    random state decides, so np.random.seed makes it repeatable). augmentation: an
    albumentations transform, an imgaug augmenter or a callable (image, masks) -> (image,
    masks). Unlike Matterport's, augmentation runs before resizing (mrcnn.data.load_image_gt),
    so a flip does not also flip the padding of the resized image.
    """
    rng = np.random.default_rng(np.random.randint(0, 2 ** 31 - 1))
    if augment:
        logger.warning("load_image_gt: 'augment' is deprecated; pass augmentation= instead.")
        augmentation = _flip_then(augmentation, rng)
    return data.load_image_gt(dataset, config, image_id, augmentation=augmentation, rng=rng,
                              use_mini_mask=bool(use_mini_mask))


def _random_boxes(rng, count, y_range, x_range):
    """`count` int boxes [y1, x1, y2, x2] with corners drawn in the ranges, none of zero height or width."""
    boxes = np.zeros((0, 4), dtype=np.int32)
    while len(boxes) < count:
        ys = np.sort(rng.integers(y_range[0], y_range[1], (2 * count, 2)), axis=1)
        xs = np.sort(rng.integers(x_range[0], x_range[1], (2 * count, 2)), axis=1)
        fine = (ys[:, 1] > ys[:, 0]) & (xs[:, 1] > xs[:, 0])
        drawn = np.stack([ys[:, 0], xs[:, 0], ys[:, 1], xs[:, 1]], axis=1)[fine]
        boxes = np.concatenate([boxes, drawn.astype(np.int32)])
    return boxes[:count]


def generate_random_rois(image_shape, count, gt_class_ids, gt_boxes, rng=None):
    """`count` random pixel ROIs (count, 4) int32, as a young RPN might propose them.

    90% are drawn around the gt boxes (an equal share each, corners within the box grown by its
    own height and width on every side, clipped to the image), the rest anywhere in the image;
    no ROI has zero height or width. `rng`: a numpy Generator (default: from numpy's global state).
    """
    rng = np.random.default_rng(np.random.randint(0, 2 ** 31 - 1)) if rng is None else rng
    height, width = int(image_shape[0]), int(image_shape[1])
    if height < 2 or width < 2:
        raise ValueError(f"generate_random_rois: image_shape {tuple(image_shape)} is too small for a box")
    gt_boxes = np.asarray(gt_boxes).reshape(-1, 4)
    per_box = int(ROIS_NEAR_GT_SHARE * count / len(gt_boxes)) if len(gt_boxes) else 0
    parts = []
    for y1, x1, y2, x2 in gt_boxes.astype(np.int64):
        h, w = y2 - y1, x2 - x1
        y_range = (max(y1 - h, 0), min(y2 + h, height))
        x_range = (max(x1 - w, 0), min(x2 + w, width))
        if y_range[1] - y_range[0] < 2 or x_range[1] - x_range[0] < 2:     # a box of 0 or 1 pixel
            y_range, x_range = (0, height), (0, width)
        parts.append(_random_boxes(rng, per_box, y_range, x_range))
    parts.append(_random_boxes(rng, count - per_box * len(gt_boxes), (0, height), (0, width)))
    return np.concatenate(parts).astype(np.int32)


def _mask_target(gt_mask, gt_box, roi, config):
    """The gt mask (full, or a mini mask of gt_box) cut to `roi` and resized to MASK_SHAPE (float32)."""
    if config.USE_MINI_MASK:
        gt_mask = utils.expand_mask(np.asarray(gt_box)[None], gt_mask[..., None], config.IMAGE_SHAPE)[..., 0]
    y1, x1, y2, x2 = (int(v) for v in roi)
    crop = gt_mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)].astype(np.float32)
    if crop.size == 0:
        return np.zeros(tuple(config.MASK_SHAPE), dtype=np.float32)
    return utils._resize_array(crop, int(config.MASK_SHAPE[0]), int(config.MASK_SHAPE[1]))


def build_detection_targets(rpn_rois, gt_class_ids, gt_boxes, gt_masks, config, rng=None):
    """Targets of the classifier and mask heads for given ROIs, in numpy (Matterport's debugging aid).

    rpn_rois (N, 4) pixel ROIs; gt_class_ids (G,) (0 and crowds are left out); gt_boxes (G, 4)
    pixels; gt_masks (H, W, G) or mini masks (config.USE_MINI_MASK). Samples T =
    TRAIN_ROIS_PER_IMAGE ROIs: positives (IoU > 0.5 with a gt box) up to ROI_POSITIVE_RATIO of T,
    negatives (IoU < 0.5) for the rest, repeated when there are too few. Returns
    (rois (T, 4), class_ids (T,) int32, bboxes (T, NUM_CLASSES, 4) float32 deltas / BBOX_STD_DEV
    in the row of the target class, masks (T, MASK_SHAPE..., NUM_CLASSES) float32 in [0, 1]).
    """
    rng = np.random.default_rng(np.random.randint(0, 2 ** 31 - 1)) if rng is None else rng
    rpn_rois = np.asarray(rpn_rois)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    real = gt_class_ids > 0
    if not real.any():
        raise ValueError("build_detection_targets: the image has no instance (no class id > 0)")
    if len(rpn_rois) == 0:
        raise ValueError("build_detection_targets: no ROIs given")
    gt_class_ids, gt_boxes = gt_class_ids[real], np.asarray(gt_boxes).reshape(-1, 4)[real]
    gt_masks = np.asarray(gt_masks)[..., real]
    total = int(config.TRAIN_ROIS_PER_IMAGE)

    overlaps = utils.compute_overlaps(rpn_rois.astype(np.float64), gt_boxes.astype(np.float64))
    assigned = np.argmax(overlaps, axis=1)
    best_iou = overlaps[np.arange(len(rpn_rois)), assigned]
    positives = np.flatnonzero(best_iou > DETECTION_TARGET_IOU)
    negatives = np.flatnonzero(best_iou < DETECTION_TARGET_IOU)
    quota = int(total * config.ROI_POSITIVE_RATIO)
    if len(positives) > quota:
        positives = rng.choice(positives, quota, replace=False)
    if len(negatives) > total - len(positives):
        negatives = rng.choice(negatives, total - len(positives), replace=False)
    keep = np.concatenate([positives, negatives]).astype(np.int64)
    if len(keep) == 0:
        raise ValueError("build_detection_targets: every ROI has IoU exactly 0.5 with a gt box")
    if len(keep) < total:               # too few ROIs: repeat negatives (or, lacking them, all)
        pool = negatives if len(negatives) else keep
        keep = np.concatenate([keep, rng.choice(pool, total - len(keep), replace=True)])
    is_positive = np.zeros(len(keep), dtype=bool)
    is_positive[:len(positives)] = True

    rois = rpn_rois[keep]
    class_ids = np.where(is_positive, gt_class_ids[assigned[keep]], 0).astype(np.int32)
    bboxes = np.zeros((total, config.NUM_CLASSES, 4), dtype=np.float32)
    masks = np.zeros((total,) + tuple(int(v) for v in config.MASK_SHAPE) + (config.NUM_CLASSES,), dtype=np.float32)
    std_dev = np.asarray(config.BBOX_STD_DEV, dtype=np.float32)
    for row in np.flatnonzero(is_positive):
        gt = assigned[keep[row]]
        class_id = class_ids[row]
        deltas = utils.box_refinement(rois[row:row + 1].astype(np.float32), gt_boxes[gt:gt + 1].astype(np.float32))
        bboxes[row, class_id] = deltas[0] / std_dev
        masks[row, :, :, class_id] = _mask_target(gt_masks[..., gt], gt_boxes[gt], rois[row], config)
    return rois, class_ids, bboxes, masks


def data_generator(dataset, config, shuffle=True, augment=False, augmentation=None, random_rois=0,
                   batch_size=1, detection_targets=False, no_augmentation_sources=None):
    """Matterport's endless generator of training batches: yields (inputs, outputs) lists.

    inputs: [images (B, H, W, 3) float32 molded, image_meta (B, META), rpn_match (B, A, 1) int32,
    rpn_bbox (B, RPN_TRAIN_ANCHORS_PER_IMAGE, 4), gt_class_ids (B, MAX_GT_INSTANCES) int32,
    gt_boxes (B, MAX_GT_INSTANCES, 4) int32, gt_masks (B, h, w, MAX_GT_INSTANCES) bool], plus
    rpn_rois (B, random_rois, 4) with random_rois > 0, plus rois (B, T, 4) with detection_targets;
    outputs: [] or, with random_rois and detection_targets, [class_ids (B, T, 1), bboxes
    (B, T, NUM_CLASSES, 4), masks (B, T, h, w, NUM_CLASSES)] (build_detection_targets).

    For looking at what training sees; our MaskRCNN.train streams its batches through tf.data
    (mrcnn.data.make_training_dataset, named inputs) and does not take this generator.
    Images without instances are skipped; an image that fails to load is logged and skipped, and
    the generator stops with ImageLoadError after more than MAX_LOAD_ERRORS such images. Random
    draws come from numpy's global state, so np.random.seed makes a run repeatable.
    """
    rng = np.random.default_rng(np.random.randint(0, 2 ** 31 - 1))
    no_augmentation_sources = set(no_augmentation_sources or ())
    image_ids = np.copy(dataset.image_ids)
    if len(image_ids) == 0:
        raise ValueError("data_generator: the dataset has no images (did you call dataset.prepare()?)")
    position, errors, batch, idle = -1, 0, [], 0
    while True:
        if idle > len(image_ids):
            raise data.ImageLoadError(f"data_generator: no image of the dataset ({len(image_ids)} images) "
                                      "has any instance to train on")
        position = (position + 1) % len(image_ids)
        if shuffle and position == 0:
            rng.shuffle(image_ids)
        image_id = int(image_ids[position])
        try:
            example = _generator_example(dataset, config, image_id, augment, augmentation, random_rois,
                                         detection_targets, no_augmentation_sources, rng)
        except (GeneratorExit, KeyboardInterrupt):
            raise
        except Exception as err:
            errors += 1
            where = data._reference(dataset, image_id)
            if errors > MAX_LOAD_ERRORS:
                raise data.ImageLoadError(f"data_generator: {errors} images failed to load, the last "
                                          f"{where}: {type(err).__name__}: {err}") from err
            logger.warning("data_generator: skipping %s: %s: %s", where, type(err).__name__, err)
            continue
        if example is None:
            idle += 1
            continue
        idle = 0
        batch.append(example)
        if len(batch) == batch_size:
            yield _stack_batch(batch, random_rois, detection_targets)
            batch = []


def _generator_example(dataset, config, image_id, augment, augmentation, random_rois, detection_targets,
                       no_augmentation_sources, rng):
    """One image's entries of a data_generator batch (a dict), or None when it has no instance."""
    if dataset.image_info[image_id]["source"] in no_augmentation_sources:
        augment, augmentation = False, None
    image, image_meta, class_ids, boxes, masks = load_image_gt(
        dataset, config, image_id, augment=augment, augmentation=augmentation,
        use_mini_mask=config.USE_MINI_MASK)
    if not np.any(class_ids > 0):
        return None
    anchors = data.get_anchors(config, image.shape)
    rpn_match, rpn_bbox = data.build_rpn_targets(image.shape, anchors, class_ids, boxes, config, rng=rng)
    example = {}
    if random_rois:
        example["rpn_rois"] = generate_random_rois(image.shape, random_rois, class_ids, boxes, rng=rng)
        if detection_targets:
            rois, target_ids, target_bbox, target_mask = build_detection_targets(
                example["rpn_rois"], class_ids, boxes, masks, config, rng=rng)
            example.update(rois=rois, target_class_ids=target_ids, target_bbox=target_bbox,
                           target_mask=target_mask)
    if len(class_ids) > config.MAX_GT_INSTANCES:
        keep = np.sort(rng.choice(len(class_ids), config.MAX_GT_INSTANCES, replace=False))
        class_ids, boxes, masks = class_ids[keep], boxes[keep], masks[:, :, keep]
    limit = int(config.MAX_GT_INSTANCES)
    example.update(
        image=mold_image(image, config), image_meta=image_meta, rpn_match=rpn_match[:, None].astype(np.int32),
        rpn_bbox=rpn_bbox,
        gt_class_ids=data._pad_rows(class_ids.astype(np.int32), limit),
        gt_boxes=data._pad_rows(boxes.astype(np.int32), limit),
        gt_masks=data._pad_rows(masks.astype(bool), limit, axis=2))
    return example


def _stack_batch(batch, random_rois, detection_targets):
    """Matterport's (inputs, outputs) lists from a list of _generator_example dicts."""
    def stacked(key):
        return np.stack([example[key] for example in batch])

    inputs = [stacked("image"), stacked("image_meta"), stacked("rpn_match"), stacked("rpn_bbox"),
              stacked("gt_class_ids"), stacked("gt_boxes"), stacked("gt_masks")]
    outputs = []
    if random_rois:
        inputs.append(stacked("rpn_rois"))
        if detection_targets:
            inputs.append(stacked("rois"))
            outputs = [stacked("target_class_ids")[..., None], stacked("target_bbox"), stacked("target_mask")]
    return inputs, outputs

