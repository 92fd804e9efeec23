"""The one switch: `smoke` (tiny, CPU, synthetic data), `colab` (real ModaNet on a Colab T4 in
under two hours) or `full` (the seed projects' whole recipe: a day of GPU time).

Notebooks read it in their parameters cell, and lay their form over it::

    PROFILE = "auto"  # @param ["auto", "smoke", "colab", "full"]
    EPOCHS = 15  # @param {type:"integer"}
    ...
    profile = get_profile(PROFILE).with_form("04", globals())
    profile.show_form()     # each knob: the value used, and whether the profile or your form set it

A form shows the `colab` profile's values (what a Colab learner runs). A value left as shown
means "the running profile's value"; a value you change is your choice and wins (`with_form`;
`FORMS` maps each notebook's form names to profile fields).

"auto" means: $MODANET_PROFILE when set; otherwise `colab` on Colab, when a GPU is visible or
when real ModaNet is already under data/, and `smoke` when none is. `full` only when asked.
$MODANET_DATA_SOURCE=sample makes a profile that reads real ModaNet read the synthetic sample
instead (under its own data folder): the real path rehearsed on a CPU, with no download.
Every number a profile sets lives here and nowhere else.
"""
import numbers
import os
import shutil
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from mrcnn.config import BACKBONE_DOWNSCALE, BUILTIN_BACKBONES

from helpers.notebook import CourseStop
from helpers.paths import Paths

PROFILE_ENV = "MODANET_PROFILE"
DATA_SOURCE_ENV = "MODANET_DATA_SOURCE"     # "modanet" (default) or "sample"


@dataclass(frozen=True)
class Profile:
    name: str
    data: str                       # "synthetic" or "modanet"
    seed: int = 42
    # synthetic sample (smoke) ---------------------------------------------------------
    sample_images: int = 240        # ModaNet-like images to draw (smoke; any profile with MODANET_DATA_SOURCE=sample)
    sample_size: tuple = (128, 192)  # (width, height) of each drawn image
    custom_per_label: int = 0       # custom images per <class>_<season> label
    custom_classes: tuple = ()      # classes of the custom set
    # model (04 / 06) ------------------------------------------------------------------
    model1_classes: tuple = ()      # classes model-1 learns; () = all 13 of ModaNet
    backbone: str = "resnet101"
    image_dim: int = 1024           # IMAGE_MIN_DIM = IMAGE_MAX_DIM (square)
    images_per_gpu: int = 2
    steps_per_epoch: int = 1000
    validation_steps: int = 50
    epochs_heads: int = 20          # train the heads until this epoch ...
    epochs: int = 40                # ... then every layer until this one (Matterport's counting)
    learning_rate: float = 0.001
    keep_checkpoints: int = 3       # a run keeps its newest 3 epoch checkpoints (ResNet-101: ~250 MB each)
    init_weights: str = "coco"
    flip_probability: float = 0.5   # left-right flips while training (the seed projects: Fliplr 0.5)
    fine_tune_layers: str = "all"   # the second stage trains these: "all", "3+", "4+", "5+"
    train_minutes: float = None     # model-1 stops at the first step after this many minutes (None: no limit)
    mixed_precision: bool = False   # mixed_float16 when a GPU is visible (float32 on a CPU)
    train_images: int = None        # 02 keeps at most this many train images (None: every one) ...
    val_images: int = None          # ... val images ...
    test_images: int = None         # ... and test images (a subset sized for the time budget)
    custom_per_class: int = 0       # real data: held-out photos per garment for the custom set (05)
    train_subset: int = 0           # 04 / 06 train on at most this many images of their train split (0: all)
    detection_min_confidence: float = 0.7   # inference keeps detections at least this sure (Matterport's 0.7)
    engine: dict = field(default_factory=dict)   # further Config values (smoke: a smaller network)
    # auto-labelling (05) and model-2 (06) ----------------------------------------------------
    model2_epochs_heads: int = 20   # model-2 starts from model-1: heads until this epoch ...
    model2_epochs: int = 40         # ... then every layer until this one
    model2_train_minutes: float = None   # model-2's time budget (None: no limit)
    model2_steps_per_epoch: int = None   # model-2's steps an epoch (None: steps_per_epoch)
    model2_init_weights: str = "model1"  # model-2 starts from model-1's exported weights
    min_confidence: float = 0.7     # keep model-1 detections at least this sure
    min_per_class: int = 5          # keep class_season labels with at least this many instances
    # the form a notebook laid over this profile: (knob, value used as text, "profile" or "your form")
    knobs: tuple = field(default=(), compare=False, repr=False)

    @property
    def paths(self):
        return Paths.for_profile(self)

    def for_model2(self, **overrides):
        """This profile with model-2's epochs, budget and start weights in place of model-1's
        (and any override not None)."""
        profile = replace(self, epochs_heads=self.model2_epochs_heads, epochs=self.model2_epochs,
                          train_minutes=self.model2_train_minutes,
                          steps_per_epoch=self.model2_steps_per_epoch or self.steps_per_epoch,
                          init_weights=self.model2_init_weights)
        return replace(profile, **{k: v for k, v in overrides.items() if v is not None})

    def with_form(self, notebook, values):
        """This profile with notebook `notebook`'s form laid over it ("04"; `values`: the
        parameters cell's names, e.g. globals()). Each knob of FORMS[notebook]:

        - left at the value the committed form shows (the colab profile's) -> this profile's value
          (so the committed notebook runs any profile: MODANET_PROFILE=smoke gets smoke's numbers);
        - changed -> your value wins, once checked (a bad one stops with one line, KnobError).

        So on another profile the form's own value cannot be chosen by leaving it (EPOCHS = 15
        on smoke is smoke's 8): the table says which value ran, and PROFILE = "colab" runs colab's.

        A papermill run that injects every knob (helpers.run_course) also injects FORM_SHOWS
        = the profile whose values it injected, so a value it passes is never mistaken for "as shown".
        The rows of `show_form()` record what came from where.
        """
        form = _form(notebook)
        shows = values.get(FORM_SHOWS, FORM_PROFILE)
        if shows not in PROFILES:
            raise KnobError(f"{FORM_SHOWS} = {shows!r}: choose one of {', '.join(PROFILES)}")
        shown_by = self if shows == self.name else PROFILES[shows]
        changes, as_shown, rows = {}, set(), []
        for name, knob in form.items():
            shown, own = knob.form_value(shown_by), knob.form_value(self)
            value = values.get(name, shown)
            if _same(value, shown):
                value = own
                as_shown.add(name)
            elif not _same(value, own):
                problem = knob.check(value)
                if problem:
                    raise KnobError(f"{name} = {value!r}: {problem}")
                changes[knob.field] = knob.field_value(value, self)
            rows.append((name, knob.describe(value), "profile" if _same(value, own) else "your form"))
        profile = replace(self, **changes, knobs=tuple(rows))
        if "INIT_WEIGHTS" in form:
            from helpers.training import check_start_weights

            try:
                check_start_weights(getattr(profile, form["INIT_WEIGHTS"].field), profile.backbone)
            except KnobError as err:        # a value left as shown is easily taken for the one used
                hidden = [f"{name} left at the form's {knob.form_value(shown_by)!r} means the "
                          f"{self.name} profile's {knob.form_value(self)!r}"
                          for name, knob in form.items() if name in ("INIT_WEIGHTS", "BACKBONE")
                          and name in as_shown and not _same(knob.form_value(shown_by), knob.form_value(self))]
                raise KnobError(f"{err}" + (f" ({'; '.join(hidden)})" if hidden else "")) from None
        return profile

    def form_values(self, notebook):
        """{form name: value} of notebook `notebook`'s form for this profile (what its form would show)."""
        return {name: knob.form_value(self) for name, knob in _form(notebook).items()}

    def form_table(self):
        """The knobs `with_form` set, one line each: name, value used, where it came from."""
        lines = [f"profile '{self.name}'; this notebook's knobs (value used, set by):"]
        for name, value, source in self.knobs:
            lines.append(f"  {name:25} {value:14} {source}")
        return "\n".join(lines)

    def show_form(self):
        print(self.form_table())

    def table(self):
        """The profile as (name, value) rows, for printing in a notebook."""
        return [(f.name, getattr(self, f.name)) for f in fields(self) if f.name not in ("engine", "knobs")]

    def display(self, width=110):
        """Every value of the profile, a few to a line (and its Config values), in a dozen lines or so."""
        import textwrap

        def lines(pairs):
            text = ", ".join(f"{key}={_plain(value)}" for key, value in pairs)
            return textwrap.fill(text, width, initial_indent="  ", subsequent_indent="    ")

        print(f"Profile '{self.name}':")
        print(lines(self.table()))
        if self.engine:
            print("  Config values it sets:")
            print(lines(self.engine.items()))


def _plain(value):
    """A profile value as it reads in a line: tuples and lists without quotes and brackets' clutter."""
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


SMOKE = Profile(
    name="smoke",
    data="synthetic",
    sample_images=240,
    sample_size=(128, 192),
    custom_per_label=6,
    custom_classes=("top", "skirt", "pants", "dress", "bag", "outer"),
    # model-1 learns the six big garments the custom set is named after: from scratch on a CPU, the
    # small ones (belt, sunglasses, ...) would take far longer than a smoke run has
    model1_classes=("top", "skirt", "pants", "dress", "bag", "outer"),
    # a small network trained from scratch on the CPU in minutes: ResNet-18, 128 px, thin heads
    backbone="resnet18",
    image_dim=128,
    images_per_gpu=2,
    steps_per_epoch=50,
    validation_steps=2,
    epochs_heads=0,                 # from scratch there is nothing to protect: all layers at once
    epochs=8,                       # 400 steps: mask AP50 about 0.2 on val (a start, not a model)
    learning_rate=0.005,            # from scratch, batch 2: 0.02 left model-1 at mask AP50 0.000-0.04
    init_weights="none",
    engine={
        # from scratch BatchNorm must learn the data's statistics: measured once before training
        # (04 calibrates them), then followed quickly enough that inference agrees with training
        "TRAIN_BN": True,
        "BATCH_NORM_MOMENTUM": 0.9,
        # ... and measured again at the end of every epoch ("precise BN"), so each checkpoint and the
        # validation losses use statistics of the weights themselves, not averages that lag them
        "PRECISE_BN_BATCHES": 10,
        "TOP_DOWN_PYRAMID_SIZE": 64,
        "FPN_CLASSIF_FC_LAYERS_SIZE": 256,
        "RPN_ANCHOR_SCALES": (8, 16, 32, 64, 128),
        "RPN_TRAIN_ANCHORS_PER_IMAGE": 64,
        "PRE_NMS_LIMIT": 1000,
        "POST_NMS_ROIS_TRAINING": 200,
        "POST_NMS_ROIS_INFERENCE": 100,
        "TRAIN_ROIS_PER_IMAGE": 32,
        "MASK_POOL_SIZE": 7,
        "MASK_SHAPE": [14, 14],
        "MAX_GT_INSTANCES": 20,
    },
    detection_min_confidence=0.1,   # a young model is unsure: keep its guesses for AP to rank
    model2_epochs_heads=1,          # model-2: 50 steps of new heads, then 200 of every layer
    model2_epochs=5,
    min_confidence=0.5,
    min_per_class=3,
)

FULL = Profile(
    name="full",
    data="modanet",
    # the seed projects: ResNet-101, 1024 px, 2 images a GPU, heads then all layers
    backbone="resnet101",
    image_dim=1024,
    images_per_gpu=2,
    steps_per_epoch=1000,
    validation_steps=50,
    epochs_heads=20,
    epochs=40,
    learning_rate=0.001,
    init_weights="coco",
    custom_per_class=20,            # 05: held-out ModaNet photos as the custom set, as colab
)

COLAB = Profile(
    name="colab",
    data="modanet",
    # Real ModaNet on one Colab T4 (16 GB), the whole course 01 -> 07 in under two hours.
    #
    # Backbone and start: ResNet-101 with Matterport's COCO weights, the only published COCO
    # Mask R-CNN weights in this layout (the seed projects' start); a ResNet-50 would start its
    # backbone from ImageNet only, and COCO-pretrained RPN and heads are worth more than the
    # backbone's speed in a 50-minute budget.
    # Image size: ModaNet's photos are 400 x 600; 512 px squares scale them by 0.85 (full's
    # 1024 blows them up 1.7x for 4x the pixels). Backbone FLOPs scale with pixels: 512 px costs
    # a quarter of full's 1024 px per image.
    # Precision: mixed_float16 on the GPU: a T4's tensor cores run ResNet-50 about 2.3x faster than
    # in float32 (NVIDIA's published T4 figures, 996 against 430 images/s; docs/benchmarks.md).
    # Time: model-1 <= 50 minutes of training, model-2 <= 20 (train_minutes): training stops at
    # the first step after its budget, saves and exports, and a later run with a larger budget
    # resumes. The step counts are upper bounds, chosen so that the budget, not the count, ends
    # model-1 at the estimated pace. The arithmetic (bench/estimate_gpu_time.py, an estimate on
    # paper: FLOPs per step of this network x a T4's published throughput x Matterport's measured
    # overhead; no T4 with TensorFlow was available): a forward pass is ~117 GMACs per image,
    # a step of 2 images ~545 GMACs training the heads and ~667 training layers 4+, which at
    # ~4.1 TMAC/s (mixed) times an overhead of 2.9 is ~0.73 s and ~0.89 s a step. 2,000 head steps
    # (24 min) + 1,750 steps of 4+ (26 min) = 50 min: the budget. The budget is split between the
    # stages in proportion to their epochs (8 and 7). A faster GPU (the optimistic estimate is
    # 6x faster) finishes every step early and stops there.
    # Model-2: 300 + 300 steps at the same pace are ~8 minutes, under its 20-minute budget.
    # Inference: ~0.2 s an image: the 500 val images take ~2 minutes to evaluate.
    # Data: 4,000 train images (of ~46,000), 500 val, 500 test: at 2 images a step, 3,750 steps
    # see each train image about twice; more images would not be seen at all. The test photos are
    # never trained on: 05 copies 20 per garment as the custom set (`custom_per_class`).
    backbone="resnet101",
    image_dim=512,
    images_per_gpu=2,
    steps_per_epoch=250,
    validation_steps=25,
    epochs_heads=8,                 # heads: 2,000 steps at most ...
    epochs=15,                      # ... then layers 4+ for 1,750 more (the budget ends it first at the estimated pace)
    fine_tune_layers="4+",          # ResNet stages 4 and 5 and the heads: cheaper than "all" on a T4
    learning_rate=0.001,
    keep_checkpoints=2,             # ResNet-101 checkpoints are ~250 MB each (Drive's free 15 GB)
    init_weights="coco",
    train_minutes=50,
    mixed_precision=True,
    train_images=4000,
    val_images=500,
    test_images=500,
    custom_per_class=20,
    model2_epochs_heads=3,          # model-2 from model-1: 300 steps of new heads ...
    model2_epochs=6,                # ... then 300 of layers 4+
    model2_steps_per_epoch=100,
    model2_train_minutes=20,
    min_confidence=0.7,
    min_per_class=5,
)

PROFILES = {"smoke": SMOKE, "colab": COLAB, "full": FULL}
# The synthetic sample standing in for ModaNet ($MODANET_DATA_SOURCE=sample): the smoke sample's size.
SAMPLE_STAND_IN = {"sample_images": SMOKE.sample_images, "sample_size": SMOKE.sample_size}


# --- the notebooks' forms ---------------------------------------------------------------------
# Each notebook's parameters cell is a Colab form of knobs; each knob sets one profile field.

FORM_PROFILE = "colab"      # the profile whose values the committed forms show
FORM_SHOWS = "FORM_SHOWS"   # injected by helpers.run_course: the profile whose values it injected
FLIP_PROBABILITY = 0.5      # AUGMENT = True on a profile that does not flip: the seed projects' Fliplr(0.5)
LAYER_CHOICES = ("heads", "3+", "4+", "5+", "all")


class KnobError(CourseStop, ValueError):
    """A form value the course cannot use: one line naming the knob and what to choose instead."""


def _whole(minimum):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            return f"must be a whole number >= {minimum}"
    return check


def _number(low, high=None, low_included=True):
    def check(value):
        bad = isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value
        bad = bad or (value < low if low_included else value <= low) or (high is not None and value > high)
        if bad:
            bounds = f"{'>=' if low_included else '>'} {low}" + ("" if high is None else f" and <= {high}")
            return f"must be a number {bounds}"
    return check


def _choice(choices, open_ended=None):
    def check(value):
        if not isinstance(value, str) or not value.strip():
            return f"choose one of {', '.join(choices)}" + (f" or {open_ended}" if open_ended else "")
        if value not in choices and not open_ended:
            return f"choose one of {', '.join(choices)}"
    return check


def _flag(value):
    if not isinstance(value, bool):
        return "must be True or False"


def _image_size(value):
    problem = _whole(BACKBONE_DOWNSCALE)(value)
    if problem or value % BACKBONE_DOWNSCALE:
        below = max(BACKBONE_DOWNSCALE, value // BACKBONE_DOWNSCALE * BACKBONE_DOWNSCALE) if not problem else 512
        return (f"must be a multiple of {BACKBONE_DOWNSCALE} (the backbone halves the image 6 times), "
                f"e.g. {below} or {below + BACKBONE_DOWNSCALE}")


def _quoted(values):
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


@dataclass(frozen=True)
class Knob:
    """One form field and the profile field it sets.

    check: form value -> None, or what is wrong with it. param: the Colab form spec after
    `# @param`. to_form / to_field convert where the form speaks otherwise than the profile
    (AUGMENT True/False for a flip probability; TRAIN_MINUTES 0 for None, no limit).
    fallback: a field whose value a None here means (model-2's steps: model-1's).
    zero_means: words for the form value 0 in the table ("all", "no limit").
    """

    field: str
    check: object
    param: str
    to_form: object = None
    to_field: object = None
    fallback: str = None
    zero_means: str = None

    def form_value(self, profile):
        """The value the form shows for `profile`."""
        value = getattr(profile, self.field)
        if value is None and self.fallback:
            value = getattr(profile, self.fallback)
        return self.to_form(value) if self.to_form else value

    def field_value(self, value, profile):
        """The profile field's value for a (checked) form value."""
        return self.to_field(value, profile) if self.to_field else value

    def describe(self, value):
        """The form value for the table: `0 (no limit)`."""
        return f"{value} ({self.zero_means})" if self.zero_means and not isinstance(value, bool) and value == 0 \
            else str(value)

    def form_line(self, name, value):
        """The parameters-cell line of this knob with `value`: `EPOCHS = 15  # @param {type:"integer"}`."""
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        return f"{name} = {shown}  # @param {self.param}"


def _flips_to_form(probability):
    return probability > 0


def _flips_to_field(augment, profile):
    return (profile.flip_probability or FLIP_PROBABILITY) if augment else 0.0


def _minutes_to_form(minutes):
    return 0 if minutes is None else minutes


def _minutes_to_field(minutes, profile):
    return None if minutes == 0 else minutes


_INTEGER, _NUMBER, _BOOLEAN = '{type:"integer"}', '{type:"number"}', '{type:"boolean"}'
_INIT_MODEL1 = ("coco", "imagenet", "last", "none")
_INIT_MODEL2 = ("model1", "coco", "none", "last")
_BACKBONES = ("resnet101", "resnet50", "resnet34", "resnet18")
assert set(_BACKBONES) == set(BUILTIN_BACKBONES)


def _model_knobs(prefix=""):
    """The knobs of a training notebook; model-2's schedule and start live in `model2_*` fields."""
    inits = _INIT_MODEL2 if prefix else _INIT_MODEL1
    return {
        "INIT_WEIGHTS": Knob(f"{prefix}init_weights", _choice(inits, "the path of a .h5 file"),
                             f"{_quoted(inits)} {{allow-input: true}}"),
        "BACKBONE": Knob("backbone", _choice(_BACKBONES), _quoted(_BACKBONES)),
        "IMAGE_SIZE": Knob("image_dim", _image_size, _INTEGER),
        "TRAIN_IMAGES": Knob("train_subset", _whole(0), _INTEGER, zero_means="all"),
        "AUGMENT": Knob("flip_probability", _flag, _BOOLEAN, _flips_to_form, _flips_to_field),
        "EPOCHS_HEADS": Knob(f"{prefix}epochs_heads", _whole(0), _INTEGER),
        "EPOCHS": Knob(f"{prefix}epochs", _whole(0), _INTEGER),
        "LAYERS": Knob("fine_tune_layers", _choice(LAYER_CHOICES), _quoted(LAYER_CHOICES)),
        "STEPS_PER_EPOCH": Knob(f"{prefix}steps_per_epoch", _whole(1), _INTEGER,
                                fallback="steps_per_epoch" if prefix else None),
        "IMAGES_PER_GPU": Knob("images_per_gpu", _whole(1), _INTEGER),
        "LEARNING_RATE": Knob("learning_rate", _number(0, low_included=False), _NUMBER),
        "TRAIN_MINUTES": Knob(f"{prefix}train_minutes", _number(0), _NUMBER, _minutes_to_form, _minutes_to_field,
                              zero_means="no limit"),
        "DETECTION_MIN_CONFIDENCE": Knob("detection_min_confidence", _number(0, 1), _NUMBER),
    }


# notebook number -> {form name: Knob}, in the order of the parameters cell
FORMS = {
    "01": {"SAMPLE_IMAGES": Knob("sample_images", _whole(1), _INTEGER)},
    "04": _model_knobs(),
    "05": {"MIN_CONFIDENCE": Knob("min_confidence", _number(0, 1), _NUMBER),
           "MIN_PER_CLASS": Knob("min_per_class", _whole(1), _INTEGER)},
    "06": _model_knobs("model2_"),
}


def _form(notebook):
    if notebook not in FORMS:
        raise ValueError(f"no form for notebook {notebook!r}: forms exist for {', '.join(FORMS)}")
    return FORMS[notebook]


def _same(a, b):
    """Equal as form values: True is not 1, and 15 is 15.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return type(a) is type(b) and a == b or (isinstance(a, numbers.Real) and isinstance(b, numbers.Real) and a == b)


def gpu_visible():
    """True when an NVIDIA GPU is visible, checked without importing TensorFlow."""
    return Path("/proc/driver/nvidia/gpus").is_dir() or shutil.which("nvidia-smi") is not None


def on_colab():
    """True inside a Colab runtime (checked without importing anything of Colab's)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def modanet_present():
    paths = Paths.for_profile("full")
    return paths.train_annotations.is_file() and paths.images.is_dir()


def data_source():
    """'modanet' or 'sample' ($MODANET_DATA_SOURCE; default modanet)."""
    source = os.environ.get(DATA_SOURCE_ENV, "").strip().lower() or "modanet"
    if source not in ("modanet", "sample"):
        raise ValueError(f"${DATA_SOURCE_ENV}={source!r}: choose 'modanet' or 'sample'")
    return source


def resolve_profile_name(name="auto"):
    """'smoke', 'colab' or 'full' for a requested name ('auto' looks at the env, Colab, the GPU and data/)."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        name = os.environ.get(PROFILE_ENV, "").strip().lower() or "auto"
    if name == "auto":
        name = "colab" if (on_colab() or gpu_visible() or modanet_present()) else "smoke"
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}: choose 'auto', 'smoke', 'colab' or 'full' "
                         f"(or set ${PROFILE_ENV}).")
    return name


def get_profile(name="auto", **overrides):
    """The Profile for `name`, with any field overridden: get_profile('smoke', seed=1).

    An override of None keeps the profile's value. (Notebooks lay their forms over a profile
    with `Profile.with_form`.) With $MODANET_DATA_SOURCE=sample a profile
    of real ModaNet reads the synthetic sample instead (the smoke profile's size).
    """
    profile = PROFILES[resolve_profile_name(name)]
    if profile.data == "modanet" and data_source() == "sample":
        profile = replace(profile, data="synthetic", **SAMPLE_STAND_IN)
    overrides = {key: value for key, value in overrides.items() if value is not None}
    unknown = set(overrides) - {f.name for f in fields(Profile)} | ({"knobs"} & set(overrides))
    if unknown:
        raise ValueError(f"Unknown profile field(s): {sorted(unknown)}")
    return replace(profile, **overrides) if overrides else profile
