"""The second-stage heads of Mask R-CNN: box classifier/regressor and mask predictor.

Both heads read a fixed-size patch per region of interest from the FPN maps (PyramidROIAlign)
and run small per-ROI networks (He et al. 2017, Fig. 4, right: the FPN variant). Layer names,
weight shapes and tensor layouts are Matterport's so their `.h5` weight files load by name.

Per-ROI layers are wrapped in `ROITimeDistributed`, a keras.layers.TimeDistributed that folds
the ROI axis into the batch axis and calls the wrapped layer once. Keras 3's own
TimeDistributed calls the layer once per ROI when the ROI count is static (hundreds of
calls) and then batch norm would see one ROI at a time; folding is what Keras 2 did.
The weights still belong to the wrapper layer, which carries the Matterport name.

`train_bn`: False freezes batch norm (inference statistics, moving averages never updated,
gamma/beta still trainable), True or None lets it follow the training flag (batch statistics
in `fit`, moving averages at inference). See `BatchNorm` for why this is a layer setting.
Mixed precision (Config.MIXED_PRECISION): the heads compute in the global dtype policy, except
the class softmax and the mask head's last convolution (its logits and sigmoid), which are float32
as Keras' mixed-precision guide advises for a model's outputs: the scores rank detections and feed
the losses. The ROI boxes are never rounded to float16 (PyramidROIAlign, RealROIs).
"""
import keras
import tensorflow as tf

from mrcnn.backbone import BatchNorm, conv_initializer
from mrcnn.roi_align import PackedPyramidROIAlign, PyramidROIAlign


@keras.saving.register_keras_serializable(package="mrcnn")
class ROITimeDistributed(keras.layers.TimeDistributed):
    """TimeDistributed that applies the wrapped layer to all (batch x ROI) rows in one call.

    `real_rois` (B, N) bool, for a wrapped batch norm: only those rows make its batch statistics
    (the zero-padding rows of a training sample would otherwise outnumber the real ones).
    """

    def call(self, inputs, training=None, mask=None, real_rois=None):
        shape = tf.shape(inputs)
        rows = tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0)
        kwargs = {"training": training} if self.layer._call_has_training_arg else {}
        if real_rois is not None:
            flags = tf.reshape(tf.cast(real_rois, tf.bool), [-1] + [1] * (len(inputs.shape) - 3))
            kwargs["mask"] = tf.broadcast_to(flags, rows[:-1])       # one flag per row, all but channels
        outputs = self.layer.call(tf.reshape(inputs, rows), **kwargs)
        out_shape = tf.concat([shape[:2], tf.shape(outputs)[1:]], axis=0)
        return tf.reshape(outputs, out_shape)


@keras.saving.register_keras_serializable(package="mrcnn")
class RealROIs(keras.layers.Layer):
    """Which rows of rois (B, N, 4) are regions and not zero padding: (B, N) bool.

    Reads the boxes in float32 whatever the global dtype policy, so that no tiny real box counts
    as padding because float16 rounded its coordinates to zero.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, rois):
        return tf.reduce_any(tf.not_equal(rois, 0.0), axis=2)

    def compute_output_spec(self, rois):
        return keras.KerasTensor(tuple(rois.shape[:2]), dtype="bool")


@keras.saving.register_keras_serializable(package="mrcnn")
class FullImageConv2D(keras.layers.Conv2D):
    """A 'valid' conv whose kernel covers the whole input: computed as one matrix product.

    Same weights as Conv2D (kernel (kh, kw, C, F), so Matterport's files load), same result,
    but TensorFlow's CPU gradient of a 7x7 conv on 7x7 inputs is much slower than the
    gradient of the equivalent matmul (and a 1x1 conv on 1x1 inputs is slow too).
    """

    def call(self, inputs):
        kh, kw, channels, filters = self.kernel.shape
        flat = tf.reshape(inputs, [-1, kh * kw * channels])
        outputs = tf.matmul(flat, tf.reshape(self.kernel, [kh * kw * channels, filters]))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(tf.reshape(outputs, [-1, 1, 1, filters]))


def _per_roi(layer_class, name, *args, dtype=None, **kwargs):
    """`layer_class(*args, **kwargs)` wrapped for per-ROI use, both named `name` (Matterport's).

    Naming the inner layer too makes weight paths stable ("mrcnn_class_conv1/mrcnn_class_conv1/kernel")
    instead of depending on how many Conv2D layers Keras has numbered before. `dtype` (a dtype
    policy, None: the global one) goes to both: the wrapper casts the inputs and the weights, since
    it calls the inner layer's call() itself.
    """
    return ROITimeDistributed(layer_class(*args, name=name, dtype=dtype, **kwargs), name=name, dtype=dtype)


def _head_norm(x, stem, index, train_bn, real_rois=None):
    """Matterport's batch norm after a head's conv, named `<stem>_bn<index>`; real_rois picks the
    rows its batch statistics come from (no zero-padding rows)."""
    extra = {} if real_rois is None else {"real_rois": real_rois}
    return _per_roi(BatchNorm, f"{stem}_bn{index}", train_bn=train_bn)(x, **extra)


def fpn_classifier_graph(rois, feature_maps, image_meta, pool_size, num_classes, train_bn=True,
                         fc_layers_size=1024, roi_align="normalised_box"):
    """Classify each ROI and regress one box refinement per class.

    rois: (B, N, 4) normalised [y1, x1, y2, x2], zero rows are padding.
    feature_maps: [P2, P3, P4, P5], each (B, H_k, W_k, C).
    image_meta: (B, IMAGE_META_SIZE).
    Returns mrcnn_class_logits (B, N, num_classes), mrcnn_probs (B, N, num_classes) softmax,
    mrcnn_bbox (B, N, num_classes, 4) deltas [dy, dx, log(dh), log(dw)] (still scaled by
    BBOX_STD_DEV, as the targets are). roi_align: where ROIAlign reads, "normalised_box" or
    "pixel_centres" (mrcnn/roi_align.py).
    """
    x = PyramidROIAlign([pool_size, pool_size], roi_align, name="roi_align_classifier")(
        [rois, image_meta] + list(feature_maps))
    # Two "fully connected" 1024 layers, written as a pool_size x pool_size valid conv and a 1x1 conv.
    real_rois = RealROIs(name="real_rois")(rois)     # batch norm's statistics: no padding rows
    x = _per_roi(FullImageConv2D, "mrcnn_class_conv1", fc_layers_size, (pool_size, pool_size),
                 padding="valid")(x)
    x = _head_norm(x, "mrcnn_class", 1, train_bn, real_rois)
    x = keras.layers.Activation("relu")(x)
    x = _per_roi(FullImageConv2D, "mrcnn_class_conv2", fc_layers_size, (1, 1))(x)   # 1x1 on 1x1: a matmul
    x = _head_norm(x, "mrcnn_class", 2, train_bn, real_rois)
    x = keras.layers.Activation("relu")(x)
    shared = keras.layers.Reshape((-1, fc_layers_size), name="pool_squeeze")(x)   # drop the 1x1 axes

    # Fast R-CNN (Girshick 2015, section 2.3): the class and box layers start from N(0, 0.01^2)
    # and N(0, 0.001^2), so untrained scores are near uniform and untrained deltas near zero.
    mrcnn_class_logits = _per_roi(keras.layers.Dense, "mrcnn_class_logits", num_classes,
                                  kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(shared)
    mrcnn_probs = keras.layers.Activation("softmax", name="mrcnn_class", dtype="float32")(mrcnn_class_logits)

    x = _per_roi(keras.layers.Dense, "mrcnn_bbox_fc", num_classes * 4, activation="linear",
                 kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))(shared)
    mrcnn_bbox = keras.layers.Reshape((-1, num_classes, 4), name="mrcnn_bbox")(x)
    return mrcnn_class_logits, mrcnn_probs, mrcnn_bbox


def build_fpn_mask_graph(rois, feature_maps, image_meta, pool_size, num_classes, train_bn=True,
                         roi_image_ids=None, logits=False, conv_init="glorot",
                         roi_align="normalised_box"):
    """Predict a (2*pool_size)^2 soft mask per ROI and class.

    Same inputs as fpn_classifier_graph. Returns (B, N, 2*pool_size, 2*pool_size, num_classes)
    sigmoid probabilities; the mask of class c is channel c.
    With `roi_image_ids` (1, K), rois are instead (1, K, 4), the rows of several images packed
    along one axis (roi_image_ids[0, k] is row k's image), and the result is (1, K, ...): training
    uses it to run the head on the positive ROIs only. With `logits`, the last layer (same name and
    weights) gives the scores before the sigmoid: training computes its loss on those.
    conv_init: "glorot" or "he", how the four 3x3 convolutions and the deconvolution start
    (see backbone.conv_initializer). roi_align: "normalised_box" or "pixel_centres"
    (mrcnn/roi_align.py).
    """
    if roi_image_ids is None:
        x = PyramidROIAlign([pool_size, pool_size], roi_align, name="roi_align_mask")(
            [rois, image_meta] + list(feature_maps))
    else:
        x = PackedPyramidROIAlign([pool_size, pool_size], roi_align, name="roi_align_mask")(
            [rois, roi_image_ids, image_meta] + list(feature_maps))
    for index in range(1, 5):
        x = _per_roi(keras.layers.Conv2D, f"mrcnn_mask_conv{index}", 256, (3, 3), padding="same",
                     kernel_initializer=conv_initializer(conv_init))(x)
        x = _head_norm(x, "mrcnn_mask", index, train_bn)
        x = keras.layers.Activation("relu")(x)
    x = _per_roi(keras.layers.Conv2DTranspose, "mrcnn_mask_deconv", 256, (2, 2), strides=2,
                 activation="relu", kernel_initializer=conv_initializer(conv_init))(x)
    # float32 whatever the global policy: the mask loss's logits and the detected masks' sigmoid.
    return _per_roi(keras.layers.Conv2D, "mrcnn_mask", num_classes, (1, 1), strides=1,
                    activation=None if logits else "sigmoid", dtype="float32")(x)
