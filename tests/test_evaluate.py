"""helpers.evaluate: COCO AP against hand-worked cases, RLE round trips, comparison and season tables.

The datasets are a few rectangles on tiny images, and the model is a fake with `.detect` and
`.config.BATCH_SIZE`, so expected values come from geometry worked out by hand.
"""
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from helpers.datasets import CocoDataset, segmentation_to_mask
from helpers.evaluate import (
    coco_to_result, compare_per_class, dataset_to_coco, evaluate_detections, evaluate_model,
    garment_class, predicted_season, results_to_coco, season_confusion, season_of)
from mrcnn.utils import Dataset

HEIGHT, WIDTH = 60, 80
CLASSES = ("shirt", "skirt", "scarf")          # "scarf" never has ground truth below

# Each scene: rectangles (class id, y1, x1, y2, x2), y2/x2 exclusive.
SCENES = [
    [(1, 5, 5, 25, 30), (2, 30, 40, 55, 70)],
    [(1, 10, 10, 20, 20)],
    [(2, 0, 0, 60, 80)],
    [(1, 2, 50, 40, 78), (1, 42, 3, 58, 33), (2, 20, 20, 35, 45)],
    [],
]


class RectDataset(Dataset):
    """Rectangles as instances; each image's pixel [0, 0, 0] holds its id so a fake model can tell them apart."""

    def __init__(self, scenes=SCENES, classes=CLASSES):
        super().__init__()
        for class_id, name in enumerate(classes, start=1):
            self.add_class("rects", class_id, name)
        for index, rects in enumerate(scenes):
            self.add_image("rects", image_id=f"scene-{index}", path=f"/nowhere/scene-{index}.png",
                           height=HEIGHT, width=WIDTH, rects=rects)
        self.prepare()

    def load_image(self, image_id):
        image = np.full((HEIGHT, WIDTH, 3), 100, dtype=np.uint8)
        image[0, 0, 0] = image_id
        return image

    def load_mask(self, image_id):
        rects = self.image_info[image_id]["rects"]
        masks = np.zeros((HEIGHT, WIDTH, len(rects)), dtype=bool)
        for n, (_, y1, x1, y2, x2) in enumerate(rects):
            masks[y1:y2, x1:x2, n] = True
        return masks, np.array([r[0] for r in rects], dtype=np.int32)


def detection(rects, scores=None):
    """A model.detect-style result with rectangle masks: rects are (class id, y1, x1, y2, x2)."""
    masks = np.zeros((HEIGHT, WIDTH, len(rects)), dtype=bool)
    for n, (_, y1, x1, y2, x2) in enumerate(rects):
        masks[y1:y2, x1:x2, n] = True
    return {"rois": np.array([r[1:] for r in rects], dtype=np.int32).reshape(-1, 4),
            "class_ids": np.array([r[0] for r in rects], dtype=np.int32),
            "scores": np.array(scores if scores is not None else [1.0] * len(rects), dtype=np.float32),
            "masks": masks}


class FakeModel:
    """Answers detect() from a table {image id: result}, reading the id from pixel [0, 0, 0]."""

    def __init__(self, answers, batch_size=2, num_classes=len(CLASSES) + 1):
        self.answers = answers
        self.config = SimpleNamespace(BATCH_SIZE=batch_size, NUM_CLASSES=num_classes)
        self.calls = []

    def detect(self, images, verbose=0):
        self.calls.append(len(images))
        return [self.answers.get(int(image[0, 0, 0]), detection([])) for image in images]


def perfect_answers(scenes=SCENES):
    return {i: detection(rects) for i, rects in enumerate(scenes)}


# -- results_to_coco / dataset_to_coco ----------------------------------------------------------

def test_results_to_coco_masks_round_trip_and_boxes_are_xywh():
    rng = np.random.default_rng(3)
    masks = rng.random((HEIGHT, WIDTH, 4)) > 0.6            # ragged shapes, not just rectangles
    result = {"rois": np.array([[1, 2, 11, 22], [0, 0, 60, 80], [5, 5, 6, 6], [30, 40, 50, 45]]),
              "class_ids": np.array([1, 3, 2, 1]), "scores": np.array([0.9, 0.8, 0.7, 0.6]), "masks": masks}
    coco = results_to_coco(7, result, category_ids={1: 101, 2: 102, 3: 103})
    json.dumps(coco)                                         # JSON-ready: counts are str
    assert [r["category_id"] for r in coco] == [101, 103, 102, 101]
    assert [r["image_id"] for r in coco] == [7] * 4
    assert coco[0]["bbox"] == [2.0, 1.0, 20.0, 10.0]
    assert coco[3]["bbox"] == [40.0, 30.0, 5.0, 20.0]
    assert [r["score"] for r in coco] == pytest.approx([0.9, 0.8, 0.7, 0.6])
    for n, r in enumerate(coco):
        rle = {"size": r["segmentation"]["size"], "counts": r["segmentation"]["counts"].encode()}
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), masks[:, :, n])
    back = coco_to_result(coco, HEIGHT, WIDTH)
    np.testing.assert_array_equal(back["masks"], masks)
    np.testing.assert_array_equal(back["rois"], result["rois"])


def test_results_to_coco_list_mapping_empty_and_errors():
    one = detection([(2, 1, 1, 5, 5)])
    assert results_to_coco(0, one, category_ids=[0, 11, 12])[0]["category_id"] == 12
    assert results_to_coco(0, one)[0]["category_id"] == 2
    assert results_to_coco(0, detection([])) == []
    with pytest.raises(ValueError, match="class id 2 has no COCO category"):
        results_to_coco(0, one, category_ids={1: 5})
    broken = dict(one, scores=np.array([0.5, 0.4]))
    with pytest.raises(ValueError, match="image 0: 1 rois, 1 class ids, 2 scores"):
        results_to_coco(0, broken)
    with pytest.raises(ValueError, match="lacks masks"):
        results_to_coco(0, {k: v for k, v in one.items() if k != "masks"})


def test_dataset_to_coco_areas_boxes_and_categories_by_hand():
    dataset = RectDataset()
    gt = dataset_to_coco(dataset)
    assert gt["categories"] == [{"id": 1, "name": "shirt"}, {"id": 2, "name": "skirt"}, {"id": 3, "name": "scarf"}]
    assert [im["id"] for im in gt["images"]] == [0, 1, 2, 3, 4]
    assert gt["images"][3]["source_id"] == "scene-3"
    assert all((im["height"], im["width"]) == (HEIGHT, WIDTH) for im in gt["images"])
    expected = [(i, c, (y2 - y1) * (x2 - x1), [x1, y1, x2 - x1, y2 - y1])
                for i, rects in enumerate(SCENES) for c, y1, x1, y2, x2 in rects]
    got = [(a["image_id"], a["category_id"], a["area"], a["bbox"]) for a in gt["annotations"]]
    assert got == expected
    ids = [a["id"] for a in gt["annotations"]]
    assert 0 not in ids and len(set(ids)) == len(ids)
    json.dumps(gt)
    subset = dataset_to_coco(dataset, image_ids=[3, 1])
    assert [im["id"] for im in subset["images"]] == [3, 1]
    assert len(subset["annotations"]) == 4


def test_dataset_to_coco_matches_a_coco_dataset_polygons():
    """A real CocoDataset: each GT mask decodes to the mask its polygon rasterises to."""
    polygon = [[10, 10, 60, 12, 40, 50, 12, 40]]
    coco = {"images": [{"id": 42, "file_name": "a.jpg", "width": WIDTH, "height": HEIGHT}],
            "annotations": [{"id": 1, "image_id": 42, "category_id": 2, "segmentation": polygon, "iscrowd": 0}],
            "categories": [{"id": 1, "name": "bag"}, {"id": 2, "name": "belt"}]}
    dataset = CocoDataset()
    dataset.load_coco(coco, "/nowhere", progress=False)
    dataset.prepare()
    gt = dataset_to_coco(dataset)
    expected = segmentation_to_mask(polygon, HEIGHT, WIDTH)
    annotation = gt["annotations"][0]
    rle = {"size": annotation["segmentation"]["size"], "counts": annotation["segmentation"]["counts"].encode()}
    np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), expected)
    assert annotation["area"] == expected.sum()
    assert annotation["category_id"] == 2 and gt["categories"][1]["name"] == "belt"
    assert gt["images"][0]["source_id"] == 42 and gt["images"][0]["file_name"] == "a.jpg"


# -- AP -------------------------------------------------------------------------------------------

def test_perfect_detections_score_one_and_are_batched():
    dataset = RectDataset()
    model = FakeModel(perfect_answers(), batch_size=2)
    scores = evaluate_model(model, dataset, progress=False)
    assert model.calls == [2, 2, 1]
    for iou_type in ("bbox", "segm"):
        assert scores.metrics[iou_type] == pytest.approx({"AP": 1.0, "AP50": 1.0, "AP75": 1.0})
        assert scores.per_class_ap[iou_type]["shirt"] == pytest.approx(1.0)
        assert scores.per_class_ap[iou_type]["skirt"] == pytest.approx(1.0)
        assert math.isnan(scores.per_class_ap[iou_type]["scarf"])      # no ground truth
        assert scores.stats[iou_type][0] == pytest.approx(1.0)        # COCOeval's own summary agrees
    assert (scores.num_images, scores.num_gt, scores.num_detections) == (5, 7, 7)
    assert scores.gt_counts == {"shirt": 4, "skirt": 3, "scarf": 0}
    summary = scores.summary()
    assert summary["segm_AP"] == pytest.approx(1.0) and summary["bbox_AP75"] == pytest.approx(1.0)
    assert summary["detections"] == 7
    json.dumps(summary, allow_nan=False)
    back = scores.detections(3)
    np.testing.assert_array_equal(back["masks"], dataset.load_mask(3)[0])
    np.testing.assert_array_equal(back["class_ids"], [1, 1, 2])


def test_image_ids_and_limit_pick_images():
    dataset = RectDataset()
    model = FakeModel(perfect_answers(), batch_size=3)
    scores = evaluate_model(model, dataset, image_ids=[3, 1, 0], limit=2, progress=False)
    assert model.calls == [2]
    assert (scores.num_images, scores.num_gt) == (2, 4)
    assert {r["image_id"] for r in scores.results} == {1, 3}


def test_detections_far_from_every_object_score_zero():
    scenes = [[(1, 0, 0, 10, 10)], [(2, 50, 70, 60, 80)]]
    dataset = RectDataset(scenes)
    answers = {0: detection([(1, 40, 60, 55, 75)]), 1: detection([(2, 0, 0, 12, 12)])}
    scores = evaluate_model(FakeModel(answers), dataset, progress=False)
    for iou_type in ("bbox", "segm"):
        assert scores.metrics[iou_type] == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}


def test_one_class_wrong_scores_zero_for_that_class_only():
    dataset = RectDataset(SCENES[:4])
    answers = perfect_answers(SCENES[:4])
    answers[2] = detection([(1, 0, 0, 60, 80)], scores=[0.5])      # the skirt of image 2 called a shirt
    scores = evaluate_model(FakeModel(answers), dataset, progress=False)
    for iou_type in ("bbox", "segm"):
        # skirt: 2 of 3 found, each ranked first -> precision 1 up to recall 2/3, nothing after
        recall_points = np.linspace(0, 1, 101)
        skirt_ap = np.mean([1.0 if r <= 2 / 3 else 0.0 for r in recall_points])
        assert scores.per_class_ap[iou_type]["skirt"] == pytest.approx(skirt_ap)
        assert scores.per_class_ap[iou_type]["shirt"] == pytest.approx(1.0)          # its false positive ranks last


def test_class_never_found_scores_zero_others_one():
    scenes = [[(1, 5, 5, 25, 30), (2, 30, 40, 55, 70)], [(2, 10, 10, 20, 20)]]
    dataset = RectDataset(scenes)
    answers = {0: detection([(1, 5, 5, 25, 30), (3, 30, 40, 55, 70)], scores=[1.0, 0.9]),
               1: detection([(3, 10, 10, 20, 20)], scores=[0.9])}     # every skirt called a scarf
    scores = evaluate_model(FakeModel(answers), dataset, progress=False)
    for iou_type in ("bbox", "segm"):
        assert scores.per_class_ap[iou_type]["shirt"] == pytest.approx(1.0)
        assert scores.per_class_ap[iou_type]["skirt"] == 0.0
        assert math.isnan(scores.per_class_ap[iou_type]["scarf"])     # detections, but no GT: not scored
        assert scores.metrics[iou_type]["AP"] == pytest.approx(0.5)


def test_no_detections_at_all():
    dataset = RectDataset()
    scores = evaluate_model(FakeModel({}), dataset, progress=False)
    assert scores.num_detections == 0 and scores.results == []
    for iou_type in ("bbox", "segm"):
        assert scores.metrics[iou_type] == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}
        assert scores.per_class_ap[iou_type]["shirt"] == 0.0
        assert math.isnan(scores.per_class_ap[iou_type]["scarf"])
    assert scores.detections(0)["masks"].shape == (HEIGHT, WIDTH, 0)


def test_no_ground_truth_and_no_detections_is_nan_not_a_crash():
    dataset = RectDataset([[], []])
    scores = evaluate_model(FakeModel({}), dataset, progress=False)
    assert math.isnan(scores.metrics["segm"]["AP"])
    assert scores.summary()["segm_AP"] is None


def test_interpolated_ap_of_a_ranked_list_by_hand():
    """Ranks TP (0.9), FP (0.8), TP (0.7) over 2 GT: COCO's 101-point interpolated precision."""
    scenes = [[(1, 0, 0, 20, 20)], [(1, 30, 30, 50, 50)]]
    dataset = RectDataset(scenes)
    answers = {0: detection([(1, 0, 0, 20, 20), (1, 40, 60, 50, 70)], scores=[0.9, 0.8]),
               1: detection([(1, 30, 30, 50, 50)], scores=[0.7])}
    scores = evaluate_model(FakeModel(answers), dataset, progress=False)
    # precision after each: 1, 1/2, 2/3 at recall 1/2, 1/2, 1; the envelope is 1 up to recall 1/2, then 2/3
    expected = np.mean([1.0 if r <= 0.5 else 2 / 3 for r in np.linspace(0, 1, 101)])
    for iou_type in ("bbox", "segm"):
        assert scores.per_class_ap[iou_type]["shirt"] == pytest.approx(expected)
        assert scores.metrics[iou_type]["AP"] == pytest.approx(expected)


def test_partial_overlap_counts_only_at_thresholds_below_its_iou():
    """A detection covering 72 of a 100-pixel object (IoU 0.72) is right at IoU 0.50..0.70 only."""
    dataset = RectDataset([[(1, 10, 10, 20, 20)]])
    answers = {0: detection([(1, 10, 10, 18, 19)])}          # 8 x 9 = 72 pixels inside the 10 x 10
    scores = evaluate_model(FakeModel(answers), dataset, progress=False)
    for iou_type in ("bbox", "segm"):
        assert scores.metrics[iou_type]["AP50"] == pytest.approx(1.0)
        assert scores.metrics[iou_type]["AP75"] == 0.0
        assert scores.metrics[iou_type]["AP"] == pytest.approx(5 / 10)   # 0.50, 0.55, 0.60, 0.65, 0.70


def test_evaluate_detections_leaves_inputs_alone_and_checks_them():
    dataset = RectDataset()
    gt = dataset_to_coco(dataset)
    results = results_to_coco(0, detection(SCENES[0]))
    before_gt, before_results = json.dumps(gt), json.dumps(results)
    scores = evaluate_detections(gt, results, iou_types=("segm",))
    assert scores.iou_types == ("segm",)
    assert json.dumps(gt) == before_gt and json.dumps(results) == before_results
    with pytest.raises(ValueError, match="image_id 99 is not in the ground truth"):
        evaluate_detections(gt, [dict(results[0], image_id=99)])
    with pytest.raises(ValueError, match="category_id 9 is not a ground-truth category"):
        evaluate_detections(gt, [dict(results[0], category_id=9)])
    with pytest.raises(ValueError, match="iou_types"):
        evaluate_detections(gt, results, iou_types=("keypoints",))
    small = dict(results[0], segmentation=mask_utils.encode(np.zeros((5, 5), dtype=np.uint8, order="F")))
    with pytest.raises(ValueError, match="mask size"):
        evaluate_detections(gt, [small])


def test_model_and_dataset_with_different_classes_is_an_error():
    with pytest.raises(ValueError, match="the model has 14 classes"):
        evaluate_model(FakeModel({}, num_classes=14), RectDataset(), progress=False)


def test_table_and_text():
    scores = evaluate_model(FakeModel(perfect_answers()), RectDataset(), progress=False)
    rows = scores.table()
    assert [row["class"] for row in rows] == list(CLASSES)
    assert rows[0] == {"class": "shirt", "bbox_AP": pytest.approx(1.0), "segm_AP": pytest.approx(1.0), "gt": 4}
    text = str(scores)
    assert "5 images, 7 ground-truth instances, 7 detections" in text
    assert "mask AP" in text and "n/a" in text


# -- comparing models, seasons ----------------------------------------------------------------------

def fake_scores(per_class):
    return SimpleNamespace(per_class_ap={"segm": per_class}, class_names=list(per_class), iou_types=("segm",))


def test_compare_per_class_groups_seasons_by_their_mean():
    model_1 = fake_scores({"skirt": 0.6, "scarf/tie": 0.2, "bag": 0.5})
    model_2 = fake_scores({"skirt_yaz": 0.9, "skirt_kis": 0.5, "skirt_4mev": float("nan"),
                           "scarf_tie_kis": 0.3, "dress_yaz": 0.4})
    rows = compare_per_class(model_1, model_2, mapping=garment_class)
    by_class = {row["class"]: row for row in rows}
    assert [row["class"] for row in rows] == ["skirt", "scarf/tie", "bag", "dress"]
    assert by_class["skirt"]["model-2"] == pytest.approx(0.7)          # mean of 0.9 and 0.5; NaN left out
    assert by_class["scarf/tie"] == {"class": "scarf/tie", "model-1": 0.2, "model-2": pytest.approx(0.3)}
    assert math.isnan(by_class["bag"]["model-2"]) and math.isnan(by_class["dress"]["model-1"])
    as_dict = compare_per_class(model_1, model_2, names=("a", "b"), mapping={
        "skirt_yaz": "skirt", "skirt_kis": "skirt", "skirt_4mev": "skirt", "scarf_tie_kis": "scarf/tie",
        "dress_yaz": "dress"})
    assert as_dict[0] == {"class": "skirt", "a": 0.6, "b": pytest.approx(0.7)}
    with pytest.raises(ValueError, match="was not evaluated for 'bbox'"):
        compare_per_class(model_1, model_2, iou_type="bbox")


def test_labels_split_into_garment_and_season():
    assert garment_class("scarf_tie_kis") == "scarf_tie" and season_of("scarf_tie_kis") == "kis"
    assert garment_class("skirt_4mev") == "skirt" and season_of("skirt_yaz") == "yaz"
    with pytest.raises(ValueError, match="'skirt' is not '<class>_<season>'"):
        season_of("skirt")


def test_predicted_season_takes_the_best_detection():
    names = ["BG", "skirt_yaz", "skirt_kis", "scarf_tie_sonb", "top_ilkb"]
    result = {"class_ids": np.array([1, 3, 2, 4]), "scores": np.array([0.6, 0.95, 0.8, 0.7])}
    assert predicted_season(result, names) == "sonb"
    assert predicted_season(result, names, target_class="skirt") == "kis"
    assert predicted_season(result, names, target_class="scarf/tie") == "sonb"
    assert predicted_season(result, names, target_class="dress") is None
    assert predicted_season({"class_ids": np.array([]), "scores": np.array([])}, names) is None


def test_season_confusion_against_a_hand_count():
    seasons = ["yaz", "kis", "4mev"]
    truth = ["yaz", "yaz", "yaz", "kis", "kis", "4mev", "4mev", "4mev"]
    guess = ["yaz", "kis", None, "kis", "kis", "yaz", None, "4mev"]
    matrix, labels, accuracy = season_confusion(truth, guess, seasons)
    assert labels == ["yaz", "kis", "4mev", "none"]
    np.testing.assert_array_equal(matrix, [[1, 1, 0, 1],
                                           [0, 2, 0, 0],
                                           [1, 0, 1, 1]])
    assert matrix.dtype.kind == "i"
    assert accuracy == pytest.approx(4 / 8)
    with pytest.raises(ValueError, match="item 1: predicted season 'bahar' is not one of"):
        season_confusion(["yaz", "kis"], ["yaz", "bahar"], seasons)
    with pytest.raises(ValueError, match="2 true seasons but 1 predictions"):
        season_confusion(["yaz", "kis"], ["yaz"], seasons)
    empty, _, no_accuracy = season_confusion([], [], seasons)
    assert empty.shape == (3, 4) and math.isnan(no_accuracy)
