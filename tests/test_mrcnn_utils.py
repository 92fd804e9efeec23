"""Tests for the numpy geometry in mrcnn.utils, against independent oracles.

IoU checks use pycocotools (boxes as [x, y, w, h], masks as RLE); NMS is compared with a
brute-force reference; conversions are checked by round trips.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from pycocotools import mask as coco_mask

from mrcnn import utils

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


# -- helpers ------------------------------------------------------------------------------

def random_boxes(rng, count, size=200):
    """Random boxes [y1, x1, y2, x2] with positive sides, float coordinates."""
    y1 = rng.uniform(0, size, count)
    x1 = rng.uniform(0, size, count)
    return np.stack([y1, x1, y1 + rng.uniform(1, size / 2, count), x1 + rng.uniform(1, size / 2, count)], axis=1)


def to_xywh(boxes):
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.stack([boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]], axis=1)


def coco_box_iou(boxes1, boxes2):
    return np.asarray(coco_mask.iou(to_xywh(boxes1), to_xywh(boxes2), [0] * len(boxes2)))


def ellipse_mask(shape, centre, axes, angle=0):
    canvas = np.zeros(shape, dtype=np.uint8)
    cv2.ellipse(canvas, centre, axes, angle, 0, 360, 1, thickness=-1)
    return canvas.astype(bool)


def mask_iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


def smooth_image(height, width, channels=3):
    """A smooth uint8 picture, so that interpolation errors stay small."""
    y, x = np.mgrid[0:height, 0:width]
    planes = [127 + 100 * np.sin(y / 23.0 + c) * np.cos(x / 31.0 - c) for c in range(channels)]
    return np.clip(np.stack(planes, axis=-1), 0, 255).astype(np.uint8)


# -- boxes and IoU ------------------------------------------------------------------------

def test_extract_bboxes_matches_np_where():
    rng = np.random.default_rng(0)
    masks = np.zeros((40, 50, 6), dtype=bool)
    for i in range(5):
        y, x = rng.integers(0, 40, 3), rng.integers(0, 50, 3)
        masks[y, x, i] = True
    masks[:, :, 4] = ellipse_mask((40, 50), (20, 15), (9, 4), 30)
    boxes = utils.extract_bboxes(masks)
    assert boxes.dtype == np.int32 and boxes.shape == (6, 4)
    for i in range(5):
        rows, cols = np.where(masks[:, :, i])
        assert boxes[i].tolist() == [rows.min(), cols.min(), rows.max() + 1, cols.max() + 1]
    assert boxes[5].tolist() == [0, 0, 0, 0]       # empty mask
    assert utils.extract_bboxes(np.zeros((5, 5, 0), bool)).shape == (0, 4)


def test_compute_iou_and_overlaps_match_pycocotools():
    rng = np.random.default_rng(1)
    for _ in range(20):
        boxes1, boxes2 = random_boxes(rng, 7), random_boxes(rng, 9)
        expected = coco_box_iou(boxes1, boxes2)
        np.testing.assert_allclose(utils.compute_overlaps(boxes1, boxes2), expected, atol=1e-9)
        areas2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
        area0 = (boxes1[0, 2] - boxes1[0, 0]) * (boxes1[0, 3] - boxes1[0, 1])
        np.testing.assert_allclose(utils.compute_iou(boxes1[0], boxes2, area0, areas2), expected[0], atol=1e-9)
    assert (utils.compute_overlaps(boxes1, boxes2) > 0).any()     # the random cases do overlap


def test_overlaps_edge_cases():
    assert utils.compute_overlaps(np.zeros((0, 4)), random_boxes(np.random.default_rng(2), 3)).shape == (0, 3)
    assert utils.compute_overlaps([[0, 0, 10, 10]], [[0, 0, 10, 10]])[0, 0] == 1.0
    assert utils.compute_overlaps([[0, 0, 10, 10]], [[10, 0, 20, 10]])[0, 0] == 0.0   # touching only
    assert utils.compute_overlaps([[5, 5, 5, 5]], [[5, 5, 5, 5]])[0, 0] == 0.0        # empty union


def test_compute_overlaps_masks_matches_pycocotools_rle():
    rng = np.random.default_rng(3)
    shape = (60, 80)
    masks1 = np.stack([ellipse_mask(shape, tuple(int(v) for v in rng.integers(10, 60, 2)),
                                    tuple(int(v) for v in rng.integers(3, 25, 2)), int(rng.integers(0, 180)))
                       for _ in range(5)], axis=-1)
    masks2 = rng.random((60, 80, 4)) < 0.3
    masks2[:, :, 3] = masks1[:, :, 2]
    masks2[:, :, 2] = False                       # an empty mask
    rle1 = coco_mask.encode(np.asfortranarray(masks1.astype(np.uint8)))
    rle2 = coco_mask.encode(np.asfortranarray(masks2.astype(np.uint8)))
    expected = np.asarray(coco_mask.iou(rle1, rle2, [0] * 4))
    got = utils.compute_overlaps_masks(masks1, masks2)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got[2, 3] == pytest.approx(1.0)
    assert utils.compute_overlaps_masks(masks1, np.zeros((60, 80, 0), bool)).shape == (5, 0)
    with pytest.raises(ValueError, match="same H, W"):
        utils.compute_overlaps_masks(masks1, masks2[:50])


def brute_force_nms(boxes, scores, threshold):
    ious = coco_box_iou(boxes, boxes)
    kept = []
    for i in sorted(range(len(boxes)), key=lambda k: (-scores[k], k)):
        if all(ious[i, j] <= threshold for j in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("threshold", [0.1, 0.3, 0.5, 0.7])
def test_nms_matches_brute_force(threshold):
    for seed in range(40):
        rng = np.random.default_rng(seed)
        count = int(rng.integers(1, 60))
        boxes = random_boxes(rng, count, size=100)
        scores = np.round(rng.random(count), 1)           # rounding makes ties
        kept = utils.non_max_suppression(boxes, scores, threshold)
        assert kept.dtype == np.int32
        assert kept.tolist() == brute_force_nms(boxes, scores, threshold), seed


def test_nms_keeps_a_box_whose_iou_equals_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 20]])            # IoU exactly 0.5
    assert utils.non_max_suppression(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert utils.non_max_suppression(boxes, np.array([0.8, 0.9]), 0.49).tolist() == [1]


def test_nms_empty_and_mismatched_input():
    assert utils.non_max_suppression(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError, match="2 boxes but 3 scores"):
        utils.non_max_suppression(np.ones((2, 4)), np.ones(3), 0.5)


def test_box_refinement_hand_case_and_round_trip():
    deltas = utils.box_refinement(np.array([[0, 0, 10, 10]]), np.array([[5, 5, 15, 25]]))
    np.testing.assert_allclose(deltas, [[0.5, 1.0, 0.0, np.log(2.0)]], atol=1e-6)
    rng = np.random.default_rng(4)
    boxes, targets = random_boxes(rng, 500, size=1000), random_boxes(rng, 500, size=1000)
    deltas = utils.box_refinement(boxes, targets)
    assert deltas.dtype == np.float32
    np.testing.assert_allclose(utils.apply_box_deltas(boxes, deltas), targets, atol=0.05)


# -- resizing -----------------------------------------------------------------------------

def crop_back(resized, window, shape, smooth=True):
    """Cut the window out of a resized array and size it back to `shape` (H, W)."""
    y1, x1, y2, x2 = window
    inner = resized[y1:y2, x1:x2]
    flag = cv2.INTER_LINEAR if smooth else cv2.INTER_NEAREST_EXACT
    back = cv2.resize(inner.astype(np.uint8), (shape[1], shape[0]), interpolation=flag)
    return back.reshape(shape[:2] + inner.shape[2:])


@pytest.mark.parametrize("mode, size, kwargs", [
    ("square", (300, 200), dict(min_dim=256, max_dim=320)),
    ("square", (1500, 700), dict(min_dim=800, max_dim=1024)),
    ("square", (100, 120), dict(min_dim=256, max_dim=512)),
    ("square", (100, 120), dict(min_dim=None, max_dim=512, min_scale=2)),
    ("pad64", (300, 200), dict(min_dim=256, max_dim=None)),
    ("pad64", (700, 1500), dict(min_dim=800, max_dim=1024)),
    ("none", (300, 200), dict()),
])
def test_resize_image_and_mask_agree_and_crop_back(mode, size, kwargs):
    image = smooth_image(*size)
    mask = ellipse_mask(size, (size[1] // 2, size[0] // 2), (size[1] // 3, size[0] // 4), 20)[..., None]
    resized, window, scale, padding, crop = utils.resize_image(image, mode=mode, **kwargs)
    assert resized.dtype == np.uint8 and crop is None
    y1, x1, y2, x2 = window
    assert (y2 - y1, x2 - x1) == (round(size[0] * scale), round(size[1] * scale))
    assert padding[0][0] == y1 and padding[1][0] == x1
    assert all(abs(before - after) <= 1 for before, after in padding)      # centred
    assert padding[0][0] + y2 - y1 + padding[0][1] == resized.shape[0]
    # outside the window everything is padding
    outside = np.ones(resized.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert not resized[outside].any()
    if mode == "square":
        assert resized.shape == (kwargs["max_dim"],) * 2 + (3,)
        assert max(y2 - y1, x2 - x1) <= kwargs["max_dim"]
        if kwargs.get("min_dim") and round(max(size) * kwargs["min_dim"] / min(size)) <= kwargs["max_dim"]:
            assert min(y2 - y1, x2 - x1) >= kwargs["min_dim"]
        if kwargs.get("min_scale"):
            assert scale == kwargs["min_scale"]
    if mode == "pad64":
        assert resized.shape[0] % 64 == 0 and resized.shape[1] % 64 == 0
        assert resized.shape[0] - (y2 - y1) < 64 and resized.shape[1] - (x2 - x1) < 64
    if mode == "none":
        assert resized is image and scale == 1.0

    back = crop_back(resized, window, size)
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 3.0

    resized_mask = utils.resize_mask(mask, scale, padding, crop)
    assert resized_mask.dtype == bool and resized_mask.shape == resized.shape[:2] + (1,)
    assert not resized_mask[outside].any()
    assert mask_iou(crop_back(resized_mask, window, size, smooth=False)[..., 0] > 0, mask[..., 0]) > 0.97


def test_resize_crop_mode_is_a_window_of_the_scaled_image():
    image = smooth_image(300, 400)
    for seed in range(5):
        resized, window, scale, padding, crop = utils.resize_image(
            image, min_dim=256, mode="crop", rng=np.random.default_rng(seed))
        y, x, h, w = crop
        assert resized.shape == (256, 256, 3) and window == (0, 0, 256, 256) and scale == 1.0
        np.testing.assert_array_equal(resized, image[y:y + h, x:x + w])
        mask = np.zeros((300, 400, 2), bool)
        mask[y + 10:y + 20, x + 30:x + 50, 1] = True
        cropped = utils.resize_mask(mask, scale, padding, crop)
        assert cropped.shape == (256, 256, 2) and cropped[10:20, 30:50, 1].all() and cropped.sum() == 200
    upscaled = utils.resize_image(image[:200, :100], min_dim=256, mode="crop")
    assert upscaled[0].shape == (256, 256, 3) and upscaled[2] == pytest.approx(2.56)


def test_resize_keeps_float_and_single_channel_and_rejects_bad_input():
    image = smooth_image(90, 70, channels=1).astype(np.float32) / 255
    resized, *_ = utils.resize_image(image, min_dim=128, max_dim=192, mode="square")
    assert resized.dtype == np.float32 and resized.shape == (192, 192, 1)
    assert 0.0 <= resized.min() and resized.max() <= 1.0
    many = np.zeros((20, 30, 600), bool)
    many[5:10, 5:10, 599] = True
    assert utils.resize_mask(many, 2.0, [(0, 0)] * 3)[10:20, 10:20, 599].all()
    labels = np.zeros((30, 40), np.uint8)
    labels[5:20, 10:30] = 7
    labels[10:15, 15:25] = 3
    scaled_labels = utils.resize_mask(labels, 1.7, [(1, 2), (3, 4), (0, 0)])
    assert scaled_labels.dtype == np.uint8 and scaled_labels.shape == (51 + 3, 68 + 7)
    assert set(np.unique(scaled_labels)) == {0, 3, 7}               # nearest pixel: no blended labels
    with pytest.raises(ValueError, match="mode 'stretch'"):
        utils.resize_image(image, mode="stretch")
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        utils.resize_image(np.zeros((10, 10)), max_dim=64)


@pytest.mark.skipif(not (FIXTURES / "photos" / "bag_4mev_112.jpg").exists(), reason="fixtures absent")
def test_resize_real_photo_round_trip():
    image = utils.read_image_rgb(FIXTURES / "photos" / "bag_4mev_112.jpg")
    resized, window, scale, padding, _ = utils.resize_image(image, min_dim=800, max_dim=1024)
    assert resized.shape == (1024, 1024, 3) and resized.dtype == np.uint8
    back = crop_back(resized, window, image.shape[:2])
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 8.0


# -- mini masks ---------------------------------------------------------------------------

def test_minimize_then_expand_round_trip_on_smooth_shapes():
    shape = (240, 320)
    masks = np.stack([ellipse_mask(shape, (100, 120), (60, 90), 15),
                      ellipse_mask(shape, (250, 60), (40, 20), 70),
                      ellipse_mask(shape, (200, 180), (100, 40), 0)], axis=-1)
    boxes = utils.extract_bboxes(masks)
    mini = utils.minimize_mask(boxes, masks, (56, 56))
    assert mini.shape == (56, 56, 3) and mini.dtype == bool
    expanded = utils.expand_mask(boxes, mini, shape + (3,))
    assert expanded.shape == masks.shape and expanded.dtype == bool
    for i in range(3):
        assert mask_iou(expanded[..., i], masks[..., i]) > 0.95


def test_minimize_rejects_empty_box_and_expand_clips_outside_boxes():
    with pytest.raises(ValueError, match="instance 0 has an empty box"):
        utils.minimize_mask(np.array([[5, 5, 5, 9]]), np.ones((10, 10, 1), bool), (8, 8))
    expanded = utils.expand_mask(np.array([[-5, -5, 5, 5], [3, 3, 3, 3]]), np.ones((8, 8, 2), bool), (10, 10))
    assert expanded[:5, :5, 0].all() and expanded[..., 0].sum() == 25
    assert not expanded[..., 1].any()


def test_unmold_mask_places_the_soft_mask_in_its_box():
    soft = np.zeros((28, 28), np.float32)
    soft[:, :14] = 0.9
    soft[:, 14:] = 0.1
    full = utils.unmold_mask(soft, (10, 20, 50, 60), (100, 120, 3))
    assert full.shape == (100, 120) and full.dtype == bool
    assert full[10:50, 20:40].all() and full.sum() == 40 * 20


def test_unmold_mask_on_a_whole_pixel_box_is_an_align_corners_resize():
    """Oracle: tf.image.crop_and_resize of the whole mask (documented as corner-to-corner bilinear)."""
    soft = np.random.default_rng(0).uniform(0, 1, (14, 14))
    full = utils.unmold_mask(soft, (5, 7, 38, 29), (50, 40))
    resized = tf.image.crop_and_resize(soft[None, :, :, None], [[0.0, 0.0, 1.0, 1.0]], [0], (33, 22))
    expected = resized.numpy()[0, :, :, 0] >= 0.5
    assert np.array_equal(full[5:38, 7:29], expected) and full.sum() == expected.sum()


def test_unmold_mask_on_a_fractional_box_takes_the_pixels_centred_inside():
    full = utils.unmold_mask(np.ones((28, 28)), (10.4, 20.6, 30.5, 40.2), (60, 60))
    rows, columns = np.nonzero(full.any(axis=1))[0], np.nonzero(full.any(axis=0))[0]
    assert (rows[0], rows[-1], columns[0], columns[-1]) == (10, 29, 21, 39)     # centres 10.5..29.5, 21.5..39.5
    assert full.sum() == 20 * 19
    # Left half 0.8, right half 0.1: the edge between the halves sits at the box's middle, 40.5.
    soft = np.where(np.arange(28) < 14, 0.8, 0.1)[None].repeat(28, axis=0)
    full = utils.unmold_mask(soft, (0, 20.5, 10, 60.5), (10, 80))
    assert np.nonzero(full[0])[0].tolist() == list(range(20, 40))
    assert not utils.unmold_mask(soft, (5, 5, 5.2, 9), (10, 10)).any()          # no pixel centre inside
    clipped = utils.unmold_mask(np.ones((7, 7)), (-3.5, -2, 4, 12.5), (10, 10))
    assert clipped.sum() == 4 * 10 and clipped[:4].all()


def test_molded_to_original_edges_inverts_the_resize():
    image = np.zeros((100, 150, 3), np.uint8)
    molded, window, scale, padding, _ = utils.resize_image(image, min_dim=256, max_dim=256, mode="square")
    window_box = utils.norm_boxes(np.array([window]), molded.shape[:2])
    np.testing.assert_allclose(utils.molded_to_original_edges(window_box, molded.shape, window, image.shape),
                               [[0, 0, 100, 150]], atol=1e-4)
    # A box of pixels 40..59 (rows), 30..89 (columns) of the molded image: its edges scaled back by
    # the resize's size ratio on each axis (rows 100 -> 171, columns 150 -> 256: not quite `scale`).
    box = utils.norm_boxes(np.array([[window[0] + 40, 30, window[0] + 60, 90]]), molded.shape[:2])
    rows, columns = (window[2] - window[0]) / 100, (window[3] - window[1]) / 150
    assert (window[2] - window[0], window[3] - window[1]) == (171, 256) and scale == pytest.approx(256 / 150)
    np.testing.assert_allclose(utils.molded_to_original_edges(box, molded.shape, window, image.shape),
                               [[40 / rows, 30 / columns, 60 / rows, 90 / columns]], atol=1e-4)


# -- anchors and box normalisation -------------------------------------------------------

def test_generate_anchors_grid_areas_and_ratios():
    ratios = [0.5, 1, 2]
    for feature_stride, anchor_stride, scale in [(4, 1, 32), (16, 2, 128)]:
        shape = (13, 9)
        anchors = utils.generate_anchors(scale, ratios, shape, feature_stride, anchor_stride)
        rows, cols = -(-shape[0] // anchor_stride), -(-shape[1] // anchor_stride)
        assert anchors.shape == (rows * cols * len(ratios), 4)
        heights = anchors[:, 2] - anchors[:, 0]
        widths = anchors[:, 3] - anchors[:, 1]
        np.testing.assert_allclose(heights * widths, scale ** 2)
        np.testing.assert_allclose(widths / heights, np.tile(ratios, rows * cols))
        centres_y = (anchors[:, 0] + anchors[:, 2]) / 2
        centres_x = (anchors[:, 1] + anchors[:, 3]) / 2
        expected_y = np.repeat(np.arange(0, shape[0], anchor_stride) * feature_stride, cols * len(ratios))
        expected_x = np.tile(np.repeat(np.arange(0, shape[1], anchor_stride) * feature_stride, len(ratios)), rows)
        np.testing.assert_allclose(centres_y, expected_y)
        np.testing.assert_allclose(centres_x, expected_x)


def test_generate_anchors_with_several_scales_orders_ratio_then_scale():
    anchors = utils.generate_anchors([8, 16], [1, 4], (1, 1), 4, 1)
    sides = np.stack([anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]], axis=1)
    np.testing.assert_allclose(sides, [[8, 8], [16, 16], [4, 16], [8, 32]])


def test_generate_pyramid_anchors_count_and_levels():
    scales, strides = (32, 64, 128, 256, 512), [4, 8, 16, 32, 64]
    shapes = [(256 // s, 256 // s) for s in strides]
    anchors = utils.generate_pyramid_anchors(scales, [0.5, 1, 2], shapes, strides, 1)
    assert len(anchors) == sum(256 * 256 * 3 // s ** 2 for s in strides)
    areas = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
    expected = np.concatenate([np.full(h * w * 3, s ** 2) for (h, w), s in zip(shapes, scales)])
    np.testing.assert_allclose(areas, expected)
    with pytest.raises(ValueError, match="one of each per level"):
        utils.generate_pyramid_anchors(scales[:4], [1], shapes, strides, 1)


def test_norm_and_denorm_boxes_round_trip():
    shape = (480, 640, 3)
    np.testing.assert_allclose(utils.norm_boxes(np.array([[0, 0, 480, 640]]), shape), [[0, 0, 1, 1]])
    rng = np.random.default_rng(5)
    boxes = np.sort(rng.integers(0, 480, (50, 2)), axis=1)
    boxes = np.stack([boxes[:, 0], boxes[:, 0] // 2, boxes[:, 1], boxes[:, 1] + 100], axis=1)
    normalised = utils.norm_boxes(boxes, shape)
    assert normalised.dtype == np.float32
    restored = utils.denorm_boxes(normalised, shape)
    assert restored.dtype == np.int32
    np.testing.assert_array_equal(restored, boxes)


# -- evaluation ---------------------------------------------------------------------------

def square_masks(count, shape=(64, 64), side=6):
    """`count` disjoint square masks and their boxes."""
    masks = np.zeros(shape + (count,), bool)
    for i in range(count):
        y, x = 8 * (i // 7), 8 * (i % 7)
        masks[y:y + side, x:x + side, i] = True
    return masks, utils.extract_bboxes(masks)


def ap_case(gt_count, predictions, gt_classes=None):
    """Run compute_ap. predictions: list of (gt index or None for a stray box, class, score)."""
    masks, boxes = square_masks(gt_count + len(predictions))
    gt_classes = np.ones(gt_count, np.int32) if gt_classes is None else np.asarray(gt_classes)
    pred_masks, pred_boxes = [], []
    for k, (target, _, _) in enumerate(predictions):
        source = target if target is not None else gt_count + k
        pred_masks.append(masks[..., source])
        pred_boxes.append(boxes[source])
    pred_masks = np.stack(pred_masks, -1) if predictions else np.zeros((64, 64, 0), bool)
    pred_boxes = np.array(pred_boxes).reshape(-1, 4)
    return utils.compute_ap(boxes[:gt_count], gt_classes, masks[..., :gt_count], pred_boxes,
                            np.array([p[1] for p in predictions], np.int32),
                            np.array([p[2] for p in predictions], float), pred_masks)


def test_compute_ap_hand_made_cases():
    assert ap_case(3, [(0, 1, 0.9), (1, 1, 0.8), (2, 1, 0.7)])[0] == pytest.approx(1.0)
    # a false positive ranked first: precision 1/2 at full recall
    assert ap_case(1, [(None, 1, 0.9), (0, 1, 0.5)])[0] == pytest.approx(0.5)
    # the same false positive ranked last costs nothing
    assert ap_case(1, [(0, 1, 0.9), (None, 1, 0.5)])[0] == pytest.approx(1.0)
    # one of two ground-truth instances missed
    assert ap_case(2, [(0, 1, 0.9)])[0] == pytest.approx(0.5)
    # a duplicate of a matched instance is a false positive
    assert ap_case(1, [(0, 1, 0.9), (0, 1, 0.8)])[0] == pytest.approx(1.0)
    assert ap_case(2, [(0, 1, 0.9), (0, 1, 0.8), (1, 1, 0.7)])[0] == pytest.approx(0.5 + 0.5 * 2 / 3)
    # wrong class never matches
    assert ap_case(1, [(0, 2, 0.9)])[0] == 0.0
    assert ap_case(2, [])[0] == 0.0
    assert np.isnan(ap_case(0, [(None, 1, 0.9)])[0])


def reference_ap(hits, gt_count):
    """VOC all-points AP from the ranked hit list: mean over recall levels k/G of the best
    precision reached at that recall or beyond."""
    hits = np.asarray(hits, bool)
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    found = np.cumsum(hits)
    return np.mean([precision[found >= k].max() if (found >= k).any() else 0.0 for k in range(1, gt_count + 1)])


def test_compute_ap_matches_reference_on_random_rankings():
    for seed in range(25):
        rng = np.random.default_rng(seed)
        gt_count = int(rng.integers(1, 6))
        found = rng.permutation(gt_count)[:int(rng.integers(0, gt_count + 1))]
        predictions = [(int(g), 1, float(rng.random())) for g in found]
        predictions += [(None, 1, float(rng.random())) for _ in range(int(rng.integers(0, 5)))]
        order = sorted(range(len(predictions)), key=lambda k: -predictions[k][2])
        hits = [predictions[k][0] is not None for k in order]
        mean_ap, precisions, recalls, overlaps = ap_case(gt_count, predictions)
        assert mean_ap == pytest.approx(reference_ap(hits, gt_count)), seed
        assert overlaps.shape == (len(predictions), gt_count)
        assert recalls[0] == 0 and recalls[-1] == 1 and np.all(np.diff(precisions[:-1]) <= 1e-12)


def test_compute_matches_sorts_predictions_and_drops_padding():
    masks, boxes = square_masks(3)
    gt_boxes = np.concatenate([boxes[:2], np.zeros((2, 4), np.int32)])       # two padding rows
    gt_masks = np.concatenate([masks[..., :2], np.zeros((64, 64, 2), bool)], axis=-1)
    pred_masks = masks[..., [1, 0]]
    gt_match, pred_match, overlaps = utils.compute_matches(
        gt_boxes, np.array([1, 1, 0, 0]), gt_masks, boxes[[1, 0]], np.array([1, 1]), np.array([0.2, 0.9]),
        pred_masks)
    # sorted: prediction 0 is the 0.9 one (a copy of gt 0)
    assert gt_match.tolist() == [0, 1] and pred_match.tolist() == [0, 1]
    np.testing.assert_allclose(overlaps, np.eye(2))


def test_compute_recall():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]])
    pred = np.array([[0, 0, 10, 11], [21, 20, 30, 30], [100, 100, 110, 110]])
    recall, positive = utils.compute_recall(pred, gt, 0.5)
    assert recall == pytest.approx(2 / 3) and positive.tolist() == [0, 1]
    assert utils.compute_recall(np.zeros((0, 4)), gt, 0.5)[0] == 0.0
    assert np.isnan(utils.compute_recall(pred, np.zeros((0, 4)), 0.5)[0])


def test_read_image_rgb_names_a_decompression_bomb_as_a_value_error(tmp_path):
    from tests.bombs import png_claiming
    path = png_claiming(tmp_path / "bomb.png", 100000, 100000)
    with pytest.raises(ValueError, match="bomb.png: image too large to decode safely") as caught:
        utils.read_image_rgb(path)
    assert isinstance(caught.value, utils.ImageTooLargeError)
    ok = png_claiming(tmp_path / "ok.png", 1, 1)          # the same file at its true size reads
    assert utils.read_image_rgb(ok).shape == (1, 1, 3)
