"""ROI Align over a feature pyramid: one fixed-size feature patch per box.

The box heads (classifier and mask) need a (pool_h, pool_w, C) patch for every region of
interest. Following the FPN paper (Lin et al. 2017, eq. 1), a box of w x h image pixels is
read from pyramid level

    k = k0 + log2(sqrt(w * h) / 224),   k0 = 4,   clipped to [2, 5]

(the paper takes the floor of k; Matterport rounds it to the nearest level, and so do we)

so small boxes come from the fine P2 map and large ones from the coarse P5 map. Each box is
then cropped from its level with bilinear sampling (`tf.image.crop_and_resize`), as in the
Mask R-CNN paper (He et al. 2017) without its extra sampling points, like Matterport.

Padding rows (boxes that are all zero) are not cropped: their patches are exactly zero.

Where the samples fall (`alignment`). A normalised box runs from its first pixel's centre to its
last's (utils.norm_boxes: pixel index / (image side - 1)). "normalised_box" (Matterport's) hands them to
crop_and_resize on each level's map as they are, so pixel p is read at cell p (h - 1) / (H - 1)
of an h-cell map, where the cell whose centre is pixel p's lies at (p + 0.5) / stride - 0.5: the
reading point drifts with the box's place in the image, from +0.5 cell at the top-left edge
through 0 at the middle to -0.5 cell at the bottom-right (on P2 up to 2 px, on P5 up to 16 px).
"pixel_centres" converts each box to its level's cells first, so the features are read at the very
image points the mask targets (targets.py) and utils.unmold_mask use: the grid from the box's
first pixel centre to its last. Detectron2's `aligned=True` fixes the same half-pixel mismatch.
"""
import keras
import tensorflow as tf

from mrcnn.config import ROI_ALIGN_READS
from mrcnn.meta import parse_image_meta_graph

PYRAMID_LEVELS = (2, 3, 4, 5)     # P2..P5; P6 is used by the RPN only
CANONICAL_LEVEL = 4               # k0 in the FPN paper
CANONICAL_SIZE = 224.0            # an ImageNet-sized box (224 x 224 pixels) maps to k0


def roi_pyramid_levels(boxes, image_shape):
    """The pyramid level (int32 in 2..5) that each box is read from.

    boxes: (B, N, 4) normalised [y1, x1, y2, x2]; image_shape: (B, 2+) pixels per image
    (height, width first). Box sides in pixels are approximated as normalised side x image
    side, so sqrt(h * w) in pixels = sqrt(h_norm * w_norm) * sqrt(image area).
    Degenerate boxes (zero or negative area) go to the finest level, 2.
    """
    boxes = tf.convert_to_tensor(boxes, tf.float32)
    image_shape = tf.cast(image_shape, tf.float32)
    y1, x1, y2, x2 = tf.unstack(boxes, 4, axis=-1)
    area_normalised = tf.maximum((y2 - y1) * (x2 - x1), 1e-12)
    image_area = image_shape[:, 0:1] * image_shape[:, 1:2]            # (B, 1)
    side_pixels = tf.sqrt(area_normalised) * tf.sqrt(image_area)
    offset = tf.math.log(side_pixels / CANONICAL_SIZE) / tf.math.log(2.0)
    level = tf.clip_by_value(CANONICAL_LEVEL + tf.round(offset), float(PYRAMID_LEVELS[0]),
                             float(PYRAMID_LEVELS[-1]))
    return tf.cast(level, tf.int32)


def boxes_on_feature_map(boxes, image_shape, feature_shape):
    """Normalised image boxes (K, 4) -> crop_and_resize boxes on a feature map that sample the same
    image points ("pixel_centres", module docstring).

    image_shape (K, 2+) each row's image (height, width) in pixels; feature_shape (2,) the map's.
    Pixel index p (the centre of pixel p) is cell (p + 0.5) / stride - 0.5 of the map, stride =
    image side / map side; crop_and_resize reads normalised coordinate c at cell c (side - 1).
    """
    image_hw = tf.cast(image_shape[:, :2], tf.float32)
    feature_hw = tf.cast(feature_shape, tf.float32)[None]
    pixels = boxes * tf.tile(image_hw - 1.0, [1, 2])
    cells = (pixels + 0.5) / tf.tile(image_hw / feature_hw, [1, 2]) - 0.5
    return cells / tf.tile(tf.maximum(feature_hw - 1.0, 1.0), [1, 2])


def crop_rows_by_level(boxes, image_ids, levels, feature_maps, pool_shape, image_shape=None):
    """Crop row k's box from image image_ids[k] of the map of levels[k]: (K, pool_h, pool_w, C).

    boxes (K, 4) normalised; image_ids (K,) int32; levels (K,) int32 in PYRAMID_LEVELS, or 0 for
    a row that is not cropped (its patch is exactly zero). Each level's rows are cropped in one
    call and scattered back to their own row, so row order is kept. With image_shape (K, 2+), each
    row's image size, the boxes are first put on each map's cells ("pixel_centres",
    boxes_on_feature_map); without it they are read as they are ("normalised_box").
    """
    boxes = tf.stop_gradient(boxes)
    image_ids = tf.stop_gradient(tf.cast(image_ids, tf.int32))
    channels = tf.shape(feature_maps[0])[-1]
    output_shape = tf.concat([tf.shape(boxes)[:1], tf.constant(pool_shape, tf.int32), [channels]], axis=0)
    all_rows, all_crops = [], []
    for level, feature_map in zip(PYRAMID_LEVELS, feature_maps):
        rows = tf.where(tf.equal(levels, level))                       # (K_level, 1)
        level_boxes = tf.gather_nd(boxes, rows)
        if image_shape is not None:
            level_boxes = boxes_on_feature_map(level_boxes, tf.gather_nd(image_shape, rows),
                                               tf.shape(feature_map)[1:3])
        crops = tf.image.crop_and_resize(feature_map, level_boxes, tf.gather_nd(image_ids, rows),
                                         pool_shape, method="bilinear")
        all_rows.append(tf.cast(rows, tf.int32))
        all_crops.append(tf.cast(crops, feature_maps[0].dtype))
    # Every cropped row is in exactly one level, so scattering puts each crop back at its own
    # row and leaves level-0 rows zero.
    return tf.scatter_nd(tf.concat(all_rows, axis=0), tf.concat(all_crops, axis=0), output_shape)


@keras.saving.register_keras_serializable(package="mrcnn")
class PyramidROIAlign(keras.layers.Layer):
    """Crop every box from its FPN level and resize it to `pool_shape`.

    call([boxes, image_meta, P2, P3, P4, P5]):
        boxes       (B, N, 4) float32, normalised [y1, x1, y2, x2]; all-zero rows are padding
        image_meta  (B, IMAGE_META_SIZE), see mrcnn.meta (the resized image shape is used)
        P2..P5      (B, H_k, W_k, C) feature maps
    returns (B, N, pool_h, pool_w, C), row n being box n of the input (zeros for padding).

    No gradient flows into the boxes (they are proposals, not parameters), only into the
    feature maps, as in Matterport.
    """

    def __init__(self, pool_shape, alignment="normalised_box", **kwargs):
        super().__init__(**kwargs)
        # Under mixed precision Keras would cast every float input to float16, the boxes and the
        # image meta too (a box edge near 1 then moves in steps of 1/2048); the inputs keep their
        # own dtypes instead: boxes and levels are computed in float32, and the patches come out
        # in the layer's compute dtype (float16 under mixed precision, like the feature maps).
        self.autocast = False
        self.pool_shape = tuple(int(side) for side in pool_shape)
        if len(self.pool_shape) != 2 or min(self.pool_shape) < 1:
            raise ValueError(f"pool_shape must be two positive sizes, got {pool_shape!r}")
        if alignment not in ROI_ALIGN_READS:
            raise ValueError(f"alignment must be one of {ROI_ALIGN_READS}, not {alignment!r}")
        self.alignment = alignment

    def _row_image_shapes(self, image_shape):
        """What crop_rows_by_level needs for this layer's alignment: the rows' image shapes or None."""
        return image_shape if self.alignment == "pixel_centres" else None

    def call(self, inputs):
        boxes, image_meta = inputs[0], inputs[1]
        feature_maps = self._check_maps(inputs[2:])
        boxes = tf.stop_gradient(tf.cast(boxes, tf.float32))
        image_shape = parse_image_meta_graph(image_meta)["image_shape"]
        levels = roi_pyramid_levels(boxes, image_shape)
        is_padding = tf.reduce_all(tf.equal(boxes, 0.0), axis=-1)
        levels = tf.where(is_padding, tf.zeros_like(levels), levels)   # level 0: not cropped

        batch_rows = tf.shape(boxes)[:2]
        image_ids = tf.broadcast_to(tf.range(batch_rows[0])[:, None], batch_rows)
        row_shapes = tf.gather(image_shape, tf.reshape(image_ids, [-1]))
        crops = crop_rows_by_level(tf.reshape(boxes, [-1, 4]), tf.reshape(image_ids, [-1]),
                                   tf.reshape(levels, [-1]), feature_maps, self.pool_shape,
                                   self._row_image_shapes(row_shapes))
        crops = tf.cast(crops, self.compute_dtype)
        return tf.reshape(crops, tf.concat([batch_rows, tf.shape(crops)[1:]], axis=0))

    def _check_maps(self, feature_maps):
        if len(feature_maps) != len(PYRAMID_LEVELS):
            raise ValueError(f"{type(self).__name__} needs the {len(PYRAMID_LEVELS)} maps P2..P5, "
                             f"got {len(feature_maps)}")
        return feature_maps

    def compute_output_shape(self, input_shape):
        boxes_shape, feature_shape = input_shape[0], input_shape[2]
        return (boxes_shape[0], boxes_shape[1]) + self.pool_shape + (feature_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config["pool_shape"] = list(self.pool_shape)
        config["alignment"] = self.alignment
        return config


@keras.saving.register_keras_serializable(package="mrcnn")
class PackedPyramidROIAlign(PyramidROIAlign):
    """PyramidROIAlign for rows of several images packed along one axis (the positive ROIs in training).

    call([boxes, image_ids, image_meta, P2, P3, P4, P5]):
        boxes       (1, K, 4) normalised [y1, x1, y2, x2]; all-zero rows are padding
        image_ids   (1, K) int, the image of the batch that row k belongs to
        image_meta  (B, IMAGE_META_SIZE), one row per image of the batch
    returns (1, K, pool_h, pool_w, C). The heads then run on K rows only, instead of on every
    image's padded rows.
    """

    def call(self, inputs):
        boxes, image_ids, image_meta = inputs[0], inputs[1], inputs[2]
        feature_maps = self._check_maps(inputs[3:])
        boxes = tf.stop_gradient(tf.reshape(tf.cast(boxes, tf.float32), [-1, 4]))
        image_ids = tf.reshape(tf.cast(image_ids, tf.int32), [-1])
        image_shape = tf.gather(parse_image_meta_graph(image_meta)["image_shape"], image_ids)   # (K, 3)
        levels = roi_pyramid_levels(boxes[:, None], image_shape)[:, 0]
        is_padding = tf.reduce_all(tf.equal(boxes, 0.0), axis=-1)
        levels = tf.where(is_padding, tf.zeros_like(levels), levels)
        crops = crop_rows_by_level(boxes, image_ids, levels, feature_maps, self.pool_shape,
                                   self._row_image_shapes(image_shape))
        return tf.cast(crops, self.compute_dtype)[None]

    def compute_output_shape(self, input_shape):
        boxes_shape, feature_shape = input_shape[0], input_shape[3]
        return (boxes_shape[0], boxes_shape[1]) + self.pool_shape + (feature_shape[-1],)
