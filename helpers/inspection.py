"""Looking inside a trained Mask R-CNN, stage by stage (notebook 08), as Matterport's inspect_model.

The notebook walks one image through the network: the anchors of each pyramid level, the RPN's
training targets, its proposals before and after non-maximum suppression, the classifier's box
refinement, the mask head's raw output, the detections against the truth, then activations and
weights. The network's own tensors come from `model.run_graph`; what Matterport's TensorFlow 1
graph exposed inside its proposal layer (the anchors before NMS, the refined and clipped boxes) a
Keras 3 model keeps inside the layer, so `proposal_steps` redoes those steps in numpy, and the
notebook checks that they give the layer's own proposals.

Boxes are [y1, x1, y2, x2]: normalised ([0, 1]) where the network's tensors are, pixels of the
resized image where they are drawn. Printed numbers are rounded to 3 digits.
"""
import math
import re
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from mrcnn import utils, visualize
from mrcnn.data import load_image_gt
from mrcnn.meta import compute_backbone_shapes

HTML_TAG = re.compile(r"<[^>]+>")


# -- printing ------------------------------------------------------------------------------------

def text_table(rows, header):
    """Rows of values as aligned plain text (floats to 3 digits): what a notebook prints, compactly."""
    def cell(value):
        if isinstance(value, (float, np.floating)):
            return "nan" if math.isnan(value) else f"{value:.3f}"
        return str(value)

    cells = [[cell(v) for v in header]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def describe(arrays):
    """One line per array of a run_graph result: name, shape, min and max (3 digits)."""
    rows = [(name, str(tuple(a.shape)), float(a.min()) if a.size else float("nan"),
             float(a.max()) if a.size else float("nan")) for name, a in arrays.items()]
    return text_table(rows, ("output", "shape", "min", "max"))


def layer_outputs(model, names):
    """[(name, tensor)] of keras_model's layers `names`: the `outputs` argument of model.run_graph."""
    return [(name, model.keras_model.get_layer(name).output) for name in names]


# -- 1. anchors ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnchorLevel:
    """The anchors of one pyramid level: where they sit in the joined anchor array, and their size."""

    name: str          # "P2" ... "P6"
    stride: int        # image pixels per feature-map cell
    scale: float       # anchor side in pixels (its area is scale**2 for every ratio)
    shape: tuple       # feature map (rows, columns)
    count: int         # anchors on this level
    start: int         # index of its first anchor in the joined array
    per_cell: int      # anchors centred on each cell (one per ratio), consecutive in the array


def anchor_levels(config, image_shape):
    """The AnchorLevel of each pyramid level for an image of `image_shape`, in anchor order.

    The same layout as mrcnn.data.get_anchors (utils.generate_pyramid_anchors): level by level,
    on every RPN_ANCHOR_STRIDE-th cell, one anchor per ratio in each cell.
    """
    shapes = compute_backbone_shapes(config, image_shape)
    step, per_cell = int(config.RPN_ANCHOR_STRIDE), len(config.RPN_ANCHOR_RATIOS)
    levels, start = [], 0
    for index, (shape, stride, scale) in enumerate(zip(shapes, config.BACKBONE_STRIDES, config.RPN_ANCHOR_SCALES)):
        count = len(range(0, int(shape[0]), step)) * len(range(0, int(shape[1]), step)) * per_cell
        levels.append(AnchorLevel(f"P{index + 2}", int(stride), float(scale), (int(shape[0]), int(shape[1])),
                                  count, start, per_cell))
        start += count
    return levels


def anchor_levels_table(levels):
    """The levels as a printable table."""
    rows = [(lv.name, lv.stride, int(lv.scale), f"{lv.shape[0]} x {lv.shape[1]}", lv.count) for lv in levels]
    rows.append(("all", "", "", "", sum(lv.count for lv in levels)))
    return text_table(rows, ("level", "stride px", "anchor side px", "feature map", "anchors"))


def level_of(anchor_ids, levels):
    """The index of the level each anchor index belongs to."""
    starts = np.array([lv.start for lv in levels])
    return np.searchsorted(starts, np.asarray(anchor_ids), side="right") - 1


def centre_cell_anchors(anchors, level, image_shape):
    """Indices of the anchors of `level` centred on the cell nearest the image centre (one per ratio)."""
    block = np.asarray(anchors[level.start:level.start + level.count])
    centres = np.stack([(block[:, 0] + block[:, 2]) / 2, (block[:, 1] + block[:, 3]) / 2], axis=1)
    distance = np.abs(centres - [image_shape[0] / 2, image_shape[1] / 2]).sum(axis=1)
    first = int(np.argmin(distance)) // level.per_cell * level.per_cell
    return level.start + first + np.arange(level.per_cell)


def plot_anchor_levels(image, anchors, levels, figsize_per_panel=3.2):
    """One panel per level: a dot on every anchor centre, and the anchors of the centre cell drawn."""
    fig, axes = plt.subplots(1, len(levels), figsize=(figsize_per_panel * len(levels), figsize_per_panel + 0.6))
    axes = np.atleast_1d(axes)
    for ax, level in zip(axes, levels):
        ids = centre_cell_anchors(anchors, level, image.shape)
        visualize.draw_boxes(image, boxes=anchors[ids], ax=ax, colors=visualize.random_colors(len(ids), seed=0))
        block = anchors[level.start:level.start + level.count]
        ax.scatter((block[:, 1] + block[:, 3]) / 2, (block[:, 0] + block[:, 2]) / 2, s=2, c="yellow")
        ax.set_title(f"{level.name}: every {level.stride} px, side {int(level.scale)} px\n{level.count} anchors")
    fig.tight_layout()
    return fig


# -- 2. RPN targets -----------------------------------------------------------------------------

def rpn_target_counts(rpn_match, levels):
    """Rows (level, positive, negative, neutral) of build_rpn_targets' labels, plus a total row."""
    rpn_match = np.asarray(rpn_match)
    rows = []
    for level in levels:
        labels = rpn_match[level.start:level.start + level.count]
        rows.append((level.name, int(np.sum(labels == 1)), int(np.sum(labels == -1)), int(np.sum(labels == 0))))
    rows.append(("all", int(np.sum(rpn_match == 1)), int(np.sum(rpn_match == -1)), int(np.sum(rpn_match == 0))))
    return rows


def positive_anchor_targets(anchors, rpn_match, rpn_bbox, config):
    """(indices, anchors, boxes the RPN is taught to move them to) of the positive anchors.

    build_rpn_targets writes one delta row per positive anchor, in anchor order, divided by
    RPN_BBOX_STD_DEV; applying those deltas back gives each positive anchor's ground-truth box.
    """
    ids = np.flatnonzero(np.asarray(rpn_match) == 1)
    deltas = np.asarray(rpn_bbox)[:len(ids)] * np.asarray(config.RPN_BBOX_STD_DEV)
    return ids, np.asarray(anchors)[ids], utils.apply_box_deltas(np.asarray(anchors)[ids], deltas)


def plot_rpn_targets(image, anchors, rpn_match, rpn_bbox, config, negatives=30, seed=0, figsize=(11, 5.5)):
    """Left: positive anchors (dotted) joined to the boxes they must become (solid). Right: a sample of negatives."""
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize)
    ids, positive, targets = positive_anchor_targets(anchors, rpn_match, rpn_bbox, config)
    if len(ids):
        visualize.draw_boxes(image, boxes=positive, refined_boxes=targets, ax=left)
    else:
        left.imshow(image)
        left.axis("off")
    left.set_title(f"{len(ids)} positive anchors -> their targets")
    negative = np.flatnonzero(np.asarray(rpn_match) == -1)
    shown = np.random.default_rng(seed).choice(negative, min(negatives, len(negative)), replace=False)
    visualize.draw_boxes(image, boxes=np.asarray(anchors)[np.sort(shown)], ax=right,
                         colors=["red"] * len(shown))
    right.set_title(f"{len(shown)} of the {len(negative)} negative anchors in the sample")
    fig.tight_layout()
    return fig


# -- 3. proposals ---------------------------------------------------------------------------------

@dataclass
class ProposalSteps:
    """What the proposal layer does to one image's anchors, step by step (normalised boxes).

    order: indices of the PRE_NMS_LIMIT best-scoring anchors, best first; scores: their
    foreground scores; anchors, refined, clipped: those anchors before and after their deltas,
    then clipped to the image; keep: the rows of `clipped` that survive NMS, best first (at most
    the proposal count); proposals: clipped[keep], the layer's output without its zero padding.
    """

    order: np.ndarray
    scores: np.ndarray
    anchors: np.ndarray
    refined: np.ndarray
    clipped: np.ndarray
    keep: np.ndarray
    proposals: np.ndarray


def proposal_steps(rpn_probs, rpn_bbox, anchors, config, proposal_count=None):
    """ProposalLayer's steps in numpy, for one image.

    rpn_probs (A, 2), rpn_bbox (A, 4) as the RPN gives them; anchors (A, 4) normalised
    (model.get_anchors). proposal_count: POST_NMS_ROIS_INFERENCE when None.
    """
    count = int(config.POST_NMS_ROIS_INFERENCE if proposal_count is None else proposal_count)
    scores = np.asarray(rpn_probs, dtype=np.float32)[:, 1]
    order = np.argsort(-scores, kind="stable")[:min(int(config.PRE_NMS_LIMIT), len(scores))]
    deltas = np.asarray(rpn_bbox, dtype=np.float32)[order] * np.asarray(config.RPN_BBOX_STD_DEV, dtype=np.float32)
    chosen = np.asarray(anchors, dtype=np.float32)[order]
    refined = utils.apply_box_deltas(chosen, deltas)
    clipped = np.clip(refined, 0.0, 1.0)
    keep = utils.non_max_suppression(clipped, scores[order], float(config.RPN_NMS_THRESHOLD))[:count]
    return ProposalSteps(order, scores[order], chosen, refined, clipped, keep, clipped[keep])


def real_rows(boxes):
    """The rows of a zero-padded box array that are boxes (not all zero)."""
    boxes = np.asarray(boxes)
    return boxes[np.any(boxes != 0, axis=1)]


def same_boxes(ours, theirs, tolerance=1e-4):
    """True when two box lists have the same length and agree to `tolerance` (padding dropped)."""
    ours, theirs = real_rows(ours), real_rows(theirs)
    return ours.shape == theirs.shape and bool(np.allclose(ours, theirs, atol=tolerance))


def _pixels_of(image):
    """A function turning normalised boxes into pixel boxes of `image`."""
    return lambda boxes: utils.denorm_boxes(boxes, image.shape[:2])


def plot_proposal_steps(image, steps, show=20, figsize=(16, 5.5)):
    """Three panels: the best anchors, moved by their deltas and clipped, and the proposals after NMS."""
    fig, axes = plt.subplots(1, 3, figsize=figsize)
    top = min(show, len(steps.order))
    pixels = _pixels_of(image)
    visualize.draw_boxes(image, boxes=pixels(steps.anchors[:top]), ax=axes[0])
    axes[0].set_title(f"the {top} best-scoring anchors (of {len(steps.order)} kept before NMS)")
    visualize.draw_boxes(image, boxes=pixels(steps.anchors[:top]), refined_boxes=pixels(steps.clipped[:top]),
                         ax=axes[1])
    axes[1].set_title("moved by their predicted deltas, clipped")
    shown = min(show, len(steps.keep))
    visualize.draw_boxes(image, refined_boxes=pixels(steps.proposals[:shown]), ax=axes[2])
    axes[2].set_title(f"the best {shown} of {len(steps.keep)} proposals after NMS")
    fig.tight_layout()
    return fig


# -- 4. box refinement --------------------------------------------------------------------------

def refine_boxes(rois, deltas, class_ids, config, window=(0.0, 0.0, 1.0, 1.0)):
    """Each ROI moved by the deltas predicted for its class (times BBOX_STD_DEV), clipped to `window`.

    rois (N, 4) normalised; deltas (N, NUM_CLASSES, 4) as mrcnn_bbox gives them; class_ids (N,).
    The detection layer does exactly this before its per-class NMS.
    """
    window = [float(v) for v in window]
    rows = np.arange(len(class_ids))
    chosen = np.asarray(deltas, dtype=np.float32)[rows, np.asarray(class_ids)]
    moved = utils.apply_box_deltas(rois, chosen * np.asarray(config.BBOX_STD_DEV, dtype=np.float32))
    low, high = np.asarray(window[:2] * 2, dtype=np.float32), np.asarray(window[2:] * 2, dtype=np.float32)
    return np.clip(moved, low, high)


@dataclass
class RoiClasses:
    """Each real proposal's most likely garment, its score and refined box, best score first.

    index: rows of the ROI array; class_ids, scores; rois, refined: normalised boxes;
    background: how many of these ROIs the classifier finds more likely background than any garment.
    """

    index: np.ndarray
    class_ids: np.ndarray
    scores: np.ndarray
    rois: np.ndarray
    refined: np.ndarray
    background: int


def classify_rois(rois, probs, deltas, config, window=(0.0, 0.0, 1.0, 1.0)):
    """The classifier head's view of one image's proposals (rois (N, 4), probs (N, C), deltas (N, C, 4))."""
    rois, probs = np.asarray(rois), np.asarray(probs)
    index = np.flatnonzero(np.any(rois != 0, axis=1))
    class_ids = 1 + np.argmax(probs[index, 1:], axis=1)
    scores = probs[index, class_ids]
    order = np.argsort(-scores, kind="stable")
    index, class_ids, scores = index[order], class_ids[order], scores[order]
    refined = refine_boxes(rois[index], np.asarray(deltas)[index], class_ids, config, window)
    background = int(np.sum(np.argmax(probs[index], axis=1) == 0))
    return RoiClasses(index, class_ids, scores, rois[index], refined, background)


def plot_refinement(image, rois, class_names, show=8, cols=4, panel_size=3.2):
    """One panel per proposal, best garment score first (at most `show`, and 12 to stay readable):
    the proposal dotted, the box the classifier refines it to solid, captioned with garment and score."""
    count = min(show, len(rois.index), 12)
    pixels = _pixels_of(image)
    cols = max(1, min(cols, count))
    rows = max(1, math.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size * cols, panel_size * rows), squeeze=False)
    for ax in axes.ravel()[count:]:
        ax.axis("off")
    for rank, ax in enumerate(axes.ravel()[:count]):
        visualize.draw_boxes(image, boxes=pixels(rois.rois[rank:rank + 1]), refined_boxes=pixels(rois.refined[rank:rank + 1]),
                             ax=ax, colors=["red"])
        ax.set_title(f"#{rank + 1} {class_names[rois.class_ids[rank]]} {rois.scores[rank]:.3f}")
    fig.tight_layout()
    return fig


# -- 5. the mask head ---------------------------------------------------------------------------

def detection_mask_panels(detections, masks, class_names, limit=4, min_score=0.0):
    """(images, titles): the mask head's raw output for the best `limit` detections, in its own class.

    detections (K, 6) [y1, x1, y2, x2, class_id, score], best first, zero rows as padding;
    masks (K, h, w, NUM_CLASSES): one soft mask per detection and class (MASK_SHAPE).
    """
    detections, masks = np.asarray(detections), np.asarray(masks)
    rows = np.flatnonzero((detections[:, 4] > 0) & (detections[:, 5] >= min_score))[:limit]
    images = [masks[i, :, :, int(detections[i, 4])] for i in rows]
    titles = [f"{class_names[int(detections[i, 4])]} {detections[i, 5]:.3f}" for i in rows]
    return images, titles


# -- 6. detections against the truth ----------------------------------------------------------------

def load_resized(dataset, config, image_id):
    """Matterport's load_image_gt with full-size masks: (image, meta, class_ids, boxes, masks), resized.

    The image is already at the network's size, so detect() and run_graph() see it unchanged
    and every box below is in its pixels.
    """
    return load_image_gt(dataset, config, image_id, use_mini_mask=False)


def above(result, min_score):
    """A detect() result with only the detections scoring at least `min_score`."""
    keep = np.asarray(result["scores"]) >= min_score
    return {"rois": result["rois"][keep], "class_ids": result["class_ids"][keep],
            "scores": result["scores"][keep], "masks": result["masks"][..., keep]}


def match_records(gt_boxes, gt_class_ids, gt_masks, result, class_id, iou_threshold=0.5):
    """(scores, hits, garments) of one image for one class: each detection's score and whether it
    matches a garment of that class (utils.compute_matches, by mask IoU), and how many there are."""
    gt = np.asarray(gt_class_ids) == class_id
    pred = (np.asarray(result["class_ids"]) == class_id) & np.any(np.asarray(result["rois"]) != 0, axis=1)
    scores = np.asarray(result["scores"], dtype=np.float64)[pred]
    _, pred_match, _ = utils.compute_matches(
        np.asarray(gt_boxes)[gt], np.asarray(gt_class_ids)[gt], np.asarray(gt_masks)[..., gt],
        np.asarray(result["rois"])[pred], np.asarray(result["class_ids"])[pred], scores,
        np.asarray(result["masks"])[..., pred], iou_threshold)
    return np.sort(scores, kind="stable")[::-1], pred_match > -1, int(gt.sum())


def pooled_precision_recall(scores, hits, garments):
    """(AP, precisions, recalls) of detections pooled over images, in utils.compute_ap's form.

    Detections are ranked by score over all images; precision is made non-increasing in recall
    and the area under it is the AP (VOC style, all points). nan when there is no garment.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    found = np.cumsum(np.asarray(hits, dtype=bool)[order])
    precisions = np.concatenate([[0.0], found / np.arange(1, len(found) + 1), [0.0]])
    recalls = np.concatenate([[0.0], found / max(garments, 1), [1.0]])
    if garments == 0:
        return float("nan"), precisions, recalls
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    steps = np.flatnonzero(recalls[1:] != recalls[:-1]) + 1
    return float(np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps])), precisions, recalls


@dataclass
class ClassCurve:
    """One class's pooled precision-recall curve over the evaluated images."""

    class_id: int
    ap: float
    precisions: np.ndarray
    recalls: np.ndarray
    garments: int
    detections: int


def class_precision_recall(model, dataset, image_ids, iou_threshold=0.5, progress=True):
    """A ClassCurve per class of the model (background excepted), from detect() on `image_ids`.

    Every detection the model keeps counts (down to its DETECTION_MIN_CONFIDENCE): AP ranks them.
    """
    from tqdm.auto import tqdm

    classes = range(1, int(model.config.NUM_CLASSES))
    pooled = {c: ([], [], 0) for c in classes}
    for image_id in tqdm(list(image_ids), desc="detect", disable=not progress, leave=False):
        image, _, gt_class_ids, gt_boxes, gt_masks = load_resized(dataset, model.config, image_id)
        result = model.detect([image])[0]
        for c in classes:
            scores, hits, garments = match_records(gt_boxes, gt_class_ids, gt_masks, result, c, iou_threshold)
            all_scores, all_hits, total = pooled[c]
            pooled[c] = (all_scores + list(scores), all_hits + list(hits), total + garments)
    curves = []
    for c, (scores, hits, garments) in pooled.items():
        ap, precisions, recalls = pooled_precision_recall(scores, hits, garments)
        curves.append(ClassCurve(c, ap, precisions, recalls, garments, len(scores)))
    return curves


def curves_table(curves, class_names):
    """Per class: garments, detections and AP50, then the mean over classes that have garments."""
    rows = [(class_names[c.class_id], c.garments, c.detections, c.ap) for c in curves]
    scored = [c.ap for c in curves if not math.isnan(c.ap)]
    rows.append(("mean", "", "", float(np.mean(scored)) if scored else float("nan")))
    return text_table(rows, ("class", "garments", "detections", "AP50"))


def plot_class_curves(curves, class_names, cols=3):
    """visualize.plot_precision_recall for every class with garments, one panel each."""
    shown = [c for c in curves if c.garments > 0]
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    for ax, curve in zip(axes.ravel(), shown):
        visualize.plot_precision_recall(curve.ap, curve.precisions, curve.recalls, ax=ax)
        ax.set_title(f"{class_names[curve.class_id]}: AP50 {curve.ap:.3f} ({curve.garments} garments)")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
    fig.tight_layout()
    return fig


# -- 7. activations and weights -------------------------------------------------------------------

def backbone_stage_outputs(model):
    """The name of each ResNet stage's last block output (res2?_out ... res5?_out), in order.

    With a backbone of your own (no such names) the FPN's levels fpn_p2 ... fpn_p5 instead.
    """
    last = {}
    for layer in model.keras_model.layers:
        found = re.fullmatch(r"res(\d)[a-z]+_out", layer.name)
        if found:
            last[found.group(1)] = layer.name
    return [last[s] for s in sorted(last)] or [f"fpn_p{i}" for i in range(2, 6)]


def activation_panels(activations, channels=4):
    """(images, titles): per layer, its `channels` most active channels (highest mean) for image 0."""
    images, titles = [], []
    for name, value in activations.items():
        maps = np.asarray(value)[0]
        for channel in np.argsort(-maps.mean(axis=(0, 1)), kind="stable")[:channels]:
            images.append(maps[:, :, channel])
            titles.append(f"{name} #{channel} ({maps.shape[0]}x{maps.shape[1]})")
    return images, titles


KEY_LAYERS = ("conv1", "fpn_p2", "rpn_conv_shared", "mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask")


def key_layers(model):
    """A handful of layers worth a look, one per part: first conv, last backbone conv, FPN, RPN, heads."""
    names = [w.path.split("/")[-2] for layer in model.get_trainable_layers() for w in layer.weights]
    backbone = [n for n in names if re.fullmatch(r"res\d[a-z]+_branch2[a-c]", n)]
    wanted = [KEY_LAYERS[0]] + backbone[-1:] + list(KEY_LAYERS[1:])
    return [n for n in wanted if n in names]


def weight_stats(model, layers):
    """(summary line, rows) of visualize.weight_stats_table: rows only for `layers`, to 3 digits.

    The whole table has a row per weight array (hundreds for ResNet-101); the summary counts them
    and the ones it flags (all values equal: "dead?", beyond +-1000: "Overflow?").
    """
    table = visualize.weight_stats_table(model)[1:]
    rows, flagged = [], []
    for name, shape, low, high, std in table:
        plain = HTML_TAG.sub("", name)
        path, _, note = plain.partition("***")
        note = note.replace("***", "").strip()
        if note:
            flagged.append(f"{path} ({note})")
        if path.split("/")[-2] in layers:
            rows.append([path, shape] + [float(v) + 0.0 for v in (low, high, std)] + [note])   # + 0.0: no "-0"
    summary = f"{len(table)} weight arrays; {len(flagged)} flagged" + (f": {', '.join(flagged[:5])}" if flagged else "")
    return summary, rows


def weight_stats_text(rows):
    """weight_stats' rows as a table (3 significant digits: small standard deviations stay visible)."""
    def short(value):
        return f"{value:.3g}" if isinstance(value, float) else value

    return text_table([[short(v) for v in row] for row in rows], ("weight", "shape", "min", "max", "std", "note"))


def plot_weight_histograms(model, layers, bins=50):
    """A histogram of the kernel of each of `layers` (the values the layer multiplies its input by)."""
    kernels = {w.path.split("/")[-2]: np.asarray(w.numpy()) for layer in model.get_trainable_layers()
               for w in layer.weights if w.path.endswith("kernel")}
    shown = [n for n in layers if n in kernels]
    cols = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), shown):
        values = kernels[name].ravel()
        ax.hist(values, bins=bins)
        ax.set_title(f"{name} kernel\nstd {values.std():.3g}, {values.size} values")
    fig.tight_layout()
    return fig
