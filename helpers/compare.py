"""Model-1 against model-2 on held-out custom photos (notebook 07), and the truth they are scored on.

Both models can answer one question: *where is the garment this photo is named after?*
Model-1 answers with its detections of that class, model-2 with its detections of any season
of that garment. `compare_models_on_named_garments` scores both answers with COCO mask AP per
garment, adds model-2's AP when the season must be right too, and model-2's season confusion
against the file names. `truth_as_labels` turns the synthetic set's hidden truth into the
`<class>_<season>` labels that model-2 should have produced, for scoring against the truth.
"""
from dataclasses import dataclass

import numpy as np

from helpers.evaluate import (compare_per_class, dataset_to_coco, evaluate_detections, predicted_season,
                              results_to_coco, season_confusion)
from helpers.modanet import SEASONS, class_slug
from helpers.repair import repair_coco
from helpers.seasons import canonical_class, label_name, parse_custom_name, parse_label


def truth_as_labels(truth_coco, labels_coco):
    """The truth of `labels_coco`'s images as `<class>_<season>` labels, in its category order.

    truth_coco: the synthetic custom set's truth (ModaNet categories; each image names its
    "target_class" and "season"). labels_coco: auto-labels (e.g. a split of notebook 05),
    whose categories are labels. Each of its images gets the truth instance(s) of the named
    garment, labelled from the file name. Image ids and file names follow `labels_coco`.
    The truth is repaired first (`helpers.repair.repair_coco`): on real ModaNet photos it holds
    ModaNet's exact duplicates, which no detector could match twice.
    """
    truth_coco, _ = repair_coco(truth_coco)
    label_ids = {c["name"]: c["id"] for c in labels_coco["categories"]}
    truth_images = {im["file_name"]: im for im in truth_coco["images"]}
    truth_names = {c["id"]: c["name"] for c in truth_coco["categories"]}
    by_image = {}
    for ann in truth_coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    images, annotations = [], []
    for image in labels_coco["images"]:
        truth_image = truth_images.get(image["file_name"])
        if truth_image is None:
            raise ValueError(f"{image['file_name']}: not in the truth file")
        named = parse_custom_name(image["file_name"])
        label = label_name(named.class_name, named.season)
        if label not in label_ids:
            continue
        images.append(dict(image))
        for ann in by_image.get(truth_image["id"], []):
            if truth_names[ann["category_id"]] == named.class_name:
                annotations.append({**ann, "id": len(annotations) + 1, "image_id": image["id"],
                                    "category_id": label_ids[label]})
    return {"images": images, "annotations": annotations, "categories": list(labels_coco["categories"]),
            "info": dict(labels_coco.get("info", {}))}


def garment_of(class_name):
    """The ModaNet garment of a model-1 class ('scarf/tie') or a model-2 label ('scarf_tie_kis')."""
    try:
        return canonical_class(class_name)
    except ValueError:
        return parse_label(class_name)[0]


def _keep(result, wanted):
    """The detections of `result` whose index is in `wanted` (a boolean array)."""
    return {"rois": result["rois"][wanted], "class_ids": result["class_ids"][wanted],
            "scores": result["scores"][wanted], "masks": result["masks"][..., wanted]}


def _named_results(image_id, result, class_names, target, category_of, season=None):
    """COCO results of the detections of garment `target` only, relabelled by `category_of`.

    With `season`, a detection of another season keeps its place in the ranking but its mask is
    emptied: it matches nothing and counts as a false positive. Asking for the season as well can
    then only lower a garment's AP, never raise it (dropping such detections instead would remove
    false positives and could).
    """
    names = [class_names[int(i)] for i in result["class_ids"]]
    wanted = np.array([garment_of(n) == target for n in names], dtype=bool)
    kept = _keep(result, wanted)
    kept_names = [class_names[int(i)] for i in kept["class_ids"]]
    if season is not None:
        wrong = np.array([parse_label(n)[1] != season for n in kept_names], dtype=bool)
        kept["masks"] = np.where(wrong[None, None, :], False, kept["masks"].astype(bool))
    categories = [category_of(n) for n in kept_names]
    return results_to_coco(image_id, {**kept, "class_ids": np.arange(len(categories))}, categories)


@dataclass
class NamedGarmentComparison:
    """What notebook 07 shows: per-garment AP of both models and model-2's seasons."""
    rows: list                  # {"class", "model-1", "model-2", "model-2 + season"}
    columns: tuple
    model1: object              # CocoScores per garment
    model2: object              # CocoScores per garment (season ignored)
    model2_seasons: object      # CocoScores per garment, a detection of the wrong season a false positive
    season_confusion: tuple     # (matrix, labels, accuracy)
    truth_source: str

    def summary(self):
        """Flat numbers for the metrics file."""
        return {"truth": self.truth_source, "images": self.model1.num_images,
                "model1_segm_AP": self.model1.metrics["segm"]["AP"],
                "model1_segm_AP50": self.model1.metrics["segm"]["AP50"],
                "model2_segm_AP": self.model2.metrics["segm"]["AP"],
                "model2_segm_AP50": self.model2.metrics["segm"]["AP50"],
                "model2_season_segm_AP50": self.model2_seasons.metrics["segm"]["AP50"],
                "season_accuracy": float(self.season_confusion[2])}

    def conclusion(self):
        """Three sentences whose numbers come from this comparison."""
        s = self.summary()
        matrix, labels, accuracy = self.season_confusion
        missed = int(matrix[:, -1].sum())
        chance = 1 / (len(labels) - 1)
        return (f"On {s['images']} held-out photos (scored against the {self.truth_source}), model-1 finds the named "
                f"garment with mask AP50 {s['model1_segm_AP50']:.3f} (AP {s['model1_segm_AP']:.3f}) and model-2 with "
                f"{s['model2_segm_AP50']:.3f} (AP {s['model2_segm_AP']:.3f}): model-2, trained on model-1's "
                f"auto-labels, is {self._verdict(s)} at finding garments.\n"
                f"Asked for the season as well, model-2 reaches AP50 {s['model2_season_segm_AP50']:.3f}.\n"
                f"Its most confident detection has the right season on {accuracy:.0%} of the photos "
                f"(chance: {chance:.0%}); on {missed} photo(s) it found no such garment at all."
                + (f"\nWith only {s['images']} photos, each figure moves a lot with a single photo: read them as "
                   "a direction, not a measurement." if s["images"] < 50 else ""))

    @staticmethod
    def _verdict(s):
        """Model-2 against its teacher, by AP50 and by AP: both agree, or the sentence says they do not."""
        ahead = {m: s[f"model2_segm_{m}"] > s[f"model1_segm_{m}"] for m in ("AP50", "AP")}
        if all(ahead.values()):
            return "better than its teacher by both AP50 and AP"
        if not any(ahead.values()):
            return "no better than its teacher, by AP50 or by AP"
        up, down = ("AP", "AP50") if ahead["AP"] else ("AP50", "AP")
        return f"ahead of its teacher by {up} but behind by {down} (neither model is clearly better)"

    def __str__(self):
        width = max([len(str(r["class"])) for r in self.rows] + [len("all (AP50)")]) + 2
        lines = [f"mask AP (IoU 0.50:0.95) per garment ({self.model1.num_images} photos, truth: {self.truth_source})",
                 f"  {'garment':<{width}}" + "".join(f"{c:>18}" for c in self.columns)]
        for row in self.rows:
            cells = "".join(f"{row[c]:>18.3f}" if not np.isnan(row[c]) else f"{'-':>18}" for c in self.columns)
            lines.append(f"  {row['class']:<{width}}{cells}")
        for metric in ("AP", "AP50"):
            lines.append(f"  {f'all ({metric})':<{width}}" + "".join(
                f"{s.metrics['segm'][metric]:>18.3f}" for s in (self.model1, self.model2, self.model2_seasons)))
        return "\n".join(lines)


def compare_models_on_named_garments(model1, classes1, model2, classes2, dataset, truth=None, progress=False):
    """Score model-1 and model-2 on finding each photo's named garment; see the module docstring.

    dataset: held-out custom photos with their `<class>_<season>` labels (e.g. the test split
    of notebook 05, loaded with `load_coco_dataset`). truth: the synthetic set's truth COCO, or
    None to score against the dataset's own labels (a real custom set has nothing better).
    """
    labels_gt = dataset_to_coco(dataset, progress=progress)   # category ids = the dataset's class ids
    source = "auto-labels"
    if truth is not None:
        labels_gt = truth_as_labels(truth, labels_gt)
        source = "hidden truth"
    garments = sorted({garment_of(c["name"]) for c in labels_gt["categories"]})
    garment_id = {g: i + 1 for i, g in enumerate(garments)}
    garment_gt = {**labels_gt, "categories": [{"id": garment_id[g], "name": g} for g in garments],
                  "annotations": [{**a, "category_id": garment_id[garment_of(_name(labels_gt, a))]}
                                  for a in labels_gt["annotations"]]}

    runs = {"model-1": [], "model-2": [], "model-2 + season": []}
    true_seasons, predicted = [], []
    images = labels_gt["images"]
    by_file = {dataset.image_info[i]["file_name"]: i for i in dataset.image_ids}
    for image in images:
        picture = dataset.load_image(by_file[image["file_name"]])
        named = parse_custom_name(image["file_name"])
        result1, result2 = model1.detect([picture])[0], model2.detect([picture])[0]
        to_garment = lambda name: garment_id.get(garment_of(name), 0)
        runs["model-1"] += _named_results(image["id"], result1, classes1, named.class_name, to_garment)
        runs["model-2"] += _named_results(image["id"], result2, classes2, named.class_name, to_garment)
        runs["model-2 + season"] += _named_results(image["id"], result2, classes2, named.class_name, to_garment,
                                                   season=named.season)
        true_seasons.append(named.season)
        predicted.append(predicted_season(result2, classes2, target_class=named.class_name))
    for name in runs:   # a detection of a label with no ground truth category cannot be scored
        runs[name] = [r for r in runs[name] if r["category_id"] != 0]
    scores1 = evaluate_detections(garment_gt, runs["model-1"], ("segm",))
    scores2 = evaluate_detections(garment_gt, runs["model-2"], ("segm",))
    scores2s = evaluate_detections(garment_gt, runs["model-2 + season"], ("segm",))
    rows = compare_per_class(scores1, scores2, names=("model-1", "model-2"))
    with_season = compare_per_class(scores1, scores2s, names=("model-1", "model-2 + season"))
    season_ap = {class_slug(r["class"]): r["model-2 + season"] for r in with_season}
    for row in rows:
        row["model-2 + season"] = season_ap.get(class_slug(row["class"]), float("nan"))
    confusion = season_confusion(true_seasons, predicted, list(SEASONS))
    return NamedGarmentComparison(rows, ("model-1", "model-2", "model-2 + season"), scores1, scores2, scores2s,
                                  confusion, source)


def _name(coco, annotation):
    return next(c["name"] for c in coco["categories"] if c["id"] == annotation["category_id"])

