"""Matterport's public API on our mrcnn: every name their tutorials and users' scripts call.

Oracles: Matterport's own installed source (tests/matterport_reference.py), read with `ast` for
its names and signatures, and run in a subprocess (tests/matterport_worker.run_calls) for its
pure-numpy and plotting functions on the same inputs; our compute_ap averaged by hand; the
shapes data set's own masks; a local HTTP server for the download. Without the package index the
tests that need Matterport's source skip with the reason pip gave.
"""
import ast
import inspect
import io
import os
import pickle
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import keras
import matplotlib
import numpy as np
import pytest
import tensorflow as tf

from mrcnn import box_graph, data, utils, visualize
from mrcnn import config as config_module
from mrcnn import model as modellib
from mrcnn.config import Config
from tests import matterport_reference
from tests.httpfixtures import http_server  # noqa: F401  (the pytest fixture)
from mrcnn.samples.shapes import CLASS_NAMES, ShapesDataset

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TESTS = Path(__file__).resolve().parent
ALL_CLASS_NAMES = ("BG",) + CLASS_NAMES

# Matterport's public names we deliberately do not provide, with the reason. Empty: every name
# exists, those that cannot mean the same in Keras 3 raise an error saying what to use instead.
INTERNAL = {}

# Where our parameters differ from Matterport's (names in order, then defaults), and why.
SIGNATURE_DIFFERENCES = {
    "model.trim_zeros_graph": "the default op name ('trim_zeros' for None) names a TensorFlow op only",
    "visualize.display_instances": "a smaller default figure (8, 8): the notebooks' width, not a screen's",
    "model.MaskRCNN.set_trainable": "verbose 0 by default: ours logs the list (INFO) rather than printing it",
}


class TinyConfig(Config):
    NAME = "api"
    NUM_CLASSES = 1 + 3
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = IMAGE_MAX_DIM = 64
    BACKBONE = "resnet18"
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 64
    RPN_ANCHOR_SCALES = (8, 16, 24, 32, 48)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 32
    PRE_NMS_LIMIT = 500
    POST_NMS_ROIS_TRAINING = 50
    POST_NMS_ROIS_INFERENCE = 30
    TRAIN_ROIS_PER_IMAGE = 12
    MASK_POOL_SIZE = 7
    MASK_SHAPE = [14, 14]
    MINI_MASK_SHAPE = (16, 16)
    MAX_GT_INSTANCES = 5
    STEPS_PER_EPOCH = 1
    VALIDATION_STEPS = 1
    DETECTION_MIN_CONFIDENCE = 0.0


# The values Matterport's Config needs to be TinyConfig (for the oracle's functions).
MATTERPORT_CONFIG = {"matterport_config": {
    "NAME": "api", "NUM_CLASSES": 4, "IMAGE_MIN_DIM": 64, "IMAGE_MAX_DIM": 64, "MINI_MASK_SHAPE": (16, 16),
    "RPN_TRAIN_ANCHORS_PER_IMAGE": 256}}


# -- Matterport's source and its oracle ---------------------------------------------------------

@pytest.fixture(scope="module")
def matterport_source():
    try:
        return matterport_reference.source_dir()
    except matterport_reference.ReferenceUnavailable as err:
        pytest.skip(f"Matterport's reference is unavailable: {err}")


def shapes_dataset(count=4, size=128, seed=1):
    dataset = ShapesDataset()
    dataset.load_shapes(count, size=size, seed=seed)
    dataset.prepare()
    return dataset


def rect_mask(shape, y1, x1, y2, x2):
    mask = np.zeros(shape, dtype=bool)
    mask[y1:y2, x1:x2] = True
    return mask


def ap_case():
    """Three gt instances and five predictions with mask IoUs 0.9, 0.72, 0.58, a false positive and
    a wrong class, so AP changes across IoU thresholds. No prediction meets an already matched gt
    at IoU >= 0.5 (where Matterport's matching has a quirk with the first prediction's match)."""
    shape = (40, 40)
    gt_masks = np.stack([rect_mask(shape, 2, 2, 12, 12), rect_mask(shape, 2, 20, 12, 30),
                         rect_mask(shape, 20, 2, 30, 12)], axis=-1)
    p2 = rect_mask(shape, 20, 2, 30, 8)
    p2[20, 2:4] = False                                   # 58 pixels: IoU 0.58 with gt 2
    pred_masks = np.stack([rect_mask(shape, 2, 2, 12, 11), rect_mask(shape, 2, 20, 11, 28), p2,
                           rect_mask(shape, 32, 32, 38, 38), rect_mask(shape, 20, 2, 30, 12)], axis=-1)
    return dict(gt_box=utils.extract_bboxes(gt_masks), gt_class_id=np.array([1, 2, 1], np.int32), gt_mask=gt_masks,
                pred_box=utils.extract_bboxes(pred_masks), pred_class_id=np.array([1, 2, 1, 1, 2], np.int32),
                pred_score=np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32), pred_mask=pred_masks)


def ap_args(case):
    return [case[k] for k in ("gt_box", "gt_class_id", "gt_mask", "pred_box", "pred_class_id", "pred_score",
                              "pred_mask")]


def rpn_case(seed, anchors_near_each=6, spread=2.0):
    """Random float anchors around three gt boxes (no IoU ties), plus random ones elsewhere."""
    rng = np.random.default_rng(seed)
    gt_boxes = np.array([[4, 4, 24, 20], [30, 10, 60, 40], [8, 36, 28, 60]], np.int32)
    near = np.concatenate([gt_boxes + rng.normal(0, spread, (3, 4)) for _ in range(anchors_near_each)])
    centres = rng.uniform(0, 64, (120, 2))
    sides = rng.uniform(4, 24, (120, 2))
    far = np.concatenate([centres - sides / 2, centres + sides / 2], axis=1)
    anchors = np.concatenate([near, far])
    return anchors, np.array([1, 2, 3], np.int32), gt_boxes


def draw_rois_case():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    rois = np.array([[2, 2, 20, 20], [10, 5, 30, 40], [25, 25, 45, 45], [0, 30, 12, 47]], np.int32)
    refined = rois + np.array([1, -1, 2, 1])
    masks = rng.uniform(0, 1, (4, 14, 14)).astype(np.float32)
    return image, rois, refined, masks, np.array([1, 0, 3, 2], np.int32)


def oracle_calls():
    """The calls Matterport's code answers in one subprocess (see run_calls in the worker)."""
    case = ap_case()
    meta_args = (7, (480, 640, 3), (1024, 1024, 3), (128, 0, 896, 1024), 1.6, np.array([1, 1, 0, 1]))
    images = np.random.default_rng(0).integers(0, 255, (2, 8, 8, 3)).astype(np.uint8)
    mold_config = {"matterport_config": {"NAME": "api", "NUM_CLASSES": 4, "MEAN_PIXEL": [123.7, 116.8, 103.9]}}
    _, ap, precisions, recalls, overlaps = (None,) + utils.compute_ap(*ap_args(case))
    anchors, gt_ids, gt_boxes = rpn_case(0)
    many, many_ids, many_boxes = rpn_case(1, anchors_near_each=30, spread=0.5)
    small_config = {"matterport_config": dict(MATTERPORT_CONFIG["matterport_config"], RPN_TRAIN_ANCHORS_PER_IMAGE=16)}
    roi_image, rois, refined, roi_masks, roi_ids = draw_rois_case()
    log_arrays = [np.linspace(-1.5, 2.25, 12, dtype=np.float32).reshape(3, 4),
                  np.arange(5, dtype=np.int32), np.full((2, 2, 3), 200, np.uint8)]
    calls = [
        dict(key="ap_range", module="utils", function="compute_ap_range", args=ap_args(case)),
        dict(key="ap_range_two", module="utils", function="compute_ap_range", args=ap_args(case),
             kwargs={"iou_thresholds": [0.5, 0.75]}),
        dict(key="matches_score", module="utils", function="compute_matches", args=ap_args(case),
             kwargs={"iou_threshold": 0.5, "score_threshold": 0.75}),
        dict(key="rpn", module="model", function="build_rpn_targets",
             args=[(64, 64, 3), anchors, gt_ids, gt_boxes, MATTERPORT_CONFIG]),
        dict(key="rpn_balanced", module="model", function="build_rpn_targets",
             args=[(64, 64, 3), many, many_ids, many_boxes, small_config]),
        dict(key="meta", module="model", function="compose_image_meta", args=meta_args),
        dict(key="mold", module="model", function="mold_image", args=[images, mold_config]),
        dict(key="load_full", module="model", function="load_image_gt",
             args=[shapes_dataset(), MATTERPORT_CONFIG, 1]),
        dict(key="table", module="visualize", function="display_table",
             args=[[["WEIGHT NAME", "SHAPE"], ["conv1/kernel", (7, 7, 3, 64)], [1.5, None]]]),
        dict(key="overlaps", module="visualize", function="plot_overlaps",
             args=[case["gt_class_id"], case["pred_class_id"][np.argsort(-case["pred_score"])],
                   np.sort(case["pred_score"])[::-1], overlaps, list(ALL_CLASS_NAMES)]),
        dict(key="precision_recall", module="visualize", function="plot_precision_recall",
             args=[ap, precisions, recalls]),
        dict(key="draw_box", module="visualize", function="draw_box",
             args=[np.zeros((12, 12, 3), np.uint8), np.array([2, 3, 9, 8]), (255, 10, 20)]),
        dict(key="draw_rois", module="visualize", function="draw_rois",
             args=[roi_image, rois, refined, roi_masks, roi_ids, list(ALL_CLASS_NAMES)]),
    ]
    calls += [dict(key=f"log_{i}", module="model", function="log", args=[f"array {i}", array])
              for i, array in enumerate(log_arrays)]
    calls.append(dict(key="log_text", module="model", function="log", args=["just text"]))
    return calls, {"log_arrays": log_arrays, "meta_args": meta_args, "images": images,
                   "anchors": (anchors, gt_ids, gt_boxes), "many": (many, many_ids, many_boxes),
                   "ap": (ap, precisions, recalls, overlaps)}


@pytest.fixture(scope="module")
def oracle(matterport_source, tmp_path_factory):
    """Matterport's answers to oracle_calls(), and the inputs they were given."""
    site = matterport_source.parent
    work = tmp_path_factory.mktemp("matterport_api")
    calls, inputs = oracle_calls()
    (work / "calls.pkl").write_bytes(pickle.dumps(calls))
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import matterport_worker as w; "
              "w.run_calls(sys.argv[2], sys.argv[3], sys.argv[4])")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": str(TESTS.parent), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", script, str(TESTS), str(site), str(work / "calls.pkl"),
                           str(work / "out.pkl")], capture_output=True, text=True, timeout=600, env=env, cwd=work)
    if done.returncode != 0:
        raise RuntimeError("Matterport's functions failed:\n" + "\n".join(done.stderr.splitlines()[-15:]))
    return pickle.loads((work / "out.pkl").read_bytes()), inputs


def captured(function, *args, **kwargs):
    printed = io.StringIO()
    with redirect_stdout(printed):
        result = function(*args, **kwargs)
    return result, printed.getvalue()


# -- names and signatures -----------------------------------------------------------------------

OUR_MODULES = {"model": modellib, "utils": utils, "visualize": visualize, "config": config_module}
CLASSES_WITH_METHODS = ("MaskRCNN", "Dataset", "Config")


def matterport_names(source):
    """{(module, qualified name): ast node} of Matterport's public functions, classes and methods."""
    found = {}
    for module in OUR_MODULES:
        tree = ast.parse((source / f"{module}.py").read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                found[(module, node.name)] = node
                if isinstance(node, ast.ClassDef) and node.name in CLASSES_WITH_METHODS:
                    for item in node.body:
                        if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                            found[(module, f"{node.name}.{item.name}")] = item
    return found


def ours(module, qualified):
    target = OUR_MODULES[module]
    for part in qualified.split("."):
        target = getattr(target, part)
    return target


def test_every_public_matterport_name_exists_or_is_listed_internal(matterport_source):
    names = matterport_names(matterport_source)
    assert len(names) > 100, "Matterport's source should hold over a hundred public names"
    missing = []
    for module, qualified in names:
        listed = f"{module}.{qualified}" in INTERNAL
        try:
            ours(module, qualified)
        except AttributeError:
            if not listed:
                missing.append(f"{module}.{qualified}")
    assert not missing, f"Matterport's names missing from our mrcnn: {missing}"
    stale = [name for name in INTERNAL if tuple(name.split(".", 1)) not in names]
    assert not stale, f"INTERNAL lists names Matterport does not have: {stale}"


def literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def test_signatures_take_matterports_arguments(matterport_source):
    """Matterport's parameters, in order, start ours; where both have a default it is the same."""
    wrong = []
    for (module, qualified), node in matterport_names(matterport_source).items():
        if f"{module}.{qualified}" in SIGNATURE_DIFFERENCES:
            continue
        try:
            target = ours(module, qualified)
        except AttributeError:                  # reported by the test above
            continue
        if isinstance(node, ast.ClassDef):
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
            if init is None:
                continue
            node, target = init, target.__init__
        if isinstance(target, property) or not callable(target):
            continue
        theirs = [a.arg for a in node.args.args if a.arg != "self"]
        defaults = dict(zip(reversed([a.arg for a in node.args.args]), reversed(node.args.defaults)))
        parameters = [p for p in inspect.signature(target).parameters.values() if p.name != "self"
                      and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if [p.name for p in parameters[:len(theirs)]] != theirs:
            wrong.append(f"{module}.{qualified}: theirs {theirs}, ours {[p.name for p in parameters]}")
            continue
        for parameter in parameters[:len(theirs)]:
            if parameter.name not in defaults:
                continue
            expected = literal(defaults[parameter.name])
            if parameter.default is inspect.Parameter.empty:
                wrong.append(f"{module}.{qualified}: {parameter.name} has no default (theirs {expected!r})")
            elif expected is not None and parameter.default != expected and \
                    not (isinstance(expected, tuple) and list(expected) == list(parameter.default)):
                wrong.append(f"{module}.{qualified}: {parameter.name}={parameter.default!r}, theirs {expected!r}")
    assert not wrong, "\n".join(wrong)


def test_signature_differences_are_real(matterport_source):
    names = {f"{m}.{q}" for m, q in matterport_names(matterport_source)}
    assert set(SIGNATURE_DIFFERENCES) <= names


# -- model module: numpy helpers against Matterport's ---------------------------------------------

def test_log_prints_matterports_format(oracle):
    answers, inputs = oracle
    for i, array in enumerate(inputs["log_arrays"]):
        _, printed = captured(modellib.log, f"array {i}", array)
        assert printed == answers[f"log_{i}"]["stdout"]
    assert captured(modellib.log, "just text")[1] == answers["log_text"]["stdout"] == "just text\n"
    _, empty = captured(modellib.log, "empty", np.zeros((0, 4), np.float32))
    assert empty.startswith("empty" + " " * 20 + "shape: (0, 4)") and "float32" in empty


def test_compute_ap_range_is_matterports_and_the_mean_of_compute_ap(oracle):
    answers, _ = oracle
    case = ap_case()
    value, printed = captured(utils.compute_ap_range, *ap_args(case))
    thresholds = np.arange(0.5, 1.0, 0.05)
    by_hand = np.mean([utils.compute_ap(*ap_args(case), iou_threshold=t)[0] for t in thresholds])
    assert value == pytest.approx(by_hand, abs=1e-12)
    assert 0 < value < utils.compute_ap(*ap_args(case))[0]          # harder thresholds lower it
    assert value == pytest.approx(answers["ap_range"]["result"], abs=1e-6)     # theirs: float32 recalls
    assert printed == answers["ap_range"]["stdout"]
    two, printed_two = captured(utils.compute_ap_range, *ap_args(case), iou_thresholds=[0.5, 0.75])
    assert two == pytest.approx(answers["ap_range_two"]["result"], abs=1e-6)
    assert printed_two == answers["ap_range_two"]["stdout"]
    quiet, nothing = captured(utils.compute_ap_range, *ap_args(case), iou_thresholds=np.array([0.5, 0.75]),
                              verbose=0)
    assert quiet == two and nothing == ""


def test_compute_matches_score_threshold_is_matterports(oracle):
    answers, _ = oracle
    gt_match, pred_match, overlaps = utils.compute_matches(*ap_args(ap_case()), iou_threshold=0.5,
                                                           score_threshold=0.75)
    theirs = answers["matches_score"]["result"]
    np.testing.assert_array_equal(gt_match, theirs[0])
    np.testing.assert_array_equal(pred_match, theirs[1])
    np.testing.assert_allclose(overlaps, theirs[2])
    assert list(pred_match) == [0, -1, -1, -1, -1]       # only the 0.9 match reaches 0.75


def test_build_rpn_targets_is_matterports(oracle):
    answers, inputs = oracle
    anchors, gt_ids, gt_boxes = inputs["anchors"]
    config = TinyConfig(RPN_TRAIN_ANCHORS_PER_IMAGE=256)
    match, bbox = modellib.build_rpn_targets((64, 64, 3), anchors, gt_ids, gt_boxes, config)
    their_match, their_bbox = answers["rpn"]["result"]
    assert 0 < np.sum(match == 1) < 20 and np.sum(match == -1) > 50
    np.testing.assert_array_equal(match, their_match)
    np.testing.assert_allclose(bbox, their_bbox, rtol=1e-5, atol=1e-5)

    many, many_ids, many_boxes = inputs["many"]
    match, bbox = modellib.build_rpn_targets((64, 64, 3), many, many_ids, many_boxes,
                                             TinyConfig(RPN_TRAIN_ANCHORS_PER_IMAGE=16),
                                             rng=np.random.default_rng(0))
    their_match, their_bbox = answers["rpn_balanced"]["result"]
    for value in (1, -1, 0):            # the draws differ; the balance must not
        assert np.sum(match == value) == np.sum(their_match == value)
    assert np.sum(np.any(bbox != 0, axis=1)) == np.sum(np.any(their_bbox != 0, axis=1)) == 8


def test_image_meta_and_molding_are_matterports(oracle):
    answers, inputs = oracle
    meta = modellib.compose_image_meta(*inputs["meta_args"])
    np.testing.assert_allclose(meta, answers["meta"]["result"])
    parsed = modellib.parse_image_meta(meta[None])
    assert parsed["image_id"][0] == 7 and list(parsed["window"][0]) == [128, 0, 896, 1024]
    assert list(parsed["original_image_shape"][0]) == [480, 640, 3] and parsed["scale"][0] == pytest.approx(1.6)
    assert list(parsed["active_class_ids"][0]) == [1, 1, 0, 1]
    config = TinyConfig(MEAN_PIXEL=[123.7, 116.8, 103.9])
    molded = modellib.mold_image(inputs["images"], config)
    np.testing.assert_allclose(molded, answers["mold"]["result"], atol=1e-4)
    np.testing.assert_array_equal(modellib.unmold_image(molded, config), inputs["images"])


def test_load_image_gt_has_matterports_signature_shapes_and_meta(oracle):
    answers, _ = oracle
    dataset = shapes_dataset()
    config = TinyConfig(USE_MINI_MASK=True)
    image, image_meta, class_ids, bbox, mask = modellib.load_image_gt(dataset, config, 1)
    raw_masks, raw_ids = dataset.load_mask(1)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert mask.shape == (64, 64, len(raw_ids)) and mask.dtype == bool     # use_mini_mask=False: full size
    np.testing.assert_array_equal(class_ids, raw_ids)
    assert bbox.dtype == np.int32
    np.testing.assert_array_equal(bbox, utils.extract_bboxes(mask))
    parsed = modellib.parse_image_meta(image_meta[None])
    assert parsed["image_id"][0] == 1 and list(parsed["original_image_shape"][0]) == [128, 128, 3]
    assert list(parsed["image_shape"][0]) == [64, 64, 3] and list(parsed["window"][0]) == [0, 0, 64, 64]
    assert parsed["scale"][0] == pytest.approx(0.5) and list(parsed["active_class_ids"][0]) == [1, 1, 1, 1]

    their_image, their_meta, their_ids, their_bbox, their_mask = answers["load_full"]["result"]
    np.testing.assert_allclose(image_meta, their_meta)
    np.testing.assert_array_equal(class_ids, their_ids)
    assert np.abs(bbox - their_bbox).max() <= 1
    for k in range(mask.shape[-1]):
        both, either = np.sum(mask[..., k] & their_mask[..., k]), np.sum(mask[..., k] | their_mask[..., k])
        assert both / either > 0.85
    assert np.abs(image.astype(int) - their_image.astype(int)).mean() < 8

    # (Matterport's use_mini_mask=True no longer runs: its minimize_mask resizes bool masks, which
    # scikit-image refuses since 0.19.)
    mini = modellib.load_image_gt(dataset, config, 2, use_mini_mask=True)
    assert mini[4].shape == (16, 16, len(mini[2])) and mini[4].dtype == bool
    full = modellib.load_image_gt(dataset, config, 2)
    np.testing.assert_array_equal(mini[4], utils.minimize_mask(full[3], full[4], (16, 16)))


def test_load_image_gt_augment_flips_half_the_time_repeatably():
    dataset = shapes_dataset()
    config = TinyConfig()
    plain = modellib.load_image_gt(dataset, config, 0)
    mirrored = data.load_image_gt(dataset, config, 0, use_mini_mask=False,
                                  augmentation=lambda image, masks: (image[:, ::-1], masks[:, ::-1]))
    assert not np.array_equal(mirrored[4], plain[4])
    flipped = []
    for seed in range(8):
        np.random.seed(seed)
        first = modellib.load_image_gt(dataset, config, 0, augment=True)
        np.random.seed(seed)
        again = modellib.load_image_gt(dataset, config, 0, augment=True)
        np.testing.assert_array_equal(first[0], again[0])
        if np.array_equal(first[4], plain[4]):
            np.testing.assert_array_equal(first[0], plain[0])
        else:
            for got, expected in zip(first, mirrored):
                np.testing.assert_array_equal(got, expected)
            flipped.append(seed)
    assert 0 < len(flipped) < 8


def test_data_generator_yields_matterports_lists():
    dataset = shapes_dataset(count=3, size=64)
    config = TinyConfig(USE_MINI_MASK=True)
    np.random.seed(0)
    inputs, outputs = next(modellib.data_generator(dataset, config, shuffle=True, batch_size=2))
    anchors = len(data.get_anchors(config, (64, 64, 3)))
    assert outputs == [] and len(inputs) == 7
    images, metas, rpn_match, rpn_bbox, gt_ids, gt_boxes, gt_masks = inputs
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.float32
    assert metas.shape == (2, config.IMAGE_META_SIZE)
    assert rpn_match.shape == (2, anchors, 1) and rpn_match.dtype == np.int32
    assert set(np.unique(rpn_match)) <= {-1, 0, 1} and np.all(np.sum(rpn_match == 1, axis=(1, 2)) > 0)
    assert rpn_bbox.shape == (2, config.RPN_TRAIN_ANCHORS_PER_IMAGE, 4)
    assert gt_ids.shape == (2, 5) and gt_ids.dtype == np.int32
    assert gt_boxes.shape == (2, 5, 4) and gt_boxes.dtype == np.int32
    assert gt_masks.shape == (2, 16, 16, 5) and gt_masks.dtype == bool
    for b in range(2):                       # each row is that image's load_image_gt, molded and padded
        image_id = int(metas[b, 0])
        image, _, ids, boxes, _ = modellib.load_image_gt(dataset, config, image_id, use_mini_mask=True)
        np.testing.assert_allclose(images[b], modellib.mold_image(image, config))
        np.testing.assert_array_equal(gt_ids[b, :len(ids)], ids)
        np.testing.assert_array_equal(gt_boxes[b, :len(ids)], boxes)
        assert not gt_ids[b, len(ids):].any()
    np.random.seed(0)
    again, _ = next(modellib.data_generator(dataset, config, shuffle=True, batch_size=2))
    for first, second in zip(inputs, again):
        np.testing.assert_array_equal(first, second)


def test_data_generator_with_random_rois_and_detection_targets():
    dataset = shapes_dataset(count=3, size=64)
    config = TinyConfig(USE_MINI_MASK=True)
    np.random.seed(1)
    inputs, outputs = next(modellib.data_generator(dataset, config, random_rois=40, batch_size=2,
                                                   detection_targets=True))
    assert len(inputs) == 9 and len(outputs) == 3
    rpn_rois, rois = inputs[7], inputs[8]
    class_ids, bboxes, masks = outputs
    assert rpn_rois.shape == (2, 40, 4) and rois.shape == (2, 12, 4)
    assert class_ids.shape == (2, 12, 1) and bboxes.shape == (2, 12, 4, 4) and masks.shape == (2, 12, 14, 14, 4)
    assert np.all(np.sum(class_ids > 0, axis=(1, 2)) <= int(12 * config.ROI_POSITIVE_RATIO))
    assert masks.min() >= 0 and masks.max() <= 1


def test_generate_random_rois():
    gt_boxes = np.array([[10, 10, 20, 30], [40, 40, 60, 50]], np.int32)
    rois = modellib.generate_random_rois((64, 64, 3), 100, np.array([1, 2]), gt_boxes,
                                         rng=np.random.default_rng(0))
    assert rois.shape == (100, 4) and rois.dtype == np.int32
    assert np.all(rois[:, 2] > rois[:, 0]) and np.all(rois[:, 3] > rois[:, 1])
    assert rois.min() >= 0 and rois[:, [0, 2]].max() < 64 and rois[:, [1, 3]].max() < 64
    first = rois[:45]                        # 90 % near the boxes: 45 each, inside the box grown by its size
    assert np.all(first[:, 0] >= 0) and np.all(first[:, 2] < 30) and np.all(first[:, 3] < 50)
    second = rois[45:90]
    assert np.all(second[:, 0] >= 20) and np.all(second[:, 1] >= 30) and np.all(second[:, 3] < 60)


def test_build_detection_targets_refines_positive_rois_onto_their_gt():
    config = TinyConfig(USE_MINI_MASK=False, TRAIN_ROIS_PER_IMAGE=10)
    gt_masks = np.stack([rect_mask((64, 64), 10, 10, 30, 30), rect_mask((64, 64), 40, 20, 60, 50)], axis=-1)
    gt_boxes = utils.extract_bboxes(gt_masks)
    rois = np.array([[11, 10, 30, 29], [40, 22, 58, 50], [0, 0, 5, 5], [50, 0, 60, 8], [10, 10, 20, 20]], np.int32)
    out_rois, class_ids, bboxes, masks = modellib.build_detection_targets(
        rois, np.array([2, 3], np.int32), gt_boxes, gt_masks, config, rng=np.random.default_rng(0))
    assert out_rois.shape == (10, 4) and class_ids.shape == (10,)
    assert sorted(class_ids[class_ids > 0]) == [2, 3] and np.sum(class_ids > 0) == 2
    for row in np.flatnonzero(class_ids):
        deltas = bboxes[row, class_ids[row]] * np.asarray(config.BBOX_STD_DEV)
        moved = utils.apply_box_deltas(out_rois[row:row + 1].astype(np.float32), deltas[None])
        gt = gt_boxes[class_ids[row] - 2]
        np.testing.assert_allclose(moved[0], gt, atol=1e-4)
        assert masks[row, :, :, class_ids[row]].mean() > 0.9       # the roi lies inside its gt mask
        others = np.delete(np.arange(4), class_ids[row])
        assert not masks[row][..., others].any() and not bboxes[row, others].any()
    assert not bboxes[class_ids == 0].any() and not masks[class_ids == 0].any()


# -- model module: graph functions ---------------------------------------------------------------

def test_small_graph_functions():
    np.testing.assert_allclose(modellib.log2_graph(tf.constant([1.0, 8.0, 0.5])).numpy(), [0, 3, -1], atol=1e-6)
    difference = np.array([-3.0, -1.0, -0.5, 0.0, 0.25, 2.0], np.float32)
    expected = np.where(np.abs(difference) < 1, 0.5 * difference ** 2, np.abs(difference) - 0.5)
    np.testing.assert_allclose(modellib.smooth_l1_loss(tf.zeros(6), tf.constant(difference)).numpy(), expected)
    x = tf.reshape(tf.range(12), (3, 4))
    np.testing.assert_array_equal(modellib.batch_pack_graph(x, tf.constant([2, 0, 3]), 3).numpy(), [0, 1, 8, 9, 10])
    assert utils.batch_slice is box_graph.batch_slice and utils.box_refinement_graph is box_graph.box_refinement_graph


def test_refine_detections_graph_is_the_detection_layer_on_one_image():
    config = TinyConfig(DETECTION_MIN_CONFIDENCE=0.3, DETECTION_MAX_INSTANCES=6)
    rng = np.random.default_rng(0)
    corners, sides = rng.uniform(0, 0.6, (8, 2)), rng.uniform(0.1, 0.4, (8, 2))
    rois = np.concatenate([corners, corners + sides], axis=1).astype(np.float32)
    probs = rng.dirichlet(np.ones(4), 8).astype(np.float32)
    deltas = rng.normal(0, 0.5, (8, 4, 4)).astype(np.float32)
    image_shape = (64, 64, 3)
    window_pixels = np.array([8, 0, 56, 64])
    meta = modellib.compose_image_meta(0, image_shape, image_shape, window_pixels, 1.0, np.ones(4))
    expected = modellib.DetectionLayer(config)([rois[None].astype(np.float32), probs[None], deltas[None],
                                                meta[None]])[0].numpy()
    window = utils.norm_boxes(window_pixels[None], image_shape[:2])[0]
    ours_rows = modellib.refine_detections_graph(rois, probs, deltas, window, config).numpy()
    assert ours_rows.shape == (6, 6) and np.sum(expected[:, 4] > 0) > 0
    np.testing.assert_allclose(ours_rows, expected, atol=1e-5)


def test_detection_targets_graph_gives_one_images_targets():
    config = TinyConfig(USE_MINI_MASK=False)
    gt_boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.6, 0.2, 0.9, 0.8]], np.float32)
    proposals = np.concatenate([gt_boxes + 0.01, [[0.0, 0.6, 0.1, 0.9], [0.7, 0.0, 0.8, 0.1]]]).astype(np.float32)
    masks = np.zeros((64, 64, 2), np.float32)
    masks[6:32, 6:32, 0] = masks[38:58, 13:51, 1] = 1
    rois, class_ids, deltas, mask_targets = modellib.detection_targets_graph(
        proposals, np.array([1, 3]), gt_boxes, masks, config)
    assert rois.shape == (12, 4) and class_ids.shape == (12,) and deltas.shape == (12, 4)
    assert mask_targets.shape == (12, 14, 14)
    assert sorted(class_ids.numpy()[:2]) == [1, 3] and not class_ids.numpy()[2:].any()


def test_resnet_blocks_and_graph_keep_matterports_names_and_defaults():
    image = keras.Input((64, 64, 3))
    stages = modellib.resnet_graph(image, "resnet50")
    assert len(stages) == 5 and stages[4] is None and stages[3].shape[1:] == (4, 4, 1024)   # no stage 5 by default
    x = keras.Input((16, 16, 64))
    y = modellib.conv_block(x, 3, [32, 32, 128], stage=9, block="a")
    z = modellib.identity_block(y, 3, [32, 32, 128], stage=9, block="b")
    names = {layer.name for layer in keras.Model(x, z).layers}
    assert {"res9a_branch1", "bn9a_branch1", "res9a_branch2a", "res9b_branch2c", "res9b_out"} <= names
    assert y.shape[1:] == (8, 8, 128) and z.shape[1:] == (8, 8, 128)
    with pytest.raises(ValueError, match="kernel_size=3"):
        modellib.identity_block(y, 5, [32, 32, 128], stage=9, block="c")
    assert issubclass(modellib.BatchNorm, keras.layers.BatchNormalization)


# -- MaskRCNN's methods ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inference_model(tmp_path_factory):
    return modellib.MaskRCNN("inference", TinyConfig(IMAGES_PER_GPU=1), tmp_path_factory.mktemp("models"))


def test_ancestor_finds_layers_upstream(inference_model):
    keras_model = inference_model.keras_model
    detections = keras_model.get_layer("mrcnn_detection").output
    roi = inference_model.ancestor(detections, "ROI")
    assert roi is keras_model.get_layer("ROI").output
    assert inference_model.ancestor(detections, r"rpn_cl.*") is not None
    assert inference_model.ancestor(keras_model.get_layer("ROI").output, "mrcnn_detection") is None
    with pytest.raises(ValueError, match="inside the layer 'ROI'"):
        inference_model.ancestor(detections, "ROI/pre_nms_anchors:0")


def test_trainable_layers_are_the_ones_with_weights(inference_model):
    layers = inference_model.get_trainable_layers()
    assert all(layer.weights for layer in layers)
    names = {layer.name for layer in layers}
    assert {"conv1", "fpn_p2", "rpn_model", "mrcnn_class_logits", "mrcnn_mask"} <= names
    wrapped = inference_model.keras_model.get_layer("mrcnn_class_logits")
    assert isinstance(wrapped, keras.layers.TimeDistributed)
    assert inference_model.find_trainable_layer(wrapped) is wrapped.layer
    assert not any(isinstance(layer, keras.layers.Wrapper) for layer in layers)


def test_display_weight_stats_lists_every_trainable_weight(inference_model, monkeypatch):
    table = visualize.weight_stats_table(inference_model)
    weights = sum(len(layer.weights) for layer in inference_model.get_trainable_layers())
    assert table[0] == ["WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD"] and len(table) == weights + 1
    row = next(r for r in table if r[0].startswith("conv1/kernel"))
    kernel = inference_model.keras_model.get_layer("conv1").kernel.numpy()
    assert row[1] == str(kernel.shape) and float(row[2]) == pytest.approx(kernel.min(), abs=1e-4)
    gammas = [r for r in table if r[0].startswith("bn_conv1/moving_variance")]
    assert gammas and "dead?" in gammas[0][0]              # all ones before training: flagged
    shown = []
    monkeypatch.setattr(visualize, "display_table", shown.append)
    visualize.display_weight_stats(inference_model)
    assert shown == [table]


def test_build_makes_a_new_model_and_compile_a_trainer(tmp_path):
    config = TinyConfig()
    model = modellib.MaskRCNN("training", config, tmp_path)
    other = model.build("inference", config)
    assert other is not model.keras_model and "mrcnn_detection" in {layer.name for layer in other.layers}
    trainer = model.compile(learning_rate=0.002, momentum=0.8)
    assert trainer is model.trainer
    assert float(trainer.optimizer.learning_rate) == pytest.approx(0.002)
    assert float(trainer.optimizer.momentum) == pytest.approx(0.8)
    history = trainer.fit(data.make_training_dataset(shapes_dataset(count=2, size=64), config, seed=0),
                          steps_per_epoch=1, epochs=1, verbose=0)
    for name in modellib.LOSS_NAMES:
        assert np.isfinite(history.history[name][0])
    with pytest.raises(RuntimeError, match="mode='training'"):
        modellib.MaskRCNN.compile(type("M", (), {"mode": "inference"})(), 0.1, 0.9)


# -- utils -----------------------------------------------------------------------------------------

def test_download_trained_weights_writes_the_file_whole(http_server, tmp_path, monkeypatch, matterport_source):
    payload = bytes(range(256)) * 400
    http_server.files["/mask_rcnn_coco.h5"] = payload
    monkeypatch.setattr(utils, "COCO_MODEL_URL", http_server.url("/mask_rcnn_coco.h5"))
    target = tmp_path / "weights" / "mask_rcnn_coco.h5"
    path, printed = captured(utils.download_trained_weights, str(target))
    assert Path(path) == target and target.read_bytes() == payload
    assert list(target.parent.iterdir()) == [target]
    source = (matterport_source / "utils.py").read_text()         # Matterport's URL and messages
    assert f'COCO_MODEL_URL = "{modellib.utils.COCO_MODEL_URL}"' not in source      # (patched here)
    assert 'COCO_MODEL_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"' \
        in source
    first, second = printed.splitlines()
    assert first == f"Downloading pretrained model to {target} ..." and '"Downloading pretrained model to "' in source
    assert second == "... done downloading pretrained model!" and f'"{second}"' in source
    assert captured(utils.download_trained_weights, str(target), verbose=0)[1] == ""


def test_download_trained_weights_leaves_no_half_file(http_server, tmp_path):
    http_server.files["/w.h5"] = b"x" * 50_000
    http_server.cut_after["/w.h5"] = 10_000
    target = tmp_path / "w.h5"
    with pytest.raises(OSError, match="stopped after 10000 of 50000 bytes"):
        utils.download_trained_weights(target, verbose=0, url=http_server.url("/w.h5"))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OSError, match=f"{target}: could not download"):
        utils.download_trained_weights(target, verbose=0, url=http_server.url("/missing.h5"))
    assert list(tmp_path.iterdir()) == []


def test_dataset_append_data_merges_another_dataset():
    first, second = shapes_dataset(count=2, seed=1), shapes_dataset(count=3, seed=2)
    merged = ShapesDataset()
    merged.append_data(first.class_info, first.image_info)
    merged.append_data(second.class_info, second.image_info)
    merged.prepare()
    assert merged.class_names == first.class_names == ["BG", *CLASS_NAMES]
    assert merged.num_images == 5
    for image_id, (dataset, original) in enumerate([(first, 0), (first, 1), (second, 0), (second, 1), (second, 2)]):
        np.testing.assert_array_equal(merged.load_mask(image_id)[0], dataset.load_mask(original)[0])


def test_mold_mask_says_what_to_use_instead():
    with pytest.raises(NotImplementedError, match="minimize_mask"):
        utils.mold_mask(np.zeros((4, 4, 1), bool), TinyConfig())


# -- visualize -------------------------------------------------------------------------------------

def test_display_table_shows_matterports_html(oracle, monkeypatch):
    answers, _ = oracle
    table = [["WEIGHT NAME", "SHAPE"], ["conv1/kernel", (7, 7, 3, 64)], [1.5, None]]
    assert [visualize.table_html(table)] == answers["table"]["html"]
    import IPython
    import IPython.display
    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj.data))
    visualize.display_table(table)
    assert shown == answers["table"]["html"]
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    printed = captured(visualize.display_table, table)[1]
    assert printed.splitlines()[1].split() == ["conv1/kernel", "(7,", "7,", "3,", "64)"]


def figure_texts(fig):
    ax = fig.axes[0]
    return {"titles": [ax.get_title()], "texts": [[t.get_text() for t in ax.texts]],
            "xticklabels": [[t.get_text() for t in ax.get_xticklabels()]],
            "yticklabels": [[t.get_text() for t in ax.get_yticklabels()]]}


def test_plot_overlaps_and_precision_recall_draw_what_matterports_draw(oracle, tmp_path):
    answers, inputs = oracle
    case = ap_case()
    ap, precisions, recalls, overlaps = inputs["ap"]
    order = np.argsort(-case["pred_score"])
    fig = visualize.plot_overlaps(case["gt_class_id"], case["pred_class_id"][order], case["pred_score"][order],
                                  overlaps, list(ALL_CLASS_NAMES))
    theirs = answers["overlaps"]["figure"]
    drawn = figure_texts(fig)
    for key in ("texts", "xticklabels", "yticklabels"):
        assert drawn[key] == theirs[key], key
    assert drawn["texts"][0].count("0.900\nmatch") == 1 and "1.000\nwrong" in drawn["texts"][0]
    fig.savefig(tmp_path / "overlaps.png")
    curve = visualize.plot_precision_recall(ap, precisions, recalls)
    theirs = answers["precision_recall"]["figure"]
    assert curve.axes[0].get_title() == theirs["titles"][0] == f"Precision-Recall Curve. AP@50 = {ap:.3f}"
    np.testing.assert_allclose(curve.axes[0].lines[0].get_xydata(), theirs["lines"][0][0])
    plt.close("all")


def test_draw_box_paints_matterports_pixels(oracle):
    answers, _ = oracle
    image = np.zeros((12, 12, 3), np.uint8)
    result = visualize.draw_box(image, np.array([2, 3, 9, 8]), (255, 10, 20))
    assert result is image
    np.testing.assert_array_equal(result, answers["draw_box"]["result"])


def test_draw_rois_prints_matterports_counts(oracle):
    answers, _ = oracle
    image, rois, refined, masks, class_ids = draw_rois_case()
    fig, printed = captured(visualize.draw_rois, image, rois, refined, masks, class_ids, list(ALL_CLASS_NAMES))
    assert printed == answers["draw_rois"]["stdout"]
    ax = fig.axes[0]
    assert len(ax.patches) == 4 + 3 and len(ax.lines) == 3       # every roi, refinements of the 3 positives
    assert sorted(t.get_text() for t in ax.texts) == sorted(ALL_CLASS_NAMES[i] for i in (1, 3, 2))
    many = np.repeat(rois, 5, axis=0)
    fig = captured(visualize.draw_rois, image, many, many, np.repeat(masks, 5, axis=0), np.repeat(class_ids, 5),
                   list(ALL_CLASS_NAMES), limit=6, seed=0)[0]
    assert fig.axes[0].get_title() == "Showing 6 random ROIs out of 20"
    plt.close("all")


def test_display_differences_colours_and_captions():
    case = ap_case()
    image = np.full((40, 40, 3), 80, np.uint8)
    shuffled = np.array([3, 0, 4, 2, 1])                # not in score order: captions must still fit
    args = [case[k] for k in ("gt_box", "gt_class_id", "gt_mask")] + [
        case["pred_box"][shuffled], case["pred_class_id"][shuffled], case["pred_score"][shuffled],
        case["pred_mask"][..., shuffled]]
    fig = visualize.display_differences(image, *args, list(ALL_CLASS_NAMES))
    captions = [t.get_text() for t in fig.axes[0].texts]
    assert captions == ["", "", "", "0.90 / 0.90", "0.80 / 0.72", "0.70 / 0.58", "0.60 / 0.00", "0.50 / 1.00"]
    assert fig.axes[0].get_title().startswith("Ground Truth and Detections")
    plt.close("all")


def test_draw_boxes_takes_matterports_arguments(tmp_path):
    image = np.full((40, 40, 3), 90, np.uint8)
    boxes = np.array([[2, 2, 20, 20], [10, 10, 30, 35], [0, 0, 0, 0]])
    refined = boxes + 2
    masks = np.stack([rect_mask((40, 40), 4, 4, 18, 18), rect_mask((40, 40), 12, 12, 28, 33),
                      np.zeros((40, 40), bool)], axis=-1)
    fig = visualize.draw_boxes(image, boxes=boxes, refined_boxes=refined, masks=masks, captions=["a", "b", "c"],
                               visibilities=[2, 0, 1], title="anchors")
    ax = fig.axes[0]
    assert ax.get_title() == "anchors"
    assert [t.get_text() for t in ax.texts] == ["a", "b"]           # the all-zero box is skipped
    assert len(ax.lines) == 1                                         # visibility 0: no refined box
    only_refined = visualize.draw_boxes(image, refined_boxes=refined[:2], captions=["x", "y"])
    assert len(only_refined.axes[0].patches) == 2
    with pytest.raises(ValueError, match="give boxes, refined_boxes or both"):
        visualize.draw_boxes(image)
    fig.savefig(tmp_path / "boxes.png")
    plt.close("all")
