"""Tests for mrcnn.config: Matterport defaults, derived values, validation errors, listing."""
import json

import numpy as np
import pytest

from mrcnn.config import Config


class ModaNetConfig(Config):
    NAME = "modanet"
    NUM_CLASSES = 1 + 13


MATTERPORT_DEFAULTS = {
    "NAME": None, "GPU_COUNT": 1, "IMAGES_PER_GPU": 2, "STEPS_PER_EPOCH": 1000, "VALIDATION_STEPS": 50,
    "BACKBONE": "resnet101", "COMPUTE_BACKBONE_SHAPE": None, "BACKBONE_STRIDES": [4, 8, 16, 32, 64],
    "FPN_CLASSIF_FC_LAYERS_SIZE": 1024, "TOP_DOWN_PYRAMID_SIZE": 256, "NUM_CLASSES": 1,
    "RPN_ANCHOR_SCALES": (32, 64, 128, 256, 512), "RPN_ANCHOR_RATIOS": [0.5, 1, 2], "RPN_ANCHOR_STRIDE": 1,
    "RPN_NMS_THRESHOLD": 0.7, "RPN_TRAIN_ANCHORS_PER_IMAGE": 256, "PRE_NMS_LIMIT": 6000,
    "POST_NMS_ROIS_TRAINING": 2000, "POST_NMS_ROIS_INFERENCE": 1000, "USE_MINI_MASK": True,
    "MINI_MASK_SHAPE": (56, 56), "IMAGE_RESIZE_MODE": "square", "IMAGE_MIN_DIM": 800, "IMAGE_MAX_DIM": 1024,
    "IMAGE_MIN_SCALE": 0, "IMAGE_CHANNEL_COUNT": 3, "TRAIN_ROIS_PER_IMAGE": 200, "ROI_POSITIVE_RATIO": 0.33,
    "POOL_SIZE": 7, "MASK_POOL_SIZE": 14, "MASK_SHAPE": [28, 28], "MAX_GT_INSTANCES": 100,
    "DETECTION_MAX_INSTANCES": 100, "DETECTION_MIN_CONFIDENCE": 0.7, "DETECTION_NMS_THRESHOLD": 0.3,
    "LEARNING_RATE": 0.001, "LEARNING_MOMENTUM": 0.9, "WEIGHT_DECAY": 0.0001, "USE_RPN_ROIS": True,
    "TRAIN_BN": False, "GRADIENT_CLIP_NORM": 5.0,
}
# This engine's settings beyond Matterport's, each defaulting to Matterport's behaviour.
OURS = {"BATCH_NORM_MOMENTUM", "KEEP_CHECKPOINTS", "MRCNN_BBOX_LOSS", "RPN_BBOX_LOSS", "CONV_INIT",
        "MASK_TARGET_SAMPLING", "PRECISE_BN_BATCHES", "ROI_ALIGN", "MIXED_PRECISION"}


def test_class_defaults_match_matterport():
    for name, expected in MATTERPORT_DEFAULTS.items():
        assert getattr(Config, name) == expected, name
    np.testing.assert_allclose(Config.MEAN_PIXEL, [123.7, 116.8, 103.9])
    np.testing.assert_allclose(Config.RPN_BBOX_STD_DEV, [0.1, 0.1, 0.2, 0.2])
    np.testing.assert_allclose(Config.BBOX_STD_DEV, [0.1, 0.1, 0.2, 0.2])
    assert Config.LOSS_WEIGHTS == {name: 1.0 for name in (
        "rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")}


def test_subclass_derived_values():
    config = ModaNetConfig()
    assert config.BATCH_SIZE == 2
    assert list(config.IMAGE_SHAPE) == [1024, 1024, 3]
    assert config.IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 14


@pytest.mark.parametrize("mode, min_dim, max_dim, expected", [
    ("square", 512, 640, [640, 640, 3]),
    ("crop", 256, 1024, [256, 256, 3]),
    ("pad64", 500, 1000, [1024, 1024, 3]),
    ("pad64", 512, 512, [512, 512, 3]),
    ("none", 800, 1024, [1024, 1024, 3]),
])
def test_image_shape_per_resize_mode(mode, min_dim, max_dim, expected):
    config = ModaNetConfig(IMAGE_RESIZE_MODE=mode, IMAGE_MIN_DIM=min_dim, IMAGE_MAX_DIM=max_dim)
    assert list(config.IMAGE_SHAPE) == expected


def test_keyword_overrides_feed_derived_values():
    config = Config(NAME="x", NUM_CLASSES=3, GPU_COUNT=2, IMAGES_PER_GPU=3, IMAGE_CHANNEL_COUNT=4,
                    MEAN_PIXEL=np.array([1.0, 2.0, 3.0, 4.0]))
    assert (config.NAME, config.NUM_CLASSES, config.BATCH_SIZE) == ("x", 3, 6)
    assert config.IMAGE_META_SIZE == 12 + 3
    assert list(config.IMAGE_SHAPE) == [1024, 1024, 4]
    assert Config.NAME is None and Config.NUM_CLASSES == 1   # the class itself is untouched


def test_mutable_defaults_are_not_shared_between_instances():
    first, second = ModaNetConfig(), ModaNetConfig()
    first.LOSS_WEIGHTS["mrcnn_mask_loss"] = 5.0
    first.MEAN_PIXEL[0] = 0.0
    first.BACKBONE_STRIDES.append(128)
    assert second.LOSS_WEIGHTS["mrcnn_mask_loss"] == 1.0
    assert second.MEAN_PIXEL[0] == pytest.approx(123.7)
    assert Config.BACKBONE_STRIDES == [4, 8, 16, 32, 64]


def test_callable_backbone_with_shape_function_is_accepted():
    config = ModaNetConfig(BACKBONE=lambda x: x, COMPUTE_BACKBONE_SHAPE=lambda shape: [shape])
    assert callable(config.BACKBONE)
    json.dumps(config.to_dict())


@pytest.mark.parametrize("overrides, attribute", [
    ({"NAME": None}, "NAME"),
    ({"NAME": ""}, "NAME"),
    ({"NUM_CLASSES": 0}, "NUM_CLASSES"),
    ({"NUM_CLASSES": 2.5}, "NUM_CLASSES"),
    ({"GPU_COUNT": 0}, "GPU_COUNT"),
    ({"IMAGES_PER_GPU": 0}, "IMAGES_PER_GPU"),
    ({"IMAGES_PER_GPU": True}, "IMAGES_PER_GPU"),
    ({"STEPS_PER_EPOCH": -1}, "STEPS_PER_EPOCH"),
    ({"BACKBONE": "resnet152"}, "BACKBONE"),
    ({"BACKBONE": lambda x: x}, "COMPUTE_BACKBONE_SHAPE"),
    ({"COMPUTE_BACKBONE_SHAPE": 3}, "COMPUTE_BACKBONE_SHAPE"),
    ({"RPN_ANCHOR_SCALES": (32, 64, 128, 256)}, "RPN_ANCHOR_SCALES"),
    ({"RPN_ANCHOR_SCALES": (32, 64, 0, 256, 512)}, "RPN_ANCHOR_SCALES"),
    ({"BACKBONE_STRIDES": [4, 8, 16.5, 32, 64]}, "BACKBONE_STRIDES"),
    ({"RPN_ANCHOR_RATIOS": []}, "RPN_ANCHOR_RATIOS"),
    ({"RPN_ANCHOR_RATIOS": [0.5, -1]}, "RPN_ANCHOR_RATIOS"),
    ({"IMAGE_RESIZE_MODE": "stretch"}, "IMAGE_RESIZE_MODE"),
    ({"IMAGE_MAX_DIM": 1000}, "IMAGE_MAX_DIM"),
    ({"IMAGE_RESIZE_MODE": "crop", "IMAGE_MIN_DIM": 500}, "IMAGE_MIN_DIM"),
    ({"IMAGE_MIN_DIM": 1100}, "IMAGE_MIN_DIM"),
    ({"IMAGE_MIN_SCALE": -1}, "IMAGE_MIN_SCALE"),
    ({"ROI_POSITIVE_RATIO": 0}, "ROI_POSITIVE_RATIO"),
    ({"ROI_POSITIVE_RATIO": 1.5}, "ROI_POSITIVE_RATIO"),
    ({"RPN_NMS_THRESHOLD": 0.0}, "RPN_NMS_THRESHOLD"),
    ({"DETECTION_NMS_THRESHOLD": 1.2}, "DETECTION_NMS_THRESHOLD"),
    ({"DETECTION_MIN_CONFIDENCE": -0.1}, "DETECTION_MIN_CONFIDENCE"),
    ({"DETECTION_MIN_CONFIDENCE": float("nan")}, "DETECTION_MIN_CONFIDENCE"),
    ({"MASK_SHAPE": [14, 14]}, "MASK_SHAPE"),
    ({"MASK_SHAPE": [28]}, "MASK_SHAPE"),
    ({"MINI_MASK_SHAPE": (56,)}, "MINI_MASK_SHAPE"),
    ({"MEAN_PIXEL": np.array([1.0, 2.0])}, "MEAN_PIXEL"),
    ({"BBOX_STD_DEV": np.array([0.1, 0.1, 0.2])}, "BBOX_STD_DEV"),
    ({"LEARNING_RATE": 0}, "LEARNING_RATE"),
    ({"LEARNING_MOMENTUM": 1.0}, "LEARNING_MOMENTUM"),
    ({"WEIGHT_DECAY": -0.1}, "WEIGHT_DECAY"),
    ({"GRADIENT_CLIP_NORM": 0}, "GRADIENT_CLIP_NORM"),
    ({"KEEP_CHECKPOINTS": 0}, "KEEP_CHECKPOINTS"),
    ({"KEEP_CHECKPOINTS": 2.5}, "KEEP_CHECKPOINTS"),
    ({"LOSS_WEIGHTS": {"rpn_class_loss": 1.0}}, "LOSS_WEIGHTS"),
    ({"LOSS_WEIGHTS": {"rpn_class_loss": 1.0, "rpn_bbox_loss": 1.0, "mrcnn_class_loss": 1.0,
                       "mrcnn_bbox_loss": 1.0, "mrcnn_mask_loss": -1.0}}, "LOSS_WEIGHTS"),
    ({"USE_MINI_MASK": "yes"}, "USE_MINI_MASK"),
    ({"TRAIN_BN": None}, "TRAIN_BN"),
    ({"MIXED_PRECISION": "mixed_float16"}, "MIXED_PRECISION"),
    ({"PRECISE_BN_BATCHES": -1, "TRAIN_BN": True}, "PRECISE_BN_BATCHES"),
    ({"PRECISE_BN_BATCHES": 2.5, "TRAIN_BN": True}, "PRECISE_BN_BATCHES"),
    ({"PRECISE_BN_BATCHES": 10, "TRAIN_BN": False}, "PRECISE_BN_BATCHES"),
    ({"MRCNN_BBOX_LOSS": "l1"}, "MRCNN_BBOX_LOSS"),
    ({"RPN_BBOX_LOSS": None}, "RPN_BBOX_LOSS"),
    ({"CONV_INIT": "kaiming"}, "CONV_INIT"),
    ({"MASK_TARGET_SAMPLING": "cell_centres"}, "MASK_TARGET_SAMPLING"),
    ({"ROI_ALIGN": "v2"}, "ROI_ALIGN"),
    ({"ROI_ALIGN": "aligned"}, "ROI_ALIGN"),              # a former value name: only saved configs upgrade
    ({"USE_RPN_ROIS": False}, "USE_RPN_ROIS"),
])
def test_each_bad_setting_is_named_in_the_error(overrides, attribute):
    with pytest.raises(ValueError) as error:
        ModaNetConfig(**overrides)
    assert f"ModaNetConfig.{attribute} = " in str(error.value)


def test_precise_batch_norm_is_off_by_default_and_allowed_with_trained_batch_norm():
    assert ModaNetConfig().PRECISE_BN_BATCHES == 0
    assert ModaNetConfig(TRAIN_BN=True, PRECISE_BN_BATCHES=10).PRECISE_BN_BATCHES == 10
    with pytest.raises(ValueError, match="PRECISE_BN_BATCHES = 10: needs TRAIN_BN = True"):
        ModaNetConfig(PRECISE_BN_BATCHES=10)


def test_base_config_needs_a_name_and_subclass_errors_name_the_class():
    with pytest.raises(ValueError, match=r"Config\.NAME = None"):
        Config()

    class BadConfig(ModaNetConfig):
        IMAGE_MAX_DIM = 1000

    with pytest.raises(ValueError, match=r"BadConfig\.IMAGE_MAX_DIM = 1000: must be a multiple of 64"):
        BadConfig()


def test_unknown_or_derived_keyword_is_rejected():
    with pytest.raises(ValueError, match="Unknown setting NUM_CLASS=3"):
        ModaNetConfig(NUM_CLASS=3)
    with pytest.raises(ValueError, match="BATCH_SIZE is computed"):
        ModaNetConfig(BATCH_SIZE=8)


def test_gradient_clip_can_be_disabled_and_background_only_constructs():
    assert ModaNetConfig(GRADIENT_CLIP_NORM=None).GRADIENT_CLIP_NORM is None
    assert Config(NAME="shapes-only").NUM_CLASSES == 1   # documented: >= 1 is required


def test_display_lists_every_setting_sorted_and_aligned(capsys):
    config = ModaNetConfig()
    config.display()
    lines = [line for line in capsys.readouterr().out.splitlines() if line and not line.startswith("Config")]
    names = [line.split()[0] for line in lines]
    expected = sorted(set(MATTERPORT_DEFAULTS) | {"MEAN_PIXEL", "RPN_BBOX_STD_DEV", "BBOX_STD_DEV",
                                                  "LOSS_WEIGHTS", "BATCH_SIZE", "IMAGE_SHAPE",
                                                  "IMAGE_META_SIZE"} | OURS)
    assert names == expected
    value_columns = {len(line) - len(line[len(name):].lstrip()) for line, name in zip(lines, names)}
    assert len(value_columns) == 1
    assert any(line.split(None, 1) == ["NAME", "modanet"] for line in lines)


def test_to_dict_is_json_ready_and_complete():
    config = ModaNetConfig(IMAGES_PER_GPU=1)
    settings = json.loads(json.dumps(config.to_dict()))
    assert settings["NAME"] == "modanet"
    assert settings["BATCH_SIZE"] == 1
    assert settings["IMAGE_SHAPE"] == [1024, 1024, 3]
    assert settings["MEAN_PIXEL"] == pytest.approx([123.7, 116.8, 103.9])
    assert settings["RPN_ANCHOR_SCALES"] == [32, 64, 128, 256, 512]
    # + MEAN_PIXEL, the two STD_DEVs, LOSS_WEIGHTS, the three derived values and ours
    assert len(settings) == len(MATTERPORT_DEFAULTS) + 7 + len(OURS)
    assert settings["MIXED_PRECISION"] is False


@pytest.mark.parametrize("momentum", [1.0, -0.1, "0.9"])
def test_batch_norm_momentum_must_lie_in_zero_one(momentum):
    with pytest.raises(ValueError, match="BATCH_NORM_MOMENTUM"):
        ModaNetConfig(BATCH_NORM_MOMENTUM=momentum)


# -- display_changes: only what a run chose differently from Matterport ------------------------
def test_changed_settings_are_exactly_the_overrides_against_matterports_table():
    overrides = {"NAME": "x", "IMAGE_MIN_DIM": 128, "IMAGE_MAX_DIM": 128, "LEARNING_RATE": 0.005,
                 "RPN_ANCHOR_SCALES": (8, 16, 32, 64, 128), "MASK_SHAPE": [14, 14], "MASK_POOL_SIZE": 7}
    # values equal to Matterport's, in another type, are not changes: a list for its tuple, a new array
    same = {"RPN_ANCHOR_SCALES": [32, 64, 128, 256, 512], "MEAN_PIXEL": np.array([123.7, 116.8, 103.9]),
            "BACKBONE": "resnet101", "TRAIN_BN": False}
    assert Config(NAME="x", **{k: v for k, v in same.items() if k != "RPN_ANCHOR_SCALES"},
                  RPN_ANCHOR_SCALES=same["RPN_ANCHOR_SCALES"]).changed_settings() == {"NAME": (None, "x")}
    changed = Config(**overrides).changed_settings()
    assert set(changed) == set(overrides)
    for name, value in overrides.items():     # the default side is the test's own copy of Matterport's
        default, shown = changed[name]
        expected_default = MATTERPORT_DEFAULTS[name]
        assert default == (list(expected_default) if isinstance(expected_default, tuple) else expected_default)
        assert shown == (list(value) if isinstance(value, tuple) else value)


def test_changed_settings_mark_a_subclass_setting_as_new():
    from mrcnn.config import NEW_SETTING

    class WithExtra(ModaNetConfig):
        EXTRA_KNOB = 3
    changed = WithExtra().changed_settings()
    assert changed == {"NAME": (None, "modanet"), "NUM_CLASSES": (1, 14), "EXTRA_KNOB": (NEW_SETTING, 3)}


def test_display_changes_prints_the_changes_and_display_still_prints_all(capsys):
    config = ModaNetConfig(IMAGES_PER_GPU=1, IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256,
                           LOSS_WEIGHTS={"rpn_class_loss": 2.0, "rpn_bbox_loss": 1.0, "mrcnn_class_loss": 1.0,
                                         "mrcnn_bbox_loss": 1.0, "mrcnn_mask_loss": 1.0})
    config.display_changes()
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"Configurations (ModaNetConfig): 6 of {len(Config.setting_names())} settings")
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:-1]}
    assert set(rows) == {"NAME", "NUM_CLASSES", "IMAGES_PER_GPU", "IMAGE_MIN_DIM", "IMAGE_MAX_DIM", "LOSS_WEIGHTS"}
    assert rows["IMAGE_MIN_DIM"] == ["256", "800"] and rows["IMAGES_PER_GPU"] == ["1", "2"]
    assert max(len(line) for line in lines) < 110           # the long dict is cut to one short line
    loss_row = next(line for line in lines if line.split()[0] == "LOSS_WEIGHTS")
    assert "{rpn_class_loss: 2.0, ...}" in loss_row and "{rpn_class_loss: 1.0, ...}" in loss_row
    assert lines[-1] == "  derived from them: BATCH_SIZE 1, IMAGE_SHAPE [256, 256, 3]"
    config.display()                                        # Matterport's: every setting, one a line
    listed = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()[1:]]
    assert listed == sorted(Config.setting_names() + ["BATCH_SIZE", "IMAGE_META_SIZE", "IMAGE_SHAPE"])


def test_the_settings_beyond_matterport_are_these_and_matterports_own_source_agrees():
    """Every setting is Matterport's or one of OURS; where Matterport's original is cached
    (tests/matterport_reference.py installs it), its Config has exactly the others."""
    import re
    from pathlib import Path

    ours = set(Config.setting_names()) - set(MATTERPORT_DEFAULTS) - {
        "MEAN_PIXEL", "RPN_BBOX_STD_DEV", "BBOX_STD_DEV", "LOSS_WEIGHTS"}
    assert ours == OURS
    sources = sorted(Path(__file__).resolve().parents[1].glob(".cache/matterport/*/mrcnn/config.py"))
    if not sources:
        pytest.skip("Matterport's original is not cached here (tests/matterport_reference.py installs it)")
    theirs = set(re.findall(r"^    ([A-Z][A-Z0-9_]+) = ", sources[0].read_text(), re.MULTILINE))
    theirs -= {"BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE"}     # computed in its __init__
    # PyPI's 0.2 predates two settings of Matterport's later GitHub code, which its tutorials use
    assert theirs | {"IMAGE_CHANNEL_COUNT", "PRE_NMS_LIMIT"} == set(Config.setting_names()) - OURS


def test_each_choice_has_matterports_behaviour_first_and_the_recipe_picks_the_other():
    from mrcnn.config import CHOICES
    from mrcnn.recipes import ScratchConfig

    for name, allowed in CHOICES.items():
        assert getattr(Config, name) == allowed[0], name
        assert getattr(ScratchConfig, name) == allowed[1], name
    recipe = ScratchConfig(NAME="scratch")
    assert recipe.TRAIN_BN and recipe.PRECISE_BN_BATCHES > 0 and recipe.BATCH_NORM_MOMENTUM < Config.BATCH_NORM_MOMENTUM


def test_saved_settings_of_an_earlier_version_upgrade_or_fail_by_name():
    from mrcnn.config import upgrade_settings

    saved = {"NAME": "m", "MRCNN_BBOX_LOSS": "torchvision", "RPN_BBOX_LOSS": "matterport",
             "MASK_TARGET_SAMPLING": "corners", "ROI_ALIGN": "aligned", "CONV_INIT": "he",
             "ROI_SAMPLING": "matterport", "HEAD_NORM": "batch", "MASK_TARGETS": "binary",
             "PROPOSAL_SELECTION": "matterport", "RESNET_STRIDE_IN": "1x1", "IMAGE_RESIZE_MODE": "square"}
    upgraded = upgrade_settings(saved)
    assert upgraded == {"NAME": "m", "MRCNN_BBOX_LOSS": "per_sampled", "RPN_BBOX_LOSS": "per_positive",
                        "MASK_TARGET_SAMPLING": "pixel_centres", "ROI_ALIGN": "pixel_centres",
                        "CONV_INIT": "he", "IMAGE_RESIZE_MODE": "square"}
    Config(**upgraded)                                   # valid in this version
    assert upgrade_settings(upgraded) == upgraded        # already current: unchanged
    with pytest.raises(ValueError, match=r"model\.json: HEAD_NORM = 'group' was removed"):
        upgrade_settings({"HEAD_NORM": "group"}, "model.json")
