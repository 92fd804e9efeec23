"""Mask R-CNN settings: one class whose UPPERCASE attributes drive the model and training.

Keeps Matterport's names and defaults so their tutorials read the same here. Subclass it and
override class attributes, or pass keyword arguments for a quick change in a notebook:

    class ModaNetConfig(Config):
        NAME = "modanet"
        NUM_CLASSES = 1 + 13          # background + garments

    config = ModaNetConfig(IMAGES_PER_GPU=1)

The constructor checks every setting and raises ValueError naming the attribute and its value,
so a typo fails at once instead of deep inside TensorFlow. It then computes the derived values
BATCH_SIZE, IMAGE_SHAPE and IMAGE_META_SIZE (which cannot be set by hand).

NUM_CLASSES counts the background as class 0. Only NUM_CLASSES >= 1 is required: the default 1
(background only) constructs, which is handy for shape tests, but such a model detects nothing.
"""
import math
import numbers

import numpy as np

RESIZE_MODES = ("none", "square", "pad64", "crop")
BUILTIN_BACKBONES = ("resnet50", "resnet101", "resnet18", "resnet34")
LOSS_NAMES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")
DERIVED_NAMES = ("BATCH_SIZE", "IMAGE_SHAPE", "IMAGE_META_SIZE")
# The backbone halves the image 6 times (C1..P6), so fixed image sides must divide by 2**6.
BACKBONE_DOWNSCALE = 2 ** 6

# The allowed values of the settings where this engine may depart from Matterport, each the
# default (Matterport's behaviour) first. The layers import these; Config.validate checks them.
BOX_LOSS_FORMS = ("per_positive", "per_sampled")
MASK_GRIDS = ("resized", "pixel_centres")
ROI_ALIGN_READS = ("normalised_box", "pixel_centres")
CONV_INITS = ("glorot", "he")
CHOICES = {"RPN_BBOX_LOSS": BOX_LOSS_FORMS, "MRCNN_BBOX_LOSS": BOX_LOSS_FORMS,
           "MASK_TARGET_SAMPLING": MASK_GRIDS, "ROI_ALIGN": ROI_ALIGN_READS, "CONV_INIT": CONV_INITS}
# Earlier versions named these values after the projects that behave so; saved configs may carry them.
FORMER_VALUES = {
    "RPN_BBOX_LOSS": {"matterport": "per_positive", "torchvision": "per_sampled"},
    "MRCNN_BBOX_LOSS": {"matterport": "per_positive", "torchvision": "per_sampled"},
    "MASK_TARGET_SAMPLING": {"matterport": "resized", "corners": "pixel_centres"},
    "ROI_ALIGN": {"matterport": "normalised_box", "aligned": "pixel_centres"},
}
# Settings earlier versions had, with the value that behaved as this version does.
REMOVED_SETTINGS = {"ROI_SAMPLING": "matterport", "MASK_TARGETS": "binary", "PROPOSAL_SELECTION": "matterport",
                    "RESNET_STRIDE_IN": "1x1", "HEAD_NORM": "batch"}


class Config:
    """Base settings; subclass and override (at least NAME and NUM_CLASSES)."""

    NAME = None                      # names the run folders and checkpoints
    GPU_COUNT = 1
    IMAGES_PER_GPU = 2
    STEPS_PER_EPOCH = 1000
    VALIDATION_STEPS = 50

    BACKBONE = "resnet101"           # "resnet50", "resnet101" (Matterport weights), "resnet18",
                                     # "resnet34" (light, from scratch), or a callable
    COMPUTE_BACKBONE_SHAPE = None    # callable(image_shape) -> feature shapes; needed with a callable backbone
    BACKBONE_STRIDES = [4, 8, 16, 32, 64]   # strides of P2..P6
    FPN_CLASSIF_FC_LAYERS_SIZE = 1024
    TOP_DOWN_PYRAMID_SIZE = 256

    NUM_CLASSES = 1                  # including background

    RPN_ANCHOR_SCALES = (32, 64, 128, 256, 512)   # one anchor side (pixels) per pyramid level
    RPN_ANCHOR_RATIOS = [0.5, 1, 2]  # width / height
    RPN_ANCHOR_STRIDE = 1            # anchors at every feature cell (1) or every other (2) ...
    RPN_NMS_THRESHOLD = 0.7
    RPN_TRAIN_ANCHORS_PER_IMAGE = 256
    PRE_NMS_LIMIT = 6000
    POST_NMS_ROIS_TRAINING = 2000
    POST_NMS_ROIS_INFERENCE = 1000

    USE_MINI_MASK = True             # store masks cropped to their box and shrunk, to save memory
    MINI_MASK_SHAPE = (56, 56)

    IMAGE_RESIZE_MODE = "square"     # "none" | "square" | "pad64" | "crop"
    IMAGE_MIN_DIM = 800
    IMAGE_MAX_DIM = 1024
    IMAGE_MIN_SCALE = 0
    IMAGE_CHANNEL_COUNT = 3
    MEAN_PIXEL = np.array([123.7, 116.8, 103.9])

    TRAIN_ROIS_PER_IMAGE = 200
    ROI_POSITIVE_RATIO = 0.33
    POOL_SIZE = 7
    MASK_POOL_SIZE = 14
    MASK_SHAPE = [28, 28]
    MAX_GT_INSTANCES = 100

    RPN_BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])
    BBOX_STD_DEV = np.array([0.1, 0.1, 0.2, 0.2])

    DETECTION_MAX_INSTANCES = 100
    DETECTION_MIN_CONFIDENCE = 0.7
    DETECTION_NMS_THRESHOLD = 0.3

    LEARNING_RATE = 0.001
    LEARNING_MOMENTUM = 0.9
    WEIGHT_DECAY = 0.0001
    LOSS_WEIGHTS = {
        "rpn_class_loss": 1.0,
        "rpn_bbox_loss": 1.0,
        "mrcnn_class_loss": 1.0,
        "mrcnn_bbox_loss": 1.0,
        "mrcnn_mask_loss": 1.0,
    }
    USE_RPN_ROIS = True              # Matterport's; only True (the RPN's proposals feed the heads) is built
    # How this engine may differ from Matterport where a paper or torchvision does it otherwise.
    # Every default is Matterport's behaviour (its weight files and tutorials rely on it); the
    # allowed values are the tuples at the top of this file (CHOICES). mrcnn.recipes.ScratchConfig sets the
    # other value of each, the combination that learnt fastest from random weights
    # (docs/benchmarks.md, "Which engine settings help from random weights?").
    RPN_BBOX_LOSS = "per_positive"   # the RPN's box loss: "per_positive" (deltas over RPN_BBOX_STD_DEV,
                                     # smooth-L1 with beta 1, averaged over the positive anchors) or
                                     # "per_sampled" (deltas in box units, beta 1/9, summed over the
                                     # positives and divided by the number of sampled anchors)
    MRCNN_BBOX_LOSS = "per_positive"  # the box head's loss, the same two forms over the sampled ROIs
    MASK_TARGET_SAMPLING = "resized"  # the grid between a box and its 28x28 mask, both ways: "resized"
                                      # (mini masks sampled corner cell to corner cell; detect() resizes
                                      # each mask to its rounded box) or "pixel_centres" (from the box's
                                      # first to last pixel centre, the grid of ROIAlign's "pixel_centres"
                                      # and utils.unmold_mask; detect() pastes at the unrounded box)
    ROI_ALIGN = "normalised_box"     # where ROIAlign reads each level's features: "normalised_box" (the
                                     # normalised box handed to crop_and_resize as it is: off by up to half a
                                     # cell, more towards the image's edges) or "pixel_centres" (at the box's
                                     # own pixel centres on each level; mrcnn/roi_align.py)
    CONV_INIT = "glorot"             # how the ResNet's and the mask head's kernels start: "glorot" (Keras'
                                     # default, Matterport's) or "he" (N(0, 2 / fan_out), as the ResNet
                                     # paper and torchvision);
                                     # only matters when training from scratch
    TRAIN_BN = False                 # batch norm frozen: batches are too small to train it
    BATCH_NORM_MOMENTUM = 0.99       # with TRAIN_BN, how slowly the inference statistics follow the
                                     # batches (Keras' default); from scratch a faster 0.9 keeps up with young
                                     # weights
    PRECISE_BN_BATCHES = 0           # with TRAIN_BN: at the end of every epoch (before validation and the
                                     # checkpoint) the trained BatchNorm layers' statistics are measured on
                                     # this many training batches ("precise BN"), so every checkpoint infers
                                     # with its own weights' statistics; 0 keeps the moving averages
    GRADIENT_CLIP_NORM = 5.0         # each variable's gradient clipped to this norm on its own (Matterport's
                                     # Keras 2 clipnorm), so one steep layer does not shrink all the others
    KEEP_CHECKPOINTS = None          # None keeps every epoch's checkpoint (Matterport); N keeps the newest N
                                     # of a run (a ResNet-101 checkpoint is large: Colab's disk fills)
    MIXED_PRECISION = False          # True: the network is built with Keras' "mixed_float16" policy (float16
                                     # arithmetic, float32 weights, so weight files are the same either way)
                                     # and trained with dynamic loss scaling; anchors, proposals, targets,
                                     # ROIAlign's boxes, the class/mask probabilities, detections and the
                                     # five losses stay float32. For GPUs with tensor cores (a T4); on a CPU
                                     # float16 is slower than float32

    def __init__(self, **overrides):
        """Apply keyword overrides, copy mutable defaults, validate, compute derived values."""
        known = set(self.setting_names())
        for name, value in overrides.items():
            if name in DERIVED_NAMES:
                raise ValueError(f"{name} is computed from other settings and cannot be set")
            if name not in known:
                raise ValueError(f"Unknown setting {name}={value!r}: {type(self).__name__} has no such attribute")
            setattr(self, name, value)
        # Give this instance its own lists/arrays/dicts so changing one config never changes another.
        for name in known:
            value = getattr(self, name)
            if isinstance(value, (list, dict, np.ndarray)):
                setattr(self, name, value.copy())
        self.validate()
        self.BATCH_SIZE = self.IMAGES_PER_GPU * self.GPU_COUNT
        self.IMAGE_SHAPE = self._image_shape()
        # image id, original shape (3), resized shape (3), window (4), scale, active class ids
        self.IMAGE_META_SIZE = 1 + 3 + 3 + 4 + 1 + self.NUM_CLASSES

    # -- derived values -----------------------------------------------------------------
    def _image_shape(self):
        """The network input shape [H, W, C] that the resize mode produces."""
        channels = self.IMAGE_CHANNEL_COUNT
        if self.IMAGE_RESIZE_MODE == "crop":
            return np.array([self.IMAGE_MIN_DIM, self.IMAGE_MIN_DIM, channels])
        if self.IMAGE_RESIZE_MODE == "pad64":
            side = int(math.ceil(self.IMAGE_MAX_DIM / 64) * 64)
            return np.array([side, side, channels])
        # "square" gives exactly this; for "none" it is a nominal size (images keep their own).
        return np.array([self.IMAGE_MAX_DIM, self.IMAGE_MAX_DIM, channels])

    # -- listing ------------------------------------------------------------------------
    @classmethod
    def setting_names(cls):
        """Names of every UPPERCASE setting defined on this class or its bases, sorted."""
        return sorted(name for name in dir(cls) if name.isupper() and not name.startswith("_"))

    def _all_names(self):
        names = set(self.setting_names())
        names.update(name for name in DERIVED_NAMES if hasattr(self, name))
        return sorted(names)

    def to_dict(self):
        """Every setting and derived value as JSON-ready Python values.

        numpy arrays and tuples become lists, numpy scalars become Python numbers, and a
        callable (a custom BACKBONE) becomes its qualified name.
        """
        return {name: _plain(getattr(self, name)) for name in self._all_names()}

    def display(self):
        """Print every setting, sorted and aligned, like Matterport's Config.display()."""
        names = self._all_names()
        width = max(len(name) for name in names) + 2
        print(f"\nConfigurations ({type(self).__name__}):")
        for name in names:
            value = getattr(self, name)
            shown = _plain(value) if callable(value) else value
            print(f"{name:{width}}{shown}")
        print()

    def changed_settings(self):
        """{name: (default, value)} for each setting whose value differs from `Config`'s own.

        `Config`'s class attributes are Matterport's defaults (and, for this engine's extra
        options, the values that behave as Matterport did), so these are what a run chose
        differently: usually a handful of the sixty-odd settings. A setting that only a subclass
        defines has the default `NEW_SETTING`. Derived values (BATCH_SIZE, ...) are left out.
        """
        changed = {}
        for name in self.setting_names():
            value = _plain(getattr(self, name))
            default = _plain(getattr(Config, name)) if hasattr(Config, name) else NEW_SETTING
            if default is NEW_SETTING or value != default:
                changed[name] = (default, value)
        return changed

    def changes_text(self):
        """The text `display_changes()` prints: changed settings aligned, with their defaults."""
        changed = self.changed_settings()
        lines = [f"Configurations ({type(self).__name__}): {len(changed)} of {len(self.setting_names())} "
                 "settings differ from Matterport's defaults (display() lists all)"]
        width = max([len(name) for name in changed] + [len("setting")]) + 2
        values = {name: _short(_dict_changes(value, default)) for name, (default, value) in changed.items()}
        value_width = max([len(text) for text in values.values()] + [len("value")]) + 2
        lines.append(f"  {'setting':{width}}{'value':{value_width}}Matterport's default")
        for name, (default, value) in changed.items():
            shown_default = "(new setting)" if default is NEW_SETTING else _short(_dict_changes(default, value))
            lines.append(f"  {name:{width}}{values[name]:{value_width}}{shown_default}")
        derived = ", ".join(f"{name} {_short(_plain(getattr(self, name)))}"
                            for name in ("BATCH_SIZE", "IMAGE_SHAPE") if hasattr(self, name))
        if derived:
            lines.append(f"  derived from them: {derived}")
        return "\n".join(lines)

    def display_changes(self):
        """Print only the settings that differ from Matterport's defaults, each beside its default.

        `display()` prints all of them, as Matterport's does; this is the short view a notebook
        shows, where the few deliberate choices would drown among sixty defaults.
        """
        print(self.changes_text())

    # -- checks -------------------------------------------------------------------------
    def _fail(self, name, problem):
        raise ValueError(f"{type(self).__name__}.{name} = {getattr(self, name)!r}: {problem}")

    def _check_int(self, name, minimum=1):
        value = getattr(self, name)
        if not _is_int(value) or value < minimum:
            self._fail(name, f"must be an integer >= {minimum}")

    def _check_number(self, name, low, high, low_open=False, high_open=False):
        value = getattr(self, name)
        if not _is_number(value):
            self._fail(name, "must be a number")
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high:
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            self._fail(name, f"must lie in {interval}")

    def _check_sequence(self, name, length=None, kind="positive number", positive=True):
        value = getattr(self, name)
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__"):
            self._fail(name, f"must be a list of {kind}s")
        items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
        if length is not None and len(items) != length:
            self._fail(name, f"must have {length} values, has {len(items)}")
        if not items:
            self._fail(name, "must not be empty")
        test = _is_int if kind == "positive integer" else _is_number
        if not all(test(item) and (item > 0 or not positive) for item in items):
            self._fail(name, f"every value must be a {kind}")

    def validate(self):
        """Check every setting; raises ValueError naming the first bad attribute and its value."""
        if not isinstance(self.NAME, str) or not self.NAME.strip():
            self._fail("NAME", "set a non-empty name (it names run folders), e.g. NAME = \"modanet\"")
        for name in ("GPU_COUNT", "IMAGES_PER_GPU", "STEPS_PER_EPOCH", "VALIDATION_STEPS",
                     "FPN_CLASSIF_FC_LAYERS_SIZE", "TOP_DOWN_PYRAMID_SIZE", "NUM_CLASSES",
                     "RPN_ANCHOR_STRIDE", "RPN_TRAIN_ANCHORS_PER_IMAGE", "PRE_NMS_LIMIT",
                     "POST_NMS_ROIS_TRAINING", "POST_NMS_ROIS_INFERENCE", "IMAGE_CHANNEL_COUNT",
                     "TRAIN_ROIS_PER_IMAGE", "POOL_SIZE", "MASK_POOL_SIZE", "MAX_GT_INSTANCES",
                     "DETECTION_MAX_INSTANCES"):
            self._check_int(name)

        if not (self.BACKBONE in BUILTIN_BACKBONES or callable(self.BACKBONE)):
            self._fail("BACKBONE", f"must be one of {BUILTIN_BACKBONES} or a callable")
        if self.COMPUTE_BACKBONE_SHAPE is not None and not callable(self.COMPUTE_BACKBONE_SHAPE):
            self._fail("COMPUTE_BACKBONE_SHAPE", "must be None or a callable")
        if callable(self.BACKBONE) and self.COMPUTE_BACKBONE_SHAPE is None:
            self._fail("COMPUTE_BACKBONE_SHAPE",
                       "a callable BACKBONE also needs COMPUTE_BACKBONE_SHAPE (image shape -> feature shapes)")

        self._check_sequence("BACKBONE_STRIDES", kind="positive integer")
        self._check_sequence("RPN_ANCHOR_SCALES")
        if len(self.RPN_ANCHOR_SCALES) != len(self.BACKBONE_STRIDES):
            self._fail("RPN_ANCHOR_SCALES",
                       f"needs one scale per pyramid level: {len(self.BACKBONE_STRIDES)} "
                       f"(len(BACKBONE_STRIDES)), has {len(self.RPN_ANCHOR_SCALES)}")
        self._check_sequence("RPN_ANCHOR_RATIOS")

        self._check_number("RPN_NMS_THRESHOLD", 0, 1, low_open=True)
        self._check_number("DETECTION_NMS_THRESHOLD", 0, 1, low_open=True)
        self._check_number("DETECTION_MIN_CONFIDENCE", 0, 1)
        self._check_number("ROI_POSITIVE_RATIO", 0, 1, low_open=True)

        if not isinstance(self.USE_MINI_MASK, (bool, np.bool_)):
            self._fail("USE_MINI_MASK", "must be True or False")
        self._check_sequence("MINI_MASK_SHAPE", length=2, kind="positive integer")

        if self.IMAGE_RESIZE_MODE not in RESIZE_MODES:
            self._fail("IMAGE_RESIZE_MODE", f"must be one of {RESIZE_MODES}")
        self._check_int("IMAGE_MIN_DIM")
        self._check_int("IMAGE_MAX_DIM")
        self._check_number("IMAGE_MIN_SCALE", 0, math.inf, high_open=True)
        if self.IMAGE_RESIZE_MODE in ("square", "pad64") and self.IMAGE_MIN_DIM > self.IMAGE_MAX_DIM:
            self._fail("IMAGE_MIN_DIM", f"must not exceed IMAGE_MAX_DIM = {self.IMAGE_MAX_DIM}")
        if self.IMAGE_RESIZE_MODE == "square" and self.IMAGE_MAX_DIM % BACKBONE_DOWNSCALE:
            self._fail("IMAGE_MAX_DIM", f"must be a multiple of {BACKBONE_DOWNSCALE} "
                                        "(e.g. 256, 320, 384, 448, 512, ...) in 'square' mode")
        if self.IMAGE_RESIZE_MODE == "crop" and self.IMAGE_MIN_DIM % BACKBONE_DOWNSCALE:
            self._fail("IMAGE_MIN_DIM", f"must be a multiple of {BACKBONE_DOWNSCALE} in 'crop' mode")
        self._check_sequence("MEAN_PIXEL", length=self.IMAGE_CHANNEL_COUNT, kind="number", positive=False)

        self._check_sequence("MASK_SHAPE", length=2, kind="positive integer")
        if list(self.MASK_SHAPE) != [2 * self.MASK_POOL_SIZE] * 2:
            self._fail("MASK_SHAPE", f"must be [2 * MASK_POOL_SIZE] * 2 = {[2 * self.MASK_POOL_SIZE] * 2} "
                                     "(the mask head upsamples its pooled features once, by 2)")
        self._check_sequence("RPN_BBOX_STD_DEV", length=4)
        self._check_sequence("BBOX_STD_DEV", length=4)

        self._check_number("LEARNING_RATE", 0, math.inf, low_open=True, high_open=True)
        self._check_number("LEARNING_MOMENTUM", 0, 1, high_open=True)
        self._check_number("WEIGHT_DECAY", 0, math.inf, high_open=True)
        self._check_number("BATCH_NORM_MOMENTUM", 0, 1, high_open=True)
        self._check_int("PRECISE_BN_BATCHES", minimum=0)
        if self.GRADIENT_CLIP_NORM is not None:
            self._check_number("GRADIENT_CLIP_NORM", 0, math.inf, low_open=True, high_open=True)
        if self.KEEP_CHECKPOINTS is not None and not (_is_int(self.KEEP_CHECKPOINTS) and self.KEEP_CHECKPOINTS >= 1):
            self._fail("KEEP_CHECKPOINTS", "must be None (keep all) or an integer >= 1")

        weights = self.LOSS_WEIGHTS
        if not isinstance(weights, dict) or set(weights) != set(LOSS_NAMES):
            self._fail("LOSS_WEIGHTS", f"must be a dict with exactly the keys {LOSS_NAMES}")
        for loss, weight in weights.items():
            if not _is_number(weight) or weight < 0:
                self._fail("LOSS_WEIGHTS", f"weight of {loss!r} must be a number >= 0")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                self._fail(name, "must be " + " or ".join(f'"{value}"' for value in allowed))
        for name in ("USE_RPN_ROIS", "TRAIN_BN", "MIXED_PRECISION"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                self._fail(name, "must be True or False")
        if not self.USE_RPN_ROIS:
            self._fail("USE_RPN_ROIS", "only True is supported: the heads train on the RPN's proposals "
                                       "(Matterport's False, for training the heads on random ROIs, is not built)")
        if self.PRECISE_BN_BATCHES and not self.TRAIN_BN:
            self._fail("PRECISE_BN_BATCHES", "needs TRAIN_BN = True: with frozen BatchNorm the statistics are "
                                             "part of what training fits, and re-measuring them would change it")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value):
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _plain(value):
    """A JSON-ready copy of a setting value."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if callable(value):
        return getattr(value, "__qualname__", repr(value))
    return value


class _NewSetting:
    """The default of a setting that `Config` itself does not have (a subclass added it)."""

    def __repr__(self):
        return "NEW_SETTING"


NEW_SETTING = _NewSetting()


def _dict_changes(value, other):
    """A dict setting shown by the keys where it differs from `other` ("..." for the rest)."""
    if not (isinstance(value, dict) and isinstance(other, dict)) or set(value) != set(other):
        return value
    diff = ", ".join(f"{key}: {item}" for key, item in value.items() if other[key] != item)
    return "{" + diff + ", ...}"


def _short(value, limit=40):
    """A setting value as one short line for `display_changes` (long dicts and lists cut)."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def upgrade_settings(values, source="saved config"):
    """A dict of settings saved by an earlier version, in this version's names and values.

    Former value names are translated (FORMER_VALUES); a removed setting is dropped when it had
    the value that behaves as this version does, and is a ValueError naming `source` otherwise
    (a model built another way, which this version cannot rebuild).
    """
    upgraded = {}
    for name, value in values.items():
        if name in REMOVED_SETTINGS:
            if value != REMOVED_SETTINGS[name]:
                raise ValueError(f"{source}: {name} = {value!r} was removed from this engine (only "
                                 f"{REMOVED_SETTINGS[name]!r} remains); this model cannot be rebuilt")
            continue
        upgraded[name] = FORMER_VALUES.get(name, {}).get(value, value) if isinstance(value, str) else value
    return upgraded
