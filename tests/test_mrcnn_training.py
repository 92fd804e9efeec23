"""mrcnn.training: the checkpoint callback, batch norm calibration and precise BN (moved from test_mrcnn_model.py)."""
import keras
import numpy as np

from mrcnn.model import LAYER_REGEX, MaskRCNN
from mrcnn.training import WeightsCheckpoint
from tests.test_mrcnn_model import TinyConfig, shapes  # noqa: F401  (shapes: a fixture)


def record_events(model, monkeypatch, events, measured=lambda batches, seed, trainable_only: (
        "measure", batches, seed, trainable_only), checkpoint=lambda epoch: ("checkpoint", epoch)):
    """A callback that appends to `events` each training step, validation and epoch end (checkpoint(epoch));
    model.calibrate_batch_norm (precise BN) is spied on too, appending measured(batches, seed, trainable_only)."""
    measure = model.calibrate_batch_norm

    def spy(dataset, batches, seed, trainable_only):
        events.append(measured(batches, seed, trainable_only))
        return measure(dataset, batches=batches, seed=seed, trainable_only=trainable_only)

    monkeypatch.setattr(model, "calibrate_batch_norm", spy)

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            events.append(("step", batch))

        def on_test_begin(self, logs=None):
            events.append(("validate",))

        def on_epoch_end(self, epoch, logs=None):
            events.append(checkpoint(epoch))

    return Record()


def test_keep_checkpoints_leaves_the_newest_of_this_run(tmp_path):
    network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    (tmp_path / "mask_rcnn_run_0009.h5").write_bytes(b"from an abandoned longer run")
    (tmp_path / "mask_rcnn_other_0001.h5").write_bytes(b"another config's checkpoint")
    saver = WeightsCheckpoint(network, tmp_path / "mask_rcnn_run_{epoch:04d}.h5", keep=2)
    for epoch in range(5):
        saver.on_epoch_end(epoch)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "mask_rcnn_other_0001.h5", "mask_rcnn_run_0004.h5", "mask_rcnn_run_0005.h5", "mask_rcnn_run_0009.h5"]

    everything = tmp_path / "all"
    saver = WeightsCheckpoint(network, everything / "mask_rcnn_run_{epoch:04d}.h5")
    for epoch in range(3):
        saver.on_epoch_end(epoch)
    assert len(list(everything.iterdir())) == 3          # None: Matterport's rule, every epoch kept


def test_calibrate_batch_norm_sets_the_data_statistics_and_restores_settings(tmp_path, shapes):
    from mrcnn.data import make_training_dataset
    from mrcnn.model import batch_norm_layers

    config = TinyConfig(TRAIN_BN=False, BATCH_NORM_MOMENTUM=0.9)
    model = MaskRCNN("training", config, tmp_path)
    layers = list(batch_norm_layers(model.keras_model))
    assert any(layer.name == "mrcnn_class_bn1" for layer in layers)        # per-ROI layers are found too
    assert all(layer.momentum == 0.9 for layer in layers)
    bn = model.keras_model.get_layer("bn_conv1")
    assert np.allclose(bn.moving_mean.numpy(), 0) and np.allclose(bn.moving_variance.numpy(), 1)

    # oracle: the mean over two batches of conv1's per-channel batch mean, from a sub-model
    conv1 = keras.Model(model.keras_model.get_layer("input_image").output, model.keras_model.get_layer("conv1").output)
    data = iter(make_training_dataset(shapes, config, shuffle=True, seed=3))
    expected = np.mean([conv1(next(data)["input_image"]).numpy().mean(axis=(0, 1, 2)) for _ in range(2)], axis=0)

    assert model.calibrate_batch_norm(shapes, batches=2, seed=3) == len(layers)
    assert np.allclose(bn.moving_mean.numpy(), expected, rtol=1e-4, atol=1e-4)
    assert all(layer.momentum == 0.9 and layer.train_bn is False for layer in layers)


def test_calibrate_trainable_only_leaves_frozen_layers_statistics(tmp_path, shapes):
    from mrcnn.model import batch_norm_layers

    model = MaskRCNN("training", TinyConfig(), tmp_path)
    model.set_trainable(LAYER_REGEX["heads"])
    heads = [layer for layer in batch_norm_layers(model.keras_model) if layer.trainable]
    assert {layer.name for layer in heads} >= {"mrcnn_class_bn1", "mrcnn_mask_bn4"}
    assert model.calibrate_batch_norm(shapes, batches=2, seed=3, trainable_only=True) == len(heads)
    bn = model.keras_model.get_layer("bn_conv1")                       # frozen: never measured
    assert np.allclose(bn.moving_mean.numpy(), 0) and np.allclose(bn.moving_variance.numpy(), 1)
    assert not bn.trainable
    head = model.keras_model.get_layer("mrcnn_class_bn1").layer
    assert not np.allclose(head.moving_mean.numpy(), 0)


def test_precise_batch_norm_measures_every_epoch_before_validation_and_checkpoint(tmp_path, shapes, monkeypatch):
    from mrcnn.data import make_training_dataset

    config = TinyConfig(PRECISE_BN_BATCHES=2, STEPS_PER_EPOCH=2, BATCH_NORM_MOMENTUM=0.9)
    model = MaskRCNN("training", config, tmp_path)
    events = []
    model.train(shapes, shapes, learning_rate=0.001, epochs=2, layers="all", verbose=0, seed=5,
                custom_callbacks=[record_events(model, monkeypatch, events)])
    # after the last step of each epoch (train()'s callbacks come before the user's, so the
    # measurement is logged before Record hears of that step), before validation and the
    # checkpoint; seed + epoch + 1: each epoch measures on other batches than the one before
    assert events == [("step", 0), ("measure", 2, 6, True), ("step", 1), ("validate",), ("checkpoint", 0),
                      ("step", 0), ("measure", 2, 7, True), ("step", 1), ("validate",), ("checkpoint", 1)]

    # oracle: the checkpoint's bn_conv1 statistics are the mean over the 2 batches of epoch 2's
    # measurement of conv1's per-channel batch mean, computed from the trained conv1 alone
    keras_model = model.keras_model
    conv1 = keras.Model(keras_model.get_layer("input_image").output, keras_model.get_layer("conv1").output)
    data = iter(make_training_dataset(shapes, config, shuffle=True, seed=7))
    expected = np.mean([conv1(next(data)["input_image"]).numpy().mean(axis=(0, 1, 2)) for _ in range(2)], axis=0)
    saved = MaskRCNN("training", config, tmp_path / "fresh")
    saved.load_weights(model.find_last(), by_name=True)
    assert np.allclose(saved.keras_model.get_layer("bn_conv1").moving_mean.numpy(), expected, rtol=1e-4, atol=1e-4)
