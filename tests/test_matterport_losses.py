"""The five training losses against Matterport's original (PyPI mrcnn==0.2), in two ways.

1. The loss functions on the same tensors: Matterport's rpn_class_loss_graph, rpn_bbox_loss_graph,
   mrcnn_class_loss_graph, mrcnn_bbox_loss_graph and mrcnn_mask_loss_graph, called in its own
   process (tests/matterport_worker.run_calls, one call for every case), against ours in
   Matterport's form (the defaults: RPN_BBOX_LOSS and MRCNN_BBOX_LOSS "per_positive", beta 1), on
   random but realistic inputs and on edge cases (no positive anchor, no positive ROI): equal to
   1e-5. Our mask loss is also compared from logits (training's form) to theirs on the sigmoids.
   Where ours deliberately differs, the test shows the difference: when every ROI is predicted as
   an inactive class Matterport's class loss is 0/0 = NaN and ours 0.

2. One training batch through both whole training networks, our weights loaded by name from the
   file Matterport's training model saved (ResNet-50, a 128 px image, one image, four classes).
   Matterport's training network is built with two more load-time fixes (TRAINING_SOURCE_FIXES in
   tests/matterport_worker.py: two lambdas that read tensors from outside their inputs).
   - RPN losses: they depend only on the RPN's outputs and the given rpn_match / rpn_bbox
     targets, so they must agree (1e-4), and do.
   - Head losses: Matterport samples the head's ROIs at random (tf.random_shuffle of the positive
     and negative candidates), but when no quota is reached every candidate is kept and the mean
     losses do not depend on the order. The batch's gt boxes are copied from some of the RPN's
     own proposals (few: POST_NMS_ROIS_TRAINING 8), chosen so that this holds for both networks;
     the sampled ROIs are then deterministic. Even so the two networks' head losses are not the
     same numbers, for two reasons that are choices of ours, not errors:
       a. our network adds the gt boxes to the proposals before sampling (Detectron's practice,
          AppendBoxes: the heads see a perfect positive per object from the first step);
          Matterport's samples from the proposals alone (its build(): target_rois = rpn_rois,
          nothing appended). Our sample is Matterport's plus one positive ROI per gt box, which
          changes all three head losses.
       b. Matterport's class loss also averages over the zero-padding rows (TRAIN_ROIS_PER_IMAGE
          minus the sampled ROIs: empty boxes at the image corner, taught "background"); our
          training passes `rois` to mrcnn_class_loss_graph, which leaves them out. (Our ROIAlign
          gives those rows an all-zero patch, Matterport's crops the feature map's corner: their
          logits differ too, and do not matter to our loss.)
     So the networks' head losses are printed, not compared; what is compared instead, exactly
     and deterministically: (i) the sampled sets: Matterport's ROIs are ours minus the gt boxes,
     and both keep every proposal; (ii) for each shared ROI, the targets (class, box deltas,
     28x28 mask) and the heads' outputs (class logits, box deltas, mask of the target class) to
     1e-4; (iii) Matterport's three head losses recomputed with our loss functions from our
     network's tensors on Matterport's rows (ours without the gt rows; for the class loss, plus
     Matterport's padding rows with Matterport's logits): equal to 1e-4; (iv) our five functions
     on the tensors inside Matterport's training graph give its five loss layers' values (1e-5).
   (i) found a bug of ours, fixed: a zero-padding row of the gt boxes, once normalised, was no
   longer all zero, so AppendBoxes added one degenerate "negative" ROI per padding row
   (MAX_GT_INSTANCES minus the objects) to the candidates.

Weights: tf-keras' random initialisation (seeded), with the RPN's and the heads' last layers
scaled down (SCALE_WEIGHTS; the box classifier and mask layer as in
tests/test_matterport_equivalence.py): untouched, the RPN's deltas are about 20, which clips every
proposal to a line at the image's edge, and class scores and mask probabilities saturate (a
saturated sigmoid meets Keras 2's epsilon clipping, which our loss on logits does not have).
"""
import itertools
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mrcnn import data, losses, utils
from mrcnn import model as modellib
from mrcnn.config import Config
from tests import matterport_reference

TESTS = Path(__file__).resolve().parent
FUNCTION_TOLERANCE = 1e-5
GRAPH_TOLERANCE = 1e-4          # of max(1, |value|)
LOSS_LAYERS = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss", "mrcnn_mask_loss")

# -- 1. the loss functions -------------------------------------------------------------------

FUNCTION_CONFIG = {"NAME": "losses", "NUM_CLASSES": 5, "IMAGES_PER_GPU": 2}


def rpn_case(rng, batch=2, anchors=300, target_rows=40, positives=(12, 25), negatives=(60, 90)):
    """rpn_match with positives, negatives and neutrals; targets of the positives, zero padded.

    Deltas spread over about +-3, so smooth-L1 sees differences both below and above its beta.
    """
    match = np.zeros((batch, anchors, 1), np.int32)
    target = np.zeros((batch, target_rows, 4), np.float32)
    for b in range(batch):
        order = rng.permutation(anchors)
        match[b, order[:positives[b]], 0] = 1
        match[b, order[positives[b]:positives[b] + negatives[b]], 0] = -1
        target[b, :positives[b]] = rng.normal(0, 1.5, (positives[b], 4))
    logits = rng.normal(0, 2, (batch, anchors, 2)).astype(np.float32)
    predicted = rng.normal(0, 1.5, (batch, anchors, 4)).astype(np.float32)
    return match, target, logits, predicted


def head_case(rng, batch=2, rois=20, classes=5, mask=14, positive_share=0.4, soft_masks=False):
    """Targets and predictions of the box and mask heads for `rois` rows per image.

    Class ids 0 (negatives and padding) for about 1 - positive_share of the rows; every image has
    the same active classes (Matterport reads the first image's only: its TODO for batch > 1).
    """
    class_ids = np.where(rng.random((batch, rois)) < positive_share, rng.integers(1, classes, (batch, rois)), 0)
    class_ids = class_ids.astype(np.int32)
    logits = rng.normal(0, 2, (batch, rois, classes)).astype(np.float32)
    active = np.ones(classes, np.float32)
    active[[2, 4]] = 0
    active = np.tile(active, (batch, 1))
    target_bbox = np.where(class_ids[..., None] > 0, rng.normal(0, 1.5, (batch, rois, 4)), 0).astype(np.float32)
    pred_bbox = rng.normal(0, 1.5, (batch, rois, classes, 4)).astype(np.float32)
    if soft_masks:
        target_masks = rng.random((batch, rois, mask, mask))
    else:
        target_masks = (rng.random((batch, rois, mask, mask)) < 0.5)
    target_masks = np.where(class_ids[..., None, None] > 0, target_masks, 0).astype(np.float32)
    pred_masks = rng.uniform(0.02, 0.98, (batch, rois, mask, mask, classes)).astype(np.float32)
    return dict(class_ids=class_ids, logits=logits, active=active, target_bbox=target_bbox, pred_bbox=pred_bbox,
                target_masks=target_masks, pred_masks=pred_masks)


def loss_cases():
    """name -> (Matterport's function, its arguments, our value)."""
    rng = np.random.default_rng(11)
    config = type("FunctionConfig", (Config,), dict(FUNCTION_CONFIG))()
    cases = {}

    def rpn(name, match, target, logits, predicted):
        cases[f"{name}/rpn_class"] = ("rpn_class_loss_graph", [match, logits],
                                      losses.rpn_class_loss_graph(match, logits))
        cases[f"{name}/rpn_bbox"] = ("rpn_bbox_loss_graph", [{"matterport_config": FUNCTION_CONFIG}, target, match,
                                                             predicted],
                                     losses.rpn_bbox_loss_graph(config, target, match, predicted))

    def heads(name, h):
        cases[f"{name}/mrcnn_class"] = ("mrcnn_class_loss_graph", [h["class_ids"], h["logits"], h["active"]],
                                        losses.mrcnn_class_loss_graph(h["class_ids"], h["logits"], h["active"]))
        cases[f"{name}/mrcnn_bbox"] = ("mrcnn_bbox_loss_graph", [h["target_bbox"], h["class_ids"], h["pred_bbox"]],
                                       losses.mrcnn_bbox_loss_graph(h["target_bbox"], h["class_ids"], h["pred_bbox"]))
        cases[f"{name}/mrcnn_mask"] = ("mrcnn_mask_loss_graph", [h["target_masks"], h["class_ids"], h["pred_masks"]],
                                       losses.mrcnn_mask_loss_graph(h["target_masks"], h["class_ids"], h["pred_masks"]))
        mask_logits = np.log(h["pred_masks"]) - np.log1p(-h["pred_masks"])
        cases[f"{name}/mrcnn_mask_from_logits"] = (
            "mrcnn_mask_loss_graph", [h["target_masks"], h["class_ids"], h["pred_masks"]],
            losses.mrcnn_mask_loss_graph(h["target_masks"], h["class_ids"], mask_logits, from_logits=True))

    rpn("random", *rpn_case(rng))
    match, target, logits, predicted = rpn_case(rng, positives=(0, 0))
    rpn("no_positive_anchor", match, target, logits, predicted)
    rpn("all_neutral", *rpn_case(rng, positives=(0, 0), negatives=(0, 0)))
    rpn("one_image_without_positives", *rpn_case(rng, positives=(0, 30)))
    heads("random", head_case(rng))
    heads("soft_masks", head_case(rng, soft_masks=True))
    heads("no_positive_roi", head_case(rng, positive_share=0.0))
    heads("all_positive", head_case(rng, positive_share=1.0))
    return cases


def inactive_prediction_case():
    """Every ROI's predicted class is inactive: Matterport divides 0 by 0, ours returns 0."""
    h = head_case(np.random.default_rng(3))
    logits = np.full_like(h["logits"], -5.0)
    logits[..., 2] = 5.0                           # class 2: inactive in head_case
    return [h["class_ids"], logits, h["active"]], losses.mrcnn_class_loss_graph(h["class_ids"], logits, h["active"])


def reference_site():
    try:
        return matterport_reference.install()
    except matterport_reference.ReferenceUnavailable as error:
        pytest.skip(f"Matterport's reference is not available: {error}")


def run_worker(function, site, *paths, timeout=900):
    """matterport_worker.<function>(site, *paths) in a subprocess; its stderr's tail on failure."""
    script = (f"import sys; sys.path.insert(0, sys.argv[1]); import matterport_worker as w; "
              f"w.{function}(*sys.argv[2:])")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-c", script, str(TESTS), str(site), *map(str, paths)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=Path(paths[-1]).parent)
    if done.returncode != 0:
        raise RuntimeError(f"Matterport's {function} failed:\n" + "\n".join(done.stderr.splitlines()[-15:]))
    return pickle.loads(Path(paths[-1]).read_bytes())


@pytest.fixture(scope="module")
def function_results(tmp_path_factory):
    site = reference_site()
    work = tmp_path_factory.mktemp("matterport_loss_functions")
    cases = loss_cases()
    inactive_args, inactive_ours = inactive_prediction_case()
    calls = [dict(key=name, module="model", function=function, args=args)
             for name, (function, args, _) in cases.items()]
    calls.append(dict(key="all_inactive/mrcnn_class", module="model", function="mrcnn_class_loss_graph",
                      args=inactive_args))
    (work / "calls.pkl").write_bytes(pickle.dumps(calls))
    theirs = run_worker("run_calls", site, work / "calls.pkl", work / "out.pkl")
    ours = {name: float(value) for name, (_, _, value) in cases.items()}
    ours["all_inactive/mrcnn_class"] = float(inactive_ours)
    return ours, {name: float(np.asarray(result["result"])) for name, result in theirs.items()}


def test_loss_functions_equal_matterports(function_results):
    ours, theirs = function_results
    differences = {}
    for name in sorted(ours):
        if name.startswith("all_inactive/"):
            continue
        differences[name] = abs(ours[name] - theirs[name])
        print(f"{name:40s} ours {ours[name]:.7f} Matterport's {theirs[name]:.7f} |difference| {differences[name]:.2g}")
    zero_cases = [n for n in ours if n.startswith(("no_positive_anchor/rpn_bbox", "all_neutral/",
                                                   "no_positive_roi/mrcnn_bbox", "no_positive_roi/mrcnn_mask"))]
    zeros = {n: (ours[n], theirs[n]) for n in zero_cases}
    assert zero_cases and all(a == 0.0 == b for a, b in zeros.values()), zeros
    assert all(ours[n] > 0.1 for n in differences if n not in zero_cases), "a loss that should be sizeable is not"
    bad = {name: d for name, d in differences.items() if not d <= FUNCTION_TOLERANCE}
    assert not bad, bad


def test_class_loss_without_active_prediction_is_zero_not_matterports_nan(function_results):
    ours, theirs = function_results
    assert np.isnan(theirs["all_inactive/mrcnn_class"])
    assert ours["all_inactive/mrcnn_class"] == 0.0


# -- 2. one batch through both training networks --------------------------------------------

NETWORK_SETTINGS = dict(NAME="losses", NUM_CLASSES=4, BACKBONE="resnet50", IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128,
                        GPU_COUNT=1, IMAGES_PER_GPU=1, POST_NMS_ROIS_TRAINING=8, TRAIN_ROIS_PER_IMAGE=24,
                        MAX_GT_INSTANCES=4, RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128))
SCALE_WEIGHTS = {"mrcnn_class_logits": 0.3, "mrcnn_bbox_fc": 0.05, "mrcnn_mask": 0.05, "rpn_model/rpn_class_raw": 0.1,
                 "rpn_model/rpn_bbox_pred": 0.02}
SHIFT_BIAS = {"mrcnn_mask": 0.3}
IOU_MARGIN = 0.02               # candidate IoUs this close to 0.5 could fall either side in float32
MATTERPORT_LAYERS = list(LOSS_LAYERS) + ["ROI", "proposal_targets", "rpn_class_logits", "rpn_bbox",
                                         "mrcnn_class_logits", "mrcnn_bbox", "mrcnn_mask"]


class NetworkConfig(Config):
    pass


for _name, _value in NETWORK_SETTINGS.items():
    setattr(NetworkConfig, _name, _value)


def synthetic_image(size=128):
    yy, xx = np.mgrid[0:size, 0:size]
    image = np.stack([xx * 255 // (size - 1), yy * 255 // (size - 1), (xx + yy) % 256], axis=-1).astype(np.uint8)
    image[30:90, 20:70] = (200, 30, 60)
    image[((yy - 80) ** 2 + (xx - 90) ** 2) < 500] = (20, 180, 40)
    return image


def ellipse_mini_mask(shape):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    cy, cx = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    return ((yy - cy) / (0.45 * shape[0])) ** 2 + ((xx - cx) / (0.4 * shape[1])) ** 2 <= 1


def kept_whole(config, positives, negatives, gt_count):
    """Whether both networks keep every candidate (no quota reached), with padding left over.

    Matterport: at most int(T * ratio) positives; negatives up to int((1 / ratio) * positives)
    - positives, that product in float32 as its graph computes it; no positive, no ROI. Ours: the
    gt boxes are positives too; negatives up to floor(positives / ratio) - positives and T -
    positives. At least one padding row in ours (its padding logits stand in for Matterport's).
    """
    ratio, total = config.ROI_POSITIVE_RATIO, config.TRAIN_ROIS_PER_IMAGE
    quota = int(total * ratio)
    theirs_negatives = int(np.float32(1.0 / ratio) * np.float32(positives)) - positives
    ours_positives = positives + gt_count
    ours_negatives = min(int(np.floor(ours_positives / ratio + 1e-6)) - ours_positives, total - ours_positives)
    return (1 <= positives <= quota and ours_positives <= quota and 1 <= negatives <= theirs_negatives
            and negatives <= ours_negatives and ours_positives + negatives < total)


def choose_gt(config, proposals):
    """Gt boxes (pixels) copied from some of `proposals` (normalised) so that every candidate is kept.

    Tries the proposals' subsets, smallest first; returns (gt_boxes (G, 4) int, positive (K,) bool)
    for the first where kept_whole() holds and no proposal's best IoU is within IOU_MARGIN of 0.5.
    """
    shape = config.IMAGE_SHAPE[:2]
    proposals = proposals[np.any(proposals != 0, axis=1)]
    pixels = utils.denorm_boxes(proposals, shape)
    usable = [i for i, (y1, x1, y2, x2) in enumerate(pixels) if y2 - y1 >= 4 and x2 - x1 >= 4]
    for count in range(1, config.MAX_GT_INSTANCES + 1):
        for chosen in itertools.combinations(usable, count):
            gt = pixels[list(chosen)]
            best = utils.compute_overlaps(proposals, utils.norm_boxes(gt, shape)).max(axis=1)
            if np.any(np.abs(best - 0.5) < IOU_MARGIN):
                continue
            positive = best >= 0.5
            if kept_whole(config, int(positive.sum()), int((~positive).sum()), count):
                return gt, positive
    raise AssertionError(f"no choice of gt boxes among the {len(proposals)} proposals keeps every candidate")


def training_batch(config, gt_boxes, rng):
    """The network inputs and RPN targets of one image whose objects are `gt_boxes`."""
    shape = config.IMAGE_SHAPE
    count = len(gt_boxes)
    class_ids = (np.arange(count) % (config.NUM_CLASSES - 1) + 1).astype(np.int32)
    anchors = modellib.get_anchors(config, shape)
    rpn_match, rpn_bbox = data.build_rpn_targets(shape, anchors, class_ids, gt_boxes, config, rng=rng)
    padded = config.MAX_GT_INSTANCES
    masks = np.zeros(tuple(config.MINI_MASK_SHAPE) + (padded,), bool)
    masks[..., :count] = ellipse_mini_mask(config.MINI_MASK_SHAPE)[..., None]
    meta = modellib.compose_image_meta(0, shape, shape, (0, 0, shape[0], shape[1]), 1.0,
                                       np.ones(config.NUM_CLASSES, np.int32))
    return {
        "input_image": modellib.mold_image(synthetic_image(shape[0]), config)[None].astype(np.float32),
        "input_image_meta": meta[None],
        "input_rpn_match": rpn_match[None, :, None].astype(np.int32),
        "input_rpn_bbox": rpn_bbox[None].astype(np.float32),
        "input_gt_class_ids": np.pad(class_ids, (0, padded - count))[None],
        "input_gt_boxes": np.pad(gt_boxes.astype(np.float32), ((0, padded - count), (0, 0)))[None],
        "input_gt_masks": masks[None],
    }


def our_outputs(model, batch):
    network = model.keras_model
    outputs = network(modellib.network_inputs(network, batch), training=False)
    return {name: np.asarray(value) for name, value in outputs.items()}


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    """Both networks' outputs on one batch whose head sampling keeps every candidate."""
    site = reference_site()
    work = tmp_path_factory.mktemp("matterport_training")
    weights = work / "matterport_training.h5"
    job = dict(config=NETWORK_SETTINGS, seed=3, scale_weights=SCALE_WEIGHTS, shift_bias=SHIFT_BIAS,
               weights_out=str(weights))
    (work / "save.pkl").write_bytes(pickle.dumps(job))
    run_worker("run_training_graph", site, work / "save.pkl", work / "saved.pkl")

    config = NetworkConfig()
    model = modellib.MaskRCNN("training", config, str(work / "logs"))
    report = model.load_weights(str(weights), by_name=True)
    assert "0 missing from the file, 0 in the file but not the model, 0 skipped" in str(report), report
    # The proposals depend on the image and the weights only: any gt gives them.
    probe = training_batch(config, np.array([[10, 10, 60, 60]]), np.random.default_rng(0))
    gt_boxes, positive = choose_gt(config, our_outputs(model, probe)["rpn_rois"][0])
    batch = training_batch(config, gt_boxes, np.random.default_rng(0))

    job = dict(config=NETWORK_SETTINGS, weights_in=str(weights), batch=batch, layers=MATTERPORT_LAYERS)
    (work / "run.pkl").write_bytes(pickle.dumps(job))
    theirs = run_worker("run_training_graph", site, work / "run.pkl", work / "ran.pkl")
    ours = our_outputs(model, batch)
    our_losses = {name: float(value) for name, value in modellib.compute_losses(config, batch, ours).items()}
    return dict(config=config, batch=batch, gt_boxes=gt_boxes, positive=positive, ours=ours, theirs=theirs,
                our_losses=our_losses, their_losses={name: float(theirs[name][0]) for name in LOSS_LAYERS})


def close(a, b, tolerance=GRAPH_TOLERANCE):
    return abs(a - b) <= tolerance * max(1.0, abs(b))


def test_both_networks_losses_printed(networks):
    ours, theirs = networks["our_losses"], networks["their_losses"]
    for name in LOSS_LAYERS:
        print(f"{name:18s} ours {ours[name]:.6f} Matterport's {theirs[name]:.6f} |difference| "
              f"{abs(ours[name] - theirs[name]):.3g}")
    assert all(np.isfinite(v) for v in list(ours.values()) + list(theirs.values()))


def test_proposals_equal_matterports(networks):
    ours, theirs = networks["ours"]["rpn_rois"][0], networks["theirs"]["ROI"][0][0]
    assert np.abs(ours - theirs).max() <= 1e-6


def test_rpn_losses_equal_matterports(networks):
    ours, theirs = networks["our_losses"], networks["their_losses"]
    match = networks["batch"]["input_rpn_match"]
    assert (match == 1).sum() > 0 and (match == -1).sum() > 0
    for name in ("rpn_class_loss", "rpn_bbox_loss"):
        assert ours[name] > 0.01 and close(ours[name], theirs[name]), (name, ours[name], theirs[name])


def matched_rows(networks):
    """Matterport's sampled rows and, for each, our row with the same ROI; our rows of the gt boxes."""
    ours, theirs = networks["ours"], networks["theirs"]
    config = networks["config"]
    our_rois, their_rois = ours["rois"][0], theirs["proposal_targets"][0][0]
    our_real = np.flatnonzero(np.any(our_rois != 0, axis=1))
    their_real = np.flatnonzero(np.any(their_rois != 0, axis=1))
    gt = utils.norm_boxes(networks["gt_boxes"], config.IMAGE_SHAPE[:2])
    pairs = []
    for row in their_real:
        same = np.flatnonzero(np.abs(our_rois[our_real] - their_rois[row]).max(axis=1) <= 1e-6)
        assert len(same) == 1, (row, their_rois[row], len(same))
        pairs.append((row, our_real[same[0]]))
    gt_rows = [r for r in our_real if np.abs(gt - our_rois[r]).max(axis=1).min() <= 1e-6]
    return np.array(pairs), np.array(gt_rows)


def test_sampled_rois_are_matterports_plus_the_gt_boxes(networks):
    pairs, gt_rows = matched_rows(networks)
    proposals = networks["ours"]["rpn_rois"][0]
    candidates = int(np.any(proposals != 0, axis=1).sum())
    # Every proposal kept by both; ours adds exactly the gt boxes.
    assert len(pairs) == candidates
    assert len(gt_rows) == len(networks["gt_boxes"])
    our_real = int(np.any(networks["ours"]["rois"][0] != 0, axis=1).sum())
    assert our_real == len(pairs) + len(gt_rows)
    their_ids = networks["theirs"]["proposal_targets"][1][0]
    assert int((their_ids[pairs[:, 0]] > 0).sum()) == int(networks["positive"].sum()) >= 1


def test_targets_and_head_outputs_of_each_shared_roi_equal_matterports(networks):
    pairs, _ = matched_rows(networks)
    ours, theirs = networks["ours"], networks["theirs"]
    _, their_ids, their_bbox, their_mask = (v[0] for v in theirs["proposal_targets"])
    mine, yours = pairs[:, 1], pairs[:, 0]
    np.testing.assert_array_equal(ours["target_class_ids"][0][mine], their_ids[yours])
    np.testing.assert_allclose(ours["target_bbox"][0][mine], their_bbox[yours], rtol=0, atol=1e-5)
    for name, theirs_name in (("mrcnn_class_logits", "mrcnn_class_logits"), ("mrcnn_bbox", "mrcnn_bbox")):
        a, b = ours[name][0][mine], theirs[theirs_name][0][0][yours]
        print(f"{name:18s} of {len(mine)} shared ROIs: max |difference| {np.abs(a - b).max():.3g} "
              f"of scale {np.abs(b).max():.3g}")
        assert np.abs(a - b).max() <= GRAPH_TOLERANCE * max(1.0, np.abs(b).max()), (name, np.abs(a - b).max())
    # Masks: our mask head runs on the positive rows only (rows 0..P-1, in order).
    positive = [(y, m) for y, m in pairs if their_ids[y] > 0]
    assert positive
    for y, m in positive:
        assert m < ours["target_mask"].shape[1] and ours["mask_class_ids"][0][m] == their_ids[y]
        np.testing.assert_array_equal(ours["target_mask"][0][m], their_mask[y])
        assert 0 < their_mask[y].sum() < their_mask[y].size
        ours_probability = tf.sigmoid(ours["mrcnn_mask_logits"][0][m][..., their_ids[y]]).numpy()
        their_probability = theirs["mrcnn_mask"][0][0][y][..., their_ids[y]]
        print(f"mrcnn_mask of positive ROI {y} (class {their_ids[y]}): max |difference| "
              f"{np.abs(ours_probability - their_probability).max():.3g}")
        assert np.abs(ours_probability - their_probability).max() <= GRAPH_TOLERANCE


def matterport_rows_head_losses(networks):
    """Matterport's head losses recomputed with our loss functions from our network's tensors on
    Matterport's rows: ours without the gt boxes' rows, and, for the class loss, Matterport's
    zero-padding rows with Matterport's logits (our ROIAlign gives padding rows an all-zero patch
    where Matterport's crops the feature map's corner, so only its head has their logits)."""
    pairs, _ = matched_rows(networks)
    ours, theirs = networks["ours"], networks["theirs"]
    mine = pairs[:, 1]
    their_rois = theirs["proposal_targets"][0][0]
    their_padding = np.flatnonzero(~np.any(their_rois != 0, axis=1))
    class_ids = np.concatenate([ours["target_class_ids"][0][mine], np.zeros(len(their_padding), np.int32)])
    logits = np.concatenate([ours["mrcnn_class_logits"][0][mine], theirs["mrcnn_class_logits"][0][0][their_padding]])
    active = networks["batch"]["input_image_meta"][:, 12:]
    class_loss = losses.mrcnn_class_loss_graph(class_ids[None], logits[None], active)
    bbox_loss = losses.mrcnn_bbox_loss_graph(ours["target_bbox"][0][mine][None],
                                             ours["target_class_ids"][0][mine][None], ours["mrcnn_bbox"][0][mine][None])
    positive = [m for m in mine if ours["target_class_ids"][0][m] > 0]       # mask rows = positive rows
    mask_loss = losses.mrcnn_mask_loss_graph(ours["target_mask"][0][positive][None],
                                             ours["mask_class_ids"][0][positive][None],
                                             ours["mrcnn_mask_logits"][0][positive][None], from_logits=True)
    return {"mrcnn_class_loss": float(class_loss), "mrcnn_bbox_loss": float(bbox_loss),
            "mrcnn_mask_loss": float(mask_loss)}


def test_our_loss_functions_on_matterports_graph_tensors_give_its_losses(networks):
    """Our functions (Matterport's form) on the very tensors Matterport's training graph fed its own."""
    theirs, batch = networks["theirs"], networks["batch"]
    _, ids, target_bbox, target_mask = theirs["proposal_targets"]
    config = networks["config"]
    ours = {
        "rpn_class_loss": losses.rpn_class_loss_graph(batch["input_rpn_match"], theirs["rpn_class_logits"][0]),
        "rpn_bbox_loss": losses.rpn_bbox_loss_graph(config, batch["input_rpn_bbox"], batch["input_rpn_match"],
                                                    theirs["rpn_bbox"][0]),
        "mrcnn_class_loss": losses.mrcnn_class_loss_graph(ids, theirs["mrcnn_class_logits"][0],
                                                          batch["input_image_meta"][:, 12:]),
        "mrcnn_bbox_loss": losses.mrcnn_bbox_loss_graph(target_bbox, ids, theirs["mrcnn_bbox"][0]),
        "mrcnn_mask_loss": losses.mrcnn_mask_loss_graph(target_mask, ids, theirs["mrcnn_mask"][0]),
    }
    for name, value in ours.items():
        assert float(value) > 0.01 and close(float(value), networks["their_losses"][name], FUNCTION_TOLERANCE), (
            name, float(value), networks["their_losses"][name])


def test_head_losses_on_matterports_rows_equal_matterports(networks):
    recomputed, theirs = matterport_rows_head_losses(networks), networks["their_losses"]
    for name, value in recomputed.items():
        print(f"{name:18s} on Matterport's rows: ours {value:.6f} Matterport's {theirs[name]:.6f} "
              f"|difference| {abs(value - theirs[name]):.3g}; our network's own {networks['our_losses'][name]:.6f}")
    for name, value in recomputed.items():
        assert value > 0.01 and close(value, theirs[name]), (name, value, theirs[name])
