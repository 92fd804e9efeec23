"""VIA (1, 2 or the original project's form) -> COCO for notebook 03 (`via_to_coco`);
helpers.convert describes the forms and how bbox and area are found, and is the command line.

The steps: each VIA entry becomes a COCO image (`_coco_image`), its regions are grouped into
annotations (`_group_regions`: regions linked by "annotation_id" are the parts of one), every
polygon is checked against its image at once (helpers.annotation_checks.check_geometry), and
the kept annotations become COCO annotations (`_coco_annotations`) with their carried or
computed bbox and area.
"""
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from helpers.annotation_checks import (PendingAnnotation, PendingList, assign_ids, check_geometry, check_structure,
                                       extent_bbox, image_file_check, new_id_factory, positive_int)
from helpers.conversion_summary import ConversionSummary, note_modanet_defects
from helpers.io import DataError, loads, paused_gc, read_json
from helpers.via import read_via

DEFAULT_INFO = {"description": "Converted from VIA by helpers.convert"}


# --- categories, region values and carried attributes ---------------------------------------
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
    width = positive_int(file_attributes.get("width", file_attributes.get("widht")))
    height = positive_int(file_attributes.get("height"))
    return (width, height) if width is not None and height is not None else (None, None)


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


# --- the conversion -------------------------------------------------------------------------
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
        return coco, note_modanet_defects(summary, coco)


def _via_to_coco(via, categories, copied, attribute, images_dir, info, licenses, recompute, progress):
    lookup = _category_lookup(categories)
    summary = ConversionSummary("VIA -> COCO")
    summary.images_in = len(via)
    numeric_keys = {key: int(key) for key in via if key.strip().lstrip("-").isdigit()}
    new_image_id = new_id_factory(set(numeric_keys.values()))
    images, sizes, pending, used_image_ids = {}, {}, PendingList(), set()
    entries = tqdm(via.items(), total=len(via), desc="VIA -> COCO", unit="img", disable=not progress)
    for key, entry in entries:
        regions = entry["regions"]
        summary.annotations_in += len(regions)
        image = _coco_image(key, entry, numeric_keys.get(key), used_image_ids, new_image_id, images_dir, summary)
        if image is None:
            summary.annotations_of_skipped_images += len(regions)
            continue
        images[key], sizes[key] = image
        for p in _group_regions(key, entry["filename"], regions, lookup, attribute, summary):
            pending.add(p, len(sizes) - 1)

    pending = check_geometry(pending, sizes, summary, lambda key: images[key]["file_name"])
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


# --- images ---------------------------------------------------------------------------------
def _coco_image(key, entry, image_id, used_image_ids, new_image_id, images_dir, summary):
    """(COCO image, (width, height)) of one VIA entry, None for an entry skipped (counted).

    `image_id` is the entry's key as a number (None when it is not one: a new id is given);
    the size comes from its file attributes, else from the file in `images_dir`."""
    file_name = entry["filename"]
    if image_id is not None and image_id in used_image_ids:
        summary.note("images_duplicate_id", file_name, f"key {key!r}", f"duplicate image id {image_id}: skipped")
        return None
    if not file_name:
        summary.note("images_bad_entry", key, "", "no file name")
        return None
    image_id = new_image_id() if image_id is None else image_id
    width, height = _image_size_from_attributes(entry["file_attributes"])
    kept, file_size = image_file_check(images_dir, file_name, summary)
    if not kept:
        return None
    if file_size is not None and width is None:
        width, height = file_size
    if width is None:
        summary.note("images_unknown_size", file_name, "",
                     f"no width/height: its {len(entry['regions'])} regions kept, points not checked")
    used_image_ids.add(image_id)
    image = {"id": image_id, "file_name": file_name}
    if width is not None:
        image.update(width=width, height=height)
    image.update({k: v for k, v in entry["file_attributes"].items()
                  if k not in ("width", "height", "widht")})
    return image, (width, height)


# --- regions --------------------------------------------------------------------------------
def _group_regions(key, file_name, regions, lookup, attribute, summary):
    """The pending annotations of one image's regions: regions linked by "annotation_id" (and of
    one category) are the parts of one annotation, in their "part" order; any other region is an
    annotation of its own. Unusable regions are skipped and counted."""
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
        category_id = _region_category(attributes.get(attribute), lookup)
        if category_id is None:
            summary.note("annotations_unknown_category", file_name, f"region {index}",
                         f"{attribute}={attributes.get(attribute)!r} is not a category")
            continue
        link = attributes.get("annotation_id")
        linked = link is not None and link != ""
        group_key = (str(link), category_id) if linked else index
        p = groups.get(group_key)
        if p is None:
            p = groups[group_key] = _new_group(key, link if linked else None, index, category_id, attributes,
                                               was_rect)
        _add_region(p, xs, ys, was_rect, attributes, index, file_name, summary)
    return _ordered_groups(groups, file_name, summary)


def _region_category(raw_value, lookup):
    """The category id a region's attribute value names, or None."""
    category_id = lookup.get(raw_value) if isinstance(raw_value, str) else None
    return category_id if category_id is not None else lookup.get(_attribute_value(raw_value))


def _new_group(key, link, index, category_id, attributes, was_rect):
    """An empty pending annotation for the regions linked by `link` (None: region `index` alone),
    carrying the first region's "iscrowd", "bbox" and "area"."""
    try:
        annotation_id = int(link) if link is not None else None
    except (TypeError, ValueError):
        annotation_id = None
    return PendingAnnotation(
        key, annotation_id, category_id, [], [], attributes.get("iscrowd"),
        attributes.get("bbox"), attributes.get("area"), was_rect,
        f"annotation {link}" if link is not None else f"region {index}",
        "region" if link is not None else "", [], [])


def _add_region(p, xs, ys, was_rect, attributes, index, file_name, summary):
    """Add region `index`'s polygon to `p` once its point lists are checked (counted when
    repaired or dropped), with its "part" number."""
    if not (len(xs) == len(ys) >= 3 and not isinstance(xs[0], str) and not isinstance(ys[0], str)):
        checked = check_structure(xs, ys, summary, file_name,
                                  f"{p.item} region {index}" if p.source_word else p.item)
        p.repaired = True
        if checked is None:
            return
        xs, ys = checked[0], checked[1]
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


def _ordered_groups(groups, file_name, summary):
    """The groups with a polygon left (the others counted), each with its parts in "part" order."""
    kept = []
    for p in groups.values():
        if not p.xs:
            summary.note("annotations_without_polygons", file_name, p.item, "no usable polygon")
            continue
        if len(p.order) > 1 and p.order != sorted(p.order):
            ranked = sorted(range(len(p.order)), key=p.order.__getitem__)
            p.xs, p.ys = [p.xs[i] for i in ranked], [p.ys[i] for i in ranked]
            p.sources = [p.sources[i] for i in ranked]
        kept.append(p)
    return kept


# --- COCO annotations -----------------------------------------------------------------------
def _coco_annotations(pending, images, sizes, recompute, summary):
    """COCO annotation dicts for the pending ones: ids de-duplicated, bbox and area carried
    when still valid, else computed (pycocotools area, batched per image); annotations whose
    mask has no pixel are dropped (counted)."""
    annotations, to_measure = [], {}   # image key -> [annotation]
    ids = assign_ids(pending, summary, lambda key: images[key]["file_name"])
    for p, ann_id in zip(pending, ids):
        annotation = _coco_annotation(p, ann_id, images[p.image_key]["id"], recompute)
        if annotation["area"] is None:
            to_measure.setdefault(p.image_key, []).append(annotation)
        annotations.append(annotation)
    empty = _measure_areas(to_measure, images, sizes, summary)
    if empty:
        annotations = [a for a in annotations if id(a) not in empty]
    summary.multipart_annotations += sum(len(a["segmentation"]) > 1 for a in annotations)
    summary.crowd_annotations += sum(bool(a["iscrowd"]) for a in annotations)
    summary.polygons_out += sum(len(a["segmentation"]) for a in annotations)
    return annotations


def _coco_annotation(p, ann_id, image_id, recompute):
    """The COCO annotation of `p`; its "area" is None when it must be measured."""
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
        bbox = extent_bbox(p.xs, p.ys)
    return {"id": ann_id, "image_id": image_id, "category_id": p.category_id,
            "segmentation": polygons, "area": area, "bbox": bbox, "iscrowd": iscrowd}


def _measure_areas(to_measure, images, sizes, summary):
    """Set each annotation's "area" to its mask's pixel count (all of an image's polygons
    rasterised in one pycocotools call); returns the `id()`s of those with 0 pixels (counted)."""
    empty = set()
    for key, items in to_measure.items():
        width, height = sizes[key]
        all_polygons = [polygon for annotation in items for polygon in annotation["segmentation"]]
        if width is None:   # unknown size: a canvas that holds every point
            width = int(np.ceil(max(max(poly[0::2]) for poly in all_polygons))) + 1
            height = int(np.ceil(max(max(poly[1::2]) for poly in all_polygons))) + 1
        rles = mask_utils.frPyObjects(all_polygons, height, width)
        position = 0
        for annotation in items:
            parts = rles[position:position + len(annotation["segmentation"])]
            position += len(annotation["segmentation"])
            rle = parts[0] if len(parts) == 1 else mask_utils.merge(parts)
            annotation["area"] = int(mask_utils.area(rle))
            if annotation["area"] == 0:
                summary.note("annotations_empty_mask", images[key]["file_name"],
                             f"annotation {annotation['id']}", "mask has 0 pixels: skipped")
                empty.add(id(annotation))
    return empty
