"""The figures notebooks show: annotated images and class counts.

Every function returns its matplotlib Figure (a notebook shows it; `fig.savefig(...)` keeps it).
"""
import numpy as np
import matplotlib.pyplot as plt
from matplotlib.patches import Polygon

from mrcnn.utils import read_image_rgb


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
