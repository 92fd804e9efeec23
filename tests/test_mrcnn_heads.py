"""The classifier and mask heads: shapes, Matterport names and weight shapes, BN freezing."""
import keras
import numpy as np
import pytest

from mrcnn.heads import BatchNorm, ROITimeDistributed, build_fpn_mask_graph, fpn_classifier_graph
from mrcnn.meta import compose_image_meta

IMAGE_SIDE = 64
MAP_SIDES = (16, 8, 4, 2)          # P2..P5 of a 64 px image


def head_inputs(num_rois, num_classes, channels=256):
    rois = keras.Input((num_rois, 4), name="rois")
    meta = keras.Input((12 + num_classes,), name="meta")
    maps = [keras.Input((s, s, channels), name=f"p{k}") for k, s in zip((2, 3, 4, 5), MAP_SIDES)]
    return rois, meta, maps


def head_data(batch, num_rois, num_classes, channels=256, seed=0):
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, 0.6, (batch, num_rois, 2))
    rois = np.concatenate([corner, corner + rng.uniform(0.05, 0.4, (batch, num_rois, 2))], -1).astype(np.float32)
    meta = np.stack([compose_image_meta(i, (IMAGE_SIDE, IMAGE_SIDE, 3), (IMAGE_SIDE, IMAGE_SIDE, 3),
                                        (0, 0, IMAGE_SIDE, IMAGE_SIDE), 1.0, np.ones(num_classes))
                     for i in range(batch)])
    maps = [rng.normal(size=(batch, s, s, channels)).astype(np.float32) for s in MAP_SIDES]
    return [rois, meta] + maps


def build_heads(num_rois, num_classes, train_bn, fc_layers_size=1024, channels=256, pool=7, mask_pool=14):
    rois, meta, maps = head_inputs(num_rois, num_classes, channels)
    logits, probs, bbox = fpn_classifier_graph(rois, maps, meta, pool, num_classes, train_bn=train_bn,
                                               fc_layers_size=fc_layers_size)
    masks = build_fpn_mask_graph(rois, maps, meta, mask_pool, num_classes, train_bn=train_bn)
    return keras.Model([rois, meta] + maps, [logits, probs, bbox, masks])


@pytest.fixture(scope="module")
def full_size_heads():
    """The heads at Matterport's sizes (pool 7 / 14, 1024 FC, 256 channels) for ModaNet's 14 classes."""
    return build_heads(num_rois=3, num_classes=14, train_bn=False)


MATTERPORT_WEIGHT_SHAPES = {
    "mrcnn_class_conv1": [(7, 7, 256, 1024), (1024,)],
    "mrcnn_class_bn1": [(1024,)] * 4,
    "mrcnn_class_conv2": [(1, 1, 1024, 1024), (1024,)],
    "mrcnn_class_bn2": [(1024,)] * 4,
    "mrcnn_class_logits": [(1024, 14), (14,)],
    "mrcnn_bbox_fc": [(1024, 56), (56,)],
    **{f"mrcnn_mask_conv{i}": [(3, 3, 256, 256), (256,)] for i in range(1, 5)},
    **{f"mrcnn_mask_bn{i}": [(256,)] * 4 for i in range(1, 5)},
    "mrcnn_mask_deconv": [(2, 2, 256, 256), (256,)],
    "mrcnn_mask": [(1, 1, 256, 14), (14,)],
}


def test_matterport_names_and_weight_shapes(full_size_heads):
    names = {layer.name for layer in full_size_heads.layers}
    weightless = {"roi_align_classifier", "roi_align_mask", "pool_squeeze", "mrcnn_class", "mrcnn_bbox"}
    assert weightless | set(MATTERPORT_WEIGHT_SHAPES) <= names
    for name, shapes in MATTERPORT_WEIGHT_SHAPES.items():
        layer = full_size_heads.get_layer(name)
        assert [tuple(w.shape) for w in layer.weights] == shapes, name
    bn = full_size_heads.get_layer("mrcnn_class_bn1")
    assert [w.path.split("/")[-1] for w in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    kernel = full_size_heads.get_layer("mrcnn_mask_conv3").weights[0]
    assert kernel.path == "mrcnn_mask_conv3/mrcnn_mask_conv3/kernel"
    for name in weightless:
        assert full_size_heads.get_layer(name).weights == []


def test_forward_pass_shapes_and_ranges(full_size_heads):
    logits, probs, bbox, masks = full_size_heads.predict(head_data(2, 3, 14), verbose=0)
    assert logits.shape == (2, 3, 14) and probs.shape == (2, 3, 14)
    assert bbox.shape == (2, 3, 14, 4) and masks.shape == (2, 3, 28, 28, 14)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    e = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(-1, keepdims=True), atol=1e-5)
    assert masks.min() >= 0.0 and masks.max() <= 1.0
    assert np.isfinite(bbox).all()


def test_symbolic_shapes_with_unknown_roi_count():
    rois, meta, maps = head_inputs(None, 5, channels=8)
    logits, probs, bbox = fpn_classifier_graph(rois, maps, meta, 3, 5, fc_layers_size=16)
    masks = build_fpn_mask_graph(rois, maps, meta, 4, 5)
    assert tuple(logits.shape) == (None, None, 5) and tuple(probs.shape) == (None, None, 5)
    assert tuple(bbox.shape) == (None, None, 5, 4) and tuple(masks.shape) == (None, None, 8, 8, 5)
    model = keras.Model([rois, meta] + maps, [logits, bbox, masks])
    outs = model.predict(head_data(1, 6, 5, channels=8), verbose=0)
    assert [o.shape for o in outs] == [(1, 6, 5), (1, 6, 5, 4), (1, 6, 8, 8, 5)]
    clone = keras.Model.from_config(model.get_config())       # every custom layer serialises
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert clone.get_layer("mrcnn_mask_bn2").layer.train_bn is True


def test_mask_head_logits_are_the_scores_before_the_sigmoid():
    rois, meta, maps = head_inputs(4, 3, channels=8)
    probabilities = build_fpn_mask_graph(rois, maps, meta, 4, 3)
    model = keras.Model([rois, meta] + maps, probabilities)
    rois2, meta2, maps2 = head_inputs(4, 3, channels=8)
    logits = keras.Model([rois2, meta2] + maps2, build_fpn_mask_graph(rois2, maps2, meta2, 4, 3, logits=True))
    assert [w.shape for w in logits.weights] == [w.shape for w in model.weights]
    logits.set_weights(model.get_weights())
    data = head_data(1, 4, 3, channels=8)
    scores = logits.predict(data, verbose=0)
    assert scores.min() < 0.0 or scores.max() > 1.0                  # raw scores, not probabilities
    np.testing.assert_allclose(model.predict(data, verbose=0), 1 / (1 + np.exp(-scores)), atol=1e-5)


def test_roi_time_distributed_equals_stock_time_distributed():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 6, 6, 3)).astype(np.float32)
    ours = ROITimeDistributed(keras.layers.Conv2D(4, (3, 3), name="c"), name="ours")
    expected_input = keras.Input((5, 6, 6, 3))
    ours(expected_input)
    stock = keras.layers.TimeDistributed(keras.layers.Conv2D(4, (3, 3)))
    stock(expected_input)
    stock.set_weights(ours.get_weights())
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(stock(x)), atol=1e-5)
    clone = ROITimeDistributed.from_config(ours.get_config())
    assert isinstance(clone, ROITimeDistributed) and clone.layer.filters == 4
    assert BatchNorm.from_config(BatchNorm(train_bn=False).get_config()).train_bn is False


def small_heads_fit_step(train_bn):
    """Fit one step of a small copy of the heads; return BN stats and gamma before and after."""
    keras.utils.set_random_seed(0)
    model = build_heads(num_rois=4, num_classes=3, train_bn=train_bn, fc_layers_size=16, channels=8,
                        pool=3, mask_pool=4)
    # Eager fit: the same train step as graph fit (the graph paths are covered by predict above)
    # without minutes of tracing on a 2-core machine.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=["mse", "mse", "mse", "mse"], run_eagerly=True)
    data = head_data(2, 4, 3, channels=8, seed=2)
    targets = [np.ones(tuple(o.shape), np.float32) for o in model(data)]
    bn_names = ["mrcnn_class_bn1", "mrcnn_class_bn2"] + [f"mrcnn_mask_bn{i}" for i in range(1, 5)]
    before = {n: [np.array(w) for w in model.get_layer(n).get_weights()] for n in bn_names}
    model.fit(data, targets, batch_size=2, epochs=1, verbose=0)
    after = {n: [np.array(w) for w in model.get_layer(n).get_weights()] for n in bn_names}
    return model, data, before, after


def test_frozen_batch_norm_keeps_moving_statistics():
    _, _, before, after = small_heads_fit_step(train_bn=False)
    for name in before:
        gamma0, _, mean0, var0 = before[name]
        gamma1, _, mean1, var1 = after[name]
        np.testing.assert_array_equal(mean0, mean1, err_msg=name)
        np.testing.assert_array_equal(var0, var1, err_msg=name)
        assert not np.array_equal(gamma0, gamma1), f"{name}: gamma should still train"


def test_trainable_batch_norm_updates_in_fit_and_not_in_predict():
    model, data, before, after = small_heads_fit_step(train_bn=True)
    for name in before:
        assert not np.array_equal(before[name][2], after[name][2]), f"{name}: moving mean should move"
    # Outside fit the flag is off: each ROI's output does not depend on the other ROIs.
    all_rois = [np.asarray(o) for o in model(data)]
    first_rois = data[0].copy()
    first_rois[:, 2:] = data[0][:, :1]            # replace ROIs 2 and 3 with ROI 0
    partial = [np.asarray(o) for o in model([first_rois] + data[1:])]
    for full, part in zip(all_rois, partial):
        np.testing.assert_allclose(full[:, :2], part[:, :2], atol=1e-5)


def test_classifier_batch_norm_statistics_leave_padding_rois_out():
    """In training, mrcnn_class_bn1 normalises with the moments of the real ROIs' rows only."""
    keras.utils.set_random_seed(0)
    rois, meta, maps = head_inputs(5, 3, channels=8)
    logits, _, _ = fpn_classifier_graph(rois, maps, meta, 3, 3, train_bn=True, fc_layers_size=16)
    heads = keras.Model([rois, meta] + maps, logits)
    probe = keras.Model(heads.inputs, [heads.get_layer("mrcnn_class_conv1").output,
                                       heads.get_layer("mrcnn_class_bn1").output])
    data = head_data(2, 5, 3, channels=8, seed=3)
    data[0][0, 3:] = 0.0                          # image 0: rows 3 and 4 are padding
    data[0][1, 4:] = 0.0                          # image 1: row 4
    before, after = (np.asarray(t).reshape(2, 5, 16) for t in probe(data, training=True))
    real = np.any(data[0] != 0, axis=2)
    rows = before[real]                           # (7, 16): the real ROIs only
    gamma, beta, _, _ = probe.get_layer("mrcnn_class_bn1").get_weights()
    epsilon = probe.get_layer("mrcnn_class_bn1").layer.epsilon
    expected = gamma * (rows - rows.mean(0)) / np.sqrt(rows.var(0) + epsilon) + beta
    np.testing.assert_allclose(after[real], expected, rtol=1e-4, atol=1e-4)
    # The padding rows did move the statistics before: all rows' moments give other values.
    everything = before.reshape(-1, 16)
    assert not np.allclose(rows.mean(0), everything.mean(0), atol=1e-3)


@pytest.mark.parametrize("side", [7, 1])      # mrcnn_class_conv1 (7x7) and mrcnn_class_conv2 (1x1)
def test_full_image_conv_equals_conv2d_in_value_and_gradient(side):
    import numpy as np
    import tensorflow as tf
    from mrcnn.heads import FullImageConv2D

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(5, side, side, 16)).astype("float32"))
    ours, reference = FullImageConv2D(8, (side, side)), keras.layers.Conv2D(8, (side, side))
    ours.build(x.shape)
    reference.build(x.shape)
    reference.set_weights([rng.normal(size=(side, side, 16, 8)).astype("float32"),
                           rng.normal(size=8).astype("float32")])
    ours.set_weights(reference.get_weights())
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        a, b = ours(x), reference(x)
    assert a.shape == b.shape == (5, 1, 1, 8)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tape.gradient(a, x), tape.gradient(b, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tape.gradient(a, ours.kernel), tape.gradient(b, reference.kernel), rtol=1e-4, atol=1e-3)


def test_untrained_classifier_is_near_uniform_with_near_zero_deltas(full_size_heads):
    # Fast R-CNN's initialisation (N(0, 0.01^2) logits, N(0, 0.001^2) deltas): Keras' Glorot default
    # gives logits up to ~0.9 and deltas up to ~1.0 here, a box loss that starts far from zero.
    logits, probs, bbox, _ = full_size_heads.predict(head_data(2, 3, 14), verbose=0)
    assert np.abs(logits).max() < 0.5
    assert probs.max() < 0.1                      # uniform over 14 classes is 0.071
    assert np.abs(bbox).max() < 0.1


@pytest.mark.parametrize("conv_init", ["glorot", "he"])
def test_conv_init_sets_the_spread_of_the_mask_head_kernels(conv_init):
    """The four 3x3 convolutions and the deconvolution: 256 channels in and out."""
    keras.utils.set_random_seed(0)
    rois, meta, maps = head_inputs(4, 3, channels=256)
    model = keras.Model([rois, meta] + maps, build_fpn_mask_graph(rois, maps, meta, 4, 3, conv_init=conv_init))
    for name, size in [("mrcnn_mask_conv1", 3), ("mrcnn_mask_conv4", 3), ("mrcnn_mask_deconv", 2)]:
        kernel = model.get_layer(name).layer.kernel.numpy()
        fan = size * size * 256
        expected = np.sqrt(2 / fan) if conv_init == "he" else np.sqrt(2 / (fan + fan))
        assert kernel.std() == pytest.approx(expected, rel=0.05), name
    first, last = (model.get_layer(f"mrcnn_mask_conv{i}").layer.kernel.numpy() for i in (1, 4))
    assert not np.allclose(first, last)                   # each layer draws its own values
