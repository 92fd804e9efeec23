"""helpers.inspection: notebook 08's look inside Mask R-CNN, checked against independent oracles.

Anchor counts against the feature-map formula, RPN labels against brute-force IoU, the numpy
replay of the proposal layer against the layer itself, box refinement against the detection
layer, pooled precision-recall against utils.compute_ap.
"""
import math
import types

import keras
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from helpers import inspection  # noqa: E402
from mrcnn import utils  # noqa: E402
from mrcnn.compat import DetectionLayer, ProposalLayer  # noqa: E402  (Matterport's signatures)
from mrcnn.config import Config  # noqa: E402
from mrcnn.data import build_rpn_targets, get_anchors  # noqa: E402
from mrcnn.meta import compose_image_meta  # noqa: E402


class SmallConfig(Config):
    NAME = "inspect"
    NUM_CLASSES = 4
    GPU_COUNT = 1
    IMAGES_PER_GPU = 1
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    PRE_NMS_LIMIT = 500
    POST_NMS_ROIS_INFERENCE = 60
    DETECTION_MAX_INSTANCES = 30


def brute_iou(a, b):
    """IoU of two [y1, x1, y2, x2] boxes, written out."""
    h = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    w = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = h * w
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# -- anchors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, stride", [((128, 128, 3), 1), ((96, 160, 3), 1), ((128, 192, 3), 2)])
def test_anchor_levels_count_by_the_formula_and_tile_the_anchor_array(shape, stride):
    config = SmallConfig()
    config.RPN_ANCHOR_STRIDE = stride
    levels = inspection.anchor_levels(config, shape)
    anchors = get_anchors(config, shape)
    ratios = len(config.RPN_ANCHOR_RATIOS)
    for level, s, scale in zip(levels, config.BACKBONE_STRIDES, config.RPN_ANCHOR_SCALES):
        cells = math.ceil(math.ceil(shape[0] / s) / stride) * math.ceil(math.ceil(shape[1] / s) / stride)
        assert level.count == cells * ratios
        block = anchors[level.start:level.start + level.count]
        sides = np.sqrt((block[:, 2] - block[:, 0]) * (block[:, 3] - block[:, 1]))
        assert np.allclose(sides, scale)            # the slice is this level's anchors, and only them
    assert sum(lv.count for lv in levels) == len(anchors)
    assert [lv.name for lv in levels] == ["P2", "P3", "P4", "P5", "P6"]
    table = inspection.anchor_levels_table(levels)
    assert str(len(anchors)) in table.splitlines()[-1]


def test_level_of_and_centre_cell_anchors():
    config, shape = SmallConfig(), (128, 128, 3)
    levels = inspection.anchor_levels(config, shape)
    anchors = get_anchors(config, shape)
    ids = np.array([0, levels[1].start - 1, levels[1].start, len(anchors) - 1])
    assert list(inspection.level_of(ids, levels)) == [0, 0, 1, 4]
    for level in levels:
        ids = inspection.centre_cell_anchors(anchors, level, shape)
        assert len(ids) == len(config.RPN_ANCHOR_RATIOS)
        centres = [((a[0] + a[2]) / 2, (a[1] + a[3]) / 2) for a in anchors[level.start:level.start + level.count]]
        best = min(abs(cy - 64) + abs(cx - 64) for cy, cx in centres)
        for i in ids:
            a = anchors[i]
            assert abs((a[0] + a[2]) / 2 - 64) + abs((a[1] + a[3]) / 2 - 64) == pytest.approx(best)
    fig = inspection.plot_anchor_levels(np.zeros(shape, np.uint8), anchors, levels)
    assert len(fig.axes) == 5


# -- RPN targets --------------------------------------------------------------------------------

def test_rpn_targets_agree_with_brute_force_iou_and_deltas_lead_to_the_truth():
    config, shape = SmallConfig(), (128, 128, 3)
    anchors = get_anchors(config, shape)
    levels = inspection.anchor_levels(config, shape)
    gt_boxes = np.array([[10, 12, 70, 50], [40, 60, 120, 124], [90, 5, 110, 30]])
    match, rpn_bbox = build_rpn_targets(shape, anchors, np.array([1, 2, 3]), gt_boxes, config,
                                        rng=np.random.default_rng(0))
    iou = np.array([[brute_iou(a, g) for g in gt_boxes] for a in anchors])
    best_of_gt = {int(i) for g in range(len(gt_boxes)) for i in np.flatnonzero(iou[:, g] == iou[:, g].max())}
    positives = np.flatnonzero(match == 1)
    assert len(positives) > 0
    for i in positives:
        assert iou[i].max() >= 0.7 or int(i) in best_of_gt
    assert np.all(iou[match == -1].max(axis=1) < 0.3)

    rows = inspection.rpn_target_counts(match, levels)
    assert rows[-1] == ("all", len(positives), int(np.sum(match == -1)), int(np.sum(match == 0)))
    assert [sum(r[k] for r in rows[:-1]) for k in (1, 2, 3)] == list(rows[-1][1:])
    assert sum(rows[-1][1:]) == len(anchors)

    ids, chosen, targets = inspection.positive_anchor_targets(anchors, match, rpn_bbox, config)
    assert list(ids) == list(positives) and np.array_equal(chosen, anchors[positives])
    for i, target in zip(ids, targets):
        assert np.allclose(target, gt_boxes[np.argmax(iou[i])], atol=1e-3)
    fig = inspection.plot_rpn_targets(np.zeros(shape, np.uint8), anchors, match, rpn_bbox, config, negatives=5)
    assert "positive" in fig.axes[0].get_title()


# -- proposals ------------------------------------------------------------------------------------

def test_proposal_steps_replay_the_proposal_layer():
    config, shape = SmallConfig(), (128, 128, 3)
    anchors = utils.norm_boxes(get_anchors(config, shape), shape[:2])
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(len(anchors), 2)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    deltas = (rng.normal(size=(len(anchors), 4)) * 0.5).astype(np.float32)
    layer = ProposalLayer(config.POST_NMS_ROIS_INFERENCE, config.RPN_NMS_THRESHOLD, config)
    theirs = np.asarray(layer([probs[None], deltas[None], anchors[None]]))[0]

    steps = inspection.proposal_steps(probs, deltas, anchors, config)
    assert len(steps.order) == config.PRE_NMS_LIMIT
    assert np.all(np.diff(steps.scores) <= 0)
    assert np.all((steps.clipped >= 0) & (steps.clipped <= 1))
    assert np.any(steps.refined != steps.clipped)          # some boxes did leave the image
    assert inspection.same_boxes(steps.proposals, theirs)
    kept = steps.proposals
    for i in range(len(kept)):
        for j in range(i):
            assert brute_iou(kept[i], kept[j]) <= config.RPN_NMS_THRESHOLD + 1e-6
    assert not inspection.same_boxes(steps.proposals[1:], theirs)
    fig = inspection.plot_proposal_steps(np.zeros(shape, np.uint8), steps, show=5)
    assert len(fig.axes) == 3


def test_refined_boxes_are_the_detection_layers_boxes():
    config = SmallConfig()
    rng = np.random.default_rng(5)
    count, classes = 40, config.NUM_CLASSES
    corner = rng.uniform(0, 0.7, size=(count, 2))
    rois = np.concatenate([corner, corner + rng.uniform(0.05, 0.3, size=(count, 2))], axis=1).astype(np.float32)
    rois[-3:] = 0                                        # padding rows
    logits = rng.normal(size=(count, classes)) * 2
    probs = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    deltas = rng.normal(size=(count, classes, 4)).astype(np.float32)
    window = (8, 0, 120, 128)                            # a letterboxed picture inside 128 x 128
    meta = compose_image_meta(0, (112, 128, 3), (128, 128, 3), window, 1.0, np.ones(classes))
    layer = DetectionLayer(config, min_confidence=0.0)
    detections = np.asarray(layer([rois[None], probs[None], deltas[None], meta[None]]))[0]
    norm_window = utils.norm_boxes(np.array([window]), (128, 128))[0]
    rows = detections[detections[:, 4] > 0]
    assert len(rows) > 5
    for row in rows:
        roi, class_id = np.argwhere(np.isclose(probs, row[5], rtol=0, atol=1e-7))[0]
        assert class_id == int(row[4])
        ours = inspection.refine_boxes(rois[roi:roi + 1], deltas[roi:roi + 1], [class_id], config, norm_window)[0]
        assert np.allclose(ours, row[:4], atol=1e-5)

    found = inspection.classify_rois(rois, probs, deltas, config, norm_window)
    assert len(found.index) == count - 3 and np.all(np.diff(found.scores) <= 0)
    for i, c, s in zip(found.index, found.class_ids, found.scores):
        assert c == 1 + np.argmax(probs[i, 1:]) and s == probs[i, c]
    assert found.background == int(np.sum(np.argmax(probs[:count - 3], axis=1) == 0))
    names = ["BG", "a", "b", "c"]
    fig = inspection.plot_refinement(np.zeros((128, 128, 3), np.uint8), found, names, show=5)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == [f"#{k + 1} {names[found.class_ids[k]]} {found.scores[k]:.3f}" for k in range(5)]
    fig = inspection.plot_refinement(np.zeros((128, 128, 3), np.uint8), found, names, show=100)
    assert sum(1 for ax in fig.axes if ax.get_title()) == 12


# -- masks and detections ------------------------------------------------------------------------

def test_detection_mask_panels_take_each_detections_own_class():
    detections = np.array([[0, 0, 1, 1, 2, 0.9], [0, 0, 1, 1, 1, 0.6], [0, 0, 1, 1, 3, 0.3], [0, 0, 0, 0, 0, 0]])
    masks = np.zeros((4, 14, 14, 4))
    for c in range(4):
        masks[:, :, :, c] = c / 10
    images, titles = inspection.detection_mask_panels(detections, masks, ["BG", "a", "b", "c"], limit=4, min_score=0.5)
    assert [float(m[0, 0]) for m in images] == [0.2, 0.1]
    assert titles == ["b 0.900", "a 0.600"]


def box_mask(box, shape=(64, 64)):
    mask = np.zeros(shape, bool)
    mask[box[0]:box[2], box[1]:box[3]] = True
    return mask


def one_image():
    gt_boxes = np.array([[5, 5, 30, 30], [35, 35, 60, 60], [5, 35, 30, 60], [40, 5, 60, 25]])
    gt_ids = np.array([1, 1, 2, 1])
    pred_boxes = np.array([[6, 6, 30, 30], [0, 0, 10, 10], [35, 36, 60, 60], [5, 35, 30, 60], [41, 5, 60, 25],
                           [20, 20, 40, 40]])
    result = {"rois": pred_boxes, "class_ids": np.array([1, 1, 1, 2, 1, 1]),
              "scores": np.array([0.9, 0.95, 0.4, 0.8, 0.3, 0.35]),
              "masks": np.stack([box_mask(b) for b in pred_boxes], axis=-1)}
    gt_masks = np.stack([box_mask(b) for b in gt_boxes], axis=-1)
    return gt_boxes, gt_ids, gt_masks, result


def test_pooled_curve_of_one_image_is_compute_ap():
    gt_boxes, gt_ids, gt_masks, result = one_image()
    for class_id in (1, 2):
        scores, hits, garments = inspection.match_records(gt_boxes, gt_ids, gt_masks, result, class_id)
        ap, precisions, recalls = inspection.pooled_precision_recall(scores, hits, garments)
        g, p = gt_ids == class_id, result["class_ids"] == class_id
        ref = utils.compute_ap(gt_boxes[g], gt_ids[g], gt_masks[..., g], result["rois"][p], result["class_ids"][p],
                               result["scores"][p], result["masks"][..., p])
        assert ap == pytest.approx(ref[0]) and np.allclose(precisions, ref[1]) and np.allclose(recalls, ref[2])
    assert garments == 1 and 0 < ap


def test_pooled_precision_recall_by_hand():
    ap, precisions, recalls = inspection.pooled_precision_recall([0.5, 0.9, 0.7], [True, True, False], 2)
    # ranked: 0.9 hit, 0.7 miss, 0.5 hit -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    assert np.allclose(recalls, [0, 0.5, 0.5, 1, 1])
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert math.isnan(inspection.pooled_precision_recall([0.9], [False], 0)[0])
    assert inspection.pooled_precision_recall([], [], 3)[0] == 0.0


def test_above_keeps_the_confident_detections():
    _, _, _, result = one_image()
    kept = inspection.above(result, 0.5)
    assert list(kept["scores"]) == [0.9, 0.95, 0.8] and kept["masks"].shape[-1] == 3 and len(kept["rois"]) == 3


def test_curves_table_and_plot():
    curves = [inspection.ClassCurve(1, 0.25, np.array([0, 1, 0.0]), np.array([0, 0.5, 1]), 4, 7),
              inspection.ClassCurve(2, float("nan"), np.array([0, 0.0]), np.array([0, 1.0]), 0, 2)]
    table = inspection.curves_table(curves, ["BG", "top", "skirt"])
    assert "0.250" in table and "nan" in table and table.splitlines()[-1].split()[-1] == "0.250"
    fig = inspection.plot_class_curves(curves, ["BG", "top", "skirt"])
    assert "top: AP50 0.250" in fig.axes[0].get_title()


# -- activations and weights ---------------------------------------------------------------------

def fake_model(layer_names=(), trainable=()):
    keras_model = types.SimpleNamespace(layers=[types.SimpleNamespace(name=n) for n in layer_names])
    return types.SimpleNamespace(keras_model=keras_model, get_trainable_layers=lambda: list(trainable))


def test_backbone_stage_outputs_are_each_stages_last_block():
    names = ["conv1", "res2a_out", "res2b_out", "res3a_out", "res3d_out", "res4a_out", "res5c_out", "fpn_p2"]
    assert inspection.backbone_stage_outputs(fake_model(names)) == ["res2b_out", "res3d_out", "res4a_out", "res5c_out"]
    assert inspection.backbone_stage_outputs(fake_model(["conv1"])) == ["fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5"]


def test_activation_panels_show_the_most_active_channels():
    maps = np.zeros((1, 4, 4, 5))
    maps[..., 3], maps[..., 1] = 2.0, 1.0
    images, titles = inspection.activation_panels({"res2b_out": maps}, channels=2)
    assert [float(m.mean()) for m in images] == [2.0, 1.0] and titles[0].startswith("res2b_out #3")


def built(layer, shape):
    layer.build(shape)
    return layer


def test_weight_stats_pick_layers_and_flag_constant_weights():
    layers = [built(keras.layers.Conv2D(4, 3, name="conv1"), (None, 8, 8, 3)),
              built(keras.layers.Conv2D(4, 3, name="res5b_branch2b"), (None, 8, 8, 4)),
              built(keras.layers.Dense(3, name="mrcnn_class_logits", kernel_initializer="zeros"), (None, 4)),
              built(keras.layers.Dense(3, name="unrelated"), (None, 4))]
    layers[0].bias.assign(np.full(4, -1e-7))             # "-0.0000" in weight_stats_table: shown as 0
    model = fake_model(trainable=layers)
    chosen = inspection.key_layers(model)
    assert chosen == ["conv1", "res5b_branch2b", "mrcnn_class_logits"]
    summary, rows = inspection.weight_stats(model, chosen)
    # all-equal arrays: the zero kernel, and the Dense biases (only conv biases, which start at 0, are excused)
    assert summary.startswith("8 weight arrays; 3 flagged")
    assert "mrcnn_class_logits/kernel (dead?)" in summary and "unrelated/bias (dead?)" in summary
    assert "conv1/bias" not in summary
    assert [r[0] for r in rows] == ["conv1/kernel", "conv1/bias", "res5b_branch2b/kernel", "res5b_branch2b/bias",
                                    "mrcnn_class_logits/kernel", "mrcnn_class_logits/bias"]
    kernel = layers[0].kernel.numpy()
    assert rows[0][2] == pytest.approx(kernel.min(), abs=1e-4) and rows[0][4] == pytest.approx(kernel.std(), abs=1e-4)
    text = inspection.weight_stats_text(rows)
    assert "dead?" in text and "<span" not in text
    assert text.splitlines()[2].split()[2:5] == ["0", "0", "0"]      # conv1/bias: min, max, std
    fig = inspection.plot_weight_histograms(model, chosen)
    assert sum(1 for ax in fig.axes if ax.get_title()) == 3


def test_text_tables_round_to_three_digits():
    text = inspection.describe({"rpn_class": np.array([[0.123456, 0.9]])})
    assert "0.123" in text and "0.1234" not in text and "(1, 2)" in text
