"""Pictures of images, instances and training curves (matplotlib only).

Keeps the names and arguments of Matterport's visualize module so their notebooks read the
same. Every function returns its matplotlib Figure. Pass `ax` (an Axes, or a list of Axes for
the multi-panel functions) to draw into a figure of your own; without it a new pyplot figure
is made, which a notebook shows at the end of the cell (end the line with `;` so it is not
shown twice). `show=True` calls `plt.show()` at once, for scripts and loops. Nothing here
needs a display: it works with the Agg backend.

Boxes are [y1, x1, y2, x2] in pixels (y2, x2 exclusive); masks are (H, W, N) booleans.
"""
import colorsys
import csv
import math
import random
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patches
from skimage.measure import find_contours

LOSS_NAMES = ("loss", "rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
              "mrcnn_mask_loss")


def random_colors(n, bright=True, seed=None):
    """`n` distinct RGB colours (tuples in [0, 1]): hues evenly spread round the HSV circle.

    They are shuffled so neighbouring instances get unlike colours; the same `seed` gives the
    same order, `seed=None` a different order each call (as Matterport).
    """
    brightness = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / n, 1.0, brightness) for i in range(n)]
    random.Random(seed).shuffle(colors)
    return colors


def apply_mask(image, mask, color, alpha=0.5):
    """Blend `color` (RGB in [0, 1]) into `image` where `mask` is true; returns a new array.

    Under the mask each channel becomes image * (1 - alpha) + alpha * color * 255, elsewhere it
    is unchanged. Integer images are rounded back to their dtype; the input is not modified.
    """
    image = np.asarray(image)
    mask = np.asarray(mask).astype(bool)
    if image.ndim != 3 or image.shape[:2] != mask.shape:
        raise ValueError(f"apply_mask: image {image.shape} and mask {mask.shape} do not match "
                         "(need an (H, W, C) image and an (H, W) mask)")
    blended = image.astype(np.float64)
    colour = np.asarray(color, dtype=np.float64)[: image.shape[2]] * 255.0
    blended[mask] = blended[mask] * (1.0 - alpha) + alpha * colour
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return np.clip(np.rint(blended), info.min, info.max).astype(image.dtype)
    return blended.astype(image.dtype)


# -- figure plumbing ---------------------------------------------------------------------------

def _single_axes(ax, figsize):
    if ax is None:
        fig, ax = plt.subplots(1, figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _panel_axes(ax, count, cols, panel_size):
    """`count` axes: from the caller's list, or a new grid of `cols` columns (extras hidden)."""
    if ax is not None:
        axes = list(np.ravel(ax))
        if len(axes) < count:
            raise ValueError(f"need {count} axes for these panels, got {len(axes)}")
        return axes[0].figure, axes[:count]
    cols = max(1, min(cols, count))
    rows = max(1, math.ceil(count / cols))
    fig, grid = plt.subplots(rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows), squeeze=False)
    grid = list(grid.ravel())
    for extra in grid[count:]:
        extra.axis("off")
    return fig, grid[:count]


def _finish(fig, show):
    if show:
        plt.show()
    return fig


def _as_display_image(image):
    """uint8 for integer-valued pictures (matplotlib would clip values above 1 as floats)."""
    image = np.asarray(image)
    if image.dtype != np.uint8 and image.ndim == 3 and image.max(initial=0) > 1.0:
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return image


def _as_rgb_255(image):
    """A float64 (H, W, 3) copy on the 0..255 scale (gray -> RGB, [0, 1] floats scaled up)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    canvas = image[:, :, :3].astype(np.float64)
    if not np.issubdtype(image.dtype, np.integer) and canvas.max(initial=0) <= 1.0:
        canvas *= 255.0
    return canvas


# -- instances ---------------------------------------------------------------------------------

def display_instances(image, boxes, masks, class_ids, class_names, scores=None, title="",
                      figsize=(8, 8), ax=None, show_mask=True, show_bbox=True, colors=None,
                      captions=None, show=False):
    """Draw instances on an image: dashed boxes, translucent masks, mask outlines, captions.

    boxes (N, 4) [y1, x1, y2, x2] pixels; masks (H, W, N) bool; class_ids (N,) ints indexing
    `class_names`; scores (N,) or None. Captions default to "class score" ("class" without
    scores); pass `captions` (N strings) to replace them. All-zero boxes (padding) are skipped.
    With no instances the image is drawn with a note saying so.
    """
    image = np.asarray(image)
    boxes = np.zeros((0, 4)) if boxes is None else np.asarray(boxes)
    count = boxes.shape[0]
    class_ids = np.asarray(class_ids if class_ids is not None else [], dtype=np.int64)
    if count and (masks is None or np.asarray(masks).shape[-1] != count or class_ids.shape[0] != count):
        mask_count = None if masks is None else np.asarray(masks).shape[-1]
        raise ValueError(f"display_instances: {count} boxes but {mask_count} masks and "
                         f"{class_ids.shape[0]} class ids; they must match")
    if scores is not None and len(scores) != count:
        raise ValueError(f"display_instances: {count} boxes but {len(scores)} scores")
    if captions is not None and len(captions) != count:
        raise ValueError(f"display_instances: {count} boxes but {len(captions)} captions")

    fig, ax = _single_axes(ax, figsize)
    height, width = image.shape[:2]
    ax.set_ylim(height + 10, -10)
    ax.set_xlim(-10, width + 10)
    ax.axis("off")
    ax.set_title(title)
    if count == 0:
        ax.imshow(_as_display_image(image))
        ax.text(0.5, 0.5, "No instances to display", transform=ax.transAxes, ha="center",
                va="center", color="white", fontsize=14, bbox=dict(facecolor="black", alpha=0.6))
        return _finish(fig, show)

    colors = random_colors(count) if colors is None else colors
    masks = np.asarray(masks).astype(bool)
    canvas = _as_rgb_255(image)
    for i in range(count):
        if not np.any(boxes[i]):
            continue
        color = colors[i]
        y1, x1, y2, x2 = boxes[i]
        if show_bbox:
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.7,
                                           linestyle="dashed", edgecolor=color, facecolor="none"))
        if captions is not None:
            caption = captions[i]
        else:
            name = class_names[class_ids[i]]
            caption = name if scores is None else f"{name} {float(scores[i]):.3f}"
        ax.text(x1, y1 + 8, caption, color="w", size=11,
                bbox=dict(facecolor=color, alpha=0.6, pad=1, linewidth=0))
        mask = masks[:, :, i]
        if show_mask:
            canvas = apply_mask(canvas, mask, color)
        # Pad so masks touching the border still give closed outlines.
        padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
        padded[1:-1, 1:-1] = mask
        for contour in find_contours(padded, 0.5):
            xy = np.fliplr(contour) - 1          # (row, col) -> (x, y), undo the padding
            ax.add_patch(patches.Polygon(xy, facecolor="none", edgecolor=color))
    ax.imshow(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    return _finish(fig, show)


def draw_boxes(image, boxes, captions=None, colors=None, title="", figsize=(8, 8), ax=None, show=False):
    """Draw boxes [y1, x1, y2, x2] (pixels) and optional captions on an image."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    if captions is not None and len(captions) != len(boxes):
        raise ValueError(f"draw_boxes: {len(boxes)} boxes but {len(captions)} captions")
    fig, ax = _single_axes(ax, figsize)
    colors = random_colors(len(boxes), seed=0) if colors is None else colors
    ax.imshow(_as_display_image(image))
    ax.axis("off")
    ax.set_title(title)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2,
                                       edgecolor=colors[i], facecolor="none"))
        if captions is not None:
            ax.text(x1, y1 - 2, captions[i], color="w", size=9,
                    bbox=dict(facecolor=colors[i], alpha=0.7, pad=1, linewidth=0))
    return _finish(fig, show)


def display_top_masks(image, mask, class_ids, class_names, limit=4, ax=None, show=False):
    """The image, then one panel per class for the `limit` classes covering the most pixels.

    Each class panel shows the union of that class's instance masks (instances numbered so
    neighbours differ in shade); unused panels say "-".
    """
    mask = np.asarray(mask).astype(bool)
    class_ids = np.asarray(class_ids, dtype=np.int64)
    if mask.ndim != 3 or mask.shape[-1] != class_ids.shape[0]:
        raise ValueError(f"display_top_masks: masks {mask.shape} do not match {class_ids.shape[0]} class ids")
    unique_ids = np.unique(class_ids)
    areas = [mask[:, :, class_ids == class_id].sum() for class_id in unique_ids]
    ranked = [int(unique_ids[i]) for i in np.argsort(areas, kind="stable")[::-1]][:limit]

    fig, axes = _panel_axes(ax, limit + 1, limit + 1, (3, 3))
    axes[0].imshow(_as_display_image(image))
    axes[0].set_title(f"H x W = {mask.shape[0]} x {mask.shape[1]}", fontsize=9)
    for panel, axis in enumerate(axes[1:]):
        axis.axis("off")
        if panel >= len(ranked):
            axis.set_title("-", fontsize=9)
            continue
        class_id = ranked[panel]
        members = mask[:, :, class_ids == class_id]
        numbered = np.max(members * np.arange(1, members.shape[-1] + 1), axis=-1)
        axis.imshow(numbered, cmap="Blues_r", vmin=0)
        axis.set_title(class_names[class_id], fontsize=9)
    axes[0].axis("off")
    return _finish(fig, show)


def display_images(images, titles=None, cols=4, cmap=None, norm=None, interpolation=None, ax=None, show=False):
    """A grid of images with optional titles."""
    images = list(images)
    if not images:
        raise ValueError("display_images: no images given")
    titles = list(titles) if titles is not None else [None] * len(images)
    if len(titles) != len(images):
        raise ValueError(f"display_images: {len(images)} images but {len(titles)} titles")
    fig, axes = _panel_axes(ax, len(images), cols, (3.5, 3.5))
    for axis, image, title in zip(axes, images, titles):
        axis.imshow(_as_display_image(image), cmap=cmap, norm=norm, interpolation=interpolation)
        axis.axis("off")
        if title:
            axis.set_title(title, fontsize=9)
    return _finish(fig, show)


# -- training curves ---------------------------------------------------------------------------

def _read_loss_csv(path):
    """Columns of a Keras CSVLogger file as {name: [float, ...]} (blank or "NA" cells -> nan)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: training log not found")
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2 or not rows[0]:
        raise ValueError(f"{path}: no header and rows (is it a Keras CSVLogger file?)")
    header = [name.strip() for name in rows[0]]
    columns = {name: [] for name in header}
    for line_number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"{path}: line {line_number} has {len(row)} values, the header has {len(header)}")
        for name, cell in zip(header, row):
            try:
                columns[name].append(float(cell))
            except ValueError:
                columns[name].append(float("nan"))
    return columns


def _loss_columns(history_or_csv):
    if isinstance(history_or_csv, (str, Path)):
        return _read_loss_csv(history_or_csv)
    history = getattr(history_or_csv, "history", history_or_csv)
    if not isinstance(history, dict):
        raise TypeError("plot_loss: give a keras History, a dict of lists, or a CSVLogger file path, "
                        f"not {type(history_or_csv).__name__}")
    return {name: [float(v) for v in values] for name, values in history.items()}


def plot_loss(history_or_csv, metrics=None, ax=None, show=False, cols=3):
    """One panel per loss: training values against epoch, with the `val_` twin when present.

    `metrics` defaults to Mask R-CNN's losses (total, rpn_class, rpn_bbox, mrcnn_class,
    mrcnn_bbox, mrcnn_mask) that the history has; failing those, every non-`val_` column.
    A name in `metrics` that the history lacks is an error naming it.
    """
    columns = _loss_columns(history_or_csv)
    epochs = columns.pop("epoch", None)
    if metrics is None:
        names = [name for name in LOSS_NAMES if name in columns]
        if not names:
            names = [name for name in columns if not name.startswith("val_")]
    else:
        names = list(metrics)
        missing = [name for name in names if name not in columns]
        if missing:
            raise ValueError(f"plot_loss: no column {', '.join(missing)} in the history "
                             f"(it has: {', '.join(sorted(columns))})")
    if not names:
        raise ValueError("plot_loss: the history has no values to plot")
    fig, axes = _panel_axes(ax, len(names), cols, (4.5, 3.2))
    for axis, name in zip(axes, names):
        values = columns[name]
        xs = epochs if epochs is not None and len(epochs) == len(values) else list(range(len(values)))
        axis.plot(xs, values, marker="o", markersize=3, label="train")
        if f"val_{name}" in columns:
            val = columns[f"val_{name}"]
            axis.plot(xs[: len(val)], val[: len(xs)], marker="o", markersize=3, label="validation")
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("epoch")
        axis.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, show)
