"""How good are the detections: COCO AP, per-class tables, model comparison, season confusion.

The numbers are pycocotools' COCOeval (the same AP the ModaNet and COCO papers report). The
functions here only build its inputs from Mask R-CNN outputs and `mrcnn.utils.Dataset`s and
read its outputs into plain numbers a notebook can print, plot and keep in a metrics JSON:

- `results_to_coco` turns one `model.detect` output into COCO result dicts (RLE masks);
- `dataset_to_coco` turns any prepared Dataset into a COCO ground-truth dict;
- `evaluate_detections` runs COCOeval for boxes and masks and returns `CocoScores`;
- `evaluate_model` does all three for a model and a dataset;
- `compare_per_class` lines up two models' per-class AP (model-2's `<class>_<season>` labels
  grouped back to garment classes); `season_confusion` and `predicted_season` score seasons.

Category ids in the ground truth built by `dataset_to_coco` are the dataset's internal class
ids (1..n, 0 is "BG"), which are also the class ids a model trained on that class list returns.
That truth is ModaNet repaired: `CocoDataset.load_coco` drops its exact duplicate annotations
on loading (`helpers.repair`), so `load_mask` gives each garment once, and the boxes are the
masks' own (`toBbox`), never ModaNet's disagreeing `bbox`.
"""
import contextlib
import io
import math
from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tqdm.auto import tqdm

from helpers.modanet import class_slug

IOU_TYPES = ("bbox", "segm")
IOU_TYPE_TITLES = {"bbox": "box AP", "segm": "mask AP"}
NO_DETECTION = "none"   # the extra confusion-matrix column for images without a detection


# -- masks and boxes ----------------------------------------------------------------------------
def encode_masks(masks):
    """COCO RLEs (counts as str, JSON-ready) of (H, W, N) instance masks."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must be (H, W, N), got shape {masks.shape}")
    rles = mask_utils.encode(np.asfortranarray(masks.astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def decode_masks(rles, height, width):
    """(H, W, N) bool masks from COCO RLEs (counts as str or bytes); the inverse of `encode_masks`."""
    if not rles:
        return np.zeros((height, width, 0), dtype=bool)
    as_bytes = [{"size": list(r["size"]),
                 "counts": r["counts"].encode("ascii") if isinstance(r["counts"], str) else r["counts"]}
                for r in rles]
    return mask_utils.decode(as_bytes).astype(bool).reshape(height, width, len(rles))


def _as_bytes_rle(rle):
    if isinstance(rle.get("counts"), str):
        return {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}
    return rle


# -- model outputs -> COCO results --------------------------------------------------------------
def _category_of(category_ids, class_id):
    """The COCO category id for a model class id (`category_ids` None means the same id)."""
    if category_ids is None:
        return class_id
    try:
        return int(category_ids[class_id])
    except (KeyError, IndexError):
        raise ValueError(f"class id {class_id} has no COCO category in category_ids "
                         f"({len(category_ids)} entries)") from None


def results_to_coco(image_id, result, category_ids=None):
    """COCO result dicts for one image's `model.detect` output.

    `result` has rois (N, 4) [y1, x1, y2, x2] pixels, class_ids (N,), scores (N,) and masks
    (H, W, N) bool. `category_ids` maps a class id to its COCO category id (a dict or a list
    indexed by class id); None keeps the class ids, which is right for `dataset_to_coco`'s
    ground truth. Each dict has image_id, category_id, bbox [x, y, w, h], score and an RLE
    segmentation whose counts are a str, so the list can be written as JSON.
    """
    missing = [key for key in ("rois", "class_ids", "scores", "masks") if key not in result]
    if missing:
        raise ValueError(f"image {image_id}: detection result lacks {', '.join(missing)}")
    rois = np.asarray(result["rois"], dtype=np.float64).reshape(-1, 4)
    class_ids = np.asarray(result["class_ids"]).reshape(-1)
    scores = np.asarray(result["scores"], dtype=np.float64).reshape(-1)
    masks = np.asarray(result["masks"])
    count = len(rois)
    if masks.ndim != 3 or len(class_ids) != count or len(scores) != count or masks.shape[-1] != count:
        raise ValueError(f"image {image_id}: {count} rois, {len(class_ids)} class ids, {len(scores)} "
                         f"scores and masks of shape {masks.shape} do not match")
    if count == 0:
        return []
    rles = encode_masks(masks)
    coco_results = []
    for (y1, x1, y2, x2), class_id, score, rle in zip(rois, class_ids, scores, rles):
        coco_results.append({
            "image_id": image_id,
            "category_id": _category_of(category_ids, int(class_id)),
            "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
            "score": float(score),
            "segmentation": rle,
        })
    return coco_results


def coco_to_result(coco_results, height, width):
    """A `model.detect`-style dict back from COCO result dicts of one image.

    class_ids are the results' category ids (the class ids, for `dataset_to_coco`'s ground
    truth); masks are decoded from the RLEs; rois come from the bboxes.
    """
    boxes = [r["bbox"] for r in coco_results]
    rois = np.array([[y, x, y + h, x + w] for x, y, w, h in boxes], dtype=np.float64).reshape(-1, 4)
    return {
        "rois": np.rint(rois).astype(np.int32),
        "class_ids": np.array([r["category_id"] for r in coco_results], dtype=np.int32),
        "scores": np.array([r["score"] for r in coco_results], dtype=np.float32),
        "masks": decode_masks([r["segmentation"] for r in coco_results], height, width),
    }


# -- dataset -> COCO ground truth ---------------------------------------------------------------
def dataset_to_coco(dataset, image_ids=None, progress=False):
    """A COCO ground-truth dict from a prepared Dataset's own masks (`load_mask`).

    Works for any `mrcnn.utils.Dataset`. Image ids are the dataset's internal image ids (the
    source id is kept as "source_id"); categories are the dataset's classes except BG, with
    the internal class ids. Each instance becomes an RLE segmentation with its area and bbox,
    iscrowd 0. Empty masks are left out (they cannot be matched and COCO would count them).
    """
    if not hasattr(dataset, "class_names"):
        raise RuntimeError("Call prepare() on the dataset before dataset_to_coco().")
    ids = list(dataset.image_ids if image_ids is None else image_ids)
    categories = [{"id": class_id, "name": name}
                  for class_id, name in enumerate(dataset.class_names) if class_id > 0]
    images, annotations = [], []
    for image_id in tqdm(ids, desc="ground truth", disable=not progress):
        image_id = int(image_id)
        info = dataset.image_info[image_id]
        masks, class_ids = dataset.load_mask(image_id)
        masks, class_ids = np.asarray(masks, dtype=bool), np.asarray(class_ids).reshape(-1)
        if masks.ndim != 3 or masks.shape[-1] != len(class_ids):
            raise ValueError(f"{dataset.image_reference(image_id)}: load_mask gave masks of shape "
                             f"{masks.shape} for {len(class_ids)} class ids")
        height, width = info.get("height"), info.get("width")
        if not height or not width:
            height, width = masks.shape[:2] if masks.shape[-1] else dataset.load_image(image_id).shape[:2]
        if masks.shape[-1] and masks.shape[:2] != (height, width):
            raise ValueError(f"{dataset.image_reference(image_id)}: masks are {masks.shape[:2]} "
                             f"but the image is {(height, width)} (height, width)")
        file_name = info.get("file_name") or str(info.get("path", image_id)).rsplit("/", 1)[-1]
        images.append({"id": image_id, "height": int(height), "width": int(width),
                       "file_name": file_name, "source_id": info.get("id")})
        nonempty = masks.any(axis=(0, 1))
        kept_ids = class_ids[nonempty]
        rles = encode_masks(masks[:, :, nonempty]) if len(kept_ids) else []
        for rle, class_id in zip(rles, kept_ids):
            byte_rle = _as_bytes_rle(rle)
            annotations.append({
                "id": len(annotations) + 1,           # COCOeval reads id 0 as "unmatched"
                "image_id": image_id,
                "category_id": int(class_id),
                "segmentation": rle,
                "area": float(mask_utils.area(byte_rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(byte_rle)],
                "iscrowd": 0,
            })
    return {"images": images, "annotations": annotations, "categories": categories}


# -- scores -------------------------------------------------------------------------------------
def _clean(value):
    """A float for JSON: NaN becomes None."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _fmt(value):
    return "  n/a" if value is None or math.isnan(value) else f"{value:.3f}"


@dataclass
class CocoScores:
    """COCO AP of one set of detections, overall and per class, for boxes and/or masks.

    metrics[iou_type] holds "AP" (mean over IoU 0.50:0.95), "AP50" and "AP75"; per_class_ap
    [iou_type][class name] is that class's AP, NaN where the class has no ground truth (COCO
    leaves such classes out of the mean). stats keeps COCOeval's 12 summary numbers.
    `results` are the COCO result dicts evaluated; `detections(image_id)` decodes one image's.
    """
    class_names: list
    gt_counts: dict
    metrics: dict
    per_class_ap: dict
    stats: dict
    num_images: int
    num_gt: int
    num_detections: int
    results: list = field(default_factory=list, repr=False)
    gt: dict = field(default=None, repr=False)

    @property
    def iou_types(self):
        return tuple(self.metrics)

    def table(self):
        """Per-class rows: {"class", "bbox_AP", "segm_AP" (those evaluated), "gt"}; NaN where no GT."""
        rows = []
        for name in self.class_names:
            row = {"class": name}
            for iou_type in self.iou_types:
                row[f"{iou_type}_AP"] = self.per_class_ap[iou_type][name]
            row["gt"] = self.gt_counts[name]
            rows.append(row)
        return rows

    def summary(self):
        """A flat dict for a metrics JSON: bbox_AP, bbox_AP50, ..., segm_AP75 and counts (NaN -> None)."""
        flat = {f"{iou_type}_{key}": _clean(value)
                for iou_type, values in self.metrics.items() for key, value in values.items()}
        flat.update(images=self.num_images, gt_instances=self.num_gt, detections=self.num_detections)
        return flat

    def detections(self, image_id):
        """One image's evaluated detections as a `model.detect`-style dict (masks decoded)."""
        if self.gt is None:
            raise ValueError("these scores keep no ground truth, so image sizes are unknown")
        image = next((im for im in self.gt["images"] if im["id"] == image_id), None)
        if image is None:
            raise KeyError(f"image {image_id!r} was not evaluated")
        mine = [r for r in self.results if r["image_id"] == image_id]
        return coco_to_result(mine, image["height"], image["width"])

    def __str__(self):
        types = self.iou_types
        lines = [f"COCO evaluation: {self.num_images} images, {self.num_gt} ground-truth instances, "
                 f"{self.num_detections} detections"]
        width = max([len(n) for n in self.class_names] + [10])
        head = "".join(f"{IOU_TYPE_TITLES.get(t, t):>9}" for t in types)
        lines.append(f"  {'':<{width}}{head}")
        for key in ("AP", "AP50", "AP75"):
            lines.append(f"  {key:<{width}}" + "".join(f"{_fmt(self.metrics[t][key]):>9}" for t in types))
        lines.append(f"  {'class':<{width}}{head}{'GT':>7}")
        for row in self.table():
            cells = "".join(f"{_fmt(row[f'{t}_AP']):>9}" for t in types)
            lines.append(f"  {row['class']:<{width}}{cells}{row['gt']:>7}")
        return "\n".join(lines)


def _quiet_coco(dataset_dict):
    """A pycocotools COCO object over an in-memory dict (its index prints are swallowed)."""
    coco = COCO()
    coco.dataset = dataset_dict
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _check_gt(gt_coco):
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt_coco.get(key), list):
            raise ValueError(f"ground truth has no '{key}' list (expected a COCO dict)")
    names = [c["name"] for c in gt_coco["categories"]]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"ground truth names categories {', '.join(doubled)} more than once")


def _gt_annotations(gt_coco, images):
    """Copies of the GT annotations with ids 1..n, iscrowd, area and bbox filled in."""
    annotations = []
    for index, annotation in enumerate(gt_coco["annotations"], start=1):
        annotation = dict(annotation, id=index)
        annotation.setdefault("iscrowd", 0)
        if "area" not in annotation or "bbox" not in annotation:
            image = images[annotation["image_id"]]
            rle = _segmentation_rle(annotation["segmentation"], image["height"], image["width"])
            annotation.setdefault("area", float(mask_utils.area(rle)))
            annotation.setdefault("bbox", [float(v) for v in mask_utils.toBbox(rle)])
        annotations.append(annotation)
    return annotations


def _segmentation_rle(segmentation, height, width):
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return _as_bytes_rle(segmentation)


def _detections_for(results, iou_type, images, category_ids):
    """COCO result dicts checked and completed (id, area, bbox) for one IoU type."""
    detections = []
    for index, result in enumerate(results, start=1):
        where = f"detection {index - 1}"
        if result.get("image_id") not in images:
            raise ValueError(f"{where}: image_id {result.get('image_id')!r} is not in the ground truth")
        if result.get("category_id") not in category_ids:
            raise ValueError(f"{where}: category_id {result.get('category_id')!r} is not a ground-truth category")
        if "score" not in result:
            raise ValueError(f"{where}: no score")
        image = images[result["image_id"]]
        detection = dict(result, id=index, iscrowd=0)
        if "segmentation" in result:
            rle = _segmentation_rle(result["segmentation"], image["height"], image["width"])
            if list(rle["size"]) != [image["height"], image["width"]]:
                raise ValueError(f"{where}: mask size {list(rle['size'])} differs from image "
                                 f"{result['image_id']}'s {[image['height'], image['width']]}")
            detection["segmentation"] = rle
        elif iou_type == "segm":
            raise ValueError(f"{where}: no segmentation, so no mask AP can be computed")
        else:
            rle = None
        if "bbox" not in detection:
            if rle is None:
                raise ValueError(f"{where}: neither bbox nor segmentation")
            detection["bbox"] = [float(v) for v in mask_utils.toBbox(rle)]
        if iou_type == "segm":
            detection["area"] = float(mask_utils.area(rle))
        else:
            detection["area"] = float(detection["bbox"][2] * detection["bbox"][3])
        detections.append(detection)
    return detections


def _mean_valid(precision):
    """Mean of the precision entries COCOeval filled in (> -1); NaN when there are none."""
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else float("nan")


def evaluate_detections(gt_coco, results, iou_types=IOU_TYPES, max_detections=100):
    """COCO AP of `results` (COCO result dicts) against `gt_coco` (a COCO dict) -> CocoScores.

    For each IoU type ("bbox", "segm"): AP (IoU 0.50:0.95), AP50, AP75 over all areas with up
    to `max_detections` per image, and each class's AP from COCOeval's precision table (mean
    over IoU thresholds and recall points that it filled in). A class without ground truth
    has AP NaN and is left out of the overall mean, as in COCO; with ground truth but no
    detections its AP is 0. No detections at all is fine (AP 0). Neither input is modified.
    """
    iou_types = tuple(iou_types)
    unknown = [t for t in iou_types if t not in IOU_TYPES]
    if unknown or not iou_types:
        raise ValueError(f"iou_types must be some of {IOU_TYPES}, got {iou_types}")
    _check_gt(gt_coco)
    images = {image["id"]: image for image in gt_coco["images"]}
    categories = sorted(gt_coco["categories"], key=lambda c: c["id"])
    category_ids = {c["id"] for c in categories}
    results = list(results)
    gt = _quiet_coco({"images": gt_coco["images"], "categories": categories,
                      "annotations": _gt_annotations(gt_coco, images)})
    names = [c["name"] for c in categories]
    gt_counts = {name: 0 for name in names}
    name_of = {c["id"]: c["name"] for c in categories}
    for annotation in gt_coco["annotations"]:
        gt_counts[name_of[annotation["category_id"]]] += 1

    metrics, per_class_ap, stats = {}, {}, {}
    for iou_type in iou_types:
        detected = _quiet_coco({"images": gt_coco["images"], "categories": categories,
                                "annotations": _detections_for(results, iou_type, images, category_ids)})
        evaluator = COCOeval(gt, detected, iou_type)
        evaluator.params.imgIds = sorted(images)
        evaluator.params.catIds = [c["id"] for c in categories]
        evaluator.params.maxDets = [1, 10, int(max_detections)]
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        # precision: [IoU threshold, recall point, class, area range, max dets]; 'all' areas, most dets
        precision = evaluator.eval["precision"][:, :, :, 0, -1]
        thresholds = evaluator.params.iouThrs
        at_50 = int(np.argmin(np.abs(thresholds - 0.50)))
        at_75 = int(np.argmin(np.abs(thresholds - 0.75)))
        per_class_ap[iou_type] = {name: _mean_valid(precision[:, :, k]) for k, name in enumerate(names)}
        metrics[iou_type] = {"AP": _mean_valid(precision), "AP50": _mean_valid(precision[at_50]),
                             "AP75": _mean_valid(precision[at_75])}
        stats[iou_type] = [float(v) for v in evaluator.stats]
    return CocoScores(class_names=names, gt_counts=gt_counts, metrics=metrics, per_class_ap=per_class_ap,
                      stats=stats, num_images=len(images), num_gt=len(gt_coco["annotations"]),
                      num_detections=len(results), results=results, gt=gt_coco)


def evaluate_model(model, dataset, image_ids=None, limit=None, progress=True, iou_types=IOU_TYPES):
    """Run `model.detect` over a prepared dataset's images and score it with COCO AP.

    Images go through the model in batches of `model.config.BATCH_SIZE`; `image_ids` picks
    images (default: all), `limit` keeps the first that many. The ground truth comes from the
    dataset's own masks (`dataset_to_coco`), so the model must have been trained on the same
    class list. The returned CocoScores keeps the detections (`scores.results`,
    `scores.detections(image_id)`) for showing them.
    """
    ids = [int(i) for i in (dataset.image_ids if image_ids is None else image_ids)]
    if limit is not None:
        ids = ids[:max(0, int(limit))]
    model_classes = getattr(model.config, "NUM_CLASSES", None)
    if model_classes is not None and int(model_classes) != len(dataset.class_names):
        raise ValueError(f"the model has {model_classes} classes (BG included) but the dataset has "
                         f"{len(dataset.class_names)}: {', '.join(dataset.class_names)}; evaluate a "
                         "model on a dataset with the class list it was trained on")
    batch = max(1, int(model.config.BATCH_SIZE))
    results = []
    with tqdm(total=len(ids), desc="detect", unit="image", disable=not progress) as bar:
        for start in range(0, len(ids), batch):
            chunk = ids[start:start + batch]
            outputs = model.detect([dataset.load_image(i) for i in chunk])
            if len(outputs) != len(chunk):
                raise RuntimeError(f"model.detect returned {len(outputs)} results for {len(chunk)} images")
            for image_id, output in zip(chunk, outputs):
                results += results_to_coco(image_id, output)
            bar.update(len(chunk))
    gt = dataset_to_coco(dataset, ids, progress=progress)
    return evaluate_detections(gt, results, iou_types)


# -- two models, per class ----------------------------------------------------------------------
def garment_class(label):
    """The garment part of a `<class>_<season>` label: 'skirt_yaz' -> 'skirt', 'scarf_tie_kis' -> 'scarf_tie'.

    Any class name is accepted (your own data's too); `helpers.seasons.parse_label` is the strict
    form that knows ModaNet's classes and the season codes.
    """
    garment, underscore, season = str(label).rpartition("_")
    if not underscore or not garment or not season:
        raise ValueError(f"label {label!r} is not '<class>_<season>'")
    return garment


def season_of(label):
    """The season part of a `<class>_<season>` label: 'scarf_tie_kis' -> 'kis'."""
    garment_class(label)            # the same check
    return str(label).rpartition("_")[2]


def _mapper(mapping):
    if mapping is None:
        return lambda label: label
    if callable(mapping):
        return mapping
    if isinstance(mapping, dict):
        def from_dict(label):
            if label not in mapping:
                raise ValueError(f"mapping has no entry for label {label!r}")
            return mapping[label]
        return from_dict
    raise TypeError(f"mapping must be None, a dict or a function, not {type(mapping).__name__}")


def compare_per_class(scores_a, scores_b, names=("model-1", "model-2"), iou_type="segm", mapping=None):
    """Rows {"class", names[0]: AP, names[1]: AP} of both models' per-class AP, one table.

    `mapping` (a dict or a function, e.g. `garment_class`) turns each of model-2's labels into
    a garment class, so "skirt_yaz", "skirt_kis", ... line up with model-1's "skirt". A
    garment's AP is the MEAN over its labels that have ground truth (not the max: a model good
    in one season only is not flattered); NaN when none has. Names are matched by their file
    form, so "scarf/tie" meets "scarf_tie". Rows follow model-1's classes, then any garment
    only model-2 knows; NaN where a model has no value.
    """
    for scores, name in zip((scores_a, scores_b), names):
        if iou_type not in scores.per_class_ap:
            raise ValueError(f"{name} was not evaluated for {iou_type!r} (it has {scores.iou_types})")
    to_garment = _mapper(mapping)
    a_by_slug = {class_slug(n): (n, ap) for n, ap in scores_a.per_class_ap[iou_type].items()}
    b_by_slug = {}
    for label, ap in scores_b.per_class_ap[iou_type].items():
        garment = str(to_garment(label))
        b_by_slug.setdefault(class_slug(garment), (garment, []))[1].append(ap)
    rows = []
    for slug in dict.fromkeys(list(a_by_slug) + list(b_by_slug)):
        name, ap_a = a_by_slug.get(slug, (None, float("nan")))
        garment, b_values = b_by_slug.get(slug, (None, []))
        with_gt = [ap for ap in b_values if not math.isnan(ap)]
        rows.append({"class": name or garment, names[0]: ap_a,
                     names[1]: float(np.mean(with_gt)) if with_gt else float("nan")})
    return rows


# -- seasons ------------------------------------------------------------------------------------
def predicted_season(result, class_names, target_class=None):
    """The season of the highest-scoring detection in one `model.detect` result, or None.

    Labels are `<class>_<season>` ("skirt_yaz", "scarf_tie_kis"): the season is the part after
    the last underscore. With `target_class` ("skirt", "scarf/tie" or "scarf_tie") only
    detections of that garment count. None when there is no (such) detection.
    """
    class_ids = np.asarray(result["class_ids"]).reshape(-1)
    scores = np.asarray(result["scores"], dtype=np.float64).reshape(-1)
    if len(class_ids) != len(scores):
        raise ValueError(f"{len(class_ids)} class ids but {len(scores)} scores")
    wanted = None if target_class is None else class_slug(target_class)
    best = None
    for class_id, score in zip(class_ids, scores):
        label = class_names[int(class_id)]
        if wanted is not None and class_slug(garment_class(label)) != wanted:
            continue
        if best is None or score > best[1]:
            best = (label, score)
    return None if best is None else season_of(best[0])


def season_confusion(true_seasons, predicted_seasons, seasons):
    """(matrix, labels, accuracy) of predicted against true seasons.

    matrix[i, j] counts images of true season seasons[i] predicted as labels[j]; labels are
    `seasons` plus "none" for images where the model detected nothing (a prediction of None).
    accuracy is the share of images whose season was right ("none" counts as wrong); NaN
    when there are no images.
    """
    true_seasons, predicted_seasons, seasons = list(true_seasons), list(predicted_seasons), list(seasons)
    if len(true_seasons) != len(predicted_seasons):
        raise ValueError(f"{len(true_seasons)} true seasons but {len(predicted_seasons)} predictions")
    if NO_DETECTION in seasons or len(set(seasons)) != len(seasons):
        raise ValueError(f"seasons must be distinct and not {NO_DETECTION!r}: {seasons}")
    labels = seasons + [NO_DETECTION]
    column = {season: j for j, season in enumerate(seasons)}
    matrix = np.zeros((len(seasons), len(labels)), dtype=np.int64)
    for index, (truth, guess) in enumerate(zip(true_seasons, predicted_seasons)):
        if truth not in column:
            raise ValueError(f"item {index}: true season {truth!r} is not one of {seasons}")
        if guess is not None and guess not in column:
            raise ValueError(f"item {index}: predicted season {guess!r} is not one of {seasons}")
        matrix[column[truth], len(seasons) if guess is None else column[guess]] += 1
    total = int(matrix.sum())
    accuracy = float(np.trace(matrix[:, :len(seasons)]) / total) if total else float("nan")
    return matrix, labels, accuracy
