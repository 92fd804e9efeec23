"""The checks and geometry both conversion directions share (helpers.coco_to_via, helpers.via_to_coco).

An annotation on its way out is a `PendingAnnotation` (its polygons as separate x / y lists);
`check_structure` checks one polygon's lists as it is read, `check_geometry` all polygons at
once (clipped to their image, zero-area and non-finite ones dropped), `assign_ids` gives every
annotation a unique id. Every repair or skip is counted in the ConversionSummary passed in.
"""
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from helpers.io import name_leaves_folder

AREA_EPSILON = 1e-9        # a polygon with a smaller shoelace area is degenerate
EXIF_ORIENTATION = 0x0112


# --- polygon and box geometry ---------------------------------------------------------------
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


def extent_bbox(xs_list, ys_list):
    """The COCO box [x, y, w, h] of the extent of several polygons (their x and y lists)."""
    x_low = min(min(xs) for xs in xs_list)
    y_low = min(min(ys) for ys in ys_list)
    return [x_low, y_low, max(max(xs) for xs in xs_list) - x_low, max(max(ys) for ys in ys_list) - y_low]


def positive_int(value):
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


# --- image entries --------------------------------------------------------------------------
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


def image_file_check(images_dir, file_name, summary):
    """(kept, file size) for an image entry: without `images_dir`, (True, None); with it, kept is
    False (counted) when the file name leaves that folder or the file is missing or unreadable
    there, and the size is the file's (width, height) otherwise."""
    if images_dir is None:
        return True, None
    if _name_leaves(images_dir, file_name, summary):
        return False, None
    file_size = _image_file_size(Path(images_dir) / file_name)
    if file_size is None:
        summary.note("images_missing_file", file_name, "", f"missing or unreadable in {images_dir}: skipped")
        return False, None
    return True, file_size


# --- one annotation's polygons, as they are read --------------------------------------------
def check_structure(xs, ys, summary, image, item):
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
class PendingAnnotation:
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


# --- all polygons at once, before they are written ------------------------------------------
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


class PendingList:
    """Pending annotations in order, with what `check_geometry` needs gathered as each is added:
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


def check_geometry(gathered, sizes, summary, image_name):
    """Clip points outside their image, then drop zero-area and non-finite polygons; every case
    counted. One vectorised pass over all points; Python touches only the polygons it flags.
    Returns the list of pending annotations kept."""
    pending = gathered.items
    if not gathered.xs:
        return pending
    try:
        x, y, starts, counts = _flat_points(gathered.xs, gathered.ys)
    except (TypeError, ValueError):   # something that is not a number: find it, then go on
        kept = _drop_non_numeric(pending, summary, image_name)
        return check_geometry(PendingList.of(kept, sizes), sizes, summary, image_name)
    owner, first_part = _polygon_owners(gathered)
    outside = _outside_image(gathered, sizes, owner, x, y, starts)
    areas = _shoelace(x, y, starts, counts)
    flagged = np.flatnonzero(outside | ~(areas > AREA_EPSILON))   # NaN areas are flagged too
    doomed = {}
    for polygon in flagged.tolist():
        index = int(owner[polygon])
        part = polygon - int(first_part[index])
        if not _repair_polygon(pending[index], part, areas[polygon], outside[polygon], sizes, summary,
                               image_name):
            doomed.setdefault(index, set()).add(part)
    return _remove_parts(pending, doomed, summary, image_name) if doomed else pending


def _drop_non_numeric(pending, summary, image_name):
    """`pending` without its polygons whose coordinates are not all numbers (each counted)."""
    doomed = {}
    for index, p in enumerate(pending):
        for part, (xs, ys) in enumerate(zip(p.xs, p.ys)):
            if not (_is_numeric(xs) and _is_numeric(ys)):
                summary.note("polygons_not_numeric", image_name(p.image_key),
                             p.part_item(part), "coordinates are not all numbers")
                doomed.setdefault(index, set()).add(part)
    return _remove_parts(pending, doomed, summary, image_name)


def _polygon_owners(gathered):
    """(owner, first_part): for each polygon the index of its annotation, and for each annotation
    the index of its first polygon."""
    parts_per_annotation = np.array(gathered.parts, dtype=np.int64)
    owner = np.repeat(np.arange(len(gathered.items)), parts_per_annotation)
    first_part = np.zeros_like(parts_per_annotation)
    np.cumsum(parts_per_annotation[:-1], out=first_part[1:])
    return owner, first_part


def _outside_image(gathered, sizes, owner, x, y, starts):
    """For each polygon, whether a point lies outside its image (an image of unknown size has no
    right or bottom edge to cross)."""
    image_of = np.array(gathered.images, dtype=np.int64)[owner]
    widths = np.array([w or np.inf for w, _ in sizes.values()], dtype=np.float64)
    heights = np.array([h or np.inf for _, h in sizes.values()], dtype=np.float64)
    return ((np.minimum.reduceat(x, starts) < 0) | (np.minimum.reduceat(y, starts) < 0)
            | (np.maximum.reduceat(x, starts) > widths[image_of])
            | (np.maximum.reduceat(y, starts) > heights[image_of]))


def _repair_polygon(p, part, area, outside, sizes, summary, image_name):
    """True when polygon `part` of `p`, flagged by check_geometry, is kept (clipped to its image
    if `outside` it); False (counted) when it is non-finite or has zero area."""
    where = (image_name(p.image_key), p.part_item(part))
    if not np.isfinite(area):
        summary.note("polygons_not_numeric", *where, "coordinates are not finite numbers")
        return False
    if outside:
        width, height = sizes[p.image_key]
        xs = [0 if v < 0 else v for v in p.xs[part]]
        ys = [0 if v < 0 else v for v in p.ys[part]]
        if width is not None:
            xs = [width if v > width else v for v in xs]
            ys = [height if v > height else v for v in ys]
        summary.note("polygons_clipped", *where, f"points outside the image ({width}x{height}): clipped")
        p.xs[part], p.ys[part], p.repaired = xs, ys, True
        area = polygon_areas([xs], [ys])[0]
    if not area > AREA_EPSILON:
        reason = "zero area after clipping" if outside else "zero area"
        summary.note("polygons_zero_area", *where, reason)
        return False
    return True


# --- ids ------------------------------------------------------------------------------------
def assign_ids(pending, summary, image_name):
    """Each pending annotation's final id, in order (a generator): its own, or a new one above
    every id when it has none or repeats an earlier one (counted as renumbered when it had one)."""
    used_ids, new_id = set(), new_id_factory(lambda: (p.annotation_id for p in pending))
    for p in pending:
        ann_id = p.annotation_id
        if ann_id is None or ann_id in used_ids:
            ann_id = new_id()
            if p.annotation_id is not None:
                summary.note("annotation_ids_renumbered", image_name(p.image_key), p.item,
                             f"duplicate id: now {ann_id}")
        used_ids.add(ann_id)
        yield ann_id


def new_id_factory(used_ids):
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
