"""DetectionTargetLayer: sampling properties, and targets recomputed in numpy for fixed samples."""
import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import utils
from mrcnn.compat import DetectionTargetLayer  # Matterport's signature (config)
from mrcnn.config import Config

SIZE = 64
MINI = (16, 16)


def small_config(**overrides):
    settings = dict(NAME="t", IMAGE_MAX_DIM=SIZE, IMAGE_MIN_DIM=SIZE, TRAIN_ROIS_PER_IMAGE=10,
                    ROI_POSITIVE_RATIO=0.5, MASK_POOL_SIZE=7, MASK_SHAPE=[14, 14], MINI_MASK_SHAPE=MINI,
                    MAX_GT_INSTANCES=5)
    settings.update(overrides)
    return Config(**settings)


def numpy_crop_and_resize(image, box, size):
    """Bilinear samples of a 2-D image on a size[0] x size[1] grid spanning a normalised box.

    Sample i along an axis sits at y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (n - 1); samples
    outside the image are 0. Written from tf.image.crop_and_resize's documented behaviour.
    """
    height, width = image.shape
    y1, x1, y2, x2 = (float(v) for v in box)
    out = np.zeros(size, np.float64)
    for i in range(size[0]):
        y = y1 * (height - 1) + i * (y2 - y1) * (height - 1) / (size[0] - 1)
        for j in range(size[1]):
            x = x1 * (width - 1) + j * (x2 - x1) * (width - 1) / (size[1] - 1)
            if not (0 <= y <= height - 1 and 0 <= x <= width - 1):
                continue
            top, left = int(np.floor(y)), int(np.floor(x))
            bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
            dy, dx = y - top, x - left
            upper = image[top, left] * (1 - dx) + image[top, right] * dx
            lower = image[bottom, left] * (1 - dx) + image[bottom, right] * dx
            out[i, j] = upper * (1 - dy) + lower * dy
    return out


def numpy_corner_grid_samples(grid, frame_edges, roi_edges, size):
    """Bilinear samples of `grid` on size[0] x size[1] points from the roi's first pixel centre
    to its last (pixel-edge coordinates: roi_edges[0] + 0.5 to roi_edges[2] - 0.5).

    frame_edges, roi_edges: [y1, x1, y2, x2] pixel edges of the image; `grid` spans the frame
    (grid pixel k covers [f1 + k (f2 - f1) / n, ...)). Samples off the grid's pixel centres
    are 0, as tf.image.crop_and_resize extrapolates. Written from the definition in targets.py.
    """
    grid = np.asarray(grid, np.float64)
    out = np.zeros(size, np.float64)
    for i in range(size[0]):
        point_y = roi_edges[0] + 0.5 + i * (roi_edges[2] - roi_edges[0] - 1) / (size[0] - 1)
        y = (point_y - frame_edges[0]) * grid.shape[0] / (frame_edges[2] - frame_edges[0]) - 0.5
        for j in range(size[1]):
            point_x = roi_edges[1] + 0.5 + j * (roi_edges[3] - roi_edges[1] - 1) / (size[1] - 1)
            x = (point_x - frame_edges[1]) * grid.shape[1] / (frame_edges[3] - frame_edges[1]) - 0.5
            if not (-1e-6 <= y <= grid.shape[0] - 1 + 1e-6 and -1e-6 <= x <= grid.shape[1] - 1 + 1e-6):
                continue
            y, x = min(max(y, 0.0), grid.shape[0] - 1), min(max(x, 0.0), grid.shape[1] - 1)
            top, left = int(np.floor(y)), int(np.floor(x))
            bottom, right = min(top + 1, grid.shape[0] - 1), min(left + 1, grid.shape[1] - 1)
            dy, dx = y - top, x - left
            upper = grid[top, left] * (1 - dx) + grid[top, right] * dx
            lower = grid[bottom, left] * (1 - dx) + grid[bottom, right] * dx
            out[i, j] = upper * (1 - dy) + lower * dy
    return out


def pixel_edges(box):
    """A normalised box (utils.norm_boxes' convention) as pixel edges of the SIZE x SIZE image."""
    return np.asarray(box, np.float64) * (SIZE - 1) + [0, 0, 1, 1]


def make_ground_truth(rng, count):
    """`count` random elliptical instances: full masks (H, W, n), pixel boxes, normalised boxes, mini masks."""
    masks = np.zeros((SIZE, SIZE, count), bool)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for i in range(count):
        cy, cx = rng.uniform(16, 48, 2)
        ry, rx = rng.uniform(6, 14, 2)
        masks[:, :, i] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    pixel_boxes = utils.extract_bboxes(masks)
    norm = utils.norm_boxes(pixel_boxes, (SIZE, SIZE))
    mini = utils.minimize_mask(pixel_boxes, masks, MINI)
    return masks, pixel_boxes, norm, mini


def pad_rows(array, rows):
    out = np.zeros((rows,) + array.shape[1:], array.dtype)
    out[:len(array)] = array
    return out


def pad_masks(masks, count):
    out = np.zeros(masks.shape[:2] + (count,), np.float32)
    out[..., :masks.shape[-1]] = masks
    return out


def run_layer(config, proposals, class_ids, boxes, masks):
    layer = DetectionTargetLayer(config)
    outputs = layer([proposals[None].astype(np.float32), class_ids[None].astype(np.int32),
                     boxes[None].astype(np.float32), masks[None].astype(np.float32)])
    return [np.asarray(tensor)[0] for tensor in outputs]


def random_negatives(rng, count, gt_boxes):
    """Of `count` random normalised boxes, those with IoU < 0.5 against every gt box."""
    corners = rng.uniform(0, 1, (count, 4)).astype(np.float32)
    boxes = np.concatenate([np.minimum(corners[:, :2], corners[:, 2:]), np.maximum(corners[:, :2], corners[:, 2:])],
                           axis=1)
    return boxes[utils.compute_overlaps(boxes, gt_boxes).max(axis=1) < 0.5]


def jitter(boxes, rng, amount=0.01):
    return (boxes + rng.uniform(-amount, amount, boxes.shape)).astype(np.float32)


@pytest.mark.parametrize("sampling", ["pixel_centres", "resized"])
@pytest.mark.parametrize("use_mini_mask", [True, False])
def test_all_positive_sample_matches_numpy_targets(use_mini_mask, sampling):
    config = small_config(USE_MINI_MASK=use_mini_mask, MASK_TARGET_SAMPLING=sampling)
    rng = np.random.default_rng(0)
    full, _, gt_boxes, mini = make_ground_truth(rng, 3)
    class_ids = np.array([2, 5, 1])
    # 4 proposals, each a slight jitter of a gt box (IoU well above 0.5), plus zero padding.
    proposals = jitter(gt_boxes[[0, 1, 2, 0]], rng)
    gt_masks = mini if use_mini_mask else full
    rois, target_ids, target_bbox, target_masks = run_layer(
        config, pad_rows(proposals, 7), pad_rows(class_ids, 5), pad_rows(gt_boxes, 5), pad_masks(gt_masks, 5))

    assert rois.shape == (10, 4) and target_masks.shape == (10, 14, 14)
    assert np.all(rois[4:] == 0) and np.all(target_ids[4:] == 0) and np.all(target_bbox[4:] == 0)
    assert np.all(target_masks[4:] == 0)
    overlaps = utils.compute_overlaps(proposals, gt_boxes)
    seen = []
    for row in range(4):
        match = np.where(np.all(np.isclose(proposals, rois[row], atol=1e-7), axis=1))[0]
        assert len(match) == 1
        seen.append(int(match[0]))
        best = int(np.argmax(overlaps[match[0]]))
        assert target_ids[row] == class_ids[best]
        expected = utils.box_refinement(rois[row:row + 1], gt_boxes[best:best + 1])[0] / config.BBOX_STD_DEV
        assert np.allclose(target_bbox[row], expected, atol=1e-4)
        if sampling == "pixel_centres":
            grid, frame = (mini, pixel_edges(gt_boxes[best])) if use_mini_mask else (full, [0, 0, SIZE, SIZE])
            soft = numpy_corner_grid_samples(grid[:, :, best], frame, pixel_edges(rois[row]), (14, 14))
        elif use_mini_mask:
            gy1, gx1, gy2, gx2 = gt_boxes[best]
            y1, x1, y2, x2 = rois[row]
            frame = [(y1 - gy1) / (gy2 - gy1), (x1 - gx1) / (gx2 - gx1),
                     (y2 - gy1) / (gy2 - gy1), (x2 - gx1) / (gx2 - gx1)]
            soft = numpy_crop_and_resize(mini[:, :, best].astype(np.float64), frame, (14, 14))
        else:
            soft = numpy_crop_and_resize(full[:, :, best].astype(np.float64), rois[row], (14, 14))
        clear = np.abs(soft - 0.5) > 1e-3
        assert np.array_equal(target_masks[row][clear], np.round(soft)[clear])
        assert np.sum((soft > 0.05) & (soft < 0.95)) >= 4       # edges to round: the check means something
        assert set(np.unique(target_masks[row])) <= {0.0, 1.0}
    assert sorted(seen) == [0, 1, 2, 3]
    assert all(target_masks[row].sum() > 20 for row in range(4))   # real garment masks, not blanks


def test_mini_and_full_masks_give_nearly_the_same_mask_targets():
    rng = np.random.default_rng(1)
    full, _, gt_boxes, mini = make_ground_truth(rng, 1)
    proposals = jitter(gt_boxes, rng, 0.03)
    args = (proposals, np.array([1]), gt_boxes)
    with_mini = run_layer(small_config(USE_MINI_MASK=True), *args, mini)[3][0]
    with_full = run_layer(small_config(USE_MINI_MASK=False), *args, full)[3][0]
    assert with_full.sum() > 50
    assert np.mean(with_mini == with_full) > 0.9


def test_all_negative_sample_and_no_ground_truth():
    config, expected = small_config(), 5
    rng = np.random.default_rng(2)
    _, _, gt_boxes, mini = make_ground_truth(rng, 1)
    far = np.array([[0.0, 0.0, 0.05, 0.05], [0.9, 0.9, 1.0, 1.0], [0.0, 0.9, 0.1, 1.0],
                    [0.9, 0.0, 1.0, 0.1], [0.0, 0.45, 0.05, 0.5], [0.95, 0.45, 1.0, 0.5],
                    [0.45, 0.0, 0.5, 0.05], [0.45, 0.95, 0.5, 1.0]], np.float32)
    assert utils.compute_overlaps(far, gt_boxes).max() < 0.5
    no_gt = (np.zeros(3, np.int32), np.zeros((3, 4), np.float32), np.zeros(MINI + (3,), np.float32))
    for class_ids, boxes, masks in [(np.array([3]), gt_boxes, mini), no_gt]:
        rois, target_ids, target_bbox, target_masks = run_layer(config, far, class_ids, boxes, masks)
        # No positive: the negative share of a full sample, T - int(T * ratio) = 5 negatives.
        kept = rois[np.any(rois != 0, axis=1)]
        assert len(kept) == expected and np.all(rois[expected:] == 0)
        assert len({tuple(row) for row in kept}) == expected
        assert all(np.any(np.all(far == row, axis=1)) for row in kept)
        assert np.all(target_ids == 0) and np.all(target_bbox == 0) and np.all(target_masks == 0)
        assert np.isfinite(target_bbox).all()


def test_sampling_ratio_and_iou_rules_with_many_candidates():
    config = small_config(TRAIN_ROIS_PER_IMAGE=12, ROI_POSITIVE_RATIO=0.25)
    rng = np.random.default_rng(3)
    _, _, gt_boxes, mini = make_ground_truth(rng, 2)
    positives = jitter(np.repeat(gt_boxes, 10, axis=0), rng, 0.01)
    negatives = random_negatives(rng, 40, gt_boxes)
    assert len(negatives) >= 20
    proposals = np.concatenate([positives, negatives])
    rois, target_ids, _, target_masks = run_layer(config, proposals, np.array([4, 7]), gt_boxes, mini)
    best = utils.compute_overlaps(rois, gt_boxes).max(axis=1)
    # int(12 * 0.25) = 3 positives, then int(3 / 0.25) - 3 = 9 negatives: the whole sample.
    assert np.all(best[:3] >= 0.5) and np.all(best[3:] < 0.5)
    assert set(target_ids[:3]) <= {4, 7} and np.all(target_ids[3:] == 0)
    assert np.all(np.any(rois != 0, axis=1))
    assert target_masks[:3].sum() > 0 and np.all(target_masks[3:] == 0)


def test_one_positive_brings_negatives_at_the_positive_ratio_and_settings_round_trip():
    rng = np.random.default_rng(3)
    _, _, gt_boxes, mini = make_ground_truth(rng, 2)
    positives = jitter(gt_boxes[:1], rng, 0.01)                       # a single positive candidate
    negatives = random_negatives(rng, 60, gt_boxes)[:20]
    assert len(negatives) == 20
    config = small_config(TRAIN_ROIS_PER_IMAGE=12, ROI_POSITIVE_RATIO=0.25)
    rois, target_ids, _, _ = run_layer(config, np.concatenate([positives, negatives]), np.array([4, 7]),
                                       gt_boxes, mini)
    best = utils.compute_overlaps(rois, gt_boxes).max(axis=1)
    kept = np.any(rois != 0, axis=1)
    # 1 positive, then int(1 / 0.25) - 1 = 3 negatives (Matterport's rule), the rest padding.
    assert best[0] >= 0.5 and target_ids[0] == 4 and np.all(target_ids[1:] == 0)
    assert kept.sum() == 4 and np.all(kept[:4]) and np.all(best[1:4] < 0.5)
    assert len({tuple(row) for row in rois[kept]}) == kept.sum()
    restored = DetectionTargetLayer.from_config(DetectionTargetLayer(config).get_config())
    assert restored.mask_target_sampling == "resized" and restored.image_shape == [SIZE, SIZE]  # the default
    assert DetectionTargetLayer.from_config(DetectionTargetLayer(
        config, mask_target_sampling="pixel_centres").get_config()).mask_target_sampling == "pixel_centres"
    with pytest.raises(ValueError, match="mask_target_sampling"):
        DetectionTargetLayer(config, mask_target_sampling="corners")


def test_crowd_boxes_make_neither_positives_nor_negatives():
    config = small_config()
    crowd = np.array([0.1, 0.1, 0.4, 0.4], np.float32)
    thing = np.array([0.6, 0.6, 0.9, 0.9], np.float32)
    proposals = np.array([crowd,                          # IoU 1 with the crowd: not positive
                          [0.35, 0.35, 0.5, 0.5],         # touches the crowd a little: not negative
                          thing + 0.005,                  # positive on the real object
                          [0.0, 0.6, 0.1, 0.9]], np.float32)  # clear negative
    rois, target_ids, _, _ = run_layer(config, proposals, np.array([-1, 6]), np.stack([crowd, thing]),
                                       np.ones(MINI + (2,), np.float32))
    kept = rois[np.any(rois != 0, axis=1)]
    assert len(kept) == 2
    assert np.allclose(kept[0], thing + 0.005) and target_ids[0] == 6
    assert np.allclose(kept[1], proposals[3]) and target_ids[1] == 0


def test_batch_inside_keras_model_and_tf_function():
    config = small_config()
    rng = np.random.default_rng(4)
    _, _, gt_boxes, mini = make_ground_truth(rng, 2)
    proposals = np.stack([pad_rows(jitter(gt_boxes, rng), 6), pad_rows(jitter(gt_boxes[::-1], rng), 6)])
    class_ids = np.array([[1, 2, 0], [1, 2, 0]], np.int32)
    boxes = np.stack([pad_rows(gt_boxes, 3)] * 2)
    masks = np.stack([pad_masks(mini, 3)] * 2)
    inputs = [keras.Input((6, 4)), keras.Input((3,), dtype="int32"), keras.Input((3, 4)),
              keras.Input(MINI + (3,), dtype="bool")]
    layer = DetectionTargetLayer(config, name="proposal_targets")
    outputs = layer(inputs)
    assert [tuple(t.shape) for t in outputs] == [(None, 10, 4), (None, 10), (None, 10, 4), (None, 10, 14, 14)]
    assert outputs[1].dtype == "int32"
    model = keras.Model(inputs, outputs)
    with pytest.warns(UserWarning, match="jit_compile"):
        model.jit_compile = True    # refused: the layer's dynamic shapes cannot be XLA-compiled
    assert model.jit_compile is False
    results = model.predict_on_batch([proposals, class_ids, boxes, masks.astype(bool)])
    traced = tf.function(lambda *args: layer(list(args)))(proposals, class_ids, boxes, masks.astype(bool))
    for result in (results, [t.numpy() for t in traced]):
        rois, target_ids = np.asarray(result[0]), np.asarray(result[1])
        assert rois.shape == (2, 10, 4)
        for image in range(2):
            assert sorted(target_ids[image][:2].tolist()) == [1, 2] and np.all(target_ids[image][2:] == 0)
            assert np.all(rois[image][2:] == 0)


def test_config_round_trip():
    layer = DetectionTargetLayer(small_config(USE_MINI_MASK=False), name="targets")
    clone = DetectionTargetLayer.from_config(layer.get_config())
    assert (clone.train_rois_per_image, clone.roi_positive_ratio, clone.mask_shape, clone.use_mini_mask) == \
        (10, 0.5, [14, 14], False)
    assert clone.positive_quota == 5 and clone.name == "targets"


def test_targets_carry_no_gradient_to_the_proposals():
    rng = np.random.default_rng(5)
    _, _, gt_boxes, mini = make_ground_truth(rng, 2)
    proposals = tf.constant(jitter(gt_boxes, rng)[None])
    with tf.GradientTape() as tape:
        tape.watch(proposals)
        rois, _, target_bbox, _ = DetectionTargetLayer(small_config())(
            [proposals, np.array([[1, 2]], np.int32), gt_boxes[None], mini[None]])
        total = tf.reduce_sum(rois) + tf.reduce_sum(target_bbox)
    assert float(tf.reduce_sum(rois)) > 0
    assert tape.gradient(total, proposals) is None


def round_trip_ious(use_mini_mask, sampling, sizes, images=3, seed=0):
    """Mean IoU, per object size, of gt masks and their mask targets (roi = gt box) read back
    with utils.unmold_mask: what a mask head that predicts its targets perfectly would score."""
    size = 128
    config = Config(NAME="t", IMAGE_MIN_DIM=size, IMAGE_MAX_DIM=size, TRAIN_ROIS_PER_IMAGE=4,
                    ROI_POSITIVE_RATIO=1.0, USE_MINI_MASK=use_mini_mask, MASK_TARGET_SAMPLING=sampling)
    layer = DetectionTargetLayer(config)
    rng = np.random.default_rng(seed)
    means = {}
    for side in sizes:
        ious = []
        for _ in range(images):
            layers = []
            for _ in range(4):
                layer_mask = np.zeros((size, size), np.uint8)
                cy, cx = rng.uniform(side, size - side, 2)
                axes = (int(side * 8 * rng.uniform(0.6, 1)), int(side * 8 * rng.uniform(0.6, 1)))  # 1/16 px
                cv2.ellipse(layer_mask, (int(cx * 16), int(cy * 16)), axes, rng.uniform(0, 180), 0, 360, 1, -1,
                            shift=4)
                layers.append(layer_mask.astype(bool))
            masks = np.stack(layers, axis=-1)
            boxes = utils.extract_bboxes(masks)
            norm = utils.norm_boxes(boxes, (size, size))
            gt_masks = utils.minimize_mask(boxes, masks, config.MINI_MASK_SHAPE) if use_mini_mask else masks
            rois, _, _, targets = run_layer(config, norm, np.ones(4), norm, gt_masks)
            for row in range(4):
                k = int(np.argmax(np.all(np.isclose(norm, rois[row]), axis=1)))
                back = utils.unmold_mask(targets[row], boxes[k], (size, size))
                ious.append((back & masks[:, :, k]).sum() / (back | masks[:, :, k]).sum())
        means[side] = float(np.mean(ious))
    return means


@pytest.mark.parametrize("use_mini_mask", [True, False])
def test_mask_targets_read_back_onto_the_ground_truth(use_mini_mask):
    """Pixel-centre targets and unmold_mask are inverses: a perfect prediction gets its object back."""
    ours = round_trip_ious(use_mini_mask, "pixel_centres", (12, 24, 48))
    assert ours[12] > 0.99 and ours[24] > 0.98 and ours[48] > 0.97, ours
    if use_mini_mask:
        # Matterport's mini mask grid is off by up to half a mini cell: small objects suffer most
        matterport = round_trip_ious(use_mini_mask, "resized", (12, 24))
        assert matterport[12] < ours[12] - 0.1 and matterport[24] < ours[24] - 0.03, (matterport, ours)
