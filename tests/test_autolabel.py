"""Tests for helpers.autolabel with a fake model-1 built from a synthetic custom set's truth.

The fake model answers every garment of the picture (so the file's class competes with
distractors of other classes), numbers its classes in REVERSED ModaNet order and lacks
"bag": matching by index would pick the wrong garment, matching by name cannot.
"""
import hashlib
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from helpers.autolabel import (AutoLabelReport, autolabel_folder, compare_matching, filter_labels,
                               mask_to_polygons, measure_against_truth, require_enough_labels)
from helpers.convert import via_to_coco
from helpers.io import DataError
from helpers.modanet import CLASS_NAMES, class_slug
from helpers.sample import generate_custom_set
from mrcnn.utils import read_image_rgb

SIZE = (128, 192)
MODEL_CLASSES = ["BG"] + [c for c in reversed(CLASS_NAMES) if c != "bag"]
TARGET_SCORE, SECOND_SCORE, DISTRACTOR_SCORE, WEAK_SCORE = 0.95, 0.8, 0.99, 0.3
PLAN = {"top_kis_1.jpg": "none", "skirt_sonb_1.jpg": "low", "top_ilkb_1.jpg": "empty"}
EXPECTED_SKIPS = {
    "bad name": ["hat_yaz_1.jpg", "holiday photo.jpg"],
    "unreadable": ["skirt_yaz_2.jpg"],
    "class not in model": ["bag_yaz_1.jpg"],
    "no top detected": ["top_kis_1.jpg"],
    "below confidence": ["skirt_sonb_1.jpg"],
    "empty mask": ["top_ilkb_1.jpg"],
}


def rasterize(polygons, height, width):
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))).astype(bool)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def pixels_key(image):
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class FakeModel:
    """detect() from the truth: every garment (distractors score higher than the target), a
    second, smaller target detection and a weak one; `plan` removes the target, weakens it
    or empties its masks for some files. Records the files each call saw."""

    def __init__(self, images_dir, truth, plan=PLAN, batch_size=1):
        self.config = SimpleNamespace(BATCH_SIZE=batch_size)
        self.calls = []
        self.answers = {}
        names = {c["id"]: c["name"] for c in truth["categories"]}
        for image in truth["images"]:
            height, width, name = image["height"], image["width"], image["file_name"]
            rows = []
            for ann in truth["annotations"]:
                if ann["image_id"] != image["id"]:
                    continue
                mask = rasterize(ann["segmentation"], height, width)
                cls = names[ann["category_id"]]
                if cls != image["target_class"]:
                    rows.append((cls, DISTRACTOR_SCORE, mask))
                    continue
                smaller = np.zeros_like(mask)
                smaller[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1]
                weak = np.zeros_like(mask)
                weak[:20, :20] = True
                rows += [(cls, TARGET_SCORE, mask), (cls, SECOND_SCORE, smaller), (cls, WEAK_SCORE, weak)]
            what = plan.get(name)
            target = image["target_class"]
            if what == "none":
                rows = [r for r in rows if r[0] != target]
            elif what == "low":
                rows = [(c, s / 2 if c == target else s, m) for c, s, m in rows]
            elif what == "empty":
                rows = [(c, s, np.zeros_like(m) if c == target else m) for c, s, m in rows]
            rows = [r for r in rows if r[0] in MODEL_CLASSES]
            key = pixels_key(read_image_rgb(images_dir / name))
            self.answers[key] = (name, rows)

    def detect(self, images):
        results, seen = [], []
        for image in images:
            name, rows = self.answers[pixels_key(image)]
            seen.append(name)
            masks = np.stack([m for _, _, m in rows], -1) if rows else np.zeros(image.shape[:2] + (0,), bool)
            boxes = np.array([[0, 0, 1, 1]] * len(rows)).reshape(-1, 4)
            class_ids = np.array([MODEL_CLASSES.index(c) for c, _, _ in rows], np.int32)
            scores = np.array([s for _, s, _ in rows], np.float32)
            results.append({"rois": boxes, "class_ids": class_ids, "scores": scores, "masks": masks})
        self.calls.append(seen)
        return results

    def images_detected(self):
        return sorted({name for call in self.calls for name in call})


class Interrupting(FakeModel):
    """Raises once `fail_after` images have been detected (a crash or Ctrl-C mid-run)."""

    fail_after = 4

    def detect(self, images):
        if sum(len(call) for call in self.calls) >= self.fail_after:
            raise KeyboardInterrupt("stopped mid-run")
        return super().detect(images)


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom")
    generate_custom_set(root, ["skirt", "top"], per_label=1, size=SIZE, progress=False)
    truth = json.loads((root / "custom" / "truth.json").read_text())
    return root / "custom" / "images", truth


@pytest.fixture
def folder(custom, tmp_path):
    """The custom images plus a badly named, an unknown-class, an unreadable and a no-model-class file."""
    source, truth = custom
    images = tmp_path / "images"
    shutil.copytree(source, images)
    shutil.copy(source / "skirt_yaz_1.jpg", images / "holiday photo.jpg")
    shutil.copy(source / "skirt_yaz_1.jpg", images / "hat_yaz_1.jpg")
    shutil.copy(source / "top_yaz_1.jpg", images / "bag_yaz_1.jpg")
    (images / "skirt_yaz_2.jpg").write_bytes(b"not a picture")
    (images / "notes.txt").write_text("not an image: ignored")
    return images, truth


def run(model, images, out, **kwargs):
    kwargs.setdefault("progress", False)
    return autolabel_folder(model, MODEL_CLASSES, images, out / "auto_via.json", out / "auto_coco.json", **kwargs)


# --- mask_to_polygons ---------------------------------------------------------------------------

def _shapes(height=60, width=80):
    yy, xx = np.mgrid[:height, :width]
    rect = np.zeros((height, width), bool)
    rect[10:30, 20:50] = True
    ell = np.zeros_like(rect)
    ell[5:50, 5:15] = True
    ell[40:50, 5:40] = True
    two = np.zeros_like(rect)
    two[5:15, 5:15] = True
    two[30:50, 50:72] = True
    radius2 = (yy - 30) ** 2 + (xx - 40) ** 2
    ring = (radius2 <= 20 ** 2) & (radius2 > 10 ** 2)
    edge = np.zeros_like(rect)
    edge[:, 60:] = True                     # touches three image borders
    return {"rectangle": (rect, 1, rect), "disc": (radius2 <= 15 ** 2, 1, radius2 <= 15 ** 2),
            "L-shape": (ell, 1, ell), "two blobs": (two, 2, two), "ring": (ring, 1, radius2 <= 20 ** 2),
            "border": (edge, 1, edge)}


@pytest.mark.parametrize("name", list(_shapes()))
@pytest.mark.parametrize("tolerance", [0, 1.0, 2.0])
def test_mask_to_polygons_rasterises_back_to_the_mask(name, tolerance):
    """pycocotools is the oracle: the polygons rasterise to the mask (holes filled)."""
    mask, pieces, filled = _shapes()[name]
    polygons = mask_to_polygons(mask, tolerance=tolerance)
    assert len(polygons) == pieces
    for polygon in polygons:
        assert len(polygon) % 2 == 0 and len(polygon) >= 6
        assert all(isinstance(v, float) and round(v, 1) == v for v in polygon)
        assert min(polygon[0::2]) >= 0 and max(polygon[0::2]) <= 80 and max(polygon[1::2]) <= 60
    drawn = rasterize(polygons, *mask.shape)
    assert iou(drawn, filled) >= (0.999 if tolerance == 0 else 0.9)


def test_mask_to_polygons_exact_corners_and_empty():
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    assert mask_to_polygons(mask) == [[20.0, 30.0, 20.0, 10.0, 50.0, 10.0, 50.0, 30.0]]
    assert mask_to_polygons(np.ones((6, 8), bool)) == [[0.0, 6.0, 0.0, 0.0, 8.0, 0.0, 8.0, 6.0]]
    assert mask_to_polygons(np.zeros((60, 80), bool)) == []


def test_mask_to_polygons_drops_small_pieces_and_simplifies():
    mask = np.zeros((60, 80), bool)
    mask[40, 40] = True                                   # 1 px: under min_area
    yy, xx = np.mgrid[:60, :80]
    mask |= (yy - 20) ** 2 + (xx - 20) ** 2 <= 12 ** 2
    exact, simple = mask_to_polygons(mask, tolerance=0), mask_to_polygons(mask, tolerance=1.0)
    assert len(exact) == len(simple) == 1
    assert len(simple[0]) < len(exact[0]) / 4
    assert len(mask_to_polygons(mask, tolerance=0, min_area=0)) == 2
    with pytest.raises(ValueError, match="2-D"):
        mask_to_polygons(np.zeros((4, 4, 1), bool))


# --- autolabel_folder ----------------------------------------------------------------------------

def test_labels_match_truth_and_report_counts(folder, tmp_path):
    images, truth = folder
    model = FakeModel(images, truth)
    report = run(model, images, tmp_path / "out")
    coco = json.loads((tmp_path / "out" / "auto_coco.json").read_text())

    assert report.images_seen == 14 and report.labelled == 7 and report.resumed == 0
    assert report.skipped == EXPECTED_SKIPS and report.skipped_count == 7
    assert not (tmp_path / "out" / "auto_coco.json.partial.jsonl").exists()
    expected_labels = {f"{class_slug(im['target_class'])}_{im['season']}" for im in truth["images"]
                       if im["file_name"] not in PLAN}
    assert report.instances_per_label == {label: 1 for label in sorted(expected_labels)}
    assert [c["name"] for c in coco["categories"]] == sorted(expected_labels)
    assert [c["id"] for c in coco["categories"]] == list(range(1, 8))
    assert all(c["supercategory"] == c["name"].rsplit("_", 1)[0] for c in coco["categories"])
    assert [im["id"] for im in coco["images"]] == list(range(1, 8))

    truth_by_name = {im["file_name"]: im for im in truth["images"]}
    label_of = {c["id"]: c["name"] for c in coco["categories"]}
    for image, ann in zip(coco["images"], coco["annotations"], strict=True):
        source = truth_by_name[image["file_name"]]
        assert (image["target_class"], image["season"]) == (source["target_class"], source["season"])
        assert (image["width"], image["height"]) == SIZE
        assert label_of[ann["category_id"]] == f"{class_slug(source['target_class'])}_{source['season']}"
        assert ann["score"] == pytest.approx(TARGET_SCORE) and ann["iscrowd"] == 0
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], SIZE[1], SIZE[0]))
        assert ann["area"] == int(mask_utils.area(rle))
        assert ann["bbox"] == pytest.approx(mask_utils.toBbox(rle).tolist(), abs=0.51)

    measured = measure_against_truth(coco, truth)
    assert measured["images_in_truth"] == 10 and measured["images_labelled"] == 7
    assert measured["share_labelled"] == pytest.approx(0.7)
    assert measured["instances"] == 7 and measured["mean_iou"] >= 0.9
    assert measured["share_iou_50"] == 1.0 and measured["share_wrong_garment"] == 0.0
    assert set(measured["per_class"]) == {"skirt", "top"}

    text = str(report)
    for reason, files in EXPECTED_SKIPS.items():
        assert reason in text and files[0] in text
    as_dict = report.to_dict()
    assert as_dict["skipped_by_reason"] == {reason: len(files) for reason, files in EXPECTED_SKIPS.items()}
    assert json.loads(json.dumps(as_dict)) == as_dict


def test_via_round_trips_to_the_same_coco(folder, tmp_path):
    images, truth = folder
    run(FakeModel(images, truth), images, tmp_path, keep="all")
    coco = json.loads((tmp_path / "auto_coco.json").read_text())
    via = json.loads((tmp_path / "auto_via.json").read_text())
    assert set(via) == {im["file_name"] for im in coco["images"]}
    regions = [r for entry in via.values() for r in entry["regions"]]
    assert len(regions) == sum(len(a["segmentation"]) for a in coco["annotations"])
    assert all(r["region_attributes"]["label"] == f"{class_slug(r['region_attributes']['class'])}_"
               f"{r['region_attributes']['season']}" for r in regions)

    back, summary = via_to_coco(tmp_path / "auto_via.json", coco["categories"], attribute="label", progress=False)
    assert summary.skipped == 0 and summary.repaired == 0
    assert back["images"] == coco["images"]
    assert len(back["annotations"]) == len(coco["annotations"])
    for ours, theirs in zip(coco["annotations"], back["annotations"], strict=True):
        for key in ("id", "image_id", "category_id", "segmentation", "area", "iscrowd"):
            assert ours[key] == theirs[key], key
        assert ours["bbox"] == pytest.approx(theirs["bbox"])


def test_keep_all_keeps_every_confident_detection_best_first(folder, tmp_path):
    images, truth = folder
    report = run(FakeModel(images, truth), images, tmp_path, keep="all")
    coco = json.loads((tmp_path / "auto_coco.json").read_text())
    assert report.labelled == 7 and set(report.instances_per_label.values()) == {2}
    for image in coco["images"]:
        scores = [a["score"] for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert scores == pytest.approx([TARGET_SCORE, SECOND_SCORE])


def test_min_confidence_moves_images_to_below_confidence(folder, tmp_path):
    images, truth = folder
    report = run(FakeModel(images, truth), images, tmp_path, min_confidence=0.96)
    assert report.labelled == 0
    assert len(report.skipped["below confidence"]) == 9


def test_resume_after_interruption_gives_the_same_outputs(folder, tmp_path):
    images, truth = folder
    whole = tmp_path / "whole"
    run(FakeModel(images, truth, batch_size=2), images, whole)

    parts = tmp_path / "parts"
    crashing = Interrupting(images, truth, batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        run(crashing, images, parts)
    journal = parts / "auto_coco.json.partial.jsonl"
    assert journal.is_file() and not (parts / "auto_coco.json").exists()
    done_first = crashing.images_detected()
    assert len(done_first) == 4                    # two batches of 2 done, the third one raised
    with open(journal, "ab") as f:                 # a line cut short by the crash
        f.write(b'{"entries": [{"fi')

    model = FakeModel(images, truth, batch_size=2)
    report = run(model, images, parts)
    assert report.resumed >= len(done_first)
    assert not set(model.images_detected()) & set(done_first)
    assert set(model.images_detected()) | set(done_first) == {im["file_name"] for im in truth["images"]}
    for name in ("auto_coco.json", "auto_via.json"):
        assert (parts / name).read_bytes() == (whole / name).read_bytes()
    assert not journal.exists()


def test_resume_false_and_other_settings_start_over(folder, tmp_path):
    images, truth = folder
    with pytest.raises(KeyboardInterrupt):
        run(Interrupting(images, truth), images, tmp_path)
    model = FakeModel(images, truth)
    with pytest.warns(UserWarning, match="other settings"):
        report = run(model, images, tmp_path, tolerance=2.0)     # the partial run is stale
    assert report.resumed == 0 and len(model.images_detected()) == 10
    with pytest.raises(KeyboardInterrupt):
        run(Interrupting(images, truth), images, tmp_path)
    model = FakeModel(images, truth)
    assert run(model, images, tmp_path, resume=False).resumed == 0
    assert len(model.images_detected()) == 10


def test_padding_gives_detect_full_batches(folder, tmp_path):
    images, truth = folder
    model = FakeModel(images, truth, batch_size=4)
    run(model, images, tmp_path)
    assert all(len(call) == 4 for call in model.calls)
    assert len(model.images_detected()) == 10          # 8 well named + unreadable/bag never reach detect


def test_bad_arguments_and_bad_model_answers(folder, tmp_path):
    images, truth = folder
    model = FakeModel(images, truth)
    with pytest.raises(ValueError, match="keep"):
        run(model, images, tmp_path, keep="first")
    with pytest.raises(ValueError, match="min_confidence"):
        run(model, images, tmp_path, min_confidence=70)
    with pytest.raises(ValueError, match="tolerance"):
        run(model, images, tmp_path, tolerance=-1)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        run(model, tmp_path / "nowhere", tmp_path)
    with pytest.raises(ValueError, match=r"skirt_4mev_1\.jpg: detect\(\) gave class id \d+"):
        autolabel_folder(model, MODEL_CLASSES[:5], images, tmp_path / "v.json", tmp_path / "c.json",
                         progress=False)


# --- index vs name matching ------------------------------------------------------------------------

def test_index_matching_picks_the_wrong_garment_name_matching_does_not(folder):
    images, truth = folder
    model = FakeModel(images, truth, plan={})
    names = [im["file_name"] for im in truth["images"]]
    results = model.detect([read_image_rgb(images / name) for name in names])
    classes = [im["target_class"] for im in truth["images"]]
    compared = compare_matching(results, classes, MODEL_CLASSES)
    assert compared["images"] == 10 and compared["name_wrong_garment"] == 0
    assert [name for _, _, name in compared["rows"]] == classes
    assert compared["index_wrong_garment"] >= 1
    assert all(index != cls for cls, index, _ in compared["rows"])
    same_order = compare_matching(results, classes, MODEL_CLASSES, assumed_class_names=MODEL_CLASSES)
    assert same_order["index_wrong_garment"] == 0


# --- filter_labels and measure_against_truth -------------------------------------------------------

def _toy_coco(counts):
    categories = [{"id": i, "name": label, "supercategory": label.rsplit("_", 1)[0]}
                  for i, label in enumerate(counts, 1)]
    images, annotations = [], []
    for category in categories:
        for _ in range(counts[category["name"]]):
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 10, "height": 10})
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category["id"],
                                "segmentation": [[0, 0, 5, 0, 5, 5]], "area": 12, "bbox": [0, 0, 5, 5],
                                "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": categories, "info": {"x": 1}}


def test_filter_labels_keeps_labels_with_enough_instances():
    counts = {"skirt_yaz": 5, "top_kis": 2, "bag_sonb": 3, "belt_4mev": 0, "dress_ilkb": 3}
    coco = _toy_coco(counts)
    filtered, kept, dropped = filter_labels(coco, 3)
    assert kept == [("skirt_yaz", 5), ("bag_sonb", 3), ("dress_ilkb", 3)]
    assert dropped == [("top_kis", 2), ("belt_4mev", 0)]
    assert [c["name"] for c in filtered["categories"]] == ["skirt_yaz", "bag_sonb", "dress_ilkb"]
    assert [c["id"] for c in filtered["categories"]] == [1, 2, 3]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    new_names = {c["id"]: c["name"] for c in filtered["categories"]}
    old = sorted((a["id"], names[a["category_id"]]) for a in coco["annotations"]
                 if counts[names[a["category_id"]]] >= 3)
    assert sorted((a["id"], new_names[a["category_id"]]) for a in filtered["annotations"]) == old
    assert {im["id"] for im in filtered["images"]} == {a["image_id"] for a in filtered["annotations"]}
    assert len(filtered["images"]) == 11 and filtered["info"] == {"x": 1}
    assert len(coco["categories"]) == 5                          # the input is left as it was
    assert filter_labels(coco, 0).dropped == []
    with pytest.raises(ValueError, match="min_per_class"):
        filter_labels(coco, -1)


def test_require_enough_labels_says_what_to_change():
    coco = _toy_coco({"skirt_yaz": 2, "top_kis": 1})
    report = AutoLabelReport(images_seen=10, labelled=3, skipped={"below confidence": ["a.jpg"] * 7})
    with pytest.raises(DataError) as raised:
        require_enough_labels(filter_labels(coco, 3), report, 3)
    message = str(raised.value)
    for words in ("Only 0 photo(s)", "at least 3 instances", "labelled 3 of 10", "7 had the garment only below",
                  "('skirt_yaz', 2)", "MIN_CONFIDENCE", "notebook 04"):
        assert words in message
    enough = filter_labels(coco, 1)                              # 3 photos: one for each split
    assert require_enough_labels(enough, report, 1) is enough
    with pytest.raises(DataError, match="Only 3 photo"):
        require_enough_labels(enough, report, 1, min_images=4)


def _auto_from_truth(truth, pick):
    """An auto COCO made of truth polygons: `pick(target, classes)` chooses the garment per image."""
    names = {c["id"]: c["name"] for c in truth["categories"]}
    images, annotations, labels = [], [], {}
    for image in truth["images"]:
        anns = [a for a in truth["annotations"] if a["image_id"] == image["id"]]
        chosen = pick(image["target_class"], anns, names)
        label = f"{class_slug(image['target_class'])}_{image['season']}"
        label_id = labels.setdefault(label, len(labels) + 1)
        images.append(dict(image))
        annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": label_id,
                            "segmentation": chosen["segmentation"], "iscrowd": 0})
    categories = [{"id": i, "name": label, "supercategory": label.rsplit("_", 1)[0]} for label, i in labels.items()]
    return {"images": images, "annotations": annotations, "categories": categories}


def test_measure_with_exact_truth_masks(custom):
    _, truth = custom
    auto = _auto_from_truth(truth, lambda target, anns, names: next(
        a for a in anns if names[a["category_id"]] == target))
    measured = measure_against_truth(auto, truth)
    assert measured["share_labelled"] == 1.0 and measured["instances"] == 10
    assert measured["mean_iou"] == pytest.approx(1.0) and measured["share_iou_50"] == 1.0
    assert measured["share_wrong_garment"] == 0.0
    assert measured["per_class"]["skirt"]["instances"] == 5


def test_measure_with_swapped_classes(custom):
    _, truth = custom
    auto = _auto_from_truth(truth, lambda target, anns, names: next(
        a for a in sorted(anns, key=lambda a: -a["area"]) if names[a["category_id"]] != target))
    measured = measure_against_truth(auto, truth)
    assert measured["share_wrong_garment"] == 1.0
    assert measured["mean_iou"] < 0.5 and measured["share_iou_50"] == 0.0
    assert measured["per_class"]["top"]["share_wrong_garment"] == 1.0


def test_report_to_dict_and_table_of_an_empty_run():
    report = AutoLabelReport(images_seen=2, skipped={"bad name": ["a.jpg", "b.jpg"]})
    assert report.to_dict()["skipped"] == 2
    assert "Auto-labelled 0 of 2 images (2 skipped)" in report.table()


# --- hostile input (issue 31) -------------------------------------------------------------------

def test_a_decompression_bomb_is_skipped_and_journalled_so_a_resume_never_reads_it(folder, tmp_path,
                                                                                   monkeypatch):
    from tests.bombs import png_claiming
    images, truth = folder
    png_claiming(images / "pants_yaz_1.png", 100000, 100000)   # sorts before the skirts and tops
    crashing = Interrupting(images, truth, batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        run(crashing, images, tmp_path)
    journal = (tmp_path / "auto_coco.json.partial.jsonl").read_text()
    assert '"too large to decode"' in journal and "pants_yaz_1.png" in journal

    import helpers.autolabel as autolabel
    read = []
    monkeypatch.setattr(autolabel, "read_image_rgb", lambda path: read.append(path.name) or read_image_rgb(path))
    report = run(FakeModel(images, truth, batch_size=2), images, tmp_path)
    assert "pants_yaz_1.png" not in read and read
    assert report.skipped["too large to decode"] == ["pants_yaz_1.png"]
    assert report.skipped["unreadable"] == ["skirt_yaz_2.jpg"]
    assert "too large to decode" in report.table()


def test_measure_leaves_out_and_counts_segmentations_pycocotools_cannot_take(custom):
    from tests.bombs import run_limited
    _, truth = custom
    auto = _auto_from_truth(truth, lambda target, anns, names: next(
        a for a in anns if names[a["category_id"]] == target))
    hostile = json.loads(json.dumps(truth))
    hostile["annotations"][0]["segmentation"] = [[1, 1, 1e9, 5, 9, 1]]
    hostile["annotations"][1]["segmentation"] = {"size": [SIZE[0], SIZE[1]], "counts": [10 ** 9, 5]}
    auto["annotations"][-1]["segmentation"] = [[float("nan"), 1, 5, 5, 9, 1]]   # another image's
    assert auto["annotations"][-1]["image_id"] != hostile["annotations"][1]["image_id"]
    code = f"""
import json
from helpers.autolabel import measure_against_truth
measured = measure_against_truth(json.loads({json.dumps(json.dumps(auto))}), json.loads({json.dumps(json.dumps(hostile))}))
print(json.dumps([measured["instances"], measured["unusable_segmentations"]]))
"""
    returncode, out, err = run_limited(code)
    assert returncode == 0, err[-2000:]
    assert json.loads(out) == [9, {"auto": 1, "truth": 2}]
