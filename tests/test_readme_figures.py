"""The README's smoke-run figures are written from a run's metrics, not typed."""
import json

import pytest

from helpers import readme_figures as rf
from helpers.io import DataError, read_json

METRICS = {
    "model1": {"segm_AP50": 0.1234, "segm_AP": 0.0456, "images": 24, "epochs": 8},
    "autolabel": {"labelled": 77, "images_seen": 180, "mean_iou": 0.5556, "instances": 77,
                  "share_wrong_garment": 2 / 77},
    "compare": {"images": 11, "model1_segm_AP50": 0.7001, "model2_segm_AP50": 0.4002,
                "model2_season_segm_AP50": 0.3003, "season_accuracy": 0.4545},
    "run": {"wall_seconds": 1500.0},
}


def test_the_readme_quotes_the_committed_smoke_run_as_this_module_writes_it():
    written = rf.smoke_paragraph(read_json(rf.SNAPSHOT))
    assert rf.readme_block(rf.README.read_text(encoding="utf-8")) == written


def test_every_figure_comes_from_the_metrics():
    text = rf.smoke_paragraph(METRICS)
    for figure in ("0.123", "0.046", "24 val images", "8 epochs", "77 of 180", "0.556", "2 on the wrong",
                   "11 held-out", "0.700", "0.400", "0.300", "45%", "25 minutes"):
        assert figure in text, figure


def test_update_rewrites_only_the_block_and_keeps_the_run(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{rf.START}\nold figures 0.99\n{rf.END}\nafter\n", encoding="utf-8")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(METRICS))
    snapshot = tmp_path / "docs" / "smoke.json"
    snapshot.parent.mkdir()
    rf.update_readme(metrics, readme, snapshot)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("before\n") and text.endswith("after\n") and "0.99" not in text
    assert rf.readme_block(text) == rf.smoke_paragraph(METRICS)
    assert read_json(snapshot) == METRICS


def test_a_partial_run_or_a_readme_without_markers_is_a_one_line_error(tmp_path, capsys):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"model1": METRICS["model1"]}))
    assert rf.main([str(metrics)]) == 2
    assert "no autolabel, compare section" in capsys.readouterr().err
    with pytest.raises(DataError, match="markers"):
        rf.readme_block("no markers here")


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", "null", '{"model1": 1, "autolabel": {}, "compare": {}}',
                                     json.dumps({**METRICS, "model1": {"segm_AP50": "high"}}),
                                     json.dumps({**METRICS, "compare": []})])
def test_a_bad_metrics_file_is_a_one_line_error_and_changes_nothing(tmp_path, capsys, monkeypatch, content):
    readme = tmp_path / "README.md"
    readme.write_text(f"{rf.START}\nold\n{rf.END}\n", encoding="utf-8")
    monkeypatch.setattr(rf, "README", readme)
    monkeypatch.setattr(rf, "SNAPSHOT", tmp_path / "snapshot.json")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(content)
    assert rf.main([str(metrics)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "metrics.json" in err and "Traceback" not in err
    assert readme.read_text(encoding="utf-8") == f"{rf.START}\nold\n{rf.END}\n"
    assert not (tmp_path / "snapshot.json").exists()
    assert rf.main([str(tmp_path / "missing.json")]) == 2


def test_the_command_writes_the_readme_and_the_snapshot_together(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"{rf.START}\nold\n{rf.END}\n", encoding="utf-8")
    monkeypatch.setattr(rf, "README", readme)
    monkeypatch.setattr(rf, "SNAPSHOT", tmp_path / "snapshot.json")
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(METRICS))
    assert rf.main([str(metrics)]) == 0
    assert rf.readme_block(readme.read_text(encoding="utf-8")) == rf.smoke_paragraph(METRICS)
    assert read_json(tmp_path / "snapshot.json") == METRICS
