"""Training model-1 and model-2 the course's way: config from the profile, start weights, stages.

Notebooks 04 and 06 call four things, in order:

    config = make_config(profile, "modanet", class_names)        # a Config subclass, .display()
    model = MaskRCNN("training", config, model_dir)
    report = load_initial_weights(model, "coco", paths)          # or "imagenet", "last", "none", "model1", a path
    train_in_stages(model, train_set, val_set, profile)          # heads first, then all layers
    export_model(model, class_names, paths.model_file("model1"))  # what the next notebook loads

and `load_trained(paths.model_file("model1"))` gives back an inference model with its class names.
Stages count epochs on (Matterport's habit): heads until epoch `epochs_heads`, then all layers
until epoch `epochs`, so a run resumed with "last" skips what is done. With a time budget
(`profile.train_minutes`, TRAIN_MINUTES in the notebooks) those epochs are upper bounds: training
stops at the first step after the budget, saves, and a later run with a larger budget goes on.
"""
import csv
import math
import re
import shutil
import time
from pathlib import Path

from mrcnn.config import Config, upgrade_settings

from helpers.io import DataError, atomic_write, read_json, write_json_atomic
from helpers.profiles import KnobError

# Matterport's COCO-trained Mask R-CNN (ResNet-101), the seed projects' starting point.
COCO_WEIGHTS_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"
COCO_WEIGHTS_FILE = "mask_rcnn_coco.h5"

# The layers whose shapes depend on the number of classes: re-initialised for a new class list.
HEAD_LAYERS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]

INIT_CHOICES = ("coco", "imagenet", "last", "none", "model1")
# The published start weights exist for one backbone each: Matterport's COCO model is a ResNet-101,
# Keras' ImageNet weights a ResNet-50.
START_WEIGHT_BACKBONES = {"coco": "resnet101", "imagenet": "resnet50"}
BN_CALIBRATION_BATCHES = 10     # batches averaged for the BatchNorm statistics of a from-scratch start
TRAINING_TIME_FILE = "training_time.json"   # in the run folder: seconds trained per checkpoint
MIN_STAGE_SECONDS = 1.0         # with less budget left than this a stage is skipped, not started for one step


# Where the course departs from Matterport's defaults (mrcnn.Config keeps Matterport's, for its
# weight files and tutorials): the box head's torchvision loss learnt faster on the learning bench
# (docs/benchmarks.md), and mask targets and detect()'s masks on the boxes' pixel-centre grid.
COURSE_ENGINE = {"MRCNN_BBOX_LOSS": "per_sampled", "MASK_TARGET_SAMPLING": "pixel_centres"}


def make_config(profile, name, class_names, inference=False, **overrides):
    """A Config subclass for `profile`, for the classes `class_names` (with or without "BG").

    The profile sets backbone, image size, batch, steps, learning rate and the detections'
    minimum confidence (`detection_min_confidence`, DETECTION_MIN_CONFIDENCE in 04 and 06: the
    exported model keeps it, so 05 and 07 detect the same way); `profile.engine` adds its own
    Config values (the smoke profile shrinks the network). For inference the batch is one image.
    MIXED_PRECISION is on when the profile asks for it (colab) and TensorFlow sees a GPU: float16
    pays on a GPU's tensor cores, while on a CPU it is slower than float32.
    """
    n_classes = len([c for c in class_names if c != "BG"])
    settings = {
        "NAME": name,
        "NUM_CLASSES": 1 + n_classes,
        "BACKBONE": profile.backbone,
        "IMAGE_MIN_DIM": profile.image_dim,
        "IMAGE_MAX_DIM": profile.image_dim,
        "IMAGES_PER_GPU": profile.images_per_gpu,
        "STEPS_PER_EPOCH": profile.steps_per_epoch,
        "VALIDATION_STEPS": profile.validation_steps,
        "LEARNING_RATE": profile.learning_rate,
        "KEEP_CHECKPOINTS": profile.keep_checkpoints,
        "DETECTION_MIN_CONFIDENCE": profile.detection_min_confidence,
        **COURSE_ENGINE,
        **profile.engine,
    }
    if profile.mixed_precision:
        import tensorflow as tf

        settings["MIXED_PRECISION"] = bool(tf.config.list_physical_devices("GPU"))
    if inference:
        settings.update(GPU_COUNT=1, IMAGES_PER_GPU=1)
    settings.update(overrides)
    class_name = "".join(part.title() for part in name.replace("-", "_").split("_")) + "Config"
    config_class = type(class_name, (Config,), settings)
    return config_class()


def training_augmentation(profile):
    """The seed projects' augmentation: a left-right flip half of the time (albumentations)."""
    import albumentations as A

    return A.HorizontalFlip(p=profile.flip_probability) if profile.flip_probability > 0 else None


# --- start weights --------------------------------------------------------------------------

def coco_weights_path(paths, progress=True):
    """Path of `mask_rcnn_coco.h5` under data/, downloaded (resumable) on first use.

    Matterport publishes no checksum, so the file is checked by opening it as HDF5 and
    finding the mask head in it. A cached file that fails (a download cut short, a damaged
    disk) is removed and downloaded once more; a freshly downloaded file that fails is
    removed and the error says so.
    """
    from helpers.download import download_file

    target = Path(paths.weights) / COCO_WEIGHTS_FILE
    cached = target.is_file()
    if not cached:
        download_file(COCO_WEIGHTS_URL, target, progress=progress)
    try:
        check_weight_file(target, must_have="mrcnn_mask", remove_if_bad=True)
    except DataError as err:
        if not cached:
            raise
        print(f"{target}: the cached file was not usable ({err}); downloading it again.")
        download_file(COCO_WEIGHTS_URL, target, progress=progress)
        check_weight_file(target, must_have="mrcnn_mask", remove_if_bad=True)
    return target


def check_weight_file(path, must_have=None, remove_if_bad=False):
    """Raise a one-line DataError naming `path` unless it is an HDF5 weight file (holding `must_have`).

    Every group and dataset header is visited, so a file damaged in its metadata fails here and
    not halfway through load_weights. h5py reports damage as OSError, RuntimeError, KeyError or
    ValueError depending on where it is (a zero-byte file, a truncated download, a flipped byte
    in a group's table): all of them become the DataError. With `remove_if_bad` the file is
    removed, so the next run downloads it again.
    """
    import h5py

    path = Path(path)
    removed = "; it was removed, run again to download it afresh" if remove_if_bad else ""

    def refuse(problem):
        if remove_if_bad:
            path.unlink(missing_ok=True)
        return DataError(f"{path}: {problem}{removed}")

    if path.is_dir():       # never removed: a folder is somebody's, not a bad download
        raise DataError(f"{path}: is a folder, not an HDF5 weight file")

    def touch(name, obj):
        if isinstance(obj, h5py.Dataset):
            obj.shape, obj.dtype
        dict(obj.attrs)

    try:
        with h5py.File(path, "r") as h5:
            names = set(h5.attrs.get("layer_names", [])) | set(h5.keys())
            names = {n.decode() if isinstance(n, bytes) else str(n) for n in names}
            h5.visititems(touch)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        raise refuse(f"not a readable HDF5 weight file ({message})") from None
    if must_have and must_have not in names:
        raise refuse(f"has no layer '{must_have}': not a Mask R-CNN weight file")
    return path


def check_start_weights(init, backbone):
    """Stop with one line (KnobError) when start weights `init` cannot fit `backbone`.

    Why here and not at load time only: 04 and 06 check their form before any download or
    model build, so BACKBONE = "resnet50" with INIT_WEIGHTS = "coco" says what to change at once.
    """
    needed = START_WEIGHT_BACKBONES.get(str(init).strip())
    if needed and backbone != needed:
        what = {"coco": "Matterport's COCO model is a ResNet-101", "imagenet": "the ImageNet weights are a ResNet-50's"}
        other = {"coco": "imagenet", "imagenet": "coco"}[init.strip()]
        raise KnobError(f"INIT_WEIGHTS = {init!r} with BACKBONE = {backbone!r}: {what[init.strip()]}, so set "
                        f"BACKBONE = {needed!r} (or INIT_WEIGHTS = 'none', or {other!r} with "
                        f"BACKBONE = {START_WEIGHT_BACKBONES[other]!r})")


def _check_same_backbone(path, backbone):
    """A weight file exported with a sidecar (model1.json) names its backbone: another one cannot load it."""
    sidecar = Path(path).with_suffix(".json")
    if not sidecar.is_file():
        return
    info = read_json(sidecar, "model sidecar")
    theirs = (info.get("config") or {}).get("BACKBONE") if isinstance(info, dict) else None
    if theirs and theirs != backbone:
        raise KnobError(f"{Path(path).name} is a {theirs} model ({sidecar.name}); this model's BACKBONE is "
                        f"{backbone!r}: set BACKBONE = {theirs!r} to start from it, or choose other INIT_WEIGHTS")


def load_initial_weights(model, init, paths, same_classes=False, calibrate_on=None, progress=True):
    """Load the start weights named by `init` into a training model; returns a short text.

    init: "coco" (Matterport's COCO model, a ResNet-101; class-specific heads re-initialised),
    "imagenet" (ResNet-50 backbone only), "last" (the newest checkpoint of this config's NAME:
    resume), "none" (random initialisation), "model1" (model-1's exported file,
    paths.model_file("model1"): model-2 starts there) or the path of a .h5 file (heads
    re-initialised unless `same_classes`). A backbone the weights do not fit is a one-line
    KnobError (check_start_weights; a sidecar's BACKBONE for a file).
    With "none" and a dataset `calibrate_on`, the BatchNorm statistics are measured on it
    first (MaskRCNN.calibrate_batch_norm), so that training and inference agree.
    """
    init = str(init).strip()
    if init == "none":
        if calibrate_on is None:
            return "random initialisation (no weights loaded)"
        count = model.calibrate_batch_norm(calibrate_on, batches=BN_CALIBRATION_BATCHES)
        return (f"random initialisation; statistics of {count} BatchNorm layers measured on "
                f"{BN_CALIBRATION_BATCHES} training batches")
    if init == "last":
        path = model.find_last()
        model.load_weights(path, by_name=True)
        return f"resumed from {path} (epoch {model.epoch})"
    if init in START_WEIGHT_BACKBONES:
        check_start_weights(init, model.config.BACKBONE)
    if init == "imagenet":
        path = model.get_imagenet_weights()
        model.load_weights(path, by_name=True)
        model.epoch = 0
        return f"ImageNet ResNet-50 backbone from {path}"
    if init == "coco":
        path = coco_weights_path(paths, progress=progress)
        model.load_weights(path, by_name=True, exclude=HEAD_LAYERS)
        model.epoch = 0
        model.set_log_dir()
        return f"COCO weights from {path}; heads {', '.join(HEAD_LAYERS)} re-initialised"
    if init == "model1":
        from helpers.paths import require

        path = require(paths.model_file("model1"), "04_train_model1.ipynb")
    else:
        path = Path(init).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"INIT_WEIGHTS={init!r}: choose one of {', '.join(INIT_CHOICES)} "
                                "or the path of an existing .h5 file")
    check_weight_file(path)
    _check_same_backbone(path, model.config.BACKBONE)
    model.load_weights(str(path), by_name=True, exclude=None if same_classes else HEAD_LAYERS)
    if not same_classes:
        model.epoch = 0
        model.set_log_dir()
    return f"weights from {path}" + ("" if same_classes else f"; heads {', '.join(HEAD_LAYERS)} re-initialised")


# --- training ---------------------------------------------------------------------------------

def training_stages(profile):
    """[(layers, until_epoch, learning_rate)]: heads first, then deeper layers (Matterport's recipe;
    `profile.fine_tune_layers` says which: "all", "5+", "4+" (the colab profile), "3+", or
    "heads": then the heads alone train until `epochs`, one stage)."""
    if profile.fine_tune_layers == "heads":
        return [("heads", profile.epochs, profile.learning_rate)] if profile.epochs > 0 else []
    stages = []
    if profile.epochs_heads > 0:
        stages.append(("heads", profile.epochs_heads, profile.learning_rate))
    if profile.epochs > profile.epochs_heads:
        stages.append((profile.fine_tune_layers, profile.epochs, profile.learning_rate))
    return stages


def train_in_stages(model, train_set, val_set, profile, augmentation=None, callbacks=None, verbose=1,
                    minutes="profile", progress=True, clock=None):
    """Run each stage of `training_stages(profile)` that the model has not finished yet, within
    a time budget; returns the stages run as (layers, from_epoch, epoch_reached).

    minutes: the budget ("profile": `profile.train_minutes`; None: no limit, the step counts
    decide). It covers the model's whole training: the seconds already trained in this run
    folder (training_time.json) count, so a run resumed with INIT_WEIGHTS="last" and a larger
    budget trains only the difference, and one with the same budget says so and trains nothing.
    Each stage gets a share of what is left in proportion to its epochs left, and what a stage
    leaves unused goes to the next. A stage stopped by its share ends at a step boundary with
    that partial epoch validated and saved (epoch counts are upper bounds); the next stage
    starts at its own first epoch, so each stage keeps its epoch numbers.
    progress: one tqdm bar with an ETA per stage (Keras' own lines when False, by `verbose`).
    Checkpoints and training_log.csv land in model.log_dir; every stage appends to the same log.
    With TRAIN_BN the smoke profile sets PRECISE_BN_BATCHES, so every checkpoint carries
    BatchNorm statistics measured for its own weights (MaskRCNN.train does it).
    """
    clock = clock or time.monotonic
    minutes = profile.train_minutes if isinstance(minutes, str) and minutes == "profile" else minutes
    budget = budget_seconds(minutes)
    ledger = TrainingTime(model.log_dir)
    spent = ledger.seconds_at(model.epoch)
    stages = training_stages(profile)
    final = stages[-1][1] if stages else 0
    if budget is not None and model.epoch < final:
        print(f"time budget {minutes:g} min: {spent / 60:.1f} min trained before in this run folder, "
              f"{max(0.0, budget - spent) / 60:.1f} min left")
    done, skipped, previous_until = [], [], 0
    for layers, until, learning_rate in stages:
        if model.epoch >= until:
            print(f"stage '{layers}' already done (epoch {model.epoch} >= {until}): skipped")
            previous_until = until
            continue
        if budget is not None and budget - spent < MIN_STAGE_SECONDS:
            print(f"stage '{layers}' skipped: the time budget of {minutes:g} min is spent "
                  f"({spent / 60:.1f} min trained)")
            skipped.append(layers)
            continue
        if model.epoch < previous_until:
            print(f"stage '{layers}' starts at its own first epoch, {previous_until + 1} "
                  f"(the stage before ended at epoch {model.epoch})")
            model.epoch = previous_until
        start = model.epoch
        share = None if budget is None else (budget - spent) * (until - start) / (final - start)
        print(f"stage '{layers}': epochs {start + 1}..{until}, learning rate {learning_rate}"
              + ("" if share is None else f", time share {share / 60:.1f} of {(budget - spent) / 60:.1f} min left"))
        recorder = _time_recorder(ledger, spent, clock, minutes)
        model.train(train_set, val_set, learning_rate=learning_rate, epochs=until, layers=layers,
                    augmentation=augmentation, custom_callbacks=list(callbacks or []) + [recorder],
                    verbose=verbose, seed=profile.seed, time_budget=share, clock=clock, progress=progress)
        spent += recorder.elapsed()
        stop = getattr(model, "last_train_stop", None)
        ledger.record(model.epoch, spent, budget_minutes=minutes, last_stop=stop)
        if stop:
            print(f"stage '{layers}' ended ({stop['reason']}) at epoch {stop['epoch']}, step {stop['step']}; "
                  f"{spent / 60:.1f} min trained in all")
        done.append((layers, start, model.epoch))
        previous_until = until
    if skipped:
        print(f"To train on, run again with INIT_WEIGHTS = \"last\" and TRAIN_MINUTES larger than "
              f"{spent / 60:.1f}: training goes on from the newest checkpoint in {model.log_dir} "
              "for the difference.")
    return done


def budget_seconds(minutes):
    """Seconds of a budget in minutes (None: no budget); a clear error for anything else."""
    if minutes is None:
        return None
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0:
        raise ValueError(f"TRAIN_MINUTES must be a number of minutes above 0, or None for no limit; "
                         f"not {minutes!r}")
    return float(minutes) * 60.0


class TrainingTime:
    """The seconds of training behind each checkpoint of a run folder: <run>/training_time.json.

    Why: the time budget counts the model's whole training, across sessions and dropped Colab
    runtimes. Seconds are kept per checkpoint epoch (written after each checkpoint and after
    each stage, atomically), so a run resumed from any checkpoint finds the time that led to it.
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir) / TRAINING_TIME_FILE
        self.data = read_json(self.path, "training time record") if self.path.is_file() else {}
        try:
            self.by_epoch = {int(k): float(v) for k, v in dict(self.data.get("by_epoch", {})).items()}
        except (TypeError, ValueError, AttributeError):
            raise DataError(f"{self.path}: 'by_epoch' should map epochs to seconds") from None

    def seconds_at(self, epoch):
        """Seconds trained up to the checkpoint of `epoch` (the newest record at or before it; 0 if none)."""
        known = [e for e in self.by_epoch if e <= int(epoch)]
        return self.by_epoch[max(known)] if known else 0.0

    def record(self, epoch, seconds, **extra):
        """Note `seconds` for the checkpoint of `epoch`; records past it (an abandoned branch) go."""
        epoch = int(epoch)
        self.by_epoch = {e: s for e, s in self.by_epoch.items() if e < epoch}
        self.by_epoch[epoch] = float(seconds)
        self.data.update(extra)
        self.data.update(seconds=float(seconds), epoch=epoch,
                         by_epoch={str(e): s for e, s in sorted(self.by_epoch.items())})
        write_json_atomic(self.path, self.data, indent=1)


def _time_recorder(ledger, seconds_before, clock, minutes):
    """A Keras callback that records the seconds trained after every checkpoint of a stage.

    It runs after train()'s own callbacks, so the epoch's checkpoint is on disk when its
    seconds are written; `elapsed()` is this stage's time so far (0 before it starts).
    """
    import keras

    class RecordTrainingTime(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.start = self.end = None

        def elapsed(self):
            if self.start is None:
                return 0.0
            return float((self.end if self.end is not None else clock()) - self.start)

        def on_train_begin(self, logs=None):
            self.start, self.end = clock(), None

        def on_epoch_end(self, epoch, logs=None):
            ledger.record(epoch + 1, seconds_before + self.elapsed(), budget_minutes=minutes)

        def on_train_end(self, logs=None):
            self.end = clock()

    return RecordTrainingTime()


def training_subset(annotations, profile):
    """The train split to train on: `annotations` (a COCO file or dict) as it is, or at most
    `profile.train_subset` of its images (TRAIN_IMAGES in 04 and 06; 0: all) as a COCO dict.

    The images are chosen as notebook 02 cuts a split (helpers.split): one image of every class
    first, rarest class first, then the rest in the order of `profile.seed`, so the same seed
    trains on the same images and no class is left out of a small subset.
    """
    import random

    from helpers.split import _subset_image_ids

    limit = profile.train_subset
    if not limit:
        return annotations
    coco = annotations if isinstance(annotations, dict) else read_json(annotations, "COCO annotation file")
    if limit >= len(coco.get("images", [])):
        return annotations
    kept = _subset_image_ids(coco, int(limit), random.Random(f"{profile.seed}-train-subset"))
    return dict(coco, images=[im for im in coco["images"] if im["id"] in kept],
                annotations=[a for a in coco.get("annotations", []) if a["image_id"] in kept])


def training_log(model):
    """Path of the run's CSV log (one row per epoch, every loss and its val_ twin)."""
    return Path(model.log_dir) / "training_log.csv"


# --- hand-over between notebooks --------------------------------------------------------------

def export_model(model, class_names, target, checkpoint=None, verbose=True):
    """Copy the run's last checkpoint to `target` (.h5) with a sidecar `.json` saying what it is.

    The last, not the one with the lowest validation loss: Matterport's samples hand on the
    end of training, a time budget ends there, and with KEEP_CHECKPOINTS the best one may be
    gone. So that nobody takes it for the best, it prints (`verbose`) which epoch it exports
    and which one had the lowest validation loss (`checkpoint=` exports another one).
    The sidecar holds the class names (index = class id, "BG" first), the Config values, the
    epoch and its validation loss, so `load_trained(target)` needs nothing else. Both files are
    written atomically.
    """
    target = Path(target)
    checkpoint = Path(checkpoint or model.find_last())
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, "wb") as out, open(checkpoint, "rb") as src:
        shutil.copyfileobj(src, out)
    names = list(class_names)
    if names[:1] != ["BG"]:
        names = ["BG"] + names
    config = {k: v for k, v in model.config.to_dict().items() if k.isupper()}
    choice = exported_epoch(checkpoint, fallback_epoch=int(model.epoch))
    write_json_atomic(target.with_suffix(".json"), {
        "class_names": names, "checkpoint": str(checkpoint), "epoch": choice["epoch"],
        "val_loss": choice["val_loss"], "lowest_val_loss_epoch": choice["best_epoch"], "config": config},
        indent=1)
    if verbose:
        print(f"{describe_export(choice)} -> {target}")
    return target


def _checkpoint_epoch(checkpoint):
    """The epoch in a checkpoint's name (mask_rcnn_modanet_0008.h5 -> 8), or None."""
    match = re.search(r"_(\d+)\.h5$", Path(checkpoint).name)
    return int(match.group(1)) if match else None


def _validation_losses(log_file):
    """{epoch (1-based, as checkpoints are named): val_loss} from a run's CSV log; {} without one.

    Keras' CSVLogger counts epochs from 0; a resumed run may log an epoch again (the last row
    counts). An unreadable log gives {}: it only informs the export, it must not stop it.
    """
    try:
        with open(log_file, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return {int(float(row["epoch"])) + 1: float(row["val_loss"]) for row in rows
                if row.get("epoch") not in (None, "") and row.get("val_loss") not in (None, "", "NA")}
    except (OSError, KeyError, ValueError, csv.Error):
        return {}


def exported_epoch(checkpoint, fallback_epoch=None):
    """Which epoch `checkpoint` is and how it compares: {"epoch", "epochs", "val_loss",
    "best_epoch", "best_val_loss", "best_checkpoint"} (None where the run's log does not say).

    Reads the run's `training_log.csv` beside the checkpoint. "epochs" is the last epoch logged
    (without a log, `fallback_epoch`: the model's epoch count); "best_checkpoint" the file of the
    lowest-val-loss epoch when it is still in the run folder.
    """
    checkpoint = Path(checkpoint)
    losses = {e: v for e, v in _validation_losses(checkpoint.parent / "training_log.csv").items()
              if math.isfinite(v)}
    epoch = _checkpoint_epoch(checkpoint) or fallback_epoch
    best = min(losses, key=lambda e: (losses[e], e)) if losses else None
    best_file = None
    if best is not None and best != epoch:
        stem = re.sub(r"_(\d+)\.h5$", "", checkpoint.name)
        best_file = next((p for p in sorted(checkpoint.parent.glob("*.h5"))
                          if p.name.startswith(stem + "_") and _checkpoint_epoch(p) == best), None)
    epochs = max(max(losses), epoch or 0) if losses else fallback_epoch
    return {"epoch": epoch, "epochs": epochs, "val_loss": losses.get(epoch),
            "best_epoch": best, "best_val_loss": losses.get(best), "best_checkpoint": best_file}


def describe_export(choice):
    """One sentence for `exported_epoch`'s dict: "exported epoch 8 of 8 (the last; ...)"."""
    epoch, epochs = choice["epoch"], choice["epochs"]
    if epoch is None:
        return "exported the checkpoint (its epoch is not in its name)"
    where = f"epoch {epoch} of {epochs}" if epochs else f"epoch {epoch}"
    notes = ["the last"] if epoch == epochs else []
    best = choice["best_epoch"]
    if best is None:
        notes.append("no validation loss logged")
    elif best == epoch:
        notes.append(f"also the lowest validation loss, {choice['best_val_loss']:.3f}")
    else:
        kept = "" if choice["best_checkpoint"] is not None else " (its checkpoint was not kept)"
        notes.append(f"validation loss {choice['val_loss']:.3f}; the lowest, {choice['best_val_loss']:.3f}, "
                     f"was at epoch {best}{kept}" if choice["val_loss"] is not None else
                     f"the lowest validation loss, {choice['best_val_loss']:.3f}, was at epoch {best}{kept}")
    text = f"exported {where} ({'; '.join(notes)})"
    if choice["best_checkpoint"] is not None:
        text += f"\n  to export epoch {best} instead: export_model(..., checkpoint=\"{choice['best_checkpoint']}\")"
    return text


def load_trained(weights_file, model_dir=None, min_confidence=None, **overrides):
    """An inference MaskRCNN from an exported `.h5` and its sidecar; returns (model, class_names).

    overrides: Config values that replace the exported ones, e.g. DETECTION_MIN_CONFIDENCE=0.3
    (the knob of 04 and 06: detections below it are dropped, above it kept).
    min_confidence: keep detections down to this score when it is below the model's own
    DETECTION_MIN_CONFIDENCE (never fewer detections than the model was trained to give): a
    notebook's MIN_CONFIDENCE of 0.5 must see the detections between 0.5 and a model's 0.7.
    """
    from mrcnn.model import MaskRCNN

    weights_file = Path(weights_file)
    sidecar = weights_file.with_suffix(".json")
    if not weights_file.is_file() or not sidecar.is_file():
        raise FileNotFoundError(f"{weights_file} (and {sidecar.name} beside it) are missing: run the notebook "
                                "that trains this model first (same profile).")
    info = read_json(sidecar, "model sidecar")
    settable = set(Config.setting_names())
    try:
        saved = upgrade_settings(info["config"], str(sidecar))
    except ValueError as error:
        raise DataError(str(error)) from None
    values = {k: _from_json(v) for k, v in saved.items() if k in settable}
    values.update(GPU_COUNT=1, IMAGES_PER_GPU=1, **overrides)
    if min_confidence is not None:
        values["DETECTION_MIN_CONFIDENCE"] = min(float(min_confidence),
                                                 float(values.get("DETECTION_MIN_CONFIDENCE", Config.DETECTION_MIN_CONFIDENCE)))
    config = type("TrainedConfig", (Config,), values)()
    model = MaskRCNN("inference", config, model_dir or weights_file.parent)
    model.load_weights(str(weights_file), by_name=True)
    return model, info["class_names"]


def _from_json(value):
    """Config values come back from JSON as lists; numpy arrays where Config uses them."""
    import numpy as np

    if isinstance(value, list) and value and all(isinstance(v, float) for v in value):
        return np.array(value)
    return value


def run_folder(paths, use_drive=False, drive_root=None):
    """Where training runs go: `paths.runs`.

    Drive is chosen once, for every file, by `helpers.paths.course_paths(profile, USE_DRIVE)`,
    so with its paths the runs are already on Drive and INIT_WEIGHTS="last" resumes from there.
    `use_drive` and `drive_root` are accepted and ignored, for callers written before that.
    """
    return Path(paths.runs)
