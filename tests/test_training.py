"""helpers.training: config from the profile, start weights, stages, and the hand-over between notebooks."""
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from mrcnn.weights import save_weights

from helpers import training
from helpers.io import DataError
from helpers.paths import Paths
from helpers.profiles import get_profile

try:
    from httpfixtures import http_server  # noqa: F401  (the pytest fixture)
except ImportError:
    from tests.httpfixtures import http_server  # noqa: F401

NAMES = ["BG", "bag", "top", "skirt"]


def tiny_profile():
    return replace(get_profile("smoke"), image_dim=64, images_per_gpu=1, steps_per_epoch=1, validation_steps=1,
                   epochs_heads=1, epochs=2)


def test_config_takes_profile_values_and_class_count():
    profile = get_profile("smoke")
    config = training.make_config(profile, "modanet", NAMES)
    assert config.NAME == "modanet" and type(config).__name__ == "ModanetConfig"
    assert config.NUM_CLASSES == 4                       # "BG" is counted once
    assert training.make_config(profile, "x", NAMES[1:]).NUM_CLASSES == 4
    assert config.BACKBONE == profile.backbone
    assert config.IMAGE_MAX_DIM == config.IMAGE_MIN_DIM == profile.image_dim
    assert config.STEPS_PER_EPOCH == profile.steps_per_epoch and config.LEARNING_RATE == profile.learning_rate
    for key, value in profile.engine.items():
        assert np.all(np.asarray(getattr(config, key)) == np.asarray(value)), key


def test_inference_config_has_batch_one_and_overrides_win():
    config = training.make_config(get_profile("smoke"), "modanet", NAMES, inference=True, DETECTION_MIN_CONFIDENCE=0.3)
    assert config.BATCH_SIZE == 1 and config.DETECTION_MIN_CONFIDENCE == 0.3


def test_bad_override_is_a_clear_error():
    with pytest.raises(ValueError, match="IMAGE_MAX_DIM"):
        training.make_config(get_profile("smoke"), "modanet", NAMES, IMAGE_MIN_DIM=100, IMAGE_MAX_DIM=100)


def test_stages_count_epochs_on():
    profile = replace(get_profile("full"), epochs_heads=20, epochs=40)
    assert [s[:2] for s in training.training_stages(profile)] == [("heads", 20), ("all", 40)]
    assert [s[:2] for s in training.training_stages(replace(profile, epochs_heads=0))] == [("all", 40)]
    assert [s[:2] for s in training.training_stages(replace(profile, epochs=20))] == [("heads", 20)]


class FakeModel:
    """Records train() calls; epochs move on like MaskRCNN's."""

    def __init__(self, epoch=0):
        self.epoch, self.calls = epoch, []

    def train(self, train_set, val_set, learning_rate, epochs, layers, **kwargs):
        self.calls.append((layers, self.epoch, epochs))
        self.epoch = epochs


def test_train_in_stages_runs_heads_then_all():
    model = FakeModel()
    done = training.train_in_stages(model, None, None, replace(get_profile("smoke"), epochs_heads=1, epochs=3))
    assert model.calls == [("heads", 0, 1), ("all", 1, 3)] and done == model.calls


def test_train_in_stages_resumed_skips_what_is_done(capsys):
    model = FakeModel(epoch=2)
    training.train_in_stages(model, None, None, replace(get_profile("smoke"), epochs_heads=1, epochs=3))
    assert model.calls == [("all", 2, 3)]
    assert "already done" in capsys.readouterr().out


def test_the_smoke_profile_measures_batch_norm_every_epoch_where_it_trains_it():
    smoke = training.make_config(get_profile("smoke"), "model1", NAMES)
    assert smoke.TRAIN_BN and smoke.PRECISE_BN_BATCHES == 10
    full = training.make_config(get_profile("full"), "model1", NAMES)     # COCO weights: BatchNorm frozen
    assert not full.TRAIN_BN and full.PRECISE_BN_BATCHES == 0


def test_unknown_init_names_the_choices(tmp_path):
    with pytest.raises(FileNotFoundError, match="coco, imagenet, last, none"):
        training.load_initial_weights(SimpleNamespace(), "cocoa", Paths(tmp_path))
    assert "random" in training.load_initial_weights(SimpleNamespace(), "none", Paths(tmp_path))


def test_imagenet_needs_resnet50(tmp_path):
    model = SimpleNamespace(config=SimpleNamespace(BACKBONE="resnet18"))
    with pytest.raises(ValueError, match="resnet50"):
        training.load_initial_weights(model, "imagenet", Paths(tmp_path))


def test_a_file_that_is_not_hdf5_is_named(tmp_path):
    bad = tmp_path / "weights.h5"
    bad.write_text("not hdf5")
    with pytest.raises(DataError, match="weights.h5"):
        training.check_weight_file(bad)
    assert bad.exists()
    with pytest.raises(DataError, match="removed"):
        training.check_weight_file(bad, remove_if_bad=True)
    assert not bad.exists()


def h5_with_layers(names):
    import io
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.attrs["layer_names"] = [n.encode() for n in names]
        for name in names:
            h5.create_group(name)
    return buffer.getvalue()


def test_coco_weights_are_downloaded_once_and_checked(http_server, tmp_path, monkeypatch):
    http_server.files["/mask_rcnn_coco.h5"] = h5_with_layers(["conv1", "mrcnn_mask"])
    monkeypatch.setattr(training, "COCO_WEIGHTS_URL", http_server.url("/mask_rcnn_coco.h5"))
    paths = Paths(tmp_path)
    path = training.coco_weights_path(paths, progress=False)
    assert path == paths.weights / "mask_rcnn_coco.h5" and path.is_file()
    training.coco_weights_path(paths, progress=False)
    assert len(http_server.requests_for("/mask_rcnn_coco.h5")) == 1


def test_coco_weights_without_mask_head_are_refused_and_removed(http_server, tmp_path, monkeypatch):
    http_server.files["/mask_rcnn_coco.h5"] = h5_with_layers(["conv1"])
    monkeypatch.setattr(training, "COCO_WEIGHTS_URL", http_server.url("/mask_rcnn_coco.h5"))
    with pytest.raises(DataError, match="mrcnn_mask"):
        training.coco_weights_path(Paths(tmp_path), progress=False)
    assert not (tmp_path / "weights" / "mask_rcnn_coco.h5").exists()


def test_export_then_load_trained_gives_the_same_detector(tmp_path):
    from mrcnn.model import MaskRCNN

    profile = tiny_profile()
    config = training.make_config(profile, "tiny", NAMES, inference=True)
    model = MaskRCNN("inference", config, tmp_path / "runs")
    checkpoint = tmp_path / "runs" / "tiny20250101T0000" / "mask_rcnn_tiny_0003.h5"
    checkpoint.parent.mkdir(parents=True)
    save_weights(model.keras_model, checkpoint)
    target = training.export_model(model, NAMES[1:], tmp_path / "models" / "model1.h5", checkpoint=checkpoint)
    assert target.is_file() and target.with_suffix(".json").is_file()

    loaded, names = training.load_trained(target)
    assert names == NAMES
    assert loaded.config.NUM_CLASSES == 4 and loaded.config.BACKBONE == config.BACKBONE
    image = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)
    a, b = model.detect([image])[0], loaded.detect([image])[0]
    assert np.array_equal(a["class_ids"], b["class_ids"]) and np.allclose(a["scores"], b["scores"])


def test_load_trained_says_what_to_run_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the notebook"):
        training.load_trained(tmp_path / "model1.h5")
