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

Both models run in their own process with oneDNN's graph rewrites off (EXACT_MATH). On x86 CPUs
those rewrites (on by default) fuse ops and reorder sums, differently in Keras 3's graph and in
tf-keras's and differently from one CPU to another: the RPN's outputs then differ by round-off
(about 1e-5 of their scale), and a proposal on the image's edge turns that into a different crop
(crop_and_resize reads 0 just past the last pixel), so the comparison would test the CPU. With the
rewrites off the same function gives the same bits, and a difference is the engine's.
"""
import glob
import os
import subprocess
import sys
from pathlib import Path

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
EXACT_MATH = {"TF_ENABLE_ONEDNN_OPTS": "0"}   # read when TensorFlow loads: hence the processes
DETECT_KEYS = ("rois", "class_ids", "scores", "masks")
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


def our_outputs(workdir):
    """Our side, run in a process of its own with EXACT_MATH: load Matterport's weight file, then write
    what the tests compare (the load report, molded inputs, graph tensors fed Matterport's molded
    images, detect()'s results) to workdir/ours_out.npz and ours_report.txt."""
    workdir = Path(workdir)
    with np.load(workdir / "reference_out.npz") as data:
        reference = {key: data[key] for key in data.files}
    with np.load(workdir / "reference_images.npz") as data:
        images = [data[f"image_{i}"] for i in range(len(data.files))]
    model = modellib.MaskRCNN("inference", ReferenceConfig(), str(workdir / "logs"))
    report = model.load_weights(str(workdir / "matterport.h5"), by_name=True)
    outputs = [(name, model.keras_model.get_layer(name).output) for name in TENSORS]
    found = {}
    for i, image in enumerate(images):
        molded, metas, windows = model.mold_inputs([image])
        found.update({f"molded_{i}": molded[0], f"meta_{i}": metas[0], f"window_{i}": np.asarray(windows[0])})
        tensors = model.run_graph(reference[f"molded_{i}"][None], outputs, image_metas=reference[f"meta_{i}"][None],
                                  verbose=0)
        found.update({f"{name}_{i}": value[0] for name, value in tensors.items()})
    for i, result in enumerate(model.detect(images)):
        found.update({f"detect_{key}_{i}": result[key] for key in DETECT_KEYS})
    np.savez(workdir / "ours_out.npz", **found)
    (workdir / "ours_report.txt").write_text(str(report))


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """(images, Matterport's arrays, ours, our load report) for the same weight file and images."""
    try:
        matterport_reference.install()
    except matterport_reference.ReferenceUnavailable as error:
        pytest.skip(f"Matterport's reference is not available: {error}")
    workdir = tmp_path_factory.mktemp("matterport")
    images = read_photos() + synthetic_images()
    reference = matterport_reference.run(
        dict(config=SETTINGS, seed=3, scale_weights=SCALE_WEIGHTS, shift_bias=SHIFT_BIAS, weights_out=str(workdir / "matterport.h5"),
             layers=list(TENSORS), detect=True), workdir, images, env=EXACT_MATH)
    repo = str(matterport_reference.REPO)
    script = "import sys; from tests.test_matterport_equivalence import our_outputs; our_outputs(sys.argv[1])"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore", PYTHONPATH=repo, **EXACT_MATH)
    done = subprocess.run([sys.executable, "-c", script, str(workdir)], capture_output=True, text=True, timeout=900,
                          env=env, cwd=repo)
    assert done.returncode == 0, "our side failed:\n" + "\n".join(done.stderr.strip().splitlines()[-15:])
    with np.load(workdir / "ours_out.npz") as data:
        ours = {key: data[key] for key in data.files}
    return images, reference, ours, (workdir / "ours_report.txt").read_text()


def test_matterport_weight_file_loads_whole(compared):
    _, _, _, report = compared
    assert "0 missing from the file, 0 in the file but not the model, 0 skipped" in report, report


def test_molded_images_equal_matterports(compared):
    images, reference, ours, _ = compared
    for i in range(len(images)):
        assert np.abs(ours[f"molded_{i}"] - reference[f"molded_{i}"]).max() <= MOLDED_TOLERANCE, i
        np.testing.assert_allclose(ours[f"meta_{i}"], reference[f"meta_{i}"], rtol=0, atol=1e-6)
        assert tuple(ours[f"window_{i}"]) == tuple(reference[f"window_{i}"])


def graph_differences(compared):
    """(image, tensor) -> (max |ours - Matterport's|, Matterport's max |value|), both fed Matterport's molded image."""
    images, reference, ours, _ = compared
    found = {}
    for i in range(len(images)):
        for name in TENSORS:
            value, theirs = ours[f"{name}_{i}"], reference[f"{name}_{i}"]
            assert value.shape == theirs.shape, (name, value.shape, theirs.shape)
            found[i, name] = (float(np.abs(value - theirs).max()), float(np.abs(theirs).max()))
    return found


def test_graph_tensors_equal_matterports(compared):
    differences = graph_differences(compared)
    for (i, name), (difference, scale) in sorted(differences.items()):
        print(f"image {i} {name:22s} max |difference| {difference:.3g} of scale {scale:.3g}")
    bad = {key: value for key, value in differences.items() if value[0] > TENSOR_TOLERANCE * max(value[1], 1e-6)}
    assert not bad, bad


def test_detect_equals_matterports(compared):
    images, reference, ours, _ = compared
    results = [{key: ours[f"detect_{key}_{i}"] for key in DETECT_KEYS} for i in range(len(images))]
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
