"""How long each profile's training and inference take on a Colab T4: an estimate on paper.

No GPU with TensorFlow was available to measure this project on, so the times here are computed,
not measured:

    seconds = multiply-accumulates (MACs) of the work  /  MACs per second a T4 sustains  x  overhead

1. MACs. `layer_costs` walks our Keras network (mrcnn.model.build_network, built for the
   profile's Config but never run) and counts the MACs of every Conv2D, Conv2DTranspose and Dense
   layer from its kernel shape and output size, inside TimeDistributed wrappers and nested models
   too (the shared `rpn_model` is counted once for each pyramid level it runs on, P2..P6). The
   per-ROI heads are counted per ROI and multiplied by how many ROIs they see: in training the
   classifier sees TRAIN_ROIS_PER_IMAGE rows and the mask head the positive ones only
   (ROI_POSITIVE_RATIO x TRAIN_ROIS_PER_IMAGE, an upper bound); in inference the classifier
   sees POST_NMS_ROIS_INFERENCE rows and the mask head DETECTION_MAX_INSTANCES rows.
   The counter is checked on ResNet-50 (tests/test_estimate_gpu_time.py).

2. A training step. Backpropagation costs about two forward passes for a layer that needs both
   gradients (one for its input, one for its weights), so a trainable layer costs 3x its forward
   MACs. A frozen layer costs 1x: in Mask R-CNN every frozen layer (the ResNet stages below the
   stage `layers=` starts at) lies upstream of every trainable one, so no gradient flows through
   it. ("heads" trains FPN, RPN and heads: the ResNet's backward is skipped entirely.) The first
   trainable layer after a frozen one needs no input gradient (2x, counted 3x): a small overcount.

3. MACs per second a T4 sustains, from two published measurements, each MACs per image (counted
   by the same code) x images per second:
   - central: NVIDIA's ResNet-50 v1.5 on a T4 (RESNET50_T4_INFERENCE). A ResNet with 1x1 convs and
     batch norm, like our backbone. It is an inference measurement; the same README's V100 rows
     show ResNet-50 training at about the MACs per second of its inference (printed as a check),
     so the rate stands for training too.
   - optimistic: a training run on a Colab T4 itself (TRAINING_ANCHOR, Wide-ResNet-28-10, float32
     and mixed precision, from its logs). Wide 3x3 convolutions are the friendliest case for a GPU.

4. Overhead: what FLOPs miss (proposal top-k and NMS, ROIAlign, target sampling, losses, the
   input pipeline). Measured, not assumed: detectron2's benchmark (MASK_RCNN_V100) trained the
   same R-50-FPN Mask R-CNN on V100s with several implementations; each one's MACs per second
   (its training MACs per image, counted here, x its images per second per GPU) against NVIDIA's
   ResNet-50 training on one V100 gives overhead = ResNet-50's MAC/s / Mask R-CNN's MAC/s.
   - central: matterport/Mask_RCNN's factor. Our engine keeps Matterport's graph (the same layers,
     TF proposal and ROIAlign ops), so it should behave like it; its 8-GPU run splits batches on
     the host, which makes the factor, if anything, too high.
   - optimistic: detectron2's factor (its network differs from Matterport's in the RPN width and
     image size: `detectron2_scale`), at least 1.
   The overhead does not speed up with float16: in mixed precision only the convolution part
   runs at the mixed rate (`seconds`).

These are estimates on paper, not measurements: docs/benchmarks.md says how far to trust them.

    .venv/bin/python bench/estimate_gpu_time.py              # the table, plain text
    .venv/bin/python bench/estimate_gpu_time.py --markdown   # the table for docs/benchmarks.md
"""
import argparse
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODEL1_CLASSES = 13                 # ModaNet's garments (helpers/modanet.py), model-1's class count

# -- sources ----------------------------------------------------------------------------------

# Measured training on a Colab T4 (Tesla T4, PyTorch 1.1, CUDA 10.0), batch 128 of 32x32 CIFAR-10
# images, Wide-ResNet-28-10 (meliketoy's definition, copied in that repository as wide_resnet.py).
# The notebook logs print a line every 130 steps; in every epoch of the float32 run (O0) those
# lines are 108 s apart, in the mixed-precision run (apex O1) 59 s apart (e.g. epoch 10:
# 07:03:51 -> 07:05:39 for O0, 12:38:04 -> 12:39:02 -> 12:40:00 for O1).
TRAINING_ANCHOR = {
    "network": "Wide-ResNet-28-10 (CIFAR-10, 32x32)",
    "url": "https://github.com/ceshine/apex_pytorch_cifar_experiment "
           "(colab_snapshots/wide_resnet_10epochs_O0.ipynb and _O1.ipynb; write-up: "
           "https://blog.ceshine.net/post/apex-t4-p100/)",
    "images_per_second": {"fp32": 130 * 128 / 108.0, "mixed": 130 * 128 / 59.0},
}

# NVIDIA Deep Learning Examples, ResNet-50 v1.5 for TensorFlow (README, "Inference performance:
# NVIDIA T4 (1x T4 16G)", TensorFlow 20.06-tf1-py3 NGC container), batch 128, where throughput
# has levelled off: FP32 429.83 img/s, mixed precision 995.81 img/s.
RESNET50_T4_INFERENCE = {
    "network": "ResNet-50 v1.5 (ImageNet, 224x224)",
    "url": "https://github.com/NVIDIA/DeepLearningExamples/tree/master/TensorFlow/Classification/"
           "ConvNets/resnet50v1.5 (README: Inference performance: NVIDIA T4 (1x T4 16G))",
    "images_per_second": {"fp32": 429.83, "mixed": 995.81},
}
# Same README, one V100 16G (DGX-1): training FP32 + XLA, batch 128: 412 img/s ("Training performance:
# NVIDIA DGX-1 (8x V100 16G)", 1 GPU); inference FP32, batch 128: 1324.91 img/s.
RESNET50_V100 = {"training_fp32": 412.0, "inference_fp32": 1324.91}

# detectron2, docs/notes/benchmarks.md: R-50-FPN Mask R-CNN training throughput on 8 V100 (FP32,
# iterations 100-500), Detectron's e2e_mask_rcnn_R-50-FPN_1x hyper-parameters: detectron2 62 img/s,
# matterport/Mask_RCNN 14 img/s. Matterport's run (its diff there): BACKBONE resnet50,
# TRAIN_ROIS_PER_IMAGE 512, layers '3+', 81 COCO classes, 1024 px squares, ROI_POSITIVE_RATIO 0.33
# (its default); detectron2 samples 512 ROIs with 25% positives and freezes the stem and res2 (3+).
MASK_RCNN_V100 = {
    "url": "https://github.com/facebookresearch/detectron2/blob/main/docs/notes/benchmarks.md",
    "gpus": 8,
    "images_per_second": {"detectron2": 62.0, "matterport": 14.0},
    "settings": {"BACKBONE": "resnet50", "IMAGE_MIN_DIM": 800, "IMAGE_MAX_DIM": 1024, "NUM_CLASSES": 81,
                 "TRAIN_ROIS_PER_IMAGE": 512, "ROI_POSITIVE_RATIO": 0.33},
    "layers": "3+",
    "detectron2_positive_ratio": 0.25,
}

# ResNet-50 at 224x224: 3.8e9 multiply-adds for v1 (He et al. 2016, Table 1, "FLOPs" there count
# multiply-adds), 4.1e9 for v1.5 (stride in the 3x3 conv; torchvision's ResNet50_Weights lists 4.09).
RESNET50_V1_GMACS = 3.8
RESNET50_V15_GMACS = 4.1

# Colab's FAQ (Resource limits): notebooks run on virtual machines whose maximum lifetime "can be as
# much as 12 hours"; free sessions are often shorter and also end when idle.
COLAB_SESSION_HOURS = 12
COLAB_FAQ = "https://research.google.com/colaboratory/faq.html"


# -- counting ---------------------------------------------------------------------------------

@dataclass
class LayerCost:
    """Forward MACs of one layer call: per image, or per ROI row when `per_roi`."""
    name: str           # the layer's name (the wrapper's for TimeDistributed)
    path: str           # nested models first: "rpn_model/rpn_conv_shared"
    kind: str           # Conv2D, Conv2DTranspose, Dense
    macs: int
    per_roi: bool = False


def _keras():
    import keras
    return keras


def _spatial(shape, what):
    dims = [int(d) if d is not None else None for d in shape]
    if any(d is None for d in dims):
        raise ValueError(f"{what}: output shape {tuple(shape)} is not fully known; build the model "
                         "for a fixed image size (IMAGE_RESIZE_MODE 'square')")
    return math.prod(dims)


def _layer_macs(layer, input_shape, output_shape, name):
    """MACs of one call of a Conv2D / Conv2DTranspose / Dense on one sample (shapes without batch)."""
    keras = _keras()
    if isinstance(layer, keras.layers.Conv2DTranspose):
        kh, kw, filters, channels = layer.kernel.shape      # transposed convs store (kh, kw, out, in)
        # every input pixel scatters a kh x kw x filters patch: in_pixels x kh x kw x C x F
        return "Conv2DTranspose", _spatial(input_shape[:-1], name) * kh * kw * channels * filters
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw, channels_per_group, filters = layer.kernel.shape
        return "Conv2D", _spatial(output_shape[:-1], name) * kh * kw * channels_per_group * filters
    if isinstance(layer, keras.layers.Dense):
        units_in, units = layer.kernel.shape
        rows = _spatial(output_shape[:-1], name) if len(output_shape) > 1 else 1
        return "Dense", rows * units_in * units
    if getattr(layer, "kernel", None) is not None or any(w.path.endswith("kernel") for w in layer.weights):
        raise NotImplementedError(f"{name}: {type(layer).__name__} has a kernel the counter does not "
                                  "know how to count")
    return None, 0


def _record(op, args, output, prefix, costs):
    keras = _keras()
    inner, per_roi = op, False
    if isinstance(op, keras.layers.TimeDistributed):
        inner, per_roi = op.layer, True
    if not args or not hasattr(args[0], "shape"):
        return
    in_shape, out_shape = tuple(args[0].shape), tuple(output.shape)
    # drop the batch axis (and the ROI axis of a per-ROI wrapper): MACs are per image or per ROI
    skip = 2 if per_roi else 1
    kind, macs = _layer_macs(inner, in_shape[skip:], out_shape[skip:], prefix + op.name)
    if kind:
        costs.append(LayerCost(op.name, prefix + op.name, kind, int(macs), per_roi))


def _graph_of(model):
    """The functional graph of a model: itself, or the one a Sequential builds (Keras 3)."""
    if hasattr(model, "_run_through_graph"):
        return model
    graph = getattr(model, "_functional", None)
    if graph is None or not hasattr(graph, "_run_through_graph"):
        raise NotImplementedError(f"{model.name}: only functional and built Sequential models can be "
                                  "counted (a subclassed model has no graph to walk)")
    return graph


def layer_costs(model, inputs=None, prefix=""):
    """[LayerCost] of every Conv2D / Conv2DTranspose / Dense call in `model`, in graph order.

    Walks the functional graph with symbolic tensors (nothing is computed): each layer's output
    shape comes from its compute_output_spec on the shapes that reach it, so a nested model
    called several times (rpn_model, once per pyramid level) is counted once per call, at that
    call's size. Uses Keras' Functional graph walker (Functional._run_through_graph, the same
    in Keras 3.13 and 3.15).
    """
    keras = _keras()
    model = _graph_of(model)
    costs = []

    def operation_fn(op):
        def run(*args, **kwargs):
            if isinstance(op, keras.Model):
                graph = _graph_of(op)
                nested = layer_costs(graph, args[0] if len(args) == 1 else list(args), prefix + op.name + "/")
                costs.extend(nested)
                return nested.outputs
            output = op.compute_output_spec(*args, **kwargs)
            if isinstance(op, keras.layers.Layer):
                _record(op, args, output, prefix, costs)
            return output
        return run

    outputs = model._run_through_graph(model.inputs if inputs is None else inputs, operation_fn=operation_fn)
    return CostList(costs, outputs)


class CostList(list):
    """A list of LayerCost that also carries the symbolic outputs of the walk (for nesting)."""

    def __init__(self, costs, outputs=None):
        super().__init__(costs)
        self.outputs = outputs


def total_macs(costs):
    """Sum of MACs of per-image layers (per-ROI layers excluded)."""
    return sum(c.macs for c in costs if not c.per_roi)


# -- reference networks -------------------------------------------------------------------------

def resnet50_v15():
    """ResNet-50 v1.5 at 224x224 with its 1000-way classifier, for its MAC count only (BatchNorm,
    which has no MACs, left out): bottleneck blocks 1x1, 3x3, 1x1 of [3, 4, 6, 3] with [64, 128, 256, 512] filters,
    each stage's first block striding on its 3x3 conv and projecting its shortcut (torchvision's
    layout; our backbone, like Matterport's, strides on the first 1x1 conv: ResNet-50 v1)."""
    keras = _keras()
    layers = keras.layers
    image = keras.Input((224, 224, 3))
    x = layers.Conv2D(64, 7, strides=2, padding="same")(image)
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for stage, (blocks, filters) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        for block in range(blocks):
            stride = 2 if block == 0 and stage > 0 else 1
            shortcut = layers.Conv2D(4 * filters, 1, strides=stride)(x) if block == 0 else x
            y = layers.Conv2D(filters, 1, activation="relu")(x)
            y = layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(y)
            y = layers.Conv2D(4 * filters, 1)(y)
            x = layers.Activation("relu")(layers.Add()([y, shortcut]))
    logits = layers.Dense(1000)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(image, logits, name="resnet50_v15")


def wide_resnet(depth=28, width=10, size=32, classes=10):
    """The training anchor's Wide-ResNet (meliketoy's layout: a block's first 3x3 conv keeps the
    resolution, its second strides; a 1x1 shortcut conv where the shape changes). Only the
    convolutions and the classifier matter for MACs, so norms and activations are left out."""
    keras = _keras()
    layers = keras.layers
    blocks = (depth - 4) // 6
    x = image = keras.Input((size, size, 3))
    x = layers.Conv2D(16, 3, padding="same")(x)
    channels = 16
    for stage, filters in enumerate((16 * width, 32 * width, 64 * width)):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            y = layers.Conv2D(filters, 3, padding="same")(x)
            y = layers.Conv2D(filters, 3, strides=stride, padding="same")(y)
            shortcut = x
            if stride != 1 or channels != filters:
                shortcut = layers.Conv2D(filters, 1, strides=stride)(x)
            x = layers.Add()([y, shortcut])
            channels = filters
    x = layers.Dense(classes)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(image, x, name=f"wide_resnet_{depth}_{width}")


# -- Mask R-CNN costs ---------------------------------------------------------------------------

TRAINING, INFERENCE = "training", "inference"


@dataclass
class NetworkCost:
    """The layer costs of one Mask R-CNN network and the Config they were counted for."""
    config: object
    costs: list = field(default_factory=list)

    def head(self, cost):
        """'mask' or 'classifier' for a per-ROI layer, None for a per-image one."""
        if not cost.per_roi:
            return None
        return "mask" if cost.name.startswith("mrcnn_mask") else "classifier"

    def roi_counts(self, mode):
        """ROI rows each head runs on per image: training samples TRAIN_ROIS_PER_IMAGE rows for the
        classifier and runs the mask head on the positive ones only (at most ROI_POSITIVE_RATIO of
        them); inference classifies POST_NMS_ROIS_INFERENCE proposals and masks
        DETECTION_MAX_INSTANCES detections (padding rows included: the graph runs them too)."""
        c = self.config
        if mode == TRAINING:
            return {"classifier": c.TRAIN_ROIS_PER_IMAGE, "mask": c.ROI_POSITIVE_RATIO * c.TRAIN_ROIS_PER_IMAGE}
        return {"classifier": c.POST_NMS_ROIS_INFERENCE, "mask": c.DETECTION_MAX_INSTANCES}

    def layer_forward(self, cost, mode):
        head = self.head(cost)
        return cost.macs * (self.roi_counts(mode)[head] if head else 1)

    def forward(self, mode, scale=None):
        """Forward MACs per image. scale(cost) -> factor, for what-ifs (detectron2's variant)."""
        return sum(self.layer_forward(c, mode) * (scale(c) if scale else 1) for c in self.costs)

    def part(self, cost):
        """backbone, fpn, rpn or heads: where a layer sits (for the breakdown)."""
        if cost.per_roi:
            return "heads"
        top = cost.path.split("/")[0]
        if top.startswith("fpn_"):
            return "fpn"
        if top.startswith("rpn"):
            return "rpn"
        return "backbone"

    def trainable(self, cost, layers):
        """Does `layers=` ('heads', '4+', 'all', a regex) train this layer? MaskRCNN.set_trainable's
        rule: the layer's own name (the wrapper's; inner names inside nested models) fully matches."""
        from mrcnn.model import LAYER_REGEX

        return re.fullmatch(LAYER_REGEX.get(layers, layers), cost.name) is not None

    def step(self, layers, images=None, scale=None):
        """MACs of one training step with `layers` trainable: trainable layers forward + backward
        (3x), frozen ones forward only (1x: they lie upstream of every trainable layer)."""
        images = self.config.BATCH_SIZE if images is None else images
        total = 0.0
        for cost in self.costs:
            factor = 3 if self.trainable(cost, layers) else 1
            total += factor * self.layer_forward(cost, TRAINING) * (scale(cost) if scale else 1)
        return images * total

    def breakdown(self, mode):
        parts = {}
        for cost in self.costs:
            parts[self.part(cost)] = parts.get(self.part(cost), 0) + self.layer_forward(cost, mode)
        return parts


def network_cost(config):
    """Build the training network for `config` (nothing runs) and count it."""
    from mrcnn.model import build_network

    return NetworkCost(config, layer_costs(build_network(TRAINING, config)))


def profile_config(profile, name="model1"):
    """The Config notebook 04 trains model-1 with, for `profile` (13 classes, or the profile's own)."""
    from helpers.training import make_config

    classes = list(profile.model1_classes) or [f"class{i}" for i in range(MODEL1_CLASSES)]
    return make_config(profile, name, classes)


# -- rates and overhead -------------------------------------------------------------------------

PRECISIONS = ("fp32", "mixed")


def anchor_rates(anchor_forward_macs, images_per_second, training=True):
    """MACs per second an anchor network sustained: its MACs per image (3x forward when it was a
    training run) x the images per second measured, for each precision."""
    per_image = (3 if training else 1) * anchor_forward_macs
    return {p: per_image * images_per_second[p] for p in PRECISIONS}


def overhead_factor(reference_rate, maskrcnn_step_macs_per_image, maskrcnn_images_per_second):
    """How much longer a Mask R-CNN step takes than its MACs at a plain ResNet's training rate:
    (reference MACs per second) / (Mask R-CNN's MACs per second), both measured on the same GPU."""
    return reference_rate / (maskrcnn_step_macs_per_image * maskrcnn_images_per_second)


def seconds(macs, precision, rates, overhead):
    """Seconds for `macs` of convolution work at `precision`. The work FLOPs miss (overhead - 1
    times the float32 convolution time) is taken not to speed up with float16."""
    return macs / rates[precision] + max(overhead - 1.0, 0.0) * macs / rates["fp32"]


def steps_in_budget(budget_seconds, stages):
    """Whole training steps that fit in `budget_seconds`, stages run in order.

    stages: [(planned_steps, seconds_per_step)]. Returns (total steps, [steps of each stage]);
    a stage the budget ends in is cut, later stages get nothing."""
    done, left = [], float(budget_seconds)
    for planned, per_step in stages:
        steps = min(int(planned), int(math.floor(left / per_step + 1e-9)))
        done.append(steps)
        left -= steps * per_step
        if steps < planned:
            done.extend(0 for _ in stages[len(done):])
            break
    return sum(done), done


@dataclass
class Reference:
    """Everything the estimate needs besides the profiles: anchor MACs, rates, overhead factors."""
    resnet50_gmacs: float
    wide_resnet_gmacs: float
    rates: dict             # scenario -> precision -> MAC/s
    overhead: dict          # scenario -> factor
    matterport_step_gmacs: float
    detectron2_step_gmacs: float
    v100_resnet50_rate: float

    SCENARIOS = ("central", "optimistic")


def detectron2_scale(config, image_hw=(800, 1088), rpn_ratio=0.5):
    """What-if scale from Matterport's network to detectron2's: detectron2's RPN conv has 256
    channels where Matterport's has 512 (half the RPN MACs), and it trains on COCO images resized
    to 800 px on the short side (a 640x480 photo: 800x1067, padded to 800x1088) where Matterport
    pads to a 1024 px square: per-image layers scale with the pixel count."""
    pixels = image_hw[0] * image_hw[1] / float(config.IMAGE_SHAPE[0] * config.IMAGE_SHAPE[1])

    def scale(cost):
        factor = 1.0 if cost.per_roi else pixels
        return factor * (rpn_ratio if cost.path.startswith("rpn_model/") else 1.0)
    return scale


def maskrcnn_reference_config():
    """Matterport's COCO configuration in detectron2's benchmark (MASK_RCNN_V100)."""
    from mrcnn.config import Config

    values = dict(MASK_RCNN_V100["settings"], NAME="matterport_coco", IMAGES_PER_GPU=2, GPU_COUNT=1)
    return type("MatterportCocoConfig", (Config,), values)()


def reference():
    """Count the anchors and the V100 Mask R-CNN, derive the rates and overhead factors."""
    resnet50 = total_macs(layer_costs(resnet50_v15()))
    wide = total_macs(layer_costs(wide_resnet()))
    rates = {
        "central": anchor_rates(resnet50, RESNET50_T4_INFERENCE["images_per_second"], training=False),
        "optimistic": anchor_rates(wide, TRAINING_ANCHOR["images_per_second"], training=True),
    }
    v100_rate = 3 * resnet50 * RESNET50_V100["training_fp32"]
    matterport = network_cost(maskrcnn_reference_config())
    layers = MASK_RCNN_V100["layers"]
    matterport_step = matterport.step(layers, images=1)
    positives = MASK_RCNN_V100["detectron2_positive_ratio"] / matterport.config.ROI_POSITIVE_RATIO
    to_detectron2 = detectron2_scale(matterport.config)

    def scale(cost):
        return to_detectron2(cost) * (positives if matterport.head(cost) == "mask" else 1.0)
    detectron2_step = matterport.step(layers, images=1, scale=scale)
    per_gpu = {k: v / MASK_RCNN_V100["gpus"] for k, v in MASK_RCNN_V100["images_per_second"].items()}
    overhead = {
        "central": overhead_factor(v100_rate, matterport_step, per_gpu["matterport"]),
        "optimistic": overhead_factor(v100_rate, detectron2_step, per_gpu["detectron2"]),
    }
    return Reference(resnet50 / 1e9, wide / 1e9, rates, overhead, matterport_step / 1e9,
                     detectron2_step / 1e9, v100_rate)


# -- per profile ----------------------------------------------------------------------------------

def planned_stages(profile):
    """[(layers, planned steps)] of a profile's training (helpers.training.training_stages)."""
    from helpers.training import training_stages

    stages, start = [], 0
    for layers, until, _ in training_stages(profile):
        stages.append((layers, (until - start) * profile.steps_per_epoch))
        start = until
    return stages


@dataclass
class Estimate:
    """One profile's figures, for one scenario: every time in seconds."""
    profile: object
    network: NetworkCost
    reference: Reference
    scenario: str = "central"

    @property
    def precision(self):
        return "mixed" if self.profile.mixed_precision else "fp32"

    def rates(self):
        return self.reference.rates[self.scenario]

    def overhead(self):
        return self.reference.overhead[self.scenario]

    def step_seconds(self, layers, precision):
        return seconds(self.network.step(layers), precision, self.rates(), self.overhead())

    def validation_share(self, precision):
        """Seconds of validation per training step: VALIDATION_STEPS forward-only batches an epoch."""
        c = self.network.config
        batch = c.BATCH_SIZE * self.network.forward(TRAINING)
        return c.VALIDATION_STEPS / c.STEPS_PER_EPOCH * seconds(batch, precision, self.rates(), self.overhead())

    def image_seconds(self, precision):
        """Inference seconds per image (batch 1)."""
        return seconds(self.network.forward(INFERENCE), precision, self.rates(), self.overhead())

    def training(self, profile, precision=None):
        """Planned steps, hours they take, and the steps its time budget buys (validation included)."""
        precision = precision or self.precision
        stages = planned_stages(profile)
        val = self.validation_share(precision)
        per_step = [self.step_seconds(layers, precision) + val for layers, _ in stages]
        planned = sum(n for _, n in stages)
        total = sum(n * s for (_, n), s in zip(stages, per_step))
        budget = None if profile.train_minutes is None else profile.train_minutes * 60.0
        in_budget = None
        if budget is not None:
            in_budget = steps_in_budget(budget, [(n, s) for (_, n), s in zip(stages, per_step)])[0]
        return {"stages": stages, "planned": planned, "seconds": total, "budget_minutes": profile.train_minutes,
                "in_budget": in_budget}


def estimates(profile_names=("smoke", "colab", "full"), ref=None):
    """{name: {scenario: Estimate}} for each profile (each network built and counted once)."""
    from helpers.profiles import get_profile

    ref = ref or reference()
    out = {}
    for name in profile_names:
        profile = get_profile(name)
        network = network_cost(profile_config(profile))
        out[name] = {s: Estimate(profile, network, ref, s) for s in Reference.SCENARIOS}
    return ref, out


# -- the table ------------------------------------------------------------------------------------

def _g(macs):
    return f"{macs / 1e9:,.1f}"


def _n(value):
    """Three significant digits, without exponent for the sizes printed here."""
    return f"{value:.3g}" if value >= 0.001 else f"{value:.1e}"


def _s(central, optimistic):
    return f"{_n(central)} ({_n(optimistic)})"


def _duration(seconds_):
    """'40 s', '42 min' or '34.5 h'."""
    if seconds_ < 120:
        return f"{seconds_:.0f} s"
    return f"{seconds_ / 60:.0f} min" if seconds_ < 2 * 3600 else f"{seconds_ / 3600:.1f} h"


def _minutes(central, optimistic):
    return f"{central / 60:.1f} ({optimistic / 60:.1f})"


def profile_rows(by_profile):
    """[(label, [cell per profile])]: the estimate table; cells 'central (optimistic)'."""
    names = list(by_profile)
    rows = []

    def row(label, fn):
        rows.append((label, [fn(by_profile[n]["central"], by_profile[n]["optimistic"]) for n in names]))

    row("backbone", lambda c, o: c.profile.backbone)
    row("image size (px, square)", lambda c, o: str(c.network.config.IMAGE_SHAPE[0]))
    row("images per step", lambda c, o: str(c.network.config.BATCH_SIZE))
    row("classes (model-1, with BG)", lambda c, o: str(c.network.config.NUM_CLASSES))
    row("forward GMACs/image, training", lambda c, o: _g(c.network.forward(TRAINING)))
    row("forward GMACs/image, inference", lambda c, o: _g(c.network.forward(INFERENCE)))
    row("  of which backbone / FPN / RPN / heads (inference)",
        lambda c, o: " / ".join(_g(c.network.breakdown(INFERENCE).get(k, 0))
                                for k in ("backbone", "fpn", "rpn", "heads")))
    for layers in ("heads", "4+", "all"):
        row(f"step GMACs, layers='{layers}'", lambda c, o, layers=layers: _g(c.network.step(layers)))
    for precision in PRECISIONS:
        for layers in ("heads", "4+", "all"):
            row(f"s/step {precision}, layers='{layers}'",
                lambda c, o, p=precision, layers=layers: _s(c.step_seconds(layers, p), o.step_seconds(layers, p)))
    row("training precision (profile)", lambda c, o: c.precision)
    for model in ("model-1", "model-2"):
        def plan(est, model=model):
            return est.profile if model == "model-1" else est.profile.for_model2()
        row(f"{model}: planned stages (steps)",
            lambda c, o, plan=plan: ", ".join(f"{layers} {n}" for layers, n in planned_stages(plan(c))))
        row(f"{model}: planned steps take",
            lambda c, o, plan=plan: f"{_duration(c.training(plan(c))['seconds'])} "
                                    f"({_duration(o.training(plan(o))['seconds'])})")

        def session(c, o, plan=plan):
            hours = [e.training(plan(e))["seconds"] / 3600 for e in (c, o)]
            yes_no = ["yes" if h <= COLAB_SESSION_HOURS else "no" for h in hours]
            return f"{yes_no[0]} ({yes_no[1]})"
        row(f"{model}: fits one {COLAB_SESSION_HOURS} h Colab session", session)
        row(f"{model}: time budget (min)",
            lambda c, o, plan=plan: "none" if plan(c).train_minutes is None else f"{plan(c).train_minutes:g}")

        def in_budget(c, o, plan=plan):
            tc, to = c.training(plan(c)), o.training(plan(o))
            if tc["in_budget"] is None:
                return "-"
            return f"{tc['in_budget']:,} ({to['in_budget']:,}) of {tc['planned']:,}"
        row(f"{model}: steps in the budget", in_budget)
    for precision in PRECISIONS:
        row(f"inference s/image {precision}",
            lambda c, o, p=precision: _s(c.image_seconds(p), o.image_seconds(p)))

    def val(c, o):
        n = c.profile.val_images
        p = c.precision
        return "-" if not n else f"{n} images: " + _minutes(n * c.image_seconds(p), n * o.image_seconds(p))
    row("evaluate val subset (min, profile precision)", val)

    def autolabel(c, o):
        n = c.profile.custom_per_class * MODEL1_CLASSES
        p = c.precision
        return "-" if not n else f"{n} photos: " + _minutes(n * c.image_seconds(p), n * o.image_seconds(p))
    row("auto-label custom set (min, profile precision)", autolabel)
    return names, rows


def training_to_inference_rate():
    """V100 ResNet-50 (same README): training MACs per second / inference MACs per second, FP32.
    Near 1 means a GPU trains at about the MACs per second it infers at."""
    return 3 * RESNET50_V100["training_fp32"] / RESNET50_V100["inference_fp32"]


def reference_rows(ref):
    """[(label, central, optimistic)]: the inputs the estimate rests on."""
    t4 = RESNET50_T4_INFERENCE["images_per_second"]
    wrn = TRAINING_ANCHOR["images_per_second"]
    return [
        ("anchor network", f"ResNet-50 v1.5, {ref.resnet50_gmacs:.2f} GMACs/image",
         f"Wide-ResNet-28-10, {ref.wide_resnet_gmacs:.2f} GMACs/image"),
        ("T4 measurement", f"inference {t4['fp32']:.0f} / {t4['mixed']:.0f} img/s (fp32 / mixed)",
         f"training {wrn['fp32']:.0f} / {wrn['mixed']:.0f} img/s (fp32 / mixed)"),
        ("T4 rate, TMAC/s fp32", f"{ref.rates['central']['fp32'] / 1e12:.2f}",
         f"{ref.rates['optimistic']['fp32'] / 1e12:.2f}"),
        ("T4 rate, TMAC/s mixed", f"{ref.rates['central']['mixed'] / 1e12:.2f}",
         f"{ref.rates['optimistic']['mixed'] / 1e12:.2f}"),
        ("V100 Mask R-CNN (R-50-FPN) training, img/s per GPU",
         f"Matterport {MASK_RCNN_V100['images_per_second']['matterport'] / MASK_RCNN_V100['gpus']:.2f}",
         f"detectron2 {MASK_RCNN_V100['images_per_second']['detectron2'] / MASK_RCNN_V100['gpus']:.2f}"),
        ("its training GMACs per image (counted)", f"{ref.matterport_step_gmacs:,.0f}",
         f"{ref.detectron2_step_gmacs:,.0f}"),
        ("V100 ResNet-50 training rate, TMAC/s fp32", f"{ref.v100_resnet50_rate / 1e12:.2f}",
         f"{ref.v100_resnet50_rate / 1e12:.2f}"),
        ("check: V100 ResNet-50 training / inference MAC/s", f"{training_to_inference_rate():.2f}", ""),
        ("overhead factor (used: at least 1)", f"{ref.overhead['central']:.2f}",
         f"{ref.overhead['optimistic']:.2f}"),
    ]


def markdown_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def text_table(header, rows):
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def render(ref, by_profile, markdown=False):
    table = markdown_table if markdown else text_table
    names, rows = profile_rows(by_profile)
    parts = [
        "Inputs (central | optimistic):" if not markdown else "**Inputs**\n",
        table(["", "central", "optimistic"], reference_rows(ref)),
        "",
        "Estimates, 'central (optimistic)':" if not markdown else "**Estimates**: each cell is central (optimistic)\n",
        table(["", *names], [(label, *cells) for label, cells in rows]),
    ]
    return "\n".join(parts)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown (docs/benchmarks.md)")
    parser.add_argument("--profiles", nargs="+", default=["smoke", "colab", "full"],
                        choices=["smoke", "colab", "full"], help="profiles to estimate")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    print("Building and counting the networks (nothing is trained) ...", file=sys.stderr)
    ref, by_profile = estimates(args.profiles)
    print(render(ref, by_profile, markdown=args.markdown))
    print("\nEstimates on paper, not measurements (see docs/benchmarks.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
