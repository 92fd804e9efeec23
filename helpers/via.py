"""Read and write VGG Image Annotator (VIA) files in one normalised shape.

The original season project trained from VIA 2 JSON, and people hand us files from every
VIA version. `read_via` accepts the three shapes that occur and always returns the VIA 2
*export* shape, so the converters never branch on the version:

    {key: {"filename": str, "size": int, "regions": [region, ...], "file_attributes": {...}}}

    - VIA 1 export: the same, but "regions" is a dict keyed "0", "1", ...
    - VIA 2 export: the shape above.
    - VIA 2 project: {"_via_settings": ..., "_via_img_metadata": {the export}, ...}

A region is {"shape_attributes": {...}, "region_attributes": {...}}; its contents are left
as they are here (helpers.convert checks them and counts what it repairs or skips).
"""
from pathlib import Path

from helpers.io import DataError, read_json, write_json_atomic

PROJECT_KEY = "_via_img_metadata"
EXPECTED = (
    "a VIA file: a VIA 1 or VIA 2 export ({key: {filename, regions, ...}}) "
    "or a VIA 2 project (with '_via_img_metadata')"
)


def _regions_as_list(regions, source, key):
    """VIA 2 keeps regions in a list, VIA 1 in a dict keyed by position ("0", "1", ...)."""
    if isinstance(regions, list):
        return regions
    if isinstance(regions, dict):
        def position(item):
            index, _ = item
            return (0, int(index), "") if str(index).isdigit() else (1, 0, str(index))
        return [region for _, region in sorted(regions.items(), key=position)]
    raise DataError(f"{source}: image {key!r} has 'regions' of type "
                    f"{type(regions).__name__}; expected a list (VIA 2) or a dict (VIA 1)")


def _describe(obj):
    """A few words on what a non-VIA object looks like, for the error message."""
    if isinstance(obj, dict) and {"images", "annotations"} <= obj.keys():
        return "it looks like a COCO file (has 'images' and 'annotations')"
    if isinstance(obj, dict):
        return f"top-level keys {sorted(obj)[:5]}"
    return f"top level is a {type(obj).__name__}"


def read_via(path_or_obj):
    """A VIA 1 export, VIA 2 export or VIA 2 project (a path or an already parsed dict),
    returned as a VIA 2 export whose "regions" are always lists.

    Raises DataError naming the file when it is none of those shapes.
    """
    if isinstance(path_or_obj, (str, Path)):
        source = str(path_or_obj)
        obj = read_json(path_or_obj, "VIA JSON file")
    else:
        source, obj = "VIA data", path_or_obj

    if isinstance(obj, dict) and PROJECT_KEY in obj:
        obj = obj[PROJECT_KEY]
        if not isinstance(obj, dict):
            raise DataError(f"{source}: '{PROJECT_KEY}' is a {type(obj).__name__}; expected "
                            "a dict of images")
    if not isinstance(obj, dict):
        raise DataError(f"{source}: not {EXPECTED}; {_describe(obj)}")

    via = {}
    for key, entry in obj.items():
        if not (isinstance(entry, dict) and "filename" in entry and "regions" in entry):
            raise DataError(f"{source}: not {EXPECTED}; entry {str(key)[:60]!r} has no "
                            f"'filename' and 'regions' ({_describe(obj)})")
        file_attributes = entry.get("file_attributes") or {}
        if not isinstance(file_attributes, dict):
            raise DataError(f"{source}: image {key!r} has 'file_attributes' of type "
                            f"{type(file_attributes).__name__}; expected a dict")
        via[str(key)] = {
            "filename": entry["filename"],
            "size": entry.get("size", -1),
            "regions": _regions_as_list(entry["regions"], source, key),
            "file_attributes": file_attributes,
        }
    return via


def write_via(via, path):
    """Write a VIA 2 export to `path` atomically (never a half-written file); returns the path."""
    return write_json_atomic(path, via)
