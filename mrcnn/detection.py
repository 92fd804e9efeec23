"""DetectionLayer: turn the classifier head's per-ROI outputs into final detections.

Per image, every (ROI, foreground class) pair is a candidate, scored by that class's probability
and boxed by the ROI refined with that class's predicted deltas (times BBOX_STD_DEV), clipped to
the image window (the part of the padded input that holds the picture). Zero-padding ROIs and
candidates scoring below DETECTION_MIN_CONFIDENCE are dropped, non-maximum suppression at
DETECTION_NMS_THRESHOLD runs separately for every class, and the best DETECTION_MAX_INSTANCES by
score are kept. This is the per-class rule of Faster R-CNN and the Mask R-CNN paper's evaluation.

Matterport kept only each ROI's most likely class and dropped ROIs whose best class was the
background. With DETECTION_MIN_CONFIDENCE >= 0.5 (Matterport's default is 0.7) the two rules give
the same detections: probabilities sum to 1, so a class above 0.5 is the ROI's most likely one.
Below 0.5 they differ: an ROI may give several classes, and a young model that still calls
everything background gives its best foreground guesses instead of nothing, which is what COCO
AP ranks (docs/benchmarks.md has the measurements; torchvision does the same).

Output rows are [y1, x1, y2, x2, class_id, score], boxes normalised to the resized (padded)
image, best first, zero rows as padding -- Matterport's layout. unmold_detections (numpy) turns
one image's rows and masks into boxes and masks of the original image.
"""
import keras
import numpy as np
import tensorflow as tf

from mrcnn import utils
from mrcnn.box_graph import apply_box_deltas_graph, clip_boxes_graph


def normalised_windows_graph(image_meta):
    """The picture windows of a batch of meta rows (B, META) as normalised boxes (B, 4).

    The window is stored in pixels of the resized image (y2/x2 exclusive); it is normalised like
    utils.norm_boxes with that image's own resized shape.
    """
    image_meta = tf.cast(image_meta, tf.float32)
    window = image_meta[:, 7:11]
    height, width = image_meta[:, 4], image_meta[:, 5]
    scale = tf.stack([height - 1.0, width - 1.0, height - 1.0, width - 1.0], axis=1)
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return (window - shift) / scale


class DetectionLayer(keras.layers.Layer):
    """Inputs [rois (B, N, 4), mrcnn_class (B, N, C) probabilities, mrcnn_bbox (B, N, C, 4), image_meta (B, META)].

    Output: detections (B, DETECTION_MAX_INSTANCES, 6) float32 [y1, x1, y2, x2, class_id, score].
    """

    def __init__(self, max_instances, min_confidence, nms_threshold, bbox_std_dev, **kwargs):
        # Box decoding, scores and NMS in float32 whatever the global dtype policy (mixed precision):
        # the detections are the network's result, and float16 would round boxes and tie scores.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

        # Data-dependent shapes (NMS, sampling) cannot be XLA-compiled: keep Keras' jit off.
        self.supports_jit = False
        self.max_instances = int(max_instances)
        self.min_confidence = float(min_confidence)
        self.nms_threshold = float(nms_threshold)
        self.bbox_std_dev = [float(v) for v in np.asarray(bbox_std_dev).ravel()]

    def get_config(self):
        base = super().get_config()
        base.update(max_instances=self.max_instances, min_confidence=self.min_confidence,
                    nms_threshold=self.nms_threshold, bbox_std_dev=self.bbox_std_dev)
        return base

    def call(self, inputs):
        rois, probs, deltas, image_meta = inputs
        rois = tf.cast(rois, tf.float32)
        probs = tf.cast(probs, tf.float32)
        deltas = tf.cast(deltas, tf.float32)

        foreground = probs[:, :, 1:]                                                # (B, N, C-1)
        class_deltas = deltas[:, :, 1:, :] * tf.constant(self.bbox_std_dev, tf.float32)
        boxes = apply_box_deltas_graph(rois[:, :, None, :], class_deltas)         # (B, N, C-1, 4)
        boxes = clip_boxes_graph(boxes, normalised_windows_graph(image_meta)[:, None, None, :])

        is_roi = tf.reduce_any(tf.not_equal(rois, 0.0), axis=2)[..., None]          # (B, N, 1)
        keep = is_roi & (foreground >= self.min_confidence) & (foreground > 0.0)
        # Each class's candidates have their own boxes: the batched NMS suppresses within a class
        # only, then ranks all classes together (a dropped candidate scores 0, below the threshold).
        nms_boxes, nms_scores, nms_classes, valid = tf.image.combined_non_max_suppression(
            boxes, tf.where(keep, foreground, 0.0),
            max_output_size_per_class=self.max_instances, max_total_size=self.max_instances,
            iou_threshold=self.nms_threshold, score_threshold=0.0, pad_per_class=False, clip_boxes=False)

        is_detection = tf.range(self.max_instances)[None, :] < valid[:, None]           # (B, K)
        rows = tf.concat([nms_boxes, (nms_classes + 1.0)[..., None], nms_scores[..., None]], axis=2)
        rows = tf.where(is_detection[..., None], rows, 0.0)
        return tf.ensure_shape(rows, (None, self.max_instances, 6))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.max_instances, 6)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs[0].shape[0], self.max_instances, 6), dtype="float32")


def unmold_detections(detections, mrcnn_mask, original_image_shape, image_shape, window, mask_grid="resized"):
    """One image's detection rows and masks -> boxes, class ids, scores, full-size masks (numpy).

    detections (K, 6) and mrcnn_mask (K, h, w, C) are DetectionLayer's and the mask head's rows of
    one image; `window` is where the picture lies in the molded image of `image_shape`. Boxes come
    back in pixels of the original image, masks (H, W, N) bool at its size. mask_grid
    (Config.MASK_TARGET_SAMPLING): "resized" pastes as Matterport's (rounded boxes), "pixel_centres"
    at the unrounded box, the grid the mask targets were sampled on.
    """
    keep = np.where(detections[:, 4] > 0)[0]
    detections, count = detections[keep], len(keep)
    boxes = detections[:, :4]
    class_ids = detections[:, 4].astype(np.int32)
    scores = detections[:, 5].astype(np.float32)
    masks = mrcnn_mask[keep, :, :, class_ids] if count else np.zeros((0,) + mrcnn_mask.shape[1:3])

    if mask_grid == "resized":
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
