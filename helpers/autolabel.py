"""Stage 2 of the course: model-1's detections become `<class>_<season>` polygons (VIA + COCO).

Each custom photo is named for one garment and season (`skirt_yaz_12.jpg`). Model-1, trained
on ModaNet, finds the garments; the detection of the file's class gives the polygon and the
file name gives the label "skirt_yaz". Detections are matched to the file's class by class
NAME through the model's own `class_names`: the original project compared class INDEXES
against a list in another order and so labelled tops as skirts (`compare_matching` shows it).

- `mask_to_polygons`: a detection mask as simplified outer polygons.
- `autolabel_folder`: the whole folder, resumable, written as VIA 2 and COCO, with a report.
- `filter_labels`: keep the labels with enough instances (the original kept 9);
  `require_enough_labels` stops with what to change when too few photos are left.
- `measure_against_truth`: how well the labels match a synthetic set's hidden truth.
"""
import os
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage
from skimage import measure
from tqdm.auto import tqdm

from helpers.guards import image_size_problem, polygon_problem, rle_problem
from helpers.io import DataError, atomic_write, dumps, loads, read_json, write_json_atomic
from helpers.modanet import CLASS_NAMES
from helpers.report import label_grid, percent, text_table
from helpers.seasons import IMAGE_EXTENSIONS, canonical_class, label_name, parse_custom_name, parse_label
from helpers.via import write_via
from mrcnn.utils import ImageTooLargeError, read_image_rgb

KEEP_CHOICES = ("best", "all")
PARTIAL_SUFFIX = ".partial.jsonl"
PARTIAL_VERSION = 1
TOO_LARGE = "too large to decode"
READ_FAILURES = ("unreadable", TOO_LARGE)
COCO_INFO = {"description": "Custom season set auto-labelled by model-1 (helpers.autolabel)", "version": "1.0"}


# --- masks -> polygons ----------------------------------------------------------------------

def mask_to_polygons(mask, tolerance=1.0, min_area=4):
    """Outer outlines of a boolean (H, W) mask as COCO polygons [x1, y1, x2, y2, ...].

    Holes are filled first (a COCO polygon has none), so each piece gives one outline.
    Outlines follow the pixel edges in pixel-corner coordinates (a full-image mask gives
    the image's corners), so pycocotools rasterises them back to the same pixels; they are
    then simplified with Douglas-Peucker at `tolerance` px (0 = exact) and rounded to
    0.1 px. Pieces with fewer than 3 points or an area under `min_area` px are dropped;
    the largest piece comes first.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    mask = mask.astype(bool, copy=False)
    if not mask.any():
        return []
    height, width = mask.shape
    filled = np.pad(ndimage.binary_fill_holes(mask), 1).astype(np.uint8)
    pieces = []
    for contour in measure.find_contours(filled, 0.5, fully_connected="high"):
        outline = _pixel_edge_outline(contour[:-1, ::-1] - 0.5)    # padded (row, col) -> corner (x, y)
        if tolerance > 0:
            outline = measure.approximate_polygon(np.vstack([outline, outline[:1]]), tolerance)[:-1]
        if len(outline) < 3:
            continue
        xs = np.clip(np.round(outline[:, 0], 1), 0, width)
        ys = np.clip(np.round(outline[:, 1], 1), 0, height)
        area = 0.5 * abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1)))
        if area < min_area:
            continue
        flat = np.empty(2 * len(xs))
        flat[0::2], flat[1::2] = xs, ys
        pieces.append((area, [float(v) for v in flat]))
    pieces.sort(key=lambda piece: -piece[0])
    return [polygon for _, polygon in pieces]


def _pixel_edge_outline(midpoints):
    """The pixel-edge outline through marching-squares points (closed, not repeated).

    At level 0.5 on a 0/1 mask every point is the midpoint of a pixel edge: x whole on a
    vertical edge, y whole on a horizontal one. Where the outline turns from one kind to
    the other, marching squares cuts the pixel corner; putting the corner back makes the
    outline exactly the boundary of the pixels."""
    x, y = midpoints[:, 0], midpoints[:, 1]
    on_vertical = np.isclose(x, np.round(x))
    next_x, next_y = np.roll(x, -1), np.roll(y, -1)
    turns = on_vertical != np.roll(on_vertical, -1)
    corners = np.where(on_vertical[:, None], np.stack([x, next_y], 1), np.stack([next_x, y], 1))
    interleaved = np.stack([midpoints, corners], 1).reshape(-1, 2)
    is_corner = np.stack([np.zeros_like(turns), turns], 1).reshape(-1)
    present = np.stack([np.ones_like(turns), turns], 1).reshape(-1)
    outline, is_corner = interleaved[present], is_corner[present]
    return np.roll(outline, -int(np.argmax(is_corner)), axis=0)   # start on a corner: simplifying keeps it


def _polygons_rle(polygons, height, width):
    rles = mask_utils.frPyObjects([list(map(float, p)) for p in polygons], height, width)
    return rles[0] if len(rles) == 1 else mask_utils.merge(rles)


def _segmentation_rle(segmentation, height, width):
    """One RLE for a COCO segmentation: polygons, uncompressed or compressed RLE.

    None when pycocotools cannot rasterise it safely (helpers.guards: non-finite or far-out
    coordinates, an outline too long, RLE counts that do not cover the image, a huge image)."""
    if not isinstance(segmentation, (list, dict)) or not segmentation or image_size_problem(width, height):
        return None
    if isinstance(segmentation, dict):
        if rle_problem(segmentation, height, width):
            return None
        segmentation = {"size": [height, width], "counts": segmentation["counts"]}
    elif any(polygon_problem(polygon, height, width) for polygon in segmentation):
        return None
    if isinstance(segmentation, list):
        return _polygons_rle(segmentation, height, width)
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


# --- the report -----------------------------------------------------------------------------

@dataclass
class AutoLabelReport:
    """What one `autolabel_folder` call saw, labelled and skipped (print it in a notebook)."""

    images_seen: int = 0
    labelled: int = 0
    skipped: dict = field(default_factory=dict)              # reason -> [file names]
    instances_per_label: dict = field(default_factory=dict)  # label -> count
    resumed: int = 0                                          # images taken from a partial run
    via_path: str = ""
    coco_path: str = ""

    @property
    def skipped_count(self):
        return sum(len(files) for files in self.skipped.values())

    def to_dict(self):
        return {"images_seen": self.images_seen, "labelled": self.labelled,
                "skipped": self.skipped_count,
                "skipped_by_reason": {reason: len(files) for reason, files in self.skipped.items()},
                "skipped_files": {reason: list(files) for reason, files in self.skipped.items()},
                "instances_per_label": dict(self.instances_per_label), "resumed": self.resumed,
                "via_path": self.via_path, "coco_path": self.coco_path}

    def table(self, max_files=5):
        """The report as text: totals, skips by reason with a few file names, labels."""
        lines = [f"Auto-labelled {self.labelled} of {self.images_seen} images "
                 f"({self.skipped_count} skipped" + (f", {self.resumed} from an interrupted run)" if self.resumed
                                                     else ")"),
                 f"  VIA:  {self.via_path}", f"  COCO: {self.coco_path}"]
        if self.skipped:
            lines.append(f"  {'skipped because':28} {'images':>6}  files")
            for reason, files in sorted(self.skipped.items(), key=lambda item: (-len(item[1]), item[0])):
                shown = ", ".join(files[:max_files]) + (", ..." if len(files) > max_files else "")
                lines.append(f"  {reason:28} {len(files):>6}  {shown}")
        if self.instances_per_label:
            lines.append(label_grid(self.instances_per_label, "instances"))
        return "\n".join(lines)

    def __str__(self):
        return self.table()


# --- the folder -----------------------------------------------------------------------------

def _model_class_names(class_names):
    """The model's names by class id, ModaNet's spelling where the name is a ModaNet class."""
    names = []
    for name in class_names:
        try:
            names.append(canonical_class(name))
        except ValueError:
            names.append(str(name))
    return names


def _as_detections(result, file_name, shape, n_classes):
    """(class_ids, scores, masks (H, W, N)) of one detect() result, checked against the image."""
    class_ids = np.asarray(result["class_ids"]).reshape(-1).astype(np.int64)
    scores = np.asarray(result["scores"], dtype=np.float64).reshape(-1)
    masks = np.asarray(result["masks"])
    if masks.ndim == 2 and len(class_ids) == 0:
        masks = masks.reshape(masks.shape + (0,))
    if masks.ndim != 3 or masks.shape[:2] != tuple(shape[:2]) or masks.shape[2] != len(class_ids) \
            or len(scores) != len(class_ids):
        raise ValueError(f"{file_name}: detect() gave masks of shape {masks.shape}, {len(class_ids)} class ids "
                         f"and {len(scores)} scores for an image of shape {tuple(shape[:2])}")
    bad = class_ids[(class_ids < 0) | (class_ids >= n_classes)]
    if bad.size:
        raise ValueError(f"{file_name}: detect() gave class id {int(bad[0])} but class_names has "
                         f"{n_classes} entries (index 0 = 'BG'): pass the model's own class names")
    return class_ids, scores, masks


def _label_image(result, file_name, parsed, shape, model_classes, min_confidence, keep, tolerance):
    """The finished entry of one detected image: its instances, or the reason it is skipped."""
    class_ids, scores, masks = _as_detections(result, file_name, shape, len(model_classes))
    of_class = [i for i, class_id in enumerate(class_ids) if model_classes[class_id] == parsed.class_name]
    if not of_class:
        return {"file": file_name, "skip": f"no {parsed.class_name} detected"}
    strong = sorted((i for i in of_class if scores[i] >= min_confidence), key=lambda i: -scores[i])
    if not strong:
        return {"file": file_name, "skip": "below confidence"}
    if keep == "best":
        strong = strong[:1]
    instances = []
    for i in strong:
        polygons = mask_to_polygons(masks[:, :, i], tolerance)
        if polygons:
            instances.append({"score": round(float(scores[i]), 4), "polygons": polygons})
    if not instances:
        return {"file": file_name, "skip": "empty mask"}
    return {"file": file_name, "width": int(shape[1]), "height": int(shape[0]),
            "class": parsed.class_name, "season": parsed.season, "instances": instances}


class _Journal:
    """The partial state of a run: a header line with the settings, then one JSON line per
    finished batch, appended and fsynced. Appending keeps each save as small as the batch
    (rewriting all finished entries after every batch grows quadratically with the folder);
    a line cut short by a crash is detected on reading and dropped with what follows it."""

    def __init__(self, path, settings):
        self.path, self.settings = Path(path), settings

    def load(self):
        """The entries of an earlier run with the same settings ({file: entry}); {} otherwise."""
        try:
            lines = self.path.read_bytes().split(b"\n")
            header = loads(lines[0])
        except (OSError, ValueError):
            return {}
        if not isinstance(header, dict) or header.get("settings") != self.settings:
            warnings.warn(f"{self.path}: partial run with other settings (or unreadable); starting over",
                          stacklevel=3)
            return {}
        entries, good = {}, [lines[0]]
        for line in lines[1:]:
            try:
                batch = loads(line)
                entries.update((entry["file"], entry) for entry in batch["entries"])
            except (ValueError, TypeError, KeyError):
                break
            good.append(line)
        if len(good) < len([line for line in lines if line.strip()]):
            self._rewrite(good)            # drop a cut-off line before appending after it
        return entries

    def start(self):
        self._rewrite([dumps({"version": PARTIAL_VERSION, "settings": self.settings})])

    def _rewrite(self, lines):
        with atomic_write(self.path, "wb") as f:
            f.write(b"".join(line + b"\n" for line in lines))

    def append(self, entries):
        with open(self.path, "ab") as f:
            f.write(dumps({"entries": entries}) + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def remove(self):
        self.path.unlink(missing_ok=True)


def autolabel_folder(model, class_names, images_dir, out_via, out_coco, min_confidence=0.7, keep="best",
                     tolerance=1.0, batch_size=None, resume=True, progress=True):
    """Label every `<class>_<season>_<n>` image of `images_dir` with model-1; write VIA 2 and COCO.

    `model.detect(list of RGB uint8 images)` returns Matterport's dicts (rois, class_ids,
    scores, masks (H, W, N)); `class_names[class_id]` names a detection (index 0 = "BG"),
    e.g. the training dataset's `class_names`. Of the detections whose NAME is the file's
    class and whose score is >= `min_confidence`, keep="best" keeps the highest-scoring one,
    keep="all" all. Images are skipped (and listed in the report) for: "bad name",
    "unreadable", "too large to decode" (a header beyond Pillow's decompression-bomb limit),
    "class not in model", "no <class> detected", "below confidence", "empty mask". After each
    batch the finished images are saved beside `out_coco` (`<out_coco>.partial.jsonl`), and a
    photo that cannot be read at once, so a resumed run never reads it again; with
    resume=True a new call continues from there.
    Returns an AutoLabelReport.
    """
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence!r}")
    if float(tolerance) < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance!r}")
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"{images_dir}: images folder not found")
    if batch_size is None:
        batch_size = getattr(getattr(model, "config", None), "BATCH_SIZE", 1)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    model_classes = _model_class_names(class_names)
    files = sorted(p.name for p in images_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)

    journal = _Journal(f"{out_coco}{PARTIAL_SUFFIX}", {
        "images_dir": str(images_dir.resolve()), "class_names": model_classes, "keep": keep,
        "min_confidence": float(min_confidence), "tolerance": float(tolerance)})
    done = journal.load() if resume else {}
    if not done:
        journal.start()
    resumed = sum(name in done for name in files)

    batch, finished = [], []       # images waiting for detect(); entries not yet journalled

    def run_batch():
        images = [image for _, _, image in batch]
        padded = images + [images[-1]] * (batch_size - len(images))   # Matterport wants full batches
        results = model.detect(padded)
        for (name, parsed, image), result in zip(batch, results[:len(batch)]):
            entry = _label_image(result, name, parsed, image.shape, model_classes, float(min_confidence),
                                 keep, tolerance)
            done[name] = entry
            finished.append(entry)
        journal.append(finished)
        batch.clear()
        finished.clear()

    for name in tqdm([n for n in files if n not in done], desc="Auto-labelling", unit="img",
                     disable=not progress):
        try:
            parsed = parse_custom_name(name)
        except ValueError:
            entry = {"file": name, "skip": "bad name"}
        else:
            if parsed.class_name not in model_classes:
                entry = {"file": name, "skip": "class not in model"}
            else:
                entry = _read_into(batch, images_dir, name, parsed)
        if entry is not None:
            done[name] = entry
            finished.append(entry)
            if entry["skip"] in READ_FAILURES:      # journalled now: a resume must not read it again
                journal.append(finished)
                finished.clear()
        if len(batch) == batch_size:
            run_batch()
    if batch:
        run_batch()

    entries = [done[name] for name in files]
    via, coco = _outputs([e for e in entries if "skip" not in e])
    coco["info"]["images_dir"] = str(Path(images_dir).resolve())   # where notebooks 06 and 07 find the photos
    write_via(via, out_via)
    write_json_atomic(out_coco, coco)
    journal.remove()

    report = AutoLabelReport(images_seen=len(files), resumed=resumed, via_path=str(out_via),
                             coco_path=str(out_coco))
    for entry in entries:
        if "skip" in entry:
            report.skipped.setdefault(entry["skip"], []).append(entry["file"])
    report.labelled = len(coco["images"])
    counts = Counter(a["category_id"] for a in coco["annotations"])
    report.instances_per_label = {c["name"]: counts[c["id"]] for c in coco["categories"]}
    return report


def _read_into(batch, images_dir, name, parsed):
    """Append (name, parsed, pixels) to `batch`; None, or the skip entry when the photo cannot be read."""
    try:
        batch.append((name, parsed, read_image_rgb(images_dir / name)))
        return None
    except ImageTooLargeError:
        return {"file": name, "skip": TOO_LARGE}
    except (OSError, ValueError):
        return {"file": name, "skip": "unreadable"}


def _outputs(labelled):
    """(VIA 2 export, COCO dict) of the labelled entries, in file order.

    A VIA region is one polygon; the polygons of one instance share the region attributes
    "annotation_id" and "part", which helpers.convert.via_to_coco uses to rebuild it."""
    labels = sorted({label_name(e["class"], e["season"]) for e in labelled})
    categories = [{"id": i, "name": label, "supercategory": parse_label(label)[0]}
                  for i, label in enumerate(labels, 1)]
    category_id = {c["name"]: c["id"] for c in categories}
    via, images, annotations = {}, [], []
    for image_id, entry in enumerate(labelled, 1):
        name, width, height = entry["file"], entry["width"], entry["height"]
        label = label_name(entry["class"], entry["season"])
        images.append({"id": image_id, "file_name": name, "width": width, "height": height,
                       "target_class": entry["class"], "season": entry["season"]})
        regions = []
        for instance in entry["instances"]:
            polygons = instance["polygons"]
            xs = [v for p in polygons for v in p[0::2]]
            ys = [v for p in polygons for v in p[1::2]]
            annotation = {
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category_id[label],
                "segmentation": polygons, "area": int(mask_utils.area(_polygons_rle(polygons, height, width))),
                "bbox": [min(xs), min(ys), round(max(xs) - min(xs), 1), round(max(ys) - min(ys), 1)],
                "iscrowd": 0, "score": instance["score"]}
            annotations.append(annotation)
            for part, polygon in enumerate(polygons):
                regions.append({
                    "shape_attributes": {"name": "polygon", "all_points_x": polygon[0::2],
                                         "all_points_y": polygon[1::2]},
                    "region_attributes": {"label": label, "class": entry["class"], "season": entry["season"],
                                          "score": f"{instance['score']:.3f}",
                                          "annotation_id": str(annotation["id"]), "part": str(part)}})
        via[name] = {"filename": name, "size": -1, "regions": regions,
                     "file_attributes": {"width": width, "height": height,
                                         "target_class": entry["class"], "season": entry["season"]}}
    coco = {"info": dict(COCO_INFO), "licenses": [], "images": images, "annotations": annotations,
            "categories": categories}
    return via, coco


# --- after labelling ------------------------------------------------------------------------

def _read_coco(coco, what):
    if isinstance(coco, (str, Path)):
        coco = read_json(coco, what)
    if not (isinstance(coco, dict) and {"images", "annotations", "categories"} <= coco.keys()):
        raise DataError(f"{what}: not a COCO dataset (needs 'images', 'annotations' and 'categories')")
    return coco


@dataclass
class FilteredLabels:
    """`filter_labels`' answer: the filtered COCO, and (label, instances) kept and dropped."""

    coco: dict
    kept: list
    dropped: list
    min_per_class: int = None

    def __iter__(self):                 # coco, kept, dropped = filter_labels(...)
        return iter((self.coco, self.kept, self.dropped))

    def __str__(self):
        rule = f" (at least {self.min_per_class} instances)" if self.min_per_class is not None else ""
        dropped = ", ".join(f"{label} {count}" for label, count in self.dropped) or "none"
        lines = [f"kept {len(self.kept)} labels{rule}, dropped {len(self.dropped)}: {dropped}"]
        if self.kept:
            lines.append(label_grid(dict(self.kept), "kept instances"))
        return "\n".join(lines)


def filter_labels(coco, min_per_class):
    """Keep the labels with at least `min_per_class` instances (a COCO dict or path).

    The kept categories are renumbered 1..K in their order; images left without
    annotations are dropped. Returns FilteredLabels(coco, kept, dropped), each list of
    (label, instances) sorted by instances, most first."""
    if int(min_per_class) != min_per_class or min_per_class < 0:
        raise ValueError(f"min_per_class must be a whole number >= 0, got {min_per_class!r}")
    coco = _read_coco(coco, "auto-labelled COCO")
    counts = Counter(a["category_id"] for a in coco["annotations"])
    kept_categories = [c for c in coco["categories"] if counts[c["id"]] >= min_per_class]
    new_id = {c["id"]: i for i, c in enumerate(kept_categories, 1)}
    annotations = [dict(a, category_id=new_id[a["category_id"]]) for a in coco["annotations"]
                   if a["category_id"] in new_id]
    with_annotations = {a["image_id"] for a in annotations}
    filtered = dict(coco, categories=[dict(c, id=new_id[c["id"]]) for c in kept_categories],
                    images=[im for im in coco["images"] if im["id"] in with_annotations],
                    annotations=annotations)

    def by_count(categories):
        return sorted(((c["name"], counts[c["id"]]) for c in categories), key=lambda item: (-item[1], item[0]))
    dropped = [c for c in coco["categories"] if c["id"] not in new_id]
    return FilteredLabels(filtered, by_count(kept_categories), by_count(dropped), min_per_class)


MIN_IMAGES_TO_SPLIT = 3     # one photo at least in each of train, val and test


def require_enough_labels(filtered, report, min_per_class, min_images=MIN_IMAGES_TO_SPLIT):
    """Raise a DataError saying what to change when too few photos are left to train model-2 on.

    filtered: `filter_labels`' answer; report: the AutoLabelReport of the same run (for its
    counts). Returns `filtered` when at least `min_images` photos keep a label.
    """
    photos = len(filtered.coco["images"])
    if photos >= min_images:
        return filtered
    below = report.skipped.get("below confidence", [])
    raise DataError(
        f"Only {photos} photo(s) keep a label with at least {min_per_class} instances; model-2 needs "
        f"{min_images} (train, val and test). Model-1 labelled {report.labelled} of {report.images_seen} "
        f"photos ({len(below)} had the garment only below confidence); labels dropped: {filtered.dropped or 'none'}. "
        f"Train model-1 longer (notebook 04), or lower MIN_CONFIDENCE or MIN_PER_CLASS and run this again.")


def _category_class(category):
    """The ModaNet class of an auto-label category ('skirt_yaz' -> 'skirt')."""
    try:
        return parse_label(category["name"])[0]
    except ValueError:
        return canonical_class(category.get("supercategory") or category["name"])


def _share(flags):
    return float(np.mean(flags)) if len(flags) else None


def _summary(rows):
    ious = [iou for iou, _ in rows]
    return {"instances": len(rows), "mean_iou": _share(ious), "share_iou_50": _share([iou >= 0.5 for iou in ious]),
            "share_wrong_garment": _share([wrong for _, wrong in rows])}


def measure_against_truth(auto_coco, truth_coco):
    """How the auto-labels match a synthetic set's truth (COCO dicts or paths; images matched by file_name).

    For each auto-labelled instance: its mask IoU with the truth instance of the file's
    target class on the same image (the best one if several), and whether the truth
    instance it overlaps most is another garment ("wrong garment"; no overlap at all counts
    as wrong too). Returns images in truth, share of them labelled, instances, mean IoU,
    share with IoU >= 0.5 and share of wrong garments, overall and per class. Segmentations
    pycocotools cannot rasterise safely (helpers.guards) are left out and counted."""
    auto = _read_coco(auto_coco, "auto-labelled COCO")
    truth = _read_coco(truth_coco, "truth COCO")
    truth_class = {c["id"]: canonical_class(c["name"]) for c in truth["categories"]}
    auto_class = {c["id"]: _category_class(c) for c in auto["categories"]}
    truth_images = {im["file_name"]: im for im in truth["images"]}
    truth_anns = defaultdict(list)
    for ann in truth["annotations"]:
        truth_anns[ann["image_id"]].append(ann)
    auto_images = {im["id"]: im for im in auto["images"]}

    rows = defaultdict(list)       # class -> [(iou with target, wrong garment)]
    labelled, not_in_truth = set(), set()
    unusable, unusable_truth = Counter(), set()    # segmentations pycocotools cannot rasterise safely
    for ann in auto["annotations"]:
        file_name = auto_images[ann["image_id"]]["file_name"]
        image = truth_images.get(file_name)
        if image is None:
            not_in_truth.add(file_name)
            continue
        labelled.add(file_name)
        height, width = image["height"], image["width"]
        cls = auto_class[ann["category_id"]]
        target = image.get("target_class") or parse_custom_name(file_name).class_name
        own = _segmentation_rle(ann.get("segmentation"), height, width)
        if own is None:
            unusable["auto"] += 1
            continue
        candidates, candidate_rles = [], []
        for t in truth_anns[image["id"]]:
            rle = _segmentation_rle(t.get("segmentation"), height, width)
            if rle is None:
                unusable_truth.add(id(t))
            else:
                candidates.append(t)
                candidate_rles.append(rle)
        if candidates:
            ious = mask_utils.iou([own], candidate_rles, [0] * len(candidates))[0]
        else:
            ious = np.zeros(0)
        classes = [truth_class[t["category_id"]] for t in candidates]
        target_iou = max((float(iou) for iou, c in zip(ious, classes) if c == canonical_class(target)), default=0.0)
        best = int(np.argmax(ious)) if len(ious) else None
        wrong = best is None or ious[best] <= 0 or classes[best] != cls
        rows[cls].append((target_iou, bool(wrong)))

    result = LabelQuality({"images_in_truth": len(truth_images), "images_labelled": len(labelled),
              "share_labelled": len(labelled) / len(truth_images) if truth_images else None,
              "auto_images_not_in_truth": len(not_in_truth),
              "unusable_segmentations": {"auto": unusable["auto"], "truth": len(unusable_truth)}})
    result.update(_summary([row for cls_rows in rows.values() for row in cls_rows]))
    result["per_class"] = {cls: _summary(rows[cls]) for cls in sorted(rows)}
    return result


class LabelQuality(dict):
    """`measure_against_truth`'s figures: a plain dict (for the metrics file) that prints as a table."""

    def __str__(self):
        lines = [f"{self['images_labelled']} of {self['images_in_truth']} photos with truth auto-labelled "
                 f"({percent(self['share_labelled'])})"]
        if self.get("auto_images_not_in_truth"):
            lines[0] += f"; {self['auto_images_not_in_truth']} auto-labelled photos are not in the truth"
        unusable = self.get("unusable_segmentations") or {}
        if any(unusable.values()):
            lines.append(f"  left out, not rasterisable: {unusable.get('auto', 0)} auto-labels, "
                         f"{unusable.get('truth', 0)} truth instances")
        rows = [[name, q["instances"], q["mean_iou"], percent(q["share_iou_50"]), percent(q["share_wrong_garment"])]
                for name, q in [*self.get("per_class", {}).items(), ("all", self)]]
        lines.append(text_table(rows, headers=["garment", "instances", "mean IoU", "IoU >= 0.5", "wrong garment"]))
        return "\n".join(lines)


class MatchingComparison(dict):
    """`compare_matching`'s answer: a plain dict that prints as one row per photo."""

    def __str__(self):
        rows = [[file_class, str(index), str(name)] for file_class, index, name in self["rows"]]
        return "\n".join([
            f"wrong garment: by index {self['index_wrong_garment']}, by name {self['name_wrong_garment']} "
            f"of {self['images']} photos (None: nothing detected for it)",
            text_table(rows, headers=["photo's garment", "index matching picks", "name matching picks"])])


def _best_garment(class_ids, scores, chosen, model_names):
    """The model's name of the best-scoring chosen detection (None when none is chosen)."""
    if not chosen.any():
        return None
    return model_names[class_ids[np.flatnonzero(chosen)[np.argmax(scores[chosen])]]]


def compare_matching(results, file_classes, model_class_names, assumed_class_names=None):
    """Which garment index matching and name matching pick, image by image.

    `results`: detect() dicts; `file_classes`: the class each file is named for;
    `model_class_names`: the model's names by class id. Index matching (the original
    project's bug) takes the id the class has in `assumed_class_names` (default: "BG" and
    ModaNet's order) and reads detections of that id; name matching reads the detections
    whose model name is the class. Returns counts of wrong garments and one row per image:
    (file class, garment index matching picked, garment name matching picked; None = nothing).
    """
    assumed = _model_class_names(["BG", *CLASS_NAMES] if assumed_class_names is None else assumed_class_names)
    model_names = _model_class_names(model_class_names)
    rows = []
    for result, file_class in zip(results, file_classes, strict=True):
        file_class = canonical_class(file_class)
        if file_class not in assumed:
            raise ValueError(f"{file_class!r} is not in assumed_class_names {assumed}")
        class_ids = np.asarray(result["class_ids"]).reshape(-1).astype(int)
        scores = np.asarray(result["scores"], dtype=np.float64).reshape(-1)
        by_index = _best_garment(class_ids, scores, class_ids == assumed.index(file_class), model_names)
        by_name = _best_garment(class_ids, scores, np.array([model_names[c] == file_class for c in class_ids],
                                                            bool), model_names)
        rows.append((file_class, by_index, by_name))
    return MatchingComparison({"images": len(rows),
                               "index_wrong_garment": sum(index not in (None, cls) for cls, index, _ in rows),
                               "name_wrong_garment": sum(name not in (None, cls) for cls, _, name in rows),
                               "rows": rows})
