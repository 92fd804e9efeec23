"""The one switch: profile resolution, overrides and the paths each profile uses."""
import sys
import types

import pytest

from helpers import paths as paths_mod
from helpers import profiles


def test_explicit_names(monkeypatch):
    monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)
    assert profiles.get_profile("smoke").name == "smoke"
    assert profiles.get_profile("FULL").name == "full"


def test_env_wins_over_auto(monkeypatch):
    monkeypatch.setenv(profiles.PROFILE_ENV, "full")
    assert profiles.get_profile("auto").name == "full"
    monkeypatch.setenv(profiles.PROFILE_ENV, "smoke")
    assert profiles.get_profile().name == "smoke"
    # an explicit name beats the environment
    assert profiles.get_profile("full").name == "full"


@pytest.fixture
def plain_machine(monkeypatch, tmp_path):
    """No profile in the environment, no GPU, not Colab, nothing downloaded."""
    monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)
    monkeypatch.delenv(profiles.DATA_SOURCE_ENV, raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv("MODANET_DATA", str(tmp_path))
    monkeypatch.setattr(profiles, "gpu_visible", lambda: False)
    return monkeypatch


def test_auto_without_gpu_colab_or_modanet_is_smoke(plain_machine):
    assert profiles.get_profile("auto").name == "smoke"


def test_auto_on_a_gpu_is_colab_not_full(plain_machine):
    plain_machine.setattr(profiles, "gpu_visible", lambda: True)
    assert profiles.get_profile("auto").name == "colab"


def test_auto_on_colab_is_colab(plain_machine):
    plain_machine.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert profiles.get_profile("auto").name == "colab"
    plain_machine.delitem(sys.modules, "google.colab")
    assert profiles.get_profile("auto").name == "smoke"
    plain_machine.setenv("COLAB_RELEASE_TAG", "release-colab_20261120-060000_RC00")
    assert profiles.get_profile("auto").name == "colab"


def test_gpu_visible_reads_the_driver_or_nvidia_smi(monkeypatch, tmp_path):
    monkeypatch.setattr(profiles.shutil, "which", lambda name: "/usr/bin/nvidia-smi" if name == "nvidia-smi" else None)
    assert profiles.gpu_visible() is True
    monkeypatch.setattr(profiles.shutil, "which", lambda name: None)
    monkeypatch.setattr(profiles, "Path", lambda p: tmp_path / "no-driver")
    assert profiles.gpu_visible() is False


def test_auto_with_modanet_downloaded_is_colab(plain_machine):
    full = paths_mod.Paths.for_profile("full")
    full.annotations_dir.mkdir(parents=True)
    full.train_annotations.write_text("{}")
    full.images.mkdir()
    assert profiles.get_profile("auto").name == "colab"
    assert profiles.get_profile("full").name == "full"      # full only when asked


def test_colab_reads_modanets_download_and_writes_its_own_folder(plain_machine, tmp_path):
    colab = profiles.get_profile("colab")
    assert colab.data == "modanet"
    assert colab.paths.images == tmp_path / "modanet" / "images"
    assert colab.paths.train_annotations.parent == tmp_path / "modanet" / "annotations"
    assert colab.paths.weights == tmp_path / "modanet" / "weights"
    assert colab.paths.split_file("train") == tmp_path / "colab" / "splits" / "train.json"
    assert colab.paths.model_file("model1") == tmp_path / "colab" / "models" / "model1.h5"


def test_sample_source_stands_in_for_modanet(plain_machine, tmp_path):
    plain_machine.setenv(profiles.DATA_SOURCE_ENV, "sample")
    colab = profiles.get_profile("colab")
    assert colab.data == "synthetic" and colab.sample_images == profiles.SMOKE.sample_images
    assert colab.custom_per_label == 0            # custom photos come from the held-out split
    assert (colab.backbone, colab.image_dim, colab.train_minutes) == ("resnet101", 512, 50)
    assert colab.paths.root == colab.paths.source == tmp_path / "colab-sample"
    assert profiles.get_profile("smoke").paths.root == tmp_path / "sample"
    plain_machine.setenv(profiles.DATA_SOURCE_ENV, "kaggle")
    with pytest.raises(ValueError, match="MODANET_DATA_SOURCE"):
        profiles.get_profile("colab")


def test_colab_profile_fits_its_budget_by_its_own_numbers():
    colab = profiles.COLAB
    assert colab.train_minutes + colab.model2_train_minutes <= 70
    assert colab.init_weights == "coco" and colab.mixed_precision and colab.fine_tune_layers == "4+"
    assert colab.train_images and colab.val_images and colab.custom_per_class > 0
    model2 = colab.for_model2()
    assert model2.train_minutes == colab.model2_train_minutes
    assert model2.steps_per_epoch == colab.model2_steps_per_epoch


def test_unknown_profile_and_field_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown profile 'huge'.*'colab'"):
        profiles.get_profile("huge")
    with pytest.raises(ValueError, match="epochz"):
        profiles.get_profile("smoke", epochz=3)


def test_overrides_and_smoke_is_small():
    p = profiles.get_profile("smoke", seed=7)
    assert p.seed == 7 and profiles.SMOKE.seed == 42
    assert p.image_dim % 64 == 0 and profiles.FULL.image_dim == 1024
    assert p.image_dim < profiles.FULL.image_dim and p.data == "synthetic"
    assert profiles.FULL.backbone == "resnet101" and profiles.FULL.images_per_gpu == 2


def test_each_profile_has_its_own_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("MODANET_DATA", str(tmp_path))
    smoke, full = profiles.SMOKE.paths, profiles.FULL.paths
    assert smoke.root == tmp_path / "sample" and full.root == tmp_path / "modanet"
    assert smoke.split_file("val") == tmp_path / "sample" / "splits" / "val.json"
    assert full.train_annotations.name == "modanet2018_instances_train.json"


def test_require_says_what_to_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="run 01_download_modanet.ipynb first"):
        paths_mod.require(tmp_path / "nope.json", "01_download_modanet.ipynb")
    assert paths_mod.require(tmp_path, "x") == tmp_path


def test_display_lists_every_value_in_a_few_lines(capsys):
    profiles.SMOKE.display()
    out = capsys.readouterr().out
    for key, value in profiles.SMOKE.table():
        assert f"{key}={profiles._plain(value)}" in " ".join(out.split())
    for key in profiles.SMOKE.engine:
        assert key in out
    assert len(out.splitlines()) <= 20 and max(map(len, out.splitlines())) <= 110


def test_model2_epochs_replace_model1s_and_overrides_win():
    from helpers.profiles import get_profile
    smoke = get_profile("smoke")
    model2 = smoke.for_model2()
    assert (model2.epochs_heads, model2.epochs) == (smoke.model2_epochs_heads, smoke.model2_epochs)
    assert model2.for_model2(epochs=9, learning_rate=None).epochs == 9
    assert model2.learning_rate == smoke.learning_rate


# --- the notebooks' forms ----------------------------------------------------------------------

import ast
import json
from dataclasses import fields, replace

NOTEBOOKS = sorted((paths_mod.PROJECT_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def parameters_cell(number):
    """(source, {name: value}) of the parameters cell of notebook `number`, read from its JSON."""
    path = next(p for p in NOTEBOOKS if p.name.startswith(number))
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    source = "".join(next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"])
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(source).body}
    return source, values


def run_committed_form(number, profile_name, **changed):
    """What a notebook's profile cell makes of its committed parameters cell (with some values changed)."""
    _, values = parameters_cell(number)
    values.update(changed)
    return profiles.get_profile(profile_name).with_form(number, values)


def test_every_knob_sets_a_profile_field():
    names = {f.name for f in fields(profiles.Profile)} - {"knobs", "engine", "name", "data"}
    for number, form in profiles.FORMS.items():
        for knob_name, knob in form.items():
            assert knob.field in names and (knob.fallback is None or knob.fallback in names), (number, knob_name)


@pytest.mark.parametrize("number", sorted(profiles.FORMS))
def test_committed_forms_show_the_colab_profiles_values(number):
    source, values = parameters_cell(number)
    colab = profiles.COLAB.form_values(number)
    assert {name: values[name] for name in colab} == colab
    for name, knob in profiles.FORMS[number].items():             # the Colab form spec too
        assert knob.form_line(name, colab[name]) in source.splitlines()
    assert all(v is not None for v in values.values())             # no hidden "None: the profile's value"


@pytest.mark.parametrize("number", sorted(profiles.FORMS))
@pytest.mark.parametrize("name", ["smoke", "colab", "full"])
def test_a_form_left_as_shown_runs_the_profile(plain_machine, number, name):
    profile = run_committed_form(number, name)
    assert profile == profiles.PROFILES[name]                       # every field the profile's own
    assert {source for _, _, source in profile.knobs} == {"profile"}


def test_a_changed_value_wins_and_the_rest_follow_the_profile(plain_machine):
    profile = run_committed_form("04", "smoke", EPOCHS=3, IMAGE_SIZE=256, AUGMENT=False, TRAIN_IMAGES=100)
    smoke = profiles.SMOKE
    assert (profile.epochs, profile.image_dim, profile.flip_probability, profile.train_subset) == (3, 256, 0.0, 100)
    assert profile == replace(smoke, epochs=3, image_dim=256, flip_probability=0.0, train_subset=100)
    rows = {name: (value, source) for name, value, source in profile.knobs}
    assert rows["EPOCHS"] == ("3", "your form") and rows["BACKBONE"] == ("resnet18", "profile")
    assert rows["TRAIN_MINUTES"] == ("0 (no limit)", "profile")
    colab = run_committed_form("04", "colab", TRAIN_MINUTES=0, AUGMENT=True, LAYERS="heads")
    assert colab.train_minutes is None and colab.flip_probability == profiles.COLAB.flip_probability
    assert colab.fine_tune_layers == "heads"
    flipless = replace(profiles.SMOKE, flip_probability=0.0).with_form("04", {"AUGMENT": False})
    assert flipless.with_form("04", {"AUGMENT": True}).flip_probability == 0.0       # as shown: the profile's
    assert flipless.with_form("04", {"AUGMENT": True, "FORM_SHOWS": "smoke"}).flip_probability == 0.5


def test_model2s_form_sets_model2s_fields(plain_machine):
    profile = run_committed_form("06", "smoke", EPOCHS=7, INIT_WEIGHTS="imagenet", BACKBONE="resnet50", TRAIN_MINUTES=3)
    assert (profile.model2_epochs, profile.epochs, profile.model2_train_minutes) == (7, profiles.SMOKE.epochs, 3)
    model2 = profile.for_model2()
    assert (model2.epochs, model2.init_weights, model2.train_minutes) == (7, "imagenet", 3)
    assert model2.steps_per_epoch == profiles.SMOKE.steps_per_epoch            # smoke has no model-2 steps of its own
    assert profiles.SMOKE.form_values("06")["STEPS_PER_EPOCH"] == profiles.SMOKE.steps_per_epoch
    assert run_committed_form("06", "colab").for_model2().init_weights == "model1"


def test_injected_values_are_taken_as_meant(plain_machine):
    """run_course injects every knob and FORM_SHOWS: a value equal to the committed one then still wins."""
    _, values = parameters_cell("04")
    injected = {**values, **profiles.SMOKE.form_values("04"), "IMAGE_SIZE": 512, profiles.FORM_SHOWS: "smoke"}
    assert profiles.get_profile("smoke").with_form("04", injected).image_dim == 512
    assert profiles.get_profile("smoke").with_form("04", dict(injected, FORM_SHOWS="colab")).image_dim == 128
    with pytest.raises(profiles.KnobError, match="FORM_SHOWS"):
        profiles.get_profile("smoke").with_form("04", dict(injected, FORM_SHOWS="huge"))


@pytest.mark.parametrize("changed, message", [
    ({"IMAGE_SIZE": 500}, "IMAGE_SIZE = 500: must be a multiple of 64.*448 or 512"),
    ({"IMAGE_SIZE": 0}, "IMAGE_SIZE = 0: must be a multiple of 64"),
    ({"LAYERS": "2+"}, "LAYERS = '2[+]': choose one of heads, 3[+], 4[+], 5[+], all"),
    ({"BACKBONE": "resnet152"}, "BACKBONE = 'resnet152': choose one of"),
    ({"EPOCHS": -1}, "EPOCHS = -1: must be a whole number >= 0"),
    ({"STEPS_PER_EPOCH": 2.5}, "STEPS_PER_EPOCH = 2.5: must be a whole number >= 1"),
    ({"LEARNING_RATE": 0}, "LEARNING_RATE = 0: must be a number > 0"),
    ({"DETECTION_MIN_CONFIDENCE": 1.5}, "DETECTION_MIN_CONFIDENCE = 1.5: must be a number >= 0 and <= 1"),
    ({"AUGMENT": 1}, "AUGMENT = 1: must be True or False"),
    ({"INIT_WEIGHTS": ""}, "INIT_WEIGHTS = '': choose one of coco, imagenet, last, none or the path"),
    ({"INIT_WEIGHTS": "imagenet"}, "ImageNet weights are a ResNet-50's, so set BACKBONE = 'resnet50'"),
    ({"BACKBONE": "resnet50"}, "INIT_WEIGHTS = 'coco' with BACKBONE = 'resnet50'.*ResNet-101"),
])
def test_bad_knobs_stop_with_one_line(plain_machine, changed, message):
    with pytest.raises(profiles.KnobError, match=message) as caught:
        run_committed_form("04", "colab", **changed)
    assert len(caught.value._render_traceback_()) == 1 and isinstance(caught.value, ValueError)


def test_the_suggested_pairs_work(plain_machine):
    resnet50 = run_committed_form("04", "colab", BACKBONE="resnet50", INIT_WEIGHTS="imagenet")
    assert (resnet50.backbone, resnet50.init_weights) == ("resnet50", "imagenet")
    smoke = run_committed_form("04", "smoke", BACKBONE="resnet50", INIT_WEIGHTS="imagenet")
    assert smoke.backbone == "resnet50"
    with pytest.raises(profiles.KnobError, match="ResNet-101"):
        run_committed_form("06", "colab", INIT_WEIGHTS="coco", BACKBONE="resnet18")
    # on smoke, BACKBONE left at the form's resnet101 is smoke's resnet18: the error says so
    with pytest.raises(profiles.KnobError, match="BACKBONE left at the form's 'resnet101' means the smoke profile's 'resnet18'"):
        run_committed_form("06", "smoke", INIT_WEIGHTS="coco")
    assert run_committed_form("06", "smoke", INIT_WEIGHTS="none").model2_init_weights == "none"


def test_the_form_table_is_short_and_says_where_each_value_came_from(plain_machine, capsys):
    profile = run_committed_form("04", "smoke", EPOCHS=3)
    profile.show_form()
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) <= 15 and "smoke" in lines[0]
    assert any(l.split()[:3] == ["EPOCHS", "3", "your"] for l in lines)
    assert any(l.split() == ["LEARNING_RATE", "0.005", "profile"] for l in lines)


def test_sample_images_knob_and_no_one_edits_profiles(plain_machine):
    assert run_committed_form("01", "smoke", SAMPLE_IMAGES=60).sample_images == 60
    assert profiles.COLAB.sample_images == profiles.SMOKE.sample_images     # the form shows the drawn sample's size
    with pytest.raises(ValueError, match="knobs"):
        profiles.get_profile("smoke", knobs=())
