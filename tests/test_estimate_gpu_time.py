"""bench/estimate_gpu_time.py: the MAC counter against hand counts and published ResNet-50 figures,
the training-step rule, and the arithmetic that turns MACs into seconds and steps."""
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import keras
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import estimate_gpu_time as egt    # noqa: E402


def by_path(costs):
    out = {}
    for cost in costs:
        out.setdefault(cost.path, []).append(cost)
    return out


# -- the counter --------------------------------------------------------------------------------

def test_counter_matches_hand_counts_on_a_tiny_model():
    """Conv2D (same and strided valid), a nested model run on two sizes, Conv2DTranspose, Dense
    and a per-ROI Dense: each against its MACs worked out by hand."""
    layers = keras.layers
    shared = keras.Sequential([keras.Input((None, None, 4)), layers.Conv2D(5, 1, name="shared_1x1")],
                              name="shared")
    image = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", name="conv_same")(image)                 # 8x8x4
    b = layers.Conv2D(4, 3, strides=2, padding="valid", name="conv_valid")(a)        # 3x3x4
    small = layers.MaxPooling2D(2, name="pool")(a)                                    # 4x4x4
    s8, s4 = shared(a), shared(small)                                                 # 8x8x5, 4x4x5
    up = layers.Conv2DTranspose(3, 2, strides=2, name="deconv")(s4)                   # 8x8x3
    dense = layers.Dense(7, name="dense")(layers.Flatten()(b))                        # 36 -> 7
    rois = keras.Input((6, 10))
    per_roi = layers.TimeDistributed(layers.Dense(2, name="roi_dense"), name="roi_dense")(rois)
    model = keras.Model([image, rois], [s8, up, dense, per_roi])

    costs = by_path(egt.layer_costs(model))

    assert [c.macs for c in costs["conv_same"]] == [8 * 8 * 4 * (3 * 3 * 3)]
    assert [c.macs for c in costs["conv_valid"]] == [3 * 3 * 4 * (3 * 3 * 4)]
    # the nested model is counted once per call, at the size of that call
    assert sorted(c.macs for c in costs["shared/shared_1x1"]) == sorted([8 * 8 * 5 * 4, 4 * 4 * 5 * 4])
    # a transposed conv: every input pixel spreads a 2x2x3 patch from 5 channels
    assert [c.macs for c in costs["deconv"]] == [4 * 4 * 5 * (2 * 2 * 3)]
    assert [c.macs for c in costs["dense"]] == [36 * 7]
    roi = costs["roi_dense"]
    assert [(c.macs, c.per_roi) for c in roi] == [(10 * 2, True)]
    assert egt.total_macs(egt.layer_costs(model)) == (
        8 * 8 * 4 * 27 + 3 * 3 * 4 * 36 + 8 * 8 * 5 * 4 + 4 * 4 * 5 * 4 + 4 * 4 * 5 * 12 + 36 * 7)


def test_a_layer_with_a_kernel_it_cannot_count_is_an_error_not_a_zero():
    image = keras.Input((8, 8, 3))
    model = keras.Model(image, keras.layers.DepthwiseConv2D(3, name="depthwise")(image))
    with pytest.raises(NotImplementedError, match="depthwise"):
        egt.layer_costs(model)


def test_resnet50_at_224_matches_the_published_multiply_adds():
    """Two independent figures: ResNet-50 v1 (keras.applications) has 3.8e9 multiply-adds (He et
    al. 2016, Table 1); v1.5 (the stride in the 3x3 conv) 4.1e9."""
    v1 = egt.total_macs(egt.layer_costs(keras.applications.ResNet50(weights=None))) / 1e9
    v15 = egt.total_macs(egt.layer_costs(egt.resnet50_v15())) / 1e9
    assert v1 == pytest.approx(egt.RESNET50_V1_GMACS, rel=0.05)
    assert v15 == pytest.approx(egt.RESNET50_V15_GMACS, rel=0.05)
    assert v15 > v1            # striding later leaves the 3x3 convs of each first block at full size


def test_wide_resnet_anchor_counts_its_convolutions():
    """WRN-28-10 at 32x32, summed by hand block by block (3x3 convs, 1x1 shortcuts, classifier)."""
    def conv(hw, cin, cout, k=3):
        return hw * hw * cout * k * k * cin
    expected = conv(32, 3, 16)
    for hw_in, hw_out, cin, cout in ((32, 32, 16, 160), (32, 16, 160, 320), (16, 8, 320, 640)):
        expected += conv(hw_in, cin, cout) + conv(hw_out, cout, cout) + conv(hw_out, cin, cout, 1)
        expected += 3 * 2 * conv(hw_out, cout, cout)
    expected += 640 * 10
    assert egt.total_macs(egt.layer_costs(egt.wide_resnet())) == expected


# -- the training step rule ---------------------------------------------------------------------

def fake_network():
    config = SimpleNamespace(BATCH_SIZE=2, TRAIN_ROIS_PER_IMAGE=10, ROI_POSITIVE_RATIO=0.5,
                             POST_NMS_ROIS_INFERENCE=20, DETECTION_MAX_INSTANCES=4)
    costs = [egt.LayerCost("res2a_branch2a", "res2a_branch2a", "Conv2D", 10),
             egt.LayerCost("res4a_branch2a", "res4a_branch2a", "Conv2D", 7),
             egt.LayerCost("fpn_p2", "fpn_p2", "Conv2D", 20),
             egt.LayerCost("rpn_conv_shared", "rpn_model/rpn_conv_shared", "Conv2D", 5),
             egt.LayerCost("mrcnn_class_conv1", "mrcnn_class_conv1", "Conv2D", 2, per_roi=True),
             egt.LayerCost("mrcnn_mask_conv1", "mrcnn_mask_conv1", "Conv2D", 3, per_roi=True)]
    return egt.NetworkCost(config, costs)


def test_forward_counts_each_head_on_its_rois():
    net = fake_network()
    # training: classifier on 10 sampled ROIs, mask on the 5 positives
    assert net.forward(egt.TRAINING) == 10 + 7 + 20 + 5 + 2 * 10 + 3 * 5
    # inference: classifier on 20 proposals, mask on 4 detections
    assert net.forward(egt.INFERENCE) == 10 + 7 + 20 + 5 + 2 * 20 + 3 * 4


def test_training_step_is_three_forwards_for_trainable_layers_and_one_for_frozen():
    net = fake_network()
    forward = 10 + 7 + 20 + 5 + 2 * 10 + 3 * 5
    assert net.step("all") == 2 * 3 * forward
    # heads: the ResNet (res2, res4) runs forward only; FPN, RPN and heads forward and backward
    assert net.step("heads") == 2 * (10 + 7 + 3 * (20 + 5 + 2 * 10 + 3 * 5))
    # 4+: res4 trains too, res2 stays frozen
    assert net.step("4+") == 2 * (10 + 3 * (7 + 20 + 5 + 2 * 10 + 3 * 5))


# -- seconds, steps, overhead -------------------------------------------------------------------

def test_seconds_divide_macs_by_the_rate_and_add_the_overhead_at_float32_speed():
    rates = {"fp32": 1e12, "mixed": 4e12}
    assert egt.seconds(2e12, "fp32", rates, 1.0) == pytest.approx(2.0)
    assert egt.seconds(2e12, "fp32", rates, 3.0) == pytest.approx(6.0)
    # mixed: the convolutions at 4x, the other work (2x the float32 conv time) as in float32
    assert egt.seconds(2e12, "mixed", rates, 3.0) == pytest.approx(0.5 + 4.0)
    assert egt.seconds(2e12, "fp32", rates, 0.5) == pytest.approx(2.0)      # never below the MACs alone


def test_steps_in_budget_is_budget_over_seconds_per_step():
    assert egt.steps_in_budget(50 * 60, [(10 ** 6, 2.0)]) == (1500, [1500])
    assert egt.steps_in_budget(50 * 60, [(10 ** 6, 0.7)])[0] == math.floor(3000 / 0.7)
    # stages run in order: the first ends after its 10 planned steps (40 s), the rest buys 10 more
    assert egt.steps_in_budget(100, [(10, 4.0), (100, 6.0)]) == (20, [10, 10])
    # a budget that ends in the first stage leaves the second nothing
    assert egt.steps_in_budget(20, [(10, 4.0), (100, 6.0)]) == (5, [5, 0])
    # a budget larger than the plan buys the plan
    assert egt.steps_in_budget(10 ** 6, [(10, 4.0), (100, 6.0)]) == (110, [10, 100])


def test_overhead_factor_and_anchor_rates():
    # a reference at 5e12 MAC/s against Mask R-CNN doing 1e12 MACs per image at 2 images/s
    assert egt.overhead_factor(5e12, 1e12, 2.0) == pytest.approx(2.5)
    rates = egt.anchor_rates(4e9, {"fp32": 100.0, "mixed": 250.0}, training=True)
    assert rates == pytest.approx({"fp32": 1.2e12, "mixed": 3e12})
    rates = egt.anchor_rates(4e9, {"fp32": 100.0, "mixed": 250.0}, training=False)
    assert rates == pytest.approx({"fp32": 4e11, "mixed": 1e12})


# -- the colab profile's network (built once) -------------------------------------------------------

@pytest.fixture(scope="module")
def colab():
    from helpers.profiles import get_profile

    profile = get_profile("colab")
    return profile, egt.network_cost(egt.profile_config(profile))


def test_colab_network_counts_the_rpn_on_every_level_and_the_heads_per_roi(colab):
    profile, net = colab
    config = net.config
    assert config.IMAGE_SHAPE[0] == profile.image_dim and config.NUM_CLASSES == 1 + egt.MODEL1_CLASSES
    costs = by_path(net.costs)
    side = profile.image_dim
    # the shared RPN conv (512 filters, 3x3 over the 256-channel pyramid) once per level P2..P6
    expected = [(side // s) ** 2 * 512 * 9 * config.TOP_DOWN_PYRAMID_SIZE for s in (4, 8, 16, 32, 64)]
    assert sorted(c.macs for c in costs["rpn_model/rpn_conv_shared"]) == sorted(expected)
    # a mask-head 3x3 conv per ROI: 14x14 pooled, 256 -> 256
    pool = config.MASK_POOL_SIZE
    assert [(c.macs, c.per_roi) for c in costs["mrcnn_mask_conv1"]] == [(pool * pool * 256 * 256 * 9, True)]
    # the first box-head layer is a 7x7 "fully connected" conv per ROI
    size = config.POOL_SIZE
    assert [c.macs for c in costs["mrcnn_class_conv1"]] == [
        size * size * config.TOP_DOWN_PYRAMID_SIZE * config.FPN_CLASSIF_FC_LAYERS_SIZE]
    # the heads stage runs the ResNet forward only: cheaper than 4+, which is cheaper than all
    assert net.step("heads") < net.step("4+") < net.step("all") == 3 * config.BATCH_SIZE * net.forward(egt.TRAINING)
