"""Driver of tests/test_hostile_inputs.py: one hostile input through one entry point, judged.

    python tests/hostile_driver.py KIND ENTRY WORKDIR
        builds the inputs of KIND in WORKDIR (a fresh folder), runs ENTRY on them (a CLI as a child
        process, a library call in this process), judges what happened and prints one verdict line:
        "PASS <outcome>: <detail>" (exit 0) or "FAIL: <why>" (exit 1). Outcomes: "error" (a clear
        one-line error), "skip" (success, the bad item counted in the summary), "ok" (success, nothing
        counted). Each kind lists the outcomes it allows, per entry where they differ.
    python tests/hostile_driver.py --serve CAP
        a fork server for the library cases: each case a forked child under an address-space cap.
    python tests/hostile_driver.py --wrap MODE -m MODULE ARG...
        runs MODULE as `python -m MODULE ARG...` on a simulated disk: MODE "slow-fsync" makes every
        fsync take 3 s (so a SIGTERM lands mid-write), "enospc:NAME" fails the fsync of any file whose
        path contains NAME with "No space left on device".

Imports of the code under test stay inside functions: the test imports this module for the case list.
"""
import errno
import gzip
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLASS_NAMES = ("bag", "belt", "boots", "footwear", "outer", "dress", "sunglasses",
               "pants", "top", "shorts", "skirt", "headwear", "scarf/tie")
CATEGORIES = [{"supercategory": "fashion", "id": i, "name": n} for i, n in enumerate(CLASS_NAMES, 1)]
W, H = 60, 40
NAMES = ("a.jpg", "b.jpg", "c.jpg", "d.jpg")     # b.jpg is the victim of image kinds
VICTIM = "b.jpg"
AUTO_GOOD, AUTO_VICTIM = "skirt_yaz_1.jpg", "top_kis_2.jpg"
CLI_TIMEOUT = 90
ERROR, SKIP, OK = "error", "skip", "ok"
BAD = frozenset({ERROR, SKIP})
ANY = frozenset({ERROR, SKIP, OK})
FINE = frozenset({OK, SKIP})

CLI_ENTRIES = ("coco-to-via", "via-to-coco", "split", "repair", "custom")



# --- the base data: four small photos with one annotation each -----------------------------
def polygon(i):
    x0, y0 = 5 + 3 * i, 5 + 2 * i
    return [x0, y0, x0 + 30, y0, x0 + 30, y0 + 20, x0, y0 + 20]


def base_coco():
    images = [{"id": i + 1, "file_name": name, "width": W, "height": H} for i, name in enumerate(NAMES)]
    annotations = [{"id": 100 + i, "image_id": i + 1, "category_id": [5, 11, 9, 1][i], "iscrowd": 0,
                    "segmentation": [polygon(i)], "bbox": [polygon(i)[0], polygon(i)[1], 30, 20],
                    "area": 600} for i in range(len(NAMES))]
    return {"info": {"description": "hostile-input base"}, "images": images, "annotations": annotations,
            "categories": [dict(c) for c in CATEGORIES]}


def base_via():
    via = {}
    for i, name in enumerate(NAMES):
        p = polygon(i)
        via[f"{name}-1"] = {"filename": name, "size": -1, "file_attributes": {"width": W, "height": H},
                            "regions": [{"shape_attributes": {"name": "polygon", "all_points_x": p[0::2],
                                                              "all_points_y": p[1::2]},
                                         "region_attributes": {"fashion": str([5, 11, 9, 1][i])}}]}
    return via


def save_image(path, size=(W, H), mode="RGB", fmt=None, color=(200, 30, 90)):
    from PIL import Image
    if mode in ("I;16",):
        im = Image.new("I;16", size, 3000)
    elif mode == "CMYK":
        im = Image.new("CMYK", size, (10, 200, 30, 5))
    else:
        im = Image.new(mode, size, color if mode == "RGB" else None)
    im.save(path, format=fmt)


def png_with_header(width, height, color_type=2):
    """A PNG whose IHDR claims width x height; one tiny IDAT (Pillow reads the header at open)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _loads(data):
    try:
        import orjson      # a 1-million-point file: several times faster than json
    except ImportError:
        return json.loads(data)
    return orjson.loads(data)


# --- a case's files -------------------------------------------------------------------------
class Ctx:
    """The files of one case; a kind function mutates it before the files are written."""

    def __init__(self, root):
        self.root = Path(root)
        self.inp, self.images, self.out, self.auto = (self.root / n for n in ("in", "images", "out", "auto"))
        for folder in (self.inp, self.images, self.out, self.auto):
            folder.mkdir(parents=True, exist_ok=True)
        self.coco, self.via = base_coco(), base_via()
        self.coco_raw = self.via_raw = None          # bytes written instead of the dumped JSON
        self.coco_text_sub = self.via_text_sub = None  # (old, new) replaced in the dumped text
        self.coco_path, self.via_path = self.inp / "coco.json", self.inp / "via.json"
        self.cats_path = self.inp / "categories.json"
        self.coco_dict = self.via_dict = None        # library-only inputs (NaN does not survive JSON)
        self.outside = self.root / "outside.jpg"
        self.outside_names = ()                      # file names in the data that point at `outside`
        self.weights = self.root / "weights.h5"
        self.words = ()                              # words an error may use instead of a file name
        self.wrap = None                             # --wrap MODE for the CLI
        self.sigterm = False
        self.outputs_override = {}                   # entry -> output paths
        self.pre_outputs = {}                        # output path -> bytes of an earlier run
        self.in_is_out = False
        self.cap = None                              # address-space cap of the CLI's process (bytes)
        self.resume_test = False                     # autolabel: interrupt once, then resume
        for i, name in enumerate(NAMES):
            save_image(self.images / name, color=(40 * i, 90, 200 - 30 * i))
        save_image(self.outside, color=(1, 2, 3))
        save_image(self.auto / AUTO_GOOD)
        save_image(self.auto / AUTO_VICTIM)

    def victims(self):
        """The image files a kind of image damages: b.jpg of the data, and one photo to auto-label."""
        return [self.images / VICTIM, self.auto / AUTO_VICTIM]

    def write(self):
        for path, obj, raw, sub in ((self.coco_path, self.coco, self.coco_raw, self.coco_text_sub),
                                    (self.via_path, self.via, self.via_raw, self.via_text_sub)):
            if raw is None:
                text = json.dumps(obj, ensure_ascii=False)
                if sub:
                    text = text.replace(*sub)
                raw = text.encode("utf-8")
            if raw is not False:        # False: the kind made this path itself (a folder, nothing)
                path.write_bytes(raw)
        self.cats_path.write_text(json.dumps({"categories": CATEGORIES}))

    # outputs of each CLI
    def outputs(self, entry):
        if entry in self.outputs_override:
            return self.outputs_override[entry]
        if self.in_is_out:
            return {"coco-to-via": [self.coco_path], "via-to-coco": [self.via_path], "split": [
                self.coco_path, self.out / "val.json", self.out / "test.json"], "repair": [self.coco_path],
                "custom": [self.out / "custom" / "truth.json"]}[entry]
        return {"coco-to-via": [self.out / "via.json"], "via-to-coco": [self.out / "coco.json"],
                "split": [self.out / "train.json", self.out / "val.json", self.out / "test.json"],
                "repair": [self.out / "repaired.json"],
                "custom": [self.out / "custom" / "truth.json"]}[entry]

    def argv(self, entry):
        outs = [str(p) for p in self.outputs(entry)]
        if entry == "coco-to-via":
            return ["-m", "helpers.convert", "coco-to-via", str(self.coco_path), outs[0],
                    "--images", str(self.images), "--quiet"]
        if entry == "via-to-coco":
            return ["-m", "helpers.convert", "via-to-coco", str(self.via_path), outs[0],
                    "--categories", str(self.cats_path), "--images", str(self.images), "--quiet"]
        if entry == "split":
            return ["-m", "helpers.split", "-s", "0.5", "-t", "0.25", "--quiet", str(self.coco_path), *outs]
        if entry == "repair":
            return ["-m", "helpers.repair", str(self.coco_path), outs[0], "--quiet"]
        if entry == "custom":
            return ["-m", "helpers.custom", "from-modanet", str(self.coco_path), str(self.images),
                    str(Path(outs[0]).parent), "--per-class", "1", "--quiet"]
        raise KeyError(entry)

    def names(self):
        """Names an error message may use to say which file it is about."""
        names = {p.name for p in (self.coco_path, self.via_path, self.cats_path, self.weights, self.outside)}
        names |= {str(self.images), str(self.auto)}        # folders by full path ("out" is in "without")
        names |= {p.name for p in self.images.iterdir()} | {p.name for p in self.auto.iterdir()}
        names |= {str(n) for n in self.outside_names}
        for entry in CLI_ENTRIES:
            names |= {p.name for p in self.outputs(entry)}
        names |= {"given as a dict", "COCO data", "VIA data"}
        return {n for n in names if n} | set(self.words)


# --- kinds ----------------------------------------------------------------------------------
KINDS = {}          # name -> (function, entries, default allowed outcomes)

JSON_CLIS = ("coco-to-via", "via-to-coco", "split", "repair", "custom")
OUT_CLIS = ("coco-to-via", "via-to-coco", "split", "repair")
DATASETS = ("CocoDataset", "ViaDataset")
IMAGE_READERS = ("coco-to-via", "read_image_rgb", "CocoDataset", "ViaDataset", "autolabel")


def kind(entries, allowed=BAD, **per_entry):
    def register(function):
        KINDS[function.__name__] = (function, tuple(entries), allowed, per_entry)
        return function
    return register


def both_raw(c, raw):
    c.coco_raw = c.via_raw = raw


# Control: the untouched base data must work everywhere (a driver that fails everything proves nothing).
@kind(JSON_CLIS + ("read_json", "read_via") + DATASETS + ("coco_to_via", "via_to_coco", "split_coco",
                                                           "read_image_rgb", "autolabel"), allowed={OK})
def valid_input(c):
    pass


# -- the file is not a JSON document ----------------------------------------------------------
PARSE_ENTRIES = ("coco-to-via", "via-to-coco", "split", "repair", "read_json", "CocoDataset")


@kind(PARSE_ENTRIES + ("custom", "ViaDataset"), allowed={ERROR})
def empty_file(c):
    both_raw(c, b"")


@kind(PARSE_ENTRIES, allowed={ERROR})
def truncated_json(c):
    c.write()
    both_raw(c, c.coco_path.read_bytes()[:150])
    c.via_raw = c.via_path.read_bytes()[:150]


@kind(PARSE_ENTRIES, allowed={ERROR})
def deeply_nested_json(c):
    both_raw(c, b"[" * 200000 + b"]" * 200000)
    c.words = ("deep", "nest", "recursion", "json")


@kind(PARSE_ENTRIES + ("ViaDataset",), allowed={ERROR, OK})
def utf8_bom(c):
    c.coco_raw = b"\xef\xbb\xbf" + json.dumps(c.coco).encode()
    c.via_raw = b"\xef\xbb\xbf" + json.dumps(c.via).encode()


@kind(PARSE_ENTRIES, allowed={ERROR, OK})
def gzip_json_given_as_json(c):
    c.coco_raw = gzip.compress(json.dumps(c.coco).encode())
    c.via_raw = gzip.compress(json.dumps(c.via).encode())


@kind(PARSE_ENTRIES, allowed={ERROR})
def non_utf8_bytes(c):
    c.coco_raw = json.dumps(c.coco).encode().replace(b'"a.jpg"', b'"\xe9t\xe9.jpg"')
    c.via_raw = json.dumps(c.via).encode().replace(b'"a.jpg"', b'"\xe9t\xe9.jpg"')


@kind(PARSE_ENTRIES, allowed={ERROR})
def png_given_as_json(c):
    both_raw(c, (c.images / "a.jpg").read_bytes())


@kind(PARSE_ENTRIES + ("custom", "ViaDataset"), allowed={ERROR})
def input_is_directory(c):
    both_raw(c, False)
    c.coco_path.mkdir()
    c.via_path.mkdir()


@kind(PARSE_ENTRIES, allowed={ERROR})
def input_missing(c):
    both_raw(c, False)


# -- valid JSON of the wrong shape --------------------------------------------------------------
SHAPE_ENTRIES = ("coco-to-via", "via-to-coco", "split", "repair", "read_via") + DATASETS


@kind(SHAPE_ENTRIES + ("custom",), allowed={ERROR})
def toplevel_list(c):
    c.coco, c.via = [c.coco], [c.via]


@kind(SHAPE_ENTRIES, allowed={ERROR})
def toplevel_string(c):
    c.coco = c.via = "images"


@kind(SHAPE_ENTRIES, allowed={ERROR})
def toplevel_number(c):
    c.coco = c.via = 42


@kind(SHAPE_ENTRIES, allowed={ERROR})
def toplevel_null(c):
    c.coco = c.via = None


@kind(SHAPE_ENTRIES, allowed={ERROR})
def coco_and_via_swapped(c):
    c.coco, c.via = c.via, c.coco


@kind(("coco-to-via", "via-to-coco", "split", "repair") + DATASETS, allowed=ANY)
def empty_lists(c):
    c.coco.update(images=[], annotations=[])
    c.via = {}


# -- coordinates --------------------------------------------------------------------------------
DICT_ENTRIES = DATASETS + ("coco_to_via", "via_to_coco", "split_coco")
COORD_ENTRIES = ("coco-to-via", "via-to-coco", "repair") + DATASETS


def set_coords(c, value, index=1):
    """Make one corner of image `index`'s polygon `value` (COCO and VIA)."""
    c.coco["annotations"][index]["segmentation"][0][2] = value
    c.via[f"{NAMES[index]}-1"]["regions"][0]["shape_attributes"]["all_points_x"][1] = value


def dict_inputs(c):
    c.coco_dict, c.via_dict = c.coco, c.via


@kind(DICT_ENTRIES, split_coco=ANY)
def nan_coords_dict(c):
    set_coords(c, float("nan"))
    dict_inputs(c)


@kind(DICT_ENTRIES, split_coco=ANY)
def inf_coords_dict(c):
    set_coords(c, float("inf"))
    c.coco["annotations"][2]["segmentation"][0][3] = float("-inf")
    dict_inputs(c)


@kind(COORD_ENTRIES + ("custom",))
def coords_1e9_json(c):
    set_coords(c, 1e9)
    c.coco["annotations"][2]["segmentation"][0][3] = -1e9


@kind(COORD_ENTRIES + ("custom",))
def coords_1e300_json(c):
    set_coords(c, 1e300)


@kind(COORD_ENTRIES, allowed={ERROR})
def coords_overflow_1e999_json(c):
    set_coords(c, 123456.5)
    c.coco_text_sub = c.via_text_sub = ("123456.5", "1e999")


@kind(COORD_ENTRIES)
def coords_huge_integer_json(c):
    set_coords(c, 10 ** 40)


@kind(COORD_ENTRIES)
def coords_far_outside(c):
    set_coords(c, -250000)


@kind(COORD_ENTRIES)
def coords_wrong_types(c):
    c.coco["annotations"][1]["segmentation"] = [["5", "5", "30", "5", "30", "20"], [True, None, 3, 4, 5, 6],
                                                [[1, 2], [3, 4], [5, 6]]]
    regions = c.via[f"{VICTIM}-1"]["regions"]
    regions[0]["shape_attributes"]["all_points_x"] = ["5", None, True, 7]
    regions.append({"shape_attributes": {"name": "polygon", "all_points_x": [{"x": 1}] * 3,
                                         "all_points_y": [[1]] * 3}, "region_attributes": {"fashion": "5"}})


@kind(COORD_ENTRIES, repair=ANY)
def polygon_odd_or_short(c):
    c.coco["annotations"][1]["segmentation"] = [[5, 5, 30, 5, 30], [5, 5, 30, 30]]
    c.via[f"{VICTIM}-1"]["regions"][0]["shape_attributes"]["all_points_y"] = [5, 5]


@kind(("coco-to-via", "via-to-coco", "repair", "CocoDataset"), allowed=ANY)
def million_point_polygon(c):
    import numpy as np
    angles = np.linspace(0, 2 * np.pi, 1_000_000, endpoint=False)
    xs = np.round(30 + 25 * np.cos(angles)).astype(int).tolist()    # integers: quick to write and read
    ys = np.round(20 + 15 * np.sin(angles)).astype(int).tolist()
    c.coco["annotations"][1]["segmentation"] = [[v for pair in zip(xs, ys) for v in pair]]
    shape = c.via[f"{VICTIM}-1"]["regions"][0]["shape_attributes"]
    shape["all_points_x"], shape["all_points_y"] = xs, ys


# -- image sizes claimed by the JSON ---------------------------------------------------------------
@kind(JSON_CLIS + DATASETS, allowed=BAD, **{"coco-to-via": ANY, "via-to-coco": ANY, "split": ANY, "custom": ANY,
                                            "repair": ANY})   # no full-size mask: RLEs only
def image_claims_100000px(c):
    c.coco["images"][1].update(width=100000, height=100000)
    c.via[f"{VICTIM}-1"]["file_attributes"].update(width=100000, height=100000)
    c.words = ("100000", "size", "large")


# the converters (given --images) and ViaDataset take the size from the file when the JSON's is unusable
SIZE_FALLBACK = {"coco-to-via": ANY, "via-to-coco": ANY, "repair": ANY, "split": ANY, "ViaDataset": ANY}


@kind(JSON_CLIS + DATASETS, **SIZE_FALLBACK)
def image_negative_size(c):
    c.coco["images"][1].update(width=-60, height=-40)
    c.via[f"{VICTIM}-1"]["file_attributes"].update(width=-60, height=-40)


@kind(JSON_CLIS + DATASETS, **SIZE_FALLBACK)
def image_zero_size(c):
    c.coco["images"][1].update(width=0, height=0)
    c.via[f"{VICTIM}-1"]["file_attributes"].update(width=0, height=0)


# -- ids, keys and types ----------------------------------------------------------------------------
SEMANTIC = ("coco-to-via", "split", "repair", "CocoDataset")
# helpers.repair checks ModaNet's defects (duplicates, boxes, areas) and split cuts by image: other bad
# fields may pass through them (the loaders guard them); they must still end cleanly.


@kind(SEMANTIC + ("custom", "via-to-coco", "ViaDataset"), repair=ANY)
def category_id_list(c):
    c.coco["annotations"][1]["category_id"] = [11]
    c.via[f"{VICTIM}-1"]["regions"][0]["region_attributes"]["fashion"] = ["11"]


@kind(SEMANTIC + ("custom",), repair=ANY)
def annotation_image_id_list(c):
    c.coco["annotations"][1]["image_id"] = [2]


@kind(SEMANTIC + ("custom",), repair=ANY)
def image_id_list(c):
    c.coco["images"][1]["id"] = [2]


@kind(SEMANTIC, repair=ANY)
def image_id_dict(c):
    c.coco["images"][1]["id"] = {"id": 2}
    c.coco["annotations"][1]["image_id"] = {"id": 2}


@kind(SEMANTIC + ("custom",), repair=ANY)
def duplicate_image_ids(c):
    c.coco["images"][1]["id"] = 1


@kind(SEMANTIC, split=ANY, CocoDataset=FINE)     # the Dataset does not use annotation ids
def duplicate_annotation_ids(c):
    c.coco["annotations"][1]["id"] = 100


@kind(SEMANTIC, split=ANY)
def duplicate_annotations_exact(c):
    """ModaNet's own defect: the same annotation twice under consecutive ids."""
    c.coco["annotations"].insert(2, dict(c.coco["annotations"][1], id=102))
    c.coco["annotations"][3]["id"] = 103


@kind(SEMANTIC, allowed=FINE, repair=BAD)
def bbox_disagrees_with_polygons(c):
    c.coco["annotations"][1]["bbox"] = [0, 0, 5, 5]
    c.coco["annotations"][1]["area"] = 25


@kind(SEMANTIC + ("via-to-coco", "ViaDataset"), allowed=BAD, repair=ANY)
def missing_keys(c):
    del c.coco["images"][1]["file_name"]
    del c.coco["annotations"][0]["segmentation"]
    del c.coco["annotations"][2]["image_id"]
    del c.coco["annotations"][3]["category_id"]
    del c.via[f"{VICTIM}-1"]["regions"][0]["shape_attributes"]
    del c.via["a.jpg-1"]["filename"]


@kind(SEMANTIC)
def no_images_key(c):
    del c.coco["images"]


@kind(SEMANTIC + ("custom",), repair=ANY, split=ANY)
def image_fields_wrong_types(c):
    c.coco["images"][1].update(width="sixty", height=[40], file_name=7)
    c.coco["images"][2].update(width=True, height=40.5)


@kind(SEMANTIC + ("custom",), repair=ANY, split=ANY)
def annotation_fields_wrong_types(c):
    c.coco["annotations"][0].update(segmentation="polygon", bbox="x", area=[1], iscrowd="yes", id={"a": 1})
    c.coco["annotations"][1].update(segmentation={"size": "big", "counts": 5})
    c.coco["annotations"][2] = "not an annotation"


@kind(SEMANTIC, repair=ANY, split=ANY)
def category_fields_wrong_types(c):
    c.coco["categories"][4] = {"id": "5", "name": ["outer"]}
    c.coco["categories"].append("skirt")


@kind(SEMANTIC + ("custom",), repair=ANY, split=ANY)
def rle_garbage(c):
    c.coco["annotations"][1]["segmentation"] = {"size": [H, W], "counts": "\u00ff\u00fe!!garbage\x00"}
    c.coco["annotations"][2]["segmentation"] = {"size": [H, W], "counts": [10 ** 12, 5, -7]}


@kind(SEMANTIC + ("custom",), split=ANY, repair=ANY)
def rle_claims_100000px(c):
    c.coco["annotations"][1]["segmentation"] = {"size": [100000, 100000], "counts": [0, 10 ** 10]}


@kind(SEMANTIC, allowed=ANY)
def huge_integer_ids(c):
    c.coco["images"][1]["id"] = 10 ** 30
    c.coco["annotations"][1].update(image_id=10 ** 30, id=-(10 ** 25))


@kind(SEMANTIC, allowed=ANY)
def same_file_name_twice(c):
    c.coco["images"][2]["file_name"] = "a.jpg"


@kind(SEMANTIC + ("via-to-coco", "ViaDataset"), allowed={OK})
def unicode_and_spaces_in_names(c):
    new = "Ünï cødé 雪 ☃ photo b.jpg"
    (c.images / VICTIM).rename(c.images / new)
    c.coco["images"][1]["file_name"] = new
    c.via[f"{VICTIM}-1"]["filename"] = new
    c.coco["categories"][10]["supercategory"] = "vêtements d’été"


# -- file names that leave the images folder --------------------------------------------------------
NAME_ENTRIES = ("coco-to-via", "via-to-coco", "custom") + DATASETS


def point_outside(c, name):
    c.coco["images"][1]["file_name"] = name
    c.via[f"{VICTIM}-1"]["filename"] = name
    (c.images / VICTIM).unlink()
    c.outside_names = (name,)
    c.words = ("outside", "leaves", "..")


@kind(NAME_ENTRIES)
def dotdot_file_name(c):
    point_outside(c, "../outside.jpg")


@kind(NAME_ENTRIES)
def absolute_file_name(c):
    point_outside(c, str(c.outside))


@kind(NAME_ENTRIES)
def nul_in_file_name(c):
    c.coco["images"][1]["file_name"] = "b\x00.jpg"
    c.via[f"{VICTIM}-1"]["filename"] = "b\x00.jpg"
    c.words = ("null", "nul", "b\x00.jpg", "b\\x00.jpg")


@kind(NAME_ENTRIES)
def file_name_too_long(c):
    name = "x" * 300 + ".jpg"
    c.coco["images"][1]["file_name"] = name
    c.via[f"{VICTIM}-1"]["filename"] = name
    c.words = (name, "too long")


# -- the image files ----------------------------------------------------------------------------------
def damage(c, make, words=()):
    for path in c.victims():
        path.unlink()
        make(path)
    c.words = tuple(words)


@kind(IMAGE_READERS + ("via-to-coco", "custom"), allowed=BAD, custom=ANY)
def png_header_claims_100000px(c):
    damage(c, lambda p: p.write_bytes(png_with_header(100000, 100000)), ("decompression", "bomb", "pixels"))


@kind(("autolabel",))
def png_bomb_then_interrupted_resume(c):
    """The bomb is read first, then model.detect fails (the run aborts); the resumed run must not read
    the bomb again (it was recorded as skipped) and must finish with it counted."""
    (c.auto / AUTO_VICTIM).unlink()
    (c.auto / "bag_kis_1.png").write_bytes(png_with_header(100000, 100000))   # sorts before the good photo
    c.resume_test = True
    c.words = ("decompression", "bomb", "pixels", "interrupted")


@kind(IMAGE_READERS)
def jpeg_truncated(c):
    def make(p):
        save_image(p, size=(W, H), fmt="JPEG")
        data = p.read_bytes()
        p.write_bytes(data[:len(data) // 2])
    damage(c, make, ("truncated",))


@kind(IMAGE_READERS)
def text_file_named_jpg(c):
    damage(c, lambda p: p.write_text("this is not a photo\n"))


@kind(IMAGE_READERS)
def zero_byte_image(c):
    damage(c, lambda p: p.write_bytes(b""))


@kind(IMAGE_READERS)
def png_0x0(c):
    damage(c, lambda p: p.write_bytes(png_with_header(0, 0)))


@kind(IMAGE_READERS + ("custom",), allowed=FINE, CocoDataset=ANY, ViaDataset=ANY, custom=ANY)  # a side limit may refuse it
def image_1x100000(c):
    damage(c, lambda p: save_image(p, size=(1, 100000), fmt="PNG"))
    c.coco["images"][1].update(width=1, height=100000)
    c.via[f"{VICTIM}-1"]["file_attributes"].update(width=1, height=100000)


@kind(IMAGE_READERS, allowed={OK})
def cmyk_jpeg(c):
    damage(c, lambda p: save_image(p, mode="CMYK", fmt="JPEG"))


@kind(IMAGE_READERS, allowed={OK})
def png_16_bit(c):
    damage(c, lambda p: save_image(p, mode="I;16", fmt="PNG"))


@kind(("read_image_rgb", "CocoDataset", "autolabel"), allowed={OK})
def png_rgba_and_palette(c):
    save_image(c.images / "a.jpg", mode="RGBA", fmt="PNG")
    damage(c, lambda p: save_image(p, mode="P", fmt="PNG"))


@kind(IMAGE_READERS + ("custom",), custom=ANY, autolabel=FINE)    # autolabel lists files only
def directory_named_jpg(c):
    damage(c, lambda p: p.mkdir())


@kind(IMAGE_READERS + ("custom",), custom=ANY, autolabel=FINE)
def symlink_loop(c):
    def make(p):
        p.symlink_to(p.parent / ("loop_" + p.name))
        (p.parent / ("loop_" + p.name)).symlink_to(p)
    damage(c, make, ("loop", "symbolic", "links"))
    (c.images / "self").symlink_to(c.images)       # a folder loop too
    (c.auto / "self").symlink_to(c.auto)


@kind(IMAGE_READERS, autolabel=FINE)
def image_missing(c):
    damage(c, lambda p: None, ("not found", "missing"))


@kind(("coco-to-via", "via-to-coco") + DATASETS, allowed=BAD, **{"coco-to-via": ANY, "via-to-coco": ANY})
def image_size_differs_from_json(c):
    damage(c, lambda p: save_image(p, size=(W // 2, H // 2)))


# -- where the output goes ------------------------------------------------------------------------------
@kind(OUT_CLIS + ("custom",), allowed={ERROR})
def output_is_a_folder(c):
    for entry in OUT_CLIS + ("custom",):
        for p in c.outputs(entry):
            p.mkdir(parents=True, exist_ok=True)


@kind(OUT_CLIS + ("custom",), allowed={ERROR})
def output_parent_is_a_file(c):
    blocker = c.out / "blocker"
    blocker.write_text("a file, not a folder\n")
    c.outputs_override = {e: [blocker / p.name for p in c.outputs(e)] for e in OUT_CLIS}
    c.outputs_override["custom"] = [blocker / "custom" / "truth.json"]
    c.words = ("blocker",)


@kind(OUT_CLIS, allowed={ERROR})
def output_name_too_long(c):
    c.outputs_override = {e: [c.out / (f"{i}" + "y" * 300 + ".json") for i, _ in enumerate(c.outputs(e))]
                          for e in OUT_CLIS}
    c.words = ("y" * 40, "too long")


@kind(OUT_CLIS, allowed={ERROR})
def output_is_the_input(c):
    c.in_is_out = True
    c.words = ("input", "same")


@kind(OUT_CLIS, allowed={ERROR})
def disk_full_late_write(c):
    """ENOSPC on the last fsync; for split the train file's (the last one renamed), with an earlier
    run's train / val / test in place: they must all stay as they were."""
    for entry in OUT_CLIS:
        for p in c.outputs(entry):
            c.pre_outputs[p] = json.dumps({"earlier": "run", "file": p.name}).encode()
    c.wrap = "enospc"
    c.words = ("space", "device", "ENOSPC", "errno 28")


@kind(("split",), allowed={ERROR})
def split_late_error_train_is_folder(c):
    """An earlier run's val / test present; train's target is a folder, which fails only at its rename."""
    outs = c.outputs("split")
    outs[0].mkdir()
    for p in outs[1:]:
        c.pre_outputs[p] = json.dumps({"earlier": "run", "file": p.name}).encode()


@kind(OUT_CLIS, allowed={ERROR, SKIP, OK})
def sigterm_mid_write(c):
    c.sigterm = True
    c.wrap = "slow-fsync"


# -- weight files ---------------------------------------------------------------------------------------
def h5_file(path, layer="mrcnn_mask", size=1000):
    """A small weight file in Keras' HDF5 layout: layer_names, one group per layer."""
    import h5py
    import numpy as np
    with h5py.File(path, "w") as h5:
        h5.attrs["layer_names"] = [layer.encode(), b"conv1"]
        for name in (layer, "conv1"):
            group = h5.create_group(name)
            group.attrs["weight_names"] = [b"kernel:0"]
            group.create_dataset("kernel:0", data=np.arange(size, dtype=np.float32))


def damage_h5(c, start, fill):
    """A good file with 64 bytes overwritten past its superblock: h5py opens it, then fails inside."""
    h5_file(c.weights)
    data = bytearray(c.weights.read_bytes())
    data[start:start + 64] = fill * 64
    c.weights.write_bytes(bytes(data))


@kind(("check_weight_file",), allowed={ERROR})
def hdf5_corrupt_group_info(c):
    damage_h5(c, 144, b"\xff")     # h5py 3.14: RuntimeError "Unable to get group info" on reading keys


@kind(("check_weight_file",), allowed={ERROR})
def hdf5_corrupt_object_header(c):
    damage_h5(c, 64, b"\x00")      # h5py 3.14: KeyError "Unable to synchronously open object"


@kind(("check_weight_file",), allowed={ERROR})
def hdf5_bad_superblock(c):
    c.weights.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 64)


@kind(("check_weight_file",), allowed={ERROR})
def hdf5_truncated(c):
    h5_file(c.weights)
    data = c.weights.read_bytes()
    c.weights.write_bytes(data[:len(data) // 2])


@kind(("check_weight_file",), allowed={ERROR})
def weights_zero_bytes(c):
    c.weights.write_bytes(b"")


@kind(("check_weight_file",), allowed={ERROR})
def weights_text_file(c):
    c.weights.write_text("<html>404 Not Found</html>\n")


@kind(("check_weight_file",), allowed={ERROR})
def weights_is_directory(c):
    c.weights.mkdir()


@kind(("check_weight_file",), allowed={ERROR})
def weights_missing(c):
    pass


@kind(("check_weight_file",), allowed={ERROR})
def weights_without_layer(c):
    h5_file(c.weights, layer="dense_1")
    c.words = ("mrcnn_mask",)


@kind(("check_weight_file",), allowed={OK})
def weights_valid(c):
    h5_file(c.weights)


# The disk-full kind targets, per CLI, the file whose fsync fails.
ENOSPC_TARGET = {"coco-to-via": "via.json", "via-to-coco": "coco.json", "split": "train.json",
                 "repair": "repaired.json"}


def cases():
    """[(kind, entry)] in a stable order."""
    return [(name, entry) for name, (_, entries, _, _) in KINDS.items() for entry in entries]


def allowed_outcomes(kind_name, entry):
    _, _, allowed, per_entry = KINDS[kind_name]
    return frozenset(per_entry.get(entry, allowed))


# --- judging helpers -----------------------------------------------------------------------------------
class Fail(Exception):
    pass


def snapshot(folders):
    """{path: (size, mtime)} of everything under the folders (symlinks not followed)."""
    seen = {}
    for folder in folders:
        if not folder.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                try:
                    st = p.lstat()
                except OSError:
                    continue
                seen[p] = (st.st_size, st.st_mtime_ns)
    return seen


def check_one_line(message, c, where):
    message = str(message)
    if not message.strip():
        raise Fail(f"{where}: empty error message")
    if "\n" in message.strip():
        raise Fail(f"{where}: error message of {message.count(chr(10)) + 1} lines: {message[:150]!r}")
    if len(message.replace(max(c.names(), key=len), "")) > 600:     # a 300-character file name may recur
        raise Fail(f"{where}: error message of {len(message)} characters: {message[:150]!r}...")
    low = message.lower()
    if not any(n.lower() in low for n in c.names()):
        raise Fail(f"{where}: error names no file nor the problem: {message[:200]!r}")


def valid_json_file(path):
    data = path.read_bytes()
    try:
        return _loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise Fail(f"{path.name}: output is not a complete JSON file ({len(data)} bytes: {err})") from None


def new_leftovers(before, after, allowed):
    """Files that appeared and are not declared outputs (temp files, partial files)."""
    extra = []
    for p in after:
        if p in before or p in allowed:
            continue
        if any(p == a or a in p.parents for a in allowed):
            continue
        extra.append(p)
    return extra


# --- running a CLI ---------------------------------------------------------------------------------------
def run_cli(c, entry):
    outputs = c.outputs(entry)
    for path, data in c.pre_outputs.items():
        if path in outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    wrap = "enospc:" + ENOSPC_TARGET[entry] if c.wrap == "enospc" else c.wrap
    argv = c.argv(entry)
    if wrap:
        argv = [str(Path(__file__).resolve()), "--wrap", wrap] + argv
    inputs = {p: p.read_bytes() for p in (c.coco_path, c.via_path, c.cats_path) if p.is_file()}
    images_before = snapshot([c.images])
    folders = [c.out, c.inp, c.images, c.root]
    before = snapshot(folders)
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONIOENCODING="utf-8", TQDM_DISABLE="1")
    proc = subprocess.Popen(capped([sys.executable, *argv], c.cap), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if c.sigterm:
        deadline = time.monotonic() + 30
        temp = None
        while time.monotonic() < deadline and proc.poll() is None and temp is None:
            temp = next((p for p in new_leftovers(before, snapshot([c.out, c.inp]), []) if p.is_file()), None)
            time.sleep(0.005)
        if temp is None:
            proc.kill()
            proc.communicate()
            raise Fail("no temp file appeared while writing: cannot place the SIGTERM mid-write")
        proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise Fail(f"timed out after {CLI_TIMEOUT} s") from None
    out, err, rc = out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), proc.returncode
    lines = [line for line in err.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""

    # files first: they matter even when the process died
    after = snapshot(folders)
    leftovers = new_leftovers(before, after, outputs)
    if entry == "custom":      # its photos and resumable build.partial.json live beside truth.json
        folder = outputs[0].parent
        leftovers = [p for p in leftovers if not (folder in p.parents and not p.name.startswith("."))
                     and p != folder]
    if leftovers:
        raise Fail(f"left {len(leftovers)} stray file(s) (exit {rc}): "
                   + ", ".join(str(p.relative_to(c.root)) for p in leftovers[:3]))
    for path, data in inputs.items():
        if path not in outputs and path.read_bytes() != data:
            raise Fail(f"input {path.name} was changed")
        if path in outputs and rc != 0 and (not os.path.isfile(path) or path.read_bytes() != data):
            raise Fail(f"input {path.name} (also given as output) was changed or removed")
    if images_before != snapshot([c.images]):
        raise Fail("the images folder was changed")
    changed = []
    for path in outputs:
        if os.path.isfile(path):
            valid_json_file(path)
            if c.pre_outputs.get(path) is not None and path.read_bytes() != c.pre_outputs[path]:
                changed.append(path)
    if rc != 0 and changed:
        raise Fail(f"exit {rc}, yet {', '.join(p.name for p in changed)} of the earlier run replaced: "
                   f"not all or nothing")

    if c.sigterm:
        if rc not in (0, 2, 1, 143, -signal.SIGTERM, 128 + signal.SIGTERM):
            raise Fail(f"exit {rc} after SIGTERM")
        return ERROR if rc else OK, f"SIGTERM: exit {rc}, no temp file left, outputs absent or complete"
    if rc < 0:
        raise Fail(f"killed by {signal.Signals(-rc).name} (exit {rc}); stderr: {last[:160]!r}")
    if "Traceback" in err:
        raise Fail(f"traceback (exit {rc}): {last[:200]}")
    if rc not in (0, 2):
        raise Fail(f"exit code {rc}: {last[:200]!r}")
    if rc == 2:
        check_one_line(last, c, "stderr")
        return ERROR, last
    for path in outputs:
        if not os.path.isfile(path):
            raise Fail(f"exit 0 but {path.name} was not written")
    if c.outside_names:
        written = b"".join(p.read_bytes() for p in outputs)
        copies = [p for p in c.out.rglob("*") if p.is_file() and p.read_bytes() == c.outside.read_bytes()]
        if copies or any(json.dumps(n)[1:-1].encode() in written for n in c.outside_names):
            raise Fail("an image outside the images folder was used: " + ", ".join(map(str, c.outside_names)))
    counted = cli_counted(entry, out)
    return (SKIP if counted else OK), " ".join(out.split())[:160]


def cli_counted(entry, out):
    """Whether a successful CLI run says it repaired or skipped something."""
    if entry in ("coco-to-via", "via-to-coco"):
        return "no problems found" not in out
    if entry == "split":
        return bool(re.search(r"\b(skipped|dropped)\b", out))
    if entry == "custom":
        return "skipped: none" not in out
    if entry == "repair":      # "...: N" lines after the first (which counts what was read)
        return any(re.search(r":\s*[1-9]", line) for line in out.splitlines()[1:])
    return bool(re.search(r"[1-9]\d*\s.*\b(skip|drop|duplicat|clip|recomput|repair|remov|refus|invalid)"
                          r"|\b(skip|drop|duplicat|clip|recomput|repair|remov|refus|invalid)\w*\D*[1-9]", out, re.I))


# --- library entries ------------------------------------------------------------------------------------
def lib_errors():
    from helpers.io import DataError
    return (DataError, ValueError, FileNotFoundError)


def run_lib(c, entry):
    """(outcome, detail); allowed errors are caught here, anything else is a failure."""
    errors, messages, caught = lib_errors(), [], []

    def attempt(where, function, *args, **kwargs):
        try:
            return True, function(*args, **kwargs)
        except errors as err:
            check_one_line(err, c, where)
            caught.append(f"{type(err).__name__}: {err}")
            return False, None
        except Exception as err:     # noqa: BLE001 - the point: nothing else may escape
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
            raise Fail(f"{where}: {type(err).__module__}.{type(err).__name__} escaped: {first}") from None

    coco_in = c.coco_dict if c.coco_dict is not None else c.coco_path
    via_in = c.via_dict if c.via_dict is not None else c.via_path
    class_map = {str(i): name for i, name in enumerate(CLASS_NAMES, 1)}
    counted = False
    if entry == "read_json":
        from helpers.io import read_json
        attempt("read_json", read_json, c.coco_path)
        attempt("read_json", read_json, c.via_path)
    elif entry == "read_via":
        from helpers.via import read_via
        attempt("read_via", read_via, via_in)
    elif entry in DATASETS:
        from helpers.datasets import CocoDataset, ViaDataset
        dataset = CocoDataset() if entry == "CocoDataset" else ViaDataset()
        if entry == "CocoDataset":
            done, _ = attempt("load_coco", dataset.load_coco, coco_in, c.images, progress=False)
        else:
            done, _ = attempt("load_via", dataset.load_via, via_in, c.images, class_map, progress=False)
        if done:
            attempt("prepare", dataset.prepare)
            read = []
            for image_id in dataset.image_ids:
                name = dataset.image_info[image_id].get("file_name")
                ok_image, _ = attempt(f"load_image({name!r})", dataset.load_image, image_id)
                attempt(f"load_mask({name!r})", dataset.load_mask, image_id)
                if ok_image:
                    read.append(name)
            if any(n in read for n in c.outside_names):
                raise Fail(f"load_image read a file outside the images folder: {c.outside_names}")
            summary = dataset.summary()
            repairs = getattr(dataset, "repairs", [])     # load_coco's helpers.repair counts
            found = [getattr(r, "found", 0) for r in repairs] + [getattr(r, "not_checked", 0) for r in repairs]
            counted = sum(dataset.skipped.values()) > 0 or any(f() if callable(f) else f for f in found)
            messages.append(" ".join(summary.split())[:200])
    elif entry in ("coco_to_via", "via_to_coco"):
        from helpers.convert import coco_to_via, via_to_coco
        if entry == "coco_to_via":
            done, result = attempt("coco_to_via", coco_to_via, coco_in, images_dir=c.images, progress=False)
        else:
            done, result = attempt("via_to_coco", via_to_coco, via_in, CATEGORIES, images_dir=c.images,
                                   progress=False)
        if done:
            summary = result[1]
            counted = "no problems found" not in str(summary)
            messages.append(" ".join(str(summary).split())[:200])
    elif entry == "split_coco":
        from helpers.split import split_coco
        done, result = attempt("split_coco", split_coco, coco_in, 0.5, 0.25, progress=False)
        if done:
            counted = bool(result.skipped_orphans or result.dropped_unannotated)
            messages.append(" ".join(result.table().split())[:200])
    elif entry == "read_image_rgb":
        from mrcnn.utils import read_image_rgb
        for path in [c.images / VICTIM] + sorted(set(c.images.iterdir()) - {c.images / VICTIM}):
            done, image = attempt(f"read_image_rgb({path.name!r})", read_image_rgb, path)
            if done and (image.ndim != 3 or image.shape[2] != 3 or str(image.dtype) != "uint8"):
                raise Fail(f"read_image_rgb({path.name!r}) gave {image.shape} {image.dtype}")
    elif entry == "autolabel":
        counted = run_autolabel(c, attempt, messages)
    elif entry == "check_weight_file":
        from helpers.training import check_weight_file
        was_file = c.weights.is_file() and not c.weights.is_symlink()
        done, _ = attempt("check_weight_file", check_weight_file, c.weights, must_have="mrcnn_mask",
                          remove_if_bad=True)
        if not done and was_file and c.weights.exists():
            raise Fail(f"bad weight file not removed (remove_if_bad=True): {caught[-1][:160]}")
        if done and not c.weights.is_file():
            raise Fail("a good weight file was removed")
    else:
        raise KeyError(entry)
    if caught:
        return ERROR, caught[0][:200]
    return (SKIP if counted else OK), (messages[-1] if messages else "")


class StubModel:
    """model.detect stand-in that finds nothing: every readable photo ends as "no <class> detected",
    so any other skip reason comes from reading it (and no mask-to-polygon code is imported)."""

    def detect(self, images):
        import numpy as np
        return [{"rois": np.zeros((0, 4), dtype=np.int32), "class_ids": np.zeros(0, dtype=np.int32),
                 "scores": np.zeros(0), "masks": np.zeros(image.shape[:2] + (0,), dtype=bool)}
                for image in images]


class InterruptedModel:
    """model.detect that fails on its first call, as a run killed half-way."""

    def detect(self, images):
        raise ValueError("interrupted by the test (simulated crash of model.detect)")


def run_autolabel(c, attempt, messages):
    import helpers.autolabel
    from helpers.autolabel import autolabel_folder
    out_via, out_coco = c.out / "auto_via.json", c.out / "auto_coco.json"
    before = snapshot([c.out])
    if c.resume_test:
        try:
            autolabel_folder(InterruptedModel(), ("BG",) + CLASS_NAMES, c.auto, out_via, out_coco, batch_size=1,
                             progress=False)
        except ValueError as err:
            if "interrupted by the test" not in str(err):
                raise Fail(f"first run failed before model.detect: {err}") from None
        except Exception as err:       # noqa: BLE001
            raise Fail(f"first run: {type(err).__name__} escaped: {str(err)[:160]}") from None
        else:
            raise Fail("the first run finished although model.detect failed")
        reads, real_read = [], helpers.autolabel.read_image_rgb

        def counting_read(path):
            reads.append(Path(path).name)
            return real_read(path)
        helpers.autolabel.read_image_rgb = counting_read
    try:
        done, report = attempt("autolabel_folder", autolabel_folder, StubModel(), ("BG",) + CLASS_NAMES, c.auto,
                               out_via, out_coco, batch_size=1, progress=False)
    finally:
        if c.resume_test:
            helpers.autolabel.read_image_rgb = real_read
    if c.resume_test and "bag_kis_1.png" in reads:
        raise Fail("the resumed run read the decompression bomb again (it was not recorded as skipped)")
    leftovers = new_leftovers(before, snapshot([c.out]), [out_via, out_coco])
    partial = [p for p in leftovers if p.name.endswith(".partial.jsonl")]
    others = [p for p in leftovers if p not in partial]
    if others:
        raise Fail("autolabel left stray files: " + ", ".join(p.name for p in others))
    if not done:
        return False
    if partial:
        raise Fail("autolabel finished but left its journal " + partial[0].name)
    for path in (out_via, out_coco):
        valid_json_file(path)
    messages.append(" ".join(str(report).split())[:200])
    reasons = {file: reason for reason, files in report.skipped.items() for file in files}
    if not reasons.get(AUTO_GOOD, "").startswith("no "):
        raise Fail(f"the good photo {AUTO_GOOD} was not read: {reasons.get(AUTO_GOOD)!r}")
    return any(not reason.startswith("no ") for reason in reasons.values())


# --- the simulated disk (--wrap) --------------------------------------------------------------------------
def wrap(mode, module, args):
    import runpy
    real_fsync = os.fsync

    def target_of(fd):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return ""

    def fsync(fd):
        if mode == "slow-fsync":
            time.sleep(3)
        elif mode.startswith("enospc:") and mode.split(":", 1)[1] in target_of(fd) \
                and os.path.isfile(target_of(fd)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    os.fsync = fsync
    sys.argv = [module] + args
    runpy.run_module(module, run_name="__main__", alter_sys=True)


# --- main ----------------------------------------------------------------------------------------------------
# Sets the memory cap, then becomes the command: setrlimit before exec, as a preexec_fn would, but safe
# to start from the test's threads (a preexec_fn runs Python between fork and exec).
CAP_SNIPPET = ("import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_AS, (n, n)); "
               "os.execv(sys.argv[2], sys.argv[2:])")


def capped(argv, cap):
    """`argv` (argv[0] an executable path) run under an address-space cap of `cap` bytes (None: none)."""
    return argv if cap is None else [sys.executable, "-S", "-c", CAP_SNIPPET, str(cap), *argv]


def judge(kind_name, entry, workdir, cap=None):
    """(passed, verdict line) of one case, judged in this process. A CLI entry runs as a child process
    (under `cap`); a library entry runs here, so give this process its cap (the test starts
    `python tests/hostile_driver.py KIND ENTRY WORKDIR` under one for those)."""
    function = KINDS[kind_name][0]
    c = Ctx(workdir)
    c.cap = cap
    function(c)
    c.write()
    try:
        outcome, detail = run_cli(c, entry) if entry in CLI_ENTRIES else run_lib(c, entry)
        allowed = allowed_outcomes(kind_name, entry)
        if outcome not in allowed:
            raise Fail(f"outcome {outcome!r}, expected {' or '.join(sorted(allowed))}: {detail[:200]}")
    except Fail as fail:
        return False, f"FAIL: {fail}"
    return True, f"PASS {outcome}: {detail[:200]}"


# --- a fork server for the library cases ----------------------------------------------------------------------
PRELOAD = ("helpers.io", "helpers.via", "helpers.datasets", "helpers.convert", "helpers.split", "helpers.autolabel",
           "helpers.training", "mrcnn.utils", "h5py")


def serve(cap):
    """Read [kind, entry, workdir, timeout] lines on stdin; run each library case in a forked child under
    an address-space cap of `cap` bytes (set in the child before the case runs); answer one JSON line
    {"returncode", "verdict", "stderr"} per case. The entry points are imported once, here: a fresh
    interpreter per case would spend most of its time importing numpy, Pillow and pycocotools."""
    import importlib
    import traceback
    for name in PRELOAD:
        importlib.import_module(name)
    for line in sys.stdin:
        kind_name, entry, workdir, timeout = json.loads(line)
        Path(workdir).mkdir(parents=True, exist_ok=True)
        out_path, err_path = Path(workdir) / "verdict.txt", Path(workdir) / "stderr.txt"
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:                                  # the child: one case, then _exit
            code = 3
            try:
                resource_cap(cap)
                err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(err_fd, 2)
                passed, verdict = judge(kind_name, entry, Path(workdir) / "case")
                out_path.write_text(verdict + "\n")
                code = 0 if passed else 1
            except BaseException:                     # noqa: BLE001 - a driver bug: say it, exit 3
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        deadline, status = time.monotonic() + timeout, None
        while status is None:
            done, raw = os.waitpid(pid, os.WNOHANG)
            if done:
                status = raw
            elif time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status = None
                break
            else:
                time.sleep(0.002)
        if status is None:
            answer = {"returncode": None, "verdict": f"no verdict within {timeout} s", "stderr": ""}
        else:
            verdict = out_path.read_text().strip() if out_path.exists() else ""
            stderr = err_path.read_text(errors="replace")[-1500:] if err_path.exists() else ""
            answer = {"returncode": os.waitstatus_to_exitcode(status), "verdict": verdict, "stderr": stderr}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def resource_cap(cap):
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def main(argv):
    if argv and argv[0] == "--serve":
        return serve(int(argv[1]))
    if argv and argv[0] == "--wrap":
        mode, flag, module, *args = argv[1:]
        assert flag == "-m", argv
        return wrap(mode, module, args)
    kind_name, entry, workdir = argv
    passed, verdict = judge(kind_name, entry, workdir)
    print(verdict)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
