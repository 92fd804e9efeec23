"""Tests for helpers.custom: held-out ModaNet photos as the custom set, with truth; which photos 05 uses.

The independent oracle of "largest garment" rasterises each annotation's polygons with PIL
(ImageDraw, union of its polygons) and counts pixels: no pycocotools, no `area` field. PIL and
pycocotools differ by a pixel along edges, so images whose two largest garments of different
classes are within 10% of each other are not judged.
"""
import io
import json
import os
import shutil
import subprocess
import sys
import types
from contextlib import redirect_stdout
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from helpers import custom
from helpers.custom import CustomPhotos, custom_photos, from_modanet, upload_photos
from helpers.io import DataError
from helpers.modanet import CLASS_NAMES
from helpers.notebook import CourseStop
from helpers.paths import PROJECT_ROOT, Paths
from helpers.profiles import SMOKE
from helpers.sample import generate_modanet_sample
from helpers.seasons import parse_custom_name
from helpers.split import split_coco

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
MODANET_SUBSET = FIXTURES / "modanet" / "modanet_coco_subset.json"
N_IMAGES = 120
MARGIN = 1.10

# A real-data-like profile (takes held-out photos) and a synthetic one (01 draws its custom set).
REAL = replace(SMOKE, name="colab", custom_per_class=3, custom_per_label=0)
SYNTHETIC = replace(SMOKE, custom_per_class=0)


@pytest.fixture(scope="module")
def modanet(tmp_path_factory):
    """A ModaNet-like source: photos, the whole COCO file with ModaNet's kind of `area` (the box's
    w x h, as in the real file), and its train / val / test splits."""
    root = tmp_path_factory.mktemp("modanet")
    generate_modanet_sample(root, N_IMAGES, (128, 192), seed=3, progress=False)
    coco = json.loads((root / "annotations" / "modanet2018_instances_train.json").read_text())
    for ann in coco["annotations"]:
        ann["area"] = int(ann["bbox"][2] * ann["bbox"][3])
    source = root / "source.json"
    source.write_text(json.dumps(coco))
    split = split_coco(coco, train_fraction=0.6, test_fraction=0.2, seed=1, progress=False)
    split.write(root / "train.json", root / "val.json", root / "test.json")
    return root, coco


def pil_area(ann, height, width):
    """Pixels of the union of an annotation's polygons, drawn by PIL."""
    canvas = Image.new("1", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in ann["segmentation"]:
        draw.polygon([(polygon[i], polygon[i + 1]) for i in range(0, len(polygon), 2)], fill=1)
    return int(np.asarray(canvas).sum())


def oracle_largest(coco):
    """{image id: class of its largest garment, by PIL pixels} for the images it can judge, and
    {image id: class by the `area` field}."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    images = {im["id"]: im for im in coco["images"]}
    by_image = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    judged, by_field = {}, {}
    for image_id, anns in by_image.items():
        image = images[image_id]
        areas = sorted(((pil_area(a, image["height"], image["width"]), names[a["category_id"]]) for a in anns),
                       reverse=True)
        rival = next((area for area, name in areas[1:] if name != areas[0][1]), 0)
        if areas[0][0] >= MARGIN * rival:
            judged[image_id] = areas[0][1]
        by_field[image_id] = names[max(anns, key=lambda a: a["area"])["category_id"]]
    return judged, by_field


def build(modanet, out, per_class=100, seed=7, **kwargs):
    root, _ = modanet
    kwargs.setdefault("exclude", None)
    summary = from_modanet(root / "source.json", root / "images", out, per_class, seed=seed, progress=False,
                           **kwargs)
    return summary, json.loads((out / "truth.json").read_text())


# --- from_modanet ---------------------------------------------------------------------------

def test_names_say_the_largest_garment_by_polygons_and_4mev(modanet, tmp_path):
    _, coco = modanet
    summary, truth = build(modanet, tmp_path / "out")
    judged, by_field = oracle_largest(coco)
    assert summary["images"] == len(truth["images"]) == len({a["image_id"] for a in coco["annotations"]})
    checked = 0
    for image in truth["images"]:
        parsed = parse_custom_name(image["file_name"])
        assert parsed.season == "4mev" and image["season"] == "4mev"
        assert parsed.class_name == image["target_class"]
        if image["id"] in judged:
            assert image["target_class"] == judged[image["id"]], image
            checked += 1
    assert checked >= 0.8 * len(truth["images"])
    # the `area` field (the box's w x h) would have named some of them otherwise
    assert any(by_field[i] != cls for i, cls in judged.items())
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == \
        sorted(im["file_name"] for im in truth["images"])


def test_truth_keeps_every_annotation_and_the_photo_exactly(modanet, tmp_path):
    root, coco = modanet
    _, truth = build(modanet, tmp_path / "out", per_class=4)
    chosen = {im["id"] for im in truth["images"]}
    assert truth["annotations"] == [a for a in coco["annotations"] if a["image_id"] in chosen]
    assert truth["categories"] == coco["categories"]
    source_images = {im["id"]: im for im in coco["images"]}
    for image in truth["images"]:
        source = source_images[image["id"]]
        assert image["source_file_name"] == source["file_name"]
        assert {k: v for k, v in image.items() if k not in ("file_name", "source_file_name", "target_class",
                                                             "season")} == \
            {k: v for k, v in source.items() if k != "file_name"}
        assert (tmp_path / "out" / "images" / image["file_name"]).read_bytes() == \
            (root / "images" / source["file_name"]).read_bytes()
    assert not (tmp_path / "out" / custom.PARTIAL_FILE).exists()


def test_excluded_images_never_appear_matched_by_id_or_by_file_name(modanet, tmp_path):
    root, coco = modanet
    train = json.loads((root / "train.json").read_text())
    train_ids = {im["id"] for im in train["images"]}
    train_names = {im["file_name"] for im in train["images"]}
    summary, truth = build(modanet, tmp_path / "out", exclude=root / "train.json")
    assert truth["images"]
    assert not {im["id"] for im in truth["images"]} & train_ids
    assert not {im["source_file_name"] for im in truth["images"]} & train_names
    assert summary["skipped"]["in_exclude"] == len(train_ids)
    # half the train images keep their id under another file name, half their name under another id
    half = len(train["images"]) // 2
    renamed = [dict(im, file_name=f"x{im['file_name']}") if k < half else dict(im, id=10 ** 6 + im["id"])
               for k, im in enumerate(train["images"])]
    (tmp_path / "disguised.json").write_text(json.dumps(dict(train, images=renamed)))
    summary, truth = build(modanet, tmp_path / "out2", exclude=tmp_path / "disguised.json")
    assert not {im["id"] for im in truth["images"]} & train_ids
    assert summary["skipped"]["in_exclude"] == len(train_ids)


def test_asking_for_an_excluded_image_is_an_error(modanet, tmp_path):
    root, _ = modanet
    train = json.loads((root / "train.json").read_text())
    test = json.loads((root / "test.json").read_text())
    with pytest.raises(DataError, match="exclude"):
        build(modanet, tmp_path / "out", exclude=root / "train.json", only=[train["images"][0]["file_name"]])
    assert not (tmp_path / "out" / "truth.json").exists()
    wanted = [test["images"][0]["file_name"], test["images"][1]["id"]]
    _, truth = build(modanet, tmp_path / "out", exclude=root / "train.json", only=wanted)
    assert sorted(im["id"] for im in truth["images"]) == sorted([test["images"][0]["id"], test["images"][1]["id"]])


def test_per_class_cap_and_the_same_choice_for_the_same_seed(modanet, tmp_path):
    summary, truth = build(modanet, tmp_path / "a", per_class=2, seed=5)
    for name in CLASS_NAMES:
        assert summary["per_class"][name] == min(2, summary["available_per_class"][name])
    counts = {}
    for image in truth["images"]:
        counts[image["target_class"]] = counts.get(image["target_class"], 0) + 1
    assert counts == {k: v for k, v in summary["per_class"].items() if v}
    mapping = {im["file_name"]: im["source_file_name"] for im in truth["images"]}
    _, again = build(modanet, tmp_path / "b", per_class=2, seed=5)
    assert {im["file_name"]: im["source_file_name"] for im in again["images"]} == mapping
    _, other = build(modanet, tmp_path / "c", per_class=2, seed=6)
    assert {im["file_name"]: im["source_file_name"] for im in other["images"]} != mapping


def test_a_rerun_copies_nothing_and_a_new_choice_removes_the_old_photos(modanet, tmp_path):
    out = tmp_path / "out"
    first, _ = build(modanet, out, per_class=3)
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()}
    second, _ = build(modanet, out, per_class=3)
    assert first["copied"] == first["images"] and second["copied"] == 0
    assert second["already_copied"] == second["images"] == first["images"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()} == stamps
    third, truth = build(modanet, out, per_class=1)
    assert third["stale_removed"] == first["images"] - third["images"] > 0
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(im["file_name"] for im in truth["images"])


def test_an_interrupted_run_leaves_no_truth_and_the_rerun_finishes_it(modanet, tmp_path, monkeypatch):
    out = tmp_path / "out"
    copy = custom._copy
    calls = []

    def failing_copy(source, target):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(target)
        return copy(source, target)

    monkeypatch.setattr(custom, "_copy", failing_copy)
    with pytest.raises(KeyboardInterrupt):
        build(modanet, out, per_class=3)
    assert not (out / "truth.json").exists() and (out / custom.PARTIAL_FILE).exists()
    assert len(list((out / "images").iterdir())) == 3
    monkeypatch.setattr(custom, "_copy", copy)
    summary, truth = build(modanet, out, per_class=3)
    assert summary["already_copied"] == 3 and summary["copied"] == summary["images"] - 3
    _, whole = build(modanet, tmp_path / "whole", per_class=3)
    assert truth["images"] == whole["images"] and truth["annotations"] == whole["annotations"]


def test_a_missing_photo_is_skipped_counted_and_replaced(modanet, tmp_path):
    root, coco = modanet
    _, full = build(modanet, tmp_path / "full", per_class=2)
    images = tmp_path / "images"
    shutil.copytree(root / "images", images)
    gone = {im["source_file_name"] for im in full["images"][::2]}
    for name in gone:
        (images / name).unlink()
    summary = from_modanet(root / "source.json", images, tmp_path / "out", 2, seed=7, progress=False)
    truth = json.loads((tmp_path / "out" / "truth.json").read_text())
    assert summary["skipped"]["missing_file"] >= len(gone)
    assert not {im["source_file_name"] for im in truth["images"]} & gone
    for name in CLASS_NAMES:      # the next photo of the class took the missing one's place where there was one
        with_file = sum(1 for im in coco["images"] if (images / im["file_name"]).is_file()
                        and im["id"] in {i["id"] for i in full["images"] if i["target_class"] == name})
        assert summary["per_class"][name] >= min(2, with_file)


def test_the_real_fixture_is_filed_under_its_largest_polygon_not_its_area_field(tmp_path):
    if not MODANET_SUBSET.is_file():
        pytest.skip("ModaNet fixture not present")
    real = json.loads(MODANET_SUBSET.read_text())
    images = tmp_path / "images"
    images.mkdir()
    for image in real["images"]:      # the fixture has no photos: a blank one of the right size each
        Image.new("RGB", (image["width"], image["height"])).save(images / image["file_name"])
    judged, by_field = oracle_largest(real)
    summary = from_modanet(MODANET_SUBSET, images, tmp_path / "out", 5, progress=False)
    truth = json.loads((tmp_path / "out" / "truth.json").read_text())
    named = {im["source_file_name"]: im["target_class"] for im in truth["images"]}
    assert by_field[1109680] == "dress" and judged[1109680] == "outer"   # the field would say dress
    assert named["1109680.jpg"] == "outer"
    by_id = {im["id"]: im["target_class"] for im in truth["images"]}
    assert len(judged) >= 3 and all(by_id[i] == cls for i, cls in judged.items())
    assert summary["images"] == 4
    assert truth["annotations"] == [a for a in real["annotations"]]


# --- the command line -----------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "helpers.custom", *map(str, args)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True)


def test_cli_builds_and_prints_the_summary(modanet, tmp_path):
    root, _ = modanet
    done = run_cli("from-modanet", root / "test.json", root / "images", tmp_path / "out", "--per-class", 2,
                   "--seed", 3, "--exclude", root / "train.json", "--quiet")
    assert done.returncode == 0, done.stderr
    truth = json.loads((tmp_path / "out" / "truth.json").read_text())
    assert f"{len(truth['images'])} photos" in done.stdout
    assert truth["info"]["custom_set"]["per_class"] == 2 and truth["info"]["custom_set"]["seed"] == 3


@pytest.mark.parametrize("problem", ["missing", "not_coco", "no_images_dir", "missing_exclude"])
def test_cli_bad_input_is_one_line_and_exit_2(modanet, tmp_path, problem):
    root, _ = modanet
    coco, images, exclude = root / "test.json", root / "images", root / "train.json"
    if problem == "missing":
        coco = tmp_path / "nope.json"
    elif problem == "not_coco":
        coco = tmp_path / "list.json"
        coco.write_text("[1, 2]")
    elif problem == "no_images_dir":
        images = tmp_path / "no_images"
    else:
        exclude = tmp_path / "no_train.json"
    done = run_cli("from-modanet", coco, images, tmp_path / "out", "--per-class", 2, "--exclude", exclude,
                   "--quiet")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str({"missing": coco, "not_coco": coco, "no_images_dir": images, "missing_exclude": exclude}[problem]) \
        in lines[0]
    assert not (tmp_path / "out" / "truth.json").exists()


# --- which photos 05 uses -------------------------------------------------------------------

@pytest.fixture
def course(modanet, tmp_path):
    """Paths whose source is the ModaNet-like sample and whose derived root is empty."""
    root, _ = modanet
    paths = Paths(tmp_path / "derived", root)
    return paths


def add_splits(paths, modanet):
    root, _ = modanet
    paths.splits.mkdir(parents=True, exist_ok=True)
    for name in ("train", "test"):
        shutil.copy(root / f"{name}.json", paths.split_file(name))


def own_photos(folder, modanet, names=("top_yaz_1.jpg", "skirt_kis_2.jpg", "IMG_0001.jpg")):
    root, _ = modanet
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(root / "images" / "0000001.jpg", folder / name)
    return folder


def test_a_given_folder_comes_first_and_has_no_truth(course, modanet, tmp_path):
    add_splits(course, modanet)
    own_photos(course.custom_images, modanet, ["bag_4mev_1.jpg"])
    course.custom_truth.write_text("{}")
    photos = custom_photos(REAL, course, own_photos(tmp_path / "mine", modanet))
    assert photos.images_dir == tmp_path / "mine" and photos.truth is None
    assert photos.files == ("skirt_kis_2.jpg", "top_yaz_1.jpg") and photos.unparsed == ("IMG_0001.jpg",)
    assert not (course.custom / "build.partial.json").exists() and photos.built is None
    # the custom folder itself, given by name, keeps its truth
    assert custom_photos(REAL, course, str(course.custom_images)).truth == course.custom_truth


@pytest.mark.parametrize("problem", ["missing", "empty", "unnamed"])
def test_a_given_folder_without_usable_photos_stops_with_guidance(course, modanet, tmp_path, problem):
    folder = tmp_path / "mine"
    if problem == "empty":
        folder.mkdir()
    elif problem == "unnamed":
        own_photos(folder, modanet, ["IMG_0001.jpg", "holiday.png"])
    with pytest.raises(CourseStop) as stop:
        custom_photos(REAL, course, folder)
    text = str(stop.value)
    assert str(folder) in text.splitlines()[0] and "<class>_<season>_<n>.jpg" in text
    assert {"missing": "no such folder", "empty": "no .jpg", "unnamed": "IMG_0001.jpg"}[problem] in text


def test_photos_already_in_the_custom_folder_come_next(course, modanet):
    add_splits(course, modanet)
    own_photos(course.custom_images, modanet, ["bag_4mev_1.jpg", "top_yaz_2.jpg"])
    photos = custom_photos(REAL, course)
    assert photos.images_dir == course.custom_images and photos.files == ("bag_4mev_1.jpg", "top_yaz_2.jpg")
    assert photos.truth is None and photos.built is None and not course.custom_truth.exists()
    course.custom_truth.write_text("{}")
    assert custom_photos(SYNTHETIC, course).truth == course.custom_truth


def test_a_real_profile_builds_from_the_held_out_split(course, modanet):
    root, _ = modanet
    add_splits(course, modanet)
    photos = custom_photos(REAL, course, progress=False)
    assert isinstance(photos, CustomPhotos) and photos.built is not None
    assert photos.images_dir == course.custom_images and photos.truth == course.custom_truth
    truth = json.loads(course.custom_truth.read_text())
    train_ids = {im["id"] for im in json.loads((root / "train.json").read_text())["images"]}
    test_ids = {im["id"] for im in json.loads((root / "test.json").read_text())["images"]}
    assert {im["id"] for im in truth["images"]} <= test_ids and not {im["id"] for im in truth["images"]} & train_ids
    assert max(photos.built["per_class"].values()) <= REAL.custom_per_class
    assert sorted(photos.files) == sorted(im["file_name"] for im in truth["images"])
    again = custom_photos(REAL, course)           # built once: the next call finds it
    assert again.built is None and again.files == photos.files and again.truth == course.custom_truth
    assert "held-out" in str(photos) and "truth" in str(photos)


def test_an_unfinished_build_is_resumed_not_used(course, modanet, monkeypatch):
    add_splits(course, modanet)
    copy = custom._copy

    def interrupted(source, target):
        if target.parent.is_dir() and any(target.parent.iterdir()):
            raise KeyboardInterrupt
        return copy(source, target)

    monkeypatch.setattr(custom, "_copy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        custom_photos(REAL, course, progress=False)
    monkeypatch.setattr(custom, "_copy", copy)
    assert len(list(course.custom_images.iterdir())) == 1 and not course.custom_truth.exists()
    photos = custom_photos(REAL, course, progress=False)
    assert photos.built["already_copied"] == 1 and photos.truth == course.custom_truth
    # a synthetic profile does not build: an unfinished folder stops it
    (course.custom / custom.PARTIAL_FILE).write_text("{}")
    with pytest.raises(CourseStop, match="unfinished"):
        custom_photos(SYNTHETIC, course)


@pytest.mark.parametrize("profile, next_step", [(REAL, "02_split.ipynb"), (SYNTHETIC, "01_download_modanet.ipynb")])
def test_nothing_to_use_stops_with_guidance_not_a_traceback(course, profile, next_step):
    with pytest.raises(CourseStop) as stop:
        custom_photos(profile, course)
    text = str(stop.value)
    for needed in (str(course.custom_images), "CUSTOM_IMAGES", "<class>_<season>_<n>.jpg",
                   f"at least {profile.min_per_class} photos of every label", "UPLOAD_PHOTOS", next_step):
        assert needed in text
    rendered = stop.value._render_traceback_()
    assert rendered == text.splitlines() and "Traceback" not in "\n".join(rendered)


def test_a_real_profile_without_the_train_split_or_the_photos_stops(course, modanet, tmp_path):
    add_splits(course, modanet)
    course.split_file("train").unlink()
    with pytest.raises(CourseStop, match="train.json is missing"):
        custom_photos(REAL, course)
    add_splits(course, modanet)
    no_photos = Paths(course.root, tmp_path / "empty_source")
    (no_photos.images).mkdir(parents=True)
    with pytest.raises(CourseStop, match="No held-out photo"):
        custom_photos(REAL, no_photos, progress=False)


def test_ipython_shows_a_course_stop_as_its_text_alone():
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactiveshell.InteractiveShell.instance()
    out = io.StringIO()
    with redirect_stdout(out):
        shell.run_cell("from helpers.notebook import CourseStop\n"
                       "raise CourseStop('No photos yet.\\nPut them in data/custom/images.')")
    shown = out.getvalue()
    assert "No photos yet." in shown and "Put them in data/custom/images." in shown
    assert "Traceback" not in shown and "CourseStop" not in shown


# --- uploads --------------------------------------------------------------------------------

def test_upload_outside_colab_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", None)     # importing it fails, as off Colab
    assert upload_photos("anywhere") is None
    assert "Colab only" in capsys.readouterr().out


def test_upload_on_colab_saves_into_the_folder(monkeypatch, tmp_path, capsys):
    def upload():                     # Colab's files.upload(): saves into the working directory
        for name in ("top_yaz_1.jpg", "notes.txt", "IMG_2.jpg"):
            Path(name).write_bytes(b"x")
        return {"top_yaz_1.jpg": b"x", "notes.txt": b"x", "IMG_2.jpg": b"x"}

    colab = types.ModuleType("google.colab")
    colab.files = types.SimpleNamespace(upload=upload)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    here = os.getcwd()
    folder = upload_photos(tmp_path / "uploads")
    assert os.getcwd() == here
    assert folder == (tmp_path / "uploads").resolve()
    assert sorted(p.name for p in folder.iterdir()) == ["IMG_2.jpg", "notes.txt", "top_yaz_1.jpg"]
    shown = capsys.readouterr().out
    assert "Uploaded 3 file(s)" in shown and "1 photo(s) named" in shown and "IMG_2.jpg" in shown


def test_hand_over_truth_copies_it_or_removes_a_stale_one(tmp_path):
    from helpers.custom import CustomPhotos
    truth = tmp_path / "truth.json"
    truth.write_text('{"images": []}')
    target = tmp_path / "autolabels" / "truth.json"
    assert CustomPhotos(tmp_path, truth=truth).hand_over_truth(target) == target
    assert target.read_text() == '{"images": []}'
    assert CustomPhotos(tmp_path, truth=None).hand_over_truth(target) is None   # your own photos: no truth
    assert not target.exists()


# --- hostile input (issue 31) ---------------------------------------------------------------

def test_a_decompression_bomb_photo_is_skipped_counted_and_replaced(modanet, tmp_path):
    from tests.bombs import png_claiming
    root, _ = modanet
    _, full = build(modanet, tmp_path / "full", per_class=1)
    images = tmp_path / "images"
    shutil.copytree(root / "images", images)
    bombs = {im["source_file_name"] for im in full["images"][:2]}
    for name in bombs:
        png_claiming(images / name, 100000, 100000)
    summary = from_modanet(root / "source.json", images, tmp_path / "out", 1, seed=7, progress=False)
    truth = json.loads((tmp_path / "out" / "truth.json").read_text())
    assert summary["skipped"]["too_large"] == len(bombs)
    assert not {im["source_file_name"] for im in truth["images"]} & bombs
    assert "too large" in custom.format_summary(summary)


def test_largest_garments_leaves_out_what_pycocotools_cannot_take():
    from tests.bombs import run_limited
    code = """
import json
from helpers.custom import largest_garments
from helpers.modanet import categories
square = [10, 10, 40, 10, 40, 40, 10, 40]
anns = [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 1e9, 5, 9, 1]]},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": [[float("nan"), 1, 5, 5, 9, 1], square]},
        {"id": 3, "image_id": 1, "category_id": 3, "segmentation": {"size": [64, 64], "counts": [10 ** 9, 5]}},
        {"id": 4, "image_id": [1], "category_id": 4, "segmentation": [square]},
        {"id": 5, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 1e9, 5, 9, 1]]}]
coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64},
                   {"id": 2, "file_name": "b.jpg", "width": 64, "height": 64}],
        "annotations": anns, "categories": categories()}
print(json.dumps(largest_garments(coco)))
"""
    returncode, out, err = run_limited(code)
    assert returncode == 0, err[-2000:]
    assert json.loads(out) == {"1": ["belt", 900.0]}      # category 2 by its square; image 2 has nothing


@pytest.mark.parametrize("problem, message", [
    ({"images": [{"id": [1], "file_name": "a.jpg", "width": 64, "height": 64}]}, "'id' must be an integer"),
    ({"images": [{"id": 1, "file_name": "a.jpg", "width": 100000, "height": 100000}]}, "a.jpg.*over 20000"),
    ({"annotations": [{"id": 1, "image_id": 1, "category_id": [1], "segmentation": []}]}, "category_id \\[1\\]"),
])
def test_bad_ids_and_huge_images_are_one_line_data_errors(problem, message):
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}], "annotations": [],
            "categories": [{"id": 1, "name": "bag"}], **problem}
    with pytest.raises(DataError, match=message):
        custom.largest_garments(coco)
