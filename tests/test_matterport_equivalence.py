"""Same weights, same results: our engine against Matterport's original (PyPI mrcnn==0.2).

Matterport's model runs in its own process (tests/matterport_reference.py) with tf-keras, builds
its inference network with random weights (seeded) and saves them with Keras 2's save_weights,
the HDF5 layout every Matterport .h5 file has. We load that file by name and compare, image by
image (two real photos where ../shared/fixtures has them, and synthetic ones):

- the molded image (resize and mean subtraction) to 1e-5;
- the tensors of the inference graph, fed Matterport's molded image: the RPN's class
  probabilities and box deltas, the proposals, both ROIAligns, the box head's class
  probabilities and deltas, the detections and the mask head, each to 1e-4 of its own scale;
- detect(): the same boxes (+-1 px), classes, scores (1e-4) and masks (IoU >= 0.99).

Every setting is Matterport's default, but for the class count, backbone and image size that keep
the test small (ResNet-50, 256 px, 14 classes: ModaNet's 13 and the background).
"""
import glob

import numpy as np
import pytest

from mrcnn import model as modellib
from mrcnn import utils
from mrcnn.config import Config
from tests import matterport_reference

FIXTURE_PHOTOS = sorted(glob.glob(str(matterport_reference.REPO.parent / "shared" / "fixtures" / "photos" / "*.jpg")))

SETTINGS = dict(NAME="reference", NUM_CLASSES=14, BACKBONE="resnet50", IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256,
                GPU_COUNT=1, IMAGES_PER_GPU=1)

# Matterport's layer name -> what it holds (our layers carry the same names).
TENSORS = {
    "rpn_class": "RPN: anchor foreground/background probabilities",
    "rpn_bbox": "RPN: anchor box deltas",
    "ROI": "proposals (rpn_rois)",
    "roi_align_classifier": "ROIAlign for the box head",
    "mrcnn_class": "box head: class probabilities",
    "mrcnn_bbox": "box head: per-class box deltas",
    "mrcnn_detection": "detections [y1, x1, y2, x2, class, score]",
    "roi_align_mask": "ROIAlign for the mask head",
    "mrcnn_mask": "mask head: per-class masks",
}
# Random weights saturate the heads: every class score 1.0 (the detections' order is then a tie)
# and every mask pixel far from 0.5. Matterport's process scales these layers' weights before
# saving them, so scores spread and masks have edges, as a trained model's do.
SCALE_WEIGHTS = {"mrcnn_class_logits": 0.3, "mrcnn_mask": 0.05}
SHIFT_BIAS = {"mrcnn_mask": 0.3}
MOLDED_TOLERANCE = 1e-5
TENSOR_TOLERANCE = 1e-4         # of the tensor's largest magnitude
SCORE_TOLERANCE = 1e-4
BOX_PIXELS = 1
MASK_IOU = 0.99


class ReferenceConfig(Config):
    pass


for _name, _value in SETTINGS.items():
    setattr(ReferenceConfig, _name, _value)


def synthetic_images():
    """A noise image and a smooth one with shapes, of sizes that need shrinking and enlarging."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:180, 0:240]
    smooth = np.stack([(xx * 255 // 239), (yy * 255 // 179), ((xx + yy) % 256)], axis=-1).astype(np.uint8)
    smooth[40:120, 60:150] = (200, 30, 60)
    smooth[((yy - 120) ** 2 + (xx - 180) ** 2) < 900] = (20, 180, 40)
    return [noise, smooth]


def read_photos():
    return [utils.read_image_rgb(path) for path in FIXTURE_PHOTOS]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """Matterport's arrays and our model loaded from its weight file, for the same images."""
    try:
        matterport_reference.install()
    except matterport_reference.ReferenceUnavailable as error:
        pytest.skip(f"Matterport's reference is not available: {error}")
    workdir = tmp_path_factory.mktemp("matterport")
    images = read_photos() + synthetic_images()
    reference = matterport_reference.run(
        dict(config=SETTINGS, seed=3, scale_weights=SCALE_WEIGHTS, shift_bias=SHIFT_BIAS, weights_out=str(workdir / "matterport.h5"),
             layers=list(TENSORS), detect=True), workdir, images)
    model = modellib.MaskRCNN("inference", ReferenceConfig(), str(workdir / "logs"))
    report = model.load_weights(str(workdir / "matterport.h5"), by_name=True)
    return images, reference, model, report


def test_matterport_weight_file_loads_whole(compared):
    _, _, model, report = compared
    assert "0 missing from the file, 0 in the file but not the model, 0 skipped" in str(report), report


def test_molded_images_equal_matterports(compared):
    images, reference, model, _ = compared
    for i, image in enumerate(images):
        molded, metas, windows = model.mold_inputs([image])
        assert np.abs(molded[0] - reference[f"molded_{i}"]).max() <= MOLDED_TOLERANCE, i
        np.testing.assert_allclose(metas[0], reference[f"meta_{i}"], rtol=0, atol=1e-6)
        assert tuple(windows[0]) == tuple(reference[f"window_{i}"])


def graph_differences(compared):
    """(image, tensor) -> (max |ours - Matterport's|, Matterport's max |value|), both fed Matterport's molded image."""
    images, reference, model, _ = compared
    outputs = [(name, model.keras_model.get_layer(name).output) for name in TENSORS]
    found = {}
    for i in range(len(images)):
        ours = model.run_graph(reference[f"molded_{i}"][None], outputs, image_metas=reference[f"meta_{i}"][None])
        for name, value in ours.items():
            theirs = reference[f"{name}_{i}"]
            assert value[0].shape == theirs.shape, (name, value[0].shape, theirs.shape)
            found[i, name] = (float(np.abs(value[0] - theirs).max()), float(np.abs(theirs).max()))
    return found


def test_graph_tensors_equal_matterports(compared):
    differences = graph_differences(compared)
    for (i, name), (difference, scale) in sorted(differences.items()):
        print(f"image {i} {name:22s} max |difference| {difference:.3g} of scale {scale:.3g}")
    bad = {key: value for key, value in differences.items() if value[0] > TENSOR_TOLERANCE * max(value[1], 1e-6)}
    assert not bad, bad


def test_detect_equals_matterports(compared):
    images, reference, model, _ = compared
    results = model.detect(images)
    scores = np.concatenate([r["scores"] for r in results])
    assert len(np.unique(scores)) > len(scores) // 2, "scores tie: the comparison of their order is void"
    pixels = [int(r["masks"].sum()) for r in results]
    print("mask pixels per image", pixels)
    assert sum(pixels) > 10000, "masks (nearly) empty: nothing to compare"
    for i, result in enumerate(results):
        theirs = {key: reference[f"detect_{key}_{i}"] for key in ("rois", "class_ids", "scores", "masks")}
        assert len(result["rois"]) == len(theirs["rois"]) > 0, (i, len(result["rois"]), len(theirs["rois"]))
        np.testing.assert_array_equal(result["class_ids"], theirs["class_ids"])
        assert np.abs(result["rois"] - theirs["rois"]).max() <= BOX_PIXELS, i
        assert np.abs(result["scores"] - theirs["scores"]).max() <= SCORE_TOLERANCE, i
        ours_masks, their_masks = result["masks"], theirs["masks"].astype(bool)
        assert ours_masks.shape == their_masks.shape
        both = (ours_masks & their_masks).sum(axis=(0, 1))
        either = (ours_masks | their_masks).sum(axis=(0, 1))
        iou = np.where(either > 0, both / np.maximum(either, 1), 1.0)
        assert iou.min() >= MASK_IOU, (i, float(iou.min()), int(np.argmin(iou)))
