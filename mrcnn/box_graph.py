"""TensorFlow twins of the numpy box geometry in mrcnn/utils.py, for use inside the graph.

Boxes are [y1, x1, y2, x2] on the last axis. Inside the graph they are normalised (see
utils.norm_boxes), but these functions do not care about the unit: they do the same
arithmetic as their numpy reference (utils.apply_box_deltas, utils.compute_overlaps,
utils.box_refinement, utils.trim_zeros), which the tests hold them to.
"""
import tensorflow as tf


def _as_computed(x):
    """x, kept as it was computed inside a tf.function.

    With static shapes, Grappler's arithmetic optimiser rewrites (y1 + 0.5 h) + dy h into another
    order of operations (the same number in exact arithmetic, a few units of the last place apart
    in float32). Matterport's graph (unknown shapes) is not rewritten, and one ulp matters: a box
    ending exactly on the image's edge has ROIAlign's last sample fall on the map's last cell or
    just beyond it (read as zero). An EnsureShape that checks nothing stops the rewrite.
    """
    return tf.ensure_shape(x, [None] * x.shape.rank)


def apply_box_deltas_graph(boxes, deltas):
    """Move boxes (..., 4) by deltas (..., 4) [dy, dx, log dh, log dw] -> float32 boxes (..., 4).

    The centre moves by (dy * height, dx * width); the sides are multiplied by exp(dh), exp(dw).
    """
    boxes = tf.cast(boxes, tf.float32)
    deltas = tf.cast(deltas, tf.float32)
    height = boxes[..., 2] - boxes[..., 0]
    width = boxes[..., 3] - boxes[..., 1]
    centre_y = _as_computed(boxes[..., 0] + 0.5 * height) + deltas[..., 0] * height
    centre_x = _as_computed(boxes[..., 1] + 0.5 * width) + deltas[..., 1] * width
    height = height * tf.exp(deltas[..., 2])
    width = width * tf.exp(deltas[..., 3])
    # The far edges as the near edge plus the side, in this order, as Matterport: float32 rounding
    # then gives its very boxes, and a box ending exactly on the window's edge is read the same way
    # by ROIAlign (crop_and_resize samples beyond the map as zero).
    y1 = centre_y - 0.5 * height
    x1 = centre_x - 0.5 * width
    return tf.stack([y1, x1, y1 + height, x1 + width], axis=-1)


def clip_boxes_graph(boxes, window):
    """Clip every coordinate of boxes (..., 4) into window [y1, x1, y2, x2] (broadcastable).

    A box wholly outside the window collapses onto the window's edge (zero height or width).
    """
    boxes = tf.cast(boxes, tf.float32)
    window = tf.cast(window, tf.float32)
    low_y, low_x, high_y, high_x = (window[..., i:i + 1] for i in range(4))
    y1, x1, y2, x2 = (boxes[..., i:i + 1] for i in range(4))
    clipped = [tf.clip_by_value(y1, low_y, high_y), tf.clip_by_value(x1, low_x, high_x),
               tf.clip_by_value(y2, low_y, high_y), tf.clip_by_value(x2, low_x, high_x)]
    return tf.concat(clipped, axis=-1)


def box_areas_graph(boxes):
    """Areas (height * width) of boxes (..., 4)."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def overlaps_graph(boxes1, boxes2):
    """IoU of every pair: boxes1 (N1, 4) x boxes2 (N2, 4) -> (N1, N2) float32.

    A pair whose union is empty (two degenerate boxes) has IoU 0, as in utils.compute_overlaps.
    """
    boxes1 = tf.cast(boxes1, tf.float32)
    boxes2 = tf.cast(boxes2, tf.float32)
    a = boxes1[:, None, :]
    b = boxes2[None, :, :]
    inter_h = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    inter_w = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    intersection = inter_h * inter_w
    union = box_areas_graph(boxes1)[:, None] + box_areas_graph(boxes2)[None, :] - intersection
    return tf.math.divide_no_nan(intersection, union)


def box_refinement_graph(box, gt_box):
    """Deltas (..., 4) [dy, dx, log dh, log dw] that move `box` onto `gt_box`; inverse of apply_box_deltas_graph."""
    box = tf.cast(box, tf.float32)
    gt_box = tf.cast(gt_box, tf.float32)
    height = box[..., 2] - box[..., 0]
    width = box[..., 3] - box[..., 1]
    centre_y = box[..., 0] + 0.5 * height
    centre_x = box[..., 1] + 0.5 * width
    gt_height = gt_box[..., 2] - gt_box[..., 0]
    gt_width = gt_box[..., 3] - gt_box[..., 1]
    gt_centre_y = gt_box[..., 0] + 0.5 * gt_height
    gt_centre_x = gt_box[..., 1] + 0.5 * gt_width
    return tf.stack([(gt_centre_y - centre_y) / height,
                     (gt_centre_x - centre_x) / width,
                     tf.math.log(gt_height / height),
                     tf.math.log(gt_width / width)], axis=-1)


def trim_zeros_graph(boxes, name="trim_zeros"):
    """Drop the all-zero padding rows of boxes (N, 4).

    Returns (kept boxes (M, 4), non_zero (N,) bool) so callers can trim parallel arrays too.
    """
    non_zero = tf.reduce_any(tf.not_equal(boxes, 0), axis=1)
    return tf.boolean_mask(boxes, non_zero, name=name), non_zero


def batch_slice(inputs, graph_fn, batch_size, names=None):
    """Run graph_fn on each image of a batch and stack the results along a new first axis.

    inputs: a tensor or a list of tensors whose first axis is the batch; graph_fn receives one
    slice of each (as separate arguments) and returns a tensor or a list of tensors of the same
    shape for every image. batch_size must be a Python int (e.g. config.IMAGES_PER_GPU); for a
    batch whose size is only known at run time use tf.map_fn instead. Returns a tensor when
    graph_fn returns one, else a list; `names` optionally names the stacked outputs.
    """
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    if batch_size < 1:
        raise ValueError(f"batch_slice: batch_size must be >= 1, got {batch_size}")
    per_image = []
    returns_list = False
    for index in range(batch_size):
        result = graph_fn(*[tensor[index] for tensor in inputs])
        returns_list = isinstance(result, (list, tuple))
        per_image.append(list(result) if returns_list else [result])
    output_count = len(per_image[0])
    names = list(names) if names is not None else [None] * output_count
    if len(names) != output_count:
        raise ValueError(f"batch_slice: {output_count} outputs but {len(names)} names")
    stacked = [tf.stack([outputs[i] for outputs in per_image], axis=0, name=names[i])
               for i in range(output_count)]
    return stacked if returns_list else stacked[0]
