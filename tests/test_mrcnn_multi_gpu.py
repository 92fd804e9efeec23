"""Training on several replicas (GPU_COUNT > 1, MirroredStrategy) gives what one device gives.

TensorFlow's logical devices must be set before it starts, and the rest of the suite has started
it, so the work runs in a subprocess (this file run as a script) on two logical CPU devices; it
writes what it measured to a JSON file and the tests below judge it.

What is compared, and why it can be: one training step on the same global batch of two images
from the same initial weights, once with GPU_COUNT = 1, IMAGES_PER_GPU = 2 and once with
GPU_COUNT = 2, IMAGES_PER_GPU = 1 (one image a replica). A step is random only in the sampling of
the ROIs (DetectionTargetLayer shuffles the candidates) and in batch norm's batch statistics (one
image's on a replica, two images' on one device). The config makes both deterministic: with
ROI_POSITIVE_RATIO 1 and TRAIN_ROIS_PER_IMAGE at least the proposals plus the ground-truth boxes,
every positive candidate is sampled and no negative (the negatives keep the positives at that
share: none), so only their order is random, and the losses are sums over them (the ground-truth
boxes join the candidates, so every image has positives); and TRAIN_BN False keeps batch norm on its stored statistics. The
batches come from the seeded pipeline, so both runs see the same images and RPN targets (fit()
under a strategy iterates the pipeline once more, to build: its epochs' orders depend only on the
seed and the epoch, which is checked too). Then the
five losses (and the validation losses after the step) must agree to 1e-4, and so must each
variable's update: that checks the gradients are the global batch's (not the replicas' sum of
means, twice as large) and clipped after the replicas' parts are summed (GRADIENT_CLIP_NORM small
enough to clip some variables). TensorFlow's CPU kernel for the gradient of crop_and_resize
(ROIAlign) with respect to the features adds from several threads without synchronisation, and
loses some of the additions (tensorflow/tensorflow#42033: 10-30 % of the largest value on a test of
400 boxes, differently in every run), so the subprocesses enable TensorFlow's op determinism, which
computes it on one thread. Then the two-replica run's checkpoint is found by find_last and
loads into a one-device inference model with the same weights.

With MRCNN_MULTI_WORKER_TEST=1, the same step also runs on two worker processes of
MultiWorkerMirroredStrategy on this machine (docs/multi_gpu.md's recipe), and must give the same losses.
"""
import json
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")
LEARNING_RATE = 0.02
CLIP_NORM = 0.5


def _config(**overrides):
    from mrcnn.config import Config

    class MultiConfig(Config):
        NAME = "multi"
        NUM_CLASSES = 1 + 3
        IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
        BACKBONE = "resnet18"
        TOP_DOWN_PYRAMID_SIZE = 32
        FPN_CLASSIF_FC_LAYERS_SIZE = 64
        RPN_ANCHOR_SCALES = (8, 16, 24, 32, 48)
        RPN_TRAIN_ANCHORS_PER_IMAGE = 32
        PRE_NMS_LIMIT = 200
        POST_NMS_ROIS_TRAINING = 16
        POST_NMS_ROIS_INFERENCE = 16
        MAX_GT_INSTANCES = 4
        # every positive of the 16 proposals + 4 ground-truth boxes sampled, no negative: no random subset
        ROI_POSITIVE_RATIO = 1.0
        TRAIN_ROIS_PER_IMAGE = 20
        MASK_POOL_SIZE = 7
        MASK_SHAPE = [14, 14]
        TRAIN_BN = False
        WEIGHT_DECAY = 0.0          # so that an update is -learning rate * (clipped) gradient
        GRADIENT_CLIP_NORM = CLIP_NORM
        STEPS_PER_EPOCH = 1
        VALIDATION_STEPS = 1

    return MultiConfig(**overrides)


def _weights_by_name(keras_model):
    from mrcnn import weights
    return {f"{layer.name}/{k}": np.asarray(v) for layer in weights._model_layers(keras_model)
            for k, v in enumerate(layer.get_weights())}


def _worker(out_dir):
    """Runs in the subprocess: everything TensorFlow does happens here, measured into results.json."""
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})   # graph rewrites: slow to run, no use here
    tf.config.experimental.enable_op_determinism()      # see the module docstring: crop_and_resize's gradient
    import keras

    from mrcnn import weights
    from mrcnn.data import make_training_dataset
    from mrcnn.model import MaskRCNN, distribution_strategy
    from mrcnn.samples.shapes import ShapesDataset

    def take(pipeline, count):
        iterator = iter(pipeline)
        return [next(iterator) for _ in range(count)]

    out_dir = Path(out_dir)
    results = {}
    shapes = ShapesDataset()
    shapes.load_shapes(4, size=64, seed=1)
    shapes.prepare()
    one_config = _config(GPU_COUNT=1, IMAGES_PER_GPU=2)
    two_config = _config(GPU_COUNT=2, IMAGES_PER_GPU=1)

    # Devices and the errors a wrong GPU_COUNT gets.
    strategy = distribution_strategy(two_config)
    results["devices"] = list(strategy.extended.worker_devices)
    for name, make in [("too_many", lambda: distribution_strategy(_config(GPU_COUNT=3))),
                       ("mismatch", lambda: MaskRCNN("inference", one_config, out_dir / "x", strategy=strategy))]:
        try:
            make()
            results[name] = None
        except ValueError as err:
            results[name] = str(err)

    # The global batch splits into IMAGES_PER_GPU images a replica, in order.
    whole = next(iter(make_training_dataset(shapes, two_config, seed=0)))
    split = next(iter(strategy.experimental_distribute_dataset(make_training_dataset(shapes, two_config, seed=0))))
    parts = [np.asarray(p) for p in strategy.experimental_local_results(split["input_image"])]
    results["replica_images"] = [int(p.shape[0]) for p in parts]
    results["split_in_order"] = bool(np.array_equal(np.concatenate(parts), np.asarray(whole["input_image"])))
    # fit() under a strategy iterates the training data once to build, then again to train: a
    # seeded pipeline must give the same batches every time it is iterated.
    pipeline = make_training_dataset(shapes, two_config, seed=0)
    orders = [[int(v) for b in take(pipeline, 3) for v in np.asarray(b["input_image_meta"])[:, 0]] for _ in range(2)]
    results["iterations_agree"] = orders[0] == orders[1]

    # One step each way from the same weights, on the same batch.
    keras.utils.set_random_seed(0)
    one = MaskRCNN("training", one_config, out_dir / "one")
    initial = weights.save_weights(one.keras_model, out_dir / "initial.h5")
    before = _weights_by_name(one.keras_model)
    two = MaskRCNN("training", two_config, out_dir / "two")
    two.load_weights(str(initial), by_name=True)
    runs = {}
    for key, model in (("one", one), ("two", two)):
        history = model.train(shapes, shapes, learning_rate=LEARNING_RATE, epochs=1, layers="heads", verbose=0, seed=0)
        runs[key] = {"losses": {k: float(v[-1]) for k, v in history.history.items()},
                     "weights": _weights_by_name(model.keras_model)}
    results["losses"] = {key: run["losses"] for key, run in runs.items()}
    updates = []
    for name, start in before.items():
        one_update = runs["one"]["weights"][name] - start
        two_update = runs["two"]["weights"][name] - start
        norm = float(np.linalg.norm(one_update))
        if norm > 0:
            updates.append({"name": name, "norm": norm, "two_norm": float(np.linalg.norm(two_update)),
                            "difference": float(np.linalg.norm(two_update - one_update))})
    results["updates"] = updates

    # The two-replica checkpoint: found, and loaded into a one-device inference model.
    last = two.find_last()
    results["last"] = str(Path(last).relative_to(out_dir))
    detector = MaskRCNN("inference", _config(GPU_COUNT=1, IMAGES_PER_GPU=1), out_dir / "two")
    detector.load_weights(last, by_name=True)
    loaded = _weights_by_name(detector.keras_model)
    shared = sorted(set(loaded) & set(runs["two"]["weights"]))
    results["loaded_variables"] = len(shared)
    results["loaded_max_difference"] = max(float(np.max(np.abs(loaded[n] - runs["two"]["weights"][n])))
                                           for n in shared)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("multi_gpu")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(out_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"the two-device run failed:\n{done.stderr[-4000:]}"
    return dict(json.loads((out_dir / "results.json").read_text()), out_dir=str(out_dir))


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("localhost", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.skipif(os.environ.get("MRCNN_MULTI_WORKER_TEST") != "1",
                    reason="two worker processes on this machine take another minute or two: "
                           "set MRCNN_MULTI_WORKER_TEST=1 to run them")
def test_two_workers_of_multi_worker_mirrored_strategy_take_the_one_device_step(measured, tmp_path):
    """docs/multi_gpu.md's recipe on one machine: two processes, TF_CONFIG naming both, one
    replica each, MaskRCNN(..., strategy=MultiWorkerMirroredStrategy())."""
    out_dir = Path(measured["out_dir"])
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    runs, logs = [], [tmp_path / f"worker{index}.log" for index in range(2)]
    try:
        for index, log in enumerate(logs):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", TF_CONFIG=json.dumps(config),
                       PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
            with open(log, "w") as stderr:
                runs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--multi-worker",
                                              str(out_dir)], cwd=ROOT, env=env, stderr=stderr))
        for run, log in zip(runs, logs):
            assert run.wait(timeout=900) == 0, f"a worker failed:\n{log.read_text()[-4000:]}"
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    one = measured["losses"]["one"]
    for index in range(2):
        worker = json.loads((out_dir / f"worker{index}.json").read_text())
        assert worker["replicas"] == 2 and Path(worker["last"]).name == "mask_rcnn_multi_0001.h5"
        for name in one:
            assert worker["losses"][name] == pytest.approx(one[name], rel=1e-4, abs=1e-7), name


def test_strategy_uses_the_logical_devices_and_says_when_there_are_too_few(measured):
    assert [d.split("/")[-1] for d in measured["devices"]] == ["device:CPU:0", "device:CPU:1"]
    assert "GPU_COUNT is 3" in measured["too_many"] and "2 logical CPU device(s)" in measured["too_many"]
    assert "\n" not in measured["too_many"]
    assert "2 replicas but GPU_COUNT is 1" in measured["mismatch"]


def test_each_replica_gets_images_per_gpu_images_of_the_same_global_batches(measured):
    assert measured["replica_images"] == [1, 1]
    assert measured["split_in_order"]
    assert measured["iterations_agree"]


def test_one_step_on_two_replicas_equals_one_step_on_one_device(measured):
    one, two = measured["losses"]["one"], measured["losses"]["two"]
    names = ["loss", *LOSS_NAMES]
    assert set(one) == set(two) == set(names) | {"val_" + n for n in names}
    for name in names:
        assert one[name] > 0 or name == "mrcnn_bbox_loss", name         # a loss that is there to compare
    for name in one:
        assert two[name] == pytest.approx(one[name], rel=1e-4, abs=1e-7), name


def test_updates_are_the_global_batch_gradient_clipped_once(measured):
    updates = measured["updates"]
    clipped = [u for u in updates if u["norm"] == pytest.approx(LEARNING_RATE * CLIP_NORM, rel=1e-4)]
    assert 0 < len(clipped) < len(updates)         # the limit bites on some variables, not all
    for update in updates:
        assert update["difference"] <= 1e-4 * update["norm"] + 1e-9, update


def test_two_replica_checkpoint_is_found_and_loads_into_one_device(measured):
    assert Path(measured["last"]).name == "mask_rcnn_multi_0001.h5"
    assert measured["loaded_variables"] > 100
    assert measured["loaded_max_difference"] == 0.0


def _multi_worker(out_dir):
    """One of two workers of MultiWorkerMirroredStrategy (TF_CONFIG set by the test), one replica each:
    the training step of the two-replica run, from the same initial weights, on several processes."""
    import tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()     # first, before any other TensorFlow work
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(0)                   # op determinism wants one for the ROI sampling's shuffles

    from mrcnn.model import MaskRCNN
    from mrcnn.samples.shapes import ShapesDataset

    out_dir = Path(out_dir)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    shapes = ShapesDataset()
    shapes.load_shapes(4, size=64, seed=1)
    shapes.prepare()
    model = MaskRCNN("training", _config(GPU_COUNT=2, IMAGES_PER_GPU=1), out_dir / f"worker{index}", strategy=strategy)
    model.load_weights(str(out_dir / "initial.h5"), by_name=True)
    history = model.train(shapes, shapes, learning_rate=LEARNING_RATE, epochs=1, layers="heads", verbose=0, seed=0)
    results = {"replicas": strategy.num_replicas_in_sync, "last": model.find_last(),
               "losses": {k: float(v[-1]) for k, v in history.history.items()}}
    (out_dir / f"worker{index}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    try:
        if sys.argv[1] == "--multi-worker":
            _multi_worker(sys.argv[2])
        else:
            _worker(sys.argv[1])
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)        # after a failed distributed step TensorFlow's threads can keep the process from exiting
