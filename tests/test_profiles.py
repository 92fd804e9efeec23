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


def test_display_lists_every_value(capsys):
    profiles.SMOKE.display()
    out = capsys.readouterr().out
    for key, _ in profiles.SMOKE.table():
        assert key in out


def test_model2_epochs_replace_model1s_and_overrides_win():
    from helpers.profiles import get_profile
    smoke = get_profile("smoke")
    model2 = smoke.for_model2()
    assert (model2.epochs_heads, model2.epochs) == (smoke.model2_epochs_heads, smoke.model2_epochs)
    assert model2.for_model2(epochs=9, learning_rate=None).epochs == 9
    assert model2.learning_rate == smoke.learning_rate
