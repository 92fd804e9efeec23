"""COCO <-> VIA 2 conversion for notebook 03 (ModaNet is COCO; the original project used VIA).

`coco_to_via` writes the original project's VIA form (key = image id, "size": -1, one polygon
region per part with region attribute "fashion" = category id as a string, image width and
height in "file_attributes"), with three additions that make COCO -> VIA -> COCO lossless:

- every polygon of a multi-part annotation becomes its own region (the original kept only the
  first); the parts are linked by the region attributes "annotation_id" and "part";
- "iscrowd" is kept as a region attribute when the annotation has it;
- the annotation's own "bbox" and "area" ride on its first region as strings ("133,173,115,208").

`via_to_coco` merges the regions of one annotation back into one annotation with several
polygons. It re-uses a carried "bbox"/"area" unless a part was repaired or dropped (or
`recompute=True`); otherwise it computes them:

- bbox = the extent of the polygons, [x, y, w, h];
- area = the pixel count of the merged mask as pycocotools rasterises it (frPyObjects + merge
  + area), the COCO definition that COCOeval's small/medium/large ranges are measured on.
  ModaNet's own "area" is neither this nor the shoelace area: in its files area = bbox w * h
  (37 of 37 annotations of the real fixture; see tests/test_convert.py). The shoelace area
  (`polygon_areas`, vectorised numpy) is used only to find degenerate polygons quickly.

Bad annotations never stop a run: each is repaired or skipped and counted in the returned
`ConversionSummary` (print it in a notebook; its `problems` lists the first few cases).
ModaNet's own defects (exact duplicate annotations, boxes off their polygons) are counted too,
by helpers.repair's check, but kept: a conversion stays lossless; `python -m helpers.repair`
repairs them, and `--recompute` (via-to-coco) recomputes boxes and areas from the polygons.

With `images_dir` (`--images`), an image whose file name would leave that folder ('../x.jpg', an
absolute path) is skipped and counted, never read (`helpers.io.name_leaves_folder`).

Command line (prints the summary; a bad input file, an unwritable output or an OUT that is IN is
a one-line error and exit code 2; SIGTERM / Ctrl-C leave no temp file):
    python -m helpers.convert coco-to-via IN OUT [--images DIR]
    python -m helpers.convert via-to-coco IN OUT --categories COCO_JSON_OR_NAMES [--images DIR]
                                                 [--recompute]
"""
import argparse
import gc
import sys
from dataclasses import dataclass, field, fields
from itertools import chain
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from helpers.io import (DataError, describe_os_error, loads, name_leaves_folder, paused_gc, read_json,
                        remove_temp_files_on_signals, same_file, write_json_atomic)
from helpers.repair import repair_coco
from helpers.via import read_via, write_via

MAX_PROBLEMS = 20
AREA_EPSILON = 1e-9        # a polygon with a smaller shoelace area is degenerate
EXIF_ORIENTATION = 0x0112
DEFAULT_INFO = {"description": "Converted from VIA by helpers.convert"}

# What each counter of ConversionSummary means, in the words `lines()` prints.
REPAIRED = {
    "odd_coordinates_repaired": "polygons with an odd coordinate count (last value dropped)",
    "polygons_clipped": "polygons with points outside the image (clipped to it)",
    "rects_converted": "VIA rectangles turned into 4-point polygons",
    "annotation_ids_renumbered": "duplicate annotation ids (re-numbered)",
}
SKIPPED = {
    "polygons_too_few_points": "polygons with fewer than 3 points",
    "polygons_zero_area": "polygons with zero area (after clipping)",
    "polygons_not_numeric": "polygons with non-numeric or non-finite coordinates",
    "regions_unsupported_shape": "regions that are not polygons or rectangles",
    "annotations_unknown_category": "annotations / regions with an unknown category",
    "annotations_without_polygons": "annotations left without any usable polygon",
    "annotations_empty_mask": "annotations whose mask rasterises to 0 pixels",
    "annotations_unknown_image": "annotations whose image_id is not an image",
    "annotations_of_skipped_images": "annotations / regions of skipped images",
    "images_bad_entry": "image entries without an id or file name",
    "images_duplicate_id": "images whose id repeats an earlier image (the later one)",
    "images_missing_file": "images whose file is missing or unreadable in images_dir",
    "images_outside_folder": "images whose file name leaves images_dir ('..', absolute path)",
}
FLAGGED = {
    "images_unknown_size": "images of unknown size (kept; points not checked against the image)",
    "duplicate_annotations": "exact duplicate annotations: same image, class, polygons (kept; "
                             "python -m helpers.repair drops them)",
    "boxes_off_polygons": "boxes more than 1 px off their polygons' extent (kept; helpers.repair "
                          "fixes them)",
}


@dataclass
class ConversionSummary:
    """What one conversion read, wrote, repaired and skipped; `print(summary)` shows it."""

    direction: str
    images_in: int = 0
    images_out: int = 0
    annotations_in: int = 0      # COCO annotations, or VIA regions
    annotations_out: int = 0     # COCO annotations, or VIA annotation groups
    polygons_out: int = 0        # polygons written (= VIA regions for COCO -> VIA)
    multipart_annotations: int = 0
    crowd_annotations: int = 0
    images_without_annotations: int = 0
    odd_coordinates_repaired: int = 0
    polygons_clipped: int = 0
    rects_converted: int = 0
    annotation_ids_renumbered: int = 0
    polygons_too_few_points: int = 0
    polygons_zero_area: int = 0
    polygons_not_numeric: int = 0
    regions_unsupported_shape: int = 0
    annotations_unknown_category: int = 0
    annotations_without_polygons: int = 0
    annotations_empty_mask: int = 0
    annotations_unknown_image: int = 0
    annotations_of_skipped_images: int = 0
    images_bad_entry: int = 0
    images_duplicate_id: int = 0
    images_missing_file: int = 0
    images_outside_folder: int = 0
    images_unknown_size: int = 0
    duplicate_annotations: int = 0   # ModaNet's own defects, found by helpers.repair's check
    boxes_off_polygons: int = 0
    problems: list = field(default_factory=list)   # (image, annotation or region, reason)
    max_problems: int = MAX_PROBLEMS

    def note(self, counter, image, item, reason, count=1):
        """Count one repaired / skipped case and keep its description while there is room."""
        setattr(self, counter, getattr(self, counter) + count)
        if len(self.problems) < self.max_problems:
            self.problems.append((image, item, reason))

    @property
    def repaired(self):
        return sum(getattr(self, name) for name in REPAIRED)

    @property
    def skipped(self):
        return sum(getattr(self, name) for name in SKIPPED)

    def counters(self):
        """Every counter as a dict (for tests and tables)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("direction", "problems", "max_problems")}

    def lines(self):
        """The summary as short text lines; zero counters are left out."""
        out = [
            f"{self.direction}: {self.images_out} of {self.images_in} images, "
            f"{self.annotations_out} annotations ({self.polygons_out} polygons) from "
            f"{self.annotations_in} read",
            f"  multi-part annotations: {self.multipart_annotations}, crowd: "
            f"{self.crowd_annotations}, images without annotations: "
            f"{self.images_without_annotations}",
        ]
        for title, table in (("repaired", REPAIRED), ("skipped", SKIPPED), ("kept, flagged", FLAGGED)):
            rows = [(getattr(self, name), text) for name, text in table.items() if getattr(self, name)]
            if rows:
                out.append(f"  {title}:")
                out.extend(f"    {count:>7}  {text}" for count, text in rows)
        if self.repaired + self.skipped + sum(getattr(self, name) for name in FLAGGED) == 0:
            out.append("  no problems found")
        if self.problems:
            out.append(f"  first {len(self.problems)} problems (image, item, reason):")
            out.extend(f"    {image} | {item} | {reason}" for image, item, reason in self.problems)
        return out

    def __str__(self):
        return "\n".join(self.lines())


# --- shared pieces --------------------------------------------------------------------------
def _flat_points(xs_list, ys_list):
    """All polygons' points in flat float arrays: (x, y, starts, counts)."""
    counts = np.fromiter(map(len, xs_list), dtype=np.int64, count=len(xs_list))
    total = int(counts.sum())
    x = np.fromiter(chain.from_iterable(xs_list), dtype=np.float64, count=total)
    y = np.fromiter(chain.from_iterable(ys_list), dtype=np.float64, count=total)
    starts = np.zeros_like(counts)
    np.cumsum(counts[:-1], out=starts[1:])
    return x, y, starts, counts


def _shoelace(x, y, starts, counts):
    cross = np.empty_like(x)
    np.multiply(x[:-1], y[1:], out=cross[:-1])
    cross[:-1] -= x[1:] * y[:-1]
    ends = starts + counts - 1
    cross[ends] = x[ends] * y[starts] - x[starts] * y[ends]   # the last point closes onto the first
    return 0.5 * np.abs(np.add.reduceat(cross, starts))


def polygon_areas(xs_list, ys_list):
    """Shoelace areas of many polygons at once (one numpy pass over all their points).

    `xs_list[i]`, `ys_list[i]` are the x and y coordinates of polygon i (at least 3 points).
    """
    if len(xs_list) == 0:
        return np.zeros(0)
    return _shoelace(*_flat_points(xs_list, ys_list))


def _positive_int(value):
    """An image dimension as int (400, 400.0 or "400"), or None when missing or not positive."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value)
    else:
        return None
    return number if number > 0 else None


def _number(text):
    """'12' -> 12, '12.5' -> 12.5; ValueError otherwise."""
    text = str(text).strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _parse_bbox(text):
    """A carried "bbox" attribute ('x,y,w,h') as a list of 4 numbers, or None."""
    if isinstance(text, str):   # the usual four integers: one JSON parse is twice as fast as int()
        try:
            values = loads("[" + text + "]")
        except ValueError:
            values = None
        if (isinstance(values, list) and len(values) == 4 and type(values[0]) is int
                and type(values[1]) is int and type(values[2]) is int and type(values[3]) is int):
            return values      # anything else (floats, "+1", huge numbers) is read below
    values = str(text).split(",")
    if len(values) != 4:
        return None
    try:
        return list(map(int, values))
    except ValueError:
        try:
            return [_number(v) for v in values]
        except ValueError:
            return None


def _parse_area(text):
    """A carried "area" attribute ('23920') as a number, or None."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return text
    try:
        return int(text)
    except (TypeError, ValueError):
        try:
            return _number(text)
        except ValueError:
            return None


def _image_file_size(path):
    """(width, height) of an image file as a viewer shows it (EXIF rotation applied), read from
    its header only; None when the file is missing, not an image, or a decompression bomb (a
    header claiming more pixels than Pillow agrees to open)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8):
                width, height = height, width
            return width, height
    except (FileNotFoundError, IsADirectoryError, UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError):
        return None


def _name_leaves(images_dir, file_name, summary):
    """True (counted) when the image's file name would read a file outside `images_dir`
    (`helpers.io.name_leaves_folder` says which names and why symlinks inside are followed)."""
    reason = name_leaves_folder(file_name)
    if reason is not None:
        summary.note("images_outside_folder", str(file_name), "", f"{reason}: skipped")
    return reason is not None


def _check_structure(xs, ys, summary, image, item):
    """(xs, ys, repaired) with x / y counts matched and at least 3 points, or None (counted)."""
    repaired = False
    if len(xs) != len(ys):
        summary.note("odd_coordinates_repaired", image, item,
                     f"{len(xs)} x values but {len(ys)} y values: extra values dropped")
        n = min(len(xs), len(ys))
        xs, ys = xs[:n], ys[:n]
        repaired = True
    if len(xs) < 3:
        summary.note("polygons_too_few_points", image, item, f"polygon with {len(xs)} points")
        return None
    if isinstance(xs[0], str) or isinstance(ys[0], str):
        summary.note("polygons_not_numeric", image, item, "coordinates written as text")
        return None
    return xs, ys, repaired


@dataclass(slots=True)
class _Pending:
    """One annotation on its way out: its polygons as separate x / y lists."""

    image_key: str
    annotation_id: object
    category_id: int
    xs: list
    ys: list
    iscrowd: object = None
    bbox: object = None
    area: object = None
    repaired: bool = False
    item: str = ""                  # "annotation 12" / "region 3", for messages
    source_word: str = "part"       # what `sources` count: "part", "region" or ""
    order: list = None              # VIA "part" numbers, to restore part order (VIA -> COCO)
    sources: list = None            # where each polygon came from, for messages; None: 0, 1, ...

    def part_item(self, part):
        """Names polygon `part` in a problem message."""
        if not self.source_word:
            return self.item
        source = part if self.sources is None else self.sources[part]
        return f"{self.item} {self.source_word} {source}"


def _is_numeric(values):
    try:
        np.asarray(values, dtype=np.float64)
        return True
    except (TypeError, ValueError):
        return False


def _remove_parts(pending, doomed, summary, image_name):
    """`pending` without the parts in `doomed` ({pending index: set of parts}); annotations left
    without a polygon are dropped and counted."""
    kept = []
    for index, p in enumerate(pending):
        parts = doomed.get(index)
        if parts:
            keep = [part for part in range(len(p.xs)) if part not in parts]
            p.xs, p.ys = [p.xs[i] for i in keep], [p.ys[i] for i in keep]
            p.sources = keep if p.sources is None else [p.sources[i] for i in keep]
            p.repaired = True
            if not p.xs:
                summary.note("annotations_without_polygons", image_name(p.image_key), p.item,
                             "no usable polygon left")
                continue
        kept.append(p)
    return kept


class _PendingList:
    """Pending annotations in order, with what `_check_geometry` needs gathered as each is added:
    at ModaNet size a later pass over a quarter million objects, out of the CPU cache by then,
    costs more than the check's arithmetic."""

    def __init__(self):
        self.items, self.xs, self.ys, self.parts, self.images = [], [], [], [], []

    def add(self, p, image_number):
        """Append `p`, whose image is the `image_number`-th of `sizes` (in its order)."""
        self.items.append(p)
        self.xs += p.xs
        self.ys += p.ys
        self.parts.append(len(p.xs))
        self.images.append(image_number)

    @classmethod
    def of(cls, items, sizes):
        """The gathered form of a plain list of pending annotations (after some were dropped)."""
        gathered, numbers = cls(), {key: number for number, key in enumerate(sizes)}
        for p in items:
            gathered.add(p, numbers[p.image_key])
        return gathered


def _check_geometry(gathered, sizes, summary, image_name):
    """Clip points outside their image, then drop zero-area and non-finite polygons; every case
    counted. One vectorised pass over all points; Python touches only the polygons it flags.
    Returns the list of pending annotations kept."""
    pending = gathered.items
    if not gathered.xs:
        return pending
    try:
        x, y, starts, counts = _flat_points(gathered.xs, gathered.ys)
    except (TypeError, ValueError):   # something that is not a number: find it, then go on
        doomed = {}
        for index, p in enumerate(pending):
            for part, (xs, ys) in enumerate(zip(p.xs, p.ys)):
                if not (_is_numeric(xs) and _is_numeric(ys)):
                    summary.note("polygons_not_numeric", image_name(p.image_key),
                                 p.part_item(part), "coordinates are not all numbers")
                    doomed.setdefault(index, set()).add(part)
        kept = _remove_parts(pending, doomed, summary, image_name)
        return _check_geometry(_PendingList.of(kept, sizes), sizes, summary, image_name)

    parts_per_annotation = np.array(gathered.parts, dtype=np.int64)
    owner = np.repeat(np.arange(len(pending)), parts_per_annotation)
    first_part = np.zeros_like(parts_per_annotation)
    np.cumsum(parts_per_annotation[:-1], out=first_part[1:])
    image_of = np.array(gathered.images, dtype=np.int64)[owner]
    widths = np.array([w or np.inf for w, _ in sizes.values()], dtype=np.float64)
    heights = np.array([h or np.inf for _, h in sizes.values()], dtype=np.float64)
    outside = ((np.minimum.reduceat(x, starts) < 0) | (np.minimum.reduceat(y, starts) < 0)
               | (np.maximum.reduceat(x, starts) > widths[image_of])
               | (np.maximum.reduceat(y, starts) > heights[image_of]))
    areas = _shoelace(x, y, starts, counts)
    flagged = np.flatnonzero(outside | ~(areas > AREA_EPSILON))   # NaN areas are flagged too
    doomed = {}
    for polygon in flagged.tolist():
        index = int(owner[polygon])
        part = polygon - int(first_part[index])
        p = pending[index]
        where = (image_name(p.image_key), p.part_item(part))
        area = areas[polygon]
        if not np.isfinite(area):
            summary.note("polygons_not_numeric", *where, "coordinates are not finite numbers")
            doomed.setdefault(index, set()).add(part)
            continue
        if outside[polygon]:
            width, height = sizes[p.image_key]
            xs = [0 if v < 0 else v for v in p.xs[part]]
            ys = [0 if v < 0 else v for v in p.ys[part]]
            if width is not None:
                xs = [width if v > width else v for v in xs]
                ys = [height if v > height else v for v in ys]
            summary.note("polygons_clipped", *where,
                         f"points outside the image ({width}x{height}): clipped")
            p.xs[part], p.ys[part], p.repaired = xs, ys, True
            area = polygon_areas([xs], [ys])[0]
        if not area > AREA_EPSILON:
            reason = "zero area after clipping" if outside[polygon] else "zero area"
            summary.note("polygons_zero_area", *where, reason)
            doomed.setdefault(index, set()).add(part)
    return _remove_parts(pending, doomed, summary, image_name) if doomed else pending


def _unique_id(pending, used_ids, new_id, summary, image_name):
    """The pending annotation's id, or a new one (counted as renumbered) when it is taken."""
    ann_id = pending.annotation_id
    if ann_id is None or ann_id in used_ids:
        ann_id = new_id()
        if pending.annotation_id is not None:
            summary.note("annotation_ids_renumbered", image_name, pending.item, f"duplicate id: now {ann_id}")
    used_ids.add(ann_id)
    return ann_id


def _new_id_factory(used_ids):
    """A function giving ids above every id in `used_ids`, one after the other.

    `used_ids` is an iterable, or a function returning one: then it is read only when the
    first new id is asked for (most files need none, and reading a quarter million ids
    costs a pass over as many objects).
    """
    state = {}

    def new_id():
        if not state:
            ids = used_ids() if callable(used_ids) else used_ids
            state["next"] = max((i for i in ids if isinstance(i, int)), default=0) + 1
        state["next"] += 1
        return state["next"] - 1
    return new_id


def _load_coco(coco):
    """(source name, COCO dict) from a dict or a path; DataError when it is not COCO."""
    if isinstance(coco, (str, Path)):
        source, coco = str(coco), read_json(coco, "COCO JSON file")
    else:
        source = "COCO data"
    if not (isinstance(coco, dict) and isinstance(coco.get("images"), list)
            and isinstance(coco.get("annotations", []), list)):
        found = sorted(coco)[:6] if isinstance(coco, dict) else type(coco).__name__
        raise DataError(f"{source}: not a COCO file: expected 'images' and 'annotations' lists "
                        f"(found {found})")
    if "annotations" not in coco:    # an image list only (like ModaNet's val file)
        coco = dict(coco, annotations=[])
    return source, coco


def _note_modanet_defects(summary, coco):
    """Count ModaNet's own defects in `coco` (the input of COCO -> VIA, the output of VIA -> COCO)
    with helpers.repair's check (nothing is changed): exact duplicates, and boxes off their
    polygons. A conversion keeps both, so a round trip stays lossless; repair them with
    `python -m helpers.repair`, or let `CocoDataset.load_coco` do it on loading."""
    _, found = repair_coco(coco, drop_duplicates=False, fix_boxes=False, recompute_area=False)
    summary.duplicate_annotations += found.duplicates
    summary.boxes_off_polygons += found.boxes_disagreeing
    return summary


# --- COCO -> VIA ----------------------------------------------------------------------------
def coco_to_via(coco, attribute="fashion", images_dir=None, progress=True):
    """A COCO dataset (dict or path) as a VIA 2 export; returns (via, ConversionSummary).

    See the module docstring for the form. With `images_dir`, an image whose file is missing
    or unreadable there is skipped (with its annotations).
    """
    _, coco = _load_coco(coco)
    with paused_gc():
        via, summary = _coco_to_via(coco, attribute, images_dir, progress)
        return via, _note_modanet_defects(summary, coco)


def _coco_to_via(coco, attribute, images_dir, progress):
    summary = ConversionSummary("COCO -> VIA")
    summary.images_in, summary.annotations_in = len(coco["images"]), len(coco["annotations"])
    known_categories = {c.get("id") for c in coco.get("categories") or [] if isinstance(c, dict)}

    via, sizes, skipped_images = {}, {}, set()
    for image in coco["images"]:
        image_id = image.get("id") if isinstance(image, dict) else None
        file_name = image.get("file_name") if isinstance(image, dict) else None
        if image_id is None or not file_name:
            summary.note("images_bad_entry", str(image)[:60], "", "no 'id' or 'file_name'")
            continue
        if type(image_id) not in (int, str) or not isinstance(file_name, str):
            summary.note("images_bad_entry", str(image)[:60], "", "'id' not an integer or text, or "
                         "'file_name' not text")
            continue
        key = str(image_id)
        if key in via:
            summary.note("images_duplicate_id", file_name, f"image id {key}",
                         f"duplicate image id (first: {via[key]['filename']}): skipped")
            continue
        width, height = _positive_int(image.get("width")), _positive_int(image.get("height"))
        if images_dir is not None and _name_leaves(images_dir, file_name, summary):
            skipped_images.add(key)
            continue
        if images_dir is not None:
            file_size = _image_file_size(Path(images_dir) / file_name)
            if file_size is None:
                summary.note("images_missing_file", file_name, "",
                             f"missing or unreadable in {images_dir}: skipped")
                skipped_images.add(key)
                continue
            if width is None or height is None:
                width, height = file_size
        if width is None or height is None:
            summary.note("images_unknown_size", file_name, "", "no width/height")
            width = height = None
        extras = {k: v for k, v in image.items() if k not in ("id", "file_name", "width", "height")}
        file_attributes = {"width": width, "height": height} if width is not None else {}
        file_attributes.update(extras)
        via[key] = {"filename": file_name, "size": -1, "regions": [], "file_attributes": file_attributes}
        sizes[key] = (width, height)

    pending, image_numbers = _PendingList(), {key: number for number, key in enumerate(sizes)}
    for ann in tqdm(coco["annotations"], desc="COCO -> VIA", unit="ann", disable=not progress):
        if not isinstance(ann, dict):
            summary.note("annotations_without_polygons", "?", str(ann)[:40], "not an annotation")
            continue
        key, ann_id = str(ann.get("image_id")), ann.get("id")
        item = f"annotation {ann_id}"
        if type(ann_id) is not int and ann_id is not None and not isinstance(ann_id, (str, float)):
            summary.note("annotation_ids_renumbered", str(ann.get("image_id")), item,
                         f"id {ann_id!r} is not a number or text: given a new one")
            ann_id = None
        if key not in via:
            if key in skipped_images:
                summary.annotations_of_skipped_images += 1
            else:
                summary.note("annotations_unknown_image", key, item, "image_id is not an image")
            continue
        file_name = via[key]["filename"]
        category_id = ann.get("category_id")
        if type(category_id) not in (int, str) or (known_categories and category_id not in known_categories):
            summary.note("annotations_unknown_category", file_name, item,
                         f"unknown category id {category_id!r}")
            continue
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, list) and segmentation and not isinstance(segmentation[0], list):
            segmentation = [segmentation]     # a single polygon written without its outer list
        if not isinstance(segmentation, list) or not segmentation:
            kind = "RLE (not representable in VIA)" if isinstance(segmentation, dict) else "none"
            summary.note("annotations_without_polygons", file_name, item, f"segmentation: {kind}")
            continue
        if len(segmentation) == 1:   # the common case, checked inline (as in the loop below)
            polygon = segmentation[0]
            if (isinstance(polygon, list) and len(polygon) >= 6 and not len(polygon) % 2
                    and not isinstance(polygon[0], str) and not isinstance(polygon[1], str)):
                pending.add(_Pending(key, ann_id, category_id, [polygon[0::2]], [polygon[1::2]],
                                     ann.get("iscrowd"), ann.get("bbox"), ann.get("area"), False,
                                     item), image_numbers[key])
                continue
        p = _Pending(key, ann_id, category_id, [], [], ann.get("iscrowd"), ann.get("bbox"),
                     ann.get("area"), False, item, "part", None, [])
        for part, polygon in enumerate(segmentation):
            if (isinstance(polygon, list) and len(polygon) >= 6 and not len(polygon) % 2
                    and not isinstance(polygon[0], str) and not isinstance(polygon[1], str)):
                p.xs.append(polygon[0::2])            # the common case, checked inline
                p.ys.append(polygon[1::2])
                p.sources.append(part)
                continue
            if not isinstance(polygon, list):
                summary.note("polygons_not_numeric", file_name, f"{item} part {part}", "not a list")
                p.repaired = True
                continue
            if len(polygon) % 2:
                summary.note("odd_coordinates_repaired", file_name, f"{item} part {part}",
                             f"{len(polygon)} coordinates: last value dropped")
                polygon = polygon[:-1]
                p.repaired = True
            checked = _check_structure(polygon[0::2], polygon[1::2], summary, file_name,
                                       f"{item} part {part}")
            if checked is None:
                p.repaired = True
                continue
            p.xs.append(checked[0])
            p.ys.append(checked[1])
            p.sources.append(part)
        if not p.xs:
            summary.note("annotations_without_polygons", file_name, item, "no usable polygon")
            continue
        pending.add(p, image_numbers[key])

    pending = _check_geometry(pending, sizes, summary, lambda key: via[key]["filename"])

    used_ids, new_id = set(), _new_id_factory(lambda: (p.annotation_id for p in pending))
    multipart = crowd = polygon_count = 0
    category_text = {}   # category id -> its text, made once per category
    for p in pending:
        ann_id = p.annotation_id
        if ann_id is None or ann_id in used_ids:
            ann_id = _unique_id(p, used_ids, new_id, summary, via[p.image_key]["filename"])
        else:
            used_ids.add(ann_id)
        category = category_text.get(p.category_id)
        if category is None:
            category = category_text[p.category_id] = str(p.category_id)
        common = {attribute: category, "annotation_id": str(ann_id)}
        iscrowd = p.iscrowd
        if iscrowd is not None:
            common["iscrowd"] = str(int(iscrowd)) if isinstance(iscrowd, (bool, int)) else str(iscrowd)
            crowd += bool(iscrowd)
        regions = via[p.image_key]["regions"]
        n_parts = len(p.xs)
        first = common.copy() if n_parts > 1 else common   # the last part takes `common` itself
        first["part"] = "0"
        if not p.repaired:
            bbox = p.bbox
            if isinstance(bbox, list) and len(bbox) == 4:
                first["bbox"] = f"{bbox[0]},{bbox[1]},{bbox[2]},{bbox[3]}"
            if isinstance(p.area, (int, float)):
                first["area"] = str(p.area)
        regions.append({
            "shape_attributes": {"name": "polygon", "all_points_x": p.xs[0], "all_points_y": p.ys[0]},
            "region_attributes": first,
        })
        if n_parts > 1:
            multipart += 1
            for part in range(1, n_parts):
                attributes = common.copy() if part < n_parts - 1 else common
                attributes["part"] = str(part)
                regions.append({
                    "shape_attributes": {"name": "polygon", "all_points_x": p.xs[part],
                                         "all_points_y": p.ys[part]},
                    "region_attributes": attributes,
                })
        polygon_count += n_parts
    summary.multipart_annotations += multipart
    summary.crowd_annotations += crowd
    summary.polygons_out += polygon_count
    summary.annotations_out = len(pending)
    summary.images_out = len(via)
    summary.images_without_annotations = sum(1 for entry in via.values() if not entry["regions"])
    return via, summary


# --- VIA -> COCO ----------------------------------------------------------------------------
def _resolve_categories(categories):
    """(COCO categories list, top-level fields to copy) from any accepted `categories` form."""
    source = "categories"
    if isinstance(categories, (str, Path)):
        source, categories = str(categories), read_json(categories, "COCO JSON file (categories)")
    copied = {}
    if isinstance(categories, dict):
        copied = {k: categories[k] for k in ("info", "licenses", "year", "type") if k in categories}
        categories = categories.get("categories")
    if not isinstance(categories, (list, tuple)) or not categories:
        raise DataError(f"{source}: no categories: expected a COCO categories list, a list of "
                        "names, or a COCO JSON with 'categories'")
    if all(isinstance(c, str) for c in categories):
        return [{"supercategory": "", "id": i, "name": n} for i, n in enumerate(categories, 1)], copied
    if not all(isinstance(c, dict) and "id" in c and "name" in c for c in categories):
        raise DataError(f"{source}: every category must have an 'id' and a 'name'")
    return [dict(c) for c in categories], copied


def _category_lookup(categories):
    """Attribute value -> category id: the id as text ("5") or the name ("outer", any case)."""
    lookup = {}
    for c in categories:
        lookup[str(c["name"]).lower()] = c["id"]
    for c in categories:
        lookup[str(c["id"])] = c["id"]
    return lookup


def _attribute_value(value):
    """A region attribute as text; a VIA checkbox dict ({"5": true}) gives its one ticked key."""
    if isinstance(value, dict):
        ticked = [k for k, v in value.items() if v]
        return ticked[0] if len(ticked) == 1 else None
    if value is None:
        return None
    return str(value).strip().lower()


def _region_points(shape):
    """(xs, ys, was_rect) of a rectangle region; (None, None, False) for other shapes."""
    if shape.get("name") == "rect":
        try:
            x, y, w, h = (shape[k] for k in ("x", "y", "width", "height"))
            return [x, x + w, x + w, x], [y, y, y + h, y + h], True
        except (KeyError, TypeError):
            pass
    return None, None, False


def _image_size_from_attributes(file_attributes):
    width = _positive_int(file_attributes.get("width", file_attributes.get("widht")))
    height = _positive_int(file_attributes.get("height"))
    return (width, height) if width is not None and height is not None else (None, None)


def via_to_coco(via, categories, attribute="fashion", images_dir=None, info=None, licenses=None,
                recompute=False, progress=True):
    """A VIA file (any version; dict or path) as a COCO dataset; returns (coco, ConversionSummary).

    `categories`: a COCO categories list, a list of names (ids 1..n), or a COCO JSON (path or
    dict) whose categories are used and whose info / licenses / year / type are copied.
    A region's `attribute` may hold the category id as text ("5") or its name ("outer").
    Set `recompute=True` to ignore carried "bbox"/"area" attributes (after editing polygons).
    """
    via = read_via(via)
    categories, copied = _resolve_categories(categories)
    with paused_gc():
        coco, summary = _via_to_coco(via, categories, copied, attribute, images_dir, info, licenses,
                                     recompute, progress)
        return coco, _note_modanet_defects(summary, coco)


def _via_to_coco(via, categories, copied, attribute, images_dir, info, licenses, recompute, progress):
    lookup = _category_lookup(categories)
    summary = ConversionSummary("VIA -> COCO")
    summary.images_in = len(via)

    numeric_keys = {key: int(key) for key in via if key.strip().lstrip("-").isdigit()}
    new_image_id = _new_id_factory(set(numeric_keys.values()))
    images, sizes, pending, used_image_ids = {}, {}, _PendingList(), set()
    entries = tqdm(via.items(), total=len(via), desc="VIA -> COCO", unit="img", disable=not progress)
    for key, entry in entries:
        regions, file_name = entry["regions"], entry["filename"]
        summary.annotations_in += len(regions)
        image_id = numeric_keys.get(key)
        if image_id is not None and image_id in used_image_ids:
            summary.note("images_duplicate_id", file_name, f"key {key!r}",
                         f"duplicate image id {image_id}: skipped")
            summary.annotations_of_skipped_images += len(regions)
            continue
        if not file_name:
            summary.note("images_bad_entry", key, "", "no file name")
            summary.annotations_of_skipped_images += len(regions)
            continue
        image_id = new_image_id() if image_id is None else image_id
        width, height = _image_size_from_attributes(entry["file_attributes"])
        if images_dir is not None and _name_leaves(images_dir, file_name, summary):
            summary.annotations_of_skipped_images += len(regions)
            continue
        if images_dir is not None:
            file_size = _image_file_size(Path(images_dir) / file_name)
            if file_size is None:
                summary.note("images_missing_file", file_name, "",
                             f"missing or unreadable in {images_dir}: skipped")
                summary.annotations_of_skipped_images += len(regions)
                continue
            if width is None:
                width, height = file_size
        if width is None:
            summary.note("images_unknown_size", file_name, "",
                         f"no width/height: its {len(regions)} regions kept, points not checked")
        used_image_ids.add(image_id)
        image = {"id": image_id, "file_name": file_name}
        if width is not None:
            image.update(width=width, height=height)
        image.update({k: v for k, v in entry["file_attributes"].items()
                      if k not in ("width", "height", "widht")})
        images[key], sizes[key] = image, (width, height)

        groups = {}
        for index, region in enumerate(regions):
            shape = region.get("shape_attributes") if isinstance(region, dict) else None
            if isinstance(shape, dict) and shape.get("name") == "polygon":   # the common case
                xs, ys, was_rect = shape.get("all_points_x"), shape.get("all_points_y"), False
                if not (isinstance(xs, list) and isinstance(ys, list)):
                    xs = None
            else:
                xs, ys, was_rect = _region_points(shape) if isinstance(shape, dict) else (None, None, False)
            if xs is None:
                name = shape.get("name") if isinstance(shape, dict) else None
                reason = f"shape {name!r}" + (" without point lists" if name == "polygon" else "")
                summary.note("regions_unsupported_shape", file_name, f"region {index}", reason)
                continue
            if was_rect:
                summary.note("rects_converted", file_name, f"region {index}", "rectangle -> polygon")
            attributes = region.get("region_attributes") or {}
            raw_value = attributes.get(attribute)
            category_id = lookup.get(raw_value) if isinstance(raw_value, str) else None
            if category_id is None:
                category_id = lookup.get(_attribute_value(raw_value))
                if category_id is None:
                    summary.note("annotations_unknown_category", file_name, f"region {index}",
                                 f"{attribute}={raw_value!r} is not a category")
                    continue
            link = attributes.get("annotation_id")
            linked = link is not None and link != ""
            group_key = (str(link), category_id) if linked else index
            p = groups.get(group_key)
            if p is None:
                try:
                    annotation_id = int(link) if linked else None
                except (TypeError, ValueError):
                    annotation_id = None
                p = groups[group_key] = _Pending(
                    key, annotation_id, category_id, [], [], attributes.get("iscrowd"),
                    attributes.get("bbox"), attributes.get("area"), was_rect,
                    f"annotation {link}" if linked else f"region {index}",
                    "region" if linked else "", [], [])
            if not (len(xs) == len(ys) >= 3 and not isinstance(xs[0], str) and not isinstance(ys[0], str)):
                checked = _check_structure(xs, ys, summary, file_name,
                                           f"{p.item} region {index}" if linked else p.item)
                if checked is None:
                    p.repaired = True
                    continue
                xs, ys = checked[0], checked[1]
                p.repaired = True
            p.xs.append(xs)
            p.ys.append(ys)
            p.sources.append(index)
            part = attributes.get("part")
            try:
                p.order.append(int(part))
            except (TypeError, ValueError):
                p.order.append(len(p.order))
            if was_rect:
                p.repaired = True
            if p.bbox is None and attributes.get("bbox") is not None:
                p.bbox, p.area = attributes.get("bbox"), attributes.get("area")
        for p in groups.values():
            if not p.xs:
                summary.note("annotations_without_polygons", file_name, p.item, "no usable polygon")
                continue
            if len(p.order) > 1 and p.order != sorted(p.order):
                ranked = sorted(range(len(p.order)), key=p.order.__getitem__)
                p.xs, p.ys = [p.xs[i] for i in ranked], [p.ys[i] for i in ranked]
                p.sources = [p.sources[i] for i in ranked]
            pending.add(p, len(sizes) - 1)

    pending = _check_geometry(pending, sizes, summary, lambda key: images[key]["file_name"])
    annotations = _coco_annotations(pending, images, sizes, recompute, summary)

    summary.images_out = len(images)
    summary.annotations_out = len(annotations)
    with_annotations = {a["image_id"] for a in annotations}
    summary.images_without_annotations = sum(1 for im in images.values() if im["id"] not in with_annotations)
    coco = {
        "info": info if info is not None else copied.get("info", dict(DEFAULT_INFO)),
        "licenses": licenses if licenses is not None else copied.get("licenses", []),
        "images": list(images.values()),
        "annotations": annotations,
        "categories": categories,
    }
    coco.update({k: copied[k] for k in ("year", "type") if k in copied})
    return coco, summary


def _coco_annotations(pending, images, sizes, recompute, summary):
    """COCO annotation dicts for the pending ones: ids de-duplicated, bbox and area carried
    when still valid, else computed (pycocotools area, batched per image)."""
    used_ids, new_id = set(), _new_id_factory(lambda: (p.annotation_id for p in pending))
    annotations, to_measure = [], {}   # image key -> [(annotation, polygons)]
    multipart = crowd = polygon_count = 0
    for p in pending:
        ann_id = p.annotation_id
        if ann_id is None or ann_id in used_ids:
            ann_id = _unique_id(p, used_ids, new_id, summary, images[p.image_key]["file_name"])
        else:
            used_ids.add(ann_id)
        polygons = []
        for xs, ys in zip(p.xs, p.ys):
            flat = [0] * (2 * len(xs))
            flat[0::2], flat[1::2] = xs, ys
            polygons.append(flat)
        iscrowd = p.iscrowd
        if not isinstance(iscrowd, int):
            try:
                iscrowd = int(iscrowd)     # "0" / "1" as written by coco_to_via
            except (TypeError, ValueError):
                iscrowd = 0
        bbox = area = None
        if not (recompute or p.repaired):
            if p.bbox is not None:
                bbox = _parse_bbox(p.bbox)
            if p.area is not None:
                area = _parse_area(p.area)
        if bbox is None:
            x_low = min(min(xs) for xs in p.xs)
            y_low = min(min(ys) for ys in p.ys)
            bbox = [x_low, y_low, max(max(xs) for xs in p.xs) - x_low, max(max(ys) for ys in p.ys) - y_low]
        annotation = {"id": ann_id, "image_id": images[p.image_key]["id"], "category_id": p.category_id,
                      "segmentation": polygons, "area": area, "bbox": bbox, "iscrowd": iscrowd}
        if area is None:
            to_measure.setdefault(p.image_key, []).append((annotation, polygons))
        annotations.append(annotation)
        multipart += len(polygons) > 1
        crowd += bool(iscrowd)
        polygon_count += len(polygons)
    summary.multipart_annotations += multipart
    summary.crowd_annotations += crowd
    summary.polygons_out += polygon_count

    empty = set()
    for key, items in to_measure.items():
        width, height = sizes[key]
        all_polygons = [polygon for _, polygons in items for polygon in polygons]
        if width is None:   # unknown size: a canvas that holds every point
            width = int(np.ceil(max(max(poly[0::2]) for poly in all_polygons))) + 1
            height = int(np.ceil(max(max(poly[1::2]) for poly in all_polygons))) + 1
        rles = mask_utils.frPyObjects(all_polygons, height, width)
        position = 0
        for annotation, polygons in items:
            parts = rles[position:position + len(polygons)]
            position += len(polygons)
            rle = parts[0] if len(parts) == 1 else mask_utils.merge(parts)
            annotation["area"] = int(mask_utils.area(rle))
            if annotation["area"] == 0:
                summary.note("annotations_empty_mask", images[key]["file_name"],
                             f"annotation {annotation['id']}", "mask has 0 pixels: skipped")
                empty.add(id(annotation))
    if empty:
        annotations = [a for a in annotations if id(a) not in empty]
        summary.multipart_annotations = sum(len(a["segmentation"]) > 1 for a in annotations)
        summary.crowd_annotations = sum(bool(a["iscrowd"]) for a in annotations)
        summary.polygons_out = sum(len(a["segmentation"]) for a in annotations)
    return annotations


# --- command line ---------------------------------------------------------------------------
def _categories_argument(text):
    """A COCO JSON path (ends in .json or is a file), else comma-separated category names."""
    if text.lower().endswith(".json") or Path(text).is_file():
        return Path(text)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise DataError(f"--categories {text!r}: give a COCO JSON path or comma-separated names")
    return names


def _check_output(output, inputs):
    """A DataError when OUT is a folder or the same file as an input (a symlink or hard link to
    it included): writing it would replace the input the conversion reads."""
    if output.is_dir():
        raise DataError(f"{output}: output is a folder; give a file name such as {output / 'out.json'}")
    for path in inputs:
        if same_file(output, path):
            raise DataError(f"{output}: output is the input file {path}; give another name")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m helpers.convert",
                                     description="Convert annotations between COCO and VIA 2.")
    commands = parser.add_subparsers(dest="command", required=True)
    to_via = commands.add_parser("coco-to-via", help="COCO JSON -> VIA 2 JSON")
    to_coco = commands.add_parser("via-to-coco", help="VIA (1, 2 or project) JSON -> COCO JSON")
    to_coco.add_argument("--categories", required=True,
                         help="a COCO JSON whose categories are used, or comma-separated names")
    to_coco.add_argument("--recompute", action="store_true",
                         help="compute bbox and area from the polygons (pycocotools area), ignoring "
                              "those the VIA file carries")
    for command in (to_via, to_coco):
        command.add_argument("input", type=Path)
        command.add_argument("output", type=Path)
        command.add_argument("--images", type=Path, default=None,
                             help="image folder: skip images whose file is missing there")
        command.add_argument("--attribute", default="fashion",
                             help="region attribute holding the category (default: fashion)")
        command.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if __name__ == "__main__":
        gc.disable()   # a one-shot process that builds no cycles: skip every collection pass
    try:
        categories = _categories_argument(args.categories) if args.command == "via-to-coco" else None
        _check_output(args.output, [args.input] + ([categories] if isinstance(categories, Path) else []))
        if args.command == "coco-to-via":
            via, summary = coco_to_via(args.input, args.attribute, args.images, progress=not args.quiet)
            write_via(via, args.output)
        else:
            coco, summary = via_to_coco(args.input, categories, args.attribute, args.images,
                                        recompute=args.recompute, progress=not args.quiet)
            write_json_atomic(args.output, coco)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:     # input unreadable, output folder not writable, disk full
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    print(summary)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    remove_temp_files_on_signals()     # SIGTERM / Ctrl-C leave no hidden temp file behind
    sys.exit(main())
