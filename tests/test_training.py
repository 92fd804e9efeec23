"""helpers.training: config from the profile, start weights, stages, and the hand-over between notebooks."""
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from mrcnn.weights import save_weights

from helpers import training
from helpers.io import DataError, read_json
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


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self):
        self.now = 500.0

    def __call__(self):
        return self.now


class FakeModel:
    """Records train() calls; epochs move on like MaskRCNN's. Each epoch takes `epoch_seconds` of
    the fake clock, and a time budget stops training at the end of the epoch that spends it."""

    def __init__(self, log_dir, epoch=0, clock=None, epoch_seconds=0.0):
        self.log_dir, self.epoch, self.calls, self.budgets = str(log_dir), epoch, [], []
        self.clock, self.epoch_seconds = clock or FakeClock(), epoch_seconds

    def train(self, train_set, val_set, learning_rate, epochs, layers, custom_callbacks=(), time_budget=None,
              **kwargs):
        self.calls.append((layers, self.epoch, epochs))
        self.budgets.append(time_budget)
        start, reason = self.clock(), "epochs done"
        for callback in custom_callbacks:
            callback.on_train_begin()
        for epoch in range(self.epoch, epochs):
            self.clock.now += self.epoch_seconds
            for callback in custom_callbacks:
                callback.on_epoch_end(epoch)
            self.epoch = epoch + 1
            if time_budget is not None and self.clock() - start >= time_budget and self.epoch < epochs:
                reason = "time budget"
                break
        for callback in custom_callbacks:
            callback.on_train_end()
        self.last_train_stop = {"reason": reason, "epoch": self.epoch, "step": 1, "steps": 1,
                                "seconds": self.clock() - start, "budget": time_budget}


def smoke_stages(heads, epochs):
    return replace(get_profile("smoke"), epochs_heads=heads, epochs=epochs)


def test_train_in_stages_runs_heads_then_all(tmp_path):
    model = FakeModel(tmp_path)
    done = training.train_in_stages(model, None, None, smoke_stages(1, 3))
    assert model.calls == [("heads", 0, 1), ("all", 1, 3)] and done == model.calls
    assert model.budgets == [None, None]                  # smoke: no budget, the step counts decide


def test_train_in_stages_resumed_skips_what_is_done(tmp_path, capsys):
    model = FakeModel(tmp_path, epoch=2)
    training.train_in_stages(model, None, None, smoke_stages(1, 3))
    assert model.calls == [("all", 2, 3)]
    assert "already done" in capsys.readouterr().out


def test_budget_shares_follow_the_epochs_left_and_unused_time_goes_on(tmp_path):
    clock = FakeClock()
    model = FakeModel(tmp_path, clock=clock, epoch_seconds=7)
    training.train_in_stages(model, None, None, smoke_stages(2, 6), minutes=1, clock=clock)
    # heads: 2 of 6 epochs -> 20 s of 60; it needs 14, so 'all' gets the 46 left
    assert model.calls == [("heads", 0, 2), ("all", 2, 6)] and model.budgets == [20.0, 46.0]

    resumed = FakeModel(tmp_path / "other", epoch=3, clock=clock)
    training.train_in_stages(resumed, None, None, smoke_stages(2, 6), minutes=2)
    assert resumed.budgets == [120.0]                     # a fresh run folder: nothing spent yet


def test_a_stage_cut_by_its_share_hands_on_and_the_next_starts_at_its_own_epoch(tmp_path, capsys):
    clock = FakeClock()
    model = FakeModel(tmp_path, clock=clock, epoch_seconds=20)
    done = training.train_in_stages(model, None, None, smoke_stages(3, 6), minutes=1, clock=clock)
    # heads' share 60 * 3/6 = 30 s: stopped after its 2nd epoch (40 s); 'all' gets the other 20 s
    assert model.budgets == [30.0, 20.0]
    assert model.calls == [("heads", 0, 3), ("all", 3, 6)] and done == [("heads", 0, 2), ("all", 3, 4)]
    assert "starts at its own first epoch, 4" in capsys.readouterr().out
    record = read_json(tmp_path / "training_time.json")
    assert record["seconds"] == 60.0 and record["epoch"] == 4 and record["budget_minutes"] == 1
    assert record["by_epoch"] == {"1": 20.0, "2": 40.0, "4": 60.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["training_time.json"]     # no temp file left


def test_a_spent_budget_skips_the_stages_and_says_how_to_go_on(tmp_path, capsys):
    clock = FakeClock()
    model = FakeModel(tmp_path, clock=clock, epoch_seconds=100)
    training.train_in_stages(model, None, None, smoke_stages(3, 6), minutes=1, clock=clock)
    out = capsys.readouterr().out
    assert model.calls == [("heads", 0, 3)]               # its one epoch spent the whole budget
    assert "stage 'all' skipped: the time budget of 1 min is spent (1.7 min trained)" in out
    assert 'INIT_WEIGHTS = "last" and TRAIN_MINUTES larger than 1.7' in out

    again = FakeModel(tmp_path, epoch=1, clock=clock, epoch_seconds=100)   # the same budget again
    assert training.train_in_stages(again, None, None, smoke_stages(3, 6), minutes=1, clock=clock) == []
    out = capsys.readouterr().out
    assert again.calls == [] and "1.7 min trained before" in out and "skipped" in out

    larger = FakeModel(tmp_path, epoch=1, clock=clock, epoch_seconds=100)
    training.train_in_stages(larger, None, None, smoke_stages(3, 6), minutes=5, clock=clock)
    assert larger.budgets[0] == pytest.approx((300 - 100) * 2 / 5)       # only the difference


def test_minutes_come_from_the_profile_and_bad_ones_are_named(tmp_path):
    model = FakeModel(tmp_path)
    training.train_in_stages(model, None, None, replace(smoke_stages(0, 2), train_minutes=3))
    assert model.budgets == [180.0]
    for bad in (0, -5, "ten", True):
        with pytest.raises(ValueError, match="TRAIN_MINUTES"):
            training.train_in_stages(FakeModel(tmp_path), None, None, smoke_stages(0, 2), minutes=bad)


def test_training_time_record_is_per_checkpoint(tmp_path):
    ledger = training.TrainingTime(tmp_path)
    assert ledger.seconds_at(5) == 0.0
    for epoch, seconds in [(1, 10.0), (2, 20.0), (4, 45.0)]:
        ledger.record(epoch, seconds)
    again = training.TrainingTime(tmp_path)
    assert [again.seconds_at(e) for e in (0, 1, 2, 3, 4, 9)] == [0.0, 10.0, 20.0, 20.0, 45.0, 45.0]
    again.record(3, 30.0)                        # resumed from epoch 2: the old epoch 4 is gone
    assert training.TrainingTime(tmp_path).by_epoch == {1: 10.0, 2: 20.0, 3: 30.0}
    (tmp_path / "training_time.json").write_text("{not json")
    with pytest.raises(DataError, match="training_time.json"):
        training.TrainingTime(tmp_path)


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


@pytest.fixture(scope="module")
def exported_tiny(tmp_path_factory):
    """A tiny random inference model exported with its sidecar: (model, exported .h5)."""
    from mrcnn.model import MaskRCNN

    tmp_path = tmp_path_factory.mktemp("exported")
    config = training.make_config(tiny_profile(), "tiny", NAMES, inference=True)
    model = MaskRCNN("inference", config, tmp_path / "runs")
    checkpoint = tmp_path / "runs" / "tiny20250101T0000" / "mask_rcnn_tiny_0003.h5"
    checkpoint.parent.mkdir(parents=True)
    save_weights(model.keras_model, checkpoint)
    target = training.export_model(model, NAMES[1:], tmp_path / "models" / "model1.h5", checkpoint=checkpoint)
    return model, target


IMAGE = np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)


def test_export_then_load_trained_gives_the_same_detector(exported_tiny):
    model, target = exported_tiny
    assert target.is_file() and target.with_suffix(".json").is_file()

    loaded, names = training.load_trained(target)
    assert names == NAMES
    assert loaded.config.NUM_CLASSES == 4 and loaded.config.BACKBONE == model.config.BACKBONE
    a, b = model.detect([IMAGE])[0], loaded.detect([IMAGE])[0]
    assert np.array_equal(a["class_ids"], b["class_ids"]) and np.allclose(a["scores"], b["scores"])

    # a lower MIN_CONFIDENCE reaches the detection layer; a higher one never hides detections
    own = loaded.config.DETECTION_MIN_CONFIDENCE
    lower, _ = training.load_trained(target, min_confidence=own / 2)
    higher, _ = training.load_trained(target, min_confidence=min(1.0, own + 0.2))
    assert lower.config.DETECTION_MIN_CONFIDENCE == own / 2
    assert higher.config.DETECTION_MIN_CONFIDENCE == own


def test_load_trained_honours_detection_min_confidence(exported_tiny):
    """The knob of 04 and 06: the detections below DETECTION_MIN_CONFIDENCE go, those above stay."""
    _, target = exported_tiny
    everything, _ = training.load_trained(target, DETECTION_MIN_CONFIDENCE=0.0)
    scores = np.sort(everything.detect([IMAGE])[0]["scores"])
    assert everything.config.DETECTION_MIN_CONFIDENCE == 0.0 and len(np.unique(scores)) >= 2
    cut = float((scores[0] + scores[-1]) / 2)
    fewer, _ = training.load_trained(target, DETECTION_MIN_CONFIDENCE=cut)
    kept = np.sort(fewer.detect([IMAGE])[0]["scores"])
    assert fewer.config.DETECTION_MIN_CONFIDENCE == cut
    assert 0 < len(kept) < len(scores) and np.allclose(kept, scores[scores >= cut])


def test_load_trained_says_what_to_run_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the notebook"):
        training.load_trained(tmp_path / "model1.h5")


class Tick:
    """A Keras callback that lets `seconds` pass on the fake clock during every training step."""

    def __new__(cls, clock, seconds, steps):
        import keras

        class TickCallback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                clock.now += seconds
                steps.append(batch)

        return TickCallback()


def test_a_real_smoke_training_stops_by_budget_saves_and_resumes_with_a_larger_one(tmp_path, capsys):
    """The smoke network (made smaller) trained for real; only the clock is fake (10 s a step)."""
    from mrcnn.model import MaskRCNN
    from mrcnn.samples.shapes import CLASS_NAMES, ShapesDataset

    shapes = ShapesDataset()
    shapes.load_shapes(4, size=64, seed=1)
    shapes.prepare()
    smoke = get_profile("smoke")
    profile = replace(smoke, image_dim=64, images_per_gpu=1, steps_per_epoch=2, validation_steps=1, epochs_heads=2,
                      epochs=4, train_minutes=0.5, engine={**smoke.engine, "PRECISE_BN_BATCHES": 1})
    config = training.make_config(profile, "tiny", CLASS_NAMES)
    clock, steps = FakeClock(), []
    model = MaskRCNN("training", config, tmp_path)
    done = training.train_in_stages(model, shapes, shapes, profile, callbacks=[Tick(clock, 10.0, steps)],
                                    clock=clock, progress=False, verbose=0)
    # 30 s: heads' share 15 s ends at its 2nd step (epoch 1 complete); 'all' starts at epoch 3 with
    # the 10 s left and stops after one step of it, which is validated and saved
    assert done == [("heads", 0, 1), ("all", 2, 3)] and len(steps) == 3
    assert model.epoch == 3 and model.last_train_stop["reason"] == "time budget"
    assert model.last_train_stop["step"] == 1 and model.last_train_stop["seconds"] == 10.0
    run = Path(model.log_dir)
    assert (run / "mask_rcnn_tiny_0003.h5").is_file() and Path(model.find_last()).name == "mask_rcnn_tiny_0003.h5"
    assert read_json(run / "training_time.json")["by_epoch"] == {"1": 20.0, "3": 30.0}

    # the same budget again, from the newest checkpoint: nothing to train, and it says so
    capsys.readouterr()
    same = MaskRCNN("training", config, tmp_path)
    training.load_initial_weights(same, "last", None)
    assert training.train_in_stages(same, shapes, shapes, profile, clock=clock, progress=False) == []
    assert "TRAIN_MINUTES larger than 0.5" in capsys.readouterr().out

    # a larger budget: goes on in the same run folder from epoch 3 for the difference
    larger = MaskRCNN("training", config, tmp_path)
    assert "epoch 3" in training.load_initial_weights(larger, "last", None)
    done = training.train_in_stages(larger, shapes, shapes, replace(profile, train_minutes=1.0),
                                    callbacks=[Tick(clock, 10.0, steps)], clock=clock, progress=False, verbose=0)
    assert done == [("all", 3, 4)] and len(steps) == 5 and larger.epoch == 4
    assert larger.log_dir == str(run) and (run / "mask_rcnn_tiny_0004.h5").is_file()
    assert larger.last_train_stop["reason"] == "epochs done"
    assert read_json(run / "training_time.json")["seconds"] == 50.0
    with open(run / "training_log.csv") as f:
        assert [row.split(",")[0] for row in f.read().splitlines()[1:]] == ["0", "2", "3"]


def h5_weights():
    """A small weight file in Keras' layout: layer groups with attributes and one dataset each."""
    import io
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        h5.attrs["layer_names"] = [b"conv1", b"mrcnn_mask"]
        for name in ("conv1", "mrcnn_mask"):
            group = h5.create_group(name)
            group.attrs["weight_names"] = [f"{name}/k:0".encode()]
            group.create_dataset("k:0", data=np.zeros((10, 10), "f4"))
    return buffer.getvalue()


# Eight bytes overwritten in the file's metadata: h5py then raises RuntimeError ("number of
# children is greater than maximum") or KeyError ("unable to determine object type"), not OSError.
DAMAGE = {"group table": (143, "69fb4692320f7672"), "object header": (794, "e0724ff272973b17")}


@pytest.mark.parametrize("where", sorted(DAMAGE))
def test_damaged_hdf5_is_a_one_line_data_error_and_removed(tmp_path, where):
    position, junk = DAMAGE[where]
    data = bytearray(h5_weights())
    data[position:position + 8] = bytes.fromhex(junk)
    bad = tmp_path / "weights.h5"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="weights.h5: not a readable HDF5 weight file") as caught:
        training.check_weight_file(bad, must_have="mrcnn_mask")
    assert "\n" not in str(caught.value) and bad.exists()
    with pytest.raises(DataError, match="removed"):
        training.check_weight_file(bad, must_have="mrcnn_mask", remove_if_bad=True)
    assert not bad.exists()


def test_zero_byte_and_truncated_weight_files_are_named(tmp_path):
    good = h5_weights()
    assert training.check_weight_file(_written(tmp_path / "good.h5", good), must_have="mrcnn_mask")
    for name, data in (("empty.h5", b""), ("cut.h5", good[:len(good) // 2])):
        with pytest.raises(DataError, match=f"{name}: not a readable HDF5 weight file"):
            training.check_weight_file(_written(tmp_path / name, data))
    headless = _written(tmp_path / "headless.h5", h5_with_layers(["conv1"]))
    with pytest.raises(DataError, match="no layer 'mrcnn_mask'.*removed"):
        training.check_weight_file(headless, must_have="mrcnn_mask", remove_if_bad=True)
    assert not headless.exists()


def _written(path, data):
    path.write_bytes(data)
    return path


def test_a_damaged_cached_coco_download_is_removed_and_downloaded_again(http_server, tmp_path, monkeypatch,
                                                                         capsys):
    http_server.files["/mask_rcnn_coco.h5"] = h5_weights()
    monkeypatch.setattr(training, "COCO_WEIGHTS_URL", http_server.url("/mask_rcnn_coco.h5"))
    paths = Paths(tmp_path)
    paths.weights.mkdir(parents=True)
    position, junk = DAMAGE["group table"]
    damaged = bytearray(h5_weights())
    damaged[position:position + 8] = bytes.fromhex(junk)
    (paths.weights / "mask_rcnn_coco.h5").write_bytes(bytes(damaged))      # an earlier run's cached file
    path = training.coco_weights_path(paths, progress=False)
    assert path.read_bytes() == h5_weights()
    assert len(http_server.requests_for("/mask_rcnn_coco.h5")) == 1
    assert "downloading it again" in capsys.readouterr().out


# --- the knobs of 04 and 06 ---------------------------------------------------------------------

def test_detection_min_confidence_comes_from_the_profile():
    smoke = get_profile("smoke")
    assert "DETECTION_MIN_CONFIDENCE" not in smoke.engine          # one place: the profile field
    assert training.make_config(smoke, "m", NAMES).DETECTION_MIN_CONFIDENCE == smoke.detection_min_confidence
    assert training.make_config(replace(smoke, detection_min_confidence=0.33), "m", NAMES,
                                inference=True).DETECTION_MIN_CONFIDENCE == 0.33


def test_the_course_leaves_at_most_three_of_our_settings_to_the_recipe():
    """Of the settings Matterport's Config lacks, every profile's config sets all but at most three: those
    only mrcnn.recipes.ScratchConfig turns on (they matter from random weights alone; docs/benchmarks.md)."""
    from mrcnn.recipes import ScratchConfig
    from helpers.profiles import PROFILES
    from tests.test_mrcnn_config import OURS
    set_by_course = set()
    for name in PROFILES:
        set_by_course |= set(vars(type(training.make_config(get_profile(name), "m", NAMES))))
    left = OURS - set_by_course
    assert len(left) <= 3 and left == {"RPN_BBOX_LOSS", "ROI_ALIGN", "CONV_INIT"}
    assert left <= set(vars(ScratchConfig))


def test_layers_heads_trains_the_heads_alone_until_epochs():
    profile = replace(get_profile("colab"), epochs_heads=8, epochs=15, fine_tune_layers="heads")
    assert [s[:2] for s in training.training_stages(profile)] == [("heads", 15)]
    assert [s[:2] for s in training.training_stages(replace(profile, fine_tune_layers="3+"))] == [("heads", 8), ("3+", 15)]
    assert training.training_stages(replace(profile, epochs=0)) == []


@pytest.mark.parametrize("init, backbone, needed", [("coco", "resnet50", "resnet101"), ("imagenet", "resnet18", "resnet50"),
                                                    ("coco", "resnet18", "resnet101")])
def test_start_weights_that_do_not_fit_the_backbone_stop_with_one_line(tmp_path, init, backbone, needed):
    from helpers.profiles import KnobError

    model = SimpleNamespace(config=SimpleNamespace(BACKBONE=backbone))
    with pytest.raises(KnobError, match=f"set BACKBONE = '{needed}'") as caught:
        training.load_initial_weights(model, init, Paths(tmp_path))       # before any download
    assert len(caught.value._render_traceback_()) == 1
    assert not (tmp_path / "weights").exists()
    training.check_start_weights(init, needed)                              # the fitting pair passes


def test_model1_start_needs_04_and_the_same_backbone(tmp_path):
    from helpers.profiles import KnobError

    paths = Paths(tmp_path)
    model = SimpleNamespace(config=SimpleNamespace(BACKBONE="resnet50"))
    with pytest.raises(FileNotFoundError, match="04_train_model1"):
        training.load_initial_weights(model, "model1", paths)
    target = paths.model_file("model1")
    target.parent.mkdir(parents=True)
    target.write_bytes(h5_with_layers(["conv1", "mrcnn_mask"]))
    target.with_suffix(".json").write_text('{"class_names": ["BG"], "config": {"BACKBONE": "resnet101"}}')
    with pytest.raises(KnobError, match="model1.h5 is a resnet101 model.*set BACKBONE = 'resnet101'"):
        training.load_initial_weights(model, "model1", paths)


def coco_with_classes(n_images, rare_image):
    """n images of 'top', and one image (id rare_image) that alone holds a 'belt'."""
    images = [{"id": i, "file_name": f"{i}.jpg", "width": 8, "height": 8} for i in range(1, n_images + 1)]
    annotations = [{"id": i, "image_id": i, "category_id": 2 if i == rare_image else 1, "bbox": [0, 0, 2, 2],
                    "area": 4, "segmentation": [[0, 0, 2, 0, 2, 2]], "iscrowd": 0} for i in range(1, n_images + 1)]
    return {"info": {"images_dir": "/x"}, "images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "top"}, {"id": 2, "name": "belt"}]}


def test_training_subset_keeps_train_images_by_seed_and_every_class(tmp_path):
    coco = coco_with_classes(50, rare_image=37)
    path = tmp_path / "train.json"
    path.write_text(__import__("json").dumps(coco))
    profile = replace(get_profile("smoke"), train_subset=0)
    assert training.training_subset(path, profile) == path                  # 0: the file as it is
    assert training.training_subset(path, replace(profile, train_subset=50)) == path
    subset = training.training_subset(path, replace(profile, train_subset=5))
    ids = {im["id"] for im in subset["images"]}
    assert len(ids) == 5 and 37 in ids                                      # the only belt is kept
    assert {a["image_id"] for a in subset["annotations"]} == ids and subset["info"] == coco["info"]
    assert training.training_subset(coco, replace(profile, train_subset=5)) == subset   # same seed, same images
    others = [{im["id"] for im in training.training_subset(coco, replace(profile, train_subset=5, seed=s))["images"]}
              for s in range(1, 6)]
    assert any(o != ids for o in others)                                    # the seed chooses them
