"""helpers.compare: both models scored on the named garment, and model-2's seasons, with fake models.

The fake models answer from the synthetic set's truth, so the expected scores are known:
exact masks give AP 1, a wrong season gives season AP 0 while the garment AP stays 1.
"""
import numpy as np
import pytest

from helpers.compare import compare_models_on_named_garments, garment_of, truth_as_labels
from helpers.datasets import load_coco_dataset, segmentation_to_mask
from helpers.io import read_json
from helpers.modanet import CLASS_NAMES, SEASONS
from helpers.sample import generate_custom_set
from helpers.seasons import label_name, parse_custom_name

SEASON_LIST = list(SEASONS)


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom")
    generate_custom_set(root, ["skirt", "top"], per_label=1, progress=False)
    truth = read_json(root / "custom" / "truth.json")
    labels = sorted({label_name(parse_custom_name(im["file_name"]).class_name, im["season"]) for im in truth["images"]})
    label_ids = {name: i + 1 for i, name in enumerate(labels)}
    names = {c["id"]: c["name"] for c in truth["categories"]}
    annotations = []
    for image in truth["images"]:
        for ann in truth["annotations"]:
            if ann["image_id"] == image["id"] and names[ann["category_id"]] == image["target_class"]:
                label = label_name(image["target_class"], image["season"])
                annotations.append({**ann, "id": len(annotations) + 1, "category_id": label_ids[label]})
    autolabels = {"images": truth["images"], "annotations": annotations,
                  "categories": [{"id": i, "name": n, "supercategory": garment_of(n)} for n, i in label_ids.items()]}
    dataset = load_coco_dataset(autolabels, root / "custom" / "images")
    return truth, autolabels, dataset


class FakeModel:
    """detect() answers from a table keyed by the image's bytes."""

    def __init__(self, answers):
        self.answers = answers

    def detect(self, images):
        return [self.answers[image.tobytes()] for image in images]


def answer(masks, class_ids):
    masks = np.stack(masks, axis=-1) if masks else np.zeros((1, 1, 0), bool)
    rois = np.array([[*np.argwhere(m).min(0), *(np.argwhere(m).max(0) + 1)] for m in np.moveaxis(masks, -1, 0)]
                    ).reshape(-1, 4)
    return {"rois": rois, "class_ids": np.array(class_ids, np.int32), "scores": np.ones(len(class_ids), np.float32),
            "masks": masks}


def fake_models(truth, dataset, season_shift=0):
    """Model-1 sees every garment (class ids in REVERSED order); model-2 the named one, season shifted."""
    classes1 = ["BG"] + list(reversed(CLASS_NAMES))
    classes2 = dataset.class_names
    names = {c["id"]: c["name"] for c in truth["categories"]}
    by_file = {dataset.image_info[i]["file_name"]: i for i in dataset.image_ids}
    answers1, answers2 = {}, {}
    for image in truth["images"]:
        picture = dataset.load_image(by_file[image["file_name"]])
        anns = [a for a in truth["annotations"] if a["image_id"] == image["id"]]
        masks = [segmentation_to_mask(a["segmentation"], image["height"], image["width"]) for a in anns]
        answers1[picture.tobytes()] = answer(masks, [classes1.index(names[a["category_id"]]) for a in anns])
        season = SEASON_LIST[(SEASON_LIST.index(image["season"]) + season_shift) % len(SEASON_LIST)]
        target = [m for m, a in zip(masks, anns) if names[a["category_id"]] == image["target_class"]]
        answers2[picture.tobytes()] = answer(target, [classes2.index(label_name(image["target_class"], season))])
    return FakeModel(answers1), classes1, FakeModel(answers2), classes2


def test_truth_as_labels_keeps_the_named_garment_with_its_label(custom):
    truth, autolabels, _ = custom
    labels = truth_as_labels(truth, autolabels)
    assert labels["categories"] == autolabels["categories"]
    assert len(labels["images"]) == len(truth["images"]) == len(labels["annotations"])
    by_id = {c["id"]: c["name"] for c in labels["categories"]}
    for ann in labels["annotations"]:
        image = next(im for im in labels["images"] if im["id"] == ann["image_id"])
        assert by_id[ann["category_id"]] == label_name(image["target_class"], image["season"])


def test_exact_answers_score_one_and_seasons_all_right(custom):
    truth, _, dataset = custom
    model1, classes1, model2, classes2 = fake_models(truth, dataset)
    result = compare_models_on_named_garments(model1, classes1, model2, classes2, dataset, truth=truth)
    summary = result.summary()
    assert summary["truth"] == "hidden truth" and summary["images"] == len(truth["images"])
    assert summary["model1_segm_AP50"] == pytest.approx(1.0)
    assert summary["model2_segm_AP50"] == pytest.approx(1.0)
    assert summary["model2_season_segm_AP50"] == pytest.approx(1.0)
    assert summary["season_accuracy"] == 1.0
    assert {r["class"] for r in result.rows} == {"skirt", "top"}
    assert "right season on 100%" in result.conclusion()


def test_wrong_seasons_keep_garment_ap_but_lose_season_ap(custom):
    truth, _, dataset = custom
    model1, classes1, model2, classes2 = fake_models(truth, dataset, season_shift=1)
    result = compare_models_on_named_garments(model1, classes1, model2, classes2, dataset)   # against auto-labels
    summary = result.summary()
    assert summary["truth"] == "auto-labels"
    assert summary["model2_segm_AP50"] == pytest.approx(1.0)
    assert summary["model2_season_segm_AP50"] == pytest.approx(0.0)
    assert summary["season_accuracy"] == 0.0
    matrix, labels, _ = result.season_confusion
    assert matrix.sum() == len(truth["images"]) and np.trace(matrix) == 0
    assert "model-2 + season" in str(result)


def test_asking_for_the_season_never_raises_a_garments_ap(custom):
    """A confident detection of the wrong season is a false positive for '+ season', not dropped."""
    truth, _, dataset = custom
    model1, classes1, model2, classes2 = fake_models(truth, dataset)
    for key, right in model2.answers.items():        # add a wrong-season, wrong-place detection ranked first
        mask = right["masks"][..., 0]
        elsewhere = np.roll(mask, mask.shape[1] // 2, axis=1) & ~mask
        label = classes2[int(right["class_ids"][0])]
        garment, season = label.rsplit("_", 1)
        other = next(classes2.index(c) for c in classes2[1:] if c.startswith(garment + "_") and c != label) \
            if any(c.startswith(garment + "_") and c != label for c in classes2[1:]) else int(right["class_ids"][0])
        wrong = answer([elsewhere], [other])
        model2.answers[key] = {"rois": np.concatenate([wrong["rois"], right["rois"]]),
                               "class_ids": np.concatenate([wrong["class_ids"], right["class_ids"]]),
                               "scores": np.array([0.9, 0.5], np.float32),
                               "masks": np.concatenate([wrong["masks"], right["masks"]], axis=-1)}
    result = compare_models_on_named_garments(model1, classes1, model2, classes2, dataset, truth=truth)
    summary = result.summary()
    assert summary["model2_segm_AP50"] < 0.99                      # the confident miss costs garment AP ...
    assert summary["model2_season_segm_AP50"] <= summary["model2_segm_AP50"] + 1e-9   # ... and at least as much here
    for row in result.rows:
        assert row["model-2 + season"] <= row["model-2"] + 1e-9, row
    text = str(result)
    assert "all (AP)" in text and "all (AP50)" in text


@pytest.mark.parametrize("m2, verdict", [((0.5, 0.9), "better than its teacher by both"),
                                          ((0.1, 0.3), "no better than its teacher"),
                                          ((0.3, 0.9), "ahead of its teacher by AP50 but behind by AP"),
                                          ((0.5, 0.3), "ahead of its teacher by AP but behind by AP50")])
def test_the_conclusions_verdict_follows_both_ap_and_ap50(custom, m2, verdict):
    truth, _, dataset = custom
    model1, classes1, model2, classes2 = fake_models(truth, dataset)
    result = compare_models_on_named_garments(model1, classes1, model2, classes2, dataset, truth=truth)
    result.model1.metrics["segm"].update(AP=0.4, AP50=0.6)
    result.model2.metrics["segm"].update(AP=m2[0], AP50=m2[1])
    assert verdict in result.conclusion()
