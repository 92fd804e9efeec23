"""Image meta rows, image molding and backbone shapes: the small contracts every module shares.

An image meta row carries what the graph needs to know about one resized image
(Matterport's layout, so tools built for it read ours):

    [image_id, original H, W, C, resized H, W, C, window y1, x1, y2, x2, scale, active class ids...]

`window` is the part of the resized image that holds the picture (the rest is padding), in
pixels of the resized image. `active_class_ids` has NUM_CLASSES entries, 1 where the class
can occur in the image's dataset.
"""
import math

import numpy as np
import tensorflow as tf


def compose_image_meta(image_id, original_image_shape, image_shape, window, scale, active_class_ids):
    """One meta row (1-D float32 array of length 12 + NUM_CLASSES)."""
    return np.array(
        [image_id] + list(original_image_shape) + list(image_shape) + list(window) + [scale]
        + list(active_class_ids), dtype=np.float32)


def parse_image_meta(meta):
    """Split meta rows (N, 12 + NUM_CLASSES) into a dict of numpy arrays."""
    meta = np.asarray(meta)
    return {
        "image_id": meta[:, 0].astype(np.int32),
        "original_image_shape": meta[:, 1:4].astype(np.int32),
        "image_shape": meta[:, 4:7].astype(np.int32),
        "window": meta[:, 7:11].astype(np.int32),
        "scale": meta[:, 11].astype(np.float32),
        "active_class_ids": meta[:, 12:].astype(np.int32),
    }


def parse_image_meta_graph(meta):
    """The same split for a (batch, 12 + NUM_CLASSES) tensor; values stay float32."""
    return {
        "image_id": meta[:, 0],
        "original_image_shape": meta[:, 1:4],
        "image_shape": meta[:, 4:7],
        "window": meta[:, 7:11],
        "scale": meta[:, 11],
        "active_class_ids": meta[:, 12:],
    }


def mold_image(images, config):
    """uint8 RGB -> float32 with the dataset mean subtracted (what the network sees).

    Subtracted in float64, then rounded once to float32: the numbers Matterport's network sees
    (its float64 result, cast by Keras), not one unit of the last place off.
    """
    return (np.asarray(images).astype(np.float32) - np.asarray(config.MEAN_PIXEL, dtype=np.float64)).astype(np.float32)


def unmold_image(normalized_images, config):
    """The inverse of mold_image, back to uint8 RGB."""
    return np.clip(np.rint(normalized_images + config.MEAN_PIXEL), 0, 255).astype(np.uint8)


def compute_backbone_shapes(config, image_shape):
    """[[H, W], ...] of the feature maps P2..P6 for an image of `image_shape`."""
    if callable(config.BACKBONE):
        return np.array(config.COMPUTE_BACKBONE_SHAPE(image_shape))
    return np.array([[int(math.ceil(image_shape[0] / stride)), int(math.ceil(image_shape[1] / stride))]
                     for stride in config.BACKBONE_STRIDES])


def norm_boxes_graph(boxes, shape):
    """Pixel boxes [y1, x1, y2, x2] -> normalised, as utils.norm_boxes, in TensorFlow."""
    h, w = tf.split(tf.cast(shape, tf.float32), 2)
    scale = tf.concat([h, w, h, w], axis=-1) - tf.constant(1.0)
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return tf.math.divide(boxes - shift, scale)


def denorm_boxes_graph(boxes, shape):
    """Normalised boxes -> integer pixel boxes, as utils.denorm_boxes, in TensorFlow."""
    h, w = tf.split(tf.cast(shape, tf.float32), 2)
    scale = tf.concat([h, w, h, w], axis=-1) - tf.constant(1.0)
    shift = tf.constant([0.0, 0.0, 1.0, 1.0])
    return tf.cast(tf.round(tf.math.multiply(boxes, scale) + shift), tf.int32)
