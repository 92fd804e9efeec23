"""The feature extractor: a ResNet-50/101 body and a Feature Pyramid Network on top of it.

ResNet (He et al. 2016) gives feature maps C1..C5 at strides 4, 4, 8, 16, 32; the FPN
(Lin et al. 2017) turns C2..C5 into P2..P6, all `pyramid_size` channels deep, at strides
4, 8, 16, 32, 64. Layer names follow the original Keras ResNet50 and Matterport's Mask R-CNN
("conv1", "res2a_branch2a", "bn2a_branch2a", "fpn_p2", ...) because weight files are matched
by layer name: ImageNet and COCO weights saved for those models load into these graphs.
"""
import keras
from keras import layers

from mrcnn.config import CONV_INITS


RESNET50_IMAGENET_URL = ("https://github.com/fchollet/deep-learning-models/releases/download/v0.2/"
                         "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
RESNET50_IMAGENET_MD5 = "a268eb855778b3df3c7506639542a6af"
RESNET50_IMAGENET_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"

# Number of blocks in stages 2, 3, 4, 5: bottleneck blocks (50, 101) or basic blocks (18, 34).
STAGE_BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3),
                "resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}
# The light ResNets (He et al. 2016, table 1) use two 3x3 convs per block: for CPUs and
# training from scratch (no Matterport weights exist for them).
BASIC_BLOCK_ARCHITECTURES = ("resnet18", "resnet34")
BASIC_STAGE_FILTERS = (64, 128, 256, 512)
# (1x1 reduce, 3x3, 1x1 expand) channel counts of the bottleneck blocks in stages 2..5.
STAGE_FILTERS = ((64, 64, 256), (128, 128, 512), (256, 256, 1024), (512, 512, 2048))


# One BatchNorm for the whole engine (the heads use it too): with train_bn=False it keeps
# inference statistics even when the model runs with training=True (Keras 3 would otherwise
# override the call-time training=False), which is Matterport's TRAIN_BN = False.
@keras.saving.register_keras_serializable(package="mrcnn")
class BatchNorm(keras.layers.BatchNormalization):
    """BatchNormalization that can be frozen to inference statistics while gamma/beta still train.

    Passing `training=False` when building a functional model is not enough in Keras 3: the
    model's own training flag (True inside `fit`) overrides it, so frozen layers would still
    update their moving averages. With `train_bn=False` this layer ignores the flag instead.
    """

    def __init__(self, train_bn=None, **kwargs):
        super().__init__(**kwargs)
        self.train_bn = train_bn

    def call(self, inputs, training=None, mask=None):
        if self.train_bn is False:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = super().get_config()
        config["train_bn"] = self.train_bn
        return config


def conv_initializer(conv_init):
    """Kernel initializer of the ResNet's and the mask head's convolutions, by name.

    "glorot": Keras' default (uniform, variance 2 / (fan_in + fan_out)), what Matterport's
    layers start from. "he": normal with variance 2 / fan_out (He et al. 2015), how the ResNet
    paper and torchvision start their convolutions. Only matters when training from scratch.
    Call it once per layer: an unseeded Keras initializer fixes its seed when made, so one
    shared object would give every kernel of the same shape the same values.
    """
    if conv_init == "glorot":
        return "glorot_uniform"
    if conv_init == "he":
        return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")
    raise ValueError(f"conv_initializer: conv_init must be one of {CONV_INITS}, not {conv_init!r}")


def block_letter(index):
    """Block names within a stage: "a", "b", ... (resnet101's stage 4 runs to "w")."""
    return chr(ord("a") + index)


def _bottleneck(x, filters, stage, block, stride, projection, train_bn, conv_init="glorot"):
    """One bottleneck block: 1x1, 3x3, 1x1, plus the shortcut, then ReLU.

    The stride is on the first 1x1 conv, as in MSRA's original models, Keras' ResNet50 and
    Matterport's (torchvision puts it on the 3x3 conv: the same weight shapes, but weights
    trained one way are wrong the other way, so the ImageNet and COCO files need this one).
    projection=True gives the shortcut its own strided 1x1 conv and batch norm (the "conv
    block" starting each stage); otherwise the input is added unchanged ("identity block").
    """
    reduce_filters, middle_filters, expand_filters = filters
    conv_name = f"res{stage}{block}_branch"
    bn_name = f"bn{stage}{block}_branch"

    y = layers.Conv2D(reduce_filters, (1, 1), strides=stride, use_bias=True,
                      kernel_initializer=conv_initializer(conv_init), name=conv_name + "2a")(x)
    y = BatchNorm(train_bn, name=bn_name + "2a")(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(middle_filters, (3, 3), padding="same",
                      use_bias=True, kernel_initializer=conv_initializer(conv_init), name=conv_name + "2b")(y)
    y = BatchNorm(train_bn, name=bn_name + "2b")(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(expand_filters, (1, 1), use_bias=True,
                      kernel_initializer=conv_initializer(conv_init), name=conv_name + "2c")(y)
    y = BatchNorm(train_bn, name=bn_name + "2c")(y)

    shortcut = x
    if projection:
        shortcut = layers.Conv2D(expand_filters, (1, 1), strides=stride, use_bias=True,
                                 kernel_initializer=conv_initializer(conv_init), name=conv_name + "1")(x)
        shortcut = BatchNorm(train_bn, name=bn_name + "1")(shortcut)
    y = layers.Add()([y, shortcut])
    return layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def _basic_block(x, filters, stage, block, stride, projection, train_bn, conv_init="glorot"):
    """One basic block: two 3x3 convs (the first carries the stride), plus the shortcut, then ReLU."""
    conv_name = f"res{stage}{block}_branch"
    bn_name = f"bn{stage}{block}_branch"
    y = layers.Conv2D(filters, (3, 3), strides=stride, padding="same", use_bias=True,
                      kernel_initializer=conv_initializer(conv_init), name=conv_name + "2a")(x)
    y = BatchNorm(train_bn, name=bn_name + "2a")(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(filters, (3, 3), padding="same", use_bias=True,
                      kernel_initializer=conv_initializer(conv_init), name=conv_name + "2b")(y)
    y = BatchNorm(train_bn, name=bn_name + "2b")(y)
    shortcut = x
    if projection:
        shortcut = layers.Conv2D(filters, (1, 1), strides=stride, use_bias=True,
                                 kernel_initializer=conv_initializer(conv_init), name=conv_name + "1")(x)
        shortcut = BatchNorm(train_bn, name=bn_name + "1")(shortcut)
    y = layers.Add()([y, shortcut])
    return layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def resnet_graph(input_image, architecture, stage5=True, train_bn=False, conv_init="glorot"):
    """ResNet body on a symbolic image tensor; returns [C1, C2, C3, C4, C5].

    architecture: "resnet50" or "resnet101" (bottleneck blocks, Matterport's), or "resnet18" or
    "resnet34" (basic blocks, light enough for a CPU). stage5=False skips stage 5 (C5 is then None).
    train_bn: False freezes every BatchNorm (inference statistics even while training);
    True or None lets them follow the model's training flag (see BatchNorm above).
    conv_init: "glorot" or "he", how the convolutions' kernels start (see conv_initializer).
    """
    if architecture not in STAGE_BLOCKS:
        raise ValueError(f"resnet_graph: architecture must be one of {sorted(STAGE_BLOCKS)}, got {architecture!r}")
    x = layers.ZeroPadding2D((3, 3))(input_image)
    x = layers.Conv2D(64, (7, 7), strides=(2, 2), use_bias=True, kernel_initializer=conv_initializer(conv_init),
                      name="conv1")(x)
    x = BatchNorm(train_bn, name="bn_conv1")(x)
    x = layers.Activation("relu")(x)
    c1 = x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same")(x)

    outputs = [c1]
    last_stage = 5 if stage5 else 4
    for stage in range(2, last_stage + 1):
        basic = architecture in BASIC_BLOCK_ARCHITECTURES
        for index in range(STAGE_BLOCKS[architecture][stage - 2]):
            first = index == 0
            # Stage 2 follows the max pool and keeps its resolution; later stages halve it.
            stride = (2, 2) if first and stage > 2 else (1, 1)
            if basic:  # stage 2 keeps 64 channels, so only later stages need a projection
                x = _basic_block(x, BASIC_STAGE_FILTERS[stage - 2], stage, block_letter(index), stride,
                                 projection=first and stage > 2, train_bn=train_bn, conv_init=conv_init)
            else:
                x = _bottleneck(x, STAGE_FILTERS[stage - 2], stage, block_letter(index), stride,
                                projection=first, train_bn=train_bn, conv_init=conv_init)
        outputs.append(x)
    if not stage5:
        outputs.append(None)
    return outputs


def fpn_graph(c2, c3, c4, c5, pyramid_size=256):
    """Feature Pyramid Network: [P2, P3, P4, P5, P6] from ResNet's C2..C5.

    Top-down: each level is its 1x1 lateral projection plus the coarser level upsampled x2,
    then smoothed by a 3x3 conv. P6 subsamples P5 by 2 (only the RPN uses it).
    """
    p5 = layers.Conv2D(pyramid_size, (1, 1), name="fpn_c5p5")(c5)
    p4 = layers.Add(name="fpn_p4add")([
        layers.UpSampling2D(size=(2, 2), name="fpn_p5upsampled")(p5),
        layers.Conv2D(pyramid_size, (1, 1), name="fpn_c4p4")(c4)])
    p3 = layers.Add(name="fpn_p3add")([
        layers.UpSampling2D(size=(2, 2), name="fpn_p4upsampled")(p4),
        layers.Conv2D(pyramid_size, (1, 1), name="fpn_c3p3")(c3)])
    p2 = layers.Add(name="fpn_p2add")([
        layers.UpSampling2D(size=(2, 2), name="fpn_p3upsampled")(p3),
        layers.Conv2D(pyramid_size, (1, 1), name="fpn_c2p2")(c2)])
    p2 = layers.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p2")(p2)
    p3 = layers.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p3")(p3)
    p4 = layers.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p4")(p4)
    p5 = layers.Conv2D(pyramid_size, (3, 3), padding="same", name="fpn_p5")(p5)
    p6 = layers.MaxPooling2D(pool_size=(1, 1), strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]


def build_backbone(input_image, architecture, pyramid_size=256, train_bn=False, conv_init="glorot"):
    """The feature pyramid [P2, P3, P4, P5, P6] for `input_image` (Config.BACKBONE and its neighbours).

    architecture: "resnet50", "resnet101", "resnet18", "resnet34", or a callable with resnet_graph's
    signature `(input_image, stage5=True, train_bn=...) -> [C1, C2, C3, C4, C5]` (C1 may be None).
    The FPN on top has `pyramid_size` channels; BatchNorm follows `train_bn`; the ResNet's kernels
    start as `conv_init` says.
    """
    if callable(architecture):
        stages = architecture(input_image, stage5=True, train_bn=train_bn)
        name = getattr(architecture, "__qualname__", repr(architecture))
        if not isinstance(stages, (list, tuple)) or len(stages) != 5 or any(s is None for s in stages[1:]):
            raise ValueError(f"BACKBONE ({name}) must return [C1, C2, C3, C4, C5] "
                             "(five feature maps, C1 may be None)")
    else:
        stages = resnet_graph(input_image, architecture, stage5=True, train_bn=train_bn, conv_init=conv_init)
    _, c2, c3, c4, c5 = stages
    return fpn_graph(c2, c3, c4, c5, pyramid_size=pyramid_size)


def get_imagenet_weights(cache_dir=None):
    """Path of the ImageNet ResNet-50 weights (no top), downloaded once and md5-checked.

    Uses keras.utils.get_file: the file goes to `cache_dir`/models (default ~/.keras/models)
    and is not fetched again while its checksum matches. Load it with
    weights.load_weights(model, path, by_name=True): only the ResNet layers match.
    """
    return keras.utils.get_file(
        RESNET50_IMAGENET_FILE, RESNET50_IMAGENET_URL, cache_subdir="models",
        file_hash=RESNET50_IMAGENET_MD5, hash_algorithm="md5",
        cache_dir=None if cache_dir is None else str(cache_dir))
