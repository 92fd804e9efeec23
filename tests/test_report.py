"""helpers.report: the metrics file merges sections; figures are saved whole."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers.io import DataError  # noqa: E402
from helpers.paths import Paths  # noqa: E402
from helpers.report import read_metrics, record_metrics, save_figure  # noqa: E402


def test_sections_merge_and_later_values_win(tmp_path):
    paths = Paths(tmp_path)
    assert read_metrics(paths) == {}
    record_metrics(paths, "model1", {"segm_AP": 0.1, "epochs": 2})
    record_metrics(paths, "autolabel", {"mean_iou": 0.8})
    merged = record_metrics(paths, "model1", {"segm_AP": 0.2})
    assert merged == {"model1": {"segm_AP": 0.2, "epochs": 2}, "autolabel": {"mean_iou": 0.8}}
    assert read_metrics(paths) == merged


def test_a_broken_metrics_file_is_named(tmp_path):
    paths = Paths(tmp_path)
    paths.metrics.parent.mkdir(parents=True, exist_ok=True)
    paths.metrics.write_text("{not json")
    with pytest.raises(DataError, match="metrics.json"):
        record_metrics(paths, "x", {"a": 1})


def test_figure_is_saved_as_png_without_temp_files(tmp_path):
    paths = Paths(tmp_path)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    target = save_figure(fig, paths, "04_losses")
    plt.close(fig)
    assert target == paths.figures / "04_losses.png"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in paths.figures.iterdir()] == ["04_losses.png"]
