"""mrcnn.visualize: figures save as PNG, masks really colour pixels, colour and blend maths, loss plots."""
import csv

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from mrcnn import visualize  # noqa: E402

CLASS_NAMES = ["BG", "bag", "belt", "boots"]
GRAY = 90


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def one_instance_scene():
    image = np.full((96, 128, 3), GRAY, dtype=np.uint8)
    boxes = np.array([[20, 30, 60, 90]])
    masks = np.zeros((96, 128, 1), dtype=bool)
    masks[25:55, 35:85, 0] = True
    return image, boxes, masks, np.array([1]), np.array([0.95])


def saved_png(fig, path):
    fig.savefig(path)                       # dpi "figure": display pixels == PNG pixels
    assert path.stat().st_size > 0
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def pixel_at(fig, ax, png, x, y):
    """The PNG pixel under data point (x, y) of `ax`."""
    dx, dy = ax.transData.transform((x, y))
    return png[int(round(png.shape[0] - dy)), int(round(dx))]


def test_random_colors_count_determinism_distinctness():
    colors = visualize.random_colors(12, seed=5)
    assert len(colors) == 12 and len(set(colors)) == 12
    assert colors == visualize.random_colors(12, seed=5)
    assert colors != visualize.random_colors(12, seed=6)
    assert sorted(colors) == sorted(visualize.random_colors(12, seed=6))   # same set, other order
    assert all(0.0 <= c <= 1.0 for color in colors for c in color)
    assert max(max(c) for c in visualize.random_colors(5, bright=False, seed=0)) == pytest.approx(0.7)
    assert visualize.random_colors(0) == []


def test_apply_mask_alpha_math_exactly():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    original = image.copy()
    mask = rng.random((10, 12)) > 0.5
    color, alpha = (0.2, 0.4, 0.6), 0.3
    out = visualize.apply_mask(image, mask, color, alpha=alpha)
    expected = image.astype(float)
    expected[mask] = expected[mask] * (1 - alpha) + alpha * np.array(color) * 255
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.rint(expected).astype(np.uint8))
    np.testing.assert_array_equal(out[~mask], image[~mask])
    np.testing.assert_array_equal(image, original)                      # input untouched
    floats = visualize.apply_mask(image.astype(np.float32), mask, color, alpha=alpha)
    np.testing.assert_allclose(floats, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="do not match"):
        visualize.apply_mask(image, mask[:5], color)


def test_display_instances_colours_pixels_under_the_mask(tmp_path):
    image, boxes, masks, class_ids, scores = one_instance_scene()
    fig = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES, scores,
                                      colors=[(1.0, 0.0, 0.0)], figsize=(4, 3))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    png = saved_png(fig, tmp_path / "instances.png")
    inside = pixel_at(fig, ax, png, 60, 40)
    expected = [0.5 * GRAY + 0.5 * 255, 0.5 * GRAY, 0.5 * GRAY]
    assert np.all(np.abs(inside - expected) <= 3), inside
    outside = pixel_at(fig, ax, png, 115, 85)
    assert np.all(np.abs(outside - GRAY) <= 3), outside
    assert [t.get_text() for t in ax.texts] == ["bag 0.950"]
    assert len([p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]) == 1
    assert any(isinstance(p, matplotlib.patches.Polygon) for p in ax.patches)      # the outline

    plain = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES, scores,
                                        colors=[(1.0, 0.0, 0.0)], figsize=(4, 3), show_mask=False)
    plain_png = saved_png(plain, tmp_path / "plain.png")
    assert np.all(np.abs(pixel_at(plain, plain.axes[0], plain_png, 60, 40) - GRAY) <= 3)


def test_display_instances_options_and_errors(tmp_path):
    image, boxes, masks, class_ids, _ = one_instance_scene()
    fig, own_ax = plt.subplots()
    returned = visualize.display_instances(image / 255.0, boxes, masks, class_ids, CLASS_NAMES,
                                           ax=own_ax, captions=["my caption"], show_bbox=False)
    assert returned is fig
    assert [t.get_text() for t in own_ax.texts] == ["my caption"]
    assert not any(isinstance(p, matplotlib.patches.Rectangle) for p in own_ax.patches)
    no_scores = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES)
    assert [t.get_text() for t in no_scores.axes[0].texts] == ["bag"]
    with pytest.raises(ValueError, match="1 boxes but 2 masks"):
        visualize.display_instances(image, boxes, np.repeat(masks, 2, axis=-1), class_ids, CLASS_NAMES)


def test_display_instances_without_instances(tmp_path):
    image = np.full((40, 50, 3), GRAY, dtype=np.uint8)
    fig = visualize.display_instances(image, np.zeros((0, 4)), np.zeros((40, 50, 0), bool),
                                      np.zeros(0, int), CLASS_NAMES)
    assert "No instances to display" in [t.get_text() for t in fig.axes[0].texts]
    saved_png(fig, tmp_path / "empty.png")


def test_display_top_masks_ranks_classes_by_area(tmp_path):
    image = np.full((40, 40, 3), GRAY, dtype=np.uint8)
    masks = np.zeros((40, 40, 4), dtype=bool)
    masks[:5, :5, 0] = True          # belt: 25 px
    masks[:20, :20, 1] = True        # bag: 400 px ...
    masks[20:, 20:, 2] = True        # ... + 400 px
    masks[10:20, :, 3] = True        # boots: 400 px
    fig = visualize.display_top_masks(image, masks, np.array([2, 1, 1, 3]), CLASS_NAMES, limit=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[1:] == ["bag", "boots", "belt"]
    bag_panel = fig.axes[1].images[0].get_array()
    assert bag_panel[5, 5] == 1 and bag_panel[30, 30] == 2 and bag_panel[5, 30] == 0
    wide = visualize.display_top_masks(image, masks, np.array([2, 1, 1, 3]), CLASS_NAMES, limit=5)
    assert [ax.get_title() for ax in wide.axes[4:]] == ["-", "-"]
    saved_png(fig, tmp_path / "top.png")


def test_display_images_and_draw_boxes(tmp_path):
    images = [np.full((20, 30, 3), v, dtype=np.uint8) for v in (0, 60, 120, 180, 240)]
    fig = visualize.display_images(images, titles=list("abcde"), cols=2)
    visible = [ax for ax in fig.axes if ax.images]
    assert len(visible) == 5 and [ax.get_title() for ax in visible] == list("abcde")
    assert len(fig.axes) == 6
    saved_png(fig, tmp_path / "grid.png")
    with pytest.raises(ValueError, match="5 images but 2 titles"):
        visualize.display_images(images, titles=["a", "b"])

    boxed = visualize.draw_boxes(images[1], [[2, 3, 10, 20], [5, 5, 15, 25]], captions=["one", "two"])
    assert len(boxed.axes[0].patches) == 2
    assert [t.get_text() for t in boxed.axes[0].texts] == ["one", "two"]
    png = saved_png(boxed, tmp_path / "boxes.png")
    assert png.std() > 0


def write_training_log(path, with_val=("loss", "mrcnn_mask_loss")):
    names = list(visualize.LOSS_NAMES)
    header = ["epoch"] + names + [f"val_{n}" for n in with_val]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for epoch in range(4):
            writer.writerow([epoch] + [1.0 / (epoch + 1 + i) for i in range(len(header) - 1)])


def test_plot_loss_reads_csv_logger_file(tmp_path):
    log = tmp_path / "training.csv"
    write_training_log(log)
    fig = visualize.plot_loss(log)
    assert [ax.get_title() for ax in fig.axes] == list(visualize.LOSS_NAMES)
    lines = {ax.get_title(): len(ax.lines) for ax in fig.axes}
    assert lines == {"loss": 2, "rpn_class_loss": 1, "rpn_bbox_loss": 1, "mrcnn_class_loss": 1,
                     "mrcnn_bbox_loss": 1, "mrcnn_mask_loss": 2}
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), [1 / (e + 1) for e in range(4)])
    saved_png(fig, tmp_path / "loss.png")

    chosen = visualize.plot_loss(log, metrics=["mrcnn_mask_loss"])
    assert [ax.get_title() for ax in chosen.axes] == ["mrcnn_mask_loss"]
    with pytest.raises(ValueError, match="no column bogus_loss"):
        visualize.plot_loss(log, metrics=["bogus_loss"])


def test_plot_loss_accepts_history_and_dict_and_rejects_bad_input(tmp_path):
    history = {"loss": [3.0, 2.0], "val_loss": [3.5, 2.5], "mrcnn_class_loss": [1.0, 0.5]}

    class FakeHistory:
        pass

    fake = FakeHistory()
    fake.history = history
    for source in (history, fake):
        fig = visualize.plot_loss(source)
        assert [ax.get_title() for ax in fig.axes] == ["loss", "mrcnn_class_loss"]
    other = visualize.plot_loss({"accuracy": [0.1, 0.2], "val_accuracy": [0.1, 0.1]})
    assert [ax.get_title() for ax in other.axes] == ["accuracy"] and len(other.axes[0].lines) == 2

    with pytest.raises(FileNotFoundError, match="missing.csv"):
        visualize.plot_loss(tmp_path / "missing.csv")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("epoch,loss\n0,1.0\n1\n")
    with pytest.raises(ValueError, match="ragged.csv: line 3"):
        visualize.plot_loss(ragged)
    with pytest.raises(TypeError, match="CSVLogger"):
        visualize.plot_loss(42)


def test_plot_loss_draws_validation_dashed_against_epochs_one_to_n(tmp_path):
    log = tmp_path / "training.csv"
    write_training_log(log)                      # Keras' CSVLogger: epochs 0..3
    fig = visualize.plot_loss(log)
    total = fig.axes[0]
    train, val = total.lines
    assert list(train.get_xdata()) == [1, 2, 3, 4] and list(val.get_xdata()) == [1, 2, 3, 4]
    assert train.get_linestyle() == "-" and val.get_linestyle() == "--"
    assert [t.get_text() for t in total.get_legend().get_texts()] == ["train", "validation"]
    ticks = [tick for tick in total.get_xticks() if 1 <= tick <= 4]
    assert ticks and all(float(tick).is_integer() for tick in ticks)    # no epoch 1.5

    # a History counts from 0 in .epoch; a bare dict has no epochs: both start at 1
    class FakeHistory:
        history = {"loss": [3.0, 2.0, 1.5], "val_loss": [3.5, 2.5, 2.0]}
        epoch = [4, 5, 6]                        # resumed after 4 epochs
    assert list(visualize.plot_loss(FakeHistory()).axes[0].lines[0].get_xdata()) == [5, 6, 7]
    assert list(visualize.plot_loss({"loss": [3.0, 2.0]}).axes[0].lines[0].get_xdata()) == [1, 2]


def test_plot_loss_draws_the_last_row_of_an_epoch_logged_twice(tmp_path):
    log = tmp_path / "resumed.csv"
    # epochs 0, 1, 2 logged, then a run resumed from the epoch-1 checkpoint logs 1, 2 and 3 again
    rows = [(0, 4.0), (1, 3.0), (2, 2.5), (1, 2.9), (2, 2.4), (3, 2.0)]
    log.write_text("epoch,loss,val_loss\n" + "".join(f"{e},{v},{v + 1}\n" for e, v in rows))
    train, val = visualize.plot_loss(log).axes[0].lines
    assert list(train.get_xdata()) == [1, 2, 3, 4]
    assert list(train.get_ydata()) == [4.0, 2.9, 2.4, 2.0]
    assert list(val.get_ydata()) == [5.0, 3.9, 3.4, 3.0]
