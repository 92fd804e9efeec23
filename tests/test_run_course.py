"""helpers.run_course: the notebooks in order, and what make demo gathers at the end."""
import json
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import run_course
from helpers.paths import Paths
from helpers.profiles import FORMS, get_profile
from helpers.report import record_metrics


def test_course_notebooks_are_numbered_in_order():
    names = [p.name for p in run_course.course_notebooks()]
    assert names == sorted(names) and names[0].startswith("00_") and any(n.startswith("07_") for n in names)


def test_collect_outputs_copies_figures_and_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("MODANET_DATA", str(tmp_path / "data"))
    paths = Paths.for_profile("smoke")
    record_metrics(paths, "model1", {"segm_AP50": 0.25})
    record_metrics(paths, "compare", {"season_accuracy": 0.5})
    paths.figures.mkdir(parents=True)
    (paths.figures / "04_losses.png").write_bytes(b"\x89PNG fake")
    out = tmp_path / "demo"
    metrics = run_course.collect_outputs(out, "smoke", [("04_train_model1.ipynb", 12.34)], 56.78)
    assert (out / "figures" / "04_losses.png").read_bytes() == b"\x89PNG fake"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics and saved["run"]["wall_seconds"] == 56.8
    assert saved["run"]["notebook_seconds"] == {"04_train_model1.ipynb": 12.3}
    text = run_course.headline(saved)
    assert "model-1 mask AP50 (val)" in text and "0.250" in text and "0.500" in text
    assert "auto-label" not in text          # absent figures are left out, not printed as zero


def test_a_whole_run_retires_the_previous_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("MODANET_DATA", str(tmp_path / "data"))
    paths = Paths.for_profile("smoke")
    record_metrics(paths, "model2_vs_truth", {"segm_AP50": 0.4})      # written by an earlier run only
    paths.figures.mkdir(parents=True)
    (paths.figures / "07_side_by_side.png").write_bytes(b"old")
    run_course.retire_previous_outputs(paths)
    assert not paths.metrics.exists() and not paths.figures.exists()
    previous = json.loads((paths.metrics.parent / "metrics.previous.json").read_text())
    assert previous == {"model2_vs_truth": {"segm_AP50": 0.4}}
    assert (paths.figures.parent / "figures.previous" / "07_side_by_side.png").read_bytes() == b"old"
    record_metrics(paths, "model1", {"segm_AP50": 0.1})
    (tmp_path / "demo" / "figures").mkdir(parents=True)
    (tmp_path / "demo" / "figures" / "07_side_by_side.png").write_bytes(b"old")
    metrics = run_course.collect_outputs(tmp_path / "demo", "smoke", [], 1.0)
    assert "model2_vs_truth" not in metrics and metrics["model1"] == {"segm_AP50": 0.1}
    assert list((tmp_path / "demo" / "figures").iterdir()) == []
    run_course.retire_previous_outputs(paths)          # again: the older copy makes way, nothing piles up
    assert json.loads((paths.metrics.parent / "metrics.previous.json").read_text()) == {"model1": {"segm_AP50": 0.1}}


def test_parameters_reach_every_notebook_and_per_notebook_ones_win(tmp_path, monkeypatch):
    import types
    calls = []

    def execute_notebook(nb, target, parameters, **kwargs):
        calls.append((nb.rsplit("/", 1)[-1][:2], dict(parameters)))

    fake = types.SimpleNamespace(execute_notebook=execute_notebook, PapermillExecutionError=RuntimeError)
    monkeypatch.setitem(__import__("sys").modules, "papermill", fake)
    monkeypatch.setenv("MODANET_DATA", str(tmp_path / "data"))
    run_course.run_course(tmp_path / "out", "smoke", only=["04", "06"], parameters={"TRAIN_MINUTES": 2},
                          notebook_parameters={"06": {"TRAIN_MINUTES": 1}})
    smoke = get_profile("smoke")
    assert calls == [("04", {**smoke.form_values("04"), "FORM_SHOWS": "smoke", "PROFILE": "smoke", "TRAIN_MINUTES": 2}),
                     ("06", {**smoke.form_values("06"), "FORM_SHOWS": "smoke", "PROFILE": "smoke", "TRAIN_MINUTES": 1})]
    assert run_course._parameter_value("2") == 2 and run_course._parameter_value("0.5") == 0.5
    calls.clear()
    run_course.run_course(tmp_path / "out", "smoke", only=["00"])
    assert calls == [("00", {})]          # 00's parameters cell has no PROFILE: it is not passed there
    assert run_course._parameter_value("None") is None and run_course._parameter_value("coco") == "coco"


def test_each_notebook_gets_its_own_knobs_with_the_running_profiles_values(tmp_path, monkeypatch):
    monkeypatch.delenv("MODANET_DATA_SOURCE", raising=False)
    smoke = get_profile("smoke")
    for nb in run_course.course_notebooks():
        number = nb.name[:2]
        injected = run_course.form_parameters(nb, smoke)
        if number not in FORMS:
            assert injected == {}, nb.name
            continue
        assert injected == {**smoke.form_values(number), "FORM_SHOWS": "smoke"}, nb.name
    # only the names the parameters cell has (a notebook with a shorter form gets fewer)
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]},
            "source": ['PROFILE = "auto"  # @param ["auto"]\n', 'EPOCHS = 15  # @param {type:"integer"}']}
    short = tmp_path / "04_short.ipynb"
    short.write_text(json.dumps({"cells": [cell]}))
    assert run_course.parameter_names(short) == ["PROFILE", "EPOCHS"]
    assert run_course.form_parameters(short, smoke) == {"EPOCHS": smoke.epochs, "FORM_SHOWS": "smoke"}


@pytest.mark.parametrize("profile_name", ["smoke", "colab"])
def test_the_injected_cell_makes_the_notebook_run_the_profile_and_p_overrides_win(profile_name, monkeypatch, tmp_path):
    """As papermill does: the committed parameters cell, then the injected one, then the profile cell."""
    monkeypatch.delenv("MODANET_DATA_SOURCE", raising=False)
    monkeypatch.setenv("MODANET_DATA", str(tmp_path))
    calls = []
    fake = types.SimpleNamespace(execute_notebook=lambda nb, target, parameters, **kw: calls.append((nb, parameters)),
                                 PapermillExecutionError=RuntimeError)
    monkeypatch.setitem(sys.modules, "papermill", fake)
    colab_shown = get_profile("colab").image_dim           # an override equal to the committed value
    run_course.run_course(tmp_path / "out", profile_name, only=["04", "05"],
                          parameters={"IMAGE_SIZE": colab_shown, "EPOCHS": 3})
    for nb, parameters in calls:
        number = Path(nb).name[:2]
        namespace = {}
        exec(committed_parameters_source(nb), namespace)
        namespace.update(parameters)
        profile = get_profile(namespace["PROFILE"]).with_form(number, namespace)
        expected = get_profile(profile_name)
        if number == "04":
            expected = replace(expected, image_dim=colab_shown, epochs=3)
        assert profile == expected, number


def committed_parameters_source(path):
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"])


def test_papermill_keeps_warning_about_unknown_parameters_but_form_shows(caplog):
    """FORM_SHOWS is in no parameters cell on purpose (helpers.profiles): papermill's warning about it is noise."""
    import logging
    run_course._quiet_about_form_shows()
    run_course._quiet_about_form_shows()          # twice: still one filter
    logger = logging.getLogger("papermill")
    assert sum(isinstance(f, run_course._FormShowsFilter) for f in logger.filters) == 1
    with caplog.at_level(logging.WARNING, logger="papermill"):
        logger.warning("Passed unknown parameter: FORM_SHOWS")
        logger.warning("Passed unknown parameter: EPOCHZ")
    assert [r.getMessage() for r in caplog.records] == ["Passed unknown parameter: EPOCHZ"]
