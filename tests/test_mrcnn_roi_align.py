"""PyramidROIAlign: FPN level rule, input order kept, crops equal a numpy bilinear oracle."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import utils
from mrcnn.meta import compose_image_meta
from mrcnn.roi_align import PackedPyramidROIAlign, PyramidROIAlign, roi_pyramid_levels


def make_meta(height, width, num_classes=3):
    return compose_image_meta(0, (height, width, 3), (height, width, 3), (0, 0, height, width), 1.0,
                              np.ones(num_classes))


def square_boxes(sides, image_side, corner=10):
    """Normalised boxes of the given pixel sides, top-left at `corner`."""
    pixel = np.array([[corner, corner, corner + s, corner + s] for s in sides], dtype=np.float32)
    return utils.norm_boxes(pixel, (image_side, image_side))


def crop_and_resize_oracle(feature_map, box, crop_shape):
    """Bilinear sampling as the tf.image.crop_and_resize docs define it (extrapolation 0)."""
    height, width, channels = feature_map.shape
    y1, x1, y2, x2 = [float(v) for v in box]
    out = np.zeros(tuple(crop_shape) + (channels,), dtype=np.float64)

    def sample_points(start, end, size, count):
        if count == 1:
            return [0.5 * (start + end) * (size - 1)]
        step = (end - start) * (size - 1) / (count - 1)
        return [start * (size - 1) + i * step for i in range(count)]

    for i, y in enumerate(sample_points(y1, y2, height, crop_shape[0])):
        for j, x in enumerate(sample_points(x1, x2, width, crop_shape[1])):
            if y < 0 or y > height - 1 or x < 0 or x > width - 1:
                continue
            top, left = math.floor(y), math.floor(x)
            bottom, right = math.ceil(y), math.ceil(x)
            dy, dx = y - top, x - left
            upper = feature_map[top, left] * (1 - dx) + feature_map[top, right] * dx
            lower = feature_map[bottom, left] * (1 - dx) + feature_map[bottom, right] * dx
            out[i, j] = upper * (1 - dy) + lower * dy
    return out


def test_level_rule_for_known_pixel_sizes():
    boxes = square_boxes([224, 112, 56, 448, 2000, 28, 160, 320], 1024)[None]
    levels = roi_pyramid_levels(boxes, np.array([[1024, 1024, 3]]))
    # 28 -> log2(1/8) = -3 -> clipped to 2; 160 -> -0.49 -> 4; 320 -> +0.51 -> 5
    assert np.asarray(levels)[0].tolist() == [4, 3, 2, 5, 5, 2, 4, 5]


def test_level_uses_each_images_own_size():
    # The same normalised box is 224 px in a 1024 image and 112 px in a 512 image.
    box = np.array([0.1, 0.1, 0.1 + 224 / 1024, 0.1 + 224 / 1024], dtype=np.float32)
    boxes = np.stack([box[None], box[None]])
    levels = roi_pyramid_levels(boxes, np.array([[1024, 1024, 3], [512, 512, 3]]))
    assert np.asarray(levels)[:, 0].tolist() == [4, 3]


def test_degenerate_box_goes_to_finest_level():
    boxes = np.array([[[0.5, 0.5, 0.5, 0.5], [0.6, 0.6, 0.4, 0.7]]], dtype=np.float32)
    assert np.asarray(roi_pyramid_levels(boxes, np.array([[1024, 1024, 3]])))[0].tolist() == [2, 2]


def level_marked_maps(batch, side=8):
    """P2..P5 whose every value is the level number, so a crop says where it came from."""
    return [np.full((batch, side, side, 2), float(level), dtype=np.float32) for level in (2, 3, 4, 5)]


def test_output_keeps_input_order_and_zeros_padding():
    sides = [[448, 56, 224, 112, 2000], [112, 448, 56, 0, 224]]        # 0: padding row
    expected = [[5, 2, 4, 3, 5], [3, 5, 2, 0, 4]]
    boxes = np.stack([square_boxes(s, 1024) for s in sides])
    boxes[1, 3] = 0.0
    meta = np.stack([make_meta(1024, 1024)] * 2)
    layer = PyramidROIAlign((3, 3))
    pooled = np.asarray(layer([boxes, meta] + level_marked_maps(2)))
    assert pooled.shape == (2, 5, 3, 3, 2)
    for b in range(2):
        for n in range(5):
            # the top-left sample is inside every box's map (the 2000 px box leaves the image)
            assert np.all(pooled[b, n, 0, 0] == expected[b][n]), (b, n, pooled[b, n, 0, 0, 0])
    assert np.all(pooled[1, 3] == 0.0)


def test_crops_match_bilinear_oracle():
    rng = np.random.default_rng(3)
    batch, count, pool = 2, 6, (5, 3)
    maps = [rng.normal(size=(batch, side, side, 4)).astype(np.float32) for side in (32, 16, 8, 4)]
    pixel = rng.uniform(0, 900, size=(batch, count, 2))
    sizes = rng.uniform(30, 700, size=(batch, count, 2))
    boxes = utils.norm_boxes(np.concatenate([pixel, pixel + sizes], axis=-1).reshape(-1, 4),
                             (1024, 1024)).reshape(batch, count, 4)
    boxes[0, 0] = [-0.1, 0.2, 0.4, 1.2]        # partly outside the image: extrapolated zeros
    meta = np.stack([make_meta(1024, 1024)] * batch)
    pooled = np.asarray(PyramidROIAlign(pool)([boxes, meta] + maps))
    levels = np.asarray(roi_pyramid_levels(boxes, np.array([[1024, 1024, 3]] * batch)))
    assert len(set(levels.ravel().tolist())) >= 3, "test boxes should span several levels"
    for b in range(batch):
        for n in range(count):
            oracle = crop_and_resize_oracle(maps[levels[b, n] - 2][b], boxes[b, n], pool)
            np.testing.assert_allclose(pooled[b, n], oracle, atol=1e-5)


def cell_centre_maps(image_side, batch=1):
    """P2..P5 whose two channels hold the image row and column (pixel index, the centre of pixel p
    being p) of each cell's centre: cell k of a stride-s map covers pixels s k .. s k + s - 1."""
    maps = []
    for stride in (4, 8, 16, 32):
        centres = stride * np.arange(image_side // stride) + (stride - 1) / 2
        rows, cols = np.meshgrid(centres, centres, indexing="ij")
        maps.append(np.broadcast_to(np.stack([rows, cols], -1), (batch,) + rows.shape + (2,)).astype(np.float32))
    return maps


@pytest.mark.parametrize("packed", [False, True])
def test_aligned_reads_each_box_at_its_own_pixel_centres_on_every_level(packed):
    """Bilinear reading of a map that is linear in the image position gives the position itself:
    "pixel_centres" must read row i of a (y1, x1, y2, x2) box at pixel y1 + i (y2 - 1 - y1) / (n - 1),
    the grid of the mask targets and unmold_mask, on every level. "normalised_box" misses by more than
    a pixel on the coarse levels."""
    pool = (5, 4)
    pixel = np.array([[300, 200, 340, 230], [100, 500, 196, 610], [400, 380, 600, 560], [60, 90, 660, 750]],
                     np.float32)
    boxes = utils.norm_boxes(pixel, (1024, 1024))[None].astype(np.float32)
    meta = make_meta(1024, 1024)[None]
    levels = np.asarray(roi_pyramid_levels(boxes, np.array([[1024, 1024, 3]])))[0]
    assert sorted(levels.tolist()) == [2, 3, 4, 5]

    def read(alignment):
        if packed:
            return np.asarray(PackedPyramidROIAlign(pool, alignment)(
                [boxes, np.zeros((1, 4), np.int32), meta] + cell_centre_maps(1024)))[0]
        return np.asarray(PyramidROIAlign(pool, alignment)([boxes, meta] + cell_centre_maps(1024)))[0]

    aligned, matterport = read("pixel_centres"), read("normalised_box")
    for n, (y1, x1, y2, x2) in enumerate(pixel):
        rows = np.linspace(y1, y2 - 1, pool[0])[:, None].repeat(pool[1], 1)
        cols = np.linspace(x1, x2 - 1, pool[1])[None, :].repeat(pool[0], 0)
        np.testing.assert_allclose(aligned[n, ..., 0], rows, atol=2e-3)
        np.testing.assert_allclose(aligned[n, ..., 1], cols, atol=2e-3)
        if levels[n] >= 4:
            assert np.abs(matterport[n, ..., 0] - rows).max() > 1.0


def test_no_gradient_into_boxes_but_into_features():
    boxes = tf.constant(square_boxes([56, 224], 1024)[None])
    meta = tf.constant(make_meta(1024, 1024)[None])
    maps = [tf.constant(m) for m in level_marked_maps(1)]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(boxes)
        for m in maps:
            tape.watch(m)
        total = tf.reduce_sum(PyramidROIAlign((2, 2))([boxes, meta] + maps))
    assert tape.gradient(total, boxes) is None
    assert float(tf.reduce_sum(tape.gradient(total, maps[0]))) == pytest.approx(4 * 2)   # P2 box: 2x2 cells x 2 ch
    assert float(tf.reduce_sum(tape.gradient(total, maps[2]))) == pytest.approx(4 * 2)   # P4 box


def test_inside_keras_model_and_tf_function():
    boxes = np.stack([square_boxes([448, 56, 224, 112], 1024)] * 2)
    boxes[0, 2] = 0.0
    meta = np.stack([make_meta(1024, 1024)] * 2)
    maps = level_marked_maps(2)
    eager = np.asarray(PyramidROIAlign((3, 3))([boxes, meta] + maps))

    inputs = [keras.Input((None, 4)), keras.Input((meta.shape[1],))] + \
             [keras.Input((None, None, 2)) for _ in range(4)]
    layer = PyramidROIAlign((3, 3), name="roi_align_test")
    output = layer(inputs)
    assert tuple(output.shape) == (None, None, 3, 3, 2)
    model = keras.Model(inputs, output)
    np.testing.assert_array_equal(model.predict([boxes, meta] + maps, verbose=0), eager)

    graph = tf.function(lambda *args: layer(list(args)))
    np.testing.assert_array_equal(np.asarray(graph(boxes, meta, *maps)), eager)

    clone = PyramidROIAlign.from_config(layer.get_config())
    assert clone.pool_shape == (3, 3) and clone.name == "roi_align_test" and clone.alignment == "normalised_box"
    assert PyramidROIAlign.from_config(PyramidROIAlign((3, 3), "pixel_centres").get_config()).alignment == "pixel_centres"


def test_bad_arguments():
    with pytest.raises(ValueError, match="pool_shape"):
        PyramidROIAlign((7,))
    with pytest.raises(ValueError, match="alignment"):
        PyramidROIAlign((7, 7), "centred")
    with pytest.raises(ValueError, match="P2..P5"):
        PyramidROIAlign((2, 2))([np.zeros((1, 1, 4), np.float32), make_meta(64, 64)[None]]
                                + level_marked_maps(1)[:3])


@pytest.mark.parametrize("alignment", ["normalised_box", "pixel_centres"])
def test_packed_rows_equal_the_batched_layers_rows(alignment):
    """PackedPyramidROIAlign on rows picked from several images = PyramidROIAlign's rows for them."""
    rng = np.random.default_rng(5)
    batch, count, pool = 2, 5, (4, 4)
    maps = [rng.normal(size=(batch, side, side, 3)).astype(np.float32) for side in (32, 16, 8, 4)]
    corners = rng.uniform(0, 600, size=(batch, count, 2))
    sizes = rng.uniform(20, 900, size=(batch, count, 2))
    boxes = utils.norm_boxes(np.concatenate([corners, corners + sizes], axis=-1).reshape(-1, 4),
                             (1024, 1024)).reshape(batch, count, 4).astype(np.float32)
    boxes[1, 3] = 0.0                                   # padding: a zero patch either way
    # The second image is 512 px: the same normalised box is read from a finer level there.
    meta = np.stack([make_meta(1024, 1024), make_meta(512, 512)])
    batched = np.asarray(PyramidROIAlign(pool, alignment)([boxes, meta] + maps))

    picked = [(1, 3), (0, 4), (1, 0), (0, 0), (1, 1), (0, 2)]
    packed_boxes = np.stack([boxes[b, n] for b, n in picked])[None]
    image_ids = np.array([[b for b, _ in picked]], np.int32)
    packed = np.asarray(PackedPyramidROIAlign(pool, alignment)([packed_boxes, image_ids, meta] + maps))
    assert packed.shape == (1, len(picked)) + pool + (3,)
    for row, (b, n) in enumerate(picked):
        np.testing.assert_array_equal(packed[0, row], batched[b, n])
    assert not packed[0, 0].any() and packed[0, 1:].any(axis=(1, 2, 3)).all()
