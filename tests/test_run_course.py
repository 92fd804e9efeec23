"""helpers.run_course: the notebooks in order, and what make demo gathers at the end."""
import json

from helpers import run_course
from helpers.paths import Paths
from helpers.report import record_metrics


def test_course_notebooks_are_numbered_in_order():
    names = [p.name for p in run_course.course_notebooks()]
    assert names == sorted(names) and names[0].startswith("00_") and names[-1].startswith("07_")


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
    assert calls == [("04", {"PROFILE": "smoke", "TRAIN_MINUTES": 2}), ("06", {"PROFILE": "smoke", "TRAIN_MINUTES": 1})]
    assert run_course._parameter_value("2") == 2 and run_course._parameter_value("0.5") == 0.5
    assert run_course._parameter_value("None") is None and run_course._parameter_value("coco") == "coco"
