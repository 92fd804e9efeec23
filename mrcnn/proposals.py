"""ProposalLayer: turn the RPN's anchor scores and deltas into a fixed number of region proposals.

Per image: rank anchors by foreground score, keep the best PRE_NMS_LIMIT, move them by their
predicted deltas (times RPN_BBOX_STD_DEV, the scale the targets were divided by), clip them to
the image ([0, 0, 1, 1] in normalised coordinates), run non-maximum suppression and zero-pad
the survivors to `proposal_count` rows. The layer has no weights; the Matterport name and
interface are kept so model code reads the same.

With `per_level=True` (Config.PROPOSAL_SELECTION = "torchvision", as torchvision's RPN) the
selection is made level by level instead: the best PRE_NMS_LIMIT anchors of each pyramid level,
suppression only among boxes of the same level, then the best `proposal_count` survivors of all
levels. A fourth input, the number of anchors on each level (AnchorLevelSizes), says where the
levels start in the joined anchor axis.
"""
import keras
import numpy as np
import tensorflow as tf

from mrcnn.box_graph import apply_box_deltas_graph, clip_boxes_graph

UNIT_WINDOW = (0.0, 0.0, 1.0, 1.0)
# Clipped boxes lie in [0, 1]; moving level l's boxes by l * LEVEL_OFFSET on both axes puts the
# levels far apart, so one NMS call suppresses only within a level (their IoU across levels is 0).
LEVEL_OFFSET = 2.0


def anchor_level_sizes(feature_maps, anchors_per_location, anchor_stride):
    """The number of anchors on each feature map, (L,) int32: ceil(H / s) * ceil(W / s) * k.

    The same count the RPN head produces on that map (rpn_graph's strided "same" convolution)
    and utils.generate_pyramid_anchors places there.
    """
    sizes = []
    for feature_map in feature_maps:
        shape = tf.shape(feature_map)
        rows = (shape[1] + anchor_stride - 1) // anchor_stride
        columns = (shape[2] + anchor_stride - 1) // anchor_stride
        sizes.append(rows * columns * anchors_per_location)
    return tf.stack(sizes)


class AnchorLevelSizes(keras.layers.Layer):
    """call(feature_maps P2..P6) -> (L,) int32, the anchors per level (see anchor_level_sizes)."""

    def __init__(self, anchors_per_location, anchor_stride, **kwargs):
        super().__init__(**kwargs)
        self.anchors_per_location = int(anchors_per_location)
        self.anchor_stride = int(anchor_stride)

    def get_config(self):
        base = super().get_config()
        base.update(anchors_per_location=self.anchors_per_location, anchor_stride=self.anchor_stride)
        return base

    def call(self, feature_maps):
        return anchor_level_sizes(feature_maps, self.anchors_per_location, self.anchor_stride)

    def compute_output_spec(self, feature_maps):
        return keras.KerasTensor((len(feature_maps),), dtype="int32")


class ProposalLayer(keras.layers.Layer):
    """Inputs [rpn_probs (B, A, 2), rpn_bbox (B, A, 4), anchors (B, A, 4) normalised], and with
    per_level a fourth, the anchors on each level (L,) int32 (their sum is A).

    Output: proposals (B, proposal_count, 4) normalised [y1, x1, y2, x2], best first,
    zero-padded rows at the end when fewer boxes survive.
    """

    def __init__(self, proposal_count, nms_threshold, config=None, pre_nms_limit=None,
                 rpn_bbox_std_dev=None, per_level=None, **kwargs):
        # Box decoding, clipping and NMS in float32 whatever the global dtype policy: in float16
        # a normalised coordinate near 1 moves in steps of 1/2048 (a quarter pixel at 512 px,
        # more after exp() of a delta), and near-equal scores would tie.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if config is None and (pre_nms_limit is None or rpn_bbox_std_dev is None):
            raise ValueError("ProposalLayer needs a config (or pre_nms_limit and rpn_bbox_std_dev)")
        # Data-dependent shapes (NMS, sampling) cannot be XLA-compiled: keep Keras' jit off.
        self.supports_jit = False
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(config.PRE_NMS_LIMIT if pre_nms_limit is None else pre_nms_limit)
        std = config.RPN_BBOX_STD_DEV if rpn_bbox_std_dev is None else rpn_bbox_std_dev
        self.rpn_bbox_std_dev = [float(v) for v in np.asarray(std).ravel()]
        if per_level is None:
            per_level = config is not None and config.PROPOSAL_SELECTION == "torchvision"
        self.per_level = bool(per_level)

    def get_config(self):
        base = super().get_config()
        base.update(proposal_count=self.proposal_count, nms_threshold=self.nms_threshold,
                    pre_nms_limit=self.pre_nms_limit, rpn_bbox_std_dev=self.rpn_bbox_std_dev,
                    per_level=self.per_level)
        return base

    def call(self, inputs):
        if self.per_level:
            if len(inputs) != 4:
                raise ValueError("ProposalLayer(per_level=True) needs 4 inputs: rpn_probs, rpn_bbox, "
                                 "anchors and the anchors per level (AnchorLevelSizes)")
            rpn_probs, rpn_bbox, anchors, level_sizes = inputs
        else:
            rpn_probs, rpn_bbox, anchors = inputs
        scores = tf.cast(rpn_probs[..., 1], tf.float32)                       # (B, A)
        deltas = tf.cast(rpn_bbox, tf.float32) * tf.constant(self.rpn_bbox_std_dev, tf.float32)
        anchors = tf.cast(anchors, tf.float32)

        if self.per_level:
            scores, order, levels = self._best_of_each_level(scores, level_sizes)
        else:
            top_count = tf.minimum(self.pre_nms_limit, tf.shape(anchors)[1])
            scores, order = tf.math.top_k(scores, k=top_count, sorted=True)   # (B, K)
            levels = None
        deltas = tf.gather(deltas, order, batch_dims=1)
        anchors = tf.gather(anchors, order, batch_dims=1)

        boxes = apply_box_deltas_graph(anchors, deltas)
        boxes = clip_boxes_graph(boxes, tf.constant(UNIT_WINDOW, tf.float32))
        apart = boxes if levels is None else boxes + LEVEL_OFFSET * tf.cast(levels, tf.float32)[..., None]

        def suppress_one_image(args):
            image_boxes, image_apart, image_scores = args
            # NMS returns the kept boxes best first, so across levels the best survivors win.
            keep = tf.image.non_max_suppression(image_apart, image_scores, self.proposal_count,
                                                self.nms_threshold)
            kept = tf.gather(image_boxes, keep)
            padding = self.proposal_count - tf.shape(kept)[0]
            return tf.pad(kept, [[0, padding], [0, 0]])

        proposals = tf.map_fn(suppress_one_image, (boxes, apart, scores),
                              fn_output_signature=tf.TensorSpec((self.proposal_count, 4), tf.float32))
        # Proposals are fixed inputs to the second stage (approximate joint training, as in the
        # paper and Matterport): no gradient flows back through their coordinates.
        return tf.stop_gradient(tf.ensure_shape(proposals, (None, self.proposal_count, 4)))

    def _best_of_each_level(self, scores, level_sizes):
        """The best pre_nms_limit anchors of each level: (scores, anchor indices, level) (B, K)."""
        level_count = level_sizes.shape[0]
        if level_count is None:
            raise ValueError("ProposalLayer(per_level=True): the number of levels must be known")
        level_sizes = tf.cast(level_sizes, tf.int32)
        starts = tf.cumsum(level_sizes, exclusive=True)
        tf.debugging.assert_equal(tf.reduce_sum(level_sizes), tf.shape(scores)[1],
                                  message="ProposalLayer: anchors per level do not add up to the anchors")
        picked_scores, picked_order, picked_levels = [], [], []
        for level in range(level_count):
            level_scores = scores[:, starts[level]:starts[level] + level_sizes[level]]
            count = tf.minimum(self.pre_nms_limit, level_sizes[level])
            best, order = tf.math.top_k(level_scores, k=count, sorted=True)
            picked_scores.append(best)
            picked_order.append(order + starts[level])
            picked_levels.append(tf.fill(tf.shape(order), level))
        return (tf.concat(picked_scores, axis=1), tf.concat(picked_order, axis=1),
                tf.concat(picked_levels, axis=1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.proposal_count, 4)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs[0].shape[0], self.proposal_count, 4), dtype="float32")
