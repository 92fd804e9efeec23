"""ProposalLayer agrees with a numpy recomputation built on mrcnn/utils.py."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import utils
from mrcnn.config import Config
from mrcnn.data import get_anchors
from mrcnn.meta import compute_backbone_shapes
from mrcnn.proposals import AnchorLevelSizes, ProposalLayer


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


# -- per-level selection (Config.PROPOSAL_SELECTION = "torchvision") ---------------------------

def numpy_proposals_per_level(probs, deltas, anchors, level_sizes, config, count, threshold):
    """torchvision's recipe for one image: the best PRE_NMS_LIMIT of each level, NMS within each
    level, then the best `count` survivors of all levels."""
    scores = probs[:, 1]
    kept_boxes, kept_scores = [], []
    start = 0
    for size in level_sizes:
        level = np.arange(start, start + size)
        start += size
        order = level[np.argsort(-scores[level], kind="stable")[:config.PRE_NMS_LIMIT]]
        boxes = np.clip(utils.apply_box_deltas(anchors[order], deltas[order] * config.RPN_BBOX_STD_DEV), 0, 1)
        keep = utils.non_max_suppression(boxes, scores[order], threshold)
        kept_boxes.append(boxes[keep])
        kept_scores.append(scores[order][keep])
    boxes, scores = np.concatenate(kept_boxes), np.concatenate(kept_scores)
    best = np.argsort(-scores, kind="stable")[:count]
    out = np.zeros((count, 4), np.float32)
    out[:len(best)] = boxes[best]
    return out, len(best)


LEVEL_SIZES = [200, 120, 50, 20, 10]     # the first two hold more anchors than PRE_NMS_LIMIT (60)


@pytest.mark.parametrize("count", [40, 250])   # 250: more than the 200 candidates
def test_per_level_selection_matches_numpy_recipe(count):
    config = small_config(PRE_NMS_LIMIT=60, PROPOSAL_SELECTION="torchvision")
    rng = np.random.default_rng(5)
    probs, deltas, anchors = random_rpn_outputs(rng, 2, sum(LEVEL_SIZES))
    layer = ProposalLayer(count, 0.6, config)
    assert layer.per_level
    ours = layer([probs, deltas, anchors, np.array(LEVEL_SIZES, np.int32)]).numpy()
    assert ours.shape == (2, count, 4)
    for image in range(2):
        expected, kept = numpy_proposals_per_level(probs[image], deltas[image], anchors[image], LEVEL_SIZES,
                                                   config, count, 0.6)
        assert np.allclose(ours[image], expected, atol=1e-5)
        assert np.count_nonzero(np.any(ours[image] != 0, axis=1)) == kept
        # not the global recipe: it keeps other boxes (PRE_NMS_LIMIT over all levels, NMS across them)
        assert not np.allclose(ours[image], numpy_proposals(probs[image], deltas[image], anchors[image],
                                                            config, count, 0.6)[0], atol=1e-5)
    assert kept < count if count == 250 else kept == count


def test_per_level_nms_does_not_suppress_across_levels():
    """The same box on two levels: per level both survive; the global recipe keeps one."""
    box = np.array([0.2, 0.2, 0.6, 0.7], np.float32)
    anchors = np.tile(box, (1, 6, 1))
    probs = np.stack([np.linspace(0.4, 0.1, 6), np.linspace(0.6, 0.9, 6)], -1)[None].astype(np.float32)
    deltas = np.zeros((1, 6, 4), np.float32)
    per_level = ProposalLayer(5, 0.7, small_config(PROPOSAL_SELECTION="torchvision"))(
        [probs, deltas, anchors, np.array([2, 3, 1], np.int32)]).numpy()[0]
    assert np.allclose(per_level[:3], box) and np.all(per_level[3:] == 0)
    global_ = ProposalLayer(5, 0.7, small_config())([probs, deltas, anchors]).numpy()[0]
    assert np.allclose(global_[0], box) and np.all(global_[1:] == 0)


def test_per_level_inputs_are_checked():
    rng = np.random.default_rng(6)
    probs, deltas, anchors = random_rpn_outputs(rng, 1, 30)
    layer = ProposalLayer(10, 0.7, small_config(), per_level=True)
    with pytest.raises(ValueError, match="needs 4 inputs"):
        layer([probs, deltas, anchors])
    with pytest.raises(tf.errors.InvalidArgumentError, match="do not add up"):
        layer([probs, deltas, anchors, np.array([10, 10], np.int32)])
    clone = ProposalLayer.from_config(layer.get_config())
    assert clone.per_level and not ProposalLayer(10, 0.7, small_config()).per_level


@pytest.mark.parametrize("anchor_stride", [1, 2])
def test_anchor_level_sizes_match_the_pyramid_anchors(anchor_stride):
    config = small_config(IMAGE_MAX_DIM=128, IMAGE_MIN_DIM=128, RPN_ANCHOR_STRIDE=anchor_stride)
    shapes = compute_backbone_shapes(config, config.IMAGE_SHAPE)
    maps = [keras.Input((int(h), int(w), 8)) for h, w in shapes]
    sizes_tensor = AnchorLevelSizes(len(config.RPN_ANCHOR_RATIOS), anchor_stride)(maps)
    assert tuple(sizes_tensor.shape) == (5,)
    sizes = AnchorLevelSizes(len(config.RPN_ANCHOR_RATIOS), anchor_stride)(
        [np.zeros((1, int(h), int(w), 8), np.float32) for h, w in shapes]).numpy()
    expected = [len(utils.generate_anchors(scale, config.RPN_ANCHOR_RATIOS, shape, stride, anchor_stride))
                for scale, shape, stride in zip(config.RPN_ANCHOR_SCALES, shapes, config.BACKBONE_STRIDES)]
    assert sizes.tolist() == expected
    assert sizes.sum() == len(get_anchors(config, config.IMAGE_SHAPE))
