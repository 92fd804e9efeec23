"""Config.MIXED_PRECISION: a float16 network with float32 weights, loss scaling, float32 where it matters.

A tiny model trains a few steps under mixed precision (the real MaskRCNN.train path): its losses
must be finite and its weights move, and its checkpoint loads into float32 and mixed networks
alike. Another is trained in float32 until it detects something, and a mixed network with its
weights must detect the same. Loss scaling is checked step by step against float32 gradients.
On a CPU float16 is slow (TF 2.20: about 10 times float32), so the long training is float32's.
"""
from types import SimpleNamespace

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers.profiles import COLAB, SMOKE
from helpers.training import make_config
from mrcnn import losses, utils, weights
from mrcnn.data import make_training_dataset
from mrcnn.model import MaskRCNN, MaskRCNNTrainer, compute_losses, network_inputs
from mrcnn.samples.shapes import ShapesDataset
from tests.test_mrcnn_model import TinyConfig

MIXED_STEPS = 4         # mixed-precision training steps
TRAINING_STEPS = 40     # a float32 epoch: often enough for a few detections of score 0.3 to 1.0 on the 4 images
MAX_EPOCHS = 4          # CPU training is not bit-reproducible: train on until there are MIN_CONFIDENT
MIN_CONFIDENT = 3       # float32 detections of score >= MIN_SCORE to compare

# Detections of the same weights, float32 against mixed. float16 keeps 11 significant bits (a
# relative error of 2^-11 ~ 5e-4 per rounding): through the network a class logit moves by a few
# hundredths at most, and a softmax score by at most a quarter of that (p (1 - p) <= 1/4); measured on
# this test's models and others trained longer or harder: at most 0.0045. A box edge moves by far
# less than a pixel, but edges are rounded to whole pixels, which can turn that into one pixel.
# Masks are thresholded at 0.5: only pixels whose probability lies within float16's error of 0.5
# flip (measured: IoU 0.968 at worst, 2 pixels of a 63-pixel mask).
MIN_SCORE = 0.3         # compare detections at least this sure (weaker ones may swap places in NMS)
SCORE_TOLERANCE = 0.02  # 4x the largest difference measured
BOX_PIXELS = 1          # one pixel of rounding
MASK_IOU = 0.9          # a few flipped pixels on the smallest (about 20-pixel) masks
NMS_IOU_MARGIN = 0.1    # IoU of whole-pixel boxes against NMS's unrounded ones: half a pixel an edge

# Gradients of one step, mixed against float32: float16 activations put the RPN's gradients 0.02% to
# 1.4% off (measured); a loss scale left in (x 32768), never applied (/ 32768: measured, the update is
# then 100% off) or clipping before unscaling (/ 32768) is off by orders of magnitude.
GRADIENT_RTOL = 0.05


class TrainConfig(TinyConfig):
    NAME = "mixed"
    STEPS_PER_EPOCH = TRAINING_STEPS
    LEARNING_RATE = 0.01
    BATCH_NORM_MOMENTUM = 0.9


@pytest.fixture(scope="module")
def shapes():
    dataset = ShapesDataset()
    dataset.load_shapes(4, size=64, seed=1)
    dataset.prepare()
    return dataset


class Watch(keras.callbacks.Callback):
    """Records the trainer's optimizer and every step's reported losses."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_begin(self, logs=None):
        self.optimizer = self.model.optimizer

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(dict(logs))


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, shapes):
    """A mixed-precision model trained MIXED_STEPS steps by MaskRCNN.train, and what was seen."""
    assert keras.config.dtype_policy().name == "float32"
    keras.utils.set_random_seed(0)
    config = TrainConfig(MIXED_PRECISION=True, STEPS_PER_EPOCH=MIXED_STEPS)
    model = MaskRCNN("training", config, tmp_path_factory.mktemp("mixed"))
    policy_after_build = keras.config.dtype_policy().name
    model.calibrate_batch_norm(shapes, batches=2)
    before = [v.numpy().copy() for v in model.keras_model.trainable_variables]
    watch = Watch()
    history = model.train(shapes, shapes, learning_rate=config.LEARNING_RATE, epochs=1, layers="all",
                          verbose=0, seed=0, custom_callbacks=[watch])
    return SimpleNamespace(model=model, config=config, before=before, history=history.history, watch=watch,
                           policy_after_build=policy_after_build, checkpoint=model.find_last())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shapes):
    """A float32 model trained (epochs of TRAINING_STEPS steps) until it makes MIN_CONFIDENT detections
    of score >= MIN_SCORE on the training images: its checkpoint and those detections."""
    keras.utils.set_random_seed(0)
    runs = tmp_path_factory.mktemp("float32")
    model = MaskRCNN("training", TrainConfig(), runs)
    model.calibrate_batch_norm(shapes, batches=2)
    detector = MaskRCNN("inference", TrainConfig(), runs)
    images = [shapes.load_image(i) for i in shapes.image_ids]
    for epoch in range(1, MAX_EPOCHS + 1):
        model.train(shapes, shapes, learning_rate=TrainConfig.LEARNING_RATE, epochs=epoch, layers="all",
                    verbose=0, seed=epoch - 1)
        detector.load_weights(model.find_last(), by_name=True)
        results = detector.detect(images)
        if sum(int((r["scores"] >= MIN_SCORE).sum()) for r in results) >= MIN_CONFIDENT:
            break
    return SimpleNamespace(checkpoint=model.find_last(), epochs=epoch, images=images, plain_results=results)


def layer_policy(model, name):
    layer = model.get_layer(name)
    return layer.dtype_policy.compute_dtype, layer.dtype_policy.variable_dtype


def test_mixed_training_is_finite_moves_the_weights_and_leaves_float32_global(mixed_run):
    network = mixed_run.model.keras_model
    # the policy reached the network: float16 arithmetic, float32 variables ...
    assert layer_policy(network, "conv1") == ("float16", "float32")
    assert layer_policy(network, "fpn_p2") == ("float16", "float32")
    assert layer_policy(network.get_layer("rpn_model"), "rpn_conv_shared") == ("float16", "float32")
    assert layer_policy(network, "mrcnn_mask_conv1") == ("float16", "float32")
    assert all(v.dtype == "float32" for v in network.weights)
    # ... except where numbers must stay float32: boxes, proposals, targets, probabilities, mask logits
    for name in ("anchors", "gt_boxes_normalised", "ROI", "proposals_and_gt", "proposal_targets",
                 "positive_rois", "positive_target_mask", "rpn_class", "mrcnn_class", "mrcnn_mask", "real_rois"):
        assert layer_policy(network, name)[0] == "float32", name
    assert network.get_layer("roi_align_classifier").autocast is False     # boxes not rounded on the way in
    outputs = network.output
    assert outputs["rpn_class_logits"].dtype == "float16" and outputs["mrcnn_class_logits"].dtype == "float16"
    for name in ("rpn_class", "mrcnn_class", "mrcnn_mask_logits", "rpn_rois", "rois", "target_bbox", "target_mask"):
        assert outputs[name].dtype == "float32", name

    # the global policy is float32 once the network is built, and after training
    assert mixed_run.policy_after_build == "float32" and keras.config.dtype_policy().name == "float32"

    # dynamic loss scaling around Config.GRADIENT_CLIP_NORM's optimizer
    optimizer = mixed_run.watch.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert optimizer.inner_optimizer.clipnorm == mixed_run.config.GRADIENT_CLIP_NORM
    assert 0 < int(optimizer.iterations.numpy()) <= MIXED_STEPS      # steps applied (a non-finite one is skipped)

    assert len(mixed_run.watch.steps) == MIXED_STEPS
    for logs in mixed_run.watch.steps:
        assert all(np.isfinite(value) for value in logs.values()), logs
    for name, values in mixed_run.history.items():
        assert np.isfinite(values).all(), name
    after = [v.numpy() for v in network.trainable_variables]
    moved = [not np.array_equal(a, b) for a, b in zip(mixed_run.before, after)]
    assert all(moved), f"{moved.count(False)} of {len(moved)} trainable variables did not move"
    assert all(np.isfinite(a).all() for a in after)


def test_a_float32_model_built_after_is_float32_and_a_failed_build_restores_the_policy(tmp_path):
    with pytest.raises(ValueError, match="fixed image shape"):
        MaskRCNN("training", TinyConfig(MIXED_PRECISION=True, IMAGE_RESIZE_MODE="pad64"), tmp_path)
    assert keras.config.dtype_policy().name == "float32"
    plain = MaskRCNN("inference", TinyConfig(), tmp_path).keras_model
    assert layer_policy(plain, "conv1") == ("float32", "float32")
    assert all(output.dtype == "float32" for output in plain.outputs)


@pytest.mark.parametrize("loss", ["rpn_class", "rpn_bbox", "mrcnn_class", "mrcnn_bbox", "mrcnn_mask"])
def test_each_loss_computes_in_float32_from_float16_outputs(loss):
    """The network's float16 outputs give each loss in float32, the same as the same values in float32.

    Made so that float16 arithmetic inside a loss shows: every anchor, ROI or mask pixel repeats
    one of a few values, so float16's rounding of the per-element losses (about 1e-4 of them) does
    not average out; and 100,000 anchors' or mask pixels' losses sum to more than float16's largest
    number (65,504), so a sum in float16 is inf.
    """
    rng = np.random.default_rng(3)
    anchors, rois, size, classes = 100_000, 130, 28, 4

    def repeated(shape, scale, varying=1):
        """An array of `shape` (float16 values) whose last `varying` axes repeat along the others."""
        return np.broadcast_to(rng.normal(0.0, scale, size=shape[-varying:]), shape).astype(np.float16)

    match = rng.choice([-1, 1], size=(1, anchors, 1)).astype(np.int32)
    class_ids = rng.integers(1, classes, size=(1, rois)).astype(np.int32)
    boxes = np.tile([[[0.1, 0.1, 0.5, 0.5]]], (1, rois, 1)).astype(np.float32)
    rpn_logits, rpn_deltas, rpn_targets = repeated((1, anchors, 2), 1.0), repeated((1, anchors, 4), 1.0), \
        repeated((1, 256, 4), 1.0)
    class_logits = repeated((1, rois, classes), 1.0)
    box_deltas, box_targets = repeated((1, rois, classes, 4), 1.0, varying=2), repeated((1, rois, 4), 1.0)
    mask_logits = repeated((1, rois, size, size, classes), 1.0)

    def compute(dtype):
        def cast(array):
            return tf.constant(array.astype(dtype))

        if loss == "rpn_class":
            return losses.rpn_class_loss_graph(match, cast(rpn_logits))
        if loss == "rpn_bbox":
            return losses.rpn_bbox_loss_graph(TinyConfig(), cast(rpn_targets), match, cast(rpn_deltas))
        if loss == "mrcnn_class":
            return losses.mrcnn_class_loss_graph(class_ids, cast(class_logits), np.ones((1, classes), np.float32),
                                                 rois=boxes)
        if loss == "mrcnn_bbox":
            return losses.mrcnn_bbox_loss_graph(cast(box_targets), class_ids, cast(box_deltas), rois=boxes,
                                                beta=1 / 9)
        return losses.mrcnn_mask_loss_graph(np.zeros((1, rois, size, size), np.float32), class_ids,
                                            cast(mask_logits), from_logits=True)

    from_float16, from_float32 = compute(np.float16), compute(np.float32)
    assert from_float16.dtype == tf.float32
    assert np.isfinite(float(from_float16))
    assert float(from_float16) == pytest.approx(float(from_float32), rel=1e-6)


def test_mixed_detections_match_float32_with_the_same_weights(trained, tmp_path):
    detector = MaskRCNN("inference", TrainConfig(MIXED_PRECISION=True), tmp_path)
    detector.load_weights(trained.checkpoint, by_name=True)
    network = detector.keras_model
    assert layer_policy(network, "conv1")[0] == "float16"
    for name in ("ROI", "rpn_class", "mrcnn_class", "mrcnn_detection", "detection_boxes", "mrcnn_mask"):
        assert layer_policy(network, name)[0] == "float32", name
    assert network.get_layer("roi_align_mask").autocast is False
    assert network.outputs[0].dtype == "float32" and network.outputs[3].dtype == "float32"   # detections, masks
    found = []
    for plain, mixed in zip(trained.plain_results, detector.detect(trained.images)):
        found += match_confident_detections(plain, mixed, "float32") + match_confident_detections(mixed, plain, "mixed")
    matched = [f for f in found if f[0] == "matched"]
    suppressed = [f for f in found if f[0] == "suppressed"]
    # Coin tosses (below) are few: one costs two (the detection each precision dropped), and a young
    # model's overlapping near-equal candidates can make a few. An error of the boxes or scores
    # everywhere leaves none matched, or fails the tolerances.
    assert len(matched) >= MIN_CONFIDENT and len(suppressed) <= max(2, len(matched) // 2), (
        f"{len(matched)} detections of score >= {MIN_SCORE} matched after {trained.epochs} epochs; "
        f"suppressed by a rival: {suppressed}")


def match_confident_detections(these, others, name):
    """For every detection of `these` (the `name` precision's) scoring >= MIN_SCORE, a tuple (verdict,
    name, class, box, score) with verdict "matched" when `others` has one of the same
    class with box edges within BOX_PIXELS, score within SCORE_TOLERANCE and mask IoU >= MASK_IOU.

    Else "suppressed" when `others` kept a rival that non-maximum suppression lets win: same class,
    score at least this one's minus SCORE_TOLERANCE, box IoU above DETECTION_NMS_THRESHOLD (less
    NMS_IOU_MARGIN: NMS compared unrounded boxes). When two overlapping candidates score within
    float16's error of each other, which one NMS keeps is a coin toss between the precisions (seen a
    few times while writing this test, once on a 0.72 detection). Anything else fails.
    """
    found = []
    overlaps = utils.compute_overlaps(these["rois"], others["rois"])
    for k in np.flatnonzero(these["scores"] >= MIN_SCORE):
        same_class = others["class_ids"] == these["class_ids"][k]
        close = same_class & (np.abs(others["rois"] - these["rois"][k]).max(axis=1) <= BOX_PIXELS)
        if close.any():
            j = min(np.flatnonzero(close), key=lambda j: abs(others["scores"][j] - these["scores"][k]))
            assert abs(others["scores"][j] - these["scores"][k]) <= SCORE_TOLERANCE, \
                (name, these["scores"][k], others["scores"][j])
            mask, other = these["masks"][..., k], others["masks"][..., j]
            assert (mask & other).sum() / max((mask | other).sum(), 1) >= MASK_IOU
            found.append(("matched", name, int(these["class_ids"][k]), these["rois"][k].tolist(),
                          round(float(these["scores"][k]), 4)))
            continue
        rival = same_class & (others["scores"] >= these["scores"][k] - SCORE_TOLERANCE) & \
            (overlaps[k] > TrainConfig.DETECTION_NMS_THRESHOLD - NMS_IOU_MARGIN)
        near = [(int(c), box.tolist(), round(float(score), 4)) for c, box, score, iou
                in zip(others["class_ids"], others["rois"], others["scores"], overlaps[k]) if iou > 0.1]
        assert rival.any(), (f"no match for class {these['class_ids'][k]} at {these['rois'][k].tolist()} "
                             f"({these['scores'][k]:.4f}); overlapping it: {near}")
        found.append(("suppressed", name, int(these["class_ids"][k]), these["rois"][k].tolist(),
                      round(float(these["scores"][k]), 4)))
    return found


def test_weight_files_are_the_same_for_both_precisions(mixed_run, tmp_path):
    """A mixed model's checkpoint loads into a float32 model and back, value for value, and the files
    each writes have the same layout (names, shapes, float32) and values."""
    mixed = MaskRCNN("inference", TrainConfig(MIXED_PRECISION=True), tmp_path).keras_model
    plain = MaskRCNN("inference", TrainConfig(), tmp_path).keras_model
    for network in (mixed, plain):       # the checkpoint written by the mixed trainer
        report = weights.load_weights(network, mixed_run.checkpoint, by_name=True)
        assert report.missing == [] and report.skipped == []
    trained_values = {v.path: v.numpy() for v in mixed_run.model.keras_model.weights}
    for network in (mixed, plain):
        for variable in network.weights:
            assert variable.dtype == "float32"
            np.testing.assert_array_equal(variable.numpy(), trained_values[variable.path])
    assert h5_contents(weights.save_weights(mixed, tmp_path / "mixed.h5")) == \
        h5_contents(weights.save_weights(plain, tmp_path / "plain.h5"))

    # float32 -> mixed: other values (a fresh float32 model's) replace the trained ones exactly
    fresh = MaskRCNN("inference", TrainConfig(), tmp_path / "fresh").keras_model
    path = weights.save_weights(fresh, tmp_path / "fresh.h5")
    weights.load_weights(mixed, path, by_name=True)
    changed = 0
    for loaded, saved in zip(mixed.weights, fresh.weights):
        np.testing.assert_array_equal(loaded.numpy(), saved.numpy())
        changed += not np.array_equal(loaded.numpy(), trained_values[loaded.path])
    assert changed > len(mixed.weights) // 2


def h5_contents(path):
    """{dataset name: (shape, dtype, bytes)} of an HDF5 file, and how many layers it lists (the names of
    layers without weights, Keras' numbered "activation_12", differ between any two models)."""
    contents = {}
    with h5py.File(path, "r") as h5:
        contents["layer count"] = len(h5.attrs["layer_names"])

        def visit(name, item):
            if isinstance(item, h5py.Dataset):
                contents[name] = (item.shape, str(item.dtype), item[()].tobytes())

        h5.visititems(visit)
    return contents


def test_loss_scaling_skips_non_finite_steps_and_clips_the_unscaled_gradients(tmp_path, shapes):
    """One step with NaN gradients is skipped (weights kept, loss scale halved); the next step moves
    the RPN's weights by the float32 gradient, each variable's clipped to GRADIENT_CLIP_NORM.

    The RPN's gradients come from its two losses alone (proposals stop gradients), and those depend
    only on the batch and the weights, not on the heads' random ROI sampling: a float32 copy of
    the network computes the oracle. The clip norm is set between the RPN variables' gradient
    norms, so some are clipped and some are not.
    """
    keras.utils.set_random_seed(0)
    learning_rate = 0.01
    mixed = MaskRCNN("training", TinyConfig(MIXED_PRECISION=True), tmp_path).keras_model
    plain_config = TinyConfig()
    plain = MaskRCNN("training", plain_config, tmp_path).keras_model
    plain.set_weights(mixed.get_weights())
    batch = next(iter(make_training_dataset(shapes, plain_config, shuffle=False, seed=0)))

    rpn_variables = plain.get_layer("rpn_model").trainable_variables
    with tf.GradientTape() as tape:
        parts = compute_losses(plain_config, batch, plain(network_inputs(plain, batch), training=True))
        total = tf.add_n(list(parts.values()))
    expected = {v.path: g.numpy() for v, g in zip(rpn_variables, tape.gradient(total, rpn_variables))}
    norms = sorted(np.linalg.norm(g) for g in expected.values())
    clip = float(np.sqrt(norms[len(norms) // 2 - 1] * norms[len(norms) // 2]))  # between two middle norms

    config = TinyConfig(MIXED_PRECISION=True, GRADIENT_CLIP_NORM=clip)
    trainer = MaskRCNNTrainer(mixed, config)
    trainer.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate, momentum=0.0, clipnorm=clip),
                    jit_compile=False)
    optimizer = trainer.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    initial_scale = float(optimizer.dynamic_scale.numpy())

    def step(data):
        trainer.fit(tf.data.Dataset.from_tensors(data), epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)

    start = {v.path: v.numpy().copy() for v in mixed.trainable_variables}
    poisoned = dict(batch, input_rpn_bbox=tf.fill(tf.shape(batch["input_rpn_bbox"]), np.float32("nan")))
    step(poisoned)
    assert float(optimizer.dynamic_scale.numpy()) == initial_scale / 2
    assert int(optimizer.iterations.numpy()) == 0
    for v in mixed.trainable_variables:
        np.testing.assert_array_equal(v.numpy(), start[v.path])

    step(batch)
    assert int(optimizer.iterations.numpy()) == 1
    clipped = 0
    for variable in mixed.get_layer("rpn_model").trainable_variables:
        gradient = expected[variable.path]
        norm = np.linalg.norm(gradient)
        clipped += norm > clip
        moved = (start[variable.path] - variable.numpy()) / learning_rate
        wanted = gradient * min(1.0, clip / norm)
        assert np.linalg.norm(moved - wanted) <= GRADIENT_RTOL * np.linalg.norm(wanted), variable.path
    assert 0 < clipped < len(expected)


@pytest.mark.parametrize("profile, gpus, expected", [
    (COLAB, ["GPU:0"], True),
    (COLAB, [], False),
    (SMOKE, ["GPU:0"], False),
])
def test_make_config_mixed_only_when_the_profile_asks_and_a_gpu_is_visible(monkeypatch, profile, gpus, expected):
    asked = []

    def list_physical_devices(device_type=None):
        asked.append(device_type)
        return list(gpus) if device_type == "GPU" else []

    monkeypatch.setattr(tf.config, "list_physical_devices", list_physical_devices)
    config = make_config(profile, "model1", ["BG", "top", "skirt"])
    assert config.MIXED_PRECISION is expected
    assert asked == (["GPU"] if profile.mixed_precision else [])
    assert make_config(profile, "model1", ["top"], inference=True).MIXED_PRECISION is expected
    assert make_config(profile, "model1", ["top"], MIXED_PRECISION=False).MIXED_PRECISION is False
