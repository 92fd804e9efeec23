"""Speed and memory of our Mask R-CNN (mrcnn/) beside torchvision's, measured on this machine.

What it times, both ResNet-50 FPN with random weights, 4 classes, the same proposal and
detection counts, on toy shapes images (mrcnn/samples/shapes.py):

  inference  images/s at each --sizes (batch 1, square images, no resize beyond the model's
             own): ours MaskRCNN.detect([image]), torchvision model([image]) in eval mode
             under torch.inference_mode; warm-up calls first (tracing), then the median of
             --repeat timed calls.                              goal: ours/theirs time <= 1.0
  training   steps/s at batch 2, 512 px, SGD lr 0.001 momentum 0.9 from random weights on fixed
             batches: ours the trainer's train_step (as MaskRCNN.train builds it) on batches of
             mrcnn.data.make_training_dataset; torchvision model.train(), sum of the loss dict,
             backward, step.                                    goal: ours/theirs time <= 1.5
  memory     peak RSS (resource.getrusage) of each measurement, each in a fresh subprocess of
             this script; goal: ours inference at 1024 px on CPU under 4 GB. Our training at
             1024 px, batch 2, ResNet-101: when TensorFlow sees a GPU, its peak GPU memory (goal:
             fits a 16 GB card, Colab's T4); without one, one step on the CPU, whose peak RSS less
             the RSS of TensorFlow just imported estimates what the step needs (weights, optimiser
             slots, activations, gradients), an estimate and not a GPU measurement.

Against Matterport's original (--against matterport): inference only, s/image of ours and of
Matterport's own code (PyPI mrcnn==0.2 on tf-keras, installed into .cache/ and run in its own
process by tests/matterport_reference.py) at each --sizes, with the same settings (Matterport's
defaults, --backbone, default ResNet-101, 14 classes: ModaNet's 13 and the background, batch 1,
square images of that side), the SAME weights (Matterport's process saves its random weights, ours
loads that file by name) and the same toy shapes image. Each side: one detect() whose detections
are kept, one more untimed, then --repeat timed; the median s/image of each and the ratio
Matterport / ours (above 1: ours is faster). The two run one after the other, not interleaved;
written to --out as JSON (default bench/results/matterport_speed/matterport_<backbone>_<sizes>px.json). Exit 2,
with pip's reason, when the reference cannot be installed.

Speed measurements run on the CPU (CUDA_VISIBLE_DEVICES=-1 in their subprocesses), with
--threads intra-op threads for TensorFlow and torch alike. torch/torchvision are the optional
`bench` extra, imported only in their own subprocesses; without them only ours runs.

    .venv/bin/python bench/bench_mrcnn.py --threads 2
    .venv/bin/python bench/bench_mrcnn.py --quick --sizes 512 --skip-torch
    .venv/bin/python bench/bench_mrcnn.py --against matterport --sizes 512 1024 --repeat 5
"""
import argparse
import contextlib
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 4                 # background + 3 (ours NUM_CLASSES, torchvision num_classes)
DETECTIONS = 100                # DETECTION_MAX_INSTANCES = box_detections_per_img
PRE_NMS = 6000                  # PRE_NMS_LIMIT = rpn_pre_nms_top_n_test / _train
POST_NMS_INFERENCE = 1000       # POST_NMS_ROIS_INFERENCE = rpn_post_nms_top_n_test
POST_NMS_TRAINING = 2000        # POST_NMS_ROIS_TRAINING = rpn_post_nms_top_n_train
TRAIN_ROIS = 512                # TRAIN_ROIS_PER_IMAGE = box_batch_size_per_image
POSITIVE_FRACTION = 0.33        # ROI_POSITIVE_RATIO = box_positive_fraction
DETECTION_NMS = 0.3             # DETECTION_NMS_THRESHOLD = box_nms_thresh
TRAIN_SIZE = 512
TRAIN_BATCH = 2
LEARNING_RATE = 0.001
MOMENTUM = 0.9
WEIGHT_DECAY = 0.0001           # ours by default (train() path); torchvision given the same
CLIP_NORM = 5.0                 # each gradient tensor clipped to this norm (ours: Keras clipnorm; torch: clip_each_gradient)
FIXED_BATCHES = 2               # distinct training batches cycled through
GOAL_INFERENCE_RATIO = 1.0
GOAL_TRAINING_RATIO = 1.5
GOAL_RSS_GB = 4.0
GOAL_GPU_GB = 16.0               # Colab's T4
RESULT_PREFIX = "BENCH_RESULT "
MATTERPORT_CLASSES = 14        # ModaNet's 13 garments and the background
MATTERPORT_BACKBONE = "resnet101"   # Matterport's default
MATTERPORT_WARMUP = 1           # after the detect() that gives the detections: what its worker does
TORCH_INSTALL = '.venv/bin/pip install -e ".[bench]"   (or: pip install torch==2.14.1 torchvision==0.29.1)'


# -- shared helpers (run in the workers) ------------------------------------------------------

def _peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux reports KiB


def _shapes_dataset(count, size, seed=0):
    sys.path.insert(0, str(REPO))
    from mrcnn.samples.shapes import ShapesDataset
    dataset = ShapesDataset()
    dataset.load_shapes(count, size=size, seed=seed)
    dataset.prepare()
    return dataset


def _timed_calls(call, warmup, repeat):
    """Run call() `warmup` times untimed, then `repeat` times timed; returns the seconds per call."""
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def _current_rss_bytes():
    """This process's resident memory now (Linux /proc), or None where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def _emit(result):
    result["peak_rss_bytes"] = _peak_rss_bytes()
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# -- our engine -------------------------------------------------------------------------------

def _tensorflow(threads):
    import tensorflow as tf
    if threads and tf.config.threading.get_intra_op_parallelism_threads() != threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def _our_config(size, mode, backbone="resnet50", batch=1):
    sys.path.insert(0, str(REPO))
    from mrcnn.config import Config

    class BenchConfig(Config):
        NAME = "bench"
        BACKBONE = backbone
        NUM_CLASSES = 4
        IMAGES_PER_GPU = batch
        IMAGE_RESIZE_MODE = "square"
        IMAGE_MIN_DIM = size
        IMAGE_MAX_DIM = size
        PRE_NMS_LIMIT = PRE_NMS
        POST_NMS_ROIS_INFERENCE = POST_NMS_INFERENCE
        POST_NMS_ROIS_TRAINING = POST_NMS_TRAINING
        DETECTION_MAX_INSTANCES = DETECTIONS
        DETECTION_MIN_CONFIDENCE = 0.0
        DETECTION_NMS_THRESHOLD = DETECTION_NMS
        TRAIN_ROIS_PER_IMAGE = TRAIN_ROIS
        ROI_POSITIVE_RATIO = POSITIVE_FRACTION
        TRAIN_BN = mode == "training"      # torchvision without backbone weights trains its BatchNorm
        LEARNING_RATE = LEARNING_RATE
        LEARNING_MOMENTUM = MOMENTUM
        WEIGHT_DECAY = WEIGHT_DECAY
        GRADIENT_CLIP_NORM = CLIP_NORM

    return BenchConfig()


def ours_inference(size, warmup, repeat, threads):
    tf = _tensorflow(threads)
    import keras
    keras.utils.set_random_seed(0)
    from mrcnn.model import MaskRCNN
    import tempfile
    model = MaskRCNN("inference", _our_config(size, "inference"), tempfile.gettempdir())
    image = _shapes_dataset(1, size).load_image(0)
    counts = []

    def call():
        counts.append(len(model.detect([image])[0]["class_ids"]))

    seconds = _timed_calls(call, warmup, repeat)
    _emit({"seconds": seconds, "detections": counts[-1], "gpus": len(tf.config.list_physical_devices("GPU"))})


def _our_trainer(config, tf):
    """The training network wrapped and compiled exactly as MaskRCNN.train does, all layers trainable."""
    from mrcnn.model import MaskRCNN
    from mrcnn.training import build_trainer
    import tempfile
    model = MaskRCNN("training", config, tempfile.gettempdir())
    model.set_trainable(".*")
    trainer = build_trainer(model.keras_model, config, config.LEARNING_RATE)
    trainer.optimizer.build(trainer.trainable_variables)
    return trainer


def _our_fixed_batches(config, count):
    from mrcnn.data import make_training_dataset
    dataset = _shapes_dataset(count * int(config.BATCH_SIZE), int(config.IMAGE_MAX_DIM))
    stream = make_training_dataset(dataset, config, shuffle=False, seed=0)
    return [batch for batch in stream.take(count)]


def ours_training(size, batch, warmup, repeat, threads, backbone="resnet50", extra=None):
    tf = _tensorflow(threads)
    import keras
    keras.utils.set_random_seed(0)
    config = _our_config(size, "training", backbone=backbone, batch=batch)
    trainer = _our_trainer(config, tf)
    batches = _our_fixed_batches(config, FIXED_BATCHES)
    step = tf.function(trainer.train_step, jit_compile=False, reduce_retracing=True)
    position = [0]
    losses = []

    def call():
        logs = step(batches[position[0] % len(batches)])
        position[0] += 1
        losses.append(float(logs["loss"]))      # waits for the step to finish

    seconds = _timed_calls(call, warmup, repeat)
    result = {"seconds": seconds, "first_loss": losses[0], "last_loss": losses[-1], **(extra or {})}
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        result["gpu_peak_bytes"] = tf.config.experimental.get_memory_info("GPU:0")["peak"]
    _emit(result)


def ours_big_training(warmup, repeat, threads):
    """Training at 1024 px, batch 2, ResNet-101: peak GPU memory on a GPU; without one, a CPU step's RSS.

    On the CPU a single timed step (no warm-up) keeps it to minutes; the RSS right after importing
    TensorFlow is reported too, so the step's own share (peak less that) can be told apart.
    """
    tf = _tensorflow(threads)
    if tf.config.list_physical_devices("GPU"):
        ours_training(1024, 2, warmup, repeat, threads, backbone="resnet101")
        return
    ours_training(1024, 2, 0, 1, threads, backbone="resnet101",
                  extra={"gpu": False, "rss_after_import_bytes": _current_rss_bytes()})


def matterport_settings(size, backbone):
    """The Config values both engines get against Matterport: its defaults but for these."""
    return dict(NAME="bench_matterport", NUM_CLASSES=MATTERPORT_CLASSES, BACKBONE=backbone,
                IMAGE_MIN_DIM=size, IMAGE_MAX_DIM=size, GPU_COUNT=1, IMAGES_PER_GPU=1)


def ours_with_matterport_weights(size, backbone, weights, repeat, threads):
    """Our detect() with Matterport's settings and its weight file, timed as its worker times its own."""
    tf = _tensorflow(threads)
    import keras
    from mrcnn.config import Config
    from mrcnn.model import MaskRCNN
    config = type("MatterportBenchConfig", (Config,), matterport_settings(size, backbone))()
    model = MaskRCNN("inference", config, tempfile.gettempdir())
    report = model.load_weights(weights, by_name=True)
    image = _shapes_dataset(1, size).load_image(0)
    detections = len(model.detect([image])[0]["class_ids"])
    seconds = _timed_calls(lambda: model.detect([image]), MATTERPORT_WARMUP, repeat)
    _emit({"seconds": seconds, "detections": detections, "weights": str(report).splitlines()[0],
           "weights_whole": not (report.missing or report.unused or report.skipped),
           "tensorflow": tf.__version__, "keras": keras.__version__})


# -- torchvision ------------------------------------------------------------------------------

def _torch(threads):
    import torch
    if threads:
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
    torch.manual_seed(0)
    return torch


def clip_each_gradient(torch, parameters, max_norm):
    """Clip every parameter's gradient to `max_norm` on its own: the rule of our GRADIENT_CLIP_NORM (Keras clipnorm)."""
    for parameter in parameters:
        if parameter.grad is not None:
            torch.nn.utils.clip_grad_norm_([parameter], max_norm)


def _torchvision_model(size):
    from torchvision.models.detection import maskrcnn_resnet50_fpn
    return maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=NUM_CLASSES, min_size=size, max_size=size,
        rpn_pre_nms_top_n_test=PRE_NMS, rpn_post_nms_top_n_test=POST_NMS_INFERENCE,
        rpn_pre_nms_top_n_train=PRE_NMS, rpn_post_nms_top_n_train=POST_NMS_TRAINING,
        box_detections_per_img=DETECTIONS, box_score_thresh=0.0, box_nms_thresh=DETECTION_NMS,
        box_batch_size_per_image=TRAIN_ROIS, box_positive_fraction=POSITIVE_FRACTION)


def _as_torch_image(torch, image):
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255.0).contiguous()


def torch_inference(size, warmup, repeat, threads):
    torch = _torch(threads)
    model = _torchvision_model(size).eval()
    image = _as_torch_image(torch, _shapes_dataset(1, size).load_image(0))
    counts = []

    def call():
        with torch.inference_mode():
            counts.append(len(model([image])[0]["labels"]))

    seconds = _timed_calls(call, warmup, repeat)
    _emit({"seconds": seconds, "detections": counts[-1]})


def _torch_fixed_batches(torch, count, batch):
    """The same shapes images as ours (same dataset seed and order), as torchvision targets."""
    dataset = _shapes_dataset(count * batch, TRAIN_SIZE)
    batches = []
    for first in range(0, count * batch, batch):
        images, targets = [], []
        for image_id in range(first, first + batch):
            masks, class_ids = dataset.load_mask(image_id)
            visible = masks.reshape(-1, masks.shape[-1]).any(axis=0)     # drop shapes covered entirely
            masks, class_ids = masks[..., visible], class_ids[visible]
            boxes = []
            for k in range(masks.shape[-1]):
                ys, xs = masks[..., k].any(axis=1).nonzero()[0], masks[..., k].any(axis=0).nonzero()[0]
                boxes.append([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1])
            images.append(_as_torch_image(torch, dataset.load_image(image_id)))
            targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32),
                            "labels": torch.tensor(class_ids, dtype=torch.int64),
                            "masks": torch.from_numpy(masks.transpose(2, 0, 1).astype("uint8"))})
        batches.append((images, targets))
    return batches


def torch_training(warmup, repeat, threads):
    torch = _torch(threads)
    model = _torchvision_model(TRAIN_SIZE).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    batches = _torch_fixed_batches(torch, FIXED_BATCHES, TRAIN_BATCH)
    position = [0]
    losses = []

    def call():
        images, targets = batches[position[0] % len(batches)]
        position[0] += 1
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        clip_each_gradient(torch, model.parameters(), CLIP_NORM)
        optimizer.step()
        losses.append(float(loss))

    seconds = _timed_calls(call, warmup, repeat)
    _emit({"seconds": seconds, "first_loss": losses[0], "last_loss": losses[-1]})


# -- the parent: one subprocess per measurement, then the table -------------------------------

def _run_worker(args, task, size=None, hide_gpu=True, extra=()):
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", task,
               "--threads", str(args.threads), "--warmup", str(args.warmup), "--repeat", str(args.repeat)]
    if size is not None:
        command += ["--size", str(size)]
    command += list(extra)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    if hide_gpu:
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    label = f"{task}{'' if size is None else f' {size} px'}"
    print(f"... {label}", flush=True)
    started = time.perf_counter()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
    for line in finished.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            result["wall_seconds"] = time.perf_counter() - started
            return result
    tail = "\n".join((finished.stdout + finished.stderr).splitlines()[-25:])
    print(f"    {label} failed (exit {finished.returncode}); its last lines:\n{tail}", flush=True)
    return None


def _median(result):
    return statistics.median(result["seconds"]) if result else None


def _gb(count):
    return count / 1e9


def _speed_row(name, ours, theirs, unit, goal):
    ours_s, theirs_s = _median(ours), _median(theirs)
    ours_rate = f"{1 / ours_s:8.3f}" if ours_s else "  failed"
    if theirs is None:
        return f"{name:<22}{ours_rate} {unit:<9}{'-':>10}{'-':>8}  {'(no reference)'}"
    theirs_rate = f"{1 / theirs_s:8.3f}" if theirs_s else "  failed"
    if not (ours_s and theirs_s):
        return f"{name:<22}{ours_rate} {unit:<9}{theirs_rate:>10}{'-':>8}  goal <= {goal}: unknown"
    ratio = ours_s / theirs_s
    verdict = "met" if ratio <= goal else "NOT met"
    return f"{name:<22}{ours_rate} {unit:<9}{theirs_rate:>10}{ratio:8.2f}  goal <= {goal}: {verdict}"


def _big_training_line(big):
    """The line on training at 1024 px, batch 2, ResNet-101: GPU peak memory, or the CPU estimate."""
    what = "training 1024 px batch 2 ResNet-101"
    if big is None:
        return f"memory: {what} failed (see above)"
    if big.get("gpu", True):
        peak = _gb(big["gpu_peak_bytes"])
        verdict = "met" if peak < GOAL_GPU_GB else "NOT met"
        return (f"memory: {what} on the GPU: peak GPU memory {peak:.2f} GB, goal < {GOAL_GPU_GB} GB: {verdict}; "
                f"{1 / _median(big):.3f} steps/s")
    peak = _gb(big["peak_rss_bytes"])
    library = big.get("rss_after_import_bytes")
    if library is None:
        return f"memory: {what} on the CPU (no GPU visible): peak RSS {peak:.2f} GB, one step {_median(big):.0f} s"
    step = peak - _gb(library)
    verdict = "fits" if step < GOAL_GPU_GB else "does NOT fit"
    return (f"memory: {what} on the CPU (no GPU visible): peak RSS {peak:.2f} GB, TensorFlow alone "
            f"{_gb(library):.2f} GB, so the step needs about {step:.2f} GB: {verdict} in {GOAL_GPU_GB} GB "
            f"(an estimate from the CPU, not a GPU measurement); one step {_median(big):.0f} s")


@contextlib.contextmanager
def _environment(**values):
    """os.environ with `values` set for the block (Matterport's process inherits the environment)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _load():
    one, five, fifteen = os.getloadavg()
    return {"1min": round(one, 2), "5min": round(five, 2), "15min": round(fifteen, 2)}


def _matterport_side(reference, started):
    """Matterport's worker output (matterport_reference.run) as the bench's result dict."""
    return {"seconds": [float(s) for s in reference["detect_seconds"]],
            "detections": int(len(reference["detect_class_ids_0"])),
            "peak_rss_bytes": int(reference["peak_rss_bytes"]),
            "wall_seconds": time.perf_counter() - started}


def matterport_comparison(size, ours, theirs):
    """One size's entry: both sides' results, their median s/image and the ratio Matterport / ours."""
    ours_s, theirs_s = _median(ours), _median(theirs)
    ratio = theirs_s / ours_s if ours_s and theirs_s else None
    return {"size": size, "ours": ours, "matterport": theirs, "ours_s_per_image": ours_s,
            "matterport_s_per_image": theirs_s, "ratio_matterport_over_ours": ratio}


def _matterport_line(entry):
    def seconds(value):
        return f"{value:10.3f}" if value else f"{'failed':>10}"

    def pair(key, form="d", scale=None):
        values = [entry[side][key] if entry[side] else None for side in ("ours", "matterport")]
        return " / ".join("-" if v is None else format(v / scale if scale else v, form) for v in values)

    ratio = entry["ratio_matterport_over_ours"]
    return (f"{entry['size']:>5} px{seconds(entry['ours_s_per_image'])}{seconds(entry['matterport_s_per_image'])}"
            f"{'-' if ratio is None else format(ratio, '.2f'):>9}   {pair('detections'):>9}   "
            f"{pair('peak_rss_bytes', '.2f', 1e9):>11}   {_load_span(entry['ours'])} / {_load_span(entry['matterport'])}")


def _load_span(side):
    """The 1-minute load average before and after a side ran ("-" when it did not)."""
    if not side or "load_before" not in side:
        return "-"
    return f"{side['load_before']['1min']:.1f}-{side['load_after']['1min']:.1f}"


def against_matterport(args):
    """--against matterport: Matterport's detect() and ours, same settings, weights and image; returns the exit code."""
    sys.path.insert(0, str(REPO))
    from helpers.io import write_json_atomic
    from tests import matterport_reference
    try:
        matterport_reference.install()
    except matterport_reference.ReferenceUnavailable as error:
        print(f"Matterport's original cannot be installed here, nothing was timed: {error}")
        return 2
    backbone = args.backbone or MATTERPORT_BACKBONE
    out = Path(args.out) if args.out else (
        REPO / "bench" / "results" / "matterport_speed" / f"matterport_{backbone}_{'_'.join(map(str, args.sizes))}px.json")
    print(f"Mask R-CNN against Matterport's original ({matterport_reference.MATTERPORT} on "
          f"{matterport_reference.tf_keras_requirement()}): {backbone}, random weights (the same file for both), "
          f"{MATTERPORT_CLASSES} classes, batch 1, threads={args.threads}; each side one detect() for the "
          f"detections, {MATTERPORT_WARMUP} more untimed, then the median of {args.repeat}; CPU")
    saved = {"settings": {"against": "matterport", "backbone": backbone, "sizes": args.sizes,
                          "classes": MATTERPORT_CLASSES, "batch": 1, "threads": args.threads,
                          "warmup": MATTERPORT_WARMUP, "repeat": args.repeat, "image": "mrcnn/samples/shapes.py seed 0",
                          "matterport": matterport_reference.MATTERPORT,
                          "tf_keras": matterport_reference.tf_keras_requirement()},
             "load_before": _load(), "results": [], "complete": False}
    print(f"  load before: {saved['load_before']['1min']:.2f} {saved['load_before']['5min']:.2f} "
          f"{saved['load_before']['15min']:.2f} (1/5/15 min)")
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench_matterport_") as workdir:
            weights = str(Path(workdir) / "matterport.h5")
            job = dict(config=matterport_settings(size, backbone), seed=0, threads=args.threads,
                       weights_out=weights, detect=True, time_repeats=args.repeat)
            print(f"... matterport-inference {size} px", flush=True)
            started, load = time.perf_counter(), _load()
            try:
                with _environment(CUDA_VISIBLE_DEVICES="-1"):
                    reference = matterport_reference.run(job, workdir, [_shapes_dataset(1, size).load_image(0)],
                                                         timeout=900 + 60 * args.repeat)
                theirs = dict(_matterport_side(reference, started), load_before=load, load_after=_load())
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"    matterport-inference {size} px failed: {error}", flush=True)
                theirs = None
            ours = None
            if theirs:          # without its weight file there is nothing the same to run
                load = _load()
                ours = _run_worker(args, "ours-matterport", size, extra=["--backbone", backbone, "--weights", weights])
            if ours:            # the machine's load while each side ran: the two are not interleaved
                ours.update(load_before=load, load_after=_load())
                if not ours["weights_whole"]:
                    print(f"    warning: Matterport's weights did not load whole into ours: {ours['weights']}")
        saved["results"].append(matterport_comparison(size, ours, theirs))
        write_json_atomic(out, saved, indent=1)          # kept after every size
    saved["load_after"] = _load()
    saved["complete"] = True
    write_json_atomic(out, saved, indent=1)

    print(f"\n{'size':>8}{'ours':>10}{'Matterport':>11}{'ratio':>9}   detections   peak RSS GB   load while run")
    for entry in saved["results"]:
        print(_matterport_line(entry))
    print("(median s/image; ratio = Matterport's / ours, above 1: ours is faster; "
          "detections, peak RSS and the 1-minute load average before-after each side: ours / Matterport's)")
    print(f"load after: {saved['load_after']['1min']:.2f} {saved['load_after']['5min']:.2f} "
          f"{saved['load_after']['15min']:.2f} (1/5/15 min)")
    print(f"written: {out}")
    return 0 if all(entry["ratio_matterport_over_ours"] for entry in saved["results"]) else 1


def _torch_available():
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "torchvision"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="inference image sides (px)")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed calls first (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for TensorFlow and torch")
    parser.add_argument("--skip-torch", action="store_true", help="ours only, no torchvision reference")
    parser.add_argument("--skip-training", action="store_true", help="inference and memory only")
    parser.add_argument("--quick", action="store_true", help="fewer calls: 1 warm-up, 2 timed")
    parser.add_argument("--against", choices=("torch", "matterport"), default="torch",
                        help="the reference: torchvision (default), or Matterport's original (inference only)")
    parser.add_argument("--backbone", choices=("resnet50", "resnet101"),
                        help=f"against matterport only (default {MATTERPORT_BACKBONE}); torchvision's is ResNet-50")
    parser.add_argument("--out", help="against matterport: the JSON result (default bench/results/matterport_speed/matterport_...json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.worker and args.against == "torch" and (args.backbone or args.out):
        parser.error("--backbone and --out go with --against matterport (torchvision's model is ResNet-50)")
    if not args.worker and args.against == "matterport" and args.warmup is not None:
        parser.error(f"--warmup: against Matterport both sides warm up as its worker does "
                     f"(one detect() for the detections, {MATTERPORT_WARMUP} more untimed)")
    if args.repeat is None:
        args.repeat = 2 if args.quick else 5
    if args.warmup is None:
        args.warmup = 1 if args.quick else 2
    if args.repeat < 1 or args.warmup < 0 or args.threads < 0:
        parser.error("--repeat must be >= 1, --warmup >= 0, --threads >= 0 (0: the library default)")
    bad_sizes = [size for size in args.sizes if size < 64 or size % 64]
    if bad_sizes:
        parser.error(f"--sizes {bad_sizes}: every size must be a multiple of 64 (our backbone needs it)")

    if args.worker:
        workers = {
            "ours-inference": lambda: ours_inference(args.size, args.warmup, args.repeat, args.threads),
            "torch-inference": lambda: torch_inference(args.size, args.warmup, args.repeat, args.threads),
            "ours-training": lambda: ours_training(TRAIN_SIZE, TRAIN_BATCH, args.warmup, args.repeat,
                                                   args.threads),
            "torch-training": lambda: torch_training(args.warmup, args.repeat, args.threads),
            "ours-big-training": lambda: ours_big_training(args.warmup, args.repeat, args.threads),
            "ours-matterport": lambda: ours_with_matterport_weights(args.size, args.backbone, args.weights,
                                                                    args.repeat, args.threads),
        }
        workers[args.worker]()
        return 0
    if args.against == "matterport":
        return against_matterport(args)

    with_torch = not args.skip_torch and _torch_available()
    if not args.skip_torch and not with_torch:
        print(f"torch/torchvision are not installed: timing ours only. To compare, install them:\n  {TORCH_INSTALL}")
    print(f"Mask R-CNN bench: ResNet-50 FPN, random weights, {NUM_CLASSES} classes, threads={args.threads}, "
          f"warm-up {args.warmup}, median of {args.repeat}; CPU")
    print(f"  proposals: pre-NMS {PRE_NMS} (torchvision: per level), post-NMS {POST_NMS_INFERENCE} inference / "
          f"{POST_NMS_TRAINING} training; detections {DETECTIONS} (score threshold 0, NMS {DETECTION_NMS})")
    print(f"  training: batch {TRAIN_BATCH}, {TRAIN_SIZE} px, ROIs per image {TRAIN_ROIS} "
          f"(positive {POSITIVE_FRACTION}), SGD lr {LEARNING_RATE} momentum {MOMENTUM} weight decay "
          f"{WEIGHT_DECAY} clip norm {CLIP_NORM}, trainable BatchNorm, {FIXED_BATCHES} fixed toy-shape batches")
    print(f"  load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")

    results = {}
    for size in args.sizes:
        results[("ours-inference", size)] = _run_worker(args, "ours-inference", size)
        if with_torch:
            results[("torch-inference", size)] = _run_worker(args, "torch-inference", size)
    if not args.skip_training:
        results[("ours-training", None)] = _run_worker(args, "ours-training")
        if with_torch:
            results[("torch-training", None)] = _run_worker(args, "torch-training")
    big = _run_worker(args, "ours-big-training", hide_gpu=False) if not args.skip_training else None

    print(f"\n{'measurement':<22}{'ours':>8} {'unit':<9}{'torch':>10}{'ratio':>8}  (ratio = ours/theirs time)")
    for size in args.sizes:
        print(_speed_row(f"inference {size} px", results[("ours-inference", size)],
                         results.get(("torch-inference", size)), "images/s", GOAL_INFERENCE_RATIO))
    if not args.skip_training:
        print(_speed_row(f"training {TRAIN_SIZE} px b{TRAIN_BATCH}", results[("ours-training", None)],
                         results.get(("torch-training", None)), "steps/s", GOAL_TRAINING_RATIO))

    print("\ndetails (median / min / max seconds per call, peak RSS of its subprocess):")
    for (task, size), result in results.items():
        if result is None:
            print(f"  {task:<16}{'' if size is None else size:>6}  failed")
            continue
        seconds = result["seconds"]
        extra = ""
        if "detections" in result:
            extra = f"  detections {result['detections']}"
        if "first_loss" in result:
            extra = f"  loss {result['first_loss']:.3f} -> {result['last_loss']:.3f}"
        print(f"  {task:<16}{'' if size is None else size:>6}  {statistics.median(seconds):7.3f} "
              f"{min(seconds):7.3f} {max(seconds):7.3f} s   RSS {_gb(result['peak_rss_bytes']):5.2f} GB{extra}")

    biggest = max((size for size in args.sizes), default=None)
    ours_big = results.get(("ours-inference", biggest))
    if ours_big:
        rss = _gb(ours_big["peak_rss_bytes"])
        verdict = "met" if rss < GOAL_RSS_GB else "NOT met"
        note = "" if biggest == 1024 else f" (goal is stated for 1024 px; largest size run: {biggest})"
        print(f"\nmemory: ours inference {biggest} px peak RSS {rss:.2f} GB, goal < {GOAL_RSS_GB} GB: {verdict}{note}")
    if not args.skip_training:
        print(_big_training_line(big))
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
