"""Keras 2 layout HDF5 weights: files written here with h5py (independently of mrcnn.weights) load by name."""
import h5py
import keras
import numpy as np
import pytest

from mrcnn import rpn, weights
from mrcnn.weights import WeightFileError, WeightFileNotFound, WeightShapeError

HEADS = ["mrcnn_class_conv1", "mrcnn_class_logits", "mrcnn_mask"]


def small_model(num_classes=3):
    """A few layers of each kind the real model has: Conv2D, BatchNorm, the nested rpn_model, TimeDistributed."""
    image = keras.Input((16, 16, 3), name="input_image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(image)
    x = keras.layers.BatchNormalization(name="bn_conv1")(x)
    rpn_outputs = rpn.build_rpn_model(1, 3, 4)(x)
    rois = keras.Input((5, 4, 4, 2), name="input_rois")
    y = keras.layers.TimeDistributed(keras.layers.Conv2D(6, 4), name="mrcnn_class_conv1")(rois)
    y = keras.layers.TimeDistributed(keras.layers.Flatten(), name="flatten")(y)
    logits = keras.layers.TimeDistributed(keras.layers.Dense(num_classes), name="mrcnn_class_logits")(y)
    masks = keras.layers.TimeDistributed(keras.layers.Conv2D(num_classes, 1), name="mrcnn_mask")(rois)
    return keras.Model([image, rois], rpn_outputs + [logits, masks])


KERAS2_WEIGHT_NAMES = {
    "conv1": ["conv1/kernel:0", "conv1/bias:0"],
    "bn_conv1": ["bn_conv1/gamma:0", "bn_conv1/beta:0", "bn_conv1/moving_mean:0", "bn_conv1/moving_variance:0"],
    "rpn_model": ["rpn_conv_shared/kernel:0", "rpn_conv_shared/bias:0", "rpn_class_raw/kernel:0",
                  "rpn_class_raw/bias:0", "rpn_bbox_pred/kernel:0", "rpn_bbox_pred/bias:0"],
    "mrcnn_class_conv1": ["mrcnn_class_conv1/kernel:0", "mrcnn_class_conv1/bias:0"],
    "mrcnn_class_logits": ["mrcnn_class_logits/kernel:0", "mrcnn_class_logits/bias:0"],
    "mrcnn_mask": ["mrcnn_mask/kernel:0", "mrcnn_mask/bias:0"],
}


def random_layers(model, seed=0, names=None):
    """{layer: [(Keras 2 weight name, random array of the model's shape), ...]} for the layers with weights."""
    rng = np.random.default_rng(seed)
    saved = {}
    for layer in model.layers:
        if layer.weights and (names is None or layer.name in names):
            saved[layer.name] = [(name, rng.normal(size=tuple(w.shape)).astype(np.float32))
                                 for name, w in zip(KERAS2_WEIGHT_NAMES[layer.name], layer.weights)]
    return saved


def write_keras2(path, saved, root=None, extra_empty=("input_image",)):
    """Write `saved` the way Keras 2's save_weights (root=None) or model.save (root="model_weights") did."""
    with h5py.File(path, "w") as f:
        group = f.create_group(root) if root else f
        names = list(extra_empty) + list(saved)
        group.attrs["layer_names"] = np.array([n.encode("utf8") for n in names])
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.2.4"
        for name in extra_empty:
            group.create_group(name).attrs["weight_names"] = np.array([], dtype="S1")
        for name, items in saved.items():
            layer_group = group.create_group(name)
            layer_group.attrs["weight_names"] = np.array([w.encode("utf8") for w, _ in items])
            for weight_name, value in items:
                layer_group.create_dataset(weight_name, data=value)
        if root:
            f.attrs["model_config"] = b"{}"
            f.create_group("optimizer_weights")
    return path


def current(model):
    return {layer.name: [w.numpy().copy() for w in layer.weights] for layer in model.layers if layer.weights}


def assert_layer_equals(model, name, arrays):
    values = [w.numpy() for w in model.get_layer(name).weights]
    assert len(values) == len(arrays)
    for value, array in zip(values, arrays):
        assert np.array_equal(value, array), name


@pytest.fixture(scope="module")
def model_pair():
    return small_model(), small_model()


@pytest.mark.parametrize("root", [None, "model_weights"])
def test_load_every_weight_by_name(tmp_path, root):
    model = small_model()
    saved = random_layers(model)
    path = write_keras2(tmp_path / "w.h5", saved, root=root)
    report = weights.load_weights(model, path)
    assert sorted(report.loaded) == sorted(saved)
    assert report.missing == report.unused == report.skipped == []
    for name, items in saved.items():
        assert_layer_equals(model, name, [value for _, value in items])
    # The nested model's weights really are the inner layers' (not merely the same shapes).
    inner = model.get_layer("rpn_model").get_layer("rpn_class_raw")
    assert np.array_equal(inner.kernel.numpy(), saved["rpn_model"][2][1])
    assert "loaded 6 layers" in str(report)


def test_exclude_leaves_layers_untouched(tmp_path):
    model = small_model()
    before = current(model)
    path = write_keras2(tmp_path / "w.h5", random_layers(model))
    report = weights.load_weights(model, path, exclude=["mrcnn_class_logits", "mrcnn_mask", "not_a_layer"])
    assert sorted(report.skipped) == ["mrcnn_class_logits", "mrcnn_mask"]
    assert report.reasons["mrcnn_mask"] == "excluded"
    for name in ("mrcnn_class_logits", "mrcnn_mask"):
        assert_layer_equals(model, name, before[name])
    assert not np.array_equal(model.get_layer("conv1").kernel.numpy(), before["conv1"][0])


def test_missing_and_unused_layers_are_listed(tmp_path):
    model = small_model()
    before = current(model)
    saved = random_layers(model, names={"conv1", "bn_conv1", "rpn_model"})
    saved["fpn_c5p5"] = [("fpn_c5p5/kernel:0", np.ones((1, 1, 8, 4), np.float32))]
    report = weights.load_weights(model, write_keras2(tmp_path / "w.h5", saved))
    assert sorted(report.missing) == sorted(HEADS)
    assert report.unused == ["fpn_c5p5"]
    for name in HEADS:
        assert_layer_equals(model, name, before[name])
    assert "missing" in str(report) and "fpn_c5p5" in str(report)


def test_shape_mismatch_names_layer_and_changes_nothing(tmp_path):
    path = write_keras2(tmp_path / "coco.h5", random_layers(small_model(num_classes=3)))
    model = small_model(num_classes=5)
    before = current(model)
    with pytest.raises(WeightShapeError) as caught:
        weights.load_weights(model, path)
    message = str(caught.value)
    assert "coco.h5" in message and "mrcnn_class_logits" in message and "kernel:0" in message
    assert "(6, 3)" in message and "(6, 5)" in message
    for name, arrays in before.items():
        assert_layer_equals(model, name, arrays)

    report = weights.load_weights(model, path, skip_mismatch=True)
    assert sorted(report.skipped) == ["mrcnn_class_logits", "mrcnn_mask"]
    assert "(6, 3)" in report.reasons["mrcnn_class_logits"]
    assert "conv1" in report.loaded and "mrcnn_class_conv1" in report.loaded
    assert_layer_equals(model, "mrcnn_mask", before["mrcnn_mask"])

    report = weights.load_weights(model, path, exclude=["mrcnn_class_logits", "mrcnn_mask"])
    assert len(report.loaded) == 4


def test_weight_count_mismatch(tmp_path, model_pair):
    model = model_pair[0]
    saved = random_layers(model, names={"conv1"})
    saved["conv1"] = saved["conv1"][:1]
    with pytest.raises(WeightFileError, match=r"w\.h5.*1 weights for layer 'conv1'.*has 2"):
        weights.load_weights(model, write_keras2(tmp_path / "w.h5", saved))


def test_bad_files(tmp_path, model_pair):
    model = model_pair[0]
    with pytest.raises(WeightFileNotFound, match="nowhere.h5"):
        weights.load_weights(model, tmp_path / "nowhere.h5")
    with pytest.raises(FileNotFoundError):
        weights.load_weights(model, tmp_path / "nowhere.h5")
    text = tmp_path / "notes.h5"
    text.write_text("not weights")
    with pytest.raises(WeightFileError, match="notes.h5: not an HDF5 file"):
        weights.load_weights(model, text)
    with pytest.raises(WeightFileError, match="folder"):
        weights.load_weights(model, tmp_path)
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_dataset("x", data=[1])
    with pytest.raises(WeightFileError, match="empty.h5.*layer_names"):
        weights.load_weights(model, tmp_path / "empty.h5")
    keras3 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    keras3.save_weights(tmp_path / "new.weights.h5")
    with pytest.raises(WeightFileError, match="Keras 3"):
        weights.load_weights(model, tmp_path / "new.weights.h5")
    with h5py.File(tmp_path / "broken.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"conv1"])
        f.create_group("conv1").attrs["weight_names"] = np.array([b"conv1/kernel:0"])
    with pytest.raises(WeightFileError, match="broken.h5.*conv1/kernel:0"):
        weights.load_weights(model, tmp_path / "broken.h5")


def test_save_then_load_round_trip(tmp_path, model_pair):
    source, target = model_pair
    for variable in source.weights:
        variable.assign(np.random.default_rng(len(variable.path)).normal(size=tuple(variable.shape)))
    path = weights.save_weights(source, tmp_path / "ckpt" / "mask_rcnn_t_0001.h5")
    assert [p.name for p in path.parent.iterdir()] == ["mask_rcnn_t_0001.h5"]   # no temp file left behind

    with h5py.File(path, "r") as f:   # the Keras 2 layout, read back with h5py alone
        layer_names = [n.decode() for n in f.attrs["layer_names"]]
        assert layer_names == [layer.name for layer in source.layers]
        assert [n.decode() for n in f["rpn_model"].attrs["weight_names"]] == KERAS2_WEIGHT_NAMES["rpn_model"]
        assert [n.decode() for n in f["mrcnn_class_conv1"].attrs["weight_names"]] == \
            KERAS2_WEIGHT_NAMES["mrcnn_class_conv1"]
        assert [n.decode() for n in f["bn_conv1"].attrs["weight_names"]] == KERAS2_WEIGHT_NAMES["bn_conv1"]
        assert np.array_equal(f["conv1"]["conv1/kernel:0"][()], source.get_layer("conv1").kernel.numpy())

    report = weights.load_weights(target, path)
    assert len(report.loaded) == 6 and not report.missing and not report.unused
    for layer in source.layers:
        assert_layer_equals(target, layer.name, [w.numpy() for w in layer.weights])
    assert weights.load_weights(target, path, by_name=False).loaded == report.loaded


def test_save_is_atomic(tmp_path, model_pair, monkeypatch):
    model = model_pair[0]
    path = tmp_path / "ckpt.h5"
    path.write_bytes(b"previous checkpoint")
    calls = []

    def failing_convert(value):
        calls.append(value)
        if len(calls) > 3:
            raise RuntimeError("disk full")
        return np.asarray(value)

    monkeypatch.setattr(keras.ops, "convert_to_numpy", failing_convert)
    with pytest.raises(RuntimeError, match="disk full"):
        weights.save_weights(model, path)
    assert path.read_bytes() == b"previous checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.h5"]


def test_load_by_order(tmp_path):
    model = small_model()
    saved = random_layers(model)
    renamed = {f"layer_{i}": items for i, items in enumerate(saved.values())}
    path = write_keras2(tmp_path / "w.h5", renamed)
    by_name = weights.load_weights(model, path)
    assert by_name.loaded == [] and len(by_name.missing) == 6 and len(by_name.unused) == 6
    report = weights.load_weights(model, path, by_name=False)
    assert report.loaded == list(saved)
    for name, items in saved.items():
        assert_layer_equals(model, name, [value for _, value in items])

    del renamed["layer_5"]
    with pytest.raises(WeightFileError, match="file has 5, the model 6"):
        weights.load_weights(model, write_keras2(tmp_path / "short.h5", renamed), by_name=False)


def test_long_name_lists_are_split_and_joined(tmp_path, model_pair, monkeypatch):
    source, target = model_pair
    for variable in source.weights:
        variable.assign(np.full(tuple(variable.shape), 0.5))
    monkeypatch.setattr(weights, "HDF5_ATTRIBUTE_LIMIT", 40)
    path = weights.save_weights(source, tmp_path / "w.h5")
    with h5py.File(path, "r") as f:
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs
        assert "weight_names" not in f["rpn_model"].attrs
    report = weights.load_weights(target, path)
    assert len(report.loaded) == 6
    assert np.all(target.get_layer("bn_conv1").moving_variance.numpy() == 0.5)
