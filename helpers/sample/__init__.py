"""A synthetic ModaNet-like data set and a custom season set, drawn on the CPU in seconds.

Why: the course must run end to end without the real ModaNet (tens of GB and a licence to
accept). `generate_modanet_sample` draws street-like pictures of standing figures wearing
garments of the 13 ModaNet classes and writes them in ModaNet's own COCO form;
`generate_custom_set` draws the `<class>_<season>_<n>.jpg` photos of notebook 05, where the
season shows in the named garment's palette and pattern. `build_sample` does both for a
profile (and skips when nothing changed); `python -m helpers.sample` is its command line.

How the annotations stay exact: every shape is a polygon with integer pixel-corner
coordinates, rasterised with pycocotools and painted in z-order into a label map. A garment
that nothing covers keeps its drawn polygon(s); a covered one gets the outline of its visible
pixels traced along pixel edges, so each annotation matches what the picture shows.
Same seed and size give identical JSON and identical pixels.

The package, in the order a picture is made: paint (colours, patterns), figure (where a figure
stands, what it wears), shapes (its body and garments, as outlines in a table), masks (polygons
to masks and back), scene (one picture with its exact garment polygons), writing (the COCO
files and pictures), build (one call per profile, the command line; `__main__` runs it).
"""
from helpers.sample.build import (GENERATOR_VERSION, MANIFEST_FILE, build_sample, format_summary, main,
                                  sample_parameters)
from helpers.sample.figure import ARM_LENGTH, WAIST_Y
from helpers.sample.masks import mask_polygons
from helpers.sample.paint import HAIR_COLOURS, SKIN_TONES, random_paint, season_paint
from helpers.sample.scene import MIN_FRAGMENT_PX, MIN_VISIBLE_PX
from helpers.sample.writing import (JPEG_QUALITY, SAMPLE_INFO, SAMPLE_LICENSES, SAMPLE_YEAR, TRAIN_FILE, VAL_FILE,
                                    generate_custom_set, generate_modanet_sample, parse_custom_name,
                                    val_image_count)

__all__ = ["ARM_LENGTH", "GENERATOR_VERSION", "HAIR_COLOURS", "JPEG_QUALITY", "MANIFEST_FILE", "MIN_FRAGMENT_PX",
           "MIN_VISIBLE_PX", "SAMPLE_INFO", "SAMPLE_LICENSES", "SAMPLE_YEAR", "SKIN_TONES", "TRAIN_FILE", "VAL_FILE",
           "WAIST_Y", "build_sample", "format_summary", "generate_custom_set", "generate_modanet_sample", "main",
           "mask_polygons", "parse_custom_name", "random_paint", "sample_parameters", "season_paint",
           "val_image_count"]
