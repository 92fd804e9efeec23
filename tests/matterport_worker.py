"""Runs Matterport's original Mask R-CNN (PyPI mrcnn==0.2) in its own process, as a test oracle.

    python tests/matterport_worker.py SITE JOB.json

SITE is the folder `tests.matterport_reference.install()` filled (Matterport's package and tf-keras,
installed with --no-deps); JOB.json says what to do (`run_job`). Nothing of Matterport's is copied
here: its modules are read from SITE and loaded under the name `matterport_mrcnn`, with the few
changes it needs to run on TensorFlow 2 applied to its source text at load time (SOURCE_FIXES):

- `keras` is tf-keras (Keras 2, which Matterport was written for); `keras.engine` a module whose
  `Layer` is tf-keras' Layer; `distutils.version.LooseVersion` (gone from Python 3.12) a small
  stand-in that compares release numbers;
- TensorFlow 1 names it calls: tf.log, tf.sets.set_intersection, tf.sparse_tensor_to_dense,
  tf.to_float, tf.random_shuffle;
- two lines that need a static shape TensorFlow 2 does not give (SOURCE_FIXES).

This file must not import our `mrcnn`: in this process `mrcnn` is Matterport's (only our toy data sets,
`mrcnn.samples`, are read from this repository: see _MatterportFinder).
"""
import importlib.abc
import importlib.util
import json
import re
import sys
import time
import types
from pathlib import Path

PACKAGE = "matterport_mrcnn"

# (module, the line as Matterport wrote it, the line run instead): each must occur exactly once.
SOURCE_FIXES = (
    ("model", "mrcnn_bbox = KL.Reshape((s[1], num_classes, 4), name=\"mrcnn_bbox\")(x)",
     "mrcnn_bbox = KL.Reshape((-1, num_classes, 4), name=\"mrcnn_bbox\")(x)"),
    ("model", "indices = tf.stack([tf.range(probs.shape[0]), class_ids], axis=1)",
     "indices = tf.stack([tf.range(tf.shape(probs)[0]), class_ids], axis=1)"),
)


class LooseVersion:
    """Release numbers compared part by part, numbers as numbers (all Matterport asks of it)."""

    def __init__(self, text):
        self.parts = tuple(int(p) if p.isdigit() else p for p in re.findall(r"\d+|[a-z]+", str(text)))

    def __ge__(self, other):
        return self.parts >= LooseVersion(other).parts if not isinstance(other, LooseVersion) else self.parts >= other.parts

    def __lt__(self, other):
        return not self >= other


def install_aliases():
    """Make `import keras`, `keras.engine`, `distutils.version` and TF1 names what Matterport expects."""
    import tensorflow as tf
    import tf_keras

    engine = types.ModuleType("keras.engine")
    engine.Layer = tf_keras.layers.Layer
    tf_keras.engine = engine
    sys.modules["keras"] = tf_keras
    for name in ("backend", "layers", "models", "utils", "callbacks", "optimizers", "regularizers"):
        sys.modules[f"keras.{name}"] = getattr(tf_keras, name)
    sys.modules["keras.engine"] = engine
    try:
        from distutils.version import LooseVersion as _real  # noqa: F401  (Python <= 3.11)
    except ImportError:
        distutils = types.ModuleType("distutils")
        version = types.ModuleType("distutils.version")
        version.LooseVersion = LooseVersion
        distutils.version = version
        sys.modules["distutils"], sys.modules["distutils.version"] = distutils, version
    tf.log = tf.math.log
    tf.sets.set_intersection = tf.sets.intersection
    tf.sparse_tensor_to_dense = tf.sparse.to_dense
    tf.to_float = lambda x, name="ToFloat": tf.cast(x, tf.float32, name=name)
    tf.random_shuffle = tf.random.shuffle


class _FixedSourceLoader(importlib.abc.SourceLoader):
    """Loads one of Matterport's modules from SITE with SOURCE_FIXES applied to its text.

    Its file name is the real one plus FIXED_SUFFIX, a file that does not exist: so whatever reads
    the source again (tracebacks, and TensorFlow's autograph, which converts functions from their
    source) asks this loader for it, and sees the fixed text rather than the file on disk.
    """

    FIXED_SUFFIX = ".fixed-at-load"

    def __init__(self, path, module):
        self.path, self.module = Path(path), module

    def get_filename(self, fullname):
        return str(self.path) + self.FIXED_SUFFIX

    def get_data(self, path):
        text = self.path.read_text()
        for module, old, new in SOURCE_FIXES:
            if module == self.module:
                if text.count(old) != 1:
                    raise RuntimeError(f"Matterport's {module}.py: expected once, found {text.count(old)} "
                                       f"times: {old!r} (another release of mrcnn?)")
                text = text.replace(old, new)
        return text.encode()


class _MatterportFinder(importlib.abc.MetaPathFinder):
    """`mrcnn` and `matterport_mrcnn` (and their modules) both come from SITE/mrcnn.

    Except `mrcnn.samples`, the toy data sets (shapes) the tests hand the oracle: Matterport's package
    has none, so they come from this repository's mrcnn/samples/, and build on Matterport's `utils`.
    """

    def __init__(self, site):
        self.root = Path(site) / "mrcnn"
        self.samples = Path(__file__).resolve().parents[1] / "mrcnn"

    def find_spec(self, fullname, path=None, target=None):
        head, _, tail = fullname.partition(".")
        if head not in ("mrcnn", PACKAGE):
            return None
        if fullname != head and f"{PACKAGE}.{tail}" in sys.modules:     # one module object for both names
            return importlib.util.spec_from_loader(fullname, _Alias(f"{PACKAGE}.{tail}"))
        if not tail:
            return importlib.util.spec_from_file_location(fullname, self.root / "__init__.py",
                                                          submodule_search_locations=[str(self.root)])
        if tail.partition(".")[0] == "samples":
            place = self.samples.joinpath(*tail.split("."))
            if place.is_dir():
                return importlib.util.spec_from_file_location(fullname, place / "__init__.py",
                                                              submodule_search_locations=[str(place)])
            return importlib.util.spec_from_file_location(fullname, place.with_suffix(".py"))
        file = self.root / f"{tail}.py"
        return importlib.util.spec_from_file_location(fullname, file, loader=_FixedSourceLoader(file, tail))


class _Alias(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        return sys.modules[self.target]

    def exec_module(self, module):
        pass


def load_matterport(site):
    """Import Matterport's model, utils and config from SITE; returns the `model` module."""
    sys.path.insert(0, str(site))
    install_aliases()
    sys.meta_path.insert(0, _MatterportFinder(site))
    import importlib
    package = importlib.import_module(PACKAGE)
    sys.modules["mrcnn"] = package
    for name in ("utils", "config", "model", "visualize"):
        module = importlib.import_module(f"{PACKAGE}.{name}")
        sys.modules[f"mrcnn.{name}"] = module
        setattr(package, name, module)
    return package.model


def make_config(config_module, values):
    """An instance of a Config subclass with `values` as class attributes (Matterport's way)."""
    attrs = {k: (tuple(v) if k in ("RPN_ANCHOR_SCALES",) else v) for k, v in values.items()}
    import numpy as np
    for key in ("MEAN_PIXEL", "RPN_BBOX_STD_DEV", "BBOX_STD_DEV"):
        if key in attrs:
            attrs[key] = np.array(attrs[key])
    return type("ReferenceConfig", (config_module.Config,), attrs)()


def run_job(site, job):
    import numpy as np
    import tensorflow as tf

    if job.get("threads"):      # bench/bench_mrcnn.py --threads: the same thread pools as ours gets
        tf.config.threading.set_intra_op_parallelism_threads(int(job["threads"]))
        tf.config.threading.set_inter_op_parallelism_threads(int(job["threads"]))
    model_module = load_matterport(site)
    import tf_keras
    config = make_config(sys.modules[f"{PACKAGE}.config"], job["config"])
    tf_keras.utils.set_random_seed(int(job.get("seed", 0)))
    model = model_module.MaskRCNN(mode="inference", config=config, model_dir=job.get("model_dir", "."))
    if job.get("weights_in"):
        model.keras_model.load_weights(job["weights_in"], by_name=True)
    for name, factor in job.get("scale_weights", {}).items():
        # Random weights saturate the class softmax (every score 1.0: detections tie); a smaller
        # classifier gives scores spread as a trained model's are.
        layer = model.keras_model.get_layer(name)
        layer.set_weights([w * factor for w in layer.get_weights()])
    for name, shift in job.get("shift_bias", {}).items():
        layer = model.keras_model.get_layer(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, bias + shift])
    if job.get("weights_out"):
        model.keras_model.save_weights(job["weights_out"])
    out = {}
    if job.get("images"):
        with np.load(job["images"]) as data:
            images = [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]
        batch = int(config.BATCH_SIZE)
        layers = list(job.get("layers", []))
        probe = None
        if layers:
            keras_model = model.keras_model
            probe = tf_keras.Model(keras_model.inputs, [keras_model.get_layer(n).output for n in layers])
        for start in range(0, len(images), batch):
            chunk = images[start:start + batch]
            molded, metas, windows = model.mold_inputs(chunk)
            anchors = np.broadcast_to(model.get_anchors(molded[0].shape), (batch,) + model.get_anchors(
                molded[0].shape).shape)
            out[f"anchors_{start}"] = model.get_anchors(molded[0].shape)
            for i in range(len(chunk)):
                out[f"molded_{start + i}"] = molded[i]
                out[f"meta_{start + i}"] = metas[i]
                out[f"window_{start + i}"] = windows[i]
            if probe is not None:
                values = probe.predict([molded, metas, anchors], verbose=0)
                values = values if isinstance(values, list) else [values]
                for name, value in zip(layers, values):
                    for i in range(len(chunk)):
                        out[f"{name}_{start + i}"] = np.asarray(value[i])
            if job.get("detect"):
                for i, result in enumerate(model.detect(chunk, verbose=0)):
                    for key, value in result.items():
                        out[f"detect_{key}_{start + i}"] = np.asarray(value)
        repeats = int(job.get("time_repeats", 0))
        if repeats:
            chunk = images[:batch]
            model.detect(chunk, verbose=0)                  # warm up: graph tracing
            seconds = []
            for _ in range(repeats):
                began = time.perf_counter()
                model.detect(chunk, verbose=0)
                seconds.append(time.perf_counter() - began)
            out["detect_seconds"] = np.asarray(seconds)
            import resource             # this process's peak resident memory (Linux reports KiB)
            out["peak_rss_bytes"] = np.asarray(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    if job.get("out"):
        np.savez(job["out"], **out)
    print(json.dumps({"ok": True, "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__}))


if __name__ == "__main__":
    site, job_file = sys.argv[1], sys.argv[2]
    run_job(site, json.loads(Path(job_file).read_text()))


def run_calls(site, calls_file, out_file):
    """Job kind of tests/test_mrcnn_matterport_api.py: call Matterport's functions on given arguments.

    calls_file: a pickle of a list of dicts {key, module ("model", "utils", "visualize"),
    function, args, kwargs, seed}; an argument {"matterport_config": {...}} becomes Matterport's
    Config with those values (make_config). Each call runs with numpy's and Python's random state
    seeded and its printed text captured; writes a pickle {key: {"result", "stdout", "html", "figure"}}:
    "html" the HTML given to IPython's display, "figure" the texts, tick labels, titles and line
    data of the figure it drew (matplotlib's Agg backend).
    """
    import contextlib
    import io
    import pickle
    import random

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    load_matterport(site)
    import IPython.display
    shown = []
    IPython.display.display = lambda *objects, **_: shown.extend(getattr(o, "data", o) for o in objects)
    results = {}
    for call in pickle.loads(Path(calls_file).read_bytes()):
        module = sys.modules[f"{PACKAGE}.{call['module']}"]
        np.random.seed(call.get("seed", 0))
        random.seed(call.get("seed", 0))
        shown.clear()
        printed = io.StringIO()
        def resolved(value):
            if isinstance(value, dict) and set(value) == {"matterport_config"}:
                return make_config(sys.modules[f"{PACKAGE}.config"], value["matterport_config"])
            return value

        args = [resolved(value) for value in call.get("args", ())]
        kwargs = {name: resolved(value) for name, value in call.get("kwargs", {}).items()}
        with contextlib.redirect_stdout(printed):
            result = getattr(module, call["function"])(*args, **kwargs)
        figure = None
        if plt.get_fignums():
            axes = plt.gcf().axes
            figure = {"titles": [ax.get_title() for ax in axes],
                      "texts": [[t.get_text() for t in ax.texts] for ax in axes],
                      "xticklabels": [[t.get_text() for t in ax.get_xticklabels()] for ax in axes],
                      "yticklabels": [[t.get_text() for t in ax.get_yticklabels()] for ax in axes],
                      "lines": [[np.asarray(line.get_xydata()) for line in ax.lines] for ax in axes]}
            plt.close("all")
        results[call["key"]] = {"result": result, "stdout": printed.getvalue(), "html": list(shown),
                                "figure": figure}
    Path(out_file).write_bytes(pickle.dumps(results))


# Matterport's training network (build(mode="training")) on TensorFlow 2, for run_training_graph only:
# lambdas that read a tensor from outside their inputs, which Keras 2's functional models on TF 2
# cannot trace. Each does what Matterport's line does: the image's shape comes in as an input,
# and the anchors (a numpy array) are bound when the lambda is made rather than looked up later,
# when `anchors` names the layer's output (a constant rather than the tf.Variable "hack" it needed).
TRAINING_SOURCE_FIXES = (
    ("model", "gt_boxes = KL.Lambda(lambda x: norm_boxes_graph(\n"
              "                x, K.shape(input_image)[1:3]))(input_gt_boxes)",
     "gt_boxes = KL.Lambda(lambda x: norm_boxes_graph(\n"
     "                x[0], K.shape(x[1])[1:3]))([input_gt_boxes, input_image])"),
    ("model", "anchors = KL.Lambda(lambda x: tf.Variable(anchors), name=\"anchors\")(input_image)",
     "anchors = KL.Lambda(lambda x, a=anchors: tf.constant(a), name=\"anchors\")(input_image)"),
)


def run_training_graph(site, job_file, out_file):
    """Job kind of tests/test_matterport_losses.py: Matterport's training network on one batch.

    job_file: a pickle of a dict {config (Matterport's Config values), seed, weights_in,
    scale_weights {layer: factor}, shift_bias {layer: shift} (a nested model's layer as
    "rpn_model/rpn_bbox_pred"), weights_out, batch, layers}.
    Builds MaskRCNN(mode="training") with tf-keras' random initialisation (seeded), loads
    weights_in by name, scales/shifts the named layers, saves the weights to weights_out
    (Keras 2's save_weights: the layout of every Matterport .h5); then, when `batch` is given
    (a dict of arrays named as the network's inputs: input_image, input_image_meta,
    input_rpn_match, input_rpn_bbox, input_gt_class_ids, input_gt_boxes, input_gt_masks), runs
    the network once on it and writes a pickle {layer name: [its output arrays]} for `layers`
    (e.g. the loss layers "rpn_class_loss" ... "mrcnn_mask_loss", "ROI", "proposal_targets").
    The network is called directly rather than with predict(): the loss layers give scalars,
    which predict() cannot stack over batches.
    """
    import pickle

    import numpy as np

    global SOURCE_FIXES
    SOURCE_FIXES = SOURCE_FIXES + TRAINING_SOURCE_FIXES        # this process only: it loads Matterport once
    model_module = load_matterport(site)
    import tf_keras
    job = pickle.loads(Path(job_file).read_bytes())
    config = make_config(sys.modules[f"{PACKAGE}.config"], job["config"])
    tf_keras.utils.set_random_seed(int(job.get("seed", 0)))
    model = model_module.MaskRCNN(mode="training", config=config, model_dir=str(Path(out_file).parent))
    keras_model = model.keras_model
    if job.get("weights_in"):
        keras_model.load_weights(job["weights_in"], by_name=True)

    def layer_at(path):                 # "rpn_model/rpn_bbox_pred": a layer of a nested model
        layer = keras_model
        for name in path.split("/"):
            layer = layer.get_layer(name)
        return layer

    for name, factor in job.get("scale_weights", {}).items():
        layer = layer_at(name)
        layer.set_weights([w * factor for w in layer.get_weights()])
    for name, shift in job.get("shift_bias", {}).items():
        layer = layer_at(name)
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel, bias + shift])
    if job.get("weights_out"):
        keras_model.save_weights(job["weights_out"])
    results = {}
    if job.get("batch") is not None:
        names = list(job["layers"])
        outputs = [keras_model.get_layer(name).output for name in names]
        counts = [len(o) if isinstance(o, (list, tuple)) else 1 for o in outputs]
        flat = [t for o in outputs for t in (o if isinstance(o, (list, tuple)) else [o])]
        probe = tf_keras.Model(keras_model.inputs, flat)
        inputs = [job["batch"][tensor.name.split(":")[0]] for tensor in keras_model.inputs]
        values = [np.asarray(v) for v in probe(inputs, training=False)]
        for name, count in zip(names, counts):
            results[name], values = values[:count], values[count:]
    Path(out_file).write_bytes(pickle.dumps(results))
