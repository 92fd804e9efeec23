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

The code: helpers.coco_to_via and helpers.via_to_coco (one direction each), the checks, ids and
geometry they share in helpers.annotation_checks, the summary in helpers.conversion_summary;
this module is the command line and keeps the names other code imports from it.
"""
import argparse
import gc
import sys
from pathlib import Path

from helpers.annotation_checks import AREA_EPSILON, EXIF_ORIENTATION, polygon_areas
from helpers.coco_to_via import coco_to_via
from helpers.conversion_summary import FLAGGED, MAX_PROBLEMS, REPAIRED, SKIPPED, ConversionSummary
from helpers.io import DataError, describe_os_error, remove_temp_files_on_signals, same_file, write_json_atomic
from helpers.via import write_via
from helpers.via_to_coco import DEFAULT_INFO, via_to_coco

__all__ = ["AREA_EPSILON", "DEFAULT_INFO", "EXIF_ORIENTATION", "FLAGGED", "MAX_PROBLEMS", "REPAIRED", "SKIPPED",
           "ConversionSummary", "coco_to_via", "main", "polygon_areas", "via_to_coco"]


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
