"""Mask R-CNN training data from the course's annotation files: COCO (ModaNet) and VIA.

`CocoDataset.load_coco` reads ModaNet's COCO JSON (or a split of it); `ViaDataset.load_via`
reads a VIA export (the custom season set). Both are `mrcnn.utils.Dataset`s, so the usual
Matterport steps apply: load, `prepare()`, then train. Masks are rasterised by pycocotools at
the image's size through one shared function, so the same polygons give the same masks in
both formats. Nothing is dropped silently: every skipped annotation, polygon part or region
is counted by reason in `dataset.skipped`, and `summary()` returns printable text.
"""
import numbers
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from helpers.guards import image_size_problem, polygon_problem, positive_int, rle_problem
from helpers.io import DataError, name_leaves_folder, read_json
from helpers.modanet import class_slug
from helpers.repair import repair_coco
from helpers.via import read_via
from mrcnn.utils import Dataset, ImageTooLargeError, read_image_rgb

EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientations that turn the picture by 90 degrees (width and height swap on display).
QUARTER_TURN_ORIENTATIONS = {5, 6, 7, 8}

EMPTY_MASK = "annotation: mask is empty at the image's size"
ID_TYPES = {int, str}   # image ids: exact types (a bool is an int to isinstance; a list is unhashable)
TOO_LARGE = "image: too large to decode (Pillow's decompression-bomb limit)"


class ImageTooLarge(DataError):
    """An image file whose header claims more pixels than Pillow opens (a decompression bomb)."""


# -- masks ----------------------------------------------------------------------------------
def segmentation_to_mask(segmentation, height, width):
    """An (height, width) bool mask for a COCO segmentation.

    `segmentation` is a list of flat polygons [x0, y0, x1, y1, ...] (all parts of one
    instance, merged) or an RLE dict (compressed or uncompressed), as in COCO. A polygon or
    RLE that pycocotools cannot rasterise safely (helpers.guards) is a ValueError saying why,
    never a request for gigabytes or a write past pycocotools' buffer.
    """
    problems = ([rle_problem(segmentation, height, width)] if isinstance(segmentation, dict)
                else [polygon_problem(polygon, height, width) for polygon in segmentation])
    problem = next((p for p in problems if p), None)
    if problem:
        raise ValueError(f"segmentation at {width}x{height}: {problem}")
    if isinstance(segmentation, dict):
        rle = segmentation
        if isinstance(rle["counts"], list):
            rle = mask_utils.frPyObjects(rle, height, width)
        elif isinstance(rle["counts"], str):
            rle = {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}
    else:
        parts = [[float(v) for v in polygon] for polygon in segmentation]
        rle = mask_utils.merge(mask_utils.frPyObjects(parts, height, width))
    return mask_utils.decode(rle).astype(bool)


def _image_size_from_header(path):
    """(width, height) as displayed, i.e. after the EXIF orientation, reading only the header.

    A header that claims more pixels than Pillow opens is an ImageTooLarge (a DataError):
    callers skip and count such an image."""
    try:
        with Image.open(path) as im:
            width, height = im.size
            orientation = im.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file not found") from None
    except Image.DecompressionBombError as err:
        raise ImageTooLarge(f"{path}: image too large to decode safely ({err})") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: not a readable image ({err})") from None
    if orientation in QUARTER_TURN_ORIENTATIONS:
        width, height = height, width
    return width, height


def _read_input(path_or_obj, what):
    """(parsed JSON, name to use in messages) for a path or an already-parsed object."""
    if isinstance(path_or_obj, dict):
        return path_or_obj, f"<{what} given as a dict>"
    if not isinstance(path_or_obj, (str, Path)):
        raise TypeError(f"expected a path or a dict for the {what}, got {type(path_or_obj).__name__}")
    return read_json(path_or_obj, what), str(path_or_obj)


# -- shared base ----------------------------------------------------------------------------
class _AnnotatedDataset(Dataset):
    """Images with COCO-style annotations in image_info['annotations']; masks, images, summary.

    Each stored annotation has 'category_id' (the source's class id) and a cleaned
    'segmentation' (a list of valid flat polygons, or an RLE dict of the image's size).
    """

    def __init__(self, class_map=None):
        super().__init__(class_map)
        self.skipped = Counter()
        self._empty_mask_keys = set()
        self.repairs = []   # a helpers.repair.RepairSummary per repaired load_coco
        self.skipped_files = {}   # reason -> [image paths] for images skipped whole (e.g. TOO_LARGE)

    # -- loading --------------------------------------------------------------------------
    def load_image(self, image_id):
        """The image as (H, W, 3) uint8 RGB; a file whose size differs from the annotations' is an error.

        A file too large to decode (Pillow's decompression-bomb limit) is a DataError naming it,
        counted once under TOO_LARGE: load_image must return pixels, so it cannot skip it."""
        info = self.image_info[image_id]
        try:
            image = read_image_rgb(info["path"])
        except ImageTooLargeError as err:
            self._note_skipped_file(TOO_LARGE, info["path"])
            raise DataError(str(err)) from None
        expected = (info["height"], info["width"])
        if image.shape[:2] != expected:
            raise DataError(
                f"{info['path']}: image is {image.shape[1]}x{image.shape[0]} (width x height, after "
                f"EXIF orientation) but its annotations say {expected[1]}x{expected[0]}")
        return image

    def _note_skipped_file(self, reason, path):
        """Count an image file skipped whole, once, and keep its path for summary()."""
        files = self.skipped_files.setdefault(reason, [])
        if str(path) not in files:
            files.append(str(path))
            self.skipped[reason] += 1

    def load_mask(self, image_id):
        """Instance masks (H, W, N) bool and internal class ids (N,) int32; needs prepare()."""
        if not hasattr(self, "class_from_source_map"):
            raise RuntimeError("Call prepare() on the dataset before load_mask().")
        info = self.image_info[image_id]
        height, width = info["height"], info["width"]
        masks, class_ids = [], []
        for index, annotation in enumerate(info["annotations"]):
            mask = segmentation_to_mask(annotation["segmentation"], height, width)
            if not mask.any():
                key = (image_id, index)
                if key not in self._empty_mask_keys:
                    self._empty_mask_keys.add(key)
                    self.skipped[EMPTY_MASK] += 1
                continue
            masks.append(mask)
            class_ids.append(self.map_source_class_id(f"{info['source']}.{annotation['category_id']}"))
        if not masks:
            return np.zeros((height, width, 0), dtype=bool), np.zeros((0,), dtype=np.int32)
        return np.stack(masks, axis=-1), np.array(class_ids, dtype=np.int32)

    def image_reference(self, image_id):
        """The image's file path."""
        return str(self.image_info[image_id]["path"])

    # -- class ids ------------------------------------------------------------------------
    def _register_class(self, source, class_id, name):
        """add_class, but a second name for an already registered (source, id) is an error."""
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id and info["name"] != name:
                raise DataError(f"class {class_id} of source {source!r} is already {info['name']!r}; "
                                f"cannot also be {name!r} (use another source name)")
        self.add_class(source, class_id, name)

    def source_class_ids_by_internal(self):
        """{internal class id: the source's own class id} for every class but BG."""
        return {i: info["id"] for i, info in enumerate(self.class_info) if i > 0}

    def coco_categories(self):
        """COCO 'categories' for the registered classes, with the source's ids (for evaluation)."""
        return [{"id": info["id"], "name": info["name"], "supercategory": info["source"]}
                for info in self.class_info[1:]]

    # -- report ---------------------------------------------------------------------------
    def summary(self):
        """Printable text: images, instances per class, and what was skipped (by reason)."""
        name_by_source_id = {(c["source"], c["id"]): c["name"] for c in self.class_info[1:]}
        per_class = Counter({name: 0 for name in name_by_source_id.values()})
        for info in self.image_info:
            for annotation in info["annotations"]:
                per_class[name_by_source_id[(info["source"], annotation["category_id"])]] += 1
        sources = ", ".join(sorted({info["source"] for info in self.image_info})) or "none"
        lines = [f"{type(self).__name__} (source: {sources}): {len(self.image_info)} images, "
                 f"{sum(per_class.values())} instances"]
        width = max([len(name) for name in per_class] + [10])
        lines.append("  instances per class:")
        lines += [f"    {name:<{width}}  {count}" for name, count in per_class.items()]
        if self.skipped:
            lines.append("  skipped:")
            reason_width = max(len(reason) for reason in self.skipped)
            for reason, count in sorted(self.skipped.items()):
                note = "  (found so far by load_mask)" if reason == EMPTY_MASK else ""
                files = self.skipped_files.get(reason, [])
                if files:
                    note += ": " + ", ".join(Path(f).name for f in files[:3]) + (", ..." if len(files) > 3 else "")
                lines.append(f"    {reason:<{reason_width}}  {count}{note}")
        else:
            lines.append("  skipped: nothing")
        for report in self.repairs:
            lines.append(f"  repaired on loading (helpers.repair): {report.short()}")
            changes = report.class_changes()
            if changes:
                lines.append("    instances per class: " + ", ".join(
                    f"{name} {before} -> {after}" for name, (before, after) in changes.items()))
        return "\n".join(lines)


# -- COCO -----------------------------------------------------------------------------------
class CocoDataset(_AnnotatedDataset):
    """Images and instance masks from a COCO file in ModaNet's form."""

    def load_coco(self, annotations, images_dir, class_names=None, source="modanet", progress=True,
                  repair=True):
        """Add the classes and images of a COCO file (path or dict); images live in `images_dir`.

        `class_names` keeps only those categories, in that order (internal ids 1..n follow
        it); annotations of other categories are skipped and counted. Crowd annotations,
        unusable segmentations and unknown ids are skipped and counted too.

        `repair` (default True) first applies `helpers.repair.repair_coco`, so ModaNet's exact
        duplicate annotations do not come back from `load_mask` as two instances and the boxes
        match the polygons; a dict gives its options (e.g. {"split_shoes": True}). Areas are
        not recomputed unless asked ({"recompute_area": True}): nothing here reads them.
        The counts go into `self.repairs` and `summary()`. repair=False loads the file as it is.
        """
        data, where = _read_input(annotations, "COCO annotation file")
        if not isinstance(data, dict):
            raise DataError(f"{where}: top level is a {type(data).__name__}, not a COCO object")
        for key in ("images", "annotations", "categories"):
            if not isinstance(data.get(key), list):
                raise DataError(f"{where}: no '{key}' list (is this a COCO annotation file?)")
        names_by_id = self._read_categories(data["categories"], where)
        selected = self._select_classes(names_by_id, class_names, where)
        for category_id in selected:
            self._register_class(source, category_id, names_by_id[category_id])

        images = self._read_images(data["images"], where)
        if repair:
            data, report = repair_coco(data, **{"recompute_area": False,
                                                **(repair if isinstance(repair, dict) else {})})
            self.repairs.append(report)
        kept = {image_id: [] for image_id in images}
        for annotation in tqdm(data["annotations"], desc="COCO annotations", disable=not progress):
            reason = self._annotation_problem(annotation, names_by_id, selected, images)
            if reason is None:
                image = images[annotation["image_id"]]
                segmentation, reason = self._clean_segmentation(
                    annotation.get("segmentation"), image["height"], image["width"])
            if reason is not None:
                self.skipped[reason] += 1
                continue
            kept[annotation["image_id"]].append({**annotation, "segmentation": segmentation})

        images_dir = Path(images_dir)
        for image_id, image in images.items():
            self.add_image(source, image_id=image_id, path=str(images_dir / image["file_name"]),
                           width=image["width"], height=image["height"],
                           file_name=image["file_name"], annotations=kept[image_id])
        return self

    @staticmethod
    def _read_categories(categories, where):
        names_by_id = {}
        for category in categories:
            if (not isinstance(category, dict) or not isinstance(category.get("id"), int)
                    or not isinstance(category.get("name"), str)):
                raise DataError(f"{where}: category {category!r} needs an integer 'id' and a 'name'")
            if category["id"] in names_by_id:
                raise DataError(f"{where}: category id {category['id']} appears twice")
            names_by_id[category["id"]] = category["name"]
        return names_by_id

    @staticmethod
    def _select_classes(names_by_id, class_names, where):
        """Category ids to register, in order: all (by id), or those named in `class_names`."""
        if class_names is None:
            return sorted(names_by_id)
        id_by_name = {}
        for category_id, name in names_by_id.items():
            id_by_name.setdefault(name, category_id)
            id_by_name.setdefault(class_slug(name), category_id)
        selected = []
        for name in class_names:
            if name not in id_by_name:
                raise DataError(f"{where}: no category named {name!r}; it has "
                                f"{', '.join(repr(n) for n in names_by_id.values())}")
            if id_by_name[name] in selected:
                raise DataError(f"class_names names category {name!r} twice")
            selected.append(id_by_name[name])
        return selected

    @staticmethod
    def _read_images(images, where):
        by_id = {}
        for image in images:
            if not isinstance(image, dict) or "id" not in image:
                raise DataError(f"{where}: image entry {image!r} has no 'id'")
            image_id = image["id"]
            if type(image_id) not in ID_TYPES:
                raise DataError(f"{where}: image entry {str(image)[:120]}: 'id' must be an integer or a string, "
                                f"not a {type(image_id).__name__}")
            width, height = positive_int(image.get("width")), positive_int(image.get("height"))
            if width is None or height is None:
                raise DataError(f"{where}: image {image_id!r} needs a positive 'width' and 'height'")
            if not isinstance(image.get("file_name"), str) or not image["file_name"]:
                raise DataError(f"{where}: image {image_id!r} has no 'file_name'")
            problem = image_size_problem(width, height) or name_leaves_folder(image["file_name"])
            if problem:
                raise DataError(f"{where}: image {image_id!r} ({image['file_name']}): {problem}")
            if image_id in by_id:
                raise DataError(f"{where}: image id {image_id!r} appears twice")
            by_id[image_id] = {"file_name": image["file_name"], "width": width, "height": height}
        return by_id

    @staticmethod
    def _annotation_problem(annotation, names_by_id, selected, images):
        if not isinstance(annotation, dict):
            return "annotation: not an object"
        if annotation.get("iscrowd"):
            return "annotation: crowd"
        # Exact types first: a list is unhashable, and True or 1.0 would pass for category 1.
        if "category_id" in annotation and type(annotation["category_id"]) is not int:
            return "annotation: category id is not an integer"
        if "image_id" in annotation and type(annotation["image_id"]) not in ID_TYPES:
            return "annotation: image id is not an integer or a string"
        if annotation.get("category_id") not in names_by_id:
            return "annotation: unknown category id"
        if annotation["category_id"] not in selected:
            return "annotation: class not selected"
        if annotation.get("image_id") not in images:
            return "annotation: unknown image id"
        return None

    def _clean_segmentation(self, segmentation, height, width):
        """(usable segmentation, None) or (None, reason); bad polygon parts are counted and dropped."""
        if isinstance(segmentation, dict):
            size, counts = segmentation.get("size"), segmentation.get("counts")
            if not isinstance(counts, (list, str, bytes)) or not isinstance(size, (list, tuple)):
                return None, "annotation: malformed RLE"
            if [positive_int(v) for v in size] != [height, width]:
                return None, "annotation: RLE size differs from the image's"
            rle = {"size": [height, width], "counts": counts}
            return (None, problem) if (problem := rle_problem(rle, height, width)) else (rle, None)
        if not isinstance(segmentation, list) or not segmentation:
            return None, "annotation: no segmentation"
        polygons = []
        for polygon in segmentation:
            problem = polygon_problem(polygon, height, width)
            if problem:
                self.skipped[problem] += 1
            else:
                polygons.append(list(polygon))
        if not polygons:
            return None, "annotation: no usable polygon"
        return polygons, None


# -- VIA ------------------------------------------------------------------------------------
def _shape_to_polygon(shape, height, width):
    """(flat polygon, None) for a polygon or rect region at the image's size, else (None, reason)."""
    if not isinstance(shape, dict):
        return None, "region: no shape_attributes"
    name = shape.get("name")
    if name == "rect":
        x, y, w, h = (shape.get(k) for k in ("x", "y", "width", "height"))
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in (x, y, w, h)):
            return None, "region: rect without numeric x, y, width, height"
        if w <= 0 or h <= 0:
            return None, "region: rect with no area"
        rect = [x, y, x + w, y, x + w, y + h, x, y + h]
        problem = polygon_problem(rect, height, width)
        return (None, problem.replace("polygon part:", "region:")) if problem else (rect, None)
    if name != "polygon":
        return None, f"region: unsupported shape {name!r}"
    xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        return None, "region: all_points_x and all_points_y differ or are missing"
    polygon = [v for point in zip(xs, ys) for v in point]
    problem = polygon_problem(polygon, height, width)
    if problem:
        return None, problem.replace("polygon part:", "region:")
    return polygon, None


class ViaDataset(_AnnotatedDataset):
    """Images and instance masks from a VIA file (VIA 2 or VIA 1 export, VIA 2 project).

    The file is read by helpers.via.read_via, which hands over regions as a list.
    """

    def load_via(self, via_json, images_dir, class_map, attribute="fashion", source="via", progress=True):
        """Add the classes and images of a VIA file (path or dict); images live in `images_dir`.

        `class_map` maps the region attribute's values to class names ({"5": "outer"});
        classes are registered in the order of its distinct names. Regions that share an
        'annotation_id' attribute form one instance. Regions with an unknown value, a shape
        other than polygon/rect, or fewer than 3 points are skipped and counted.
        """
        entries = read_via(via_json)
        where = str(via_json) if isinstance(via_json, (str, Path)) else "<VIA data given as a dict>"
        if not isinstance(class_map, dict) or not class_map:
            raise DataError("class_map must be a non-empty dict: attribute value -> class name")
        name_by_label = {str(label): name for label, name in class_map.items()}
        class_names = list(dict.fromkeys(name_by_label.values()))
        source_id_by_name = {name: i for i, name in enumerate(class_names, start=1)}
        for name, class_id in source_id_by_name.items():
            self._register_class(source, class_id, name)

        images_dir = Path(images_dir)
        for key, entry in tqdm(entries.items(), desc="VIA images", disable=not progress):
            filename = entry.get("filename")
            if not isinstance(filename, str) or not filename:
                raise DataError(f"{where}: entry {key!r} has no 'filename'")
            leaves = name_leaves_folder(filename)
            if leaves:
                raise DataError(f"{where}: entry {key!r} ({filename}): {leaves}")
            path = images_dir / filename
            try:
                width, height = self._entry_size(entry, path, where)
            except ImageTooLarge:
                self._note_skipped_file(TOO_LARGE, path)
                continue
            groups = self._group_regions(entry["regions"], name_by_label, attribute, height, width)
            annotations = []
            for group_key, parts in groups.items():
                names = {name for name, _ in parts}
                if len(names) > 1:
                    self.skipped["instance: parts carry different classes"] += 1
                    continue
                annotations.append({"category_id": source_id_by_name[names.pop()],
                                    "segmentation": [polygon for _, polygon in parts],
                                    "annotation_id": group_key[1] if group_key[0] == "id" else None})
            self.add_image(source, image_id=key, path=str(path), width=width, height=height,
                           file_name=filename, annotations=annotations)
        return self

    @staticmethod
    def _entry_size(entry, path, where):
        """(width, height): from file_attributes when given, else from the image's header.

        A size over MAX_IMAGE_SIDE is a DataError naming the file, as in load_coco; a header
        beyond Pillow's decompression-bomb limit raises ImageTooLarge (load_via skips the image)."""
        attributes = entry.get("file_attributes") or {}
        size = None
        if isinstance(attributes, dict):
            # "widht" is how the season project's real export spells it.
            width = positive_int(attributes.get("width") or attributes.get("widht"))
            height = positive_int(attributes.get("height"))
            if width and height:
                size = width, height
        if size is None:
            try:
                size = _image_size_from_header(path)
            except FileNotFoundError:
                raise DataError(f"{path}: image file not found, and {where} gives no width/height "
                                "for it in file_attributes") from None
        problem = image_size_problem(*size)
        if problem:
            raise DataError(f"{where}: image {path.name!r}: {problem}")
        return size

    def _group_regions(self, regions, name_by_label, attribute, height, width):
        """{group key: [(class name, polygon), ...]}; regions sharing 'annotation_id' share a key."""
        groups = {}
        for index, region in enumerate(regions):
            if not isinstance(region, dict):
                self.skipped["region: not an object"] += 1
                continue
            region_attributes = region.get("region_attributes") or {}
            if not isinstance(region_attributes, dict):
                self.skipped["region: region_attributes not an object"] += 1
                continue
            label = region_attributes.get(attribute)
            if isinstance(label, dict):  # checkbox attributes: {"5": true}
                ticked = [k for k, v in label.items() if v]
                label = ticked[0] if len(ticked) == 1 else None
            if label is None or label == "":
                self.skipped[f"region: no '{attribute}' value"] += 1
                continue
            if str(label) not in name_by_label:
                self.skipped[f"region: '{attribute}' value not in class_map"] += 1
                continue
            polygon, reason = _shape_to_polygon(region.get("shape_attributes"), height, width)
            if reason:
                self.skipped[reason] += 1
                continue
            annotation_id = region_attributes.get("annotation_id")
            key = ("region", index) if annotation_id in (None, "") else ("id", str(annotation_id))
            groups.setdefault(key, []).append((name_by_label[str(label)], polygon))
        return groups


def load_coco_dataset(annotations, images_dir=None, class_names=None, progress=False):
    """A prepared CocoDataset in one call (what notebooks use for each split).

    Without `images_dir`, the folder recorded in the file's info.images_dir is used (the
    auto-labels of notebook 05 record where their photos are).
    """
    if images_dir is None:
        data, where = _read_input(annotations, "COCO annotation file")
        images_dir = (data.get("info") or {}).get("images_dir") if isinstance(data, dict) else None
        if not images_dir:
            raise DataError(f"{where}: no info.images_dir in the file: pass images_dir")
        annotations = data
    dataset = CocoDataset()
    dataset.load_coco(annotations, images_dir, class_names=class_names, progress=progress)
    dataset.prepare()
    return dataset
