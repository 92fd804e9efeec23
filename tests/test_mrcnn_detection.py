"""DetectionLayer agrees with a brute-force numpy recomputation built on mrcnn/utils.py."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import meta, utils
from mrcnn.compat import DetectionLayer  # Matterport's signature (config)
from mrcnn.config import Config
from mrcnn.detection import normalised_windows_graph

CLASSES = 5


def small_config(**overrides):
    settings = dict(NAME="t", NUM_CLASSES=CLASSES, IMAGE_MAX_DIM=128, IMAGE_MIN_DIM=64,
                    DETECTION_MAX_INSTANCES=12, DETECTION_MIN_CONFIDENCE=0.3, DETECTION_NMS_THRESHOLD=0.3)
    settings.update(overrides)
    return Config(**settings)


def meta_row(window, shape=(128, 128, 3)):
    return meta.compose_image_meta(0, (100, 60, 3), shape, window, 1.28, np.ones(CLASSES))


def random_head_outputs(rng, batch, roi_count, padding=0):
    """ROIs (clustered so NMS has work), softmax class probabilities and class deltas."""
    centres = rng.uniform(0.2, 0.8, (batch, 4, 2))[:, rng.integers(0, 4, roi_count)]
    centres = centres + rng.normal(0, 0.03, centres.shape)
    sides = rng.uniform(0.1, 0.3, (batch, roi_count, 2))
    rois = np.concatenate([centres - sides / 2, centres + sides / 2], axis=-1)
    rois[:, roi_count - padding:] = 0
    logits = rng.normal(0, 2, (batch, roi_count, CLASSES))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    deltas = rng.normal(0, 0.5, (batch, roi_count, CLASSES, 4))
    return rois.astype(np.float32), probs.astype(np.float32), deltas.astype(np.float32)


def brute_force_detections(rois, probs, deltas, meta_row_, config, best_class_only=False):
    """The documented recipe for one image, roi by roi and class by class, in numpy.

    best_class_only: Matterport's rule instead (each ROI's most likely class, background dropped).
    """
    parsed = meta.parse_image_meta(meta_row_[None])
    window = utils.norm_boxes(parsed["window"][0], parsed["image_shape"][0][:2])
    candidates = []
    for n in range(len(rois)):
        if not np.any(rois[n] != 0):
            continue
        classes = [int(np.argmax(probs[n]))] if best_class_only else range(1, probs.shape[1])
        for class_id in classes:
            score = float(probs[n, class_id])
            if class_id == 0 or score < config.DETECTION_MIN_CONFIDENCE or score <= 0:
                continue
            box = utils.apply_box_deltas(rois[n:n + 1], deltas[n, class_id:class_id + 1] * config.BBOX_STD_DEV)[0]
            box = np.array([np.clip(box[0], window[0], window[2]), np.clip(box[1], window[1], window[3]),
                            np.clip(box[2], window[0], window[2]), np.clip(box[3], window[1], window[3])])
            candidates.append((box, class_id, score))
    kept = []
    for class_id in sorted({c for _, c, _ in candidates}):
        mine = [(b, s) for b, c, s in candidates if c == class_id]
        boxes = np.array([b for b, _ in mine])
        scores = np.array([s for _, s in mine])
        for index in utils.non_max_suppression(boxes, scores, config.DETECTION_NMS_THRESHOLD):
            kept.append(list(boxes[index]) + [class_id, scores[index]])
    kept.sort(key=lambda row: -row[5])
    out = np.zeros((config.DETECTION_MAX_INSTANCES, 6), np.float32)
    kept = kept[:config.DETECTION_MAX_INSTANCES]
    if kept:
        out[:len(kept)] = np.array(kept)
    return out, len(kept)


def test_normalised_windows_match_numpy_per_image():
    rows = np.stack([meta_row((10, 20, 118, 108)), meta_row((0, 0, 64, 64), shape=(64, 64, 3))])
    ours = normalised_windows_graph(rows).numpy()
    assert np.allclose(ours[0], utils.norm_boxes([10, 20, 118, 108], (128, 128)))
    assert np.allclose(ours[1], [0, 0, 1, 1])


def test_detections_match_brute_force_on_random_inputs():
    config = small_config(DETECTION_MAX_INSTANCES=50)
    layer = DetectionLayer(config)
    rng = np.random.default_rng(0)
    rois, probs, deltas = random_head_outputs(rng, 3, 60, padding=5)
    metas = np.stack([meta_row((0, 0, 128, 128)), meta_row((14, 0, 114, 128)), meta_row((0, 30, 128, 98))])
    ours = layer([rois, probs, deltas, metas]).numpy()
    assert ours.shape == (3, 50, 6)
    suppressed_something = False
    for image in range(3):
        expected, kept = brute_force_detections(rois[image], probs[image], deltas[image], metas[image], config)
        assert kept > 0
        assert np.allclose(ours[image], expected, atol=1e-5)
        candidates = np.sum((probs[image][:, 1:] >= 0.3) & np.any(rois[image] != 0, axis=1)[:, None])
        suppressed_something |= kept < candidates
    assert suppressed_something


def test_max_instances_cut_keeps_the_best_scores():
    config = small_config(DETECTION_MAX_INSTANCES=4, DETECTION_MIN_CONFIDENCE=0.0, DETECTION_NMS_THRESHOLD=0.9)
    rng = np.random.default_rng(1)
    rois, probs, deltas = random_head_outputs(rng, 1, 40)
    ours = DetectionLayer(config)([rois, probs, deltas, meta_row((0, 0, 128, 128))[None]]).numpy()[0]
    expected, kept = brute_force_detections(rois[0], probs[0], deltas[0], meta_row((0, 0, 128, 128)), config)
    assert kept == 4 and np.allclose(ours, expected, atol=1e-5)
    assert np.all(np.diff(ours[:, 5]) <= 0)


def test_matterports_best_class_rule_from_a_confidence_of_one_half():
    """Above 0.5 only an ROI's most likely class can pass, so per-class = Matterport's argmax rule."""
    rng = np.random.default_rng(3)
    rois, probs, deltas = random_head_outputs(rng, 1, 80)
    metas = meta_row((0, 0, 128, 128))
    for confidence in (0.5, 0.7):
        config = small_config(DETECTION_MAX_INSTANCES=80, DETECTION_MIN_CONFIDENCE=confidence)
        ours = DetectionLayer(config)([rois, probs, deltas, metas[None]]).numpy()[0]
        expected, kept = brute_force_detections(rois[0], probs[0], deltas[0], metas, config, best_class_only=True)
        assert kept > 0 and np.allclose(ours, expected, atol=1e-5)


def test_below_one_half_an_roi_gives_every_class_that_passes():
    """A young model's ROI that is mostly background still offers its foreground guesses."""
    config = small_config(DETECTION_MIN_CONFIDENCE=0.05)
    rois = np.array([[[0.2, 0.2, 0.5, 0.5]]], np.float32)
    probs = np.array([[[0.6, 0.25, 0.0, 0.1, 0.05]]], np.float32)     # background is the best class
    ours = DetectionLayer(config)([rois, probs, np.zeros((1, 1, CLASSES, 4), np.float32),
                                   meta_row((0, 0, 128, 128))[None]]).numpy()[0]
    assert np.allclose(ours[:3, 4:], [[1, 0.25], [3, 0.1], [4, 0.05]])
    assert np.allclose(ours[:3, :4], [0.2, 0.2, 0.5, 0.5])
    assert np.all(ours[3:] == 0)


def test_background_and_low_scores_give_only_zero_rows():
    config = small_config()
    rois = np.tile(np.array([0.2, 0.2, 0.5, 0.5], np.float32), (1, 6, 1))
    probs = np.full((1, 6, CLASSES), 0.1, np.float32)
    probs[0, :3, 0] = 0.6        # background wins
    probs[0, 3:, 2] = 0.25       # foreground wins but below DETECTION_MIN_CONFIDENCE
    deltas = np.zeros((1, 6, CLASSES, 4), np.float32)
    ours = DetectionLayer(config)([rois, probs, deltas, meta_row((0, 0, 128, 128))[None]]).numpy()
    assert np.all(ours == 0)


def test_same_box_in_two_classes_is_kept_twice_and_clipped_to_the_window():
    config = small_config()
    rois = np.array([[[0.05, 0.3, 0.5, 0.6], [0.05, 0.3, 0.5, 0.6], [0.06, 0.3, 0.5, 0.6]]], np.float32)
    probs = np.zeros((1, 3, CLASSES), np.float32)
    probs[0, 0, 1], probs[0, 1, 3], probs[0, 2, 1] = 0.9, 0.8, 0.7
    window = (16, 0, 112, 128)   # letterboxed: the picture spans rows 16..111
    ours = DetectionLayer(config)([rois, probs, np.zeros((1, 3, CLASSES, 4), np.float32),
                                   meta_row(window)[None]]).numpy()[0]
    top = 16 / 127
    assert np.allclose(ours[0], [top, 0.3, 0.5, 0.6, 1, 0.9], atol=1e-6)
    assert np.allclose(ours[1], [top, 0.3, 0.5, 0.6, 3, 0.8], atol=1e-6)
    assert np.all(ours[2:] == 0)   # the class-1 near-duplicate is suppressed


def test_inside_keras_model_and_tf_function():
    config = small_config()
    rng = np.random.default_rng(2)
    rois, probs, deltas = random_head_outputs(rng, 2, 30)
    metas = np.stack([meta_row((0, 0, 128, 128)), meta_row((0, 20, 128, 108))])
    inputs = [keras.Input((30, 4)), keras.Input((30, CLASSES)), keras.Input((30, CLASSES, 4)),
              keras.Input((config.IMAGE_META_SIZE,))]
    layer = DetectionLayer(config, name="mrcnn_detection")
    outputs = layer(inputs)
    assert tuple(outputs.shape) == (None, 12, 6)
    model = keras.Model(inputs, outputs)
    with pytest.warns(UserWarning, match="jit_compile"):
        model.jit_compile = True    # refused: the layer's dynamic shapes cannot be XLA-compiled
    assert model.jit_compile is False
    from_model = np.asarray(model.predict_on_batch([rois, probs, deltas, metas]))
    traced = tf.function(lambda *args: layer(list(args)))(rois, probs, deltas, metas).numpy()
    for image in range(2):
        expected, _ = brute_force_detections(rois[image], probs[image], deltas[image], metas[image], config)
        assert np.allclose(from_model[image], expected, atol=1e-5)
        assert np.allclose(traced[image], expected, atol=1e-5)


def test_config_round_trip():
    layer = DetectionLayer(small_config(), name="mrcnn_detection")
    clone = DetectionLayer.from_config(layer.get_config())
    assert (clone.max_instances, clone.min_confidence, clone.nms_threshold) == (12, 0.3, 0.3)
    assert clone.bbox_std_dev == [0.1, 0.1, 0.2, 0.2]
