"""COCO -> VIA 2 for notebook 03 (`coco_to_via`); helpers.convert describes the form written and
is the command line.

The steps: the image entries become VIA entries (`_via_entries`), each annotation is read and
its polygons checked (`_read_annotations`), every polygon is checked against its image at once
(helpers.annotation_checks.check_geometry), and the kept annotations become VIA regions
(`_write_regions`), one per polygon.
"""
from pathlib import Path

from tqdm.auto import tqdm

from helpers.annotation_checks import (PendingAnnotation, PendingList, assign_ids, check_geometry, check_structure,
                                       image_file_check, positive_int)
from helpers.conversion_summary import ConversionSummary, note_modanet_defects
from helpers.io import DataError, paused_gc, read_json


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



def coco_to_via(coco, attribute="fashion", images_dir=None, progress=True):
    """A COCO dataset (dict or path) as a VIA 2 export; returns (via, ConversionSummary).

    See helpers.convert's docstring for the form. With `images_dir`, an image whose file is
    missing or unreadable there is skipped (with its annotations).
    """
    _, coco = _load_coco(coco)
    with paused_gc():
        via, summary = _coco_to_via(coco, attribute, images_dir, progress)
        return via, note_modanet_defects(summary, coco)


def _coco_to_via(coco, attribute, images_dir, progress):
    summary = ConversionSummary("COCO -> VIA")
    summary.images_in, summary.annotations_in = len(coco["images"]), len(coco["annotations"])
    via, sizes, skipped_images = _via_entries(coco["images"], images_dir, summary)
    pending = _read_annotations(coco, via, sizes, skipped_images, progress, summary)
    pending = check_geometry(pending, sizes, summary, lambda key: via[key]["filename"])
    _write_regions(via, pending, attribute, summary)
    summary.annotations_out = len(pending)
    summary.images_out = len(via)
    summary.images_without_annotations = sum(1 for entry in via.values() if not entry["regions"])
    return via, summary


# --- image entries --------------------------------------------------------------------------
def _via_entries(images, images_dir, summary):
    """(via, sizes, skipped_images): an empty VIA entry per usable COCO image, keyed by its id as
    text; each image's (width, height), None when unknown; the keys of images skipped because of
    their file (their annotations are counted apart from those of unknown images)."""
    via, sizes, skipped_images = {}, {}, set()
    for image in images:
        key, file_name = _image_key(image, summary)
        if key is None:
            continue
        if key in via:
            summary.note("images_duplicate_id", file_name, f"image id {key}",
                         f"duplicate image id (first: {via[key]['filename']}): skipped")
            continue
        width, height = positive_int(image.get("width")), positive_int(image.get("height"))
        kept, file_size = image_file_check(images_dir, file_name, summary)
        if not kept:
            skipped_images.add(key)
            continue
        if file_size is not None and (width is None or height is None):
            width, height = file_size
        if width is None or height is None:
            summary.note("images_unknown_size", file_name, "", "no width/height")
            width = height = None
        extras = {k: v for k, v in image.items() if k not in ("id", "file_name", "width", "height")}
        file_attributes = {"width": width, "height": height} if width is not None else {}
        file_attributes.update(extras)
        via[key] = {"filename": file_name, "size": -1, "regions": [], "file_attributes": file_attributes}
        sizes[key] = (width, height)
    return via, sizes, skipped_images


def _image_key(image, summary):
    """(the image's id as text, its file name), or (None, None) for a bad entry (counted)."""
    image_id = image.get("id") if isinstance(image, dict) else None
    file_name = image.get("file_name") if isinstance(image, dict) else None
    if image_id is None or not file_name:
        summary.note("images_bad_entry", str(image)[:60], "", "no 'id' or 'file_name'")
        return None, None
    if type(image_id) not in (int, str) or not isinstance(file_name, str):
        summary.note("images_bad_entry", str(image)[:60], "", "'id' not an integer or text, or "
                     "'file_name' not text")
        return None, None
    return str(image_id), file_name


# --- annotations ----------------------------------------------------------------------------
def _read_annotations(coco, via, sizes, skipped_images, progress, summary):
    """The annotations of `via`'s images with their usable polygons, as a PendingList."""
    known_categories = {c.get("id") for c in coco.get("categories") or [] if isinstance(c, dict)}
    pending, image_numbers = PendingList(), {key: number for number, key in enumerate(sizes)}
    for ann in tqdm(coco["annotations"], desc="COCO -> VIA", unit="ann", disable=not progress):
        target = _annotation_target(ann, via, skipped_images, known_categories, summary)
        if target is None:
            continue
        key, ann_id, category_id, item, segmentation = target
        if len(segmentation) == 1:   # the common case, checked inline (as in _pending_parts)
            polygon = segmentation[0]
            if (isinstance(polygon, list) and len(polygon) >= 6 and not len(polygon) % 2
                    and not isinstance(polygon[0], str) and not isinstance(polygon[1], str)):
                pending.add(PendingAnnotation(key, ann_id, category_id, [polygon[0::2]], [polygon[1::2]],
                                              ann.get("iscrowd"), ann.get("bbox"), ann.get("area"), False,
                                              item), image_numbers[key])
                continue
        p = _pending_parts(ann, key, ann_id, category_id, item, segmentation, via[key]["filename"], summary)
        if p is not None:
            pending.add(p, image_numbers[key])
    return pending


def _annotation_target(ann, via, skipped_images, known_categories, summary):
    """(image key, id, category id, item, segmentation as a list of polygons) of an annotation
    of a known image and category with a polygon segmentation; None otherwise (counted)."""
    if not isinstance(ann, dict):
        summary.note("annotations_without_polygons", "?", str(ann)[:40], "not an annotation")
        return None
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
        return None
    file_name = via[key]["filename"]
    category_id = ann.get("category_id")
    if type(category_id) not in (int, str) or (known_categories and category_id not in known_categories):
        summary.note("annotations_unknown_category", file_name, item, f"unknown category id {category_id!r}")
        return None
    segmentation = ann.get("segmentation")
    if isinstance(segmentation, list) and segmentation and not isinstance(segmentation[0], list):
        segmentation = [segmentation]     # a single polygon written without its outer list
    if not isinstance(segmentation, list) or not segmentation:
        kind = "RLE (not representable in VIA)" if isinstance(segmentation, dict) else "none"
        summary.note("annotations_without_polygons", file_name, item, f"segmentation: {kind}")
        return None
    return key, ann_id, category_id, item, segmentation


def _pending_parts(ann, key, ann_id, category_id, item, segmentation, file_name, summary):
    """The annotation with each of its polygons checked (odd counts repaired, unusable ones
    dropped, both counted); None (counted) when no polygon is left."""
    p = PendingAnnotation(key, ann_id, category_id, [], [], ann.get("iscrowd"), ann.get("bbox"),
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
        checked = check_structure(polygon[0::2], polygon[1::2], summary, file_name, f"{item} part {part}")
        if checked is None:
            p.repaired = True
            continue
        p.xs.append(checked[0])
        p.ys.append(checked[1])
        p.sources.append(part)
    if not p.xs:
        summary.note("annotations_without_polygons", file_name, item, "no usable polygon")
        return None
    return p


# --- regions --------------------------------------------------------------------------------
def _write_regions(via, pending, attribute, summary):
    """One VIA region per polygon of each kept annotation, added to its image's entry; the parts
    of an annotation share its category, "annotation_id" and "iscrowd"."""
    multipart = crowd = polygon_count = 0
    category_text = {}   # category id -> its text, made once per category
    for p, ann_id in zip(pending, assign_ids(pending, summary, lambda key: via[key]["filename"])):
        category = category_text.get(p.category_id)
        if category is None:
            category = category_text[p.category_id] = str(p.category_id)
        common = {attribute: category, "annotation_id": str(ann_id)}
        iscrowd = p.iscrowd
        if iscrowd is not None:
            common["iscrowd"] = str(int(iscrowd)) if isinstance(iscrowd, (bool, int)) else str(iscrowd)
            crowd += bool(iscrowd)
        _add_regions(via[p.image_key]["regions"], p, common)
        multipart += len(p.xs) > 1
        polygon_count += len(p.xs)
    summary.multipart_annotations += multipart
    summary.crowd_annotations += crowd
    summary.polygons_out += polygon_count


def _add_regions(regions, p, common):
    """Append the regions of `p`'s polygons, numbered by "part"; the first carries the
    annotation's "bbox" and "area" while they are still its own (no part repaired or dropped)."""
    n_parts = len(p.xs)
    for part in range(n_parts):
        attributes = common.copy() if part < n_parts - 1 else common   # the last part takes `common` itself
        attributes["part"] = str(part)
        if part == 0 and not p.repaired:
            bbox = p.bbox
            if isinstance(bbox, list) and len(bbox) == 4:
                attributes["bbox"] = f"{bbox[0]},{bbox[1]},{bbox[2]},{bbox[3]}"
            if isinstance(p.area, (int, float)):
                attributes["area"] = str(p.area)
        regions.append({
            "shape_attributes": {"name": "polygon", "all_points_x": p.xs[part], "all_points_y": p.ys[part]},
            "region_attributes": attributes,
        })
