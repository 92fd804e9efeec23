"""Training Mask R-CNN: the five losses, the trainer that sums them, its optimiser, its callbacks.

MaskRCNN.train (mrcnn.model) assembles these; build_trainer makes the compiled trainer on its
own for code that runs train steps itself (the benches). The network (mrcnn.network) stays a
plain functional Keras model; MaskRCNNTrainer wraps it, and its train/test steps compute
Matterport's five losses (rpn_class_loss, rpn_bbox_loss, mrcnn_class_loss, mrcnn_bbox_loss,
mrcnn_mask_loss) from the network's outputs and the batch.
"""
import logging
import os
import re

import keras
import tensorflow as tf

from mrcnn import losses, weights
from mrcnn.callbacks import TimeBudget, TrainingProgress
from mrcnn.config import LOSS_NAMES
from mrcnn.data import make_training_dataset
from mrcnn.meta import parse_image_meta_graph
from mrcnn.network import batch_norm_layers, network_inputs

logger = logging.getLogger(__name__)

# `layers=` shortcuts of train(): which layers (by name) are trained.
LAYER_REGEX = {
    "heads": r"(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "3+": r"(res3.*)|(bn3.*)|(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "4+": r"(res4.*)|(bn4.*)|(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "5+": r"(res5.*)|(bn5.*)|(mrcnn\_.*)|(rpn\_.*)|(fpn\_.*)",
    "all": ".*",
}

CHECKPOINT_PATTERN = re.compile(r"mask_rcnn_(?P<name>[\w-]+)_(?P<epoch>\d{4})\.h5$")
RUN_DIR_PATTERN = re.compile(r"(?P<name>[\w-]+?)(?P<stamp>\d{8}T\d{4})$")

# -- losses ---------------------------------------------------------------------------------

def compute_losses(config, batch, outputs):
    """Matterport's five losses (dict of scalars) for one batch and the network's outputs."""
    active_class_ids = parse_image_meta_graph(batch["input_image_meta"])["active_class_ids"]
    return {
        "rpn_class_loss": losses.rpn_class_loss_graph(batch["input_rpn_match"], outputs["rpn_class_logits"]),
        "rpn_bbox_loss": rpn_bbox_loss(config, batch, outputs),
        "mrcnn_class_loss": losses.mrcnn_class_loss_graph(outputs["target_class_ids"],
                                                          outputs["mrcnn_class_logits"], active_class_ids,
                                                          rois=outputs["rois"]),
        "mrcnn_bbox_loss": mrcnn_bbox_loss(config, outputs),
        "mrcnn_mask_loss": losses.mrcnn_mask_loss_graph(outputs["target_mask"], outputs["mask_class_ids"],
                                                        outputs["mrcnn_mask_logits"], from_logits=True),
    }


def rpn_bbox_loss(config, batch, outputs):
    """The RPN's box loss in the form config.RPN_BBOX_LOSS names (see Config)."""
    return losses.rpn_bbox_loss_graph(None, batch["input_rpn_bbox"], batch["input_rpn_match"], outputs["rpn_bbox"],
                                      form=config.RPN_BBOX_LOSS, std_dev=config.RPN_BBOX_STD_DEV)


def mrcnn_bbox_loss(config, outputs):
    """The box head's loss in the form config.MRCNN_BBOX_LOSS names (see Config)."""
    if config.MRCNN_BBOX_LOSS == "per_positive":
        return losses.mrcnn_bbox_loss_graph(outputs["target_bbox"], outputs["target_class_ids"], outputs["mrcnn_bbox"])
    return losses.mrcnn_bbox_loss_graph(outputs["target_bbox"], outputs["target_class_ids"], outputs["mrcnn_bbox"],
                                        rois=outputs["rois"], beta=1.0 / 9.0)


class MaskRCNNTrainer(keras.Model):
    """Wraps the training network; its train/test steps weigh and sum the five losses.

    With config.MIXED_PRECISION, compile() wraps the optimizer in Keras' LossScaleOptimizer
    (dynamic loss scaling): small gradients underflow to zero in float16 (below about 6e-8), so
    train_step multiplies the loss by the optimizer's scale before differentiating; the
    optimizer divides the gradients back, skips a step whose gradients are not all finite
    (halving the scale) and doubles the scale after a run of good steps. The wrapped optimizer
    clips (clipnorm) the gradients after they are divided back, so the norm is the true one.

    Under a strategy with several replicas (GPU_COUNT > 1) each replica gets IMAGES_PER_GPU images
    of the global batch; its losses are its shares of the global batch's losses (mrcnn.losses),
    the metrics report their sum, and the gradients are summed before they are clipped
    (_clipped_over_replicas): one step is the step one device would take on the whole batch.
    Keras' fit() under a strategy builds from a first batch: see _maybe_symbolic_build.
    """

    def __init__(self, network, config, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.config = config
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss",) + LOSS_NAMES}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras' fit/evaluate under a strategy build the model from a first batch that Keras
        averages over the replicas (strategy.reduce "MEAN"), which MultiWorkerMirroredStrategy
        cannot do for a dict of tensors ("Attempt to convert a value ({'input_image': PerReplica
        ..."). Only the batch's shapes and dtypes matter: this hands Keras the first local
        replica's part instead. (A private Keras method, 3.13-3.15: were it renamed, this would
        simply not be called, and one machine's MirroredStrategy would still work.)
        """
        if iterator is not None and self._distribute_strategy is not None:
            for _, _, batches in iterator:
                data_batch = next(batches)
                break
            data_batch = tf.nest.map_structure(
                lambda value: (self.distribute_strategy.experimental_local_results(value)[0]
                               if isinstance(value, tf.distribute.DistributedValues) else value), data_batch)
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile(self, optimizer="rmsprop", **kwargs):
        """keras.Model.compile; under MIXED_PRECISION with the optimizer in a LossScaleOptimizer."""
        optimizer = keras.optimizers.get(optimizer)
        if self.config.MIXED_PRECISION and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        super().compile(optimizer=optimizer, **kwargs)
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer) and not self.optimizer.built:
            # Built now, so that scale_loss() reads the scale variable from the first traced step
            # on (unbuilt, it returns the initial scale as a constant).
            self.optimizer.build(self.trainable_variables)

    def call(self, inputs, training=False):
        return self.network(network_inputs(self.network, inputs), training=training)

    def _weighted_losses(self, batch, training):
        outputs = self.network(network_inputs(self.network, batch), training=training)
        parts = compute_losses(self.config, batch, outputs)
        total = tf.add_n([float(self.config.LOSS_WEIGHTS.get(name, 1.0)) * value
                          for name, value in parts.items()])
        return total, parts

    def _report(self, total, parts):
        values = {"loss": total, **parts}
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # Each replica holds its share of every loss (mrcnn.losses._ratio); the loss of the
            # global batch is their sum, and every replica reports that.
            values = dict(zip(values, context.all_reduce(tf.distribute.ReduceOp.SUM, list(values.values()))))
        for name, value in values.items():
            self.trackers[name].update_state(value)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if getattr(self.distribute_strategy.extended, "_in_multi_worker_mode", lambda: False)():
            # On several machines Keras' fit averages each log with strategy.reduce("MEAN", log,
            # axis=0), which fails on a scalar (tensorflow/tensorflow#72388): give it that axis.
            logs = {name: value[None] for name, value in logs.items()}
        return logs

    def _clipped_over_replicas(self, gradients):
        """Under several replicas: the global batch's gradients, clipped here, divided by the replicas.

        Why: Keras' optimizer clips each replica's gradients (each tensor's norm, clipnorm) and
        only then sums them over the replicas, so with two replicas a tensor could move up to
        twice as far as GRADIENT_CLIP_NORM allows, and not as far as on one device. Here every
        replica first sums the replicas' gradients (those of the global batch: the losses are
        shares of its loss), clips that sum as the optimizer would, and hands the optimizer 1/R
        of it: the optimizer's own clipping then changes nothing and its sum gives the clipped
        sum back. Gradients are still in loss-scale units (MIXED_PRECISION): the limit is too.
        One replica, or no clipping: the gradients as they are.
        """
        context = tf.distribute.get_replica_context()
        optimizer = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        clipping = optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue
        if context is None or context.num_replicas_in_sync == 1 or not clipping:
            return gradients
        present = [i for i, g in enumerate(gradients) if g is not None]
        summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [gradients[i] for i in present])
        scale = self.optimizer.scale_loss(tf.constant(1.0))      # 1 without loss scaling
        if optimizer.clipnorm:
            summed = [tf.clip_by_norm(g, optimizer.clipnorm * scale) for g in summed]
        elif optimizer.global_clipnorm:
            summed = tf.clip_by_global_norm(summed, optimizer.global_clipnorm * scale)[0]
        else:
            summed = [tf.clip_by_value(g, -optimizer.clipvalue * scale, optimizer.clipvalue * scale) for g in summed]
        gradients = list(gradients)
        for i, g in zip(present, summed):
            gradients[i] = g / context.num_replicas_in_sync
        return gradients

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, parts = self._weighted_losses(data, training=True)
            # The loss times the loss scale (a LossScaleOptimizer's; other optimizers return it
            # unchanged): apply_gradients divides the gradients back.
            scaled = self.optimizer.scale_loss(total)
        variables = self.trainable_variables
        gradients = self._clipped_over_replicas(tape.gradient(scaled, variables))
        self.optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])
        return self._report(total, parts)

    def test_step(self, data):
        total, parts = self._weighted_losses(data, training=False)
        return self._report(total, parts)


def build_trainer(network, config, learning_rate, momentum=None, strategy=None):
    """The compiled MaskRCNNTrainer around `network`, as MaskRCNN.train makes it; returns it.

    The optimiser is SGD at `learning_rate` with `momentum` (None: config.LEARNING_MOMENTUM),
    config.WEIGHT_DECAY on kernels only (not on batch norm's gamma and beta, nor on biases), and
    config.GRADIENT_CLIP_NORM on each gradient tensor on its own, as Matterport's. Which layers
    train is decided before (MaskRCNN.set_trainable): under MIXED_PRECISION compile() builds the
    loss-scale optimiser for the trainable variables of that moment. strategy: a tf.distribute
    strategy whose scope the trainer and its optimiser are made in (None: the current one).
    """
    momentum = config.LEARNING_MOMENTUM if momentum is None else momentum
    with (strategy or tf.distribute.get_strategy()).scope():
        trainer = MaskRCNNTrainer(network, config, name="mask_rcnn_trainer")
        optimizer = keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum,
                                         weight_decay=config.WEIGHT_DECAY or None,
                                         clipnorm=config.GRADIENT_CLIP_NORM)
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        trainer.compile(optimizer=optimizer, jit_compile=False)
    return trainer


# -- callbacks ------------------------------------------------------------------------------

class WeightsCheckpoint(keras.callbacks.Callback):
    """Saves the network's weights (Keras 2 HDF5 layout) at the end of every epoch.

    keep: None keeps every checkpoint; N deletes this run's older checkpoints once the new one
    is safely written, so that the newest N remain (resuming needs only the newest).
    """

    def __init__(self, network, path_pattern, keep=None):
        super().__init__()
        self.network = network
        self.path_pattern = str(path_pattern)
        self.keep = keep

    def on_epoch_end(self, epoch, logs=None):
        saved = weights.save_weights(self.network, self.path_pattern.format(epoch=epoch + 1))
        if self.keep is not None:
            self._delete_older_than_newest(saved)

    def _delete_older_than_newest(self, saved):
        """Delete checkpoints of this run from before `saved`, all but the newest `keep` (with it)."""
        this = CHECKPOINT_PATTERN.search(saved.name)
        name, epoch = this.group("name"), int(this.group("epoch"))
        older = []
        for path in saved.parent.glob("mask_rcnn_*.h5"):
            match = CHECKPOINT_PATTERN.search(path.name)
            if match and match.group("name") == name and int(match.group("epoch")) < epoch:
                older.append((int(match.group("epoch")), path))
        for _, path in sorted(older)[:max(0, len(older) - (self.keep - 1))]:
            path.unlink(missing_ok=True)


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-measures the trained BatchNorm layers' statistics after the last training step of every
    epoch, before validation and the checkpoint (Config.PRECISE_BN_BATCHES, "precise BN"); also
    after the step at which training is told to stop (a time budget), since that partial
    epoch is validated and saved too.

    Why: from scratch the moving averages lag weights that still move fast, so an epoch's
    checkpoint can detect far worse than its weights can; measured on `batches` training batches
    (MaskRCNN.calibrate_batch_norm) they are the statistics of the weights being saved. A stop
    is seen only when set by a callback before this one (train() puts TimeBudget first).
    """

    def __init__(self, maskrcnn, dataset, batches, steps_per_epoch, seed=None):
        super().__init__()
        self.maskrcnn = maskrcnn
        self.dataset = dataset
        self.batches = int(batches)
        self.steps_per_epoch = int(steps_per_epoch)
        self.seed = seed
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        stopping = bool(getattr(self.model, "stop_training", False))
        if batch + 1 == self.steps_per_epoch or stopping:
            seed = None if self.seed is None else int(self.seed) + self.epoch + 1
            self.maskrcnn.calibrate_batch_norm(self.dataset, batches=self.batches, seed=seed, trainable_only=True)


def _tensorboard_callback(log_dir):
    """[TensorBoard callback] when the tensorboard package is installed, else [] with a warning."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        logger.warning("tensorboard is not installed: no TensorBoard logs (the CSV log is still written).")
        return []
    return [keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0)]


def train_callbacks(maskrcnn, train_dataset, epochs, layers, time_budget=None, clock=None, progress=False,
                    custom_callbacks=None, seed=None):
    """The callbacks of MaskRCNN.train, in their order; returns (callbacks, budget, bars).

    The TimeBudget comes first, so that every later callback sees a stop at the step that made
    it; then precise BN (Config.PRECISE_BN_BATCHES), the checkpoint, the CSV log, TensorBoard,
    the caller's callbacks, and with `progress` one TrainingProgress bar (bars, to be closed).
    """
    config = maskrcnn.config
    budget = TimeBudget(time_budget, clock=clock)
    precise = ([PreciseBatchNorm(maskrcnn, train_dataset, config.PRECISE_BN_BATCHES, config.STEPS_PER_EPOCH,
                                 seed)] if config.PRECISE_BN_BATCHES else [])
    bars = ([TrainingProgress(config.STEPS_PER_EPOCH, maskrcnn.epoch, epochs, budget=budget, clock=clock,
                              desc=f"training {layers}")] if progress else [])
    callbacks = [budget] + precise + [
        WeightsCheckpoint(maskrcnn.keras_model, maskrcnn.checkpoint_path, keep=config.KEEP_CHECKPOINTS),
        keras.callbacks.CSVLogger(os.path.join(maskrcnn.log_dir, "training_log.csv"), append=True),
    ] + _tensorboard_callback(maskrcnn.log_dir) + list(custom_callbacks or []) + bars
    return callbacks, budget, bars


def calibrate_batch_norm(network, config, dataset, batches=20, seed=0, trainable_only=False):
    """Set the BatchNorm layers' inference statistics of the training `network` to their mean over
    `batches` training batches of `dataset`; trainable_only: only the layers that training moves.
    Returns the count of layers measured (why: MaskRCNN.calibrate_batch_norm)."""
    layers = [layer for layer in batch_norm_layers(network) if layer.trainable or not trainable_only]
    saved = [(layer.momentum, getattr(layer, "train_bn", None), layer.trainable) for layer in layers]
    data = iter(make_training_dataset(dataset, config, shuffle=True, seed=seed))
    try:
        for layer in layers:
            layer.trainable = True
            if hasattr(layer, "train_bn"):
                layer.train_bn = True
        for count in range(int(batches)):
            for layer in layers:          # running mean over the batches seen so far
                layer.momentum = count / (count + 1)
            network(network_inputs(network, next(data)), training=True)
    finally:
        for layer, (momentum, train_bn, trainable) in zip(layers, saved):
            layer.momentum, layer.trainable = momentum, trainable
            if hasattr(layer, "train_bn"):
                layer.train_bn = train_bn
    return len(layers)


def distribution_strategy(config):
    """The tf.distribute strategy for config.GPU_COUNT: TensorFlow's default one for 1; for more,
    MirroredStrategy over the first GPU_COUNT GPUs, or, on a machine without GPUs, over the first
    GPU_COUNT logical CPU devices (tf.config.set_logical_device_configuration, set before TensorFlow
    starts: a rehearsal or test of multi-GPU training on a CPU).

    Why the devices are named: MirroredStrategy() alone takes every GPU (else every logical CPU
    device), whatever GPU_COUNT says, and splits the batch of IMAGES_PER_GPU * GPU_COUNT images
    over all of them. Fewer devices than GPU_COUNT: ValueError saying what there is.
    """
    count = int(config.GPU_COUNT)
    if count == 1:
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    devices = gpus or tf.config.list_logical_devices("CPU")
    if len(devices) < count:
        found = f"{len(gpus)} GPU(s)" if gpus else f"no GPU and {len(devices)} logical CPU device(s)"
        raise ValueError(f"GPU_COUNT is {count} but TensorFlow sees {found}: set GPU_COUNT to at most "
                         f"{len(devices)} (and IMAGES_PER_GPU so that BATCH_SIZE stays what you want)")
    return tf.distribute.MirroredStrategy(devices=[device.name for device in devices[:count]])
