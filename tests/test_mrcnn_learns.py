"""It learns: from random initialisation, a small Mask R-CNN overfits 8 shape images.

Detect on the same images must reach COCO mask AP50 >= 0.9 and mask AP >= 0.6 (pycocotools).
Broken targets, losses, proposals or unmolding keep AP50 far below that; subtler slips show in
AP (BBOX_STD_DEV reversed when decoding detections: AP50 still 1.000, AP 0.541).
On this project's CPU machine (2 cores, about 4 minutes) seeds 0 to 6 all gave AP50 1.000 after
100 epochs (after 40 already) and AP 0.67 to 0.85. One CI machine's rounding led to AP50 0.873
and AP 0.717 after 100 epochs: where the first stint falls short the model trains on to 160
epochs (a resumed run) before the verdict. A failure prints every image's truth and detections.
"""
import keras

from mrcnn.config import Config
from mrcnn.model import MaskRCNN
from mrcnn.samples.shapes import ShapesDataset, coco_mask_ap


class OverfitConfig(Config):
    NAME = "overfit"
    NUM_CLASSES = 1 + 3
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = IMAGE_MAX_DIM = 128
    BACKBONE = "resnet18"
    TRAIN_BN = True                  # from scratch: no pretrained statistics to freeze
    BATCH_NORM_MOMENTUM = 0.9        # inference statistics follow the fast-moving young weights
    TOP_DOWN_PYRAMID_SIZE = 64
    FPN_CLASSIF_FC_LAYERS_SIZE = 256
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 64
    PRE_NMS_LIMIT = 1000
    POST_NMS_ROIS_TRAINING = 200
    POST_NMS_ROIS_INFERENCE = 100
    TRAIN_ROIS_PER_IMAGE = 16
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    MAX_GT_INSTANCES = 10
    STEPS_PER_EPOCH = 4              # 8 images, 2 a step
    VALIDATION_STEPS = 1
    DETECTION_MIN_CONFIDENCE = 0.5
    LEARNING_RATE = 0.01
    KEEP_CHECKPOINTS = 1             # 100 epochs of checkpoints would be 5.6 GB


EPOCHS = (100, 160)                  # the second stint only runs where the first falls short


def test_overfits_eight_shape_images(tmp_path):
    keras.utils.set_random_seed(0)
    config = OverfitConfig()
    shapes = ShapesDataset()
    shapes.load_shapes(8, size=128, seed=0)
    shapes.prepare()

    model = MaskRCNN("training", config, tmp_path)
    model.calibrate_batch_norm(shapes, batches=4)      # the README's recipe for random weights
    detector = None
    for epochs in EPOCHS:
        history = model.train(shapes, shapes, learning_rate=config.LEARNING_RATE, epochs=epochs, layers="all",
                              verbose=0, seed=0)
        if epochs == EPOCHS[0]:
            losses = history.history["loss"]
            assert losses[-1] < 0.5 * losses[0]
            detector = MaskRCNN("inference", config, tmp_path)
        detector.load_weights(model.find_last(), by_name=True)
        results = detector.detect([shapes.load_image(i) for i in shapes.image_ids])
        ap, ap50 = coco_mask_ap(shapes, shapes.image_ids, results)
        print(f"mask AP {ap:.3f}, AP50 {ap50:.3f} after {epochs} epochs of 4 steps")
        if ap50 >= 0.9 and ap >= 0.6:
            break
    assert ap50 >= 0.9 and ap >= 0.6, detections_by_image(shapes, results)


def detections_by_image(dataset, results):
    """One line per image: its true class ids, then the detections' (class id, score)."""
    lines = []
    for image_id, result in zip(dataset.image_ids, results):
        _, class_ids = dataset.load_mask(image_id)
        found = [(int(c), round(float(s), 2)) for c, s in zip(result["class_ids"], result["scores"])]
        lines.append(f"image {image_id}: truth {sorted(class_ids.tolist())}, detected {found}")
    return "\n".join(lines)
