"""Image meta rows and graph box normalisation agree with their numpy twins."""
import numpy as np

from mrcnn import meta, utils
from mrcnn.config import Config


def test_meta_round_trip():
    row = meta.compose_image_meta(7, (600, 400, 3), (1024, 1024, 3), (0, 171, 1024, 853), 1.7067, [1, 1, 0, 1])
    assert row.shape == (12 + 4,)
    parsed = meta.parse_image_meta(row[None])
    assert parsed["image_id"][0] == 7
    assert parsed["original_image_shape"][0].tolist() == [600, 400, 3]
    assert parsed["image_shape"][0].tolist() == [1024, 1024, 3]
    assert parsed["window"][0].tolist() == [0, 171, 1024, 853]
    assert np.isclose(parsed["scale"][0], 1.7067)
    assert parsed["active_class_ids"][0].tolist() == [1, 1, 0, 1]
    graph = meta.parse_image_meta_graph(row[None])
    assert np.allclose(np.asarray(graph["window"]), parsed["window"])


def test_meta_size_matches_config():
    config = Config(NAME="t", NUM_CLASSES=5)
    row = meta.compose_image_meta(0, (1, 1, 3), (1, 1, 3), (0, 0, 1, 1), 1.0, np.zeros(5))
    assert row.shape[0] == config.IMAGE_META_SIZE


def test_mold_unmold():
    config = Config(NAME="t")
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    molded = meta.mold_image(image, config)
    assert molded.dtype == np.float32 and np.allclose(molded.mean((0, 1)), image.mean((0, 1)) - config.MEAN_PIXEL, atol=1e-3)
    assert np.array_equal(meta.unmold_image(molded, config), image)


def test_backbone_shapes():
    config = Config(NAME="t", IMAGE_MAX_DIM=256, IMAGE_MIN_DIM=256)
    shapes = meta.compute_backbone_shapes(config, (256, 192, 3))
    assert shapes.tolist() == [[64, 48], [32, 24], [16, 12], [8, 6], [4, 3]]


def test_graph_box_normalisation_matches_numpy():
    rng = np.random.default_rng(1)
    y1x1 = rng.integers(0, 100, (20, 2))
    boxes = np.concatenate([y1x1, y1x1 + rng.integers(1, 50, (20, 2))], axis=1).astype(np.float32)
    shape = (160, 120)
    ours = np.asarray(meta.norm_boxes_graph(boxes, np.array(shape)))
    assert np.allclose(ours, utils.norm_boxes(boxes, shape), atol=1e-6)
    back = np.asarray(meta.denorm_boxes_graph(ours, np.array(shape)))
    assert np.array_equal(back, utils.denorm_boxes(ours, shape))
    assert np.array_equal(back, boxes.astype(np.int32))
