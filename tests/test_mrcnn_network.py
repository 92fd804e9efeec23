"""mrcnn.network's small graph layers (moved from test_mrcnn_model.py)."""
import numpy as np
import pytest

from mrcnn import losses
from mrcnn.network import PositiveImageIds, PositiveRows


def test_positive_rows_keep_the_mask_loss_of_the_padded_rows():
    """The mask head on the packed positive rows gives the loss it gave on every (B, T) row."""
    rng = np.random.default_rng(7)
    class_ids = np.array([[2, 1, 3, 0, 0, 0], [1, 0, 0, 0, 0, 0]], np.int32)
    predicted = rng.uniform(0.02, 0.98, size=(2, 6, 4, 4, 4)).astype(np.float32)
    targets = rng.integers(0, 2, size=(2, 6, 4, 4)).astype(np.float32)
    padded = float(losses.mrcnn_mask_loss_graph(targets, class_ids, predicted))

    pack = PositiveRows()
    packed_ids = np.asarray(pack([class_ids, class_ids]))
    packed = float(losses.mrcnn_mask_loss_graph(pack([class_ids, targets]), packed_ids,
                                                pack([class_ids, predicted])))
    assert packed_ids.tolist() == [[2, 1, 3, 1]]
    assert np.asarray(PositiveImageIds()(class_ids)).tolist() == [[0, 0, 0, 1]]
    # Oracle: binary cross-entropy of each positive's own class channel, by brute force.
    terms = [-(t * np.log(p) + (1 - t) * np.log(1 - p))
             for b, n in zip(*np.nonzero(class_ids))
             for t, p in [(targets[b, n], predicted[b, n, :, :, class_ids[b, n]].astype(np.float64))]]
    assert padded == pytest.approx(np.mean(terms), rel=1e-6)
    assert packed == pytest.approx(padded, rel=1e-6)


def test_positive_rows_of_a_batch_without_positives_is_one_zero_row():
    class_ids = np.zeros((2, 3), np.int32)
    values = np.ones((2, 3, 2, 2), np.float32)
    rows = np.asarray(PositiveRows()([class_ids, values]))
    assert rows.shape == (1, 1, 2, 2) and not rows.any()
    assert np.asarray(PositiveImageIds()(class_ids)).tolist() == [[0]]
    assert float(losses.mrcnn_mask_loss_graph(rows, np.zeros((1, 1), np.int32),
                                              np.full((1, 1, 2, 2, 3), 0.5, np.float32))) == 0.0
