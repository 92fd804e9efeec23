"""The five Mask R-CNN training losses, as pure functions on tensors.

Each returns a float32 scalar: the mean over whatever contributes (anchors, ROIs, mask
pixels), 0.0 when nothing contributes (an image without positives), and never NaN, so they
can be summed in a custom train_step. Names and arguments follow Matterport. Inside a
replica of a distribution strategy the mean's divisor is counted over the global batch, so
each replica returns its share of the global batch's loss (see _ratio).

Box losses use smooth-L1 (Fast R-CNN): quadratic below a difference of beta, linear above.
Matterport's form, "per_positive" (beta 1, the mean over every coordinate of every positive box),
is the default of each function; both box losses can instead take "per_sampled" (torchvision's:
beta 1/9, summed and divided by the number of sampled anchors or ROIs):
`rpn_bbox_loss_graph(..., form="per_sampled")`, `mrcnn_bbox_loss_graph` with `rois` and `beta=1/9`.
"""
import tensorflow as tf

from mrcnn.config import BOX_LOSS_FORMS

# Probabilities are kept this far from 0 and 1 before taking logs (Keras' default epsilon).
PROBABILITY_EPSILON = 1e-7


def smooth_l1(y_true, y_pred, beta=1.0):
    """Element-wise smooth-L1, d = |y_true - y_pred|: 0.5 * d**2 / beta where d < beta, else d - 0.5 * beta.

    Its slope is d / beta up to beta and 1 beyond: a small beta pulls nearly-right boxes as hard
    as wrong ones (an L1 loss), beta 1 (Matterport) pulls them in proportion to their error.
    """
    difference = tf.abs(tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32))
    return tf.where(difference < beta, 0.5 * tf.square(difference) / beta, difference - 0.5 * beta)


def _ratio(total, count):
    """total / count (0.0 when count is 0), count taken over the whole global batch.

    Under a tf.distribute strategy with several replicas (GPU_COUNT > 1) each replica holds
    IMAGES_PER_GPU images of the batch, and its positives, sampled ROIs... differ in number
    from the other replicas'. `count` is then summed over the replicas, so that each replica's
    value is its share of the loss of the global batch: the shares add up to the loss of that
    batch on one device, and so do the gradients, which the optimizer sums over the replicas.
    (Each replica's own mean, averaged over the replicas, would weigh an image with one
    positive like one with twenty.) Without a strategy, or with one replica, it is the plain ratio.
    """
    count = tf.cast(count, tf.float32)
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
    return tf.math.divide_no_nan(tf.cast(total, tf.float32), count)


def _mean_or_zero(values):
    """Mean of all elements of `values`, 0.0 when there are none (over the global batch: _ratio)."""
    values = tf.cast(values, tf.float32)
    return _ratio(tf.reduce_sum(values), tf.size(values))


def _real_rows(rois):
    """(B, T) float32: 1 for the sampled ROIs, 0 for the all-zero padding rows of rois (B, T, 4)."""
    return tf.cast(tf.reduce_any(tf.not_equal(rois, 0), axis=2), tf.float32)


def _squeeze_match(rpn_match):
    """Anchor match (B, A, 1) or (B, A) -> (B, A) int32."""
    rpn_match = tf.cast(rpn_match, tf.int32)
    return tf.reshape(rpn_match, tf.shape(rpn_match)[:2])


def rpn_class_loss_graph(rpn_match, rpn_class_logits):
    """RPN objectness loss: softmax cross-entropy over anchors that are not neutral.

    rpn_match (B, A, 1): 1 positive, -1 negative, 0 neutral (ignored).
    rpn_class_logits (B, A, 2): background / foreground logits.
    """
    match = _squeeze_match(rpn_match)
    used = tf.not_equal(match, 0)
    labels = tf.boolean_mask(tf.cast(tf.equal(match, 1), tf.int32), used)
    logits = tf.boolean_mask(tf.cast(rpn_class_logits, tf.float32), used)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    return _mean_or_zero(losses)


def rpn_bbox_loss_graph(config, target_bbox, rpn_match, rpn_bbox, form="per_positive", std_dev=None):
    """RPN box loss: smooth-L1 between positive anchors' predicted deltas and their targets.

    target_bbox (B, R, 4): per image, the targets of its positive anchors in anchor order,
    then zero rows. rpn_match (B, A, 1); rpn_bbox (B, A, 4) predicted deltas. Positives beyond
    the R target rows of an image are ignored. Both deltas are in units of
    config.RPN_BBOX_STD_DEV (Matterport's scaling).

    form "per_positive": beta 1 on the scaled deltas, the mean over every coordinate of the
    positives (`config` is then unused). form "per_sampled": the deltas back in box units
    (times RPN_BBOX_STD_DEV), beta 1/9, summed over the positives and divided by the number of
    sampled anchors (positive and negative), as torchvision's RPN does. std_dev: that
    RPN_BBOX_STD_DEV as a value (then `config` may be None); `config` is Matterport's argument.
    """
    target_bbox = tf.cast(target_bbox, tf.float32)
    match = _squeeze_match(rpn_match)
    positive = tf.equal(match, 1)
    rank = tf.cumsum(tf.cast(positive, tf.int32), axis=1) - 1        # 0 for an image's first positive
    target_rows = tf.shape(target_bbox)[1]
    positive = tf.logical_and(positive, rank < target_rows)
    counts = tf.reduce_sum(tf.cast(positive, tf.int32), axis=1)
    predicted = tf.boolean_mask(tf.cast(rpn_bbox, tf.float32), positive)
    used_rows = tf.range(target_rows)[None, :] < counts[:, None]
    targets = tf.boolean_mask(target_bbox, used_rows)
    if form == "per_positive":
        return _mean_or_zero(smooth_l1(targets, predicted))
    if form != "per_sampled":
        raise ValueError(f"rpn_bbox_loss_graph: form must be one of {BOX_LOSS_FORMS}, not {form!r}")
    std_dev = tf.constant(config.RPN_BBOX_STD_DEV if std_dev is None else std_dev, tf.float32)
    sampled = tf.reduce_sum(tf.cast(tf.not_equal(match, 0), tf.float32))
    return _ratio(tf.reduce_sum(smooth_l1(targets * std_dev, predicted * std_dev, 1.0 / 9.0)), sampled)


def mrcnn_class_loss_graph(target_class_ids, pred_class_logits, active_class_ids, rois=None):
    """Classifier loss: softmax cross-entropy per ROI, averaged over ROIs whose predicted class is active.

    target_class_ids (B, T) (0 for negatives and padding); pred_class_logits (B, T, C);
    active_class_ids (B, C), 1 for the classes of the image's dataset. A ROI predicted as a
    class its image's dataset does not have is not penalised (Matterport's rule, for training
    on mixed datasets). With `rois` (B, T, 4), the sampled ROIs, the all-zero padding rows do
    not count either: early in training most of the T rows are padding (few positives, so few
    negatives), and Matterport's loss, which counts them as background, is then mostly about
    a zero-size box at the image corner.
    """
    target_class_ids = tf.cast(target_class_ids, tf.int32)
    logits = tf.cast(pred_class_logits, tf.float32)
    predicted = tf.argmax(logits, axis=2, output_type=tf.int32)
    weights = tf.gather(tf.cast(active_class_ids, tf.float32), predicted, batch_dims=1)   # (B, T)
    if rois is not None:
        weights = weights * _real_rows(rois)
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target_class_ids, logits=logits)
    return _ratio(tf.reduce_sum(losses * weights), tf.reduce_sum(weights))


def mrcnn_bbox_loss_graph(target_bbox, target_class_ids, pred_bbox, rois=None, beta=1.0):
    """Box head loss: smooth-L1 on positive ROIs, using the deltas predicted for the target class.

    target_bbox (B, T, 4); target_class_ids (B, T); pred_bbox (B, T, C, 4).
    Without `rois` (Matterport): the mean over the positive ROIs' coordinates. With `rois`
    (B, T, 4), the sampled ROIs (torchvision's fastrcnn_loss, with beta 1/9): the sum over the
    positive ROIs' coordinates divided by the number of sampled ROIs, negatives included and
    all-zero padding rows left out.
    """
    class_ids = tf.cast(target_class_ids, tf.int32)
    positive = class_ids > 0
    predicted = tf.gather(tf.cast(pred_bbox, tf.float32), class_ids, batch_dims=2)     # (B, T, 4)
    per_coordinate = smooth_l1(tf.boolean_mask(target_bbox, positive), tf.boolean_mask(predicted, positive), beta)
    if rois is None:
        return _mean_or_zero(per_coordinate)
    return _ratio(tf.reduce_sum(per_coordinate), tf.reduce_sum(_real_rows(rois)))


def mrcnn_mask_loss_graph(target_masks, target_class_ids, pred_masks, from_logits=False):
    """Mask head loss: per-pixel binary cross-entropy on positive ROIs, target class's channel only.

    target_masks (B, T, h, w) in [0, 1]; target_class_ids (B, T); pred_masks (B, T, h, w, C)
    sigmoid probabilities (Matterport's signature), or with `from_logits` the scores before the
    sigmoid. Training passes logits: on probabilities the loss must clip them away from 0 and 1,
    and a pixel whose sigmoid has saturated on the wrong side then gets no gradient at all
    (float32's sigmoid is 1.0 from a score of about 17), while the loss on logits still pulls it back.
    """
    class_ids = tf.cast(target_class_ids, tf.int32)
    positive = class_ids > 0
    by_class = tf.transpose(tf.cast(pred_masks, tf.float32), [0, 1, 4, 2, 3])          # (B, T, C, h, w)
    predicted = tf.boolean_mask(tf.gather(by_class, class_ids, batch_dims=2), positive)  # (P, h, w)
    targets = tf.boolean_mask(tf.cast(target_masks, tf.float32), positive)
    if from_logits:
        return _mean_or_zero(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=predicted))
    predicted = tf.clip_by_value(predicted, PROBABILITY_EPSILON, 1.0 - PROBABILITY_EPSILON)
    losses = -(targets * tf.math.log(predicted) + (1.0 - targets) * tf.math.log(1.0 - predicted))
    return _mean_or_zero(losses)
