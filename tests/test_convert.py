"""Tests for helpers.convert: COCO <-> VIA is lossless on ModaNet's form, every bad annotation is
repaired or skipped and counted, and the CLI fails cleanly. Oracles: pycocotools for areas and
masks, round trips for conversions, brute-force shoelace for polygon areas."""
import copy
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from helpers.convert import ConversionSummary, coco_to_via, main, polygon_areas, via_to_coco
from helpers.io import DataError
from helpers.modanet import CLASS_NAMES

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
CATEGORIES = [{"supercategory": "fashion", "id": i, "name": n} for i, n in enumerate(CLASS_NAMES, 1)]


def fixture(name):
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"real fixture {path} absent")
    return path


def real_coco():
    return json.loads(fixture("modanet/modanet_coco_subset.json").read_text())


# --- a small synthetic ModaNet-like COCO, built here -----------------------------------------
def star_polygon(rng, centre, radius, points, as_float=False):
    """A simple (non self-intersecting) polygon: points at sorted angles around a centre."""
    angles = np.sort(rng.uniform(0, 2 * np.pi, points))
    radii = rng.uniform(radius / 2, radius, points)
    xs = centre[0] + radii * np.cos(angles)
    ys = centre[1] + radii * np.sin(angles)
    if as_float:
        xs, ys = np.round(xs, 1), np.round(ys, 1)
        return [float(v) for pair in zip(xs, ys) for v in pair]
    return [int(v) for pair in zip(np.round(xs), np.round(ys)) for v in pair]


def synthetic_coco(n_images=12, seed=0):
    """ModaNet's form: ids not starting at 1, multi-part annotations, bbox and area as ModaNet
    writes them (area = bbox w * h), one image without annotations, some float coordinates."""
    rng = np.random.default_rng(seed)
    images, annotations, next_id = [], [], 500
    for index in range(n_images):
        width, height = 80 + 8 * index, 120
        image_id = 90000 + 7 * index
        images.append({"file_name": f"{image_id:07d}.jpg", "width": width, "id": image_id,
                       "license": 3, "height": height})
        for _ in range(0 if index == 3 else int(rng.integers(1, 5))):
            parts = [star_polygon(rng, (rng.uniform(15, width - 15), rng.uniform(15, height - 15)),
                                  12, int(rng.integers(3, 12)), as_float=index % 4 == 1)
                     for _ in range(1 if rng.random() < 0.5 else int(rng.integers(2, 4)))]
            xs = [v for p in parts for v in p[0::2]]
            ys = [v for p in parts for v in p[1::2]]
            bbox = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            annotations.append({"segmentation": parts, "area": bbox[2] * bbox[3],
                                "iscrowd": int(next_id % 9 == 0), "image_id": image_id,
                                "bbox": bbox, "category_id": int(rng.integers(1, 14)),
                                "id": next_id})
            next_id += int(rng.integers(1, 3))
    return {"year": 2018, "categories": copy.deepcopy(CATEGORIES),
            "licenses": [{"url": "u", "id": 3, "name": "n"}], "type": "instances",
            "info": {"description": "synthetic"}, "images": images, "annotations": annotations}


def assert_same_coco(original, converted):
    """Same top-level keys and values; images and annotations compared by id (order free)."""
    assert set(converted) == set(original)
    for key in original:
        if key not in ("images", "annotations"):
            assert converted[key] == original[key], key
    assert {i["id"]: i for i in converted["images"]} == {i["id"]: i for i in original["images"]}
    by_id = {a["id"]: a for a in converted["annotations"]}
    assert len(by_id) == len(converted["annotations"])
    assert by_id == {a["id"]: a for a in original["annotations"]}


def pycocotools_area(polygons, height, width):
    return int(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))))


def one_image_coco(segmentation, width=100, height=80, **fields):
    annotation = {"id": 1, "image_id": 1, "category_id": 5, "segmentation": segmentation,
                  "area": 1, "bbox": [0, 0, 1, 1], "iscrowd": 0}
    annotation.update(fields)
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": width, "height": height}],
            "annotations": [annotation], "categories": copy.deepcopy(CATEGORIES)}


def one_image_via(*regions, width=100, height=80, key="1"):
    return {key: {"filename": "a.jpg", "size": -1, "regions": list(regions),
                  "file_attributes": {"width": width, "height": height}}}


def region(xs, ys, fashion="5", **attributes):
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": {"fashion": fashion, **attributes}}


def convert_quietly(function, *args, **kwargs):
    return function(*args, progress=False, **kwargs)


# --- lossless round trips --------------------------------------------------------------------
def test_synthetic_round_trip_is_lossless():
    coco = synthetic_coco()
    original = copy.deepcopy(coco)
    via, to_via = convert_quietly(coco_to_via, coco)
    back, to_coco = convert_quietly(via_to_coco, via, coco)
    assert coco == original                      # the input is not modified
    assert_same_coco(original, back)
    multipart = sum(len(a["segmentation"]) > 1 for a in original["annotations"])
    assert multipart > 0
    assert to_via.multipart_annotations == to_coco.multipart_annotations == multipart
    assert to_via.crowd_annotations == sum(a["iscrowd"] for a in original["annotations"]) > 0
    assert to_via.images_without_annotations == to_coco.images_without_annotations == 1
    assert to_via.skipped == to_via.repaired == to_coco.skipped == to_coco.repaired == 0


def test_real_modanet_round_trip_is_lossless():
    coco = real_coco()
    via, to_via = convert_quietly(coco_to_via, coco)
    back, _ = convert_quietly(via_to_coco, via, coco)
    assert_same_coco(real_coco(), back)
    assert to_via.polygons_out == sum(len(a["segmentation"]) for a in coco["annotations"]) == 57
    assert to_via.multipart_annotations == 17


def test_round_trip_through_files_and_categories_from_a_path(tmp_path):
    coco_path = fixture("modanet/modanet_coco_subset.json")
    via, _ = convert_quietly(coco_to_via, coco_path)
    via_path = tmp_path / "via.json"
    via_path.write_text(json.dumps(via))
    back, _ = convert_quietly(via_to_coco, via_path, coco_path)
    assert_same_coco(real_coco(), back)


def test_via_form_matches_the_original_project():
    """Our regions carry the original VIA's fields, and its polygons are the COCO first parts."""
    coco, original_via = real_coco(), json.loads(fixture("modanet/modanet_via_subset.json").read_text())
    first_parts = {}
    for annotation in coco["annotations"]:
        first_parts.setdefault(str(annotation["image_id"]), []).append(
            (annotation["segmentation"][0], str(annotation["category_id"])))
    via, _ = convert_quietly(coco_to_via, coco)
    assert set(via) == set(original_via)
    for key, entry in original_via.items():
        polygons = [(r["shape_attributes"]["all_points_x"], r["shape_attributes"]["all_points_y"],
                     r["region_attributes"]["fashion"]) for r in entry["regions"]]
        assert polygons == [(p[0::2], p[1::2], c) for p, c in first_parts[key]]
        ours = via[key]
        assert (ours["filename"], ours["size"]) == (entry["filename"], entry["size"])
        assert {k: ours["file_attributes"][k] for k in ("width", "height")} == entry["file_attributes"]
        our_first_parts = [r for r in ours["regions"] if r["region_attributes"]["part"] == "0"]
        assert ([r["shape_attributes"] for r in our_first_parts]
                == [r["shape_attributes"] for r in entry["regions"]])
        assert all(r["region_attributes"]["fashion"] == o["region_attributes"]["fashion"]
                   for r, o in zip(our_first_parts, entry["regions"]))


def test_original_project_via_converts_to_coco_with_computed_bbox_and_area():
    coco, summary = convert_quietly(via_to_coco, fixture("modanet/modanet_via_subset.json"), CATEGORIES)
    original = real_coco()
    assert summary.skipped == 0 and len(coco["annotations"]) == 37
    assert [i["id"] for i in coco["images"]] == [i["id"] for i in original["images"]]
    firsts = [(a["image_id"], a["category_id"], a["segmentation"][0]) for a in original["annotations"]]
    assert [(a["image_id"], a["category_id"], a["segmentation"][0]) for a in coco["annotations"]] == firsts
    for annotation in coco["annotations"]:
        polygon = annotation["segmentation"][0]
        xs, ys = polygon[0::2], polygon[1::2]
        assert annotation["bbox"] == [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        assert annotation["area"] == pycocotools_area([polygon], 600, 400)
        assert annotation["iscrowd"] == 0


# --- the area contract ---------------------------------------------------------------------
def test_modanet_area_is_bbox_area_not_mask_or_shoelace_area():
    """Documents the choice in helpers.convert: ModaNet's own 'area' is bbox w*h; the computed
    area (pycocotools pixel count) and the shoelace area differ from it."""
    coco = real_coco()
    annotations = coco["annotations"]
    assert all(a["area"] == a["bbox"][2] * a["bbox"][3] for a in annotations)
    mask_areas = [pycocotools_area(a["segmentation"], 600, 400) for a in annotations]
    shoelace = [polygon_areas([p[0::2] for p in a["segmentation"]],
                              [p[1::2] for p in a["segmentation"]]).sum() for a in annotations]
    assert sum(m == a["area"] for m, a in zip(mask_areas, annotations)) < 3
    assert sum(abs(s - a["area"]) < 1 for s, a in zip(shoelace, annotations)) < 3


def test_computed_area_is_the_merged_pycocotools_area_for_multipart():
    coco = real_coco()
    via, _ = convert_quietly(coco_to_via, coco)
    back, _ = convert_quietly(via_to_coco, via, coco, recompute=True)
    by_id = {a["id"]: a for a in back["annotations"]}
    for annotation in coco["annotations"]:
        ours = by_id[annotation["id"]]
        assert ours["area"] == pycocotools_area(annotation["segmentation"], 600, 400)
        xs = [v for p in annotation["segmentation"] for v in p[0::2]]
        ys = [v for p in annotation["segmentation"] for v in p[1::2]]
        assert ours["bbox"] == [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


def brute_shoelace(xs, ys):
    total = 0.0
    for i in range(len(xs)):
        j = (i + 1) % len(xs)
        total += xs[i] * ys[j] - xs[j] * ys[i]
    return abs(total) / 2


def test_polygon_areas_matches_brute_force_and_is_close_to_pycocotools():
    rng = np.random.default_rng(3)
    polygons = [star_polygon(rng, (60, 60), rng.uniform(8, 50), int(rng.integers(3, 40))) for _ in range(60)]
    xs_list, ys_list = [p[0::2] for p in polygons], [p[1::2] for p in polygons]
    areas = polygon_areas(xs_list, ys_list)
    assert np.allclose(areas, [brute_shoelace(x, y) for x, y in zip(xs_list, ys_list)])
    assert polygon_areas([[0, 4, 4, 0]], [[0, 0, 3, 3]])[0] == 12
    assert polygon_areas([[0, 4, 0]], [[0, 0, 3]])[0] == 6
    assert polygon_areas([], []).shape == (0,)
    rasterised = np.array([pycocotools_area([p], 130, 130) for p in polygons])
    big = areas > 500
    assert np.all(np.abs(rasterised[big] - areas[big]) / areas[big] < 0.05)


# --- bad input: repaired or skipped, always counted ------------------------------------------
def test_too_few_points_is_skipped_both_ways():
    coco = one_image_coco([[10, 10, 20, 10, 20, 20, 10, 20], [1, 1, 5, 5]])
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.polygons_too_few_points == 1 and summary.polygons_out == 1
    back, summary = convert_quietly(via_to_coco, one_image_via(region([1, 5], [1, 5]),
                                                               region([1, 9, 9], [1, 1, 9])), CATEGORIES)
    assert summary.polygons_too_few_points == 1 and len(back["annotations"]) == 1


def test_odd_coordinate_count_drops_the_last_value_and_recomputes_bbox():
    coco = one_image_coco([[10, 10, 30, 10, 30, 40, 10, 40, 77]], bbox=[1, 2, 3, 4], area=5)
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.odd_coordinates_repaired == 1
    attributes = via["1"]["regions"][0]["region_attributes"]
    assert "bbox" not in attributes and "area" not in attributes     # stale once repaired
    back, _ = convert_quietly(via_to_coco, via, coco)
    annotation = back["annotations"][0]
    assert annotation["segmentation"] == [[10, 10, 30, 10, 30, 40, 10, 40]]
    assert annotation["bbox"] == [10, 10, 20, 30]
    assert annotation["area"] == pycocotools_area(annotation["segmentation"], 80, 100)
    _, summary = convert_quietly(via_to_coco, one_image_via(region([1, 9, 9, 1], [1, 1, 9])), CATEGORIES)
    assert summary.odd_coordinates_repaired == 1


def test_points_outside_the_image_are_clipped():
    coco = one_image_coco([[-5, 10, 130, 10, 130, 95, -5, 95]])
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.polygons_clipped == 1
    shape = via["1"]["regions"][0]["shape_attributes"]
    assert shape["all_points_x"] == [0, 100, 100, 0] and shape["all_points_y"] == [10, 10, 80, 80]
    back, summary = convert_quietly(via_to_coco, one_image_via(region([-5, 130, 130], [10, 10, 95])),
                                    CATEGORIES)
    assert summary.polygons_clipped == 1
    assert back["annotations"][0]["segmentation"] == [[0, 10, 100, 10, 100, 80]]
    assert back["annotations"][0]["bbox"] == [0, 10, 100, 70]


def test_zero_area_after_clipping_and_degenerate_polygons_are_skipped():
    left_of_image = [-30, 10, -10, 10, -10, 40]          # clipped onto the line x = 0
    collinear = [10, 10, 20, 20, 30, 30]
    coco = one_image_coco([left_of_image, collinear, [10, 10, 50, 10, 50, 50]])
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.polygons_clipped == 1 and summary.polygons_zero_area == 2
    assert summary.polygons_out == 1
    coco = one_image_coco([left_of_image])
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.annotations_without_polygons == 1 and via["1"]["regions"] == []
    back, summary = convert_quietly(via_to_coco, one_image_via(region([-30, -10, -10], [10, 10, 40])),
                                    CATEGORIES)
    assert summary.polygons_zero_area == 1 and back["annotations"] == []


def test_unknown_categories_are_skipped_both_ways():
    _, summary = convert_quietly(coco_to_via, one_image_coco([[1, 1, 9, 1, 9, 9]], category_id=99))
    assert summary.annotations_unknown_category == 1 and summary.annotations_out == 0
    back, summary = convert_quietly(via_to_coco, one_image_via(
        region([1, 9, 9], [1, 1, 9], fashion="99"), region([1, 9, 9], [1, 1, 9], fashion="cape"),
        region([1, 9, 9], [1, 1, 9], fashion="outer"), region([1, 9, 9], [1, 1, 9], fashion="8"),
        region([1, 9, 9], [1, 1, 9], fashion="Scarf/Tie")), CATEGORIES)
    assert summary.annotations_unknown_category == 2
    assert [a["category_id"] for a in back["annotations"]] == [5, 8, 13]


def test_missing_category_attribute_is_an_unknown_category():
    region_without = {"shape_attributes": {"name": "polygon", "all_points_x": [1, 9, 9],
                                           "all_points_y": [1, 1, 9]}, "region_attributes": {}}
    _, summary = convert_quietly(via_to_coco, one_image_via(region_without), CATEGORIES)
    assert summary.annotations_unknown_category == 1


def test_duplicate_annotation_ids_are_renumbered():
    coco = one_image_coco([[1, 1, 9, 1, 9, 9]])
    duplicate = dict(coco["annotations"][0], segmentation=[[20, 20, 40, 20, 40, 40]])
    coco["annotations"].append(duplicate)
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.annotation_ids_renumbered == 1
    ids = [r["region_attributes"]["annotation_id"] for r in via["1"]["regions"]]
    assert ids == ["1", "2"]
    two_images = one_image_via(region([1, 9, 9], [1, 1, 9], annotation_id="4"))
    two_images["2"] = {"filename": "b.jpg", "size": -1, "file_attributes": {"width": 50, "height": 50},
                       "regions": [region([1, 9, 9], [1, 1, 9], annotation_id="4")]}
    back, summary = convert_quietly(via_to_coco, two_images, CATEGORIES)
    assert summary.annotation_ids_renumbered == 1
    assert sorted(a["id"] for a in back["annotations"]) == [4, 5]


def test_an_annotation_id_that_is_a_list_or_dict_gets_a_new_id():
    coco = one_image_coco([[1, 1, 9, 1, 9, 9]])
    coco["annotations"].append(dict(coco["annotations"][0], id=[7], segmentation=[[20, 20, 40, 20, 40, 40]]))
    coco["annotations"].append(dict(coco["annotations"][0], id={"n": 8}, segmentation=[[2, 30, 9, 30, 9, 40]]))
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.annotation_ids_renumbered == 2
    assert [r["region_attributes"]["annotation_id"] for r in via["1"]["regions"]] == ["1", "2", "3"]
    back, _ = convert_quietly(via_to_coco, via, CATEGORIES)        # and the round trip keeps all three
    assert sorted(a["id"] for a in back["annotations"]) == [1, 2, 3]


def test_duplicate_image_ids_keep_the_first_image():
    coco = one_image_coco([[1, 1, 9, 1, 9, 9]])
    coco["images"].append({"id": 1, "file_name": "again.jpg", "width": 10, "height": 10})
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.images_duplicate_id == 1 and via["1"]["filename"] == "a.jpg"
    assert summary.annotations_out == 1
    doubled = one_image_via(region([1, 9, 9], [1, 1, 9]), key="7")
    doubled["007"] = dict(doubled["7"], filename="b.jpg")
    back, summary = convert_quietly(via_to_coco, doubled, CATEGORIES)
    assert summary.images_duplicate_id == 1
    assert [i["file_name"] for i in back["images"]] == ["a.jpg"] and len(back["annotations"]) == 1


def write_images(folder, names, size=(100, 80)):
    folder.mkdir(exist_ok=True)
    for name in names:
        Image.new("RGB", size, (200, 30, 30)).save(folder / name)


def test_images_missing_or_unreadable_in_images_dir_are_skipped(tmp_path):
    coco = one_image_coco([[1, 1, 9, 1, 9, 9]])
    coco["images"] += [{"id": 2, "file_name": "gone.jpg", "width": 100, "height": 80},
                       {"id": 3, "file_name": "broken.jpg", "width": 100, "height": 80}]
    coco["annotations"].append(dict(coco["annotations"][0], id=2, image_id=2))
    write_images(tmp_path / "images", ["a.jpg"])
    (tmp_path / "images" / "broken.jpg").write_text("not an image")
    via, summary = convert_quietly(coco_to_via, coco, images_dir=tmp_path / "images")
    assert summary.images_missing_file == 2 and list(via) == ["1"]
    assert summary.annotations_of_skipped_images == 1
    back, summary = convert_quietly(via_to_coco, coco_to_via(coco, progress=False)[0], CATEGORIES,
                                    images_dir=tmp_path / "images")
    assert summary.images_missing_file == 2 and [i["id"] for i in back["images"]] == [1]


def test_a_decompression_bomb_in_images_dir_is_skipped_as_unreadable(tmp_path):
    from tests.bombs import png_claiming

    coco = one_image_coco([[1, 1, 9, 1, 9, 9]])
    coco["images"].append({"id": 2, "file_name": "bomb.png", "width": 100, "height": 80})
    coco["annotations"].append(dict(coco["annotations"][0], id=2, image_id=2))
    write_images(tmp_path / "images", ["a.jpg"])
    png_claiming(tmp_path / "images" / "bomb.png", 100000, 100000)
    via, summary = convert_quietly(coco_to_via, coco, images_dir=tmp_path / "images")
    assert summary.images_missing_file == 1 and list(via) == ["1"]
    back, summary = convert_quietly(via_to_coco, coco_to_via(coco, progress=False)[0], CATEGORIES,
                                    images_dir=tmp_path / "images")
    assert summary.images_missing_file == 1 and [i["id"] for i in back["images"]] == [1]


def test_image_names_that_leave_the_images_folder_are_skipped_not_read(tmp_path):
    """'../x.jpg' and absolute names are refused even when the file exists; a symlink inside the
    folder is followed (only the folder's owner can make one; see helpers.io.name_leaves_folder)."""
    write_images(tmp_path, ["outside.jpg"])
    write_images(tmp_path / "images", ["a.jpg"])
    (tmp_path / "images" / "linked.jpg").symlink_to(tmp_path / "outside.jpg")
    names = ["a.jpg", "../outside.jpg", str(tmp_path / "outside.jpg"), "sub/../../outside.jpg", "linked.jpg"]
    coco = one_image_coco([[1, 1, 9, 1, 9, 9]])
    coco["images"] = [{"id": k, "file_name": name, "width": 100, "height": 80}
                      for k, name in enumerate(names, 1)]
    coco["annotations"] = [dict(coco["annotations"][0], id=k, image_id=k) for k in range(1, 6)]
    via, summary = convert_quietly(coco_to_via, coco, images_dir=tmp_path / "images")
    assert summary.images_outside_folder == 3 and summary.images_missing_file == 0
    assert [entry["filename"] for entry in via.values()] == ["a.jpg", "linked.jpg"]
    assert summary.annotations_of_skipped_images == 3
    assert "leaves images_dir" in str(summary) and "'..', outside the images folder" in str(summary)
    back, summary = convert_quietly(via_to_coco, coco_to_via(coco, progress=False)[0], CATEGORIES,
                                    images_dir=tmp_path / "images")
    assert summary.images_outside_folder == 3 and summary.annotations_of_skipped_images == 3
    assert [image["file_name"] for image in back["images"]] == ["a.jpg", "linked.jpg"]


def test_image_size_from_attributes_typo_or_file_or_unknown(tmp_path):
    shape = region([1, 90, 90], [1, 1, 150])
    via = {"5": {"filename": "a.jpg", "size": -1, "regions": [shape],
                 "file_attributes": {"widht": 100, "height": 80}},            # the season set's typo
           "6": {"filename": "b.jpg", "size": -1, "regions": [shape], "file_attributes": {}},
           "7": {"filename": "c.jpg", "size": -1, "regions": [shape], "file_attributes": {}}}
    write_images(tmp_path, ["a.jpg", "b.jpg", "c.jpg"], size=(120, 60))
    (tmp_path / "c.jpg").unlink()
    back, summary = convert_quietly(via_to_coco, via, CATEGORIES, images_dir=tmp_path)
    sizes = {i["id"]: (i["width"], i["height"]) for i in back["images"]}
    assert sizes == {5: (100, 80), 6: (120, 60)} and summary.images_missing_file == 1
    back, summary = convert_quietly(via_to_coco, via, CATEGORIES)
    assert summary.images_unknown_size == 2 and len(back["annotations"]) == 3
    unknown = [i for i in back["images"] if i["id"] == 6][0]
    assert "width" not in unknown
    assert back["annotations"][1]["segmentation"] == [[1, 1, 90, 1, 90, 150]]   # kept, not clipped


def test_image_ids_from_integer_keys_else_sequential_after_the_largest():
    via = {"photo_b": {"filename": "b.jpg", "regions": []}, "40": {"filename": "a.jpg", "regions": []},
           "photo_c": {"filename": "c.jpg", "regions": []}}
    back, summary = convert_quietly(via_to_coco, via, ["bag"])
    ids_and_names = [(i["id"], i["file_name"]) for i in back["images"]]
    assert ids_and_names == [(41, "b.jpg"), (40, "a.jpg"), (42, "c.jpg")]
    assert summary.images_without_annotations == 3 and summary.images_unknown_size == 3


def test_rle_and_non_numeric_segmentations_are_skipped():
    coco = one_image_coco({"counts": "abc", "size": [80, 100]}, iscrowd=1)
    _, summary = convert_quietly(coco_to_via, coco)
    assert summary.annotations_without_polygons == 1 and summary.annotations_out == 0
    coco = one_image_coco([[1, None, 9, 1, 9, 9], [1, 1, 9, 1, 9, 9], ["1", "1", "9", "1", "9", "9"]])
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.polygons_not_numeric == 2 and summary.polygons_out == 1
    back, summary = convert_quietly(via_to_coco, one_image_via(
        region([1, "x", 9], [1, 1, 9]), region([1, 9, 9], [1, 1, 9])), CATEGORIES)
    assert summary.polygons_not_numeric == 1 and len(back["annotations"]) == 1


def test_rectangles_become_polygons_and_other_shapes_are_skipped():
    rect = {"shape_attributes": {"name": "rect", "x": 10, "y": 20, "width": 30, "height": 40},
            "region_attributes": {"fashion": "1"}}
    circle = {"shape_attributes": {"name": "circle", "cx": 5, "cy": 5, "r": 3},
              "region_attributes": {"fashion": "1"}}
    back, summary = convert_quietly(via_to_coco, one_image_via(rect, circle), CATEGORIES)
    assert summary.rects_converted == 1 and summary.regions_unsupported_shape == 1
    annotation = back["annotations"][0]
    assert annotation["bbox"] == [10, 20, 30, 40] and annotation["area"] == 1200


def test_iscrowd_kept_and_parts_merged_in_part_order():
    parts = [[1, 1, 9, 1, 9, 9], [20, 20, 30, 20, 30, 30], [40, 40, 50, 40, 50, 50]]
    coco = one_image_coco(parts, iscrowd=1)
    via, summary = convert_quietly(coco_to_via, coco)
    assert summary.crowd_annotations == 1
    via["1"]["regions"].reverse()                        # a VIA tool may reorder regions
    back, summary = convert_quietly(via_to_coco, via, coco)
    annotation = back["annotations"][0]
    assert annotation["segmentation"] == parts and annotation["iscrowd"] == 1
    assert summary.multipart_annotations == 1 and summary.crowd_annotations == 1


def test_via1_and_project_files_convert_like_export():
    via = one_image_via(region([1, 9, 9], [1, 1, 9]), region([20, 40, 40], [20, 20, 40], fashion="bag"))
    expected, _ = convert_quietly(via_to_coco, via, CATEGORIES)
    via1 = copy.deepcopy(via)
    via1["1"]["regions"] = {str(i): r for i, r in enumerate(via["1"]["regions"])}
    project = {"_via_settings": {}, "_via_img_metadata": via}
    assert convert_quietly(via_to_coco, via1, CATEGORIES)[0] == expected
    assert convert_quietly(via_to_coco, project, CATEGORIES)[0] == expected
    assert [a["category_id"] for a in expected["annotations"]] == [5, 1]


def test_categories_as_names_and_default_top_level():
    back, _ = convert_quietly(via_to_coco, one_image_via(region([1, 9, 9], [1, 1, 9], fashion="2")),
                              ["winter", "summer"], info={"description": "x"})
    assert back["categories"] == [{"supercategory": "", "id": 1, "name": "winter"},
                                  {"supercategory": "", "id": 2, "name": "summer"}]
    assert back["info"] == {"description": "x"} and back["licenses"] == []
    assert set(back) == {"info", "licenses", "images", "annotations", "categories"}
    with pytest.raises(DataError):
        via_to_coco({}, [], progress=False)
    with pytest.raises(DataError, match="COCO"):
        coco_to_via({"7": {"filename": "a", "regions": []}}, progress=False)


def test_season_fixture_converts_with_season_codes_as_names():
    codes = sorted({r["region_attributes"]["fashion"]
                    for e in json.loads(fixture("modanet/season_via_subset.json").read_text()).values()
                    for r in e["regions"]}, key=int)
    names = [f"label{i}" for i in range(1, int(codes[-1]) + 1)]
    back, summary = convert_quietly(via_to_coco, fixture("modanet/season_via_subset.json"), names)
    assert summary.skipped == 0 and len(back["annotations"]) == 9
    assert all((i["width"], i["height"]) == (400, 600) for i in back["images"])
    assert summary.images_unknown_size == 0 and summary.images_out == 9


# --- the summary -----------------------------------------------------------------------------
def test_summary_text_and_problem_list_are_bounded():
    coco = one_image_coco([[1, 1, 2, 2]] * 30 + [[1, 1, 9, 1, 9, 9]])
    _, summary = convert_quietly(coco_to_via, coco)
    assert summary.polygons_too_few_points == 30
    assert len(summary.problems) == summary.max_problems == 20
    assert summary.problems[0] == ("a.jpg", "annotation 1 part 0", "polygon with 2 points")
    text = str(summary)
    assert "30  polygons with fewer than 3 points" in text and "a.jpg | annotation 1 part 0" in text
    assert text.splitlines() == summary.lines()
    assert "no problems found" in str(ConversionSummary("COCO -> VIA"))


# --- command line ----------------------------------------------------------------------------
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "helpers.convert", *map(str, args), "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_round_trip_with_categories_from_json_and_names(tmp_path):
    coco_path = tmp_path / "coco.json"
    coco_path.write_text(json.dumps(synthetic_coco(4)))
    via_path, back_path, named_path = tmp_path / "via.json", tmp_path / "back.json", tmp_path / "named.json"
    done = run_cli("coco-to-via", coco_path, via_path)
    assert done.returncode == 0, done.stderr
    assert "COCO -> VIA: 4 of 4 images" in done.stdout
    done = run_cli("via-to-coco", via_path, back_path, "--categories", coco_path)
    assert done.returncode == 0, done.stderr
    assert_same_coco(synthetic_coco(4), json.loads(back_path.read_text()))
    done = run_cli("via-to-coco", via_path, named_path, "--categories", ",".join(CLASS_NAMES))
    assert done.returncode == 0, done.stderr
    assert [c["name"] for c in json.loads(named_path.read_text())["categories"]] == list(CLASS_NAMES)


@pytest.mark.parametrize("content", ['{"broken": ', '[1, 2]', '{"images": [], "annotations": []}'])
def test_cli_bad_via_input_is_one_line_and_exit_2(tmp_path, content):
    bad, out = tmp_path / "bad.json", tmp_path / "out.json"
    bad.write_text(content)
    done = run_cli("via-to-coco", bad, out, "--categories", "bag,belt")
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert str(bad) in done.stderr and not out.exists()


def test_cli_bad_coco_input_and_missing_categories_file(tmp_path):
    via_path, out = tmp_path / "via.json", tmp_path / "out.json"
    via_path.write_text(json.dumps(one_image_via(region([1, 9, 9], [1, 1, 9]))))
    assert main(["coco-to-via", str(via_path), str(out), "--quiet"]) == 2
    assert main(["coco-to-via", str(tmp_path / "none.json"), str(out), "--quiet"]) == 2
    assert main(["via-to-coco", str(via_path), str(out), "--categories", str(tmp_path / "c.json"),
                 "--quiet"]) == 2
    assert not out.exists()
    assert main(["via-to-coco", str(via_path), str(out), "--categories", "a,b,c,d,outer", "--quiet"]) == 0
    assert json.loads(out.read_text())["annotations"][0]["category_id"] == 5


def one_line_error(done):
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_cli_refuses_to_write_over_its_input(tmp_path):
    """`coco-to-via IN IN` used to replace its input silently; symlinks and hard links too."""
    coco_path, via_path = tmp_path / "coco.json", tmp_path / "via.json"
    coco_path.write_text(json.dumps(synthetic_coco(3)))
    via_path.write_text(json.dumps(one_image_via(region([1, 9, 9], [1, 1, 9]))))
    (tmp_path / "soft.json").symlink_to(coco_path)
    os.link(coco_path, tmp_path / "hard.json")
    before = {path: path.read_bytes() for path in (coco_path, via_path)}
    for out in (coco_path, tmp_path / "soft.json", tmp_path / "hard.json", tmp_path / "x" / ".." / "coco.json"):
        assert "is the input file" in one_line_error(run_cli("coco-to-via", coco_path, out))
    assert "is the input file" in one_line_error(run_cli("via-to-coco", via_path, via_path, "--categories", "a,b"))
    assert "is the input file" in one_line_error(            # the categories file is an input too
        run_cli("via-to-coco", via_path, tmp_path / "hard.json", "--categories", coco_path))
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.json", "hard.json", "soft.json", "via.json"]


def test_cli_output_a_folder_or_under_a_file_is_one_line_exit_2(tmp_path):
    coco_path = tmp_path / "coco.json"
    coco_path.write_text(json.dumps(synthetic_coco(3)))
    (tmp_path / "folder").mkdir()
    (tmp_path / "blocker").write_text("a file")
    assert "output is a folder" in one_line_error(run_cli("coco-to-via", coco_path, tmp_path / "folder"))
    line = one_line_error(run_cli("coco-to-via", coco_path, tmp_path / "blocker" / "via.json"))
    assert "blocker" in line and "Not a directory" in line
    assert list((tmp_path / "folder").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "coco.json", "folder"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_cli_unwritable_folder_is_one_line_exit_2(tmp_path):
    coco_path, locked = tmp_path / "coco.json", tmp_path / "locked"
    coco_path.write_text(json.dumps(synthetic_coco(3)))
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = one_line_error(run_cli("coco-to-via", coco_path, locked / "via.json"))
    finally:
        locked.chmod(0o700)
    assert line == f"error: {locked / 'via.json'}: Permission denied"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_signalled_mid_write_leaves_no_temp_file(tmp_path, signum):
    """tests/slow_write_driver.py runs the command line as a script and waits inside its fsync,
    so the signal arrives while the hidden temp file exists (it used to stay behind)."""
    coco_path, out = tmp_path / "coco.json", tmp_path / "out"
    coco_path.write_text(json.dumps(synthetic_coco(3)))
    out.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "slow_write_driver.py"), "helpers.convert",
         "coco-to-via", str(coco_path), str(out / "via.json"), "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "READY"
    assert len(list(out.glob(".via.json.*.tmp"))) == 1
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum and "Traceback" not in stderr
    assert list(out.iterdir()) == []


def test_image_list_without_annotations_converts():
    """ModaNet's val file lists images only; it converts to VIA images with no regions."""
    images_only = {"images": [{"id": 3, "file_name": "c.jpg", "width": 50, "height": 60}]}
    via, summary = convert_quietly(coco_to_via, images_only)
    assert via == {"3": {"filename": "c.jpg", "size": -1, "regions": [],
                         "file_attributes": {"width": 50, "height": 60}}}
    assert summary.images_without_annotations == 1 and summary.skipped == 0


@pytest.mark.parametrize("text, expected", [
    ("39,159,40,35", [39, 159, 40, 35]),
    (" 39, 159 ,40,35 ", [39, 159, 40, 35]),
    ("+39,0159,4_0,35", [39, 159, 40, 35]),       # what int() reads and JSON does not
    ("39.5,159,40,1e1", [39.5, 159, 40, 10.0]),
    ("123456789012345678901234,1,2,3", [123456789012345678901234, 1, 2, 3]),   # exact, no float
])
def test_carried_bbox_text_reads_as_int_else_float(text, expected):
    via = one_image_via(region([1, 9, 9], [1, 1, 9], annotation_id="7", bbox=text, area="12"))
    back, _ = convert_quietly(via_to_coco, via, CATEGORIES)
    bbox = back["annotations"][0]["bbox"]
    assert bbox == expected and list(map(type, bbox)) == list(map(type, expected))


@pytest.mark.parametrize("text", ["1,2,3", "1,2,3,4,5", "a,b,c,d", "true,1,2,3", "[1],2,3,4", ""])
def test_unreadable_carried_bbox_is_computed_from_the_polygon(text):
    via = one_image_via(region([1, 9, 9], [1, 1, 9], annotation_id="7", bbox=text, area="12"))
    back, _ = convert_quietly(via_to_coco, via, CATEGORIES)
    assert back["annotations"][0]["bbox"] == [1, 1, 8, 8]


def test_boolean_iscrowd_survives_as_one():
    coco = one_image_coco([[1, 1, 9, 1, 9, 9]], iscrowd=True)
    via, _ = convert_quietly(coco_to_via, coco)
    assert via["1"]["regions"][0]["region_attributes"]["iscrowd"] == "1"
    back, _ = convert_quietly(via_to_coco, via, coco)
    assert back["annotations"][0]["iscrowd"] == 1
