"""MaskRCNN's public API: build, train a few steps, checkpoints and resume, detect, unmold."""
import csv
from pathlib import Path

import keras
import matplotlib
import numpy as np
import pytest

from mrcnn import utils, visualize
from mrcnn.config import Config
from mrcnn.model import LAYER_REGEX, MaskRCNN
from mrcnn.samples.shapes import CLASS_NAMES, ShapesDataset

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "photos"
matplotlib.use("Agg")


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 1 + 3
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
    BACKBONE = "resnet18"
    TRAIN_BN = True
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 64
    RPN_ANCHOR_SCALES = (8, 16, 24, 32, 48)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    PRE_NMS_LIMIT = 500
    POST_NMS_ROIS_TRAINING = 50
    POST_NMS_ROIS_INFERENCE = 30
    TRAIN_ROIS_PER_IMAGE = 12
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    MAX_GT_INSTANCES = 5
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1
    DETECTION_MIN_CONFIDENCE = 0.0


@pytest.fixture(scope="module")
def shapes():
    dataset = ShapesDataset()
    dataset.load_shapes(4, size=64, seed=1)
    dataset.prepare()
    return dataset


def test_train_checkpoints_and_resume_counting_on(tmp_path, shapes):
    config = TinyConfig(KEEP_CHECKPOINTS=1)
    model = MaskRCNN("training", config, tmp_path)
    clipping = []

    class RecordClipping(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            clipping.append((self.model.optimizer.clipnorm, self.model.optimizer.global_clipnorm))

    model.train(shapes, shapes, learning_rate=0.001, epochs=1, layers="heads", verbose=0, seed=0,
                custom_callbacks=[RecordClipping()])
    assert clipping == [(config.GRADIENT_CLIP_NORM, None)]     # Matterport's rule: each gradient on its own
    first = Path(model.find_last())
    assert first.name == "mask_rcnn_tiny_0001.h5" and first.parent.parent == tmp_path

    again = MaskRCNN("training", config, tmp_path)
    again.load_weights(again.find_last(), by_name=True)
    assert again.epoch == 1 and again.log_dir == str(first.parent)
    again.train(shapes, shapes, learning_rate=0.001, epochs=2, layers="all", verbose=0, seed=0)
    assert Path(again.find_last()) == first.parent / "mask_rcnn_tiny_0002.h5"
    assert not first.exists()                                   # KEEP_CHECKPOINTS = 1

    with open(first.parent / "training_log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    for name in ("loss", "rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
                 "mrcnn_mask_loss"):
        assert np.isfinite(float(rows[-1][name])) and np.isfinite(float(rows[-1]["val_" + name]))
    fig = visualize.plot_loss(first.parent / "training_log.csv")
    fig.savefig(tmp_path / "loss.png")


def test_layer_rules_freeze_the_backbone_for_heads(tmp_path):
    model = MaskRCNN("training", TinyConfig(), tmp_path)
    model.set_trainable(LAYER_REGEX["heads"])
    layers = {layer.name: layer for layer in model.keras_model.layers}
    assert not layers["conv1"].trainable and not layers["res3a_branch2a"].trainable
    assert layers["fpn_p2"].trainable and layers["mrcnn_mask"].trainable
    rpn = layers["rpn_model"]
    assert all(layer.trainable for layer in rpn.layers if layer.weights)
    model.set_trainable(LAYER_REGEX["4+"])
    assert layers["res4a_branch2a"].trainable and not layers["res3a_branch2a"].trainable


@pytest.mark.parametrize("mode", ["training", "inference"])
def test_conv_init_reaches_the_resnet_and_the_mask_head(tmp_path, mode):
    """CONV_INIT "he": kernel spread sqrt(2 / fan_out); the box head keeps Glorot's."""
    keras.utils.set_random_seed(0)
    model = MaskRCNN(mode, TinyConfig(CONV_INIT="he"), tmp_path).keras_model
    for name, fan_out in [("res4b_branch2b", 9 * 256), ("mrcnn_mask_conv2", 9 * 256)]:
        layer = model.get_layer(name)
        kernel = getattr(layer, "layer", layer).kernel.numpy()
        assert kernel.std() == pytest.approx(np.sqrt(2 / fan_out), rel=0.05), name
    box_kernel = model.get_layer("mrcnn_class_conv1").layer.kernel.numpy()     # 7x7, 32 -> 64: Glorot uniform
    assert box_kernel.std() == pytest.approx(np.sqrt(2 / (7 * 7 * 32 + 7 * 7 * 64)), rel=0.05)


def test_scratch_recipe_reaches_the_layers_and_trains(tmp_path, shapes):
    """ScratchConfig's ROI_ALIGN "pixel_centres" reaches both ROIAlign layers of both models and its
    MASK_TARGET_SAMPLING the target layer; the training model trains on them."""
    from mrcnn.recipes import ScratchConfig

    config = type("TinyScratch", (ScratchConfig,), {k: v for k, v in vars(TinyConfig).items() if k.isupper()})()
    trainer = MaskRCNN("training", config, tmp_path)
    detector = MaskRCNN("inference", config, tmp_path)
    for model in (trainer, detector):
        for name in ("roi_align_classifier", "roi_align_mask"):
            assert model.keras_model.get_layer(name).alignment == "pixel_centres"
    assert trainer.keras_model.get_layer("proposal_targets").mask_target_sampling == "pixel_centres"
    default = MaskRCNN("training", TinyConfig(), tmp_path).keras_model
    assert default.get_layer("roi_align_mask").alignment == "normalised_box"
    assert default.get_layer("proposal_targets").mask_target_sampling == "resized"
    trainer.train(shapes, shapes, learning_rate=0.001, epochs=1, layers="heads", verbose=0, seed=0)
    with open(Path(trainer.log_dir) / "training_log.csv") as log:
        assert np.isfinite(float(next(csv.DictReader(log))["mrcnn_mask_loss"]))


def test_detect_returns_pixels_of_each_image(tmp_path):
    """Random weights, confidence 0: whatever comes out lies inside each image, masks at its size."""
    keras.utils.set_random_seed(0)
    model = MaskRCNN("inference", TinyConfig(), tmp_path)
    photos = sorted(PHOTOS.glob("*.jpg"))
    images = [utils.read_image_rgb(p) for p in photos] if photos else []
    images.append(np.full((50, 90, 3), 128, np.uint8))       # any size and aspect
    results = model.detect(images)                           # 3 images, batches of 2
    assert len(results) == len(images)
    for image, result in zip(images, results):
        n = len(result["class_ids"])
        assert result["masks"].shape == image.shape[:2] + (n,) and result["masks"].dtype == bool
        assert result["rois"].shape == (n, 4) and result["scores"].shape == (n,)
        if n:
            assert (result["rois"][:, :2] >= 0).all()
            assert (result["rois"][:, 2] <= image.shape[0]).all() and (result["rois"][:, 3] <= image.shape[1]).all()
            assert set(result["class_ids"]) <= {1, 2, 3}
    fig = visualize.display_instances(images[0], results[0]["rois"], results[0]["masks"], results[0]["class_ids"],
                                      ("BG",) + CLASS_NAMES, results[0]["scores"])
    fig.savefig(tmp_path / "detections.png")
    assert (tmp_path / "detections.png").stat().st_size > 0


def test_unmold_maps_the_window_back_to_the_original_image(tmp_path):
    model = MaskRCNN("inference", TinyConfig(), tmp_path)
    original = (100, 50, 3)                      # resized x0.64 into 64x64: window x 16..48
    window = np.array([0, 16, 64, 48])
    box = utils.norm_boxes(np.array([[0, 16, 32, 32]]), (64, 64))[0]   # top-left quarter of the window
    detections = np.zeros((30, 6), np.float32)
    detections[0] = list(box) + [2, 0.9]
    masks = np.ones((30, 14, 14, 4), np.float32)
    rois, class_ids, scores, full = model.unmold_detections(detections, masks, original, (64, 64, 3), window)
    assert class_ids.tolist() == [2] and np.allclose(scores, [0.9])
    assert np.abs(rois[0] - [0, 0, 50, 25]).max() <= 1
    assert full.shape == (100, 50, 1) and full[..., 0].sum() == pytest.approx(50 * 25, rel=0.1)


def test_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        MaskRCNN("testing", TinyConfig(), tmp_path)
    with pytest.raises(ValueError, match="fixed image shape"):
        MaskRCNN("training", TinyConfig(IMAGE_RESIZE_MODE="pad64"), tmp_path)
    with pytest.raises(FileNotFoundError, match="Could not find a checkpoint of 'tiny'"):
        MaskRCNN("inference", TinyConfig(), tmp_path).find_last()
    inference = MaskRCNN("inference", TinyConfig(), tmp_path)
    with pytest.raises(RuntimeError, match="mode='training'"):
        inference.train(None, None, 0.001, 1, "heads")
