"""ProposalLayer: turn the RPN's anchor scores and deltas into a fixed number of region proposals.

Per image: rank anchors by foreground score, keep the best PRE_NMS_LIMIT, move them by their
predicted deltas (times RPN_BBOX_STD_DEV, the scale the targets were divided by), clip them to
the image ([0, 0, 1, 1] in normalised coordinates), run non-maximum suppression and zero-pad
the survivors to `proposal_count` rows. The layer has no weights; the Matterport name and
interface are kept so model code reads the same.
"""
import keras
import numpy as np
import tensorflow as tf

from mrcnn.box_graph import apply_box_deltas_graph, clip_boxes_graph

UNIT_WINDOW = (0.0, 0.0, 1.0, 1.0)


class ProposalLayer(keras.layers.Layer):
    """Inputs [rpn_probs (B, A, 2), rpn_bbox (B, A, 4), anchors (B, A, 4) normalised].

    Output: proposals (B, proposal_count, 4) normalised [y1, x1, y2, x2], best first,
    zero-padded rows at the end when fewer boxes survive.
    """

    def __init__(self, proposal_count, nms_threshold, pre_nms_limit, rpn_bbox_std_dev, **kwargs):
        # Box decoding, clipping and NMS in float32 whatever the global dtype policy: in float16
        # a normalised coordinate near 1 moves in steps of 1/2048 (a quarter pixel at 512 px,
        # more after exp() of a delta), and near-equal scores would tie.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        # Data-dependent shapes (NMS, sampling) cannot be XLA-compiled: keep Keras' jit off.
        self.supports_jit = False
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(pre_nms_limit)
        self.rpn_bbox_std_dev = [float(v) for v in np.asarray(rpn_bbox_std_dev).ravel()]

    def get_config(self):
        base = super().get_config()
        base.update(proposal_count=self.proposal_count, nms_threshold=self.nms_threshold,
                    pre_nms_limit=self.pre_nms_limit, rpn_bbox_std_dev=self.rpn_bbox_std_dev)
        return base

    def call(self, inputs):
        rpn_probs, rpn_bbox, anchors = inputs
        scores = tf.cast(rpn_probs[..., 1], tf.float32)                       # (B, A)
        deltas = tf.cast(rpn_bbox, tf.float32) * tf.constant(self.rpn_bbox_std_dev, tf.float32)
        anchors = tf.cast(anchors, tf.float32)

        top_count = tf.minimum(self.pre_nms_limit, tf.shape(anchors)[1])
        scores, order = tf.math.top_k(scores, k=top_count, sorted=True)   # (B, K)
        deltas = tf.gather(deltas, order, batch_dims=1)
        anchors = tf.gather(anchors, order, batch_dims=1)

        boxes = apply_box_deltas_graph(anchors, deltas)
        boxes = clip_boxes_graph(boxes, tf.constant(UNIT_WINDOW, tf.float32))

        def suppress_one_image(args):
            image_boxes, image_scores = args
            keep = tf.image.non_max_suppression(image_boxes, image_scores, self.proposal_count,
                                                self.nms_threshold)
            kept = tf.gather(image_boxes, keep)
            padding = self.proposal_count - tf.shape(kept)[0]
            return tf.pad(kept, [[0, padding], [0, 0]])

        proposals = tf.map_fn(suppress_one_image, (boxes, scores),
                              fn_output_signature=tf.TensorSpec((self.proposal_count, 4), tf.float32))
        # Proposals are fixed inputs to the second stage (approximate joint training, as in the
        # paper and Matterport): no gradient flows back through their coordinates.
        return tf.stop_gradient(tf.ensure_shape(proposals, (None, self.proposal_count, 4)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.proposal_count, 4)

    def compute_output_spec(self, inputs):
        return keras.KerasTensor((inputs[0].shape[0], self.proposal_count, 4), dtype="float32")
