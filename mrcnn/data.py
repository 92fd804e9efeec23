"""The training input pipeline: from a Dataset image to the tensors the training model reads.

* `load_image_gt` loads one image with its instances, augments, resizes and packs them.
* `label_anchors` / `build_rpn_targets` give the RPN its per-anchor labels and box deltas.
* `make_training_dataset` streams batches of the training model's named inputs through
  tf.data, loading images in parallel threads (Python code behind tf.numpy_function).
* `make_inference_inputs` resizes and molds images for detect().

Conventions are Matterport's (see mrcnn.meta): boxes [y1, x1, y2, x2] in pixels with y2/x2
exclusive, masks (H, W, N), negative class ids mark crowd regions (COCO's iscrowd).
"""
import functools
import logging
import threading
import weakref

import numpy as np
import tensorflow as tf

from mrcnn import meta, utils
from mrcnn.augment import apply_augmentation

log = logging.getLogger(__name__)

# An anchor whose IoU with a crowd region exceeds this is never a negative.
CROWD_IOU_LIMIT = 0.001
POSITIVE_IOU = 0.7
NEGATIVE_IOU = 0.3

TRAINING_INPUT_NAMES = ("input_image", "input_image_meta", "input_rpn_match", "input_rpn_bbox",
                        "input_gt_class_ids", "input_gt_boxes", "input_gt_masks")


class ImageLoadError(RuntimeError):
    """An image of the dataset could not be loaded or prepared; the message names it."""


# -- one image ----------------------------------------------------------------------------

def _reference(dataset, image_id):
    try:
        return f"image {image_id} ({dataset.image_reference(image_id)})"
    except Exception:          # a broken image_reference must not hide the real error
        return f"image {image_id}"


def _load_raw(dataset, image_id):
    """The image and its masks/class ids from the dataset, checked for consistency."""
    image = np.asarray(dataset.load_image(image_id))
    masks, class_ids = dataset.load_mask(image_id)
    masks = np.asarray(masks)
    class_ids = np.asarray(class_ids).reshape(-1)
    where = _reference(dataset, image_id)
    if image.ndim != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ImageLoadError(f"{where}: load_image must return (H, W, C) uint8, got {image.dtype} {image.shape}")
    if masks.ndim == 3 and masks.shape[2] == 0:
        masks = np.zeros(image.shape[:2] + (0,), dtype=bool)     # "no instances" in any (.., .., 0) shape
    if masks.ndim != 3 or masks.shape[:2] != image.shape[:2]:
        raise ImageLoadError(f"{where}: load_mask returned masks of shape {masks.shape}, expected "
                             f"{image.shape[:2] + ('N',)} like the image")
    if len(class_ids) != masks.shape[2]:
        raise ImageLoadError(f"{where}: load_mask returned {masks.shape[2]} masks but {len(class_ids)} class ids")
    return image, masks.astype(bool), class_ids.astype(np.int32)


def active_class_ids_for(dataset, config, image_id):
    """(NUM_CLASSES,) int32: 1 for the classes of the image's source (dataset.source_class_ids)."""
    source = dataset.image_info[image_id]["source"]
    ids = np.asarray(dataset.source_class_ids[source], dtype=np.int64)
    if ids.size and ids.max() >= config.NUM_CLASSES:
        raise ValueError(f"dataset has class id {int(ids.max())} but config.NUM_CLASSES = {config.NUM_CLASSES}; "
                         "set NUM_CLASSES to dataset.num_classes")
    active = np.zeros(config.NUM_CLASSES, dtype=np.int32)
    active[ids] = 1
    return active


def load_image_gt(dataset, config, image_id, augmentation=None, rng=None, use_mini_mask=None):
    """Load, augment and resize one image with its instances.

    Returns (image, image_meta, class_ids, bbox, mask):
      image      (H, W, 3) uint8, resized per config.IMAGE_RESIZE_MODE
      image_meta (IMAGE_META_SIZE,) float32 (mrcnn.meta layout); its "original" shape is the
                 shape of the image that was resized, i.e. after augmentation
      class_ids  (N,) int32, negative for crowd regions
      bbox       (N, 4) int32 pixel boxes of the resized masks
      mask       (MINI_MASK_SHAPE + (N,)) bool with mini masks, else (H, W, N) bool; use_mini_mask
                 says which (None: config.USE_MINI_MASK)
    Augmentation (mrcnn.augment.apply_augmentation) runs before resizing. Instances whose
    mask is empty after augmentation and resizing are dropped. `rng` (numpy Generator)
    drives augmentation and the random crop of "crop" mode, for reproducible runs.
    """
    image, masks, class_ids = _load_raw(dataset, image_id)
    if augmentation is not None:
        image, masks = apply_augmentation(augmentation, image, masks, rng=rng)
    original_shape = image.shape
    image, window, scale, padding, crop = utils.resize_image(
        image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM, min_scale=config.IMAGE_MIN_SCALE,
        mode=config.IMAGE_RESIZE_MODE, rng=rng)
    masks = utils.resize_mask(masks, scale, padding, crop)

    present = masks.any(axis=(0, 1))
    masks = masks[:, :, present]
    class_ids = class_ids[present]
    bbox = utils.extract_bboxes(masks)
    if config.USE_MINI_MASK if use_mini_mask is None else use_mini_mask:
        masks = utils.minimize_mask(bbox, masks, config.MINI_MASK_SHAPE)

    image_meta = meta.compose_image_meta(image_id, original_shape, image.shape, window, scale,
                                         active_class_ids_for(dataset, config, image_id))
    return image, image_meta, class_ids, bbox, masks


# -- RPN targets --------------------------------------------------------------------------

class _AnchorGrid:
    """Where the anchors of each pyramid level sit, so a gt box only meets anchors near it.

    generate_pyramid_anchors lays each level out as rows x columns x shapes (ratio, scale),
    so the anchors that can touch a box form a rectangular block of rows and columns. A box
    then costs time in proportion to its size, not to all ~260k anchors of a 1024 px image.
    """

    def __init__(self, anchors, cells_per_level, shapes_per_cell):
        self.anchors = anchors
        self.shapes_per_cell = shapes_per_cell
        self.levels = []
        offset = 0
        for rows, cols in cells_per_level:
            count = rows * cols * shapes_per_cell
            block = anchors[offset:offset + count].reshape(rows, cols, shapes_per_cell, 4)
            shapes = block[0, 0]
            areas = (shapes[:, 2] - shapes[:, 0]) * (shapes[:, 3] - shapes[:, 1])
            self.levels.append({
                "offset": offset, "rows": rows, "cols": cols, "block": block,
                "centre_y": (block[:, 0, 0, 0] + block[:, 0, 0, 2]) / 2,
                "centre_x": (block[0, :, 0, 1] + block[0, :, 0, 3]) / 2,
                "half_h": float(np.max(shapes[:, 2] - shapes[:, 0])) / 2,
                "half_w": float(np.max(shapes[:, 3] - shapes[:, 1])) / 2,
                "min_area": float(areas.min()), "max_area": float(areas.max()),
            })
            offset += count
        if offset != len(anchors):
            raise AssertionError(f"anchor layout covers {offset} of {len(anchors)} anchors")

    @staticmethod
    def iou_bound(level, box_area):
        """An upper bound of the IoU of any anchor of `level` with a box of that area.

        IoU <= min(a, b) / max(a, b) for areas a, b; slightly inflated against rounding.
        """
        if box_area <= 0:
            return 0.0
        if box_area >= level["max_area"]:
            ratio = level["max_area"] / box_area
        elif box_area <= level["min_area"]:
            ratio = box_area / level["min_area"]
        else:
            ratio = 1.0
        return min(1.0, ratio * (1 + 1e-9) + 1e-12)

    def block_near(self, level, box):
        """(row start, col start, anchors view (r, c, K, 4)) of the cells whose anchors can touch
        `box`; every other anchor of the level has zero intersection with it (a one-pixel margin
        keeps rounding on the safe side). None when there is no such cell."""
        y1, x1, y2, x2 = box
        r0, r1 = np.searchsorted(level["centre_y"], [y1 - level["half_h"] - 1, y2 + level["half_h"] + 1])
        c0, c1 = np.searchsorted(level["centre_x"], [x1 - level["half_w"] - 1, x2 + level["half_w"] + 1])
        if r1 <= r0 or c1 <= c0:
            return None
        return r0, c0, level["block"][r0:r1, c0:c1]


# id(anchor array) -> its _AnchorGrid, for the arrays get_anchors hands out. Weak values: a grid
# evicted from the cache below disappears here too, and `grid.anchors is anchors` guards reuse of ids.
_GRIDS = weakref.WeakValueDictionary()


@functools.lru_cache(maxsize=16)
def _cached_grid(scales, ratios, shapes, strides, anchor_stride):
    anchors = utils.generate_pyramid_anchors(scales, ratios, np.array(shapes), strides, anchor_stride)
    anchors.setflags(write=False)
    cells = [(len(range(0, rows, anchor_stride)), len(range(0, cols, anchor_stride))) for rows, cols in shapes]
    grid = _AnchorGrid(anchors, cells, len(ratios))
    _GRIDS[id(anchors)] = grid
    return grid


def get_anchors(config, image_shape):
    """Pixel anchors (A, 4) for an image of `image_shape`, level by level (cached per shape).

    The array is read-only because it is shared between callers; build_rpn_targets
    recognises it and only examines the anchors near each gt box.
    """
    shapes = meta.compute_backbone_shapes(config, image_shape)
    grid = _cached_grid(tuple(float(s) for s in config.RPN_ANCHOR_SCALES),
                        tuple(float(r) for r in config.RPN_ANCHOR_RATIOS),
                        tuple(tuple(int(v) for v in row) for row in shapes),
                        tuple(int(s) for s in config.BACKBONE_STRIDES), int(config.RPN_ANCHOR_STRIDE))
    return grid.anchors


def _grid_of(anchors):
    grid = _GRIDS.get(id(anchors))
    return grid if grid is not None and grid.anchors is anchors else None


def _iou_block(anchor_block, box):
    """IoU of anchors (..., 4) with one box, by utils.compute_overlaps' float64 formula."""
    y1, x1, y2, x2 = (anchor_block[..., k] for k in range(4))
    inter_h = np.maximum(np.minimum(y2, box[2]) - np.maximum(y1, box[0]), 0)
    inter_w = np.maximum(np.minimum(x2, box[3]) - np.maximum(x1, box[1]), 0)
    intersection = inter_h * inter_w
    union = (y2 - y1) * (x2 - x1) + (box[2] - box[0]) * (box[3] - box[1]) - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def _overlap_summary(anchors, boxes, ignore_below=0.0):
    """(best IoU of each anchor over `boxes` (A,), for each box the anchors at its best IoU).

    A box's winners are all anchors tied at its highest IoU (none when that IoU is 0). Loops
    over the (few) boxes, vectorised over the anchors, so memory stays O(anchors) and the
    values equal utils.compute_overlaps'. For anchor arrays from get_anchors only the blocks
    near each box are examined, and a pyramid level is passed over when its anchors cannot
    reach `ignore_below` nor the box's best IoU so far: the returned best IoU is then only
    exact where it is >= ignore_below (below it, it may be lower than the truth), which is
    all that thresholds at or above `ignore_below` need.
    """
    best_iou = np.zeros(len(anchors))
    winners = []
    grid = _grid_of(anchors)
    for box in np.asarray(boxes, dtype=np.float64):
        if grid is None:
            iou = _iou_block(anchors, box)
            np.maximum(best_iou, iou, out=best_iou)
            top = float(iou.max()) if len(iou) else 0.0
            winners.append(np.flatnonzero(iou == top) if top > 0 else np.zeros(0, dtype=np.int64))
            continue
        area = (box[2] - box[0]) * (box[3] - box[1])
        levels = sorted(grid.levels, key=lambda level: -grid.iou_bound(level, area))
        top, found = 0.0, []
        for level in levels:
            bound = grid.iou_bound(level, area)
            if bound < ignore_below and bound < top:
                break                      # levels are sorted by bound: the rest cannot matter
            near = grid.block_near(level, box)
            if near is None:
                continue
            r0, c0, block = near
            iou = _iou_block(block, box)
            count = level["rows"] * level["cols"] * grid.shapes_per_cell
            level_best = best_iou[level["offset"]:level["offset"] + count]
            view = level_best.reshape(level["rows"], level["cols"], -1)[r0:r0 + block.shape[0],
                                                                       c0:c0 + block.shape[1]]
            np.maximum(view, iou, out=view)             # a view: writes go into best_iou
            level_top = float(iou.max())
            if level_top > top:
                top, found = level_top, []
            if level_top == top and top > 0:
                rows, cols, shapes = np.nonzero(iou == top)
                found.append(level["offset"] + ((rows + r0) * level["cols"] + cols + c0)
                             * grid.shapes_per_cell + shapes)
        winners.append(np.concatenate(found) if found else np.zeros(0, dtype=np.int64))
    return best_iou, winners


def _as_anchor_array(anchors):
    """float64 (A, 4) anchors: the very same object when it already is one (keeps its grid)."""
    anchors = np.asarray(anchors, dtype=np.float64)
    if anchors.ndim != 2 or anchors.shape[1] != 4:
        raise ValueError(f"anchors must be an (A, 4) array, got shape {anchors.shape}")
    return anchors


def label_anchors(anchors, gt_class_ids, gt_boxes):
    """Per-anchor RPN labels before balancing: (A,) int32, 1 positive / -1 negative / 0 neutral.

    Rules (Faster R-CNN, as Mask R-CNN uses them):
      negative: best IoU with the gt boxes < 0.3, and IoU with every crowd box <= 0.001;
      positive: IoU >= 0.7 with some gt box, and for every gt box the anchor(s) with its
                highest IoU (even below 0.7; ties all count; not when that IoU is 0).
    Crowd boxes (negative class ids) never make positives.
    """
    anchors = _as_anchor_array(anchors)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    if len(gt_class_ids) != len(gt_boxes):
        raise ValueError(f"label_anchors: {len(gt_class_ids)} class ids but {len(gt_boxes)} boxes")
    crowd = gt_class_ids < 0
    not_near_crowd = np.ones(len(anchors), dtype=bool)
    if crowd.any():
        crowd_iou, _ = _overlap_summary(anchors, gt_boxes[crowd])
        not_near_crowd = crowd_iou <= CROWD_IOU_LIMIT
    best_iou, winners = _overlap_summary(anchors, gt_boxes[~crowd], ignore_below=NEGATIVE_IOU)

    match = np.zeros(len(anchors), dtype=np.int32)
    match[(best_iou < NEGATIVE_IOU) & not_near_crowd] = -1
    for best_anchors in winners:
        match[best_anchors] = 1
    match[best_iou >= POSITIVE_IOU] = 1
    return match


def build_rpn_targets(image_shape, anchors, gt_class_ids, gt_boxes, config, rng=None):
    """RPN training targets for one image.

    Returns (rpn_match (A,) int32, rpn_bbox (RPN_TRAIN_ANCHORS_PER_IMAGE, 4) float32):
    rpn_match is label_anchors' labels balanced to at most half RPN_TRAIN_ANCHORS_PER_IMAGE
    positives and negatives filling up the rest (random extras of either become neutral);
    rpn_bbox holds, for the positive anchors in anchor order, the deltas from the anchor to
    its best (highest IoU, first on ties) non-crowd gt box divided by RPN_BBOX_STD_DEV,
    zero padded. `image_shape` is kept for Matterport's signature; anchors are in its pixels.
    `rng` (numpy Generator) drives the balancing draws.
    """
    del image_shape
    rng = np.random.default_rng() if rng is None else rng
    anchors = _as_anchor_array(anchors)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    match = label_anchors(anchors, gt_class_ids, gt_boxes)
    budget = int(config.RPN_TRAIN_ANCHORS_PER_IMAGE)

    positives = np.flatnonzero(match == 1)
    extra = len(positives) - budget // 2
    if extra > 0:
        match[rng.choice(positives, extra, replace=False)] = 0
        positives = np.flatnonzero(match == 1)
    negatives = np.flatnonzero(match == -1)
    wanted = budget - len(positives)
    if len(negatives) > wanted:        # draw the few kept ones rather than the many dropped
        match[negatives] = 0
        match[rng.choice(negatives, wanted, replace=False)] = -1

    rpn_bbox = np.zeros((budget, 4), dtype=np.float32)
    if len(positives):
        targets = gt_boxes[gt_class_ids >= 0]
        best_gt = np.argmax(utils.compute_overlaps(anchors[positives], targets), axis=1)
        deltas = utils.box_refinement(anchors[positives], targets[best_gt])
        rpn_bbox[:len(positives)] = deltas / np.asarray(config.RPN_BBOX_STD_DEV, dtype=np.float32)
    return match, rpn_bbox


# -- training stream ----------------------------------------------------------------------

def _pad_rows(array, rows, axis=0):
    """Zero-pad `array` along `axis` to `rows` entries."""
    padding = [(0, 0)] * array.ndim
    padding[axis] = (0, rows - array.shape[axis])
    return np.pad(array, padding)


class _TrainingExampleLoader:
    """Turns an image index into one training example; shared by tf.data's loader threads.

    Images whose annotations hold no instance are skipped by trying the next image id in
    turn (they are remembered, so later epochs jump over them at once). An image whose
    instances all vanish after augmentation/cropping is skipped the same way, but only for
    that draw. Each skip is logged once per image; `skipped_image_ids` lists the images
    that have no instances at all.
    """

    def __init__(self, dataset, config, augmentation, seed):
        self.dataset = dataset
        self.config = config
        self.augmentation = augmentation
        self.seed = seed
        self.image_ids = np.asarray(dataset.image_ids)
        self.skipped_image_ids = set()
        self._lock = threading.Lock()

    def _rng(self, element):
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([int(self.seed) & 0xFFFFFFFF, int(element)])

    def __call__(self, element, position):
        rng = self._rng(element)
        count = len(self.image_ids)
        for attempt in range(count):
            image_id = int(self.image_ids[(int(position) + attempt) % count])
            if image_id in self.skipped_image_ids:
                continue
            example = self._example(image_id, rng)
            if example is not None:
                return example
        raise ImageLoadError(f"no image of the dataset ({count} images) has any instance to train on")

    def _example(self, image_id, rng):
        config = self.config
        try:
            image, image_meta, class_ids, boxes, masks = load_image_gt(
                self.dataset, config, image_id, augmentation=self.augmentation, rng=rng)
        except ImageLoadError:
            raise
        except Exception as err:
            raise ImageLoadError(f"{_reference(self.dataset, image_id)}: {type(err).__name__}: {err}") from None
        if not np.any(class_ids > 0):
            self._note_skip(image_id)
            return None
        if len(class_ids) > config.MAX_GT_INSTANCES:
            keep = np.sort(rng.choice(len(class_ids), config.MAX_GT_INSTANCES, replace=False))
            class_ids, boxes, masks = class_ids[keep], boxes[keep], masks[:, :, keep]
        anchors = get_anchors(config, image.shape)
        rpn_match, rpn_bbox = build_rpn_targets(image.shape, anchors, class_ids, boxes, config, rng=rng)
        limit = config.MAX_GT_INSTANCES
        return (meta.mold_image(image, config),
                image_meta.astype(np.float32),
                rpn_match[:, None].astype(np.int32),
                rpn_bbox.astype(np.float32),
                _pad_rows(class_ids.astype(np.int32), limit),
                _pad_rows(boxes.astype(np.float32), limit),
                _pad_rows(masks.astype(np.uint8), limit, axis=2))      # 0/1: see _output_signature

    def _note_skip(self, image_id):
        """Remember images with no instances at all; log every skipped image once."""
        _, raw_class_ids = self.dataset.load_mask(image_id)
        without_any = len(np.asarray(raw_class_ids).reshape(-1)) == 0 or not np.any(np.asarray(raw_class_ids) > 0)
        with self._lock:
            if without_any and image_id not in self.skipped_image_ids:
                self.skipped_image_ids.add(image_id)
                log.warning("Skipping %s in training: it has no instances.", _reference(self.dataset, image_id))
            elif not without_any:
                log.debug("Skipping %s for this draw: no instance left after augmentation/resizing.",
                          _reference(self.dataset, image_id))


def _output_signature(config, batch_size):
    """Static shapes (with the batch dimension) and dtypes of the training inputs."""
    mode = config.IMAGE_RESIZE_MODE
    if mode in ("square", "crop"):
        height, width = int(config.IMAGE_SHAPE[0]), int(config.IMAGE_SHAPE[1])
        anchor_count = len(get_anchors(config, (height, width, 3)))
    else:      # "none" / "pad64": the size follows each image
        height = width = anchor_count = None
    channels = int(config.IMAGE_CHANNEL_COUNT)
    limit = int(config.MAX_GT_INSTANCES)
    mask_hw = tuple(int(v) for v in config.MINI_MASK_SHAPE) if config.USE_MINI_MASK else (height, width)
    return {
        "input_image": ((batch_size, height, width, channels), tf.float32),
        "input_image_meta": ((batch_size, int(config.IMAGE_META_SIZE)), tf.float32),
        "input_rpn_match": ((batch_size, anchor_count, 1), tf.int32),
        "input_rpn_bbox": ((batch_size, int(config.RPN_TRAIN_ANCHORS_PER_IMAGE), 4), tf.float32),
        "input_gt_class_ids": ((batch_size, limit), tf.int32),
        "input_gt_boxes": ((batch_size, limit, 4), tf.float32),
        # 0/1 uint8, not bool: under a tf.distribute strategy Keras' fit() averages the first
        # batch's per-replica parts to learn the input shapes, and a bool tensor cannot be
        # added (AddN). The network's bool input casts it back.
        "input_gt_masks": ((batch_size,) + mask_hw + (limit,), tf.uint8),
    }


def _positions(count, shuffle, repeat, seed):
    """Image positions 0..count-1, epoch after epoch when `repeat`, each epoch in its own order when `shuffle`.

    With a seed, epoch e's order is a stateless shuffle keyed by (seed, e), so the stream is the
    same however many times the dataset is iterated. Why: a seeded Dataset.shuffle reshuffles at
    every new iterator from a state that earlier iterators moved on, and Keras' fit() under a
    tf.distribute strategy iterates the dataset once (to build the model) before it trains: the
    first step then saw another batch than on one device, and not always the same one.
    """
    positions = tf.data.Dataset.range(count)
    if shuffle and seed is None:
        positions = positions.shuffle(count, reshuffle_each_iteration=True)
    elif shuffle:
        key = tf.constant(int(seed) & 0xFFFFFFFF, tf.int64)
        epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
        return epochs.flat_map(lambda epoch: tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=tf.stack([key, epoch]))))
    return positions.repeat() if repeat else positions


def make_training_dataset(dataset, config, shuffle=True, augmentation=None, batch_size=None, seed=None,
                          repeat=True, num_parallel_calls=tf.data.AUTOTUNE):
    """A tf.data.Dataset of training batches: dicts keyed by the training model's input names.

    The batches are config.BATCH_SIZE images: the global batch, which a distribution strategy
    splits into IMAGES_PER_GPU per replica. input_gt_masks is 0/1 uint8 (see _output_signature).

    Pipeline: image positions 0..N-1 (reshuffled every epoch when `shuffle`, from `seed` and the epoch: _positions),
    repeated forever when `repeat`, loaded in parallel threads by load_image_gt +
    build_rpn_targets (behind tf.numpy_function), batched with drop_remainder=True and
    prefetched. Batches keep their order (deterministic map), and with a `seed` every random
    draw (augmentation, crops, RPN balancing, instance subsets) is derived from the seed and
    the example's running number, so two pipelines with the same seed yield the same data.

    Images with no instances are skipped (the next image id is used instead; see
    _TrainingExampleLoader); the loader is exposed as `.example_loader` on the returned
    dataset, whose `skipped_image_ids` lists them. More than MAX_GT_INSTANCES instances
    -> a random subset. An image that fails to load stops iteration with an error naming
    it (dataset.image_reference).
    """
    if not getattr(dataset, "num_images", 0):
        raise ValueError("make_training_dataset: the dataset has no images (did you call dataset.prepare()?)")
    batch_size = int(config.BATCH_SIZE if batch_size is None else batch_size)
    if batch_size < 1:
        raise ValueError(f"make_training_dataset: batch_size must be >= 1, got {batch_size}")
    if config.IMAGE_RESIZE_MODE in ("none", "pad64") and batch_size > 1:
        log.warning("IMAGE_RESIZE_MODE=%r gives images of different sizes; batches of %d only work if all "
                    "images resize to the same shape.", config.IMAGE_RESIZE_MODE, batch_size)
    loader = _TrainingExampleLoader(dataset, config, augmentation, seed)
    signature = _output_signature(config, batch_size)
    dtypes = [signature[name][1] for name in TRAINING_INPUT_NAMES]

    def load(element, position):
        outputs = tf.numpy_function(loader, [element, position], dtypes, stateful=True,
                                    name="load_training_example")
        return {name: tf.ensure_shape(tensor, signature[name][0][1:])
                for name, tensor in zip(TRAINING_INPUT_NAMES, outputs)}

    positions = _positions(dataset.num_images, shuffle, repeat, seed)
    pipeline = (positions.enumerate()
                .map(load, num_parallel_calls=num_parallel_calls, deterministic=True)
                .batch(batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))
    pipeline.example_loader = loader
    return pipeline


# -- inference ----------------------------------------------------------------------------

def make_inference_inputs(images, config):
    """Resize and mold a list of (H, W, 3) uint8 images for detect().

    Returns (molded_images (B, H', W', 3) float32, image_metas (B, IMAGE_META_SIZE) float32,
    windows (B, 4) int32). Images are resized as in training, except that "crop" mode (a
    random crop is for training only) scales like training but pads to multiples of 64
    instead of cropping. All images must come out the same shape (they form one batch).
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        raise ValueError("make_inference_inputs: pass a list of images, not a single (H, W, 3) image")
    if len(images) == 0:
        raise ValueError("make_inference_inputs: no images given")
    channels = int(config.IMAGE_CHANNEL_COUNT)
    mode = "pad64" if config.IMAGE_RESIZE_MODE == "crop" else config.IMAGE_RESIZE_MODE
    max_dim = None if config.IMAGE_RESIZE_MODE == "crop" else config.IMAGE_MAX_DIM
    molded, metas, windows = [], [], []
    for index, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != channels or 0 in image.shape:
            raise ValueError(f"make_inference_inputs: image {index} has shape {image.shape}, expected "
                             f"(H, W, {channels}) (convert grayscale or RGBA images to RGB first)")
        if image.dtype != np.uint8:
            raise ValueError(f"make_inference_inputs: image {index} has dtype {image.dtype}, expected uint8")
        resized, window, scale, _, _ = utils.resize_image(
            image, min_dim=config.IMAGE_MIN_DIM, max_dim=max_dim, min_scale=config.IMAGE_MIN_SCALE, mode=mode)
        molded.append(meta.mold_image(resized, config))
        metas.append(meta.compose_image_meta(0, image.shape, resized.shape, window, scale,
                                             np.zeros(config.NUM_CLASSES, dtype=np.int32)))   # as Matterport: unused in inference
        windows.append(window)
    shapes = sorted({m.shape for m in molded})
    if len(shapes) > 1:
        raise ValueError(f"make_inference_inputs: the images resize to different shapes {shapes}; "
                         "a batch needs one shape (use IMAGE_RESIZE_MODE 'square' or one image per batch)")
    return np.stack(molded), np.stack(metas).astype(np.float32), np.asarray(windows, dtype=np.int32)
