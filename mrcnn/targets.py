"""DetectionTargetLayer: sample training ROIs from the proposals and give each its targets.

For every image the layer picks TRAIN_ROIS_PER_IMAGE regions for the classifier and mask
heads and says what they should predict: the class, the box deltas to the matched ground
truth box (divided by BBOX_STD_DEV) and the ground-truth mask cropped to the region.

Sampling (per image; Matterport's rule unless said otherwise):
- padding rows (all-zero boxes) of proposals and ground truth are dropped;
- crowd boxes (negative class ids, COCO "iscrowd") never make positives, and a proposal that
  overlaps a crowd box by IoU > 0.001 is not used as a negative either;
- positives: IoU >= 0.5 with some ground-truth box; negatives: best IoU < 0.5;
- at most int(T * ROI_POSITIVE_RATIO) positives, picked at random; then negatives so that the
  positives make ROI_POSITIVE_RATIO of the sample: int(positives / ratio) - positives;
- an image with no positive at all (no ground truth, or proposals that all miss) gets
  T - int(T * ROI_POSITIVE_RATIO) negatives, the negative share of a full sample, so it still
  teaches "background" (Matterport would give it no ROI at all);
- fewer candidates than wanted simply gives fewer ROIs; the rest is zero padding.
Rows are positives first, then negatives, then zero padding. Negatives and padding have class
0, zero deltas and an all-zero mask.

Mask targets (MASK_TARGET_SAMPLING "pixel_centres"): the ground-truth mask's bilinear values on
a MASK_SHAPE grid running from the ROI's first pixel centre to its last, rounded to 0 or 1: the
grid ROIAlign pools the features on, and the one utils.unmold_mask pastes a predicted mask back
from, so a perfect prediction lands on the ground truth whether the gt masks are full or mini.
"resized" (Matterport's) samples a mini mask on its own grid from corner cell to corner cell,
which is not where those points lie in the image: a perfect prediction comes back shifted and
stretched by up to half a cell (tests/test_mrcnn_targets.py round-trips both).
"""
import keras
import numpy as np
import tensorflow as tf

from mrcnn.box_graph import box_refinement_graph, overlaps_graph, trim_zeros_graph
from mrcnn.config import MASK_GRIDS

POSITIVE_IOU = 0.5
CROWD_IOU = 0.001


def pixel_edges(boxes, height, width):
    """Normalised boxes (Matterport's convention, utils.norm_boxes) -> pixel edges, ends exclusive."""
    scale = tf.stack([height - 1.0, width - 1.0, height - 1.0, width - 1.0])
    return boxes * scale + tf.constant([0.0, 0.0, 1.0, 1.0])


def corner_crop_boxes(rois, frames, grid_shape, image_shape):
    """tf.image.crop_and_resize boxes that sample each roi from its first to its last pixel centre.

    rois, frames: (N, 4) normalised boxes in the image (image_shape (H, W)); frames[n] is the
    region the sampled grid (grid_shape (h, w) pixels) spans: the whole image for full masks
    (the result is then the rois themselves), the ground-truth box for mini masks. Returns
    (N, 4) boxes normalised to that grid.
    """
    height, width = float(image_shape[0]), float(image_shape[1])
    roi_edges = pixel_edges(rois, height, width)
    frame_edges = pixel_edges(frames, height, width)
    first, last = roi_edges[:, :2] + 0.5, roi_edges[:, 2:] - 0.5
    grid = tf.cast(grid_shape, tf.float32)
    frame_size = frame_edges[:, 2:] - frame_edges[:, :2]

    def to_grid(points):       # pixel-edge coordinates -> normalised sample positions on the grid
        return ((points - frame_edges[:, :2]) * grid / frame_size - 0.5) / tf.maximum(grid - 1.0, 1.0)

    return tf.concat([to_grid(first), to_grid(last)], axis=1)


class DetectionTargetLayer(keras.layers.Layer):
    """Inputs [proposals (B, N, 4), gt_class_ids (B, G), gt_boxes (B, G, 4), gt_masks (B, h, w, G)].

    Boxes are normalised. gt_masks are mini masks in their box's frame when USE_MINI_MASK,
    else full-image masks. Outputs, with T = TRAIN_ROIS_PER_IMAGE:
    rois (B, T, 4) float32, target_class_ids (B, T) int32, target_bbox (B, T, 4) float32,
    target_mask (B, T, MASK_SHAPE[0], MASK_SHAPE[1]) float32 in {0, 1}.
    """

    def __init__(self, train_rois_per_image, roi_positive_ratio, bbox_std_dev, mask_shape, use_mini_mask,
                 mask_target_sampling, image_shape, **kwargs):
        # IoU, sampling and box/mask targets in float32 whatever the global dtype policy (mixed
        # precision): targets rounded to float16 would teach the heads float16's rounding.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

        # Data-dependent shapes (NMS, sampling) cannot be XLA-compiled: keep Keras' jit off.
        self.supports_jit = False
        self.train_rois_per_image = int(train_rois_per_image)
        self.roi_positive_ratio = float(roi_positive_ratio)
        self.bbox_std_dev = [float(v) for v in np.asarray(bbox_std_dev).ravel()]
        self.mask_shape = [int(v) for v in mask_shape]
        self.use_mini_mask = bool(use_mini_mask)
        self.mask_target_sampling = str(mask_target_sampling)
        if self.mask_target_sampling not in MASK_GRIDS:
            raise ValueError(f"DetectionTargetLayer: mask_target_sampling must be one of {MASK_GRIDS}, "
                             f"not {self.mask_target_sampling!r}")
        self.image_shape = [int(v) for v in image_shape[:2]]
        self.positive_quota = int(self.train_rois_per_image * self.roi_positive_ratio)

    def get_config(self):
        base = super().get_config()
        base.update(train_rois_per_image=self.train_rois_per_image,
                    roi_positive_ratio=self.roi_positive_ratio, bbox_std_dev=self.bbox_std_dev,
                    mask_shape=self.mask_shape, use_mini_mask=self.use_mini_mask,
                    mask_target_sampling=self.mask_target_sampling, image_shape=self.image_shape)
        return base

    # -- per image ------------------------------------------------------------------------
    def _negative_count(self, positive_count):
        """How many negatives to sample next to `positive_count` positives."""
        ratio = self.roi_positive_ratio
        balanced = tf.cast(tf.floor(tf.cast(positive_count, tf.float64) / ratio + 1e-6), tf.int32) - positive_count
        wanted = tf.where(positive_count > 0, balanced, self.train_rois_per_image - self.positive_quota)
        return tf.minimum(wanted, self.train_rois_per_image - positive_count)

    def _mask_targets(self, rois, assigned_boxes, assigned_masks):
        """Each assigned gt mask (P, h, w) sampled on its roi's MASK_SHAPE grid, rounded to {0, 1}."""
        if not self.use_mini_mask:
            boxes = rois            # the full mask spans the image: the roi is the grid already
        elif self.mask_target_sampling == "pixel_centres":
            boxes = corner_crop_boxes(rois, assigned_boxes, tf.shape(assigned_masks)[1:3], self.image_shape)
        else:
            # Matterport's: the roi's corners in the unit frame of the gt box the mini mask spans.
            gy1, gx1, gy2, gx2 = tf.unstack(assigned_boxes, axis=1)
            y1, x1, y2, x2 = tf.unstack(rois, axis=1)
            gt_height, gt_width = gy2 - gy1, gx2 - gx1
            boxes = tf.stack([(y1 - gy1) / gt_height, (x1 - gx1) / gt_width,
                              (y2 - gy1) / gt_height, (x2 - gx1) / gt_width], axis=1)
        crops = tf.image.crop_and_resize(assigned_masks[..., None], boxes,
                                         tf.range(tf.shape(rois)[0]), self.mask_shape)
        return tf.round(crops[..., 0])

    def _one_image(self, args):
        proposals, gt_class_ids, gt_boxes, gt_masks = args
        total = self.train_rois_per_image
        proposals, _ = trim_zeros_graph(proposals, name="trim_proposals")
        gt_boxes, gt_present = trim_zeros_graph(gt_boxes, name="trim_gt_boxes")
        gt_class_ids = tf.boolean_mask(gt_class_ids, gt_present)
        gt_masks = tf.boolean_mask(gt_masks, gt_present, axis=2)

        crowd_boxes = tf.boolean_mask(gt_boxes, gt_class_ids < 0)
        is_object = gt_class_ids > 0
        gt_class_ids = tf.boolean_mask(gt_class_ids, is_object)
        gt_boxes = tf.boolean_mask(gt_boxes, is_object)
        gt_masks = tf.transpose(tf.boolean_mask(gt_masks, is_object, axis=2), [2, 0, 1])   # (G, h, w)

        # A zero column stands for "no box" so the maxima exist with no gt / no crowd at all.
        no_box = tf.zeros([tf.shape(proposals)[0], 1], tf.float32)
        overlaps = tf.concat([overlaps_graph(proposals, gt_boxes), no_box], axis=1)
        best_iou = tf.reduce_max(overlaps, axis=1)
        crowd_iou = tf.reduce_max(tf.concat([overlaps_graph(proposals, crowd_boxes), no_box], axis=1), axis=1)

        positive_ids = tf.where(best_iou >= POSITIVE_IOU)[:, 0]
        negative_ids = tf.where(tf.logical_and(best_iou < POSITIVE_IOU, crowd_iou <= CROWD_IOU))[:, 0]
        positive_ids = tf.random.shuffle(positive_ids)[:self.positive_quota]
        positive_count = tf.shape(positive_ids)[0]
        negative_ids = tf.random.shuffle(negative_ids)[:self._negative_count(positive_count)]

        positive_rois = tf.gather(proposals, positive_ids)
        negative_rois = tf.gather(proposals, negative_ids)
        # Positives have IoU >= 0.5 with a real box, so the argmax never picks the "no box" column.
        assigned = tf.argmax(tf.gather(overlaps, positive_ids), axis=1, output_type=tf.int32)
        assigned_boxes = tf.gather(gt_boxes, assigned)
        class_ids = tf.gather(gt_class_ids, assigned)
        deltas = box_refinement_graph(positive_rois, assigned_boxes) / tf.constant(self.bbox_std_dev, tf.float32)
        masks = self._mask_targets(positive_rois, assigned_boxes, tf.gather(gt_masks, assigned))

        rois = tf.concat([positive_rois, negative_rois], axis=0)
        roi_padding = total - tf.shape(rois)[0]
        target_padding = total - positive_count
        return (tf.pad(rois, [[0, roi_padding], [0, 0]]),
                tf.pad(class_ids, [[0, target_padding]]),
                tf.pad(deltas, [[0, target_padding], [0, 0]]),
                tf.pad(masks, [[0, target_padding], [0, 0], [0, 0]]))

    def call(self, inputs):
        proposals, gt_class_ids, gt_boxes, gt_masks = inputs
        total = self.train_rois_per_image
        signature = (tf.TensorSpec((total, 4), tf.float32), tf.TensorSpec((total,), tf.int32),
                     tf.TensorSpec((total, 4), tf.float32),
                     tf.TensorSpec((total, *self.mask_shape), tf.float32))
        outputs = tf.map_fn(self._one_image,
                            (tf.cast(proposals, tf.float32), tf.cast(gt_class_ids, tf.int32),
                             tf.cast(gt_boxes, tf.float32), tf.cast(gt_masks, tf.float32)),
                            fn_output_signature=signature)
        # Sampled ROIs and their targets are constants for the heads' losses.
        return [tf.stop_gradient(tf.ensure_shape(tensor, (None, *spec.shape)))
                for tensor, spec in zip(outputs, signature)]

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        total = self.train_rois_per_image
        return [(batch, total, 4), (batch, total), (batch, total, 4), (batch, total, *self.mask_shape)]

    def compute_output_spec(self, inputs):
        shapes = self.compute_output_shape([tensor.shape for tensor in inputs])
        dtypes = ["float32", "int32", "float32", "float32"]
        return [keras.KerasTensor(shape, dtype=dtype) for shape, dtype in zip(shapes, dtypes)]
