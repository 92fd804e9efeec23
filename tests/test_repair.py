"""Tests for helpers.repair: ModaNet's duplicates, boxes and areas found and repaired (issue 31).

Oracles are independent of the code under test: duplicates by comparing every pair, boxes by
pycocotools' toBbox of the merged polygon RLE, areas by pycocotools' area of the same RLE, and
the issue's own measure (the de-duplicated truth fed back as perfect detections scores AP 1.0).
"""
import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from helpers.datasets import CocoDataset
from helpers.evaluate import dataset_to_coco, evaluate_detections
from helpers.repair import main, repair_coco
from helpers.sample import generate_modanet_sample

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
MODANET_SUBSET = FIXTURES / "modanet" / "modanet_coco_subset.json"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def real():
    if not MODANET_SUBSET.is_file():
        pytest.skip(f"real ModaNet fixture not found at {MODANET_SUBSET}")
    return json.loads(MODANET_SUBSET.read_text())


def merged_rle(ann, image):
    return mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], image["height"], image["width"]))


def brute_force_duplicates(annotations):
    """Ids of the later copies: every pair compared (same image, category and polygons)."""
    later = set()
    for i, a in enumerate(annotations):
        for b in annotations[:i]:
            if (a["image_id"], a["category_id"], a["segmentation"]) == (b["image_id"], b["category_id"],
                                                                      b["segmentation"]):
                later.add(a["id"])
                break
    return later


def toBbox_disagreements(coco, tolerance=2.0):
    """Ids whose given bbox is more than `tolerance` px from pycocotools' box of the mask (toBbox
    and the polygons' extent differ by up to a pixel, so 2 px here against repair's 1 px)."""
    images = {im["id"]: im for im in coco["images"]}
    return {a["id"] for a in coco["annotations"]
            if np.abs(np.array(a["bbox"]) - mask_utils.toBbox(merged_rle(a, images[a["image_id"]]))).max()
            > tolerance}


# --- the real ModaNet fixture --------------------------------------------------------------------

def test_real_fixture_counts_match_brute_force_and_pycocotools(real):
    original = copy.deepcopy(real)
    repaired, summary = repair_coco(real)
    print(f"\nreal fixture:\n{summary}")
    assert real == original                                   # a pure function
    images = {im["id"]: im for im in real["images"]}

    duplicates = brute_force_duplicates(real["annotations"])
    assert summary.duplicates == len(duplicates) > 0
    dropped = {a["id"] for a in real["annotations"]} - {a["id"] for a in repaired["annotations"]}
    assert dropped == duplicates
    assert summary.annotations_out == len(real["annotations"]) - len(duplicates)

    kept = [a for a in real["annotations"] if a["id"] not in duplicates]
    flagged = toBbox_disagreements({"images": real["images"], "annotations": kept})
    assert summary.boxes_disagreeing == len(flagged) > 0
    by_id = {a["id"]: a for a in kept}
    assert {a["id"] for a in repaired["annotations"] if a["bbox"] != by_id[a["id"]]["bbox"]} == flagged
    for ann in repaired["annotations"]:   # every box now within 2 px of the mask's (a polygon's
        box = mask_utils.toBbox(merged_rle(ann, images[ann["image_id"]]))   # sliver tip draws no pixel)
        assert np.abs(np.array(ann["bbox"]) - box).max() <= 2.0, ann["id"]

    oracle_area = {a["id"]: int(mask_utils.area(merged_rle(a, images[a["image_id"]]))) for a in kept}
    assert {a["id"]: a["area"] for a in repaired["annotations"]} == oracle_area
    assert summary.areas_changed == sum(by_id[i]["area"] != area for i, area in oracle_area.items())
    assert [a["id"] for a in repaired["annotations"]] == [a["id"] for a in kept]   # nothing split by default


def test_real_fixture_one_part_boxes_are_the_duplicate_copies(real):
    """Kept duplicates: their boxes are one polygon part's box (by toBbox of that part alone)."""
    _, summary = repair_coco(real, drop_duplicates=False)
    images = {im["id"]: im for im in real["images"]}
    one_part = set()
    for ann in real["annotations"]:
        image = images[ann["image_id"]]
        whole = mask_utils.toBbox(merged_rle(ann, image))
        parts = [mask_utils.toBbox(mask_utils.frPyObjects([p], image["height"], image["width"])[0])
                 for p in ann["segmentation"]]
        if len(parts) > 1 and np.abs(np.array(ann["bbox"]) - whole).max() > 2 and any(
                np.abs(np.array(ann["bbox"]) - part).max() <= 2 for part in parts):
            one_part.add(ann["id"])
    print(f"\nreal fixture, duplicates kept: {summary.counters()}")
    assert summary.duplicates == len(brute_force_duplicates(real["annotations"]))
    assert summary.annotations_out == len(real["annotations"])
    assert summary.boxes_one_part_only == len(one_part) > 0
    assert summary.boxes_disagreeing == len(toBbox_disagreements(real))


def test_a_second_repair_finds_nothing(real):
    for options in ({}, {"split_shoes": True}, {"drop_duplicates": False}):
        once, _ = repair_coco(real, **options)
        twice, again = repair_coco(once, **options)
        expected_duplicates = 0 if options.get("drop_duplicates", True) else again.duplicates
        assert (again.boxes_disagreeing, again.areas_changed, again.shoes_split) == (0, 0, 0), options
        assert again.duplicates == expected_duplicates
        assert twice == once


def test_check_only_changes_nothing_and_still_counts(real):
    same, summary = repair_coco(real, drop_duplicates=False, fix_boxes=False, recompute_area=False)
    assert same == real
    assert summary.duplicates > 0 and summary.boxes_disagreeing > 0 and summary.areas_changed == 0
    assert "not checked" in str(summary)


def test_shoe_split_on_the_real_fixture_reports_what_it_does(real):
    repaired, summary = repair_coco(real, split_shoes=True)
    print(f"\nreal fixture, split_shoes: {summary.shoes_split} annotations split, "
          f"{summary.shoe_instances_added} instances added; class changes {summary.class_changes()}")
    assert summary.annotations_out == len(real["annotations"]) - summary.duplicates + summary.shoe_instances_added
    # every duplicated footwear / boots pair in the fixture is two shoes written once each
    assert summary.shoes_split == summary.duplicates > 0
    ids = [a["id"] for a in repaired["annotations"]]
    assert len(ids) == len(set(ids))


# --- the synthetic sample with injected defects -----------------------------------------------

@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    generate_modanet_sample(root, 24, size=(128, 192), seed=42, progress=False)
    coco = json.loads((root / "annotations" / "modanet2018_instances_train.json").read_text())
    clean = copy.deepcopy(coco)
    anns = coco["annotations"]
    next_id = max(a["id"] for a in anns) + 1
    multipart = next(i for i, a in enumerate(anns) if len(a["segmentation"]) > 1 and i not in (3, 10, 17))
    bad_boxes = {anns[i]["id"] for i in (5, 12, multipart)}
    for i in (5, 12):
        anns[i]["bbox"][0] += 7                                          # off by 7 px
    part = anns[multipart]["segmentation"][0]
    anns[multipart]["bbox"] = [min(part[0::2]), min(part[1::2]), max(part[0::2]) - min(part[0::2]),
                               max(part[1::2]) - min(part[1::2])]        # one part's box only
    anns[20]["bbox"][1] += 1                                             # 1 px: within tolerance
    bad_area = anns[8]["id"]
    anns[8]["area"] += 50
    copies = set()
    for i in sorted((3, 10, 17), reverse=True):                          # exact copies after the original
        anns.insert(i + 1, dict(copy.deepcopy(anns[i]), id=next_id))
        copies.add(next_id)
        next_id += 1
    source = clean["annotations"]                                       # as drawn, boxes right
    near = dict(copy.deepcopy(source[0]), id=next_id, category_id=source[0]["category_id"] % 13 + 1)
    other_image = next(im["id"] for im in coco["images"] if im["id"] != source[1]["image_id"])
    moved = dict(copy.deepcopy(source[1]), id=next_id + 1, image_id=other_image)
    anns += [near, moved]                                                # same polygons: not duplicates
    return coco, clean, copies, bad_boxes, bad_area, {near["id"], moved["id"]}


def test_clean_sample_has_no_defects(injected):
    _, clean, *_ = injected
    repaired, summary = repair_coco(clean)
    assert summary.found == 0 and summary.not_checked == 0
    assert repaired == clean
    assert "no defects found" in str(summary)


def test_injected_defects_are_all_found_and_nothing_else(injected):
    coco, _, copies, bad_boxes, bad_area, controls = injected
    repaired, summary = repair_coco(coco)
    assert summary.duplicates == len(copies)
    assert {a["id"] for a in coco["annotations"]} - {a["id"] for a in repaired["annotations"]} == copies
    before = {a["id"]: a for a in coco["annotations"]}
    box_changed = {a["id"] for a in repaired["annotations"] if a["bbox"] != before[a["id"]]["bbox"]}
    area_changed = {a["id"] for a in repaired["annotations"] if a["area"] != before[a["id"]]["area"]}
    assert box_changed == bad_boxes and summary.boxes_disagreeing == len(bad_boxes)
    assert summary.boxes_one_part_only == 1
    assert area_changed == {bad_area} and summary.areas_changed == 1
    assert controls <= {a["id"] for a in repaired["annotations"]}
    assert summary.shoes_split == 0 and summary.not_checked == 0


def test_keep_duplicates_counts_them_and_keeps_them(injected):
    coco, _, copies, *_ = injected
    repaired, summary = repair_coco(coco, drop_duplicates=False)
    assert summary.duplicates == len(copies)
    assert [a["id"] for a in repaired["annotations"]] == [a["id"] for a in coco["annotations"]]


# --- shoe pairs ------------------------------------------------------------------------------

def square(x, y, side):
    return [x, y, x + side, y, x + side, y + side, x, y + side]


def shoes_coco():
    categories = [{"id": 3, "name": "boots"}, {"id": 4, "name": "footwear"}, {"id": 9, "name": "top"}]
    anns = [
        {"id": 1, "image_id": 1, "category_id": 4, "segmentation": [square(10, 60, 20), square(60, 62, 18)],
         "bbox": [10, 60, 68, 20], "area": 1360, "iscrowd": 0},                      # two shoes apart
        {"id": 2, "image_id": 1, "category_id": 3, "segmentation": [square(100, 10, 20), square(110, 20, 20)],
         "bbox": [100, 10, 30, 30], "area": 900, "iscrowd": 0},                      # overlapping: one boot
        {"id": 3, "image_id": 1, "category_id": 9, "segmentation": [square(10, 5, 10), square(40, 5, 10)],
         "bbox": [10, 5, 40, 10], "area": 200, "iscrowd": 0},                        # not a shoe class
    ]
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100}],
            "annotations": anns, "categories": categories}


def test_two_separate_shoes_become_two_instances():
    coco = shoes_coco()
    repaired, summary = repair_coco(coco, split_shoes=True)
    assert (summary.shoes_split, summary.shoe_instances_added) == (1, 1)
    assert summary.class_changes() == {"footwear": (1, 2)}
    pieces = [a for a in repaired["annotations"] if a["category_id"] == 4]
    assert [p["segmentation"] for p in pieces] == [[square(10, 60, 20)], [square(60, 62, 18)]]
    ids = [a["id"] for a in repaired["annotations"]]
    assert len(set(ids)) == len(ids) == 4 and pieces[0]["id"] == 1
    for piece in pieces:
        rle = mask_utils.merge(mask_utils.frPyObjects(piece["segmentation"], 100, 200))
        assert piece["area"] == int(mask_utils.area(rle))
        assert np.abs(np.array(piece["bbox"]) - mask_utils.toBbox(rle)).max() <= 1
    assert "footwear 1 -> 2" in str(summary)
    _, again = repair_coco(repaired, split_shoes=True)
    assert again.shoes_split == 0 and again.found == 0
    _, off = repair_coco(coco)
    assert off.shoes_split == 0 and off.annotations_out == 3


def test_one_copy_per_shoe_becomes_one_instance_per_shoe():
    """ModaNet's pattern: feet side by side (boxes overlap, outlines touch), the annotation written
    once per shoe with both polygons. Each copy becomes its shoe; without the copies, or when the
    parts overlap, it is one instance."""
    left = [10, 60, 40, 60, 40, 90, 10, 90]                      # 30 x 30
    right = [39, 70, 69, 70, 69, 95, 39, 95]                     # its box overlaps left's
    overlapping = [20, 62, 50, 62, 50, 92, 20, 92]               # a third of left's pixels shared
    base = {"image_id": 1, "category_id": 4, "iscrowd": 0, "area": 0}
    images = [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100}]
    categories = [{"id": 4, "name": "footwear"}]

    def coco(*annotations):
        return {"images": images, "categories": categories,
                "annotations": [dict(base, id=i + 1, **a) for i, a in enumerate(annotations)]}

    pair = coco({"segmentation": [left, right], "bbox": [36, 60, 30, 30]},
                {"segmentation": [left, right], "bbox": [36, 70, 30, 25]})
    rles = mask_utils.frPyObjects([left, right], 100, 200)
    shared = mask_utils.area(mask_utils.merge(rles, intersect=True))
    assert 0 < shared <= 0.05 * min(mask_utils.area(rles))      # the outlines do touch
    repaired, summary = repair_coco(pair, split_shoes=True)
    assert (summary.duplicates, summary.shoes_split, summary.shoe_instances_added) == (1, 1, 1)
    assert [a["segmentation"] for a in repaired["annotations"]] == [[left], [right]]
    assert summary.class_changes() == {}                         # 2 annotations in, 2 shoes out
    assert len(repair_coco(pair)[0]["annotations"]) == 1         # without the option: deduplicated
    single = coco({"segmentation": [left, right], "bbox": [10, 60, 56, 35]})
    assert repair_coco(single, split_shoes=True)[1].shoes_split == 0     # no copy: one instance
    lapped = coco({"segmentation": [left, overlapping], "bbox": [10, 60, 40, 32]},
                  {"segmentation": [left, overlapping], "bbox": [10, 60, 40, 32]})
    assert repair_coco(lapped, split_shoes=True)[1].shoes_split == 0     # parts overlap: one shoe


def test_a_copy_with_a_bad_id_does_not_make_the_good_one_a_duplicate():
    coco = shoes_coco()
    good = coco["annotations"][0]
    for bad in (True, 4.0, "4"):
        coco["annotations"] = [dict(good, id=7, category_id=bad), good]
        repaired, summary = repair_coco(coco)
        assert summary.duplicates == 0 and good["id"] in [a["id"] for a in repaired["annotations"]], bad


def test_repeated_ids_get_new_ones_so_cocoeval_keeps_both():
    coco = shoes_coco()
    coco["annotations"][2]["id"] = 1               # a different annotation with annotation 1's id
    repaired, summary = repair_coco(coco)
    ids = [a["id"] for a in repaired["annotations"]]
    assert summary.ids_renumbered == 1 and ids == [1, 2, 3] and "id 1 repeated -> 3" in str(summary)
    same, check = repair_coco(coco, fix_boxes=False, recompute_area=False)
    assert check.ids_renumbered == 1 and same == coco           # a check only changes nothing
    assert repair_coco(repaired)[1].found == 0


# --- inputs the checks cannot measure ----------------------------------------------------------

def test_unmeasurable_annotations_pass_through_counted():
    coco = shoes_coco()
    coco["images"].append({"id": 2, "file_name": "huge.jpg", "width": 100000, "height": 100000})
    odd = [
        {"id": 10, "image_id": 1, "category_id": 9, "segmentation": {"size": [100, 200], "counts": "abc"}},
        {"id": 11, "image_id": 1, "category_id": 9, "segmentation": [[1, 2, float("nan"), 4, 5, 6]]},
        {"id": 12, "image_id": 1, "category_id": 9, "segmentation": [[0, 0, 1e12, 0, 1e12, 1e12]]},
        {"id": 13, "image_id": 2, "category_id": 9, "segmentation": [square(1, 1, 50000)]},
        {"id": 14, "image_id": 1, "category_id": 9, "segmentation": [["a", 1, 2, 3, 4, 5]]},
        {"id": 15, "image_id": [1], "category_id": 9, "segmentation": [square(1, 1, 5)]},
        "not an annotation",
    ]
    coco["annotations"] += odd
    repaired, summary = repair_coco(coco)
    assert summary.not_checked == 5          # 15 has an unknown (list) image: measured on a canvas
    assert repaired["annotations"][3:8] == odd[:5]        # passed through as they were
    assert repaired["annotations"][8]["bbox"] == [1, 1, 5, 5]
    assert repaired["annotations"][-1] == "not an annotation"


def test_not_coco_is_a_data_error():
    from helpers.io import DataError
    for bad in ([], {"images": []}, {"annotations": [], "images": {}}):
        with pytest.raises(DataError, match="expected 'images' and 'annotations' lists"):
            repair_coco(bad)


# --- command line ----------------------------------------------------------------------------

def test_cli_round_trip_writes_the_repair(real, tmp_path, capsys):
    out = tmp_path / "out" / "repaired.json"
    assert main([str(MODANET_SUBSET), str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    expected, summary = repair_coco(real)
    assert json.loads(out.read_text()) == expected
    assert f"exact duplicates (same image, class, polygons): {summary.duplicates}" in printed
    assert f"wrote {out}" in printed
    assert [p.name for p in out.parent.iterdir()] == ["repaired.json"]   # no temp file left

    assert main([str(MODANET_SUBSET), str(out), "--keep-duplicates", "--no-fix-boxes",
                 "--no-recompute-area", "--split-shoes", "--quiet"]) == 0
    kept = json.loads(out.read_text())
    assert len(kept["annotations"]) == len(real["annotations"]) + repair_coco(
        real, drop_duplicates=False, split_shoes=True)[1].shoe_instances_added
    assert "areas: not checked" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["same", "missing", "not_json", "not_coco", "folder", "bad_option"])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    good = tmp_path / "in.json"
    good.write_text(json.dumps(shoes_coco()))
    out = tmp_path / "out.json"
    args = {"same": [good, good], "missing": [tmp_path / "nope.json", out],
            "not_json": [tmp_path / "bad.json", out], "not_coco": [tmp_path / "list.json", out],
            "folder": [good, tmp_path], "bad_option": [good, out, "--frobnicate"]}[case]
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    before = good.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error" in err and "Traceback" not in err, err
    assert good.read_bytes() == before and not out.exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_in_a_process_exit_codes_and_no_traceback(tmp_path):
    good = tmp_path / "in.json"
    good.write_text(json.dumps(shoes_coco()))
    run = lambda *args: subprocess.run([sys.executable, "-m", "helpers.repair", *map(str, args)],
                                       cwd=REPO, capture_output=True, text=True, timeout=300)
    ok = run(good, tmp_path / "out.json", "--split-shoes", "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert "split into one instance per shoe: 1 annotations -> 2 instances" in ok.stdout
    same = run(good, good)
    assert same.returncode == 2 and same.stderr.count("\n") == 1 and "Traceback" not in same.stderr
    assert "output is the input file" in same.stderr


# --- where the repaired truth is used ------------------------------------------------------------

def test_load_coco_no_longer_returns_duplicate_masks(real, tmp_path):
    duplicates = brute_force_duplicates(real["annotations"])
    expected = {}
    for ann in real["annotations"]:
        if ann["id"] not in duplicates:
            expected[ann["image_id"]] = expected.get(ann["image_id"], 0) + 1
    for repair, counts in ((True, expected), (False, None)):
        dataset = CocoDataset().load_coco(MODANET_SUBSET, tmp_path, progress=False, repair=repair)
        dataset.prepare()
        got = {info["id"]: dataset.load_mask(i)[0].shape[-1] for i, info in enumerate(dataset.image_info)}
        if counts is None:
            assert sum(got.values()) == len(real["annotations"])     # repair=False: the file as it is
        else:
            assert got == counts
            text = dataset.summary()
            assert f"repaired on loading (helpers.repair): {len(duplicates)} duplicates dropped" in text
            assert "footwear" in text.split("repaired on loading")[1]


def perfect_detections(annotations, images, image_index, class_index):
    """Each annotation as a detection of score 1: its polygons' mask (RLE) and that mask's box."""
    results = []
    for ann in annotations:
        rle = merged_rle(ann, images[ann["image_id"]])
        results.append({"image_id": image_index(ann["image_id"]), "category_id": class_index(ann["category_id"]),
                        "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                        "bbox": [float(v) for v in mask_utils.toBbox(rle)], "score": 1.0})
    return results


def test_deduplicated_truth_as_perfect_detections_scores_ap_1(real, tmp_path):
    """The issue's measure: the truth the course evaluates against (load_coco -> dataset_to_coco)
    holds no duplicates, so the de-duplicated truth detected perfectly scores mask AP 1.0."""
    duplicates = brute_force_duplicates(real["annotations"])
    unique = [a for a in real["annotations"] if a["id"] not in duplicates]
    images = {im["id"]: im for im in real["images"]}
    scores = {}
    for repair in (True, False):
        dataset = CocoDataset().load_coco(MODANET_SUBSET, tmp_path, progress=False, repair=repair)
        dataset.prepare()
        index = {info["id"]: i for i, info in enumerate(dataset.image_info)}
        results = perfect_detections(unique, images, index.__getitem__,
                                     lambda c: dataset.map_source_class_id(f"modanet.{c}"))
        scores[repair] = evaluate_detections(dataset_to_coco(dataset), results)
    print(f"\nperfect de-duplicated detections: mask AP {scores[True].metrics['segm']['AP']:.3f} "
          f"(unrepaired truth {scores[False].metrics['segm']['AP']:.3f}), box AP "
          f"{scores[True].metrics['bbox']['AP']:.3f} ({scores[False].metrics['bbox']['AP']:.3f})")
    assert scores[True].metrics["segm"]["AP"] == pytest.approx(1.0)
    assert scores[True].metrics["bbox"]["AP"] == pytest.approx(1.0)
    assert scores[False].metrics["segm"]["AP"] < 1.0                # what the issue measured


def test_repaired_coco_boxes_score_perfect_masks_better_than_modanets(real):
    """Against the COCO dict itself (its own bbox field), perfect masks score box AP 1.0 once the
    boxes are repaired; against ModaNet's boxes they do not."""
    images = {im["id"]: im for im in real["images"]}
    repaired, _ = repair_coco(real)
    results = perfect_detections(repaired["annotations"], images, lambda i: i, lambda c: c)
    good = evaluate_detections(repaired, results)
    as_given = evaluate_detections({**real, "annotations": [a for a in real["annotations"]
                                                            if a["id"] in {r["id"] for r in repaired["annotations"]}]},
                                   results)
    print(f"\nbox AP of perfect masks: repaired boxes {good.metrics['bbox']['AP']:.3f}, "
          f"ModaNet's boxes {as_given.metrics['bbox']['AP']:.3f}")
    assert good.metrics["segm"]["AP"] == pytest.approx(1.0)
    assert good.metrics["bbox"]["AP"] > as_given.metrics["bbox"]["AP"]
    assert good.metrics["bbox"]["AP"] >= 0.99


def test_nested_and_ragged_polygons_pass_through():
    def nested():
        value = [1]
        for _ in range(100000):
            value = [value]
        return value
    coco = shoes_coco()
    coco["annotations"] += [
        {"id": 20, "image_id": 1, "category_id": 9, "segmentation": [[1, 2, [3], 4, 5, 6]]},
        {"id": 21, "image_id": 1, "category_id": 9, "segmentation": [[1, 2, 3, 4, 5, nested()]]},
        {"id": 22, "image_id": 1, "category_id": 9, "segmentation": [[1, 2, 3, 4, 5, nested()]]},
    ]
    repaired, summary = repair_coco(coco)
    assert summary.not_checked == 3 and repaired["annotations"][3:] == coco["annotations"][3:]


# --- what the conversions report --------------------------------------------------------------

def test_conversions_report_the_defects_they_keep(real, tmp_path):
    from helpers.convert import coco_to_via, via_to_coco
    _, check = repair_coco(real, drop_duplicates=False, fix_boxes=False, recompute_area=False)
    via, to_via = coco_to_via(real, progress=False)
    back, to_coco = via_to_coco(via, real, progress=False)
    assert back == real                                                # still lossless
    assert to_via.duplicate_annotations == to_coco.duplicate_annotations == check.duplicates > 0
    assert to_via.boxes_off_polygons == to_coco.boxes_off_polygons == check.boxes_disagreeing > 0
    text = str(to_via)
    assert "exact duplicate annotations" in text and "no problems found" not in text
    _, recomputed = via_to_coco(via, real, recompute=True, progress=False)
    assert recomputed.boxes_off_polygons == 0 and recomputed.duplicate_annotations == check.duplicates


def test_via_to_coco_cli_recomputes_areas_from_the_polygons(real, tmp_path):
    from helpers.convert import main as convert_main
    via_path, out = tmp_path / "via.json", tmp_path / "back.json"
    assert convert_main(["coco-to-via", str(MODANET_SUBSET), str(via_path), "--quiet"]) == 0
    assert convert_main(["via-to-coco", str(via_path), str(out), "--categories", str(MODANET_SUBSET),
                         "--recompute", "--quiet"]) == 0
    back = json.loads(out.read_text())
    images = {im["id"]: im for im in real["images"]}
    assert [a["area"] for a in back["annotations"]] == [
        int(mask_utils.area(merged_rle(a, images[a["image_id"]]))) for a in real["annotations"]]
    assert [a["area"] for a in back["annotations"]] != [a["area"] for a in real["annotations"]]


def test_truth_as_labels_uses_the_repaired_truth():
    from helpers.compare import truth_as_labels
    from helpers.seasons import label_name
    top = {"id": 1, "image_id": 1, "category_id": 9, "segmentation": [square(10, 10, 30)],
           "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0}
    truth = {"images": [{"id": 1, "file_name": "top_4mev_1.jpg", "width": 200, "height": 100}],
             "annotations": [top, dict(top, id=2)], "categories": [{"id": 9, "name": "top"}]}
    labels = {"images": [{"id": 7, "file_name": "top_4mev_1.jpg", "width": 200, "height": 100}],
              "annotations": [], "categories": [{"id": 1, "name": label_name("top", "4mev")}]}
    gt = truth_as_labels(truth, labels)
    assert len(gt["annotations"]) == 1 and gt["annotations"][0]["bbox"] == [10, 10, 30, 30]
    assert len(truth["annotations"]) == 2


def test_cli_refuses_a_link_to_the_input(tmp_path, capsys):
    good = tmp_path / "in.json"
    good.write_text(json.dumps(shoes_coco()))
    (tmp_path / "link.json").symlink_to(good)
    (tmp_path / "hard.json").hardlink_to(good)
    for out in ("link.json", "hard.json"):
        with pytest.raises(SystemExit) as exit_info:
            main([str(good), str(tmp_path / out)])
        assert exit_info.value.code == 2 and "output is the input file" in capsys.readouterr().err
    assert json.loads(good.read_text()) == shoes_coco()
