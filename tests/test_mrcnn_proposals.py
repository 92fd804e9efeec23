"""ProposalLayer agrees with a numpy recomputation built on mrcnn/utils.py."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import utils
from mrcnn.compat import ProposalLayer  # Matterport's signature (count, threshold, config)
from mrcnn.config import Config
from mrcnn.data import get_anchors
from mrcnn.meta import compute_backbone_shapes


def small_config(**overrides):
    settings = dict(NAME="t", IMAGE_MAX_DIM=64, IMAGE_MIN_DIM=64, PRE_NMS_LIMIT=120)
    settings.update(overrides)
    return Config(**settings)


def random_rpn_outputs(rng, batch, anchor_count):
    """Softmax scores, small deltas and normalised anchors (some reaching outside the image)."""
    logits = rng.normal(0, 2, (batch, anchor_count, 2))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    deltas = rng.normal(0, 1.0, (batch, anchor_count, 4))
    centres = rng.uniform(0, 1, (batch, anchor_count, 2))
    sides = rng.uniform(0.05, 0.5, (batch, anchor_count, 2))
    anchors = np.concatenate([centres - sides / 2, centres + sides / 2], axis=-1)
    return probs.astype(np.float32), deltas.astype(np.float32), anchors.astype(np.float32)


def numpy_proposals(probs, deltas, anchors, config, count, threshold):
    """The documented recipe for one image, with utils' numpy functions."""
    scores = probs[:, 1]
    order = np.argsort(-scores, kind="stable")[:min(config.PRE_NMS_LIMIT, len(scores))]
    boxes = utils.apply_box_deltas(anchors[order], deltas[order] * config.RPN_BBOX_STD_DEV)
    boxes = np.clip(boxes, 0.0, 1.0)
    keep = utils.non_max_suppression(boxes, scores[order], threshold)[:count]
    out = np.zeros((count, 4), np.float32)
    out[:len(keep)] = boxes[keep]
    return out, len(keep)


def test_proposals_match_numpy_recipe():
    config = small_config()
    rng = np.random.default_rng(0)
    probs, deltas, anchors = random_rpn_outputs(rng, 2, 400)
    layer = ProposalLayer(50, 0.6, config)
    ours = layer([probs, deltas, anchors]).numpy()
    assert ours.shape == (2, 50, 4)
    for image in range(2):
        expected, kept = numpy_proposals(probs[image], deltas[image], anchors[image], config, 50, 0.6)
        assert kept == 50   # enough survive to fill the output
        assert np.allclose(ours[image], expected, atol=1e-5)
    assert ours.min() >= 0.0 and ours.max() <= 1.0


def test_fewer_anchors_than_pre_nms_limit_and_zero_padding():
    config = small_config(PRE_NMS_LIMIT=6000)
    rng = np.random.default_rng(1)
    probs, deltas, anchors = random_rpn_outputs(rng, 1, 30)
    ours = ProposalLayer(40, 0.5, config)([probs, deltas, anchors]).numpy()[0]
    expected, kept = numpy_proposals(probs[0], deltas[0], anchors[0], config, 40, 0.5)
    assert kept < 40
    assert np.allclose(ours, expected, atol=1e-5)
    assert np.all(ours[kept:] == 0) and np.all(np.any(ours[:kept] != 0, axis=1))


def test_identical_anchors_leave_one_proposal():
    config = small_config()
    anchors = np.tile(np.array([0.2, 0.2, 0.6, 0.7], np.float32), (1, 20, 1))
    probs = np.stack([np.linspace(0.9, 0.1, 20), np.linspace(0.1, 0.9, 20)], -1)[None].astype(np.float32)
    ours = ProposalLayer(5, 0.7, config)([probs, np.zeros((1, 20, 4), np.float32), anchors]).numpy()[0]
    assert np.allclose(ours[0], [0.2, 0.2, 0.6, 0.7]) and np.all(ours[1:] == 0)


def test_inside_a_keras_model_and_tf_function():
    config = small_config()
    anchor_count = 200
    rng = np.random.default_rng(2)
    probs, deltas, anchors = random_rpn_outputs(rng, 2, anchor_count)
    inputs = [keras.Input((anchor_count, 2)), keras.Input((anchor_count, 4)), keras.Input((anchor_count, 4))]
    layer = ProposalLayer(16, 0.7, config, name="ROI")
    outputs = layer(inputs)
    assert tuple(outputs.shape) == (None, 16, 4)
    model = keras.Model(inputs, outputs)
    with pytest.warns(UserWarning, match="jit_compile"):
        model.jit_compile = True    # refused: the layer's dynamic shapes cannot be XLA-compiled
    assert model.jit_compile is False
    from_model = np.asarray(model.predict_on_batch([probs, deltas, anchors]))
    traced = tf.function(lambda p, d, a: layer([p, d, a]))(probs, deltas, anchors).numpy()
    for image in range(2):
        expected, _ = numpy_proposals(probs[image], deltas[image], anchors[image], config, 16, 0.7)
        assert np.allclose(from_model[image], expected, atol=1e-5)
        assert np.allclose(traced[image], expected, atol=1e-5)


def test_config_round_trip():
    layer = ProposalLayer(10, 0.7, small_config(), name="ROI")
    clone = ProposalLayer.from_config(layer.get_config())
    assert (clone.proposal_count, clone.nms_threshold, clone.pre_nms_limit) == (10, 0.7, 120)
    assert clone.rpn_bbox_std_dev == [0.1, 0.1, 0.2, 0.2] and clone.name == "ROI"


def test_only_the_pre_nms_limit_best_anchors_are_considered():
    config = small_config(PRE_NMS_LIMIT=8)
    rng = np.random.default_rng(3)
    probs, deltas, anchors = random_rpn_outputs(rng, 1, 100)
    ours = ProposalLayer(30, 0.9, config)([probs, deltas, anchors]).numpy()[0]
    expected, kept = numpy_proposals(probs[0], deltas[0], anchors[0], config, 30, 0.9)
    assert 0 < kept <= 8 and np.count_nonzero(np.any(ours != 0, axis=1)) == kept
    assert np.allclose(ours, expected, atol=1e-5)


def test_no_gradient_flows_back_through_proposals():
    rng = np.random.default_rng(4)
    probs, deltas, anchors = (tf.constant(a) for a in random_rpn_outputs(rng, 1, 50))
    with tf.GradientTape() as tape:
        tape.watch([probs, deltas])
        total = tf.reduce_sum(ProposalLayer(10, 0.7, small_config())([probs, deltas, anchors]))
    assert float(total) > 0
    assert tape.gradient(total, [probs, deltas]) == [None, None]
