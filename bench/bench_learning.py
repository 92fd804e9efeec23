"""Does our Mask R-CNN learn as well as torchvision's? Mask AP on held-out toy shapes, checkpoint by checkpoint.

What it does (issue 3): trains our Mask R-CNN (mrcnn/) and torchvision's maskrcnn_resnet50_fpn side by
side from random initialisation on the same synthetic shapes (mrcnn/samples/shapes.py), and after every chunk
of training scores both on the same held-out shapes with the same pycocotools code (mask AP50, AP).
Goal: ours >= theirs (mask AP50, at the 3 decimals printed) at every checkpoint.

Kept equal for both:
  data       a seeded train set and a held-out set (another seed) of --size px shapes, 3 classes;
             each model draws shuffled batches of --batch images from the same train set
  model      ResNet-50 FPN from random weights (ours: BACKBONE "resnet50", no weight file; theirs:
             weights=None, weights_backbone=None, trainable_backbone_layers=5), trainable BatchNorm,
             the proposal / ROI / detection numbers of bench/bench_mrcnn.py (imported from there)
  optimiser  SGD momentum 0.9, weight decay 1e-4 (not on biases and BatchNorm), each gradient tensor
             clipped to norm 5 on its own (Matterport's rule; a global clip let conv1 shrink every step),
             the same learning rate per iteration: linear warm-up over --warmup iterations to --lr,
             then constant (our weight decay is Keras' decoupled form, theirs torch's L2 term)
  checking   both models' detections become the same detect()-style dicts (torchvision's soft
             (N, 1, H, W) masks thresholded at 0.5) and go through mrcnn.samples.shapes.coco_mask_ap, twice:
             with the BatchNorm statistics as training left them (moving averages, momentum 0.1 in
             torch's terms), and again after re-estimating them on --bn-batches training batches
             (the mean over those batches; "precise BN", Wu & Johnson 2021), then putting the moving
             averages back so training goes on untouched. A young model's weights move faster than
             its moving averages follow, so its first AP can be far below what its weights can do;
             the second AP measures the weights. The goal is checked on both.

Training runs in chunks, each model in its own subprocess (TensorFlow and torch do not share a
process: importing torchvision after TensorFlow crashes), the two taking turns chunk by chunk
(never both at once, so they do not share the cores): by wall time, --minutes in chunks of --every
minutes of training each (the faster model does more iterations; the first iteration's tracing
counts), or by iterations, --iterations in chunks of --eval-every. Evaluation time is not training
time. One line per checkpoint, then a table, also written as JSON to --out: rewritten after every
checkpoint with "complete": false until the last, so a run stopped early keeps what it measured.

    .venv/bin/python bench/bench_learning.py                      # 25 min each, checkpoint every 5
    .venv/bin/python bench/bench_learning.py --iterations 20 --eval-every 10 --threads 2
    python bench/bench_learning.py --only theirs --device cuda --iterations 368 --eval-every 92 --out theirs.json
    .venv/bin/python bench/bench_learning.py --only ours --iterations 368 --eval-every 92 --compare-with theirs.json
    .venv/bin/python bench/bench_learning.py --only ours ... --engine RPN_BBOX_LOSS=per_sampled --engine CONV_INIT=he

--only theirs needs no TensorFlow (a GPU machine with torch alone); --only ours no torch. --compare-with puts
the other side's checkpoints from an earlier --only run beside this run's (by iterations only: minutes on two
machines do not compare; the data, schedule and checkpoints must be the same, or it says which setting differs;
with another --bn-batches, --bn-batches 0 to save the second evaluation's time, only the as-trained scores compare).
TensorFlow uses its GPU when it sees one; torch uses --device (auto: cuda when available).
--engine NAME=VALUE (repeatable) changes one setting of our Config (a Python literal, else a string), so a
variant of the engine runs without editing the code; the JSON keeps the list under settings["engine"].
With --engine PRECISE_BN_BATCHES=N each chunk of ours ends as MaskRCNN.train() ends an epoch: its trained
BatchNorm layers' statistics measured on N training batches (counted as training time); torchvision's keep
their moving averages. By minutes, a chunk of ours then stops training that measurement's seconds (the last
one's) before its target, so the checkpoint falls on time; the first, with nothing measured yet, falls late
by its measurement (tracing included): the table's minutes say by how much.
"""
import argparse
import ast
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import bench_mrcnn as reference    # noqa: E402  (the shared proposal / ROI / optimiser numbers)
from helpers.io import write_json_atomic    # noqa: E402
from mrcnn.samples.shapes import ShapesDataset, coco_mask_ap    # noqa: E402

HELD_OUT_SEED_OFFSET = 1        # held-out set: seed + 1, so it never repeats the train images
SCORES = ("ap50", "ap", "ap50_bn", "ap_bn")     # compared checkpoint by checkpoint
MASK_THRESHOLD = 0.5            # torchvision's soft masks -> binary, as its own paste does for display
VERDICT_DECIMALS = 3            # scores print with 3 decimals; 50 held-out images cannot tell 0.0003 from 0


# -- data and schedule shared by both ---------------------------------------------------------

def make_shapes(count, size, seed):
    """A prepared ShapesDataset of `count` images of `size` px drawn with `seed`."""
    dataset = ShapesDataset()
    dataset.load_shapes(count, size=size, seed=seed)
    dataset.prepare()
    return dataset


def learning_rate_at(iteration, base, warmup):
    """The learning rate of iteration `iteration` (0-based): linear warm-up to `base`, then constant."""
    if warmup <= 0 or iteration >= warmup:
        return base
    return base * (iteration + 1) / warmup


class Learner:
    """What both sides share: iteration count, training seconds, per-iteration times and losses."""

    name = ""

    def __init__(self, args, train_set, held_out):
        self.args = args
        self.train_set = train_set
        self.held_out = held_out
        self.iterations = 0
        self.train_seconds = 0.0
        self.step_seconds = []

    def train_chunk(self, until_seconds=None, until_iterations=None, progress=True):
        """Train until the training clock or the iteration count reaches its target; returns the mean loss."""
        from tqdm.auto import tqdm
        total = None if until_iterations is None else until_iterations - self.iterations
        losses = []
        with tqdm(total=total, desc=f"{self.name} training", unit="it", leave=False, disable=not progress) as bar:
            while (self.train_seconds < until_seconds if until_iterations is None
                   else self.iterations < until_iterations):
                rate = learning_rate_at(self.iterations, self.args.lr, self.args.warmup)
                started = time.perf_counter()
                losses.append(self.train_step(rate))     # returns a Python float: the step has finished
                seconds = time.perf_counter() - started
                self.step_seconds.append(seconds)
                self.train_seconds += seconds
                self.iterations += 1
                bar.update(1)
        return float(np.mean(losses)) if losses else float("nan")

    def evaluate(self):
        """Mask AP50 and AP on the held-out set (mrcnn.samples.shapes.coco_mask_ap), as trained and with
        re-estimated BatchNorm statistics (when --bn-batches > 0), and the seconds it took."""
        started = time.perf_counter()
        image_ids = list(self.held_out.image_ids)
        images = [self.held_out.load_image(i) for i in image_ids]
        ap, ap50 = coco_mask_ap(self.held_out, image_ids, self.detect(images))
        scores = {"ap50": ap50, "ap": ap, "ap50_bn": None, "ap_bn": None}
        if self.args.bn_batches:
            saved = self.save_batch_norm()
            self.estimate_batch_norm(self.args.bn_batches)
            scores["ap_bn"], scores["ap50_bn"] = coco_mask_ap(self.held_out, image_ids, self.detect(images))
            self.restore_batch_norm(saved)
        return {**scores, "eval_seconds": time.perf_counter() - started}

    def speed(self):
        """First iteration's seconds (tracing included) and the median of the later ones."""
        later = self.step_seconds[1:] or self.step_seconds
        return {"first_iteration_seconds": self.step_seconds[0] if self.step_seconds else None,
                "seconds_per_iteration": statistics.median(later) if later else None}

    def train_step(self, learning_rate):
        """One iteration at `learning_rate`; returns its loss as a float (so the step has finished)."""
        raise NotImplementedError

    def detect(self, images):
        raise NotImplementedError

    def save_batch_norm(self):
        """A copy of every BatchNorm layer's moving statistics."""
        raise NotImplementedError

    def estimate_batch_norm(self, batches):
        """Set the moving statistics to their mean over `batches` training batches (no weight changes)."""
        raise NotImplementedError

    def restore_batch_norm(self, saved):
        raise NotImplementedError


# -- ours -------------------------------------------------------------------------------------

class Ours(Learner):
    """Our MaskRCNN: the trainer's train_step on our tf.data pipeline; detect() on a twin inference model."""

    name = "ours"
    calibration_seconds = 0.0     # the last precise-BN measurement's seconds (PRECISE_BN_BATCHES)

    def __init__(self, args, train_set, held_out):
        super().__init__(args, train_set, held_out)
        import tensorflow as tf
        if args.threads:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        for gpu in tf.config.list_physical_devices("GPU"):     # leave GPU memory to torch's process too
            tf.config.experimental.set_memory_growth(gpu, True)
        import keras
        from helpers.training import COURSE_ENGINE
        from mrcnn.config import Config
        from mrcnn.data import make_training_dataset
        from mrcnn.model import MaskRCNN
        from mrcnn.training import build_trainer

        keras.utils.set_random_seed(args.seed)
        self.device = f"{len(tf.config.list_physical_devices('GPU'))} GPU(s) visible to TensorFlow"
        config = Config(**dict(
            NAME="learning", BACKBONE="resnet50", NUM_CLASSES=reference.NUM_CLASSES, IMAGES_PER_GPU=args.batch,
            IMAGE_RESIZE_MODE="square", IMAGE_MIN_DIM=args.size, IMAGE_MAX_DIM=args.size,
            PRE_NMS_LIMIT=reference.PRE_NMS, POST_NMS_ROIS_TRAINING=reference.POST_NMS_TRAINING,
            POST_NMS_ROIS_INFERENCE=reference.POST_NMS_INFERENCE, TRAIN_ROIS_PER_IMAGE=reference.TRAIN_ROIS,
            ROI_POSITIVE_RATIO=reference.POSITIVE_FRACTION, DETECTION_MAX_INSTANCES=reference.DETECTIONS,
            DETECTION_MIN_CONFIDENCE=0.0, DETECTION_NMS_THRESHOLD=reference.DETECTION_NMS,
            TRAIN_BN=True,                  # from scratch: no pretrained statistics to freeze
            BATCH_NORM_MOMENTUM=0.9,        # torch's BatchNorm momentum 0.1 = a 0.9 moving average
            LEARNING_RATE=args.lr, LEARNING_MOMENTUM=reference.MOMENTUM, WEIGHT_DECAY=reference.WEIGHT_DECAY,
            GRADIENT_CLIP_NORM=reference.CLIP_NORM) | COURSE_ENGINE     # the engine as the course runs it
            | engine_overrides(args.engine))   # --engine wins
        model_dir = tempfile.gettempdir()     # nothing is written: no fit(), no checkpoints
        self.model = MaskRCNN("training", config, model_dir)
        self.detector = MaskRCNN("inference", config, model_dir)
        self.model.set_trainable(".*")
        # The trainer and optimiser exactly as MaskRCNN.train builds them, all layers trainable.
        self.trainer = build_trainer(self.model.keras_model, config, args.lr)
        self.trainer.optimizer.build(self.trainer.trainable_variables)
        self.batches = iter(make_training_dataset(train_set, config, shuffle=True, seed=args.seed))
        self.step = tf.function(self.trainer.train_step, jit_compile=False, reduce_retracing=True)

    def train_chunk(self, until_seconds=None, until_iterations=None, progress=True):
        """As Learner's; with Config.PRECISE_BN_BATCHES a chunk ends as train() ends an epoch: the trained
        BatchNorm layers' statistics re-measured (the same call, its seconds counted as training). By
        minutes, training stops the last measurement's seconds early, so the measurement ends near the target."""
        batches = self.model.config.PRECISE_BN_BATCHES
        if batches and until_seconds is not None:
            until_seconds -= self.calibration_seconds
        loss = super().train_chunk(until_seconds, until_iterations, progress)
        if batches:
            started = time.perf_counter()
            self.model.calibrate_batch_norm(self.train_set, batches=batches, seed=self.args.seed + self.iterations,
                                            trainable_only=True)
            self.calibration_seconds = time.perf_counter() - started
            self.train_seconds += self.calibration_seconds
        return loss

    def train_step(self, learning_rate):
        for metric in self.trainer.metrics:     # the loss trackers are running means: this step's alone
            metric.reset_state()
        self.trainer.optimizer.learning_rate = learning_rate
        logs = self.step(next(self.batches))
        return float(logs["loss"])

    def detect(self, images):
        self._copy_weights_to_detector()
        return self.detector.detect(images)

    def save_batch_norm(self):
        from mrcnn.model import batch_norm_layers
        return [(layer, [np.array(w) for w in layer.get_weights()])
                for layer in batch_norm_layers(self.model.keras_model)]

    def estimate_batch_norm(self, batches):
        self.model.calibrate_batch_norm(self.train_set, batches=batches, seed=self.args.seed + self.iterations)

    def restore_batch_norm(self, saved):
        for layer, values in saved:
            layer.set_weights(values)

    def _copy_weights_to_detector(self):
        """The training model's weights into the inference model, layer by layer (same names)."""
        training = self.model.keras_model
        for layer in self.detector.keras_model.layers:
            if layer.weights:
                layer.set_weights(training.get_layer(layer.name).get_weights())


# -- torchvision ------------------------------------------------------------------------------

class Theirs(Learner):
    """torchvision's maskrcnn_resnet50_fpn with the same numbers; plain training loop."""

    name = "theirs"

    def __init__(self, args, train_set, held_out):
        super().__init__(args, train_set, held_out)
        import torch
        from torchvision.models.detection import maskrcnn_resnet50_fpn
        if args.threads:
            torch.set_num_threads(args.threads)
            torch.set_num_interop_threads(args.threads)
        torch.manual_seed(args.seed)
        self.torch = torch
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        if device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device (use --device cpu)")
        self.device = device
        self.model = maskrcnn_resnet50_fpn(
            weights=None, weights_backbone=None, trainable_backbone_layers=5, num_classes=reference.NUM_CLASSES,
            min_size=args.size, max_size=args.size,
            rpn_pre_nms_top_n_train=reference.PRE_NMS, rpn_pre_nms_top_n_test=reference.PRE_NMS,
            rpn_post_nms_top_n_train=reference.POST_NMS_TRAINING,
            rpn_post_nms_top_n_test=reference.POST_NMS_INFERENCE,
            box_detections_per_img=reference.DETECTIONS, box_score_thresh=0.0,
            box_nms_thresh=reference.DETECTION_NMS, box_batch_size_per_image=reference.TRAIN_ROIS,
            box_positive_fraction=reference.POSITIVE_FRACTION).to(device).train()
        # Weight decay as ours: not on biases nor BatchNorm (the 1-d parameters).
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(
            [{"params": [p for p in parameters if p.ndim > 1], "weight_decay": reference.WEIGHT_DECAY},
             {"params": [p for p in parameters if p.ndim <= 1], "weight_decay": 0.0}],
            lr=args.lr, momentum=reference.MOMENTUM)
        self.samples = [self._sample(image_id) for image_id in train_set.image_ids]
        self.order = np.random.default_rng(args.seed)
        self.queue = []

    def _sample(self, image_id):
        """One train image as a uint8 (3, H, W) tensor and its torchvision target; hidden shapes dropped."""
        torch = self.torch
        masks, class_ids = self.train_set.load_mask(image_id)
        visible = masks.any(axis=(0, 1))
        masks, class_ids = masks[..., visible], class_ids[visible]
        boxes = []
        for k in range(masks.shape[-1]):
            rows, columns = masks[..., k].any(axis=1).nonzero()[0], masks[..., k].any(axis=0).nonzero()[0]
            boxes.append([columns[0], rows[0], columns[-1] + 1, rows[-1] + 1])      # x1, y1, x2, y2 (exclusive)
        image = torch.from_numpy(self.train_set.load_image(image_id)).permute(2, 0, 1).contiguous()
        target = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                  "labels": torch.tensor(class_ids, dtype=torch.int64),
                  "masks": torch.from_numpy(masks.transpose(2, 0, 1).astype(np.uint8))}
        return image, target

    def _next_batch(self):
        """The next --batch samples of a fresh shuffle of the train set each epoch (seeded)."""
        while len(self.queue) < self.args.batch:
            self.queue.extend(self.order.permutation(len(self.samples)).tolist())
        chosen, self.queue = self.queue[:self.args.batch], self.queue[self.args.batch:]
        return self._batch(chosen)

    def _batch(self, chosen):
        """Images (floats in [0, 1]) and targets of the samples `chosen`, on the device."""
        images = [self.samples[i][0].to(self.device).float().div(255.0) for i in chosen]
        targets = [{key: value.to(self.device) for key, value in self.samples[i][1].items()} for i in chosen]
        return images, targets

    def train_step(self, learning_rate):
        torch = self.torch
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        images, targets = self._next_batch()
        loss = sum(self.model(images, targets).values())
        self.optimizer.zero_grad()
        loss.backward()
        reference.clip_each_gradient(torch, self.model.parameters(), reference.CLIP_NORM)
        self.optimizer.step()
        return float(loss.detach())

    def _batch_norms(self):
        return [m for m in self.model.modules() if isinstance(m, self.torch.nn.modules.batchnorm._BatchNorm)]

    def save_batch_norm(self):
        return [(m, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
                for m in self._batch_norms()]

    def estimate_batch_norm(self, batches):
        """torch's own cumulative mode: momentum None averages the batches seen since the reset."""
        torch = self.torch
        norms = self._batch_norms()
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        order = np.random.default_rng(self.args.seed + self.iterations)
        try:
            with torch.no_grad():
                for _ in range(batches):
                    chosen = order.choice(len(self.samples), self.args.batch, replace=False)
                    self.model(*self._batch(chosen))     # training mode: batch statistics, as in training
        finally:
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum

    def restore_batch_norm(self, saved):
        for m, mean, var, count in saved:
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)

    def detect(self, images):
        """detect()-style dicts: rois [y1, x1, y2, x2], class_ids, scores, masks (H, W, N) bool."""
        torch = self.torch
        self.model.eval()
        results = []
        with torch.inference_mode():
            for start in range(0, len(images), self.args.batch):
                chunk = [torch.from_numpy(image).permute(2, 0, 1).float().div(255.0).to(self.device)
                         for image in images[start:start + self.args.batch]]
                for output in self.model(chunk):
                    masks = (output["masks"][:, 0] > MASK_THRESHOLD).cpu().numpy().transpose(1, 2, 0)
                    results.append({"rois": output["boxes"].cpu().numpy()[:, [1, 0, 3, 2]],
                                    "class_ids": output["labels"].cpu().numpy().astype(np.int32),
                                    "scores": output["scores"].cpu().numpy(), "masks": masks})
        self.model.train()
        return results


# -- one side in its own process ---------------------------------------------------------------

LEARNERS = {"ours": Ours, "theirs": Theirs}
RESULT_PREFIX = "LEARNING_RESULT "
GO = "go\n"


def checkpoint_targets(args):
    """Training targets of the checkpoints: every, 2*every, ... up to the total, the total always last."""
    total, every = (args.minutes, args.every) if args.iterations is None else (args.iterations, args.eval_every)
    targets = []
    point = every
    while point < total - 1e-9:
        targets.append(point)
        point += every
    return targets + [total]


def _emit(kind, payload):
    print(RESULT_PREFIX + json.dumps({"kind": kind, **payload}), flush=True)


def run_worker(args):
    """One side: build, say ready, then per checkpoint wait for 'go' on stdin, train a chunk, evaluate, report."""
    train_set = make_shapes(args.train_images, args.size, args.seed)
    held_out = make_shapes(args.eval_images, args.size, args.seed + HELD_OUT_SEED_OFFSET)
    learner = LEARNERS[args.worker](args, train_set, held_out)
    _emit("ready", {"device": learner.device})
    for target in checkpoint_targets(args):
        if sys.stdin.readline() != GO:
            return 1                      # the parent has gone: stop quietly
        if args.iterations is None:
            loss = learner.train_chunk(until_seconds=target * 60, progress=args.progress)
        else:
            loss = learner.train_chunk(until_iterations=int(target), progress=args.progress)
        _emit("checkpoint", {"iterations": learner.iterations, "train_minutes": learner.train_seconds / 60,
                             "chunk_loss": loss, **learner.evaluate(), **learner.speed()})
    return 0


class Worker:
    """The parent's handle on one side's subprocess: start it, let it run a chunk, read its reports."""

    def __init__(self, name, argv):
        self.name = name
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
        # stderr (progress bars, library warnings) goes straight to ours; stdout carries the reports
        self.process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv, "--worker", name],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                        cwd=REPO)

    def report(self, kind):
        """The next report of `kind`; other stdout lines are passed through; a dead worker is an error."""
        for line in self.process.stdout:
            if line.startswith(RESULT_PREFIX):
                payload = json.loads(line[len(RESULT_PREFIX):])
                if payload.pop("kind") == kind:
                    return payload
            else:
                print(f"  [{self.name}] {line.rstrip()}", flush=True)
        code = self.process.wait()
        raise SystemExit(f"the {self.name} worker stopped (exit code {code}) before its {kind} report; "
                         "its error is printed above")

    def run_chunk(self):
        self.process.stdin.write(GO)
        self.process.stdin.flush()
        return self.report("checkpoint")

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait()


# -- the comparison ---------------------------------------------------------------------------

COMPARED_SETTINGS = ("size", "batch", "train_images", "eval_images", "lr", "warmup", "seed")
BN_SCORES = ("ap50_bn", "ap_bn")    # the second evaluation's: they compare only with the same --bn-batches


def read_result(path, label="", by_minutes=False):
    """(saved, settings, checkpoints) of a run from its --out JSON; a clear error naming it else.

    A run by minutes is refused unless `by_minutes`: --compare-with pairs another run's iterations with this
    one's, which only runs by --iterations share (a run by minutes holds both sides, timed on one machine)."""
    try:
        saved = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"{label}{path}: cannot read it as JSON ({error})") from None
    settings, checkpoints = (saved.get("settings"), saved.get("checkpoints")) if isinstance(saved, dict) else (0, 0)
    if not isinstance(settings, dict) or not isinstance(checkpoints, list):
        raise SystemExit(f"{label}{path}: not a bench_learning.py result (no settings and checkpoints)")
    if settings.get("iterations") is None and not by_minutes:
        raise SystemExit(f"{label}{path}: that run trained by minutes; only runs by --iterations compare")
    return saved, settings, checkpoints


def load_other_side(path, args):
    """The other side's checkpoints and device from an earlier `--only` run's JSON, checked to compare with this run."""
    side = "theirs" if args.only == "ours" else "ours"
    saved, settings, checkpoints = read_result(path, "--compare-with ")
    differ = [f"{name} {settings.get(name)!r} there, {getattr(args, name)!r} here"
              for name in COMPARED_SETTINGS if settings.get(name) != getattr(args, name)]
    if differ:
        raise SystemExit(f"--compare-with {path}: not the same bench: " + "; ".join(differ))
    by_target = {row.get("target"): row.get(side) for row in checkpoints if isinstance(row, dict)}
    if settings.get("bn_batches") != args.bn_batches:
        # Training and the as-trained scores do not depend on it; the re-estimated ones do: left out.
        print(f"  --compare-with {path}: --bn-batches {settings.get('bn_batches')!r} there, {args.bn_batches!r} "
              f"here: its re-estimated scores are left out, the as-trained ones compared")
        by_target = {target: entry and {**entry, **dict.fromkeys(BN_SCORES)} for target, entry in by_target.items()}
    missing = [target for target in checkpoint_targets(args) if not by_target.get(target)]
    if missing:
        raise SystemExit(f"--compare-with {path}: no {side} checkpoint at iteration(s) "
                         f"{', '.join(map(str, missing))}")
    device = (saved.get("speed") or {}).get(side, {}).get("device", "?")
    return side, by_target, f"{device} (from {path})"


def format_score(value, width=0):
    """A score as the tables print it (3 decimals), "-" where there is none (no second evaluation)."""
    return f"{'-':>{width}}" if value is None else f"{value:{width}.3f}"


def _side_text(entry):
    if entry is None:
        return "-"
    return (f"{entry['iterations']} it {entry['train_minutes']:.1f} min {entry['seconds_per_iteration']:.2f} s/it "
            f"AP50 {entry['ap50']:.3f} AP {entry['ap']:.3f} (BN re-estimated: AP50 {format_score(entry.get('ap50_bn'))} "
            f"AP {format_score(entry.get('ap_bn'))})")


def at_least(ours, theirs, key):
    """ours >= theirs at the printed resolution (VERDICT_DECIMALS), so the verdict reads off the table."""
    if ours is None or theirs is None or ours.get(key) is None or theirs.get(key) is None:
        return None
    return round(ours[key], VERDICT_DECIMALS) >= round(theirs[key], VERDICT_DECIMALS)


def _load():
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _yes(flag):
    return "-" if flag is None else ("yes" if flag else "NO")


def print_table(rows, unit):
    """One line per checkpoint; "bn" columns: after re-estimating the BatchNorm statistics."""
    heading = f"{'min':>6} {'s/it':>6} {'AP50':>6} {'AP':>6} {'AP50bn':>6} {'APbn':>6}"
    print(f"\n{'checkpoint':>11} | {'ours: it':>8} {heading} | {'theirs: it':>10} {heading} | "
          f"ours >= theirs AP50 / AP / AP50bn / APbn")
    for row in rows:
        cells = []
        for side, width in (("ours", 8), ("theirs", 10)):
            entry = row[side]
            cells.append(f"{'-':>{width}} " + " ".join([f"{'-':>6}"] * 6) if entry is None else
                         f"{entry['iterations']:>{width}} {entry['train_minutes']:6.1f} "
                         f"{entry['seconds_per_iteration']:6.2f} {entry['ap50']:6.3f} {entry['ap']:6.3f} "
                         f"{format_score(entry.get('ap50_bn'), 6)} {format_score(entry.get('ap_bn'), 6)}")
        verdicts = " / ".join(_yes(row.get(f"ours_at_least_theirs_{key}")) for key in SCORES)
        print(f"{row['target']:>7g} {unit:<3} | {cells[0]} | {cells[1]} | {verdicts}")


def engine_overrides(pairs):
    """["NAME=VALUE", ...] -> {NAME: value}; VALUE read as a Python literal (0.5, (8, 16), True), else a string."""
    overrides = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals or not name.strip():
            raise ValueError(f"{pair!r} is not NAME=VALUE")
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        overrides[name.strip()] = value
    return overrides


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="training minutes per model (time mode)")
    parser.add_argument("--every", type=float, default=5.0, help="minutes of training between checkpoints")
    parser.add_argument("--iterations", type=int, help="train by iterations instead of wall time")
    parser.add_argument("--eval-every", type=int, help="iterations between checkpoints (default: --iterations)")
    parser.add_argument("--size", type=int, default=128, help="image side in px (a multiple of 64)")
    parser.add_argument("--batch", type=int, default=4, help="images per iteration")
    parser.add_argument("--train-images", type=int, default=256, help="train set size")
    parser.add_argument("--eval-images", type=int, default=50, help="held-out set size")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate after warm-up")
    parser.add_argument("--warmup", type=int, default=50, help="iterations of linear learning-rate warm-up")
    parser.add_argument("--seed", type=int, default=0, help="data and initialisation seed")
    parser.add_argument("--bn-batches", type=int, default=10,
                        help="training batches for the second evaluation's BatchNorm statistics (0: no second one)")
    parser.add_argument("--threads", type=int, default=2,
                        help="TensorFlow intra/inter-op and torch threads (0: the library default)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="torch's device (auto: cuda when available)")
    parser.add_argument("--only", choices=("ours", "theirs"), help="run one side only")
    parser.add_argument("--compare-with", metavar="JSON",
                        help="with --only and --iterations: the other side from an earlier --only run's --out file")
    parser.add_argument("--out", default=str(REPO / "runs" / "bench_learning.json"), help="JSON results file")
    parser.add_argument("--engine", action="append", default=[], metavar="NAME=VALUE",
                        help="one setting of our Config for this run, e.g. CONV_INIT=he (repeatable)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.add_argument("--worker", choices=tuple(LEARNERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size < 64 or args.size % 64:
        parser.error(f"--size {args.size}: must be a multiple of 64 (our backbone needs it)")
    for name in ("batch", "train_images", "eval_images"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.train_images < args.batch:
        parser.error(f"--train-images {args.train_images} is fewer than one batch (--batch {args.batch})")
    if args.lr <= 0 or args.warmup < 0 or args.threads < 0 or args.bn_batches < 0:
        parser.error("--lr must be > 0, --warmup >= 0, --threads >= 0, --bn-batches >= 0")
    if args.iterations is not None:
        args.eval_every = args.eval_every or args.iterations
        if args.iterations < 1 or args.eval_every < 1:
            parser.error("--iterations and --eval-every must be >= 1")
    elif args.minutes <= 0 or args.every <= 0:
        parser.error("--minutes and --every must be > 0")
    try:
        from mrcnn.config import Config
        Config(**{"NAME": "learning", "TRAIN_BN": True} | engine_overrides(args.engine))    # TRAIN_BN as Ours
    except ValueError as error:
        parser.error(f"--engine: {error}")
    if args.compare_with and (args.only is None or args.iterations is None):
        parser.error("--compare-with needs --only (the side this run trains) and --iterations "
                     "(minutes on two machines do not compare)")
    return args


def _speeds(rows, devices):
    """Each side's device and speed at its latest checkpoint."""
    speeds = {}
    for name in devices:
        last = rows[-1][name] if rows else None
        if last:
            speeds[name] = {"device": devices[name], "seconds_per_iteration": last["seconds_per_iteration"],
                            "first_iteration_seconds": last["first_iteration_seconds"]}
    return speeds


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.worker:
        return run_worker(args)
    by_time = args.iterations is None
    unit = "min" if by_time else "it"
    plan = (f"{args.minutes:g} min of training each, checkpoint every {args.every:g} min" if by_time
            else f"{args.iterations} iterations each, checkpoint every {args.eval_every}")
    print(f"Learning bench: ResNet-50 FPN from random weights, {args.size} px shapes, {args.train_images} train / "
          f"{args.eval_images} held-out images, batch {args.batch}; {plan}")
    print(f"  SGD lr {args.lr:g} (linear warm-up {args.warmup} it) momentum {reference.MOMENTUM} weight decay "
          f"{reference.WEIGHT_DECAY} clip norm {reference.CLIP_NORM} per tensor; threads {args.threads}, seed {args.seed}")
    if args.engine:
        print(f"  ours with {', '.join(args.engine)} (--engine)")
    print(f"  load before: {_load()} (1/5/15 min; other work on the cores slows both sides)")
    names = [name for name in LEARNERS if args.only in (None, name)]
    if "theirs" in names and not reference._torch_available():
        raise SystemExit(f"torch/torchvision are not installed (or use --only ours). Install:\n  "
                         f"{reference.TORCH_INSTALL}")

    workers, devices, other, saved = [], {}, None, {}
    settings = {key: value for key, value in vars(args).items() if key != "worker"}
    if args.compare_with:
        other, saved, devices[other] = load_other_side(args.compare_with, args)
        print(f"  {other}: {devices[other]}")
    try:
        for name in names:                 # one at a time: building a model is work for the cores too
            worker = Worker(name, argv)
            workers.append(worker)
            devices[name] = worker.report("ready")["device"]
            print(f"  {name}: {devices[name]}", flush=True)
        rows = []
        for target in checkpoint_targets(args):
            row = {"target": target, "ours": None, "theirs": None}
            if other:
                row[other] = saved[target]
            for worker in workers:          # taking turns: only one side trains at any time
                row[worker.name] = worker.run_chunk()
            for key in SCORES:
                row[f"ours_at_least_theirs_{key}"] = at_least(row["ours"], row["theirs"], key)
            rows.append(row)
            verdicts = ", ".join(f"{key} {_yes(row[f'ours_at_least_theirs_{key}'])}" for key in SCORES)
            print(f"[{target:g} {unit}] ours {_side_text(row['ours'])} | theirs {_side_text(row['theirs'])} | "
                  f"ours >= theirs: {verdicts}", flush=True)
            # kept after every checkpoint: a run stopped or killed later loses none of them
            write_json_atomic(args.out, {"settings": settings, "complete": False,
                                         "speed": _speeds(rows, devices), "checkpoints": rows}, indent=2)
    finally:
        for worker in workers:
            worker.close()

    print_table(rows, unit)
    speeds = _speeds(rows, devices)
    for name, speed in speeds.items():
        print(f"{name}: {speed['seconds_per_iteration']:.3f} s/iteration (median after the first; first "
              f"{speed['first_iteration_seconds']:.1f} s) on {speed['device']}")
    for key, how in (("ap50", "as trained"), ("ap50_bn", "BatchNorm statistics re-estimated")):
        verdicts = [row[f"ours_at_least_theirs_{key}"] for row in rows]
        if None not in verdicts:
            print(f"goal ours >= theirs (mask AP50, {how}) at every checkpoint: "
                  f"{'met' if all(verdicts) else 'NOT met'}")
    print(f"load after: {_load()} (1/5/15 min)")
    path = write_json_atomic(args.out, {"settings": settings, "complete": True, "speed": speeds,
                                        "checkpoints": rows}, indent=2)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
