"""ResNet + FPN backbone: Matterport/Keras layer names, kernel shapes, strides, BatchNorm freezing, FPN maths."""
import string

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import backbone, meta
from mrcnn.config import Config

BLOCKS = {"resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3]}


def expected_names(architecture, stage5=True):
    """Conv and BatchNorm layer names written out from the naming rule, independently of the module."""
    convs, norms = ["conv1"], ["bn_conv1"]
    stages = [2, 3, 4, 5] if stage5 else [2, 3, 4]
    for stage in stages:
        for letter in string.ascii_lowercase[:BLOCKS[architecture][stage - 2]]:
            branches = ["2a", "2b", "2c"] + (["1"] if letter == "a" else [])
            convs += [f"res{stage}{letter}_branch{branch}" for branch in branches]
            norms += [f"bn{stage}{letter}_branch{branch}" for branch in branches]
    return convs, norms


def names_of(model, kind):
    return [layer.name for layer in model.layers if isinstance(layer, kind)]


@pytest.fixture(scope="module")
def resnet50():
    image = keras.Input((None, None, 3))
    return keras.Model(image, backbone.resnet_graph(image, "resnet50", stage5=True, train_bn=False))


def test_resnet50_layer_names(resnet50):
    convs, norms = expected_names("resnet50")
    assert len(convs) == 53
    assert sorted(names_of(resnet50, keras.layers.Conv2D)) == sorted(convs)
    assert sorted(names_of(resnet50, keras.layers.BatchNormalization)) == sorted(norms)


def test_resnet101_layer_names_and_stage5_off():
    image = keras.Input((None, None, 3))
    model = keras.Model(image, backbone.resnet_graph(image, "resnet101")[1:])
    convs, norms = expected_names("resnet101")
    assert len(convs) == 104
    assert sorted(names_of(model, keras.layers.Conv2D)) == sorted(convs)
    assert sorted(names_of(model, keras.layers.BatchNormalization)) == sorted(norms)
    assert "res4w_branch2c" in convs and "res4x_branch2a" not in convs

    image = keras.Input((None, None, 3))
    stages = backbone.resnet_graph(image, "resnet50", stage5=False)
    assert len(stages) == 5 and stages[4] is None
    short = keras.Model(image, stages[:4])
    assert sorted(names_of(short, keras.layers.Conv2D)) == sorted(expected_names("resnet50", stage5=False)[0])


def test_unknown_architecture():
    with pytest.raises(ValueError, match="resnet152"):
        backbone.resnet_graph(keras.Input((None, None, 3)), "resnet152")


def test_kernel_shapes_strides_and_biases(resnet50):
    layer = resnet50.get_layer
    assert tuple(layer("conv1").kernel.shape) == (7, 7, 3, 64)
    assert layer("conv1").padding == "valid" and layer("conv1").strides == (2, 2)
    assert tuple(layer("res2a_branch2c").kernel.shape) == (1, 1, 64, 256)
    assert tuple(layer("res5c_branch2c").kernel.shape) == (1, 1, 512, 2048)
    assert tuple(layer("res3a_branch1").kernel.shape) == (1, 1, 256, 512)
    assert tuple(layer("res4b_branch2b").kernel.shape) == (3, 3, 256, 256)
    assert tuple(layer("bn5a_branch1").gamma.shape) == (2048,)
    # The stage's stride sits in the first block's 1x1 convs, not in its 3x3.
    assert layer("res2a_branch2a").strides == (1, 1) and layer("res2a_branch1").strides == (1, 1)
    for stage in (3, 4, 5):
        assert layer(f"res{stage}a_branch2a").strides == (2, 2)
        assert layer(f"res{stage}a_branch1").strides == (2, 2)
        assert layer(f"res{stage}a_branch2b").strides == (1, 1)
        assert layer(f"res{stage}b_branch2a").strides == (1, 1)
    assert all(conv.use_bias for conv in resnet50.layers if isinstance(conv, keras.layers.Conv2D))
    padding, = [pad for pad in resnet50.layers if isinstance(pad, keras.layers.ZeroPadding2D)]
    assert padding.padding == ((3, 3), (3, 3))


def test_output_strides(resnet50):
    image = np.random.default_rng(0).normal(size=(1, 128, 128, 3)).astype(np.float32)
    shapes = [tuple(output.shape) for output in resnet50(image)]
    assert shapes == [(1, 32, 32, 64), (1, 32, 32, 256), (1, 16, 16, 512), (1, 8, 8, 1024), (1, 4, 4, 2048)]


def test_frozen_batch_norm_ignores_training_flag(resnet50):
    image = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype(np.float32)
    bn = resnet50.get_layer("bn3a_branch2a")
    mean_before = bn.moving_mean.numpy().copy()
    inference = resnet50(image, training=False)[3].numpy()
    training = resnet50(image, training=True)[3].numpy()
    assert np.allclose(inference, training, atol=1e-5)
    assert np.array_equal(bn.moving_mean.numpy(), mean_before)


@pytest.mark.parametrize("train_bn", [True, None])
def test_trainable_batch_norm_follows_training_flag(train_bn):
    image = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(image)
    model = keras.Model(image, backbone.BatchNorm(train_bn, name="bn")(x))
    data = np.random.default_rng(2).normal(3.0, 2.0, size=(2, 8, 8, 3)).astype(np.float32)
    batch_stats = model(data, training=True).numpy()
    assert np.allclose(batch_stats.mean(axis=(0, 1, 2)), 0.0, atol=1e-3)   # normalised by the batch itself
    assert not np.allclose(model(data, training=False).numpy(), batch_stats, atol=1e-2)
    assert not np.allclose(model.get_layer("bn").moving_mean.numpy(), 0.0)  # statistics were updated
    assert backbone.BatchNorm.from_config(model.get_layer("bn").get_config()).train_bn == train_bn


def test_fpn_shapes_names_and_top_down_sum():
    depth = 16
    c2, c3, c4, c5 = (keras.Input((side, side, channels))
                      for side, channels in ((16, 8), (8, 12), (4, 10), (2, 6)))
    pyramid = backbone.fpn_graph(c2, c3, c4, c5, pyramid_size=depth)
    model = keras.Model([c2, c3, c4, c5], pyramid)
    names = {layer.name for layer in model.layers}
    assert {"fpn_c5p5", "fpn_c4p4", "fpn_c3p3", "fpn_c2p2", "fpn_p5upsampled", "fpn_p4upsampled",
            "fpn_p3upsampled", "fpn_p4add", "fpn_p3add", "fpn_p2add", "fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5",
            "fpn_p6"} <= names
    assert model.get_layer("fpn_p3").padding == "same"
    assert tuple(model.get_layer("fpn_p2").kernel.shape) == (3, 3, depth, depth)
    assert tuple(model.get_layer("fpn_c3p3").kernel.shape) == (1, 1, 12, depth)

    rng = np.random.default_rng(3)
    inputs = [rng.normal(size=(2, side, side, channels)).astype(np.float32)
              for side, channels in ((16, 8), (8, 12), (4, 10), (2, 6))]
    p2, p3, p4, p5, p6 = (output.numpy() for output in model(inputs))
    graph_p2 = tf.function(lambda tensors: model(tensors)[0])([tf.constant(x) for x in inputs])
    assert np.allclose(graph_p2.numpy(), p2, atol=1e-5)
    assert [p.shape for p in (p2, p3, p4, p5, p6)] == [(2, s, s, depth) for s in (16, 8, 4, 2, 1)]
    assert np.allclose(p6, p5[:, ::2, ::2])

    # Oracle for the top-down path: nearest-neighbour x2 of the P5 lateral plus the C4 lateral.
    def lateral(name, x):
        kernel, bias = (w.numpy() for w in model.get_layer(name).weights)
        return x @ kernel[0, 0] + bias

    p5_lateral = lateral("fpn_c5p5", inputs[3])
    expected_p4_sum = np.repeat(np.repeat(p5_lateral, 2, axis=1), 2, axis=2) + lateral("fpn_c4p4", inputs[2])
    p4_sum = keras.Model(model.inputs, model.get_layer("fpn_p4add").output)(inputs)
    assert np.allclose(p4_sum, expected_p4_sum, atol=1e-4)


def tiny_resnet_like(input_image, stage5=True, train_bn=False):
    """Stand-in backbone with ResNet's strides (4, 8, 16, 32) and few weights, for fast tests."""
    x, stages = input_image, [None]
    for index in range(4):
        x = keras.layers.Conv2D(4, 3, strides=4 if index == 0 else 2, padding="same")(x)
        stages.append(x)
    return stages


def build_backbone(image, config):
    """backbone.build_backbone with the settings build_network hands it."""
    return backbone.build_backbone(image, config.BACKBONE, config.TOP_DOWN_PYRAMID_SIZE, config.TRAIN_BN,
                                   config.CONV_INIT)


def test_build_backbone_uses_resnet_graph_and_the_config(monkeypatch):
    calls = []

    def fake_resnet_graph(input_image, architecture, stage5=True, train_bn=False, conv_init="glorot"):
        calls.append((architecture, stage5, train_bn, conv_init))
        return tiny_resnet_like(input_image)

    monkeypatch.setattr(backbone, "resnet_graph", fake_resnet_graph)
    config = Config(NAME="t", BACKBONE="resnet50", IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128, TOP_DOWN_PYRAMID_SIZE=32,
                    CONV_INIT="he")
    image = keras.Input(tuple(int(v) for v in config.IMAGE_SHAPE))
    pyramid = build_backbone(image, config)
    assert calls == [("resnet50", True, False, "he")]
    shapes = [list(p.shape[1:3]) for p in pyramid]
    assert shapes == meta.compute_backbone_shapes(config, config.IMAGE_SHAPE).tolist()
    assert all(p.shape[-1] == 32 for p in pyramid)


def test_build_backbone_calls_a_custom_backbone():
    calls = []

    def tiny_backbone(input_image, stage5=True, train_bn=False):
        calls.append((stage5, train_bn))
        return tiny_resnet_like(input_image)

    config = Config(NAME="t", BACKBONE=tiny_backbone, TRAIN_BN=True, IMAGE_MIN_DIM=64, IMAGE_MAX_DIM=64,
                    TOP_DOWN_PYRAMID_SIZE=8,
                    COMPUTE_BACKBONE_SHAPE=lambda shape: [[shape[0] // s, shape[1] // s] for s in (4, 8, 16, 32, 64)])
    pyramid = build_backbone(keras.Input((64, 64, 3)), config)
    assert calls == [(True, True)]
    assert [list(p.shape[1:3]) for p in pyramid] == meta.compute_backbone_shapes(config, (64, 64, 3)).tolist()

    config.BACKBONE = lambda image, stage5=True, train_bn=False: [image]
    with pytest.raises(ValueError, match="C1, C2, C3, C4, C5"):
        build_backbone(keras.Input((64, 64, 3)), config)


def test_get_imagenet_weights_asks_keras_for_the_checked_file(monkeypatch, tmp_path):
    calls = []

    def fake_get_file(*args, **kwargs):
        calls.append((args, kwargs))
        return str(tmp_path / "models" / "weights.h5")

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    assert backbone.get_imagenet_weights(cache_dir=tmp_path) == str(tmp_path / "models" / "weights.h5")
    (args, kwargs), = calls
    call = dict(zip(("fname", "origin"), args), **kwargs)
    assert call["origin"] == ("https://github.com/fchollet/deep-learning-models/releases/download/v0.2/"
                              "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert call["fname"] == "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    md5 = call.get("md5_hash") or call.get("file_hash")
    assert md5 == "a268eb855778b3df3c7506639542a6af"
    assert call.get("hash_algorithm", "md5") in ("md5", "auto")
    assert call["cache_dir"] == str(tmp_path) and call["cache_subdir"] == "models"


@pytest.mark.parametrize("architecture, convs", [("resnet18", 20), ("resnet34", 36)])
def test_light_resnets_use_basic_blocks(architecture, convs):
    """resnet18/34: two 3x3 convs a block, projections only where stages 3-5 start."""
    image = keras.Input(shape=(64, 64, 3))
    c1, c2, c3, c4, c5 = backbone.resnet_graph(image, architecture, train_bn=True)
    model = keras.Model(image, [c2, c3, c4, c5])
    conv_names = [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(conv_names) == convs  # conv1 + 2 per block + 3 projections
    assert {n for n in conv_names if n.endswith("_branch1")} == {"res3a_branch1", "res4a_branch1", "res5a_branch1"}
    assert not any(n.endswith("2c") for n in conv_names)
    assert [tuple(t.shape[1:]) for t in model.outputs] == [(16, 16, 64), (8, 8, 128), (4, 4, 256), (2, 2, 512)]
    assert tuple(model.get_layer("res3a_branch2a").kernel.shape) == (3, 3, 64, 128)


# (layer, fan_in, fan_out) of resnet18's kernels: kernel height * width * input or output channels
RESNET18_FANS = [("conv1", 7 * 7 * 3, 7 * 7 * 64), ("res2a_branch2a", 9 * 64, 9 * 64),
                 ("res3a_branch1", 64, 128), ("res4b_branch2b", 9 * 256, 9 * 256), ("res5a_branch2a", 9 * 256, 9 * 512)]


@pytest.mark.parametrize("conv_init", ["glorot", "he"])
def test_conv_init_sets_the_spread_of_the_resnet_kernels(conv_init):
    """He: variance 2 / fan_out (He et al. 2015); Glorot (the default): 2 / (fan_in + fan_out)."""
    keras.utils.set_random_seed(0)
    image = keras.Input(shape=(64, 64, 3))
    model = keras.Model(image, backbone.resnet_graph(image, "resnet18", train_bn=True, conv_init=conv_init)[1:])
    for name, fan_in, fan_out in RESNET18_FANS:
        kernel = model.get_layer(name).kernel.numpy()
        expected = np.sqrt(2 / fan_out) if conv_init == "he" else np.sqrt(2 / (fan_in + fan_out))
        assert kernel.std() == pytest.approx(expected, rel=0.05), name
        assert abs(kernel.mean()) < 0.05 * expected, name
    same_shape = [model.get_layer(name).kernel.numpy()                # 3x3, 64 -> 64: each draws its own
                  for name in ("res2a_branch2a", "res2a_branch2b", "res2b_branch2a")]
    assert not np.allclose(same_shape[0], same_shape[1]) and not np.allclose(same_shape[0], same_shape[2])


def test_unknown_conv_init_is_refused_by_name():
    with pytest.raises(ValueError, match="conv_init.*'kaiming'"):
        backbone.conv_initializer("kaiming")


def test_a_strided_bottleneck_block_never_reads_the_odd_pixels():
    """The oracle is what a stride means: with the stride on the 1x1 convs (main path and shortcut,
    Matterport's placement, which its files need), the block's output does not depend on its input
    at odd rows or columns."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 16))
    block = keras.Model(inputs, backbone._bottleneck(inputs, (4, 4, 16), 3, "a", (2, 2), projection=True,
                                                     train_bn=False))
    x = np.random.default_rng(2).normal(size=(1, 8, 8, 16)).astype(np.float32)
    odd = x.copy()
    odd[:, 1::2, :, :] += 5.0       # odd rows
    odd[:, :, 1::2, :] -= 3.0       # odd columns
    changed = np.abs(block(odd).numpy() - block(x).numpy()).max()
    even = x.copy()
    even[:, 0::2, 0::2, :] += 5.0   # the pixels every variant reads
    assert np.abs(block(even).numpy() - block(x).numpy()).max() > 1e-3
    assert changed < 1e-6, changed
