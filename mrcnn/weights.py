"""Loading and saving HDF5 weight files by layer name, in the Keras 2 layout.

Keras 3 no longer reads the Keras 2 `.h5` layout by layer name, yet that is the format of
Matterport's COCO weights, the ImageNet ResNet-50 weights and every checkpoint made with
Matterport's code. This module reads it (and writes it, so our checkpoints are the same format):

    file attrs "layer_names"           names of the saved layers, in model order
    /<layer>            attrs "weight_names", e.g. [b"conv1/kernel:0", b"conv1/bias:0"]
    /<layer>/<weight name>             one dataset per weight, in the layer's weight order

Full-model files (Keras 2 `model.save`) hold the same under a top-level "model_weights"
group. A nested model (the shared "rpn_model") is one group holding its inner layers' weights;
a TimeDistributed wrapper holds its inner layer's weights. Weights are matched to a layer's
`weights` list by position (BatchNorm: gamma, beta, moving_mean, moving_variance), as Keras 2 did.
"""
import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import keras
import numpy as np

# HDF5 refuses attributes bigger than its object header (64 KiB); Keras 2 split longer name
# lists into "<name>0", "<name>1", ... and so do we.
HDF5_ATTRIBUTE_LIMIT = 64512


class WeightFileError(ValueError):
    """A weight file that cannot be loaded: the message names the file and the problem."""


class WeightFileNotFound(WeightFileError, FileNotFoundError):
    """The weight file does not exist."""


class WeightShapeError(WeightFileError):
    """A saved weight's shape differs from the model's."""


@dataclass
class LoadReport:
    """What load_weights did, layer by layer (model layer names unless said otherwise)."""

    path: str
    loaded: list = field(default_factory=list)    # layers whose weights were all set
    missing: list = field(default_factory=list)   # model layers with weights the file lacks (left as they were)
    unused: list = field(default_factory=list)    # file layers with weights the model lacks
    skipped: list = field(default_factory=list)   # layers left as they were: excluded or mismatched
    reasons: dict = field(default_factory=dict)   # skipped layer -> why

    def __str__(self):
        lines = [f"{self.path}: loaded {len(self.loaded)} layers, {len(self.missing)} missing from the file, "
                 f"{len(self.unused)} in the file but not the model, {len(self.skipped)} skipped"]
        for title, names in (("missing", self.missing), ("unused", self.unused)):
            if names:
                lines.append(f"  {title}: {_short_list(names)}")
        for name in self.skipped:
            lines.append(f"  skipped {name}: {self.reasons.get(name, '')}")
        return "\n".join(lines)


def _short_list(names, limit=8):
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


# -- reading ------------------------------------------------------------------------------
def _text(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _read_name_list(group, name):
    """A list-of-names attribute, joining Keras 2's chunks "<name>0", "<name>1", ... if split."""
    if name in group.attrs:
        return [_text(item) for item in np.atleast_1d(group.attrs[name])]
    names, chunk = [], 0
    while f"{name}{chunk}" in group.attrs:
        names.extend(_text(item) for item in np.atleast_1d(group.attrs[f"{name}{chunk}"]))
        chunk += 1
    return names if chunk else None


def _open(path):
    """Open `path` for reading as HDF5; clear errors for a missing or non-HDF5 file."""
    path = Path(path)
    if not path.exists():
        raise WeightFileNotFound(f"{path}: weight file not found")
    if path.is_dir():
        raise WeightFileError(f"{path}: expected an HDF5 weight file, found a folder")
    if not h5py.is_hdf5(path):
        raise WeightFileError(f"{path}: not an HDF5 file (expected a Keras .h5 weight file)")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise WeightFileError(f"{path}: cannot open the HDF5 file ({err})") from None


def _weights_group(handle, path):
    """The group holding "layer_names": the file root or its "model_weights" group."""
    for group in (handle, handle.get("model_weights")):
        if isinstance(group, h5py.Group) and _read_name_list(group, "layer_names") is not None:
            return group
    if isinstance(handle.get("layers"), h5py.Group):
        raise WeightFileError(f"{path}: a Keras 3 weight file (model.save_weights to .weights.h5), not the "
                              "Keras 2 layout read here; load it with keras_model.load_weights(path)")
    raise WeightFileError(f"{path}: no 'layer_names' attribute at the top level or in 'model_weights'; "
                          "not a Keras weight file")


def _read_file_layers(group, path):
    """{layer name: [(weight name, array), ...]} for every saved layer that has weights, in file order."""
    layers = {}
    for layer_name in _read_name_list(group, "layer_names"):
        if layer_name not in group:
            raise WeightFileError(f"{path}: layer {layer_name!r} is listed in 'layer_names' but has no group")
        layer_group = group[layer_name]
        weight_names = _read_name_list(layer_group, "weight_names") or []
        arrays = []
        for weight_name in weight_names:
            if weight_name not in layer_group:
                raise WeightFileError(f"{path}: layer {layer_name!r} lists weight {weight_name!r} "
                                      "but the file has no such dataset")
            arrays.append((weight_name, layer_group[weight_name]))
        if arrays:
            layers[layer_name] = arrays
    return layers


# -- matching -----------------------------------------------------------------------------
def _model_layers(keras_model):
    """Top-level layers of the model (of the inner model of a multi-GPU wrapper, as Matterport)."""
    model = getattr(keras_model, "inner_model", keras_model)
    return list(model.layers)


def _check_layer(layer, saved):
    """Why `saved` cannot go into `layer` (None when it can): count, then each shape."""
    variables = layer.weights
    if len(saved) != len(variables):
        return (f"the file has {len(saved)} weights for layer {layer.name!r}, the model layer has "
                f"{len(variables)}")
    for (weight_name, dataset), variable in zip(saved, variables):
        if tuple(dataset.shape) != tuple(variable.shape):
            return (f"layer {layer.name!r}, weight {weight_name!r}: file shape {tuple(dataset.shape)}, "
                    f"model shape {tuple(variable.shape)} ({variable.path})")
    return None


def _assign(layer, saved):
    for (_, dataset), variable in zip(saved, layer.weights):
        variable.assign(np.asarray(dataset[()], dtype=variable.dtype))


def load_weights(keras_model, path, by_name=True, exclude=None, skip_mismatch=False):
    """Set `keras_model`'s weights from a Keras 2 layout HDF5 file; returns a LoadReport.

    by_name=True: file layers go to the model layers of the same name; model layers absent
    from the file keep their weights (report.missing), file layers absent from the model are
    ignored (report.unused). by_name=False: the file's layers with weights go, in order, to
    the model's layers with weights (the counts must agree), as Keras 2 loaded.
    exclude: layer names to leave untouched (e.g. the class-specific heads when the number of
    classes differs); with by_name=False they are dropped from both the file and the model
    before pairing. skip_mismatch=True skips (and reports) a layer whose weight count or
    shapes differ instead of raising WeightShapeError / WeightFileError.
    Nothing is assigned before every check has passed, so an error leaves the model unchanged.
    """
    exclude = set(exclude or ())
    report = LoadReport(path=str(path))
    with _open(path) as handle:
        file_layers = _read_file_layers(_weights_group(handle, path), path)
        model_layers = [layer for layer in _model_layers(keras_model) if layer.weights]
        for layer in model_layers:
            if layer.name in exclude:
                report.skipped.append(layer.name)
                report.reasons[layer.name] = "excluded"
        wanted = [layer for layer in model_layers if layer.name not in exclude]

        if by_name:
            pairs = []
            for layer in wanted:
                if layer.name in file_layers:
                    pairs.append((layer, file_layers[layer.name]))
                else:
                    report.missing.append(layer.name)
            model_names = {layer.name for layer in model_layers}
            report.unused = [name for name in file_layers if name not in model_names]
        else:
            saved_in_order = [(name, arrays) for name, arrays in file_layers.items() if name not in exclude]
            if len(saved_in_order) != len(wanted):
                raise WeightFileError(
                    f"{path}: by_name=False needs the same number of layers with weights in the file and the "
                    f"model; the file has {len(saved_in_order)}, the model {len(wanted)}"
                    f"{' (after exclude)' if exclude else ''}. Load by name instead (by_name=True)")
            pairs = [(layer, arrays) for layer, (_, arrays) in zip(wanted, saved_in_order)]

        ready = []
        for layer, saved in pairs:
            problem = _check_layer(layer, saved)
            if problem is None:
                ready.append((layer, saved))
            elif skip_mismatch:
                report.skipped.append(layer.name)
                report.reasons[layer.name] = problem
            else:
                error = WeightShapeError if len(saved) == len(layer.weights) else WeightFileError
                raise error(f"{path}: {problem}. Pass exclude=[{layer.name!r}] or skip_mismatch=True "
                            "to leave this layer as it is")
        for layer, saved in ready:
            _assign(layer, saved)
            report.loaded.append(layer.name)
    return report


# -- writing ------------------------------------------------------------------------------
def _weight_names(layer):
    """Keras 2 style names "<owner layer>/<weight>:0" for the layer's weights, unique within it.

    A nested model names each weight by the inner layer that owns it (e.g.
    "rpn_conv_shared/kernel:0"); any other layer by its own name (so a TimeDistributed
    wrapper's weights read "mrcnn_mask_conv1/kernel:0").
    """
    names, seen = [], set()
    for variable in layer.weights:
        if isinstance(layer, keras.Model):
            base = variable.path
        else:
            base = f"{layer.name}/{variable.name}"
        name, copy = f"{base}:0", 1
        while name in seen:
            name, copy = f"{base}_{copy}:0", copy + 1
        seen.add(name)
        names.append(name)
    return names


def _write_name_list(group, name, values):
    """Store a list of names as a bytes attribute, split into chunks as Keras 2 did when large."""
    data = np.array([value.encode("utf8") for value in values])
    if data.nbytes <= HDF5_ATTRIBUTE_LIMIT:
        group.attrs[name] = data
        return
    per_chunk = max(1, HDF5_ATTRIBUTE_LIMIT // max(1, data.itemsize))
    for chunk, start in enumerate(range(0, len(data), per_chunk)):
        group.attrs[f"{name}{chunk}"] = data[start:start + per_chunk]


def save_weights(keras_model, path):
    """Write every layer's weights to `path` in the Keras 2 HDF5 layout; returns the Path.

    All layers are listed in "layer_names" (those without weights get an empty group), as
    Keras 2 wrote them, so the file also loads with by_name=False. The file is written to a
    temporary name beside `path` and renamed into place, so a crash never leaves half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layers = _model_layers(keras_model)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as handle:
            _write_name_list(handle, "layer_names", [layer.name for layer in layers])
            handle.attrs["backend"] = b"tensorflow"
            handle.attrs["keras_version"] = keras.__version__.encode("utf8")
            for layer in layers:
                group = handle.create_group(layer.name)
                names = _weight_names(layer)
                _write_name_list(group, "weight_names", names)
                for name, variable in zip(names, layer.weights):
                    group.create_dataset(name, data=keras.ops.convert_to_numpy(variable))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
