"""RPN head: layer names, output shapes, and that output k is anchor k of utils.generate_(pyramid_)anchors."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import rpn, utils

DEPTH = 8
RATIOS = [0.5, 1, 2]


def marker_weights(model, anchors_per_location):
    """Weights that make the head read only channel 0 of the feature map.

    The shared conv copies input channel 0 to its channel 0 (centre tap, no bias, ReLU keeps
    it), and output channel j of both 1x1 convs is (j + 1) * that channel. A feature map that
    is zero except for 1 at one cell then gives non-zero outputs only for that cell's anchors.
    """
    shared = np.zeros((3, 3, DEPTH, 512), np.float32)
    shared[1, 1, 0, 0] = 1.0
    model.get_layer("rpn_conv_shared").set_weights([shared, np.zeros(512, np.float32)])
    for name, per_anchor in (("rpn_class_raw", 2), ("rpn_bbox_pred", 4)):
        channels = per_anchor * anchors_per_location
        kernel = np.zeros((1, 1, 512, channels), np.float32)
        kernel[0, 0, 0] = np.arange(1, channels + 1)
        model.get_layer(name).set_weights([kernel, np.zeros(channels, np.float32)])


def test_rpn_model_layers_and_shapes():
    model = rpn.build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=DEPTH)
    assert model.name == "rpn_model"
    assert model.inputs[0].shape[1:] == (None, None, DEPTH)
    assert model.get_layer("input_rpn_feature_map") is not None
    assert tuple(model.get_layer("rpn_conv_shared").kernel.shape) == (3, 3, DEPTH, 512)
    assert tuple(model.get_layer("rpn_class_raw").kernel.shape) == (1, 1, 512, 6)
    assert tuple(model.get_layer("rpn_bbox_pred").kernel.shape) == (1, 1, 512, 12)
    assert len(model.weights) == 6

    features = np.random.default_rng(0).normal(size=(2, 5, 7, DEPTH)).astype(np.float32)
    logits, probs, bbox = (output.numpy() for output in model(features))
    anchors = utils.generate_anchors(32, RATIOS, (5, 7), 4, 1)
    assert logits.shape == probs.shape == (2, len(anchors), 2) and bbox.shape == (2, len(anchors), 4)
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.allclose(probs, softmax, atol=1e-5)


@pytest.mark.parametrize("cell", [(0, 0), (2, 5), (4, 6)])
def test_anchor_order_matches_generate_anchors(cell):
    height, width, stride = 5, 7, 4
    model = rpn.build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=DEPTH)
    marker_weights(model, 3)
    features = np.zeros((1, height, width, DEPTH), np.float32)
    features[0, cell[0], cell[1], 0] = 1.0
    logits, _, bbox = (output.numpy()[0] for output in model(features))

    hit = np.flatnonzero(np.abs(logits).sum(-1))
    assert hit.tolist() == [(cell[0] * width + cell[1]) * 3 + a for a in range(3)]
    assert np.allclose(logits[hit], [[2 * a + 1, 2 * a + 2] for a in range(3)])
    assert np.allclose(bbox[hit], [[4 * a + 1, 4 * a + 2, 4 * a + 3, 4 * a + 4] for a in range(3)])

    anchors = utils.generate_anchors(32, RATIOS, (height, width), stride, 1)
    centres = (anchors[hit, :2] + anchors[hit, 2:]) / 2
    assert np.allclose(centres, [[cell[0] * stride, cell[1] * stride]] * 3)
    heights = anchors[hit, 2] - anchors[hit, 0]
    assert np.all(np.diff(heights) < 0)    # ratios 0.5, 1, 2 (width/height): tallest first, as generate_anchors


def test_anchor_stride_two_counts_like_generate_anchors():
    model = rpn.build_rpn_model(anchor_stride=2, anchors_per_location=3, depth=DEPTH)
    logits = model(np.zeros((1, 5, 7, DEPTH), np.float32))[0]
    assert logits.shape[1] == len(utils.generate_anchors(32, RATIOS, (5, 7), 4, 2)) == 3 * 4 * 3


def test_apply_rpn_joins_levels_in_pyramid_order():
    shapes = [(8, 8), (4, 4), (2, 2)]
    strides = [4, 8, 16]
    rpn_model = rpn.build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=DEPTH)
    marker_weights(rpn_model, 3)
    inputs = [keras.Input((h, w, DEPTH)) for h, w in shapes]
    model = keras.Model(inputs, list(rpn.apply_rpn(rpn_model, inputs)))
    assert [layer.name for layer in model.layers if layer.name.startswith("rpn_")] == [
        "rpn_model", "rpn_class_logits", "rpn_class", "rpn_bbox"]
    assert len(model.weights) == 6                       # one head shared by every level

    anchors = utils.generate_pyramid_anchors([32, 64, 128], RATIOS, shapes, strides, 1)
    level, cell = 1, (3, 2)
    features = [np.zeros((1, h, w, DEPTH), np.float32) for h, w in shapes]
    features[level][0, cell[0], cell[1], 0] = 1.0
    logits, probs, bbox = (output.numpy()[0] for output in model(features))
    assert logits.shape == probs.shape == (len(anchors), 2) and bbox.shape == (len(anchors), 4)
    hit = np.flatnonzero(np.abs(bbox).sum(-1))
    offset = 8 * 8 * 3
    assert hit.tolist() == [offset + (cell[0] * 4 + cell[1]) * 3 + a for a in range(3)]
    centres = (anchors[hit, :2] + anchors[hit, 2:]) / 2
    assert np.allclose(centres, [[cell[0] * 8, cell[1] * 8]] * 3)
    assert np.allclose(anchors[hit, 2] - anchors[hit, 0], 64 / np.sqrt(RATIOS))

    # The same model once inside a tf.function (graph mode).
    graph_bbox = tf.function(lambda maps: model(maps)[2])([tf.constant(f) for f in features])
    assert np.allclose(graph_bbox.numpy()[0], bbox)


def test_apply_rpn_single_level_keeps_names():
    rpn_model = rpn.build_rpn_model(anchor_stride=1, anchors_per_location=2, depth=DEPTH)
    feature_map = keras.Input((4, 4, DEPTH))
    model = keras.Model(feature_map, list(rpn.apply_rpn(rpn_model, [feature_map])))
    assert {"rpn_class_logits", "rpn_class", "rpn_bbox"} <= {layer.name for layer in model.layers}
    assert [tuple(output.shape) for output in model.outputs] == [(None, 32, 2), (None, 32, 2), (None, 32, 4)]


def test_untrained_rpn_predicts_near_zero_deltas_and_even_scores():
    # Faster R-CNN's initialisation, N(0, 0.01^2): on unit-variance features the untrained deltas
    # average ~0.06 (Keras' Glorot default: ~0.56, i.e. boxes moved by half a std unit at random).
    keras.utils.set_random_seed(0)
    model = rpn.build_rpn_model(anchor_stride=1, anchors_per_location=3, depth=256)
    features = np.random.default_rng(0).normal(size=(2, 16, 16, 256)).astype(np.float32)
    logits, _, deltas = model.predict(features, verbose=0)
    assert np.abs(deltas).mean() < 0.2
    assert np.abs(logits).max() < 1.0
