"""Check and repair ModaNet's own annotation defects (issue 31): duplicates, boxes, areas, shoe pairs.

Real ModaNet passes every format check, yet it has three defects that change what a model
learns and how it is scored:

- exact duplicate annotations: the same image, category and polygons, under consecutive ids
  (mostly footwear and boots, the known eBay/modanet issue #4). A Dataset would return both
  copies as two instances, and a perfect detector could match only one of them;
- boxes that disagree with their polygons (some are the box of one polygon part only, or of a
  neighbouring annotation); COCOeval scores box AP against the given box;
- `area` is the box's w x h, not the garment's area, so COCOeval's small / medium / large
  ranges sort garments by the wrong number.

`repair_coco(coco)` finds all three and repairs them (each step can be turned off, and is then
still counted where that is cheap), and, as an option, splits footwear / boots annotations
whose polygon parts are two separate shoes into one instance per shoe. It is a pure function:
the input dict is left as it is; a new dict and a `RepairSummary` (print it) come back.
`CocoDataset.load_coco` applies it by default, so training and evaluation see the repaired
truth; `helpers.convert` reports what it finds without changing anything.

Command line (prints the counts, writes atomically; bad input is a one-line error, exit 2):
    python -m helpers.repair IN.json OUT.json [--keep-duplicates] [--split-shoes]
                                              [--no-fix-boxes] [--no-recompute-area]
"""
import argparse
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from helpers.guards import MAX_IMAGE_SIDE, positive_int
from helpers.io import (DataError, describe_os_error, read_json, remove_temp_files_on_signals, same_file,
                        write_json_atomic)

BOX_TOLERANCE = 1.0      # px: a box within this of the polygons' extent on every side agrees
SHOE_CLASSES = ("footwear", "boots")
PLAIN_IDS = (int, str)
# Two polygon parts sharing at most this fraction of the smaller one's pixels are two shoes
# (when the annotation came once per part): outlines of feet side by side touch at a few pixels.
SHOE_OVERLAP = 0.05
MAX_EXAMPLES = 10


# --- the report ---------------------------------------------------------------------------------
@dataclass
class RepairSummary:
    """What `repair_coco` found and what it changed; `print(summary)` shows it.

    Box and area counts are over the annotations written (after duplicates are dropped, before
    shoes are split). `not_checked` annotations (an RLE, a malformed or non-finite polygon, an
    image too large or coordinates far outside it) are passed through unchanged.
    """

    drop_duplicates: bool = True
    fix_boxes: bool = True
    recompute_area: bool = True
    split_shoes: bool = False
    tolerance: float = BOX_TOLERANCE
    images: int = 0
    annotations_in: int = 0
    annotations_out: int = 0
    duplicates: int = 0
    duplicates_by_class: Counter = field(default_factory=Counter)
    boxes_disagreeing: int = 0
    boxes_one_part_only: int = 0
    areas_changed: int = 0
    shoes_split: int = 0
    shoe_instances_added: int = 0
    ids_renumbered: int = 0
    not_checked: int = 0
    class_counts_in: dict = field(default_factory=dict)
    class_counts_out: dict = field(default_factory=dict)
    examples: list = field(default_factory=list)   # (image id, annotation id, what)

    def note(self, counter, annotation, what):
        """Count one case and keep its description while there is room."""
        setattr(self, counter, getattr(self, counter) + 1)
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((annotation.get("image_id"), annotation.get("id"), what))

    @property
    def changes_file(self):
        """False for a check only (nothing repaired but dropped duplicates): annotations untouched."""
        return self.fix_boxes or self.recompute_area or self.split_shoes

    @property
    def found(self):
        """Defects found (duplicates, boxes, areas, shoe pairs split, repeated ids); 0: a clean file."""
        return (self.duplicates + self.boxes_disagreeing + self.areas_changed + self.shoes_split
                + self.ids_renumbered)

    def counters(self):
        """The counts as a plain dict (for tests, metrics and tables)."""
        return {"annotations_in": self.annotations_in, "annotations_out": self.annotations_out,
                "duplicates": self.duplicates, "boxes_disagreeing": self.boxes_disagreeing,
                "boxes_one_part_only": self.boxes_one_part_only, "areas_changed": self.areas_changed,
                "shoes_split": self.shoes_split, "shoe_instances_added": self.shoe_instances_added,
                "ids_renumbered": self.ids_renumbered, "not_checked": self.not_checked}

    def class_changes(self):
        """{class: (before, after)} for the classes whose instance count changed."""
        names = list(dict.fromkeys([*self.class_counts_in, *self.class_counts_out]))
        return {n: (self.class_counts_in.get(n, 0), self.class_counts_out.get(n, 0)) for n in names
                if self.class_counts_in.get(n, 0) != self.class_counts_out.get(n, 0)}

    def lines(self):
        """The report as short text lines."""
        by_class = ", ".join(f"{name} {count}" for name, count in self.duplicates_by_class.most_common())
        out = [f"ModaNet check and repair: {self.annotations_in} annotations in, "
               f"{self.annotations_out} out ({self.images} images)",
               f"  exact duplicates (same image, class, polygons): {self.duplicates}"
               + (f" ({by_class})" if by_class else "")
               + (" - dropped, first copy kept" if self.drop_duplicates else " - kept") * bool(self.duplicates),
               f"  boxes off their polygons' extent by > {self.tolerance:g} px: {self.boxes_disagreeing}"
               f" ({self.boxes_one_part_only} are one polygon part's box only)"
               + (" - replaced by the polygons' box" if self.fix_boxes else " - kept")
               * bool(self.boxes_disagreeing)]
        if self.recompute_area:
            out.append(f"  areas recomputed from the polygons (pycocotools pixel count): "
                       f"{self.areas_changed} changed")
        else:
            out.append("  areas: not checked (recompute_area off)")
        if self.split_shoes:
            out.append(f"  footwear / boots split into one instance per shoe: {self.shoes_split} annotations "
                       f"-> {self.shoes_split + self.shoe_instances_added} instances")
        if self.ids_renumbered:
            out.append(f"  annotations whose id an earlier one has: {self.ids_renumbered}"
                       + (" - given new ids" if self.changes_file else " - kept"))
        if self.not_checked:
            out.append(f"  not checked (RLE, malformed or out-of-range polygons; passed through): "
                       f"{self.not_checked}")
        changes = self.class_changes()
        if changes:
            out.append("  instances per class: " + ", ".join(f"{n} {a} -> {b}" for n, (a, b) in changes.items()))
        if self.found == 0:
            out.append("  no defects found")
        elif self.examples:
            out.append(f"  first {len(self.examples)} cases (image id, annotation id, what):")
            out.extend(f"    {image} | {ann} | {what}" for image, ann, what in self.examples)
        return out

    def short(self):
        """One line for other reports (Dataset.summary, notebooks)."""
        parts = [f"{self.duplicates} duplicates " + ("dropped" if self.drop_duplicates else "kept"),
                 f"{self.boxes_disagreeing} boxes " + ("fixed" if self.fix_boxes else "off their polygons")]
        if self.recompute_area:
            parts.append(f"{self.areas_changed} areas recomputed")
        if self.split_shoes:
            parts.append(f"{self.shoes_split} shoe pairs split")
        if self.not_checked:
            parts.append(f"{self.not_checked} not checked")
        return ", ".join(parts)

    def __str__(self):
        return "\n".join(self.lines())


# --- geometry -----------------------------------------------------------------------------------
def _polygon_parts(segmentation):
    """The segmentation's polygons when it is a non-empty list of flat polygons (>= 3 points,
    even length, numbers first), else None: RLEs and malformed ones are not checked."""
    if not isinstance(segmentation, list) or not segmentation:
        return None
    for polygon in segmentation:
        if (not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2
                or isinstance(polygon[0], str) or isinstance(polygon[1], str)):
            return None
    return segmentation


def _one_polygon_box(polygon):
    try:
        values = np.asarray(polygon)
    except (TypeError, ValueError, OverflowError, RecursionError):   # ragged or nested lists
        return np.full(4, np.nan)
    if values.dtype.kind not in "iuf" or values.ndim != 1:
        return np.full(4, np.nan)
    values = values.astype(np.float64)
    xs, ys = values[0::2], values[1::2]
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()])


def part_boxes(polygons):
    """(n, 4) float array [x0, y0, x1, y1] of each flat polygon (even length, >= 6 values), in
    one numpy pass over all points; a polygon with a non-finite or non-numeric value gets a row
    that is not all finite."""
    if not polygons:
        return np.zeros((0, 4))
    counts = np.fromiter(map(len, polygons), dtype=np.int64, count=len(polygons))
    try:
        flat = np.fromiter(chain.from_iterable(polygons), dtype=np.float64, count=int(counts.sum()))
    except (TypeError, ValueError, OverflowError):
        return np.stack([_one_polygon_box(p) for p in polygons])
    starts = np.zeros_like(counts)
    np.cumsum(counts[:-1], out=starts[1:])
    xs, ys, first = flat[0::2], flat[1::2], starts // 2   # every polygon has even length
    return np.stack([np.minimum.reduceat(xs, first), np.minimum.reduceat(ys, first),
                     np.maximum.reduceat(xs, first), np.maximum.reduceat(ys, first)], axis=1)


def _plain(value):
    """A float as an int when it is whole (ModaNet's boxes are ints), else the float."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _box_of(extent, size):
    """[x, y, w, h] of an extent [x0, y0, x1, y1], clipped to the image when its size is known
    (the box of what can be drawn: what pycocotools' toBbox gives within a pixel)."""
    x0, y0, x1, y1 = extent
    width, height = size
    if width is not None:
        x0, x1 = min(max(x0, 0.0), width), min(max(x1, 0.0), width)
        y0, y1 = min(max(y0, 0.0), height), min(max(y1, 0.0), height)
    return [_plain(x0), _plain(y0), _plain(x1 - x0), _plain(y1 - y0)]


def _canvas(extent, size):
    """(height, width) to rasterise on, or None when that would be unsafe: an image above
    MAX_IMAGE_SIDE, or points far outside the image (pycocotools' memory grows with the
    polygons' length in pixels, not with the image)."""
    width, height = size
    x0, y0, x1, y1 = extent
    if width is None:   # unknown size: a canvas that holds every point
        width, height = math.ceil(x1) + 1, math.ceil(y1) + 1
        if x0 < 0 or y0 < 0:
            return None
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        return None
    if x0 < -width or y0 < -height or x1 > 2 * width or y1 > 2 * height:
        return None
    return height, width


def _valid_box(box):
    if not (isinstance(box, (list, tuple)) and len(box) == 4):
        return False
    try:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)
    except OverflowError:   # an int too large for a float
        return False


def _disagrees(box, reference, tolerance):
    return max(abs(a - b) for a, b in zip(box, reference)) > tolerance


def _shoe_groups(boxes):
    """Parts (indices) grouped so that parts whose boxes touch or overlap share a group."""
    group = list(range(len(boxes)))

    def root(i):
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]:
                group[root(i)] = root(j)
    groups = {}
    for i in range(len(boxes)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _area(polygons, canvas):
    """The COCO area: pixels of the merged mask as pycocotools rasterises the polygons."""
    rles = mask_utils.frPyObjects([list(p) for p in polygons], *canvas)
    return int(mask_utils.area(rles[0] if len(rles) == 1 else mask_utils.merge(rles)))


# --- the repair ---------------------------------------------------------------------------------
def _check_coco(coco):
    if not (isinstance(coco, dict) and isinstance(coco.get("images"), list)
            and isinstance(coco.get("annotations"), list)):
        found = sorted(map(str, coco))[:6] if isinstance(coco, dict) else type(coco).__name__
        raise DataError(f"COCO data: expected 'images' and 'annotations' lists (found {found})")


def _class_counts(annotations, names):
    counts = Counter({name: 0 for name in names.values()})
    for ann in annotations:
        if isinstance(ann, dict):
            try:
                counts[names.get(ann.get("category_id"), str(ann.get("category_id")))] += 1
            except TypeError:   # an unhashable category id
                counts[str(ann.get("category_id"))] += 1
    return dict(counts)


def _same(a, b):
    try:
        return a == b
    except RecursionError:    # absurdly nested lists: not a polygon, not compared
        return False


def _drop_duplicates(annotations, names, summary, drop):
    """The annotations without later exact copies (or all, counted, when `drop` is False), and
    for each one kept the number of copies found of it (0 for the copies themselves)."""
    kept, seen, copies = [], {}, {}
    for ann in annotations:
        # only plain int / str ids are compared: True and 1.0 equal 1 in Python, and a copy
        # with a bad id must not make the good annotation its duplicate
        if (isinstance(ann, dict) and ann.get("segmentation")
                and type(ann.get("image_id")) in PLAIN_IDS and type(ann.get("category_id")) in PLAIN_IDS):
            try:
                bucket = seen.setdefault((ann.get("image_id"), ann.get("category_id")), [])
            except TypeError:     # unhashable ids: not comparable, passed through
                bucket = None
            if bucket is not None:
                segmentation = ann["segmentation"]
                first = next((other for other in bucket if _same(other["segmentation"], segmentation)), None)
                if first is not None:
                    copies[id(first)] = copies.get(id(first), 0) + 1
                    name = names.get(ann.get("category_id"), str(ann.get("category_id")))
                    summary.duplicates_by_class[name] += 1
                    summary.note("duplicates", ann, f"exact copy of annotation {first.get('id')} ({name})")
                    if drop:
                        continue
                else:
                    bucket.append(ann)
        kept.append(ann)
    return kept, [copies.get(id(ann), 0) for ann in kept]


def repair_coco(coco, drop_duplicates=True, fix_boxes=True, recompute_area=True, split_shoes=False,
                tolerance=BOX_TOLERANCE, progress=False):
    """Find and repair ModaNet's defects in a COCO dict; returns (repaired COCO, RepairSummary).

    1. exact duplicates (same image_id, category_id and segmentation): counted; the later copies
       are dropped unless `drop_duplicates=False`;
    2. a `bbox` farther than `tolerance` px from the polygons' extent (or missing): counted (and
       those equal to one polygon part's box only, separately); replaced by the polygons' box
       (clipped to the image) unless `fix_boxes=False`;
    3. with `recompute_area` (default), `area` becomes the pixel count of the merged mask as
       pycocotools rasterises the polygons (frPyObjects + merge + area), counted where it
       changes. That, not the shoelace area (`helpers.convert.polygon_areas`), is the COCO
       definition: the number COCOeval's small / medium / large ranges are measured on, what
       `helpers.convert.via_to_coco` and `helpers.sample` write, and what `segmentation_to_mask`
       draws for training. `recompute_area=False` skips the rasterisation (no area count);
    4. with `split_shoes`, a footwear / boots annotation whose polygon parts fall into two or
       more groups with no touching boxes between them, or that came with one exact copy per
       part and whose parts barely overlap (`_split_shoes`), becomes one instance per group: the
       first keeps the annotation's id, the others get new ids above every id; each gets its
       own box and area. The summary's class counts show what that does per class.

    The input is not changed. Annotations the checks cannot measure (RLE, malformed or
    non-finite polygons, an image above MAX_IMAGE_SIDE px, points far outside the image) are
    passed through and counted as `not_checked`; anything that is not an annotation is passed
    through untouched.
    """
    _check_coco(coco)
    summary = RepairSummary(drop_duplicates, fix_boxes, recompute_area, split_shoes, tolerance)
    names = {}
    for category in coco.get("categories") or []:
        if isinstance(category, dict) and isinstance(category.get("id"), int):
            names[category["id"]] = str(category.get("name"))
    sizes = {}
    for image in coco["images"]:
        if isinstance(image, dict):
            width, height = positive_int(image.get("width")), positive_int(image.get("height"))
            try:
                sizes[image.get("id")] = (width, height) if width and height else (None, None)
            except TypeError:
                pass
    annotations = coco["annotations"]
    summary.images, summary.annotations_in = len(coco["images"]), len(annotations)
    summary.class_counts_in = _class_counts(annotations, names)

    kept, copies = _drop_duplicates(annotations, names, summary, drop_duplicates)
    changing = summary.changes_file    # else a check: nothing to copy
    out = [dict(ann) if changing and isinstance(ann, dict) else ann for ann in kept]
    _renumber_repeated_ids(out, summary, changing)

    # one numpy pass for every polygon's box, then each annotation's extent
    measurable, polygons, counts = [], [], []
    for index, ann in enumerate(out):
        if not isinstance(ann, dict):
            continue
        parts = _polygon_parts(ann.get("segmentation"))
        if parts is None:
            summary.not_checked += 1
            continue
        measurable.append(index)
        counts.append(len(parts))
        polygons += parts
    boxes = part_boxes(polygons)
    first = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=first[1:])
    if len(counts):
        finite = np.logical_and.reduceat(np.isfinite(boxes).all(axis=1), first).tolist()
        extents = np.stack([np.minimum.reduceat(boxes[:, 0], first), np.minimum.reduceat(boxes[:, 1], first),
                            np.maximum.reduceat(boxes[:, 2], first), np.maximum.reduceat(boxes[:, 3], first)],
                           axis=1).tolist()
    first = first.tolist()

    by_image = {}     # image key -> [(index, parts, part boxes, size, canvas)]
    for number, index in enumerate(measurable):
        ann, start, n_parts = out[index], first[number], counts[number]
        try:
            size = sizes.get(ann.get("image_id"), (None, None))
        except TypeError:
            size = (None, None)
        extent = extents[number]
        canvas = _canvas(extent, size) if finite[number] else None
        if canvas is None:
            summary.not_checked += 1
            continue
        box, given = _box_of(extent, size), ann.get("bbox")
        own = boxes[start:start + n_parts]
        if not _valid_box(given) or _disagrees(given, box, tolerance):
            one_part = n_parts > 1 and _valid_box(given) and any(
                not _disagrees(given, _box_of(b, size), tolerance) for b in own.tolist())
            summary.boxes_one_part_only += one_part
            what = "one part's box" if one_part else f"box {given} vs polygons {box}"
            summary.note("boxes_disagreeing", ann, what)
            if fix_boxes:
                ann["bbox"] = box
        by_image.setdefault(str(ann.get("image_id")), []).append(
            (index, polygons[start:start + n_parts], own, size, canvas))

    for items in tqdm(by_image.values(), desc="repair: areas", unit="img",
                      disable=not (progress and recompute_area)):
        if recompute_area:
            _recompute_areas(out, items, summary)

    if split_shoes:
        out = _split_shoes(out, by_image, names, summary, copies)
    summary.annotations_out = len(out)
    summary.class_counts_out = _class_counts(out, names)
    return dict(coco, annotations=out), summary


def _renumber_repeated_ids(out, summary, change):
    """Give a new id to each annotation whose (integer) id an earlier one has: COCOeval indexes
    annotations by id, so two different ones sharing an id would collapse into one."""
    ids = [ann.get("id") if isinstance(ann, dict) and type(ann.get("id")) is int else None for ann in out]
    next_id = max((i for i in ids if i is not None), default=0) + 1
    seen = set()
    for ann, ann_id in zip(out, ids):
        if ann_id is None:
            continue
        if ann_id in seen:
            summary.note("ids_renumbered", ann, f"id {ann_id} repeated" + (f" -> {next_id}" if change else ""))
            if change:
                ann["id"], next_id = next_id, next_id + 1
            continue
        seen.add(ann_id)


def _recompute_areas(out, items, summary):
    """Areas of one image's measurable annotations, in one pycocotools call per canvas."""
    by_canvas = {}
    for item in items:
        by_canvas.setdefault(item[4], []).append(item)
    for canvas, group in by_canvas.items():
        rles = mask_utils.frPyObjects([list(p) for _, parts, *_ in group for p in parts], *canvas)
        start = 0
        for index, parts, *_ in group:
            own = rles[start:start + len(parts)]
            start += len(parts)
            area = int(mask_utils.area(own[0] if len(own) == 1 else mask_utils.merge(own)))
            ann, given = out[index], out[index].get("area")
            if (isinstance(given, bool) or not isinstance(given, (int, float))
                    or not abs(given - area) < 0.5):
                summary.note("areas_changed", ann, f"area {given} -> {area}")
                ann["area"] = area


def _separate_parts(parts, canvas):
    """True when no two polygon parts share more than SHOE_OVERLAP of the smaller one's pixels."""
    rles = mask_utils.frPyObjects([list(p) for p in parts], *canvas)
    areas = mask_utils.area(rles)
    for i in range(len(rles)):
        for j in range(i + 1, len(rles)):
            shared = mask_utils.area(mask_utils.merge([rles[i], rles[j]], intersect=True))
            if shared > SHOE_OVERLAP * max(min(areas[i], areas[j]), 1):
                return False
    return True


def _split_shoes(out, by_image, names, summary, copies):
    """`out` with two-shoe footwear / boots annotations split into one instance per shoe.

    Parts are separate shoes when their boxes do not touch, or when ModaNet wrote the
    annotation once per part (as many exact copies as parts, each copy's box one part's size:
    its known defect) and the parts' masks barely overlap (feet side by side: their boxes
    overlap, their outlines only touch).
    """
    shoe_ids = {cid for cid, name in names.items() if name in SHOE_CLASSES}
    splits = {}
    for items in by_image.values():
        for index, parts, own, size, canvas in items:
            if len(parts) < 2 or out[index].get("category_id") not in shoe_ids:
                continue
            groups = _shoe_groups(own.tolist())
            if (len(groups) == 1 and summary.drop_duplicates and copies[index] + 1 == len(parts)
                    and _separate_parts(parts, canvas)):
                groups = [[i] for i in range(len(parts))]
            if len(groups) > 1:
                splits[index] = (parts, own, size, canvas, groups)
    if not splits:
        return out
    next_id = max((a["id"] for a in out if isinstance(a, dict) and type(a.get("id")) is int), default=0) + 1
    result = []
    for index, ann in enumerate(out):
        if index not in splits:
            result.append(ann)
            continue
        parts, own, size, canvas, groups = splits[index]
        summary.note("shoes_split", ann, f"{len(groups)} separate shoes -> {len(groups)} instances")
        summary.shoe_instances_added += len(groups) - 1
        for number, group in enumerate(groups):
            extent = [own[group, 0].min(), own[group, 1].min(), own[group, 2].max(), own[group, 3].max()]
            piece = dict(ann, segmentation=[parts[i] for i in group], bbox=_box_of(extent, size),
                         area=_area([parts[i] for i in group], canvas))
            if number:
                piece["id"], next_id = next_id, next_id + 1
            result.append(piece)
    return result


# --- files and the command line -----------------------------------------------------------------
def repair_file(input_path, output_path, **options):
    """Repair a COCO JSON file into another (written atomically); returns the RepairSummary."""
    input_path, output_path = Path(input_path), Path(output_path)
    if same_file(output_path, input_path):     # symlinks and hard links included
        raise DataError(f"{output_path}: the output is the input file; write the repaired copy elsewhere")
    if output_path.is_dir():
        raise DataError(f"{output_path}: the output is a folder; give a file name such as "
                        f"{output_path / 'repaired.json'}")
    coco = read_json(input_path, "COCO annotation file")
    try:
        repaired, summary = repair_coco(coco, **options)
    except DataError as err:
        raise DataError(f"{input_path}: {str(err).removeprefix('COCO data: ')}") from None
    write_json_atomic(output_path, repaired)
    return summary


class _OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def main(argv=None):
    """`python -m helpers.repair IN.json OUT.json [options]`: prints the counts, writes OUT."""
    parser = _OneLineErrorParser(prog="python -m helpers.repair",
                                 description="Check and repair a ModaNet (COCO) annotation file: exact "
                                             "duplicates, boxes off their polygons, areas, shoe pairs.")
    parser.add_argument("input", type=Path, metavar="IN", help="COCO annotation file to repair")
    parser.add_argument("output", type=Path, metavar="OUT", help="where to write the repaired file")
    parser.add_argument("--keep-duplicates", action="store_true", help="count exact duplicates, keep them")
    parser.add_argument("--split-shoes", action="store_true",
                        help="split footwear / boots annotations of two separate shoes into one per shoe")
    parser.add_argument("--no-fix-boxes", action="store_true", help="count disagreeing boxes, keep them")
    parser.add_argument("--no-recompute-area", action="store_true", help="keep the given areas (not checked)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        summary = repair_file(args.input, args.output, drop_duplicates=not args.keep_duplicates,
                              fix_boxes=not args.no_fix_boxes, recompute_area=not args.no_recompute_area,
                              split_shoes=args.split_shoes, progress=not args.quiet)
    except (DataError, OSError) as err:
        message = str(err) if isinstance(err, DataError) else describe_os_error(err)
        parser.exit(2, f"{parser.prog}: error: {message}\n")
    print(summary)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    remove_temp_files_on_signals()     # SIGTERM / Ctrl-C leave no hidden temp file behind
    sys.exit(main())
