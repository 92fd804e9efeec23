"""The training losses on hand-made cases, with values worked out by hand or in numpy."""
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import losses
from mrcnn.config import Config


def log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    top = logits.max(-1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))


def value_and_gradients(loss_fn, *args, watch):
    """Loss value and its gradient with respect to the argument at index `watch`."""
    args = [tf.constant(a) for a in args]
    with tf.GradientTape() as tape:
        tape.watch(args[watch])
        value = loss_fn(*args)
    gradient = tape.gradient(value, args[watch])
    return float(value), (np.zeros(args[watch].shape) if gradient is None else gradient.numpy())


def test_smooth_l1_values():
    got = losses.smooth_l1(np.zeros(6, np.float32), np.array([0, 0.5, -0.5, 1, 2, -3], np.float32)).numpy()
    assert np.allclose(got, [0, 0.125, 0.125, 0.5, 1.5, 2.5])
    # Continuous at |d| = 1.
    near = losses.smooth_l1([0.0, 0.0], [0.999999, 1.000001]).numpy()
    assert abs(near[0] - near[1]) < 1e-5


def test_smooth_l1_with_a_small_beta_is_l1_beyond_it():
    beta = 1.0 / 9.0
    got = losses.smooth_l1(np.zeros(4, np.float32), np.array([0, 0.05, -0.5, 3], np.float32), beta).numpy()
    assert np.allclose(got, [0, 0.5 * 0.05 ** 2 / beta, 0.5 - beta / 2, 3 - beta / 2])
    near = losses.smooth_l1([0.0, 0.0], [beta - 1e-6, beta + 1e-6], beta).numpy()
    assert abs(near[0] - near[1]) < 1e-5


def test_rpn_class_loss_is_cross_entropy_over_non_neutral_anchors():
    match = np.array([[[1], [-1], [0]], [[0], [1], [0]]], np.int32)
    logits = np.array([[[0.5, 2.0], [1.0, -1.0], [9.0, -9.0]], [[3.0, 3.0], [0.2, 0.1], [-5.0, 5.0]]], np.float32)
    value, gradient = value_and_gradients(losses.rpn_class_loss_graph, match, logits, watch=1)
    expected = -np.mean([log_softmax(logits[0, 0])[1], log_softmax(logits[0, 1])[0], log_softmax(logits[1, 1])[1]])
    assert np.isclose(value, expected, atol=1e-6)
    assert np.isfinite(gradient).all()
    assert np.all(gradient[0, 2] == 0) and np.all(gradient[1, 0] == 0) and np.all(gradient[1, 2] == 0)
    # Confident and right -> ~0; a (B, A) match works too.
    perfect = np.array([[[-20.0, 20.0], [20.0, -20.0]]], np.float32)
    assert float(losses.rpn_class_loss_graph(np.array([[1, -1]]), perfect)) < 1e-6


def test_rpn_class_loss_with_only_neutral_anchors_is_zero():
    value, gradient = value_and_gradients(losses.rpn_class_loss_graph, np.zeros((2, 4, 1), np.int32),
                                          np.ones((2, 4, 2), np.float32), watch=1)
    assert value == 0.0 and np.isfinite(gradient).all()


def test_rpn_bbox_loss_pairs_positive_anchors_with_target_rows_in_order():
    config = Config(NAME="t")
    match = np.array([[[0], [1], [-1], [1]], [[0], [0], [0], [0]]], np.int32)
    predicted = np.zeros((2, 4, 4), np.float32)
    predicted[0, 1] = [0.1, 0.2, 0.3, 0.4]
    predicted[0, 3] = [1.0, -1.0, 0.0, 0.5]
    predicted[1] = 7.0    # image 1 has no positive anchor: ignored
    targets = np.zeros((2, 3, 4), np.float32)
    targets[0, 0] = [0.1, 0.2, 0.3, 0.4]
    targets[0, 1] = [1.0, -1.0, 0.0, 0.5]
    assert float(losses.rpn_bbox_loss_graph(config, targets, match, predicted)) < 1e-7
    targets[0, 1] = [3.0, -1.0, 0.5, 0.5]   # differences 2 and 0.5 in two of 8 coordinates
    value, gradient = value_and_gradients(lambda t, m, p: losses.rpn_bbox_loss_graph(config, t, m, p),
                                          targets, match, predicted, watch=2)
    assert np.isclose(value, (1.5 + 0.125) / 8)
    assert np.isfinite(gradient).all() and np.all(gradient[1] == 0) and np.all(gradient[0, [0, 2]] == 0)


def test_rpn_bbox_loss_ignores_positives_beyond_the_target_rows_and_empty_batches():
    config = Config(NAME="t")
    match = np.ones((1, 5, 1), np.int32)
    predicted = np.zeros((1, 5, 4), np.float32)
    predicted[0, 2:] = 100.0                  # positives 3..5 have no target row
    targets = np.zeros((1, 2, 4), np.float32)
    assert float(losses.rpn_bbox_loss_graph(config, targets, match, predicted)) == 0.0
    value, gradient = value_and_gradients(lambda t, m, p: losses.rpn_bbox_loss_graph(config, t, m, p),
                                          targets, -match, predicted, watch=2)
    assert value == 0.0 and np.isfinite(gradient).all()


def test_rpn_bbox_loss_torchvision_form_sums_positives_in_box_units_over_the_sampled_anchors():
    beta = 1.0 / 9.0
    config = Config(NAME="t", NUM_CLASSES=2)                    # RPN_BBOX_STD_DEV 0.1, 0.1, 0.2, 0.2
    rpn_match = np.array([[[1], [-1], [0], [1], [-1], [-1]]], np.int32)   # 2 positive + 3 negative sampled
    target_bbox = np.zeros((1, 4, 4), np.float32)
    predicted = np.full((1, 6, 4), 7.0, np.float32)             # wrong everywhere except where it counts
    predicted[0, [0, 3]] = 0.0
    predicted[0, 0, 0] = 3.0                                     # 0.3 in box units: linear part
    predicted[0, 3, 3] = 0.1                                     # 0.02 in box units: quadratic part
    value, gradient = value_and_gradients(
        lambda t, m, p: losses.rpn_bbox_loss_graph(config, t, m, p, form="per_sampled"),
        target_bbox, rpn_match, predicted, watch=2)
    assert np.isclose(value, ((0.3 - beta / 2) + 0.5 * 0.02 ** 2 / beta) / 5, atol=1e-6)
    assert np.isclose(gradient[0, 0, 0], 0.1 / 5) and np.isclose(gradient[0, 3, 3], 0.02 / beta * 0.2 / 5)
    assert np.count_nonzero(gradient) == 2
    matterport = float(losses.rpn_bbox_loss_graph(config, target_bbox, rpn_match, predicted))
    assert np.isclose(matterport, (2.5 + 0.5 * 0.1 ** 2) / 8)


def test_rpn_bbox_loss_torchvision_form_is_zero_without_positives_and_rejects_an_unknown_form():
    config = Config(NAME="t", NUM_CLASSES=2)
    for match in (np.array([[[-1], [0]]], np.int32), np.zeros((1, 2, 1), np.int32)):
        value, gradient = value_and_gradients(
            lambda t, m, p: losses.rpn_bbox_loss_graph(config, t, m, p, form="per_sampled"),
            np.ones((1, 2, 4), np.float32), match, np.ones((1, 2, 4), np.float32), watch=2)
        assert value == 0.0 and np.isfinite(gradient).all()
    with pytest.raises(ValueError, match="form"):
        losses.rpn_bbox_loss_graph(config, np.zeros((1, 2, 4), np.float32), np.ones((1, 2, 1), np.int32),
                                   np.zeros((1, 2, 4), np.float32), form="l1")


@pytest.mark.parametrize("form, expected", [("per_positive", 2.5 / 4), ("per_sampled", (0.3 - 1 / 18) / 2)])
def test_config_chooses_the_rpn_box_loss_form(form, expected):
    from mrcnn.model import rpn_bbox_loss
    predicted = np.zeros((1, 3, 4), np.float32)
    predicted[0, 0, 0] = 3.0
    batch = {"input_rpn_bbox": tf.zeros((1, 2, 4)), "input_rpn_match": tf.constant([[[1], [0], [-1]]])}
    value = float(rpn_bbox_loss(Config(NAME="t", NUM_CLASSES=2, RPN_BBOX_LOSS=form), batch, {"rpn_bbox": predicted}))
    assert np.isclose(value, expected, atol=1e-6)


def test_mrcnn_class_loss_skips_predictions_of_inactive_classes():
    targets = np.array([[1, 0, 2]], np.int32)
    logits = np.array([[[0.0, 2.0, 0.0, 1.0], [1.0, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 3.0]]], np.float32)
    all_active = np.ones((1, 4), np.float32)
    value = float(losses.mrcnn_class_loss_graph(targets, logits, all_active))
    log_probs = log_softmax(logits[0])
    expected = -np.mean([log_probs[0, 1], log_probs[1, 0], log_probs[2, 2]])
    assert np.isclose(value, expected, atol=1e-6)
    # Class 3 is not in this image's dataset: ROI 2 (predicted 3) is not penalised.
    no_three = np.array([[1, 1, 1, 0]], np.float32)
    value = float(losses.mrcnn_class_loss_graph(targets, logits, no_three))
    assert np.isclose(value, -np.mean([log_probs[0, 1], log_probs[1, 0]]), atol=1e-6)


def test_mrcnn_class_loss_with_rois_leaves_the_zero_padding_rows_out():
    targets = np.array([[1, 0, 0, 0], [2, 0, 0, 0]], np.int32)      # rows 2, 3 of image 0 and row 3 of image 1 pad
    logits = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    rois = np.zeros((2, 4, 4), np.float32)
    rois[0, :2] = [0.1, 0.1, 0.5, 0.5]
    rois[1, :3] = [0.2, 0.3, 0.6, 0.9]
    active = np.ones((2, 3), np.float32)
    value, gradient = value_and_gradients(
        lambda t, lg, r: losses.mrcnn_class_loss_graph(t, lg, active, rois=r), targets, logits, rois, watch=1)
    log_probs = np.stack([log_softmax(row) for row in logits.reshape(-1, 3)]).reshape(2, 4, 3)
    real = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    assert np.isclose(value, -np.mean([log_probs[b, t, targets[b, t]] for b, t in real]), atol=1e-6)
    assert np.all(gradient[0, 2:] == 0) and np.all(gradient[1, 3] == 0) and np.all(gradient[0, 0] != 0)
    # Without rois every row counts, padding as background (Matterport's loss).
    everything = float(losses.mrcnn_class_loss_graph(targets, logits, active))
    assert np.isclose(everything, -np.mean(np.take_along_axis(log_probs, targets[..., None], 2)), atol=1e-6)


def test_mrcnn_class_loss_uses_each_images_own_active_classes_and_never_nans():
    targets = np.array([[2], [2]], np.int32)
    logits = np.array([[[0.0, 0.0, 5.0]], [[0.0, 0.0, 5.0]]], np.float32)
    active = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
    value = float(losses.mrcnn_class_loss_graph(targets, logits, active))
    assert np.isclose(value, -log_softmax(logits[0, 0])[2], atol=1e-6)
    value, gradient = value_and_gradients(losses.mrcnn_class_loss_graph, targets, logits,
                                          np.zeros((2, 3), np.float32), watch=1)
    assert value == 0.0 and np.isfinite(gradient).all()


def test_mrcnn_bbox_loss_uses_the_target_class_deltas_of_positive_rois():
    target_ids = np.array([[2, 0, 1]], np.int32)
    target_bbox = np.array([[[0.5, 0.5, 0.0, 0.0], [0, 0, 0, 0], [0.1, 0.0, 0.0, -0.1]]], np.float32)
    predicted = np.full((1, 3, 3, 4), 9.0, np.float32)   # wrong everywhere except where it counts
    predicted[0, 0, 2] = target_bbox[0, 0]
    predicted[0, 2, 1] = target_bbox[0, 2]
    assert float(losses.mrcnn_bbox_loss_graph(target_bbox, target_ids, predicted)) < 1e-7
    predicted[0, 2, 1, 0] += 3.0                          # one coordinate off by 3 of 8 used
    value, gradient = value_and_gradients(losses.mrcnn_bbox_loss_graph, target_bbox, target_ids, predicted,
                                          watch=2)
    assert np.isclose(value, 2.5 / 8)
    assert np.isfinite(gradient).all() and np.count_nonzero(gradient) == 1


def test_mrcnn_bbox_loss_torchvision_form_sums_positives_over_the_sampled_rois():
    beta = 1.0 / 9.0
    target_ids = np.array([[2, 0, 1, 0]], np.int32)
    rois = np.array([[[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.3, 0.3], [0.0, 0.0, 0.4, 0.4], [0, 0, 0, 0]]], np.float32)
    target_bbox = np.zeros((1, 4, 4), np.float32)
    predicted = np.full((1, 4, 3, 4), 9.0, np.float32)    # wrong everywhere except where it counts
    predicted[0, 0, 2] = 0.0
    predicted[0, 2, 1] = 0.0
    predicted[0, 0, 2, 0] = 3.0                            # far off: linear part
    predicted[0, 2, 1, 3] = 0.05                           # nearly right: quadratic part
    value, gradient = value_and_gradients(
        lambda t, c, p: losses.mrcnn_bbox_loss_graph(t, c, p, rois=rois, beta=beta),
        target_bbox, target_ids, predicted, watch=2)
    # 3 sampled ROIs (2 positive, 1 negative; the zero row is padding), the sum over 8 coordinates.
    assert np.isclose(value, ((3 - beta / 2) + 0.5 * 0.05 ** 2 / beta) / 3, atol=1e-6)
    assert np.isclose(gradient[0, 0, 2, 0], 1 / 3) and np.isclose(gradient[0, 2, 1, 3], 0.05 / beta / 3)
    assert np.count_nonzero(gradient) == 2
    _, matterport = value_and_gradients(losses.mrcnn_bbox_loss_graph, target_bbox, target_ids, predicted, watch=2)
    assert np.isclose(matterport[0, 2, 1, 3], 0.05 / 8)    # Matterport's pull on the nearly-right box: 24x less
    value = float(losses.mrcnn_bbox_loss_graph(target_bbox, np.zeros((1, 4), np.int32), predicted, rois=rois,
                                               beta=beta))
    assert value == 0.0


@pytest.mark.parametrize("form, expected", [("per_positive", 2.5 / 4), ("per_sampled", (3 - 1 / 18) / 2)])
def test_config_chooses_the_box_loss_form(form, expected):
    from mrcnn.model import mrcnn_bbox_loss
    predicted = np.zeros((1, 2, 2, 4), np.float32)
    predicted[0, 0, 1, 0] = 3.0
    outputs = {"target_bbox": tf.zeros((1, 2, 4)), "target_class_ids": tf.constant([[1, 0]]),
               "mrcnn_bbox": tf.constant(predicted), "rois": tf.constant([[[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 0.6]]])}
    value = float(mrcnn_bbox_loss(Config(NAME="t", NUM_CLASSES=2, MRCNN_BBOX_LOSS=form), outputs))
    assert np.isclose(value, expected, atol=1e-6)


def test_mrcnn_bbox_loss_without_positives_is_zero():
    value, gradient = value_and_gradients(losses.mrcnn_bbox_loss_graph, np.ones((2, 3, 4), np.float32),
                                          np.zeros((2, 3), np.int32), np.ones((2, 3, 4, 4), np.float32), watch=2)
    assert value == 0.0 and np.isfinite(gradient).all()


def test_mrcnn_mask_loss_is_binary_cross_entropy_on_the_target_class_channel():
    rng = np.random.default_rng(0)
    target_masks = (rng.uniform(size=(1, 3, 4, 4)) > 0.5).astype(np.float32)
    target_ids = np.array([[1, 2, 0]], np.int32)
    predicted = np.full((1, 3, 4, 4, 3), 0.5, np.float32)
    predicted[0, 0, :, :, 1] = target_masks[0, 0]
    predicted[0, 1, :, :, 2] = target_masks[0, 1]
    assert float(losses.mrcnn_mask_loss_graph(target_masks, target_ids, predicted)) < 1e-5
    soft = rng.uniform(0.05, 0.95, (4, 4)).astype(np.float32)
    predicted[0, 1, :, :, 2] = soft
    value, gradient = value_and_gradients(losses.mrcnn_mask_loss_graph, target_masks, target_ids, predicted,
                                          watch=2)
    truth = target_masks[0, 1].astype(np.float64)
    bce = -(truth * np.log(soft) + (1 - truth) * np.log(1 - soft))
    assert np.isclose(value, bce.sum() / 32, atol=1e-5)   # 2 positive ROIs x 16 pixels
    assert np.isfinite(gradient).all()
    assert np.all(gradient[0, 2] == 0) and np.all(gradient[0, :, :, :, 0] == 0)


def test_mrcnn_mask_loss_uniform_half_is_log_two_and_no_positives_is_zero():
    targets = np.ones((1, 2, 3, 3), np.float32)
    predicted = np.full((1, 2, 3, 3, 2), 0.5, np.float32)
    value = float(losses.mrcnn_mask_loss_graph(targets, np.array([[1, 1]]), predicted))
    assert np.isclose(value, np.log(2.0), atol=1e-6)
    predicted[...] = 0.0    # would be log(0) without clipping
    value, gradient = value_and_gradients(losses.mrcnn_mask_loss_graph, targets, np.array([[1, 0]], np.int32),
                                          predicted, watch=2)
    assert np.isfinite(value) and np.isclose(value, -np.log(1e-7), rtol=1e-3)
    assert np.isfinite(gradient).all()
    value, gradient = value_and_gradients(losses.mrcnn_mask_loss_graph, targets, np.zeros((1, 2), np.int32),
                                          predicted, watch=2)
    assert value == 0.0 and np.isfinite(gradient).all()


@pytest.mark.parametrize("positives", [True, False])
def test_all_losses_trace_in_a_tf_function(positives):
    config = Config(NAME="t", NUM_CLASSES=3)
    rng = np.random.default_rng(1)
    match = np.array([[[1], [-1], [0], [1]]], np.int32) if positives else np.zeros((1, 4, 1), np.int32)
    target_ids = np.array([[2, 0]], np.int32) if positives else np.zeros((1, 2), np.int32)

    @tf.function
    def total(rpn_logits, rpn_bbox, class_logits, bbox, masks):
        return (losses.rpn_class_loss_graph(match, rpn_logits)
                + losses.rpn_bbox_loss_graph(config, np.ones((1, 3, 4), np.float32), match, rpn_bbox)
                + losses.mrcnn_class_loss_graph(target_ids, class_logits, np.ones((1, 3), np.float32))
                + losses.mrcnn_bbox_loss_graph(np.ones((1, 2, 4), np.float32), target_ids, bbox)
                + losses.mrcnn_mask_loss_graph(np.ones((1, 2, 5, 5), np.float32), target_ids, masks))

    args = [tf.constant(rng.normal(size=shape).astype(np.float32))
            for shape in [(1, 4, 2), (1, 4, 4), (1, 2, 3), (1, 2, 3, 4)]]
    args.append(tf.constant(rng.uniform(size=(1, 2, 5, 5, 3)).astype(np.float32)))
    with tf.GradientTape() as tape:
        tape.watch(args)
        value = total(*args)
    assert value.dtype == tf.float32 and value.shape == () and np.isfinite(float(value))
    gradients = tape.gradient(value, args)
    assert all(g is None or np.isfinite(g.numpy()).all() for g in gradients)
    assert float(value) > 0   # mrcnn_class_loss always contributes (background targets)


def test_mrcnn_mask_loss_from_logits_equals_the_probability_form_and_keeps_its_gradient_when_saturated():
    rng = np.random.default_rng(2)
    targets = (rng.uniform(size=(1, 2, 4, 4)) > 0.5).astype(np.float32)
    target_ids = np.array([[1, 2]], np.int32)
    scores = rng.normal(0, 2, (1, 2, 4, 4, 3)).astype(np.float32)
    probabilities = (1 / (1 + np.exp(-scores.astype(np.float64)))).astype(np.float32)
    on_logits = float(losses.mrcnn_mask_loss_graph(targets, target_ids, scores, from_logits=True))
    on_probabilities = float(losses.mrcnn_mask_loss_graph(targets, target_ids, probabilities))
    assert np.isclose(on_logits, on_probabilities, rtol=1e-4)
    # Every pixel confidently wrong: a score of 30 where the target is 0. The sigmoid is 1.0 in
    # float32, so the probability form is clipped and has no gradient; the logit form has
    # d/ds = sigmoid(s) - target = 1 per pixel, over 16 pixels.
    wrong = np.zeros((1, 1, 4, 4), np.float32)
    scores = np.full((1, 1, 4, 4, 2), 30.0, np.float32)
    value, gradient = value_and_gradients(
        lambda t, i, s: losses.mrcnn_mask_loss_graph(t, i, s, from_logits=True), wrong, np.array([[1]]), scores,
        watch=2)
    assert np.isclose(value, 30.0, rtol=1e-5)
    assert np.allclose(gradient[0, 0, :, :, 1], 1 / 16, rtol=1e-5) and np.all(gradient[..., 0] == 0)
    saturated = tf.sigmoid(tf.constant(scores)).numpy()
    assert np.all(saturated == 1.0)
    _, gradient = value_and_gradients(losses.mrcnn_mask_loss_graph, wrong, np.array([[1]]), saturated, watch=2)
    assert np.all(gradient == 0)


def test_mrcnn_mask_loss_takes_soft_targets_and_is_least_where_the_prediction_is_the_fraction():
    """Fractional targets (the bilinear values along the edges, as torchvision trains). On logits the gradient is sigmoid(s) - t per
    pixel (over the pixel count), so it vanishes where the prediction equals the target fraction."""
    rng = np.random.default_rng(3)
    targets = rng.uniform(0.05, 0.95, (1, 1, 3, 3)).astype(np.float32)
    scores = rng.normal(0, 1, (1, 1, 3, 3, 2)).astype(np.float32)
    value, gradient = value_and_gradients(
        lambda t, i, s: losses.mrcnn_mask_loss_graph(t, i, s, from_logits=True), targets, np.array([[1]]), scores,
        watch=2)
    t, p = targets[0, 0].astype(np.float64), 1 / (1 + np.exp(-scores[0, 0, :, :, 1].astype(np.float64)))
    assert np.isclose(value, np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))), rtol=1e-5)
    assert np.allclose(gradient[0, 0, :, :, 1], (p - t) / 9, atol=1e-6)
    at_target = np.log(targets / (1 - targets))[..., None].repeat(2, axis=-1)
    _, gradient = value_and_gradients(
        lambda t, i, s: losses.mrcnn_mask_loss_graph(t, i, s, from_logits=True), targets, np.array([[1]]),
        at_target, watch=2)
    assert np.allclose(gradient, 0, atol=1e-6)
