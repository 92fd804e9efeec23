"""The one switch: profile resolution, overrides and the paths each profile uses."""
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


def test_auto_without_gpu_or_modanet_is_smoke(monkeypatch, tmp_path):
    monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)
    monkeypatch.setenv("MODANET_DATA", str(tmp_path))
    monkeypatch.setattr(profiles, "gpu_visible", lambda: False)
    assert profiles.get_profile("auto").name == "smoke"
    monkeypatch.setattr(profiles, "gpu_visible", lambda: True)
    assert profiles.get_profile("auto").name == "full"


def test_auto_with_modanet_downloaded_is_full(monkeypatch, tmp_path):
    monkeypatch.delenv(profiles.PROFILE_ENV, raising=False)
    monkeypatch.setenv("MODANET_DATA", str(tmp_path))
    monkeypatch.setattr(profiles, "gpu_visible", lambda: False)
    full = paths_mod.Paths.for_profile("full")
    full.annotations_dir.mkdir(parents=True)
    full.train_annotations.write_text("{}")
    full.images.mkdir()
    assert profiles.get_profile("auto").name == "full"


def test_unknown_profile_and_field_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown profile 'huge'"):
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
