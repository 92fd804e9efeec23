"""helpers.plots: the evaluation figures draw under Agg, with the axes, cells and bars they promise."""
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from helpers.plots import (  # noqa: E402
    class_colours, plot_confusion_matrix, plot_per_class_ap, show_detections, show_side_by_side)

NAMES = ["BG", "skirt", "top"]
SEASON_NAMES = ["BG", "skirt_yaz", "skirt_kis", "top_yaz"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def saves(fig):
    """The figure renders to a non-empty PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.tell() > 0


def scene(count, scores):
    """A grey image and a detect()-style result with `count` square instances."""
    image = np.full((64, 96, 3), 120, dtype=np.uint8)
    masks = np.zeros((64, 96, count), dtype=bool)
    rois = []
    for n in range(count):
        masks[5 + 10 * n:15 + 10 * n, 5 + 20 * n:25 + 20 * n, n] = True
        rois.append([5 + 10 * n, 5 + 20 * n, 15 + 10 * n, 25 + 20 * n])
    return image, {"rois": np.array(rois, dtype=np.int32).reshape(-1, 4),
                   "class_ids": np.array([1 + n % 2 for n in range(count)], dtype=np.int32),
                   "scores": np.array(scores, dtype=np.float32), "masks": masks}


def captions(ax):
    return sorted(text.get_text() for text in ax.texts)


def test_confusion_matrix_shows_every_count():
    matrix = np.array([[3, 1, 0, 1], [0, 2, 0, 0], [1, 0, 4, 2]])
    fig = plot_confusion_matrix(matrix, ["yaz", "kis", "4mev"], ["yaz", "kis", "4mev", "none"], "Seasons")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2                                  # the matrix and its colour bar
    ax = fig.axes[0]
    assert sorted(int(t) for t in captions(ax)) == sorted(matrix.ravel().tolist())
    assert ax.get_title() == "Seasons"
    colours = ax.images[0].get_array()
    np.testing.assert_allclose(colours.sum(axis=1), 1.0)      # each row's colour is its share
    assert saves(fig)
    with pytest.raises(ValueError, match="matrix is"):
        plot_confusion_matrix(matrix, ["yaz"], ["yaz"], "bad")


def test_confusion_matrix_with_an_empty_row():
    fig = plot_confusion_matrix(np.array([[0, 0], [1, 1]]), ["a", "b"], ["a", "none"], "t")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), [[0, 0], [0.5, 0.5]])


def test_show_detections_one_axes_per_image_and_min_score_filters():
    images, results = zip(*[scene(3, [0.9, 0.4, 0.8]), scene(0, []), scene(2, [0.3, 0.95]), scene(1, [0.7])])
    fig = show_detections(images, results, NAMES, titles=["a", "b", "c", "d"], cols=3, min_score=0.5)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4                                  # 2 x 3 grid, the 2 spare cells removed
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", "d"]
    assert captions(fig.axes[0]) == ["skirt 0.800", "skirt 0.900"]
    assert captions(fig.axes[1]) == ["No instances to display"]
    assert captions(fig.axes[2]) == ["top 0.950"]
    assert saves(fig)
    with pytest.raises(ValueError, match="same, non-zero number"):
        show_detections(images[:2], results, NAMES)


def test_show_detections_colours_by_class():
    image, result = scene(3, [0.9, 0.8, 0.7])                  # classes skirt, top, skirt
    fig = show_detections([image], [result], NAMES)
    assert len(fig.axes[0].patches) == 6                       # a dashed box and a mask outline each
    colour_of = class_colours(NAMES[1:])                       # as show_coco_images colours categories
    boxes = [p for p in fig.axes[0].patches if p.get_linestyle() == "dashed"]
    edge = [tuple(np.round(p.get_edgecolor()[:3], 4)) for p in boxes]
    assert edge[0] == edge[2] == tuple(np.round(colour_of["skirt"][:3], 4))
    assert edge[1] == tuple(np.round(colour_of["top"][:3], 4))


def test_side_by_side_one_row_per_image_two_panels():
    image, result_a = scene(2, [0.9, 0.2])
    _, result_b = scene(3, [0.9, 0.8, 0.7])
    single = show_side_by_side(image, result_a, NAMES, result_b, SEASON_NAMES)
    assert len(single.axes) == 2
    assert single.axes[0].get_title() == "model-1 (2 detections)"
    assert single.axes[1].get_title() == "model-2 (3 detections)"
    assert "skirt_kis 0.800" in captions(single.axes[1])
    both = show_side_by_side([image, image], [result_a, result_a], NAMES, [result_b, result_b], SEASON_NAMES,
                             titles=("A", "B"), min_score=0.5, image_titles=["x.jpg", "y.jpg"])
    assert len(both.axes) == 4
    assert [ax.get_title() for ax in both.axes] == ["x.jpg: A (1 detections)", "x.jpg: B (3 detections)",
                                                    "y.jpg: A (1 detections)", "y.jpg: B (3 detections)"]
    assert saves(both)
    with pytest.raises(ValueError, match="one result per model"):
        show_side_by_side([image, image], [result_a], NAMES, [result_b, result_b], SEASON_NAMES)


def test_per_class_ap_bars():
    rows = [{"class": "skirt", "model-1": 0.6, "model-2": 0.7},
            {"class": "scarf/tie", "model-1": 0.2, "model-2": float("nan")},
            {"class": "top", "model-1": None, "model-2": 0.4}]
    fig = plot_per_class_ap(rows, ["model-1", "model-2"])
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.containers) == 2
    heights = [[bar.get_height() for bar in container] for container in ax.containers]
    assert heights == [[0.6, 0.2, 0.0], [0.7, 0.0, 0.4]]
    assert captions(ax) == ["n/a", "n/a"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["skirt", "scarf/tie", "top"]
    assert saves(fig)
    with pytest.raises(ValueError, match="rows lack model-3"):
        plot_per_class_ap(rows, ["model-3"])
