"""ROI Align over a feature pyramid: one fixed-size feature patch per box.

The box heads (classifier and mask) need a (pool_h, pool_w, C) patch for every region of
interest. Following the FPN paper (Lin et al. 2017, eq. 1), a box of w x h image pixels is
read from pyramid level

    k = k0 + log2(sqrt(w * h) / 224),   k0 = 4,   rounded and clipped to [2, 5]

so small boxes come from the fine P2 map and large ones from the coarse P5 map. Each box is
then cropped from its level with bilinear sampling (`tf.image.crop_and_resize`), as in the
Mask R-CNN paper (He et al. 2017) without its extra sampling points, like Matterport.

Padding rows (boxes that are all zero) are not cropped: their patches are exactly zero.
"""
import keras
import tensorflow as tf

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

    def __init__(self, pool_shape, **kwargs):
        super().__init__(**kwargs)
        self.pool_shape = tuple(int(side) for side in pool_shape)
        if len(self.pool_shape) != 2 or min(self.pool_shape) < 1:
            raise ValueError(f"pool_shape must be two positive sizes, got {pool_shape!r}")

    def call(self, inputs):
        boxes, image_meta = inputs[0], inputs[1]
        feature_maps = inputs[2:]
        if len(feature_maps) != len(PYRAMID_LEVELS):
            raise ValueError(f"PyramidROIAlign needs the {len(PYRAMID_LEVELS)} maps P2..P5, "
                             f"got {len(feature_maps)}")
        boxes = tf.stop_gradient(tf.cast(boxes, tf.float32))
        image_shape = parse_image_meta_graph(image_meta)["image_shape"]
        levels = roi_pyramid_levels(boxes, image_shape)
        is_padding = tf.reduce_all(tf.equal(boxes, 0.0), axis=-1)
        levels = tf.where(is_padding, tf.zeros_like(levels), levels)   # level 0: not cropped

        channels = tf.shape(feature_maps[0])[-1]
        output_shape = tf.concat([tf.shape(boxes)[:2], tf.constant(self.pool_shape), [channels]], axis=0)
        all_positions, all_crops = [], []
        for level, feature_map in zip(PYRAMID_LEVELS, feature_maps):
            positions = tf.where(tf.equal(levels, level))             # (K, 2): [image, box]
            level_boxes = tf.stop_gradient(tf.gather_nd(boxes, positions))
            box_indices = tf.stop_gradient(tf.cast(positions[:, 0], tf.int32))
            crops = tf.image.crop_and_resize(feature_map, level_boxes, box_indices,
                                             self.pool_shape, method="bilinear")
            all_positions.append(tf.cast(positions, tf.int32))
            all_crops.append(tf.cast(crops, feature_maps[0].dtype))
        # Every non-padding box is in exactly one level, so scattering puts each crop back
        # at its own (image, box) row and leaves padding rows zero.
        return tf.scatter_nd(tf.concat(all_positions, axis=0), tf.concat(all_crops, axis=0), output_shape)

    def compute_output_shape(self, input_shape):
        boxes_shape, feature_shape = input_shape[0], input_shape[2]
        return (boxes_shape[0], boxes_shape[1]) + self.pool_shape + (feature_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config["pool_shape"] = list(self.pool_shape)
        return config
