"""MaskRCNN: builds the network in training or inference mode, trains it, detects with it.

Matterport's public API on Keras 3:

    model = MaskRCNN(mode="training", config=config, model_dir="runs")
    model.load_weights(path, by_name=True, exclude=[...])
    model.train(train_set, val_set, learning_rate=config.LEARNING_RATE, epochs=10, layers="heads")
    model = MaskRCNN(mode="inference", config=config, model_dir="runs")
    model.load_weights(model.find_last(), by_name=True)
    results = model.detect([image])   # one dict per image: rois, class_ids, scores, masks

`keras_model` is the plain functional Keras model (Matterport's layer names, so its weight files
load by name). Training wraps it in a small keras.Model whose train_step computes Matterport's
five losses (rpn_class_loss, rpn_bbox_loss, mrcnn_class_loss, mrcnn_bbox_loss, mrcnn_mask_loss)
from the network's outputs and the batch; Keras prints them and their val_ twins.

This module holds the MaskRCNN class only: the network is mrcnn.network's build_network, the
losses, trainer, optimiser and callbacks are in mrcnn.training, and the names Matterport's
model.py had (and this module had before the split) are re-exported below.
"""
import collections
import datetime
import logging
import os
import re
import time
from pathlib import Path

import keras
import numpy as np

from mrcnn import utils, weights
from mrcnn.backbone import get_imagenet_weights as _imagenet_weights_path
from mrcnn.data import get_anchors, make_inference_inputs, make_training_dataset
from mrcnn.detection import unmold_detections
from mrcnn.network import ancestor, build_network
from mrcnn.training import (CHECKPOINT_PATTERN, LAYER_REGEX, RUN_DIR_PATTERN, build_trainer, calibrate_batch_norm,
                            distribution_strategy, train_callbacks)

# The names mrcnn.model had before the network and training moved out (mrcnn.network, mrcnn.training).
from mrcnn.callbacks import TimeBudget, TrainingProgress  # noqa: F401
from mrcnn.config import LOSS_NAMES  # noqa: F401
from mrcnn.network import (AppendBoxes, ConstantAnchors, DetectionBoxes, NormaliseBoxes,  # noqa: F401
                           PositiveImageIds, PositiveRows, batch_norm_layers, network_inputs,
                           positive_rows, set_batch_norm_momentum)
from mrcnn.training import (MaskRCNNTrainer, PreciseBatchNorm, WeightsCheckpoint, _tensorboard_callback,  # noqa: F401
                            compute_losses, mrcnn_bbox_loss, rpn_bbox_loss)

# Matterport's other module-level names, for their tutorials and users' scripts (`modellib.X`):
# the same functions as our modules', or thin ones in mrcnn.compat (see there).
from mrcnn.backbone import BatchNorm  # noqa: E402,F401
from mrcnn.box_graph import apply_box_deltas_graph, clip_boxes_graph, overlaps_graph, trim_zeros_graph  # noqa: F401
from mrcnn.compat import (DetectionLayer, DetectionTargetLayer, ProposalLayer, batch_pack_graph,  # noqa: F401
                          build_detection_targets, conv_block, data_generator, detection_targets_graph,
                          generate_random_rois, identity_block, load_image_gt, log, log2_graph,
                          refine_detections_graph, resnet_graph, smooth_l1_loss)
from mrcnn.data import build_rpn_targets  # noqa: F401
from mrcnn.heads import build_fpn_mask_graph, fpn_classifier_graph  # noqa: F401
from mrcnn.losses import (mrcnn_bbox_loss_graph, mrcnn_class_loss_graph, mrcnn_mask_loss_graph,  # noqa: F401
                          rpn_bbox_loss_graph, rpn_class_loss_graph)
from mrcnn.meta import (compose_image_meta, compute_backbone_shapes, denorm_boxes_graph, mold_image,  # noqa: F401
                        norm_boxes_graph, parse_image_meta, parse_image_meta_graph, unmold_image)
from mrcnn.roi_align import PyramidROIAlign  # noqa: F401
from mrcnn.rpn import apply_rpn, build_rpn_model, rpn_graph  # noqa: F401

logger = logging.getLogger(__name__)


class MaskRCNN:
    """Mask R-CNN with Matterport's interface; see the module docstring."""

    def __init__(self, mode, config, model_dir, strategy=None):
        """strategy: a tf.distribute strategy to build and train under (e.g. MultiWorkerMirroredStrategy
        for several machines, docs/multi_gpu.md); its replicas must number config.GPU_COUNT.
        None: distribution_strategy(config), i.e. MirroredStrategy over GPU_COUNT devices when > 1.
        """
        if mode not in ("training", "inference"):
            raise ValueError(f"mode must be 'training' or 'inference', not {mode!r}")
        self.mode = mode
        self.config = config
        self.model_dir = str(model_dir)
        self.epoch = 0
        self.set_log_dir()
        self.strategy = distribution_strategy(config) if strategy is None else strategy
        if self.strategy.num_replicas_in_sync != int(config.GPU_COUNT):
            raise ValueError(f"MaskRCNN: the strategy has {self.strategy.num_replicas_in_sync} replicas but GPU_COUNT "
                             f"is {config.GPU_COUNT}; set GPU_COUNT to the replicas (BATCH_SIZE = IMAGES_PER_GPU * "
                             "GPU_COUNT is the global batch they share)")
        with self.strategy.scope():
            self.keras_model = build_network(mode, config)
        self._anchor_cache = {}
        self._graph_probes = {}              # run_graph's models, by their outputs

    # -- runs and checkpoints ---------------------------------------------------------------
    def set_log_dir(self, model_path=None):
        """Choose the run folder; a checkpoint path from an earlier run continues that run.

        New run: model_dir/<name><YYYYmmddTHHMM>/; checkpoints mask_rcnn_<name>_<epoch>.h5 inside.
        """
        name = self.config.NAME.lower()
        now = datetime.datetime.now()
        if model_path:
            model_path = Path(model_path)
            match = CHECKPOINT_PATTERN.search(model_path.name)
            if match and RUN_DIR_PATTERN.search(model_path.parent.name):
                self.epoch = int(match.group("epoch"))
                self.log_dir = str(model_path.parent)
                self.checkpoint_path = os.path.join(self.log_dir, f"mask_rcnn_{name}_{{epoch:04d}}.h5")
                return
        self.log_dir = os.path.join(self.model_dir, f"{name}{now:%Y%m%dT%H%M}")
        self.checkpoint_path = os.path.join(self.log_dir, f"mask_rcnn_{name}_{{epoch:04d}}.h5")

    def find_last(self):
        """Path of the newest checkpoint of the newest run of this config's NAME in model_dir.

        Raises FileNotFoundError saying where it looked when there is none.
        """
        name = self.config.NAME.lower()
        root = Path(self.model_dir)
        runs = sorted(p for p in root.glob(f"{name}*") if p.is_dir() and RUN_DIR_PATTERN.fullmatch(p.name)
                      and RUN_DIR_PATTERN.fullmatch(p.name).group("name") == name) if root.is_dir() else []
        for run in reversed(runs):
            checkpoints = sorted(p for p in run.glob(f"mask_rcnn_{name}_*.h5") if CHECKPOINT_PATTERN.search(p.name))
            if checkpoints:
                return str(checkpoints[-1])
        raise FileNotFoundError(f"Could not find a checkpoint of '{name}' under {root}: train first, "
                                "or pass the path of a weight file.")

    def load_weights(self, filepath, by_name=False, exclude=None):
        """Load an HDF5 weight file (ours or Matterport's); returns the load report.

        A checkpoint of one of our runs also sets the epoch counter and run folder, so that
        train() continues that run (epochs counting on).
        """
        report = weights.load_weights(self.keras_model, filepath, by_name=by_name, exclude=exclude)
        self.set_log_dir(filepath)
        return report

    def calibrate_batch_norm(self, dataset, batches=20, seed=0, trainable_only=False):
        """Set every BatchNorm layer's inference statistics to their mean over `batches` batches.

        Why: a network built from random weights has statistics 0 and 1 everywhere, far from
        what its layers see; with TRAIN_BN = False they would stay wrong, and with TRAIN_BN =
        True and two images a batch the network learns to lean on each batch's own statistics,
        which inference does not have. Measuring them once on the data (before training from
        scratch) gives a network whose training and inference agree. trainable_only: measure
        only the layers that training moves; frozen layers keep their statistics (and normalise
        with them while the others are measured). Returns the count of layers measured.
        """
        if self.mode != "training":
            raise RuntimeError("calibrate_batch_norm needs the model in mode='training'")
        return calibrate_batch_norm(self.keras_model, self.config, dataset, batches=batches, seed=seed,
                                    trainable_only=trainable_only)

    def get_imagenet_weights(self):
        """Download (once) the ImageNet ResNet-50 weights and return their path."""
        return _imagenet_weights_path()

    # -- training ---------------------------------------------------------------------------
    def set_trainable(self, layer_regex, keras_model=None, indent=0, verbose=0):
        """Make the layers whose names fully match `layer_regex` trainable, freeze the rest.

        indent: kept for Matterport's signature (it indented its printed list); unused.
        """
        model = keras_model or self.keras_model
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                self.set_trainable(layer_regex, keras_model=layer, verbose=verbose)
                continue
            if not layer.weights:
                continue
            trainable = bool(re.fullmatch(layer_regex, layer.name))
            layer.trainable = trainable
            if trainable and verbose > 0:
                logger.info("trainable: %s (%s)", layer.name, type(layer).__name__)

    def train(self, train_dataset, val_dataset, learning_rate, epochs, layers, augmentation=None,
              custom_callbacks=None, no_augmentation_sources=None, verbose=1, seed=None,
              time_budget=None, clock=None, progress=False):
        """Train until epoch `epochs` (counting on from the loaded checkpoint), `layers` chosen by
        'heads' | '3+' | '4+' | '5+' | 'all' or a regular expression over layer names.

        augmentation: an albumentations transform, an imgaug augmenter, or a callable
        (image, masks) -> (image, masks); applied to training images only.
        time_budget: seconds; training stops at the first step boundary after them, and that
        partial epoch is validated and saved like a full one (mrcnn.callbacks.TimeBudget), so
        `epochs` is an upper bound. clock: the time source (time.monotonic; tests fake it).
        progress: one progress bar with an ETA over all steps (mrcnn.callbacks.TrainingProgress)
        instead of Keras' own lines (`verbose` is then 0).
        Afterwards `self.epoch` is the epoch reached (the number of its checkpoint) and
        `self.last_train_stop` says how training ended: reason ("epochs done", "time budget",
        "stopped" by another callback, "interrupted"), epoch, step (steps done in that epoch),
        steps (in this call), seconds (of this call), budget (seconds or None).
        Returns the Keras History of this call.
        """
        if self.mode != "training":
            raise RuntimeError("Create the model with mode='training' to train it.")
        if no_augmentation_sources:
            logger.warning("no_augmentation_sources is not supported; augmentation applies to every source.")
        layer_regex = LAYER_REGEX.get(layers, layers)
        config = self.config
        train_data = make_training_dataset(train_dataset, config, shuffle=True, augmentation=augmentation, seed=seed)
        val_data = make_training_dataset(val_dataset, config, shuffle=True, seed=seed)

        os.makedirs(self.log_dir, exist_ok=True)
        callbacks, budget, bar = train_callbacks(self, train_dataset, epochs, layers, time_budget=time_budget,
                                                 clock=clock or time.monotonic, progress=progress,
                                                 custom_callbacks=custom_callbacks, seed=seed)
        with self.strategy.scope():
            self.set_trainable(layer_regex)
        trainer = build_trainer(self.keras_model, config, learning_rate, strategy=self.strategy)
        logger.info("Training from epoch %d to %d, layers %r, learning rate %g, run folder %s",
                 self.epoch, epochs, layers, learning_rate, self.log_dir)
        reason = "interrupted"
        try:
            history = trainer.fit(
                train_data, initial_epoch=self.epoch, epochs=epochs, steps_per_epoch=config.STEPS_PER_EPOCH,
                validation_data=val_data, validation_steps=config.VALIDATION_STEPS, callbacks=callbacks,
                verbose=0 if progress else verbose, shuffle=False)  # the tf.data pipeline shuffles
            reason = None
        finally:
            for callback in bar:
                callback.close()
            self._record_train_stop(budget, epochs, reason)
        return history

    def _record_train_stop(self, budget, epochs, reason=None):
        """Set self.epoch to the epoch reached and self.last_train_stop to how training ended."""
        if budget.last_epoch_ended is not None:
            self.epoch = budget.last_epoch_ended + 1          # its checkpoint is mask_rcnn_<name>_<epoch>
        if reason is None:
            finished = self.epoch >= epochs and budget.step in (0, int(self.config.STEPS_PER_EPOCH))
            reason = "epochs done" if finished else "time budget" if budget.stopped else "stopped"
        seconds = budget.seconds_trained if reason != "interrupted" else budget.elapsed()
        self.last_train_stop = {"reason": reason, "epoch": int(self.epoch), "step": int(budget.step),
                                "steps": int(budget.steps), "seconds": float(seconds), "budget": budget.seconds}

    # -- inference --------------------------------------------------------------------------
    def get_anchors(self, image_shape):
        """Normalised anchors for a molded image shape (cached)."""
        key = tuple(int(v) for v in image_shape[:2])
        if key not in self._anchor_cache:
            self._anchor_cache[key] = utils.norm_boxes(get_anchors(self.config, image_shape), key)
        return self._anchor_cache[key]

    def mold_inputs(self, images):
        """Resize and normalise a list of (H, W, 3) uint8 images as the network takes them.

        Returns (molded_images (N, H', W', 3) float32, image_metas (N, IMAGE_META_SIZE),
        windows (N, 4) int32: where each image lies inside its molded one), as Matterport's.
        """
        return make_inference_inputs(images, self.config)

    def _inference_inputs(self, molded_images, image_metas):
        """The three inputs of the inference network: images, metas and anchors for the batch."""
        if self.mode != "inference":
            raise RuntimeError("Create the model with mode='inference' to detect or run its graph.")
        molded_images = np.asarray(molded_images, dtype=np.float32)
        anchors = self.get_anchors(molded_images.shape[1:])
        return [molded_images, np.asarray(image_metas, dtype=np.float32),
                np.broadcast_to(anchors, (len(molded_images),) + anchors.shape)]

    def detect(self, images, verbose=0):
        """Detect instances in a list of RGB uint8 images (any number; batched by BATCH_SIZE).

        Returns one dict per image: rois (N, 4) [y1, x1, y2, x2] in that image's pixels,
        class_ids (N,), scores (N,), masks (H, W, N) bool at the image's own size.
        """
        if self.mode != "inference":
            raise RuntimeError("Create the model with mode='inference' to detect.")
        images = list(images)
        batch = int(self.config.BATCH_SIZE)
        results = []
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            padded = chunk + [chunk[-1]] * (batch - len(chunk))
            molded, metas, windows = self.mold_inputs(padded)
            if verbose:
                log(f"Processing {len(chunk)} images")
                for image in chunk:
                    log("image", image)
                log("molded_images", molded)
                log("image_metas", metas)
            detections, _, _, mrcnn_mask, _, _, _ = self.keras_model.predict_on_batch(
                self._inference_inputs(molded, metas))
            for i, image in enumerate(chunk):
                rois, class_ids, scores, masks = self.unmold_detections(
                    np.asarray(detections[i]), np.asarray(mrcnn_mask[i]), image.shape, molded[i].shape, windows[i])
                results.append({"rois": rois, "class_ids": class_ids, "scores": scores, "masks": masks})
        return results

    def detect_molded(self, molded_images, image_metas, verbose=0):
        """detect() for images already molded (mold_inputs, or load_image_gt's with mold_image).

        Boxes and masks are in the molded image's pixels (its window is the whole image), as
        Matterport's. Any number of images, batched by BATCH_SIZE.
        """
        molded_images, image_metas = np.asarray(molded_images), np.asarray(image_metas)
        if molded_images.ndim != 4 or len(image_metas) != len(molded_images):
            raise ValueError(f"detect_molded: need molded images (N, H, W, C) and N image metas, got "
                             f"{molded_images.shape} and {image_metas.shape}")
        if verbose:
            log(f"Processing {len(molded_images)} images")
        batch = int(self.config.BATCH_SIZE)
        results = []
        for start in range(0, len(molded_images), batch):
            chunk, metas = molded_images[start:start + batch], image_metas[start:start + batch]
            missing = batch - len(chunk)
            if missing:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], missing, axis=0)])
                metas = np.concatenate([metas, np.repeat(metas[-1:], missing, axis=0)])
            detections, _, _, mrcnn_mask, _, _, _ = self.keras_model.predict_on_batch(
                self._inference_inputs(chunk, metas))
            for i in range(batch - missing):
                shape = chunk[i].shape
                rois, class_ids, scores, masks = self.unmold_detections(
                    np.asarray(detections[i]), np.asarray(mrcnn_mask[i]), shape, shape, [0, 0, shape[0], shape[1]])
                results.append({"rois": rois, "class_ids": class_ids, "scores": scores, "masks": masks})
        return results

    def run_graph(self, images, outputs, image_metas=None, verbose=1):
        """Run part of the inference graph: the values of the named tensors, for inspection.

        outputs: a list of (name, tensor) with tensors of keras_model, e.g.
        ("proposals", model.keras_model.get_layer("ROI").output). images: a list of images (molded
        here), or with image_metas, already molded images. Returns an OrderedDict name -> array
        and logs each one's shape and range, as Matterport's (verbose=0: silently).
        """
        outputs = collections.OrderedDict(outputs)
        for name, tensor in outputs.items():
            if tensor is None:
                raise ValueError(f"run_graph: output {name!r} is None (a layer name that is not in the model?)")
        if image_metas is None:
            molded_images, image_metas, _ = self.mold_inputs(images)
        else:
            molded_images = images
        key = tuple(id(t) for t in outputs.values())
        probe = self._graph_probes.get(key)
        if probe is None:
            probe = self._graph_probes[key] = keras.Model(self.keras_model.inputs, list(outputs.values()))
        values = probe.predict_on_batch(self._inference_inputs(molded_images, image_metas))
        values = values if isinstance(values, (list, tuple)) else [values]
        result = collections.OrderedDict((name, np.asarray(v)) for name, v in zip(outputs, values))
        for name, value in result.items() if verbose else ():
            log(name, value)
        return result

    def unmold_detections(self, detections, mrcnn_mask, original_image_shape, image_shape, window):
        """One image's detection rows and masks -> boxes, class ids, scores, full-size masks."""
        return unmold_detections(detections, mrcnn_mask, original_image_shape, image_shape, window,
                                 self.config.MASK_TARGET_SAMPLING)

    # -- Matterport's remaining methods (their tutorials call them) ------------------------
    def build(self, mode, config):
        """A new functional Keras model of Mask R-CNN for `mode` and `config` (build_network).

        The model MaskRCNN() makes as keras_model; calling build again gives a fresh, separate
        model and leaves self.keras_model as it is.
        """
        with self.strategy.scope():
            return build_network(mode, config)

    def compile(self, learning_rate, momentum):
        """The compiled trainer train() uses, with SGD at `learning_rate` and `momentum`; returns it.

        Matterport's compile added the five losses to keras_model and compiled it for
        keras_model.fit on data_generator's batches. A Keras 3 model cannot carry losses added
        that way, so ours live in a wrapping keras.Model (MaskRCNNTrainer, kept as self.trainer)
        whose fit() takes the batches of mrcnn.data.make_training_dataset. train() compiles its
        own; call this to run fit yourself. The optimizer is train()'s: Config's
        GRADIENT_CLIP_NORM per gradient and WEIGHT_DECAY on kernels only.
        """
        if self.mode != "training":
            raise RuntimeError("compile: create the model with mode='training' to train it.")
        trainer = build_trainer(self.keras_model, self.config, learning_rate, momentum, strategy=self.strategy)
        self.trainer = trainer
        return trainer

    def ancestor(self, tensor, name, checked=None):
        """The nearest upstream tensor of `tensor` made by a layer whose name fully matches `name`, or
        None (for run_graph); mrcnn.network.ancestor says how, and what Keras 3 cannot find."""
        return ancestor(tensor, name, checked)

    def find_trainable_layer(self, layer):
        """The layer that holds the weights: `layer` itself, or the one a wrapper (TimeDistributed) wraps."""
        if isinstance(layer, keras.layers.Wrapper):
            return self.find_trainable_layer(layer.layer)
        return layer

    def get_trainable_layers(self):
        """The layers of keras_model that have weights (wrappers unwrapped; nested models as a whole)."""
        layers = []
        for layer in self.keras_model.layers:
            layer = self.find_trainable_layer(layer)
            if layer.weights:
                layers.append(layer)
        return layers
