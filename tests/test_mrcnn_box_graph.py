"""The graph box functions agree with their numpy references in mrcnn/utils.py."""
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import box_graph, utils


def random_boxes(rng, count, size=1.0, min_side=0.01):
    """Valid boxes [y1, x1, y2, x2] inside [0, size]^2 with sides of at least min_side."""
    y1x1 = rng.uniform(0, size * 0.8, (count, 2))
    sides = rng.uniform(min_side, size * 0.5, (count, 2))
    return np.concatenate([y1x1, y1x1 + sides], axis=1).astype(np.float32)


def test_apply_box_deltas_matches_numpy_eager_and_in_tf_function():
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 50)
    deltas = rng.normal(0, 0.3, (50, 4)).astype(np.float32)
    expected = utils.apply_box_deltas(boxes, deltas)
    assert np.allclose(box_graph.apply_box_deltas_graph(boxes, deltas).numpy(), expected, atol=1e-6)
    traced = tf.function(box_graph.apply_box_deltas_graph)
    assert np.allclose(traced(tf.constant(boxes), tf.constant(deltas)).numpy(), expected, atol=1e-6)
    # Leading batch axes are kept.
    batched = box_graph.apply_box_deltas_graph(boxes.reshape(5, 10, 4), deltas.reshape(5, 10, 4)).numpy()
    assert np.allclose(batched.reshape(50, 4), expected, atol=1e-6)


def test_box_refinement_matches_numpy_and_inverts_apply():
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 40, size=100.0, min_side=1.0)
    gt = random_boxes(rng, 40, size=100.0, min_side=1.0)
    deltas = box_graph.box_refinement_graph(boxes, gt).numpy()
    assert np.allclose(deltas, utils.box_refinement(boxes, gt), atol=1e-5)
    moved = box_graph.apply_box_deltas_graph(boxes, deltas).numpy()
    assert np.allclose(moved, gt, atol=1e-3)


def test_clip_boxes_keeps_every_coordinate_in_the_window():
    rng = np.random.default_rng(2)
    boxes = rng.uniform(-0.5, 1.5, (200, 4)).astype(np.float32)
    window = np.array([0.1, 0.2, 0.8, 0.9], np.float32)
    clipped = box_graph.clip_boxes_graph(boxes, window).numpy()
    expected = np.stack([np.clip(boxes[:, 0], 0.1, 0.8), np.clip(boxes[:, 1], 0.2, 0.9),
                         np.clip(boxes[:, 2], 0.1, 0.8), np.clip(boxes[:, 3], 0.2, 0.9)], axis=1)
    assert np.array_equal(clipped, expected)
    inside = random_boxes(rng, 20, size=0.5) + 0.2
    assert np.array_equal(box_graph.clip_boxes_graph(inside, [0.0, 0.0, 1.0, 1.0]).numpy(), inside)
    # One window per image broadcasts over that image's boxes.
    windows = np.array([[[0, 0, 0.5, 0.5]], [[0.5, 0.5, 1, 1]]], np.float32)
    per_image = box_graph.clip_boxes_graph(np.stack([boxes[:10], boxes[10:20]]), windows).numpy()
    assert per_image[0].max() <= 0.5 and per_image[1].min() >= 0.5


def test_overlaps_match_numpy_including_disjoint_and_degenerate_boxes():
    rng = np.random.default_rng(3)
    boxes1 = random_boxes(rng, 30)
    boxes2 = np.concatenate([random_boxes(rng, 25), boxes1[:3],
                             np.zeros((2, 4), np.float32)])  # identical and empty boxes
    ours = box_graph.overlaps_graph(boxes1, boxes2).numpy()
    expected = utils.compute_overlaps(boxes1, boxes2)
    assert ours.shape == (30, 30)
    assert np.allclose(ours, expected, atol=1e-5)
    assert np.allclose(np.diag(ours[:3, 25:28]), 1.0)
    assert np.all(ours[:, 28:] == 0) and np.isfinite(ours).all()
    both_empty = box_graph.overlaps_graph(np.zeros((2, 4)), np.zeros((3, 4))).numpy()
    assert np.array_equal(both_empty, np.zeros((2, 3)))


def test_overlaps_with_no_boxes_has_empty_shape():
    assert box_graph.overlaps_graph(np.zeros((0, 4)), random_boxes(np.random.default_rng(4), 3)).shape == (0, 3)


def test_trim_zeros_matches_numpy_and_reports_the_mask():
    boxes = np.array([[0.1, 0.1, 0.2, 0.2], [0, 0, 0, 0], [0, 0.3, 0.5, 0.6], [0, 0, 0, 0]], np.float32)
    kept, non_zero = box_graph.trim_zeros_graph(tf.constant(boxes))
    assert np.array_equal(kept.numpy(), utils.trim_zeros(boxes))
    assert non_zero.numpy().tolist() == [True, False, True, False]


def test_batch_slice_stacks_per_image_results():
    values = tf.constant(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    offsets = tf.constant([10.0, 20.0])
    single = box_graph.batch_slice([values, offsets], lambda v, o: tf.reduce_sum(v) + o, 2)
    assert np.allclose(single.numpy(), [66 + 10, 210 + 20])
    pair = box_graph.batch_slice(values, lambda v: [v[0], tf.reduce_max(v)], 2, names=["first", "top"])
    assert isinstance(pair, list) and pair[0].shape == (2, 4)
    assert pair[1].numpy().tolist() == [11.0, 23.0]
    with pytest.raises(ValueError, match="names"):
        box_graph.batch_slice(values, lambda v: [v, v], 2, names=["one"])
