"""The Region Proposal Network head: per-anchor object scores and box deltas on each pyramid level.

One small network (a shared 3x3 conv, then two 1x1 convs) slides over every feature map; its
weights are shared by all levels P2..P6, so it is built once as the Keras model "rpn_model"
(Matterport's name, so their weight files load) and applied to each level. Outputs are
flattened so anchor k of the result is anchor k of utils.generate_pyramid_anchors: level by
level, then feature row, column, and anchor within the cell.

Training targets for this head are built elsewhere (mrcnn/data.py).
"""
import keras
from keras import layers


def _paper_init():
    """Faster R-CNN (Ren et al. 2015, section 3.1.3): new layers start from N(0, 0.01^2), biases 0.

    With Keras' default (Glorot uniform) the untrained box branch predicts sizeable random
    deltas, so from random weights the RPN's loss starts higher and falls more slowly
    (measurements: docs/benchmarks.md).
    """
    return keras.initializers.RandomNormal(stddev=0.01)


def rpn_graph(feature_map, anchors_per_location, anchor_stride):
    """RPN head on one feature map (B, H, W, depth).

    Returns [rpn_class_logits (B, A, 2), rpn_probs (B, A, 2), rpn_bbox (B, A, 4)] with
    A = ceil(H / anchor_stride) * ceil(W / anchor_stride) * anchors_per_location. Class 0 is
    background, 1 foreground; rpn_bbox holds [dy, dx, log(dh), log(dw)] (to be multiplied by
    RPN_BBOX_STD_DEV before applying).
    """
    shared = layers.Conv2D(512, (3, 3), padding="same", activation="relu", strides=anchor_stride,
                           kernel_initializer=_paper_init(), name="rpn_conv_shared")(feature_map)

    # Channels of a cell are [anchor 0 (bg, fg), anchor 1 (bg, fg), ...]; a row-major reshape
    # therefore orders the result by row, column, then anchor within the cell.
    class_raw = layers.Conv2D(2 * anchors_per_location, (1, 1), padding="valid", activation="linear",
                              kernel_initializer=_paper_init(), name="rpn_class_raw")(shared)
    rpn_class_logits = layers.Reshape((-1, 2), name="rpn_class_logits_flat")(class_raw)
    # float32 whatever the global dtype policy: these scores rank the anchors for the proposals.
    rpn_probs = layers.Activation("softmax", name="rpn_class_probs", dtype="float32")(rpn_class_logits)

    bbox_raw = layers.Conv2D(4 * anchors_per_location, (1, 1), padding="valid", activation="linear",
                             kernel_initializer=_paper_init(), name="rpn_bbox_pred")(shared)
    rpn_bbox = layers.Reshape((-1, 4), name="rpn_bbox_flat")(bbox_raw)
    return [rpn_class_logits, rpn_probs, rpn_bbox]


def build_rpn_model(anchor_stride, anchors_per_location, depth):
    """The shared RPN as a Keras model named "rpn_model".

    Input "input_rpn_feature_map" (B, H, W, depth) of any H, W; outputs as rpn_graph.
    """
    # In the global policy's compute dtype (float16 under mixed precision), so the FPN maps are not
    # cast to float32 and back on their way in.
    feature_map = keras.Input(shape=(None, None, depth), name="input_rpn_feature_map",
                              dtype=keras.config.dtype_policy().compute_dtype)
    outputs = rpn_graph(feature_map, anchors_per_location, anchor_stride)
    return keras.Model(feature_map, outputs, name="rpn_model")


def apply_rpn(rpn_model, feature_maps):
    """Run the shared `rpn_model` on every feature map and join the levels along the anchor axis.

    Returns (rpn_class_logits (B, A, 2), rpn_class (B, A, 2), rpn_bbox (B, A, 4)) with the
    layer names "rpn_class_logits", "rpn_class", "rpn_bbox"; A sums the anchors of all levels,
    in the order of `feature_maps` (the order of utils.generate_pyramid_anchors).
    """
    per_level = [rpn_model(feature_map) for feature_map in feature_maps]
    names = ("rpn_class_logits", "rpn_class", "rpn_bbox")
    joined = []
    for index, name in enumerate(names):
        outputs = [level[index] for level in per_level]
        # A float32 output stays float32 (the probabilities, under mixed precision); the others
        # follow the global dtype policy.
        dtype = "float32" if outputs[0].dtype == "float32" else None
        if len(outputs) == 1:
            # Concatenate needs two inputs; one level still gets its named layer.
            joined.append(layers.Identity(name=name, dtype=dtype)(outputs[0]))
        else:
            joined.append(layers.Concatenate(axis=1, name=name, dtype=dtype)(outputs))
    return tuple(joined)
