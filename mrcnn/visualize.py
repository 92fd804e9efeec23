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

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import lines, patches
from matplotlib.ticker import MaxNLocator
from skimage.measure import find_contours

from mrcnn import utils

LOSS_NAMES = ("loss", "rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
              "mrcnn_mask_loss")


def random_colors(N, bright=True, seed=None):
    """`N` distinct RGB colours (tuples in [0, 1]): hues evenly spread round the HSV circle.

    They are shuffled so neighbouring instances get unlike colours; the same `seed` gives the
    same order, `seed=None` a different order each call (as Matterport).
    """
    brightness = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / N, 1.0, brightness) for i in range(N)]
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
        _outline(ax, mask, color)
    ax.imshow(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    return _finish(fig, show)


def _outline(ax, mask, color):
    """The outline of an (H, W) mask as polygons; padded so masks touching the border still close."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = mask
    for contour in find_contours(padded, 0.5):
        xy = np.fliplr(contour) - 1          # (row, col) -> (x, y), undo the padding
        ax.add_patch(patches.Polygon(xy, facecolor="none", edgecolor=color))


def draw_boxes(image, boxes=None, refined_boxes=None, masks=None, captions=None, visibilities=None, title="",
               ax=None, colors=None, figsize=(8, 8), show=False):
    """Boxes, refined boxes and masks on an image (Matterport's arguments, for anchors and ROIs).

    boxes (N, 4) [y1, x1, y2, x2] pixels, dotted; refined_boxes (N, 4) solid, each joined to its
    box by a line from corner to corner; masks (H, W, N) filled with outlines; captions (N
    strings), on the refined box when there is one; visibilities (N,) of 0 (grey, no refined box),
    1 (dotted) or 2 (solid). All-zero boxes are skipped. colors: one per box (default distinct ones).
    """
    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes: give boxes, refined_boxes or both")
    boxes = None if boxes is None else np.asarray(boxes).reshape(-1, 4)
    refined_boxes = None if refined_boxes is None else np.asarray(refined_boxes).reshape(-1, 4)
    count = len(boxes) if boxes is not None else len(refined_boxes)
    for what, values in (("refined_boxes", refined_boxes), ("captions", captions), ("visibilities", visibilities),
                         ("masks", None if masks is None else np.asarray(masks).T)):
        if values is not None and len(values) != count:
            raise ValueError(f"draw_boxes: {count} boxes but {len(values)} {what}")
    fig, ax = _single_axes(ax, figsize)
    colors = random_colors(count, seed=0) if colors is None else colors
    image = np.asarray(image)
    margin = image.shape[0] // 10
    ax.set_ylim(image.shape[0] + margin, -margin)
    ax.set_xlim(-margin, image.shape[1] + margin)
    ax.axis("off")
    ax.set_title(title)
    canvas = _as_rgb_255(image)
    for i in range(count):
        visibility = 1 if visibilities is None else int(visibilities[i])
        color = "gray" if visibility == 0 else colors[i]
        style = "solid" if visibility == 2 else "dotted"
        corner = caption_at = None
        if boxes is not None:
            if not np.any(boxes[i]):
                continue
            y1, x1, y2, x2 = boxes[i]
            corner = caption_at = (x1, y1)
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.5 if visibility == 0 else 1,
                                           linestyle=style, edgecolor=color, facecolor="none"))
        if refined_boxes is not None and visibility > 0:
            y1, x1, y2, x2 = refined_boxes[i].astype(np.int32)
            caption_at = (x1, y1)
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, edgecolor=color,
                                           facecolor="none"))
            if corner is not None:
                ax.add_line(lines.Line2D([corner[0], x1], [corner[1], y1], color=color))
        if captions is not None and caption_at is not None:
            ax.text(caption_at[0], caption_at[1], captions[i], size=11, verticalalignment="top", color="w",
                    bbox={"facecolor": color, "alpha": 0.5, "pad": 2, "edgecolor": "none"})
        if masks is not None:
            mask = np.asarray(masks)[:, :, i].astype(bool)
            canvas = apply_mask(canvas, mask, matplotlib.colors.to_rgb(color))
            _outline(ax, mask, color)
    ax.imshow(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    return _finish(fig, show)


def draw_box(image, box, color):
    """Draw a box [y1, x1, y2, x2] into the image array itself, 2 pixels wide, in `color` (RGB values).

    Returns the same (modified) array, as Matterport's.
    """
    y1, x1, y2, x2 = (int(v) for v in box)
    image[y1:y1 + 2, x1:x2] = color
    image[y2:y2 + 2, x1:x2] = color
    image[y1:y2, x1:x1 + 2] = color
    image[y1:y2, x2:x2 + 2] = color
    return image


def draw_rois(image, rois, refined_rois, mask, class_ids, class_names, limit=10, figsize=(12, 12), ax=None,
              show=False, seed=None):
    """Up to `limit` ROIs (a random choice when there are more) with their refinements and masks.

    rois, refined_rois (N, 4) pixels; mask (N, h, w) the mask head's soft mask of each ROI, or
    (N, h, w, C) per class (the ROI's class is used); class_ids (N,), 0 for background ROIs (grey,
    no refinement). Prints the counts of positive and negative ROIs and the positive ratio, as
    Matterport's. seed: the random choice of ROIs (None: a new one each call).
    """
    rois = np.asarray(rois).reshape(-1, 4)
    refined_rois = np.asarray(refined_rois).reshape(-1, 4)
    class_ids = np.asarray(class_ids).reshape(-1)
    mask = np.asarray(mask)
    if not len(rois) == len(refined_rois) == len(class_ids) == len(mask):
        raise ValueError(f"draw_rois: {len(rois)} rois, {len(refined_rois)} refined_rois, {len(mask)} masks "
                         f"and {len(class_ids)} class ids; they must match")
    ids = np.arange(len(rois))
    if len(ids) > limit:
        ids = np.sort(np.random.default_rng(seed).choice(ids, limit, replace=False))
    fig, ax = _single_axes(ax, figsize)
    ax.set_title(f"Showing {len(ids)} random ROIs out of {len(rois)}" if len(rois) > limit else f"{len(ids)} ROIs")
    image = np.asarray(image)
    ax.set_ylim(image.shape[0] + 20, -20)
    ax.set_xlim(-50, image.shape[1] + 20)
    ax.axis("off")
    canvas = _as_rgb_255(image)
    colors = random_colors(max(len(ids), 1), seed=seed)
    for color, i in zip(colors, ids):
        class_id = int(class_ids[i])
        y1, x1, y2, x2 = rois[i]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, linestyle="dashed",
                                       edgecolor=color if class_id else "gray", facecolor="none"))
        if not class_id:
            continue
        ry1, rx1, ry2, rx2 = refined_rois[i]
        ax.add_patch(patches.Rectangle((rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2, edgecolor=color,
                                       facecolor="none"))
        ax.add_line(lines.Line2D([x1, rx1], [y1, ry1], color=color))
        ax.text(rx1, ry1 + 8, class_names[class_id], color="w", size=11,
                bbox=dict(facecolor=color, alpha=0.6, pad=1, linewidth=0))
        soft = mask[i][..., class_id] if mask.ndim == 4 else mask[i]
        canvas = apply_mask(canvas, utils.unmold_mask(soft, rois[i][:4].astype(np.int32), image.shape), color)
    ax.imshow(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    positives = int(np.sum(class_ids > 0))
    print("Positive ROIs: ", positives)
    print("Negative ROIs: ", int(np.sum(class_ids == 0)))
    print("Positive Ratio: {:.2f}".format(positives / max(len(class_ids), 1)))
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


def display_differences(image, gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
                        class_names, title="", ax=None, show_mask=True, show_box=True, iou_threshold=0.5,
                        score_threshold=0.5, figsize=(8, 8), show=False):
    """Ground truth (green) and predictions (red) on one image; predictions captioned "score / IoU".

    Predictions are matched to ground truth as utils.compute_matches does (the IoU shown is that
    of the matched instance, else the best one). Predictions are drawn in score order.
    """
    gt_box = np.asarray(gt_box).reshape(-1, 4)
    pred_box = np.asarray(pred_box).reshape(-1, 4)
    pred_score = np.asarray(pred_score, dtype=np.float64).reshape(-1)
    gt_class_id, pred_class_id = np.asarray(gt_class_id).reshape(-1), np.asarray(pred_class_id).reshape(-1)
    gt_mask, pred_mask = np.asarray(gt_mask), np.asarray(pred_mask)
    # compute_matches drops all-zero padding rows and sorts predictions by score: do the same here,
    # so that its answers line up with the instances drawn.
    gt_keep = np.any(gt_box != 0, axis=1)
    pred_keep = np.flatnonzero(np.any(pred_box != 0, axis=1))
    pred_keep = pred_keep[np.argsort(-pred_score[pred_keep], kind="stable")]
    gt_box, gt_class_id, gt_mask = gt_box[gt_keep], gt_class_id[gt_keep], gt_mask[..., gt_keep]
    pred_box, pred_class_id = pred_box[pred_keep], pred_class_id[pred_keep]
    pred_score, pred_mask = pred_score[pred_keep], pred_mask[..., pred_keep]
    gt_match, pred_match, overlaps = utils.compute_matches(
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
        iou_threshold=iou_threshold, score_threshold=score_threshold)
    colors = [(0, 1, 0, 0.8)] * len(gt_box) + [(1, 0, 0, 1)] * len(pred_box)
    captions = [""] * len(gt_box)
    for i in range(len(pred_box)):
        iou = overlaps[i, pred_match[i]] if pred_match[i] > -1 else (overlaps[i].max() if overlaps.shape[1] else 0.0)
        captions.append(f"{pred_score[i]:.2f} / {iou:.2f}")
    return display_instances(
        image, np.concatenate([gt_box, pred_box]), np.concatenate([gt_mask, pred_mask], axis=-1),
        np.concatenate([gt_class_id, pred_class_id]).astype(np.int64), class_names,
        np.concatenate([np.zeros(len(gt_box)), pred_score]),
        title=title or "Ground Truth and Detections\n GT=green, pred=red, captions: score/IoU",
        figsize=figsize, ax=ax, show_mask=show_mask, show_bbox=show_box, colors=colors, captions=captions,
        show=show)


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


# -- evaluation --------------------------------------------------------------------------------

def plot_precision_recall(AP, precisions, recalls, ax=None, figsize=(6.4, 4.8), show=False):
    """The precision-recall curve of compute_ap, titled with its AP (at IoU 0.5 in Matterport's use)."""
    fig, ax = _single_axes(ax, figsize)
    ax.set_title("Precision-Recall Curve. AP@50 = {:.3f}".format(AP))
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.plot(recalls, precisions)
    return _finish(fig, show)


def plot_overlaps(gt_class_ids, pred_class_ids, pred_scores, overlaps, class_names, threshold=0.5,
                  ax=None, figsize=(12, 10), show=False):
    """The IoU grid of predictions (rows) and ground truth (columns), as compute_ap's `overlaps`.

    Each cell shows the IoU and, above `threshold`, "match" (same class) or "wrong". Rows are
    labelled "class (score)", columns by class; class id 0 (padding) is left out of the labels.
    """
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    pred_class_ids = np.asarray(pred_class_ids).reshape(-1)
    gt_class_ids = gt_class_ids[gt_class_ids != 0]
    pred_class_ids = pred_class_ids[pred_class_ids != 0]
    overlaps = np.asarray(overlaps, dtype=np.float64).reshape(len(pred_class_ids), len(gt_class_ids))
    fig, ax = _single_axes(ax, figsize)
    ax.imshow(overlaps, interpolation="nearest", cmap=plt.cm.Blues)
    ax.set_yticks(np.arange(len(pred_class_ids)),
                  ["{} ({:.2f})".format(class_names[int(c)], pred_scores[i]) for i, c in enumerate(pred_class_ids)])
    ax.set_xticks(np.arange(len(gt_class_ids)), [class_names[int(c)] for c in gt_class_ids], rotation=90)
    half = overlaps.max(initial=0.0) / 2.0
    for i in range(overlaps.shape[0]):
        for j in range(overlaps.shape[1]):
            value = overlaps[i, j]
            verdict = ("match" if gt_class_ids[j] == pred_class_ids[i] else "wrong") if value > threshold else ""
            color = "white" if value > half else "black" if value > 0 else "grey"
            ax.text(j, i, "{:.3f}\n{}".format(value, verdict), horizontalalignment="center",
                    verticalalignment="center", fontsize=9, color=color)
    fig.tight_layout()
    ax.set_xlabel("Ground Truth")
    ax.set_ylabel("Predictions")
    return _finish(fig, show)


# -- tables ------------------------------------------------------------------------------------

def table_html(table):
    """The HTML display_table shows: one <tr> per row, each value str()'d in a <td>."""
    rows = "".join("<tr>" + "".join("<td>{:40}</td>".format(str(value)) for value in row) + "</tr>"
                   for row in table)
    return "<table>" + rows + "</table>"


def display_table(table):
    """Show rows of values as an HTML table in a notebook (IPython), as plain text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(HTML(table_html(table)))
        return
    for row in table:
        print("  ".join("{:40}".format(str(value)) for value in row).rstrip())


def weight_stats_table(model):
    """display_weight_stats' rows: [name, shape, min, max, std] per weight of model.get_trainable_layers().

    A weight whose values are all equal gets a red "dead?" note (conv biases, which start at 0,
    excepted), one beyond +-1000 an "Overflow?" note.
    """
    table = [["WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD"]]
    for layer in model.get_trainable_layers():
        for index, weight in enumerate(layer.weights):
            values = np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight)
            alert = ""
            conv_bias = type(layer).__name__ == "Conv2D" and index == 1
            if values.min() == values.max() and not conv_bias:
                alert += "<span style='color:red'>*** dead?</span>"
            if np.abs(values.min()) > 1000 or np.abs(values.max()) > 1000:
                alert += "<span style='color:red'>*** Overflow?</span>"
            table.append([getattr(weight, "path", weight.name) + alert, str(values.shape),
                          "{:+9.4f}".format(values.min()), "{:+10.4f}".format(values.max()),
                          "{:+9.4f}".format(values.std())])
    return table


def display_weight_stats(model):
    """A table of every weight of a MaskRCNN's layers: shape, min, max, std, and suspicious ones."""
    display_table(weight_stats_table(model))


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
    columns = {name: [float(v) for v in values] for name, values in history.items()}
    if "epoch" not in columns and isinstance(getattr(history_or_csv, "epoch", None), list):
        columns["epoch"] = [float(e) for e in history_or_csv.epoch]     # a History's 0-based epochs
    return columns


def _last_row_per_epoch(columns, epochs):
    """Keep only the last row logged for each epoch: a resumed run may log an epoch again."""
    last = {epoch: row for row, epoch in enumerate(epochs)}
    rows = sorted(last.values())
    return {name: [values[row] for row in rows if row < len(values)] for name, values in columns.items()}, \
        [epochs[row] for row in rows]


def plot_loss(history_or_csv, metrics=None, ax=None, show=False, cols=3):
    """One panel per loss: training values (solid) against epoch, the `val_` twin dashed.

    `metrics` defaults to Mask R-CNN's losses (total, rpn_class, rpn_bbox, mrcnn_class,
    mrcnn_bbox, mrcnn_mask) that the history has; failing those, every non-`val_` column.
    A name in `metrics` that the history lacks is an error naming it. The x axis counts epochs
    as training reports them and checkpoints are named, 1 to N (Keras' CSV log and History
    count from 0); when an epoch was logged twice (a resumed run), its last row is drawn.
    """
    columns = _loss_columns(history_or_csv)
    epochs = columns.pop("epoch", None)
    if epochs is not None and all(math.isfinite(e) for e in epochs):
        columns, epochs = _last_row_per_epoch(columns, epochs)
        epochs = [int(e) + 1 for e in epochs]
    else:
        epochs = None
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
        xs = epochs if epochs is not None and len(epochs) == len(values) else list(range(1, len(values) + 1))
        axis.plot(xs, values, marker="o", markersize=3, label="train")
        if f"val_{name}" in columns:
            val = columns[f"val_{name}"]
            axis.plot(xs[: len(val)], val[: len(xs)], marker="o", markersize=3, linestyle="--",
                      label="validation")
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, show)
