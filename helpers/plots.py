"""The figures notebooks show: annotated images, class counts, detections and evaluation.

Every function returns its matplotlib Figure (a notebook shows it; `fig.savefig(...)` keeps it).
"""
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.patches import Polygon, Rectangle

from mrcnn.utils import extract_bboxes, read_image_rgb
from mrcnn.visualize import apply_mask


def class_colours(names):
    """A distinct colour per class name, stable for the same list of names."""
    cmap = plt.get_cmap("tab20")
    return {name: cmap(i % 20) for i, name in enumerate(names)}


def _polygons_of(annotation):
    """The polygons of a COCO annotation as (K, 2) arrays of x, y."""
    seg = annotation.get("segmentation")
    if not isinstance(seg, list):
        return []
    return [np.asarray(p, dtype=float).reshape(-1, 2) for p in seg if len(p) >= 6]


def show_coco_images(coco, images_dir, n=4, seed=0, image_ids=None, cols=4, title=None):
    """Draw `n` images of a COCO dict with their polygons filled and labelled by class."""
    images = coco["images"]
    if image_ids is None:
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(images), size=min(n, len(images)), replace=False)
        chosen = [images[i] for i in sorted(picks)]
    else:
        wanted = set(image_ids)
        chosen = [im for im in images if im["id"] in wanted]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    colours = class_colours([names[k] for k in sorted(names)])
    by_image = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)

    cols = max(1, min(cols, len(chosen)))
    rows = max(1, -(-len(chosen) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, info in zip(axes.flat, chosen):
        ax.imshow(read_image_rgb(Path(images_dir) / info["file_name"]))
        for ann in by_image.get(info["id"], []):
            name = names.get(ann["category_id"], str(ann["category_id"]))
            for poly in _polygons_of(ann):
                ax.add_patch(Polygon(poly, closed=True, facecolor=colours[name], alpha=0.45,
                                     edgecolor=colours[name], linewidth=1.2))
            x, y = ann["bbox"][:2] if ann.get("bbox") else (0, 0)
            ax.text(x, y, name, fontsize=7, color="white",
                    bbox=dict(facecolor=colours[name], alpha=0.8, pad=1, linewidth=0))
        ax.set_title(info["file_name"], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_class_counts(counts, title="Instances per class"):
    """Grouped bars: `counts` maps a series name (e.g. a split) to {class name: count}."""
    series = list(counts)
    classes = []
    for s in series:
        classes += [c for c in counts[s] if c not in classes]
    x = np.arange(len(classes))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(classes)), 4))
    for i, s in enumerate(series):
        ax.bar(x + i * width, [counts[s].get(c, 0) for c in classes], width, label=s)
    ax.set_xticks(x + width * (len(series) - 1) / 2)
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_ylabel("instances")
    ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    return fig


# -- evaluation figures ---------------------------------------------------------------------------
def plot_confusion_matrix(matrix, row_labels, col_labels, title="Confusion matrix"):
    """Counts in the cells; colour is the row's share, so rows of unequal size compare."""
    matrix = np.asarray(matrix)
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix is {matrix.shape} but there are {len(row_labels)} row and "
                         f"{len(col_labels)} column labels")
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)
    fig, ax = plt.subplots(figsize=(1.1 * len(col_labels) + 2.5, 0.9 * len(row_labels) + 1.8))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]}", ha="center", va="center", fontsize=10,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(col_labels)))
    ax.set_xticklabels(col_labels, rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)))
    ax.set_yticklabels(row_labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the row")
    fig.tight_layout()
    return fig


def _kept(result, min_score):
    """The detections of one `model.detect` result scoring at least `min_score`, best first."""
    scores = np.asarray(result["scores"], dtype=float).reshape(-1)
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= min_score]
    return (np.asarray(result["rois"]).reshape(-1, 4)[order], np.asarray(result["masks"])[:, :, order],
            np.asarray(result["class_ids"]).reshape(-1)[order], scores[order])


def _colour_of(class_names, *more_lists):
    """Class name -> colour, as `show_coco_images` colours a COCO file's categories (BG grey).

    Names of `more_lists` (a truth's own class list) that `class_names` lacks get the next
    colours, so one name has one colour in every panel.
    """
    names = [n for n in dict.fromkeys(list(class_names)[1:] + [n for l in more_lists for n in list(l)[1:]])]
    colours = class_colours(names)
    for background in {class_names[0], *(l[0] for l in more_lists)}:
        colours[background] = (0.5, 0.5, 0.5, 1.0)
    return colours


LABEL_FONT = 7          # points: small enough for a dozen labels on a 4-inch panel


def _draw_instances(ax, image, boxes, masks, class_ids, class_names, scores, title, colours=None):
    """Masks blended in and thin boxes on `ax`; returns the (box, caption, colour) labels to place.

    A detection's caption is "class 0.93", a true garment's "class" (scores None).
    """
    colours = colours or _colour_of(class_names)
    canvas = image if image.ndim == 3 else np.stack([image] * 3, axis=-1)
    canvas = canvas[:, :, :3]
    labels = []
    for i, class_id in enumerate(np.asarray(class_ids).reshape(-1)):
        name = class_names[int(class_id)]
        colour = colours.get(name, (0.5, 0.5, 0.5, 1.0))
        canvas = apply_mask(canvas, masks[:, :, i], colour[:3], alpha=0.4)
        y1, x1, y2, x2 = (float(v) for v in boxes[i])
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour,
                               linewidth=1.2))
        labels.append(((y1, x1, y2, x2), name if scores is None else f"{name} {scores[i]:.2f}", colour))
    ax.imshow(canvas)
    height, width = image.shape[:2]
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    return labels


def _place_labels(ax, labels, renderer):
    """One label per box, at its top-left inside the image, none over another.

    A label that would cover one already placed moves down inside its box, then up above it;
    where no free place is left it goes at its box's corner anyway. Sizes are measured by the
    renderer, so the rule holds at the figure's real size (call after the layout is final).
    """
    ax.apply_aspect()           # the box an image's equal aspect gives at drawing time, now
    height = ax.get_ylim()[0] + 0.5
    width = ax.get_xlim()[1] + 0.5
    to_data = ax.transData.inverted()
    pad_points = 0.8                                    # the label's background reaches this far out
    pad_pixels = pad_points * ax.figure.dpi / 72
    placed = []
    for (y1, x1, y2, x2), caption, colour in labels:
        text = ax.text(0, 0, caption, fontsize=LABEL_FONT, color="white", va="top", ha="left", clip_on=True,
                       bbox=dict(facecolor=colour, alpha=0.8, pad=pad_points, linewidth=0))
        inner = text.get_window_extent(renderer).transformed(to_data)
        extent = text.get_window_extent(renderer).padded(pad_pixels).transformed(to_data)
        w, h = abs(extent.width), abs(extent.height)
        pad_x, pad_y = (w - abs(inner.width)) / 2, (h - abs(inner.height)) / 2
        x = min(max(x1, -0.5), max(-0.5, width - 0.5 - w))
        downs = [y1 + k * h for k in range(int(max(0.0, y2 - y1 - h) // max(h, 1e-6)) + 1)]
        ups = [y1 - (k + 1) * h for k in range(int(max(0.0, y1) // max(h, 1e-6)))]
        spots = [y for y in downs + ups if -0.5 <= y <= height - 0.5 - h] or [min(max(y1, -0.5), height - 0.5 - h)]
        free = [y for y in spots if not any(x < px + pw and px < x + w and y < py + ph and py < y + h
                                            for px, py, pw, ph in placed)]
        y = (free or spots)[0]
        text.set_position((x + pad_x, y + pad_y))      # the background's corner at (x, y)
        placed.append((x, y, w, h))


def _count(n, noun):
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _renderer(fig):
    """The figure's renderer, to measure text (Agg's; inline notebooks draw with Agg too)."""
    try:
        return fig.canvas.get_renderer()
    except AttributeError:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        return FigureCanvasAgg(fig).get_renderer()


def _truth_panel(truth, class_names):
    """(boxes, masks, class ids, names) of a truth dict (see `dataset_truths`)."""
    masks = np.asarray(truth["masks"]).astype(bool)
    boxes = truth.get("rois")
    boxes = extract_bboxes(masks) if boxes is None else np.asarray(boxes).reshape(-1, 4)
    return boxes, masks, np.asarray(truth["class_ids"]).reshape(-1), list(truth.get("class_names") or class_names)


def dataset_truths(dataset, image_ids):
    """The true garments of `image_ids` in an `mrcnn.utils.Dataset`, for `show_detections(truths=...)`.

    Each is {"masks", "rois", "class_ids", "class_names", "name"}: the dataset's own class
    names (they need not be the detector's list: classes are matched by name, by colour) and
    the image's file name, which titles its panels.
    """
    truths = []
    for image_id in image_ids:
        masks, class_ids = dataset.load_mask(image_id)
        info = dataset.image_info[image_id]
        name = Path(str(info.get("path") or info.get("file_name") or info.get("id"))).name
        truths.append({"masks": masks, "rois": extract_bboxes(masks), "class_ids": class_ids,
                       "class_names": list(dataset.class_names), "name": name})
    return truths


def show_detections(images, results, class_names, titles=None, cols=None, min_score=0.5, truths=None,
                    truth_name="truth"):
    """Detections on a grid of images: masks, boxes and one "class score" label per box.

    `results` are `model.detect` outputs, one per image; only detections scoring at least
    `min_score` are drawn (the model keeps many weak ones: DETECTION_MIN_CONFIDENCE is low so
    that evaluation sees them), each panel titled with its name and how many are shown.
    With `truths` (one per image, e.g. `dataset_truths(dataset, image_ids)`), each image gets
    two panels, the true garments left and the detections right; titles default to the
    truths' file names. `truth_name` names the left panels ("auto-labels" when the labels
    compared against are machine-made). `cols`: images per row (3 alone, 2 with truths).
    """
    images, results = list(images), list(results)
    if len(images) != len(results) or not images:
        raise ValueError(f"need the same, non-zero number of images and results "
                         f"(got {len(images)} and {len(results)})")
    truths = list(truths) if truths is not None else None
    if truths is not None and len(truths) != len(images):
        raise ValueError(f"{len(images)} images but {len(truths)} truths")
    if titles is None:
        titles = [t.get("name", "") for t in truths] if truths else [f"image {n + 1}" for n in range(len(images))]
    titles = list(titles)
    if len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    per_image = 2 if truths else 1
    cols = max(1, min(cols or (2 if truths else 3), len(images)))
    rows = -(-len(images) // cols)
    height, width = np.asarray(images[0]).shape[:2]
    panel = (min(4.5, max(2.9, 3.6 * width / max(height, 1))), 3.8)     # narrow for portrait photos
    fig, axes = plt.subplots(rows, cols * per_image, figsize=(panel[0] * cols * per_image, panel[1] * rows),
                             squeeze=False)
    axes = list(axes.flat)
    for extra in axes[len(images) * per_image:]:
        fig.delaxes(extra)
    pending = []
    for n, (image, result, title) in enumerate(zip(images, results, titles)):
        image = np.asarray(image)
        boxes, masks, class_ids, scores = _kept(result, min_score)
        shown = f"{_count(len(scores), 'detection')} ≥ {min_score:g}"
        if truths:
            t_boxes, t_masks, t_ids, t_names = _truth_panel(truths[n], class_names)
            colours = _colour_of(class_names, t_names)
            ax = axes[2 * n]
            pending.append((ax, _draw_instances(ax, image, t_boxes, t_masks, t_ids, t_names, None,
                                                f"{title}: {truth_name}, {_count(len(t_ids), 'garment')}",
                                                colours)))
        else:
            colours = _colour_of(class_names)
        ax = axes[per_image * n + per_image - 1]
        pending.append((ax, _draw_instances(ax, image, boxes, masks, class_ids, class_names, scores,
                                            f"{title}: {shown}" if title else shown, colours)))
    fig.tight_layout()
    renderer = _renderer(fig)
    for ax, labels in pending:
        _place_labels(ax, labels, renderer)
    return fig


def show_side_by_side(image, result_a, names_a, result_b, names_b, titles=("model-1", "model-2"),
                      min_score=0.5, image_titles=None):
    """Two models on the same picture(s): one row per image, model A left, model B right.

    Pass one image with one result per model, or lists of images and results. Only detections
    scoring at least `min_score` are drawn, one label per box, none over another.
    """
    if isinstance(image, np.ndarray) and image.ndim == 3:
        images, results_a, results_b = [image], [result_a], [result_b]
    else:
        images, results_a, results_b = list(image), list(result_a), list(result_b)
    if not images or not len(images) == len(results_a) == len(results_b):
        raise ValueError(f"need one result per model for each image: {len(images)} images, "
                         f"{len(results_a)} and {len(results_b)} results")
    image_titles = list(image_titles) if image_titles is not None else [""] * len(images)
    fig, axes = plt.subplots(len(images), 2, figsize=(9, 4.4 * len(images)), squeeze=False)
    pending = []
    for row, (picture, a, b, name) in enumerate(zip(images, results_a, results_b, image_titles)):
        prefix = f"{name}: " if name else ""
        panels = ((axes[row, 0], a, names_a, titles[0]), (axes[row, 1], b, names_b, titles[1]))
        for ax, result, names, model in panels:
            boxes, masks, class_ids, scores = _kept(result, min_score)
            title = f"{prefix}{model} ({_count(len(scores), 'detection')} ≥ {min_score:g})"
            pending.append((ax, _draw_instances(ax, np.asarray(picture), boxes, masks, class_ids, names, scores,
                                                title)))
    fig.tight_layout()
    renderer = _renderer(fig)
    for ax, labels in pending:
        _place_labels(ax, labels, renderer)
    return fig


def plot_per_class_ap(rows, names, title="AP per class", value_label="AP"):
    """Grouped bars: for each row (a class), one bar per series in `names` (row[name] is its AP).

    Takes `helpers.evaluate.compare_per_class` rows; NaN (no ground truth) draws no bar, "n/a".
    """
    rows, names = list(rows), list(names)
    if not rows or not names:
        raise ValueError("plot_per_class_ap: no rows or no series names")
    missing = [name for name in names if any(name not in row for row in rows)]
    if missing:
        raise ValueError(f"plot_per_class_ap: rows lack {', '.join(missing)}")
    x = np.arange(len(rows))
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows) * max(1, len(names) / 2)), 4))
    for i, name in enumerate(names):
        values = np.array([np.nan if row[name] is None else float(row[name]) for row in rows])
        ax.bar(x + i * width, np.nan_to_num(values, nan=0.0), width, label=name)
        for position in x[np.isnan(values)]:
            ax.text(position + i * width, 0.01, "n/a", rotation=90, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x + width * (len(names) - 1) / 2)
    ax.set_xticklabels([row["class"] for row in rows], rotation=45, ha="right")
    ax.set_ylim(0, 1.0)
    ax.set_ylabel(value_label)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
