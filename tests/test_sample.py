"""Tests for helpers.sample: ModaNet's exact form, exact masks, every class, seasons that can be told apart."""
import json
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from helpers import profiles
from helpers import sample as sample_mod
from helpers.modanet import CLASS_NAMES, INFO, SEASONS, categories, class_slug
from helpers.sample import (build_sample, generate_custom_set, generate_modanet_sample, mask_polygons,
                            parse_custom_name)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
MODANET_SUBSET = FIXTURES / "modanet" / "modanet_coco_subset.json"

TOP_KEYS = {"year", "categories", "licenses", "type", "info", "images", "annotations"}
IMAGE_KEYS = {"file_name", "width", "id", "license", "height"}
ANNOTATION_KEYS = {"segmentation", "area", "iscrowd", "image_id", "bbox", "category_id", "id"}
SIZE = (128, 192)
N_SAMPLE = 120
CUSTOM_CLASSES = ("top", "skirt", "bag")
PER_LABEL = 4


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    summary = generate_modanet_sample(root, N_SAMPLE, size=SIZE, seed=42, progress=False, return_label_maps=True)
    train = json.loads((root / "annotations" / "modanet2018_instances_train.json").read_text())
    val = json.loads((root / "annotations" / "modanet2018_instances_val.json").read_text())
    return root, summary, train, val


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom")
    summary = generate_custom_set(root, CUSTOM_CLASSES, PER_LABEL, size=SIZE, seed=43, progress=False,
                                  return_label_maps=True)
    truth = json.loads((root / "custom" / "truth.json").read_text())
    return root, summary, truth


def rasterize(ann, height, width):
    """The annotation's mask, by pycocotools alone."""
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], height, width))) > 0


# --- ModaNet's form -------------------------------------------------------------------------

def test_top_level_fields_and_categories_are_modanets(sample):
    _, _, train, val = sample
    assert set(train) == TOP_KEYS
    assert train["categories"] == categories()
    assert [c["id"] for c in train["categories"]] == list(range(1, 14))
    assert train["type"] == "instances" and isinstance(train["year"], int)
    assert set(train["info"]) == set(INFO) and "synthetic" in train["info"]["description"].lower()
    assert train["licenses"] and all(set(lic) == {"url", "id", "name"} for lic in train["licenses"])
    licence_ids = {lic["id"] for lic in train["licenses"]}
    for image in train["images"] + val["images"]:
        assert set(image) == IMAGE_KEYS
        assert image["license"] in licence_ids
        assert (image["width"], image["height"]) == SIZE
    for ann in train["annotations"]:
        assert set(ann) == ANNOTATION_KEYS
        assert ann["iscrowd"] == 0


def test_same_keys_as_the_real_modanet_subset(sample):
    if not MODANET_SUBSET.is_file():
        pytest.skip("ModaNet fixture not present")
    real = json.loads(MODANET_SUBSET.read_text())
    _, _, train, _ = sample
    assert list(train) == list(real)
    assert list(train["images"][0]) == list(real["images"][0])
    assert list(train["annotations"][0]) == list(real["annotations"][0])
    assert train["categories"] == real["categories"]
    assert set(train["licenses"][0]) == set(real["licenses"][0])
    assert type(train["annotations"][0]["area"]) is type(real["annotations"][0]["area"])


def test_ids_unique_and_files_written(sample):
    root, summary, train, val = sample
    image_ids = [im["id"] for im in train["images"] + val["images"]]
    assert len(image_ids) == len(set(image_ids)) == N_SAMPLE + summary["val_images"]
    ann_ids = [a["id"] for a in train["annotations"]]
    assert len(ann_ids) == len(set(ann_ids))
    train_ids = {im["id"] for im in train["images"]}
    assert {a["image_id"] for a in train["annotations"]} <= train_ids
    for image in train["images"] + val["images"]:
        with Image.open(root / "images" / image["file_name"]) as im:
            assert im.format == "JPEG" and im.size == (image["width"], image["height"])


def test_val_file_has_images_only(sample):
    _, summary, train, val = sample
    assert set(val) == TOP_KEYS and val["annotations"] == []
    assert 1 <= len(val["images"]) == summary["val_images"]
    assert not {im["id"] for im in val["images"]} & {im["id"] for im in train["images"]}


def test_bbox_is_polygon_extent_and_area_is_pycocotools(sample):
    _, _, train, _ = sample
    width, height = SIZE
    for ann in train["annotations"]:
        points = [v for poly in ann["segmentation"] for v in poly]
        assert all(type(v) is int for v in points)
        assert all(len(poly) >= 6 and len(poly) % 2 == 0 for poly in ann["segmentation"])
        xs, ys = points[0::2], points[1::2]
        assert 0 <= min(xs) and max(xs) <= width and 0 <= min(ys) and max(ys) <= height
        assert ann["bbox"] == [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], height, width))
        assert ann["area"] == int(mask_utils.area(rle)) > 0
        # pycocotools' own box of the mask lies inside the polygon's extent
        bx, by, bw, bh = mask_utils.toBbox(rle)
        assert bx >= min(xs) and by >= min(ys) and bx + bw <= max(xs) and by + bh <= max(ys)


def test_every_class_is_common_and_multi_part_annotations_exist(sample):
    _, summary, train, _ = sample
    images_with = {name: set() for name in CLASS_NAMES}
    for ann in train["annotations"]:
        images_with[CLASS_NAMES[ann["category_id"] - 1]].add(ann["image_id"])
    for name in CLASS_NAMES:
        assert len(images_with[name]) >= 0.1 * N_SAMPLE, name
    assert summary["images_per_class"] == {n: len(ids) for n, ids in images_with.items()}
    multi = Counter(CLASS_NAMES[a["category_id"] - 1] for a in train["annotations"] if len(a["segmentation"]) > 1)
    assert multi["footwear"] + multi["boots"] > 0          # a pair of shoes is one annotation, two polygons
    assert summary["multi_part_annotations"] == sum(multi.values())


def test_annotations_match_the_visible_garment_pixels(sample):
    _, summary, train, _ = sample
    width, height = SIZE
    by_image = {}
    for ann in train["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    ious = []
    for image in train["images"]:
        label_map = summary["label_maps"][image["file_name"]]
        anns = by_image.get(image["id"], [])
        assert set(np.unique(label_map)) - {0} == {a["id"] for a in anns}
        for ann in anns:
            drawn = rasterize(ann, height, width)
            seen = label_map == ann["id"]
            ious.append((drawn & seen).sum() / (drawn | seen).sum())
    assert min(ious) >= 0.9
    assert np.mean(ious) >= 0.99


def test_garment_pixels_show_their_garment(sample):
    """The JPEG really shows the garments where the labels say: a garment's pixels differ
    from the pixels just outside its box more than JPEG noise would explain."""
    root, summary, train, _ = sample
    image = train["images"][0]
    rgb = np.asarray(Image.open(root / "images" / image["file_name"]), dtype=float)
    label_map = summary["label_maps"][image["file_name"]]
    assert (label_map > 0).mean() > 0.05
    background = rgb[label_map == 0].mean(axis=0)
    garments = rgb[label_map > 0]
    assert np.abs(garments - background).mean() > 10


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    def draw(folder, seed):
        generate_modanet_sample(tmp_path / folder, 5, size=SIZE, seed=seed, progress=False)
        text = (tmp_path / folder / "annotations" / "modanet2018_instances_train.json").read_text()
        pixels = [np.asarray(Image.open(p)) for p in sorted((tmp_path / folder / "images").glob("*.jpg"))]
        return text, pixels

    text_a, pixels_a = draw("a", 7)
    text_b, pixels_b = draw("b", 7)
    text_c, pixels_c = draw("c", 8)
    assert text_a == text_b
    assert len(pixels_a) == len(pixels_b) and all(np.array_equal(p, q) for p, q in zip(pixels_a, pixels_b))
    assert text_a != text_c
    assert not np.array_equal(pixels_a[0], pixels_c[0])


def test_mask_polygons_reproduce_any_mask_exactly():
    rng = np.random.default_rng(0)
    for _ in range(150):
        h, w = rng.integers(2, 24, 2)
        mask = rng.random((h, w)) < rng.uniform(0.2, 0.8)
        if not mask.any():
            continue
        polygons = mask_polygons(mask)
        drawn = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))) > 0
        assert np.array_equal(drawn, mask)


@pytest.mark.parametrize("call, message", [
    (lambda root: generate_modanet_sample(root, 0, progress=False), "n_images"),
    (lambda root: generate_modanet_sample(root, 2, size=(10, 10), progress=False), "too small"),
    (lambda root: generate_custom_set(root, ["hat"], 1, progress=False), "Unknown class 'hat'"),
    (lambda root: generate_custom_set(root, ["bag"], 0, progress=False), "per_label"),
])
def test_bad_arguments_are_clear_errors(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path)


# --- the custom season set ---------------------------------------------------------------------

def test_custom_names_and_truth(custom):
    root, summary, truth = custom
    assert set(truth) == TOP_KEYS and truth["categories"] == categories()
    files = sorted(p.name for p in (root / "custom" / "images").glob("*.jpg"))
    assert len(files) == len(CUSTOM_CLASSES) * len(SEASONS) * PER_LABEL == summary["images"]
    assert sorted(im["file_name"] for im in truth["images"]) == files
    labels = Counter()
    targets = {}
    for ann in truth["annotations"]:
        targets.setdefault(ann["image_id"], set()).add(CLASS_NAMES[ann["category_id"] - 1])
    for image in truth["images"]:
        name, season, n = parse_custom_name(image["file_name"])
        assert image["file_name"] == f"{class_slug(name)}_{season}_{n}.jpg"
        assert (image["target_class"], image["season"]) == (name, season)
        assert name in targets[image["id"]]
        labels[(name, season)] += 1
        assert 1 <= n <= PER_LABEL
    assert set(labels) == {(c, s) for c in CUSTOM_CLASSES for s in SEASONS}
    assert set(labels.values()) == {PER_LABEL}
    ids = [a["id"] for a in truth["annotations"]]
    assert len(ids) == len(set(ids))


def test_custom_truth_matches_visible_pixels(custom):
    _, summary, truth = custom
    width, height = SIZE
    files = {im["id"]: im["file_name"] for im in truth["images"]}
    for image in truth["images"]:                        # every garment drawn is annotated
        ids = {a["id"] for a in truth["annotations"] if a["image_id"] == image["id"]}
        assert set(np.unique(summary["label_maps"][image["file_name"]])) - {0} == ids
    for ann in truth["annotations"]:
        seen = summary["label_maps"][files[ann["image_id"]]] == ann["id"]
        drawn = rasterize(ann, height, width)
        assert (drawn & seen).sum() / (drawn | seen).sum() >= 0.9


def test_parse_custom_name():
    assert parse_custom_name("scarf_tie_kis_3.jpg") == ("scarf/tie", "kis", 3)
    assert parse_custom_name("bag_4mev_12.jpg") == ("bag", "4mev", 12)
    for bad in ("bag_winter_1.jpg", "bag_kis.jpg", "hat_kis_1.jpg", "bag_kis_0.jpg"):
        with pytest.raises(ValueError):
            parse_custom_name(bad)


def test_seasons_separable_by_mean_garment_colour(custom):
    """Leave-one-out nearest centroid on the target garment's mean colour in the JPEG."""
    root, _, truth = custom
    width, height = SIZE
    target_ann = {}
    for ann in truth["annotations"]:
        target_ann.setdefault(ann["image_id"], []).append(ann)
    features, seasons = [], []
    for image in truth["images"]:
        ann = max((a for a in target_ann[image["id"]] if CLASS_NAMES[a["category_id"] - 1] == image["target_class"]),
                  key=lambda a: a["area"])
        rgb = np.asarray(Image.open(root / "custom" / "images" / image["file_name"]), dtype=float)
        features.append(rgb[rasterize(ann, height, width)].mean(axis=0))
        seasons.append(image["season"])
    features, seasons = np.array(features), np.array(seasons)
    codes = list(SEASONS)
    right = 0
    for i in range(len(features)):
        others = np.arange(len(features)) != i
        centroids = np.array([features[others & (seasons == s)].mean(axis=0) for s in codes])
        guess = codes[int(np.argmin(((centroids - features[i]) ** 2).sum(axis=1)))]
        right += guess == seasons[i]
    assert right / len(features) >= 0.9


# --- build_sample and the command line ----------------------------------------------------------

def small_profile(**changes):
    return replace(profiles.SMOKE, sample_images=6, custom_per_label=1,
                   custom_classes=("top", "scarf/tie"), **changes)


def test_build_sample_skips_rerun_and_rebuilds_on_change(tmp_path):
    profile = small_profile()
    first = build_sample(profile, progress=False, root=tmp_path)
    manifest_path = tmp_path / "sample_manifest.json"
    train_path = tmp_path / "annotations" / "modanet2018_instances_train.json"
    assert first["skipped"] is False and manifest_path.is_file()
    assert first["modanet_sample"]["images"] == 6 and first["custom_set"]["images"] == 2 * len(SEASONS)
    assert (tmp_path / "custom" / "images" / "scarf_tie_kis_1.jpg").is_file()
    stamp = (manifest_path.stat().st_mtime_ns, train_path.stat().st_mtime_ns)
    os.utime(train_path, ns=(1, 1))                      # a rebuild would rewrite it

    again = build_sample(profile, progress=False, root=tmp_path)
    assert again["skipped"] is True and again["parameters"] == first["parameters"]
    assert manifest_path.stat().st_mtime_ns == stamp[0] and train_path.stat().st_mtime_ns == 1

    smaller = build_sample(replace(profile, sample_images=4), progress=False, root=tmp_path)
    assert smaller["skipped"] is False and train_path.stat().st_mtime_ns != 1
    assert smaller["modanet_sample"]["images"] == 4
    on_disk = {p.name for p in (tmp_path / "images").glob("*.jpg")}
    n_files = smaller["modanet_sample"]["images"] + smaller["modanet_sample"]["val_images"]
    assert on_disk == {f"{i:07d}.jpg" for i in range(1, n_files + 1)}   # stale pictures removed
    assert json.loads(manifest_path.read_text())["parameters"]["sample_images"] == 4

    forced = build_sample(replace(profile, sample_images=4), force=True, progress=False, root=tmp_path)
    assert forced["skipped"] is False

    manifest_path.unlink()                               # as if a build had been interrupted
    assert build_sample(replace(profile, sample_images=4), progress=False, root=tmp_path)["skipped"] is False


def test_build_sample_refuses_the_full_profile(tmp_path):
    with pytest.raises(ValueError, match="real ModaNet"):
        build_sample(profiles.get_profile("full"), progress=False, root=tmp_path)


def test_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(profiles, "get_profile", lambda name="smoke": small_profile() if name == "smoke"
                        else profiles.FULL)
    assert sample_mod.main(["--root", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "ModaNet-like: 6 train images" in out and "scarf/tie" in out
    assert sample_mod.main(["--root", str(tmp_path), "--quiet"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert sample_mod.main(["--profile", "full", "--root", str(tmp_path), "--quiet"]) == 2
    assert "real ModaNet" in capsys.readouterr().err
