"""The figures notebooks show: annotated images, class counts, detections and evaluation.

Every function returns its matplotlib Figure (a notebook shows it; `fig.savefig(...)` keeps it).
"""
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.patches import Polygon

from mrcnn.utils import read_image_rgb
from mrcnn.visualize import display_instances


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
    from pathlib import Path
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
    """The detections of one `model.detect` result scoring at least `min_score`."""
    scores = np.asarray(result["scores"]).reshape(-1)
    keep = scores >= min_score
    return (np.asarray(result["rois"]).reshape(-1, 4)[keep], np.asarray(result["masks"])[:, :, keep],
            np.asarray(result["class_ids"]).reshape(-1)[keep], scores[keep])


def _draw_result(ax, image, result, class_names, title, min_score):
    """One image's detections on `ax`, coloured by class (the same class, the same colour).

    Colours come from `class_colours` over the classes without BG, as `show_coco_images`
    colours a COCO file's categories, so a class looks the same in both figures.
    """
    boxes, masks, class_ids, scores = _kept(result, min_score)
    colours = class_colours(list(class_names)[1:])
    colours[class_names[0]] = (0.5, 0.5, 0.5, 1.0)
    display_instances(image, boxes, masks, class_ids, class_names, scores, title=title, ax=ax,
                      colors=[colours[class_names[int(c)]] for c in class_ids])
    ax.title.set_fontsize(9)


def show_detections(images, results, class_names, titles=None, cols=3, min_score=0.0):
    """A grid of images with their detections: masks, boxes and "class score" captions.

    `results` are `model.detect` outputs, one per image; detections scoring below
    `min_score` are left out. One axes per image.
    """
    images, results = list(images), list(results)
    if len(images) != len(results) or not images:
        raise ValueError(f"need the same, non-zero number of images and results "
                         f"(got {len(images)} and {len(results)})")
    titles = list(titles) if titles is not None else [""] * len(images)
    if len(titles) != len(images):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    cols = max(1, min(cols, len(images)))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 4.2 * rows), squeeze=False)
    for extra in axes.flat[len(images):]:
        fig.delaxes(extra)
    for ax, image, result, title in zip(axes.flat, images, results, titles):
        _draw_result(ax, image, result, class_names, title, min_score)
    fig.tight_layout()
    return fig


def show_side_by_side(image, result_a, names_a, result_b, names_b, titles=("model-1", "model-2"),
                      min_score=0.0, image_titles=None):
    """Two models on the same picture(s): one row per image, model A left, model B right.

    Pass one image with one result per model, or lists of images and results.
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
    for row, (picture, a, b, name) in enumerate(zip(images, results_a, results_b, image_titles)):
        prefix = f"{name}: " if name else ""
        panels = ((axes[row, 0], a, names_a, titles[0]), (axes[row, 1], b, names_b, titles[1]))
        for ax, result, names, model in panels:
            count = int(np.sum(np.asarray(result["scores"]) >= min_score))
            _draw_result(ax, picture, result, names, f"{prefix}{model} ({count} detections)", min_score)
    fig.tight_layout()
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
