"""helpers.plots: the evaluation figures draw under Agg, with the axes, cells and bars they promise."""
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from helpers.plots import (  # noqa: E402
    class_colours, dataset_truths, plot_confusion_matrix, plot_per_class_ap, show_detections, show_side_by_side)

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
    assert [ax.get_title() for ax in fig.axes] == ["a: 2 detections ≥ 0.5", "b: 0 detections ≥ 0.5",
                                                   "c: 1 detection ≥ 0.5", "d: 1 detection ≥ 0.5"]
    assert captions(fig.axes[0]) == ["skirt 0.80", "skirt 0.90"]
    assert captions(fig.axes[1]) == []
    assert captions(fig.axes[2]) == ["top 0.95"]
    assert saves(fig)
    with pytest.raises(ValueError, match="same, non-zero number"):
        show_detections(images[:2], results, NAMES)


def test_show_detections_hides_weak_detections_by_default():
    image, result = scene(3, [0.9, 0.45, 0.1])
    fig = show_detections([image], [result], NAMES)            # min_score 0.5 unless told
    assert captions(fig.axes[0]) == ["skirt 0.90"] and fig.axes[0].get_title() == "image 1: 1 detection ≥ 0.5"


def boxes_of(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_show_detections_colours_by_class():
    image, result = scene(3, [0.9, 0.8, 0.7])                  # classes skirt, top, skirt
    fig = show_detections([image], [result], NAMES)
    assert len(boxes_of(fig.axes[0])) == 3                     # one box each
    colour_of = class_colours(NAMES[1:])                       # as show_coco_images colours categories
    edge = sorted(tuple(np.round(p.get_edgecolor()[:3], 4)) for p in boxes_of(fig.axes[0]))
    skirt, top = (tuple(np.round(colour_of[name][:3], 4)) for name in ("skirt", "top"))
    assert edge == sorted([skirt, skirt, top])


def truth_of(image, boxes, class_ids, names, name="photo.jpg"):
    masks = np.zeros(image.shape[:2] + (len(boxes),), dtype=bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return {"masks": masks, "class_ids": np.array(class_ids), "class_names": names, "name": name}


def test_show_detections_draws_the_truth_left_of_each_prediction():
    image, result = scene(2, [0.9, 0.8])                       # skirt, top in NAMES' ids
    truth_names = ["BG", "top", "dress", "skirt"]              # another list: matched by name
    truth = truth_of(image, [(4, 4, 30, 40), (30, 50, 60, 90)], [3, 2], truth_names)
    fig = show_detections([image, image], [result, result], NAMES,
                          truths=[truth, dict(truth, name="other.jpg")])
    assert len(fig.axes) == 4                                  # truth | detections, twice
    assert [ax.get_title() for ax in fig.axes] == [
        "photo.jpg: truth, 2 garments", "photo.jpg: 2 detections ≥ 0.5",
        "other.jpg: truth, 2 garments", "other.jpg: 2 detections ≥ 0.5"]
    assert captions(fig.axes[0]) == ["dress", "skirt"] and captions(fig.axes[1]) == ["skirt 0.90", "top 0.80"]
    colour_of = class_colours(NAMES[1:])
    truth_skirt = next(p for p in boxes_of(fig.axes[0]) if p.get_width() == 36)    # (4, 4, 30, 40)
    assert np.allclose(truth_skirt.get_edgecolor()[:3], colour_of["skirt"][:3])
    relabelled = show_detections([image], [result], NAMES, truths=[truth], truth_name="auto-labels")
    assert relabelled.axes[0].get_title() == "photo.jpg: auto-labels, 2 garments"
    with pytest.raises(ValueError, match="2 images but 1 truths"):
        show_detections([image, image], [result, result], NAMES, truths=[truth])


def test_labels_stay_inside_the_image_and_never_cover_each_other():
    image = np.full((80, 120, 3), 90, dtype=np.uint8)
    # six boxes sharing a corner, and one at the right edge whose label would leave the picture
    boxes = [[10, 10, 70, 60 + 5 * n] for n in range(6)] + [[5, 110, 40, 120]]
    count = len(boxes)
    masks = np.zeros((80, 120, count), dtype=bool)
    for n, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, n] = True
    result = {"rois": np.array(boxes), "class_ids": np.array([1, 2] * 3 + [1]), "masks": masks,
              "scores": np.linspace(0.99, 0.6, count)}
    fig = show_detections([image], [result], NAMES)
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frames = [t.get_bbox_patch().get_window_extent(renderer) for t in ax.texts]
    assert len(frames) == count
    for i in range(count):
        for j in range(i + 1, count):
            overlap_w = min(frames[i].x1, frames[j].x1) - max(frames[i].x0, frames[j].x0)
            overlap_h = min(frames[i].y1, frames[j].y1) - max(frames[i].y0, frames[j].y0)
            assert overlap_w <= 0.5 or overlap_h <= 0.5, (ax.texts[i].get_text(), ax.texts[j].get_text())
    picture = ax.images[0].get_window_extent(renderer)
    for frame in frames:
        assert picture.x0 - 0.5 <= frame.x0 and frame.x1 <= picture.x1 + 0.5
        assert picture.y0 - 0.5 <= frame.y0 and frame.y1 <= picture.y1 + 0.5


def test_dataset_truths_gives_each_images_masks_classes_and_file_name():
    from mrcnn.samples.shapes import ShapesDataset

    dataset = ShapesDataset()
    dataset.load_shapes(3, size=64, seed=2)
    dataset.prepare()
    truths = dataset_truths(dataset, dataset.image_ids[:2])
    for image_id, truth in zip(dataset.image_ids[:2], truths):
        masks, class_ids = dataset.load_mask(image_id)
        assert np.array_equal(truth["masks"], masks) and np.array_equal(truth["class_ids"], class_ids)
        assert truth["class_names"] == dataset.class_names
        assert truth["rois"].shape == (len(class_ids), 4)
        assert isinstance(truth["name"], str) and truth["name"]


def test_side_by_side_one_row_per_image_two_panels():
    image, result_a = scene(2, [0.9, 0.2])
    _, result_b = scene(3, [0.9, 0.8, 0.7])
    single = show_side_by_side(image, result_a, NAMES, result_b, SEASON_NAMES, min_score=0.0)
    assert len(single.axes) == 2
    assert single.axes[0].get_title() == "model-1 (2 detections ≥ 0)"
    assert single.axes[1].get_title() == "model-2 (3 detections ≥ 0)"
    assert "skirt_kis 0.80" in captions(single.axes[1])
    both = show_side_by_side([image, image], [result_a, result_a], NAMES, [result_b, result_b], SEASON_NAMES,
                             titles=("A", "B"), min_score=0.5, image_titles=["x.jpg", "y.jpg"])
    assert len(both.axes) == 4
    assert [ax.get_title() for ax in both.axes] == ["x.jpg: A (1 detection ≥ 0.5)", "x.jpg: B (3 detections ≥ 0.5)",
                                                    "y.jpg: A (1 detection ≥ 0.5)", "y.jpg: B (3 detections ≥ 0.5)"]
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
