"""Tests for helpers.split: a by-image, reproducible, stratified COCO split that writes all or nothing."""
import errno
import json
import math
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from helpers.io import DataError
from helpers.modanet import CLASS_NAMES, categories
from helpers.split import check_fractions, split_coco

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
MODANET_SUBSET = FIXTURES / "modanet" / "modanet_coco_subset.json"


# --- small COCO sets built here -----------------------------------------------------------

def make_coco(labels_per_image, unannotated=0):
    """A ModaNet-shaped COCO dict: one image per entry of `labels_per_image` (a list of
    category ids, one per instance), then `unannotated` images without annotations."""
    images, annotations = [], []
    for k, labels in enumerate(labels_per_image):
        image_id = 1000 + k
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 400,
                       "height": 600, "license": 3})
        for category_id in labels:
            x, y = 10 + len(annotations) % 50, 20
            annotations.append({
                "id": 1 + len(annotations), "image_id": image_id, "category_id": category_id,
                "segmentation": [[x, y, x + 30, y, x + 30, y + 40, x, y + 40]],
                "bbox": [x, y, 30, 40], "area": 1200, "iscrowd": 0})
    for k in range(unannotated):
        image_id = 5000 + k
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 400,
                       "height": 600, "license": 3})
    return {"year": 2018, "type": "instances", "info": {"description": "test set"},
            "licenses": [{"id": 3, "name": "CC BY-NC"}], "categories": categories(),
            "images": images, "annotations": annotations}


def common_set(n_images=300, seed=0):
    """Every class present in numbers; 1-6 instances per image."""
    rng = random.Random(seed)
    weights = [10, 4, 3, 12, 6, 4, 3, 6, 10, 3, 4, 2, 2]
    return make_coco([rng.choices(range(1, 14), weights, k=rng.randint(1, 6))
                      for _ in range(n_images)])


def skewed_set(seed=0):
    """200 images of common classes; scarf/tie (13) in 4 images and headwear (12) in 6."""
    rng = random.Random(seed)
    labels = [rng.choices([4, 9, 8, 1], k=rng.randint(1, 4)) for _ in range(200)]
    for k in rng.sample(range(200), 4):
        labels[k].append(13)
    for k in rng.sample(range(200), 6):
        labels[k].append(12)
    return make_coco(labels)


def split_of(result):
    """{image id: split name}."""
    return {image["id"]: name for name, coco in result.splits.items() for image in coco["images"]}


def brute_force_class_counts(coco_split):
    names = {c["id"]: c["name"] for c in coco_split["categories"]}
    counted = Counter(names[a["category_id"]] for a in coco_split["annotations"])
    return {name: counted.get(name, 0) for name in names.values()}


# --- fractions, completeness, reproducibility -----------------------------------------------

@pytest.mark.parametrize("stratify", [True, False])
@pytest.mark.parametrize("n_images,train,test", [(300, 0.85, 0.0), (300, 0.8, 0.1), (97, 0.7, 0.2),
                                                 (41, 0.9, 0.0)])
def test_fractions_respected_within_rounding(stratify, n_images, train, test):
    coco = common_set(n_images)
    result = split_coco(coco, train, test, stratify=stratify, progress=False)
    wanted = {"train": train, "val": 1 - train - test}
    if test:
        wanted["test"] = test
    assert list(result.splits) == list(wanted)
    assert sum(result.image_counts.values()) == n_images
    for name, fraction in wanted.items():
        assert abs(result.image_counts[name] - n_images * fraction) < 1
        assert result.image_counts[name] == len(result.splits[name]["images"])


@pytest.mark.parametrize("stratify", [True, False])
def test_splits_disjoint_complete_and_annotations_follow_images(stratify):
    coco = common_set(250)
    result = split_coco(coco, 0.8, 0.1, stratify=stratify, progress=False)
    seen = Counter(image["id"] for s in result.splits.values() for image in s["images"])
    assert set(seen) == {image["id"] for image in coco["images"]}
    assert max(seen.values()) == 1
    where = split_of(result)
    ann_ids = Counter()
    for name, s in result.splits.items():
        for annotation in s["annotations"]:
            assert where[annotation["image_id"]] == name
            ann_ids[annotation["id"]] += 1
    assert set(ann_ids) == {a["id"] for a in coco["annotations"]}
    assert max(ann_ids.values()) == 1
    for name, s in result.splits.items():
        assert result.class_counts[name] == brute_force_class_counts(s)


def test_same_seed_same_split_other_seed_different():
    coco = common_set(200)
    first = split_of(split_coco(coco, 0.8, 0.1, seed=7, progress=False))
    again = split_of(split_coco(json.loads(json.dumps(coco)), 0.8, 0.1, seed=7, progress=False))
    other = split_of(split_coco(coco, 0.8, 0.1, seed=8, progress=False))
    assert first == again
    assert first != other
    plain = split_of(split_coco(coco, 0.8, 0.1, seed=7, stratify=False, progress=False))
    assert plain == split_of(split_coco(coco, 0.8, 0.1, seed=7, stratify=False, progress=False))


def test_top_level_keys_copied_into_every_split_and_input_untouched():
    coco = common_set(60)
    before = json.dumps(coco, sort_keys=True)
    result = split_coco(coco, 0.8, 0.1, progress=False)
    for s in result.splits.values():
        assert set(s) == set(coco)
        for key in ("year", "type", "info", "licenses", "categories"):
            assert s[key] == coco[key]
    result.splits["train"]["categories"][0]["name"] = "changed"
    assert result.splits["val"]["categories"][0]["name"] == "bag"
    assert json.dumps(coco, sort_keys=True) == before


def test_having_annotations_drops_and_counts_unannotated_images():
    coco = make_coco([[1, 9]] * 40, unannotated=10)
    kept = split_coco(coco, 0.8, progress=False)
    assert sum(kept.image_counts.values()) == 50 and kept.dropped_unannotated == 0
    dropped = split_coco(coco, 0.8, having_annotations=True, progress=False)
    assert sum(dropped.image_counts.values()) == 40
    assert dropped.dropped_unannotated == 10
    assert all(image["id"] < 5000 for s in dropped.splits.values() for image in s["images"])
    assert "dropped 10 image(s)" in dropped.table()


def test_orphan_annotations_are_skipped_and_counted():
    coco = make_coco([[1], [2], [3], [4]])
    coco["annotations"].append({"id": 99, "image_id": 424242, "category_id": 1})
    result = split_coco(coco, 0.5, progress=False)
    assert result.skipped_orphans == 1
    assert sum(len(s["annotations"]) for s in result.splits.values()) == 4
    assert "skipped 1 annotation(s)" in result.table()


# --- stratification -----------------------------------------------------------------------

def test_stratified_puts_rare_classes_in_every_split_where_plain_shuffle_does_not():
    coco = skewed_set()
    stratified_ok = plain_ok = 0
    for seed in range(20):
        stratified = split_coco(coco, 0.8, 0.1, seed=seed, progress=False)
        plain = split_coco(coco, 0.8, 0.1, seed=seed, stratify=False, progress=False)
        stratified_ok += all(counts[c] > 0 for counts in stratified.class_counts.values()
                             for c in ("scarf/tie", "headwear"))
        plain_ok += all(counts[c] > 0 for counts in plain.class_counts.values()
                        for c in ("scarf/tie", "headwear"))
    assert stratified_ok == 20
    # A shuffle covers all 3 splits with 4 scarf/tie images ~10% of the time, with 6 headwear
    # images ~20%: both together about 1 seed in 50.
    assert plain_ok <= 5
    shuffled = split_coco(coco, 0.8, 0.1, seed=42, stratify=False, progress=False)
    assert any(counts["scarf/tie"] == 0 for counts in shuffled.class_counts.values())


def share_error(result, fractions):
    """Mean over classes and splits of |instance share - fraction|."""
    errors = []
    for class_name in CLASS_NAMES:
        total = sum(c[class_name] for c in result.class_counts.values())
        if total:
            errors += [abs(result.class_counts[n][class_name] / total - f)
                       for n, f in fractions.items()]
    return sum(errors) / len(errors)


def test_stratified_class_shares_closer_to_fractions_than_plain_shuffle():
    coco = common_set(400, seed=3)
    fractions = {"train": 0.8, "val": 0.1, "test": 0.1}
    stratified = [share_error(split_coco(coco, 0.8, 0.1, seed=s, progress=False), fractions)
                  for s in range(5)]
    plain = [share_error(split_coco(coco, 0.8, 0.1, seed=s, stratify=False, progress=False),
                         fractions) for s in range(5)]
    assert max(stratified) < min(plain)
    assert max(stratified) < 0.02


# --- bad input: clear errors, nothing written ------------------------------------------------

@pytest.mark.parametrize("train,test", [(0, 0), (1, 0), (-0.2, 0), (1.5, 0), (0.8, 0.2), (0.9, 0.3),
                                        (0.8, -0.1), ("0.8", 0), (None, 0), (True, 0),
                                        (math.nan, 0), (0.8, math.inf)])
def test_bad_fractions_raise_value_error(train, test):
    with pytest.raises(ValueError, match="fraction"):
        check_fractions(train, test)
    with pytest.raises(ValueError, match="fraction"):
        split_coco(common_set(20), train, test, progress=False)


@pytest.mark.parametrize("content,problem", [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a COCO object"),
    ('{"images": [], "categories": []}', "no 'annotations' list"),
])
def test_bad_files_raise_data_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=problem) as err:
        split_coco(path, 0.8, progress=False)
    assert str(path) in str(err.value)


def test_bad_records_raise_data_error():
    coco = make_coco([[1], [2], [3]])
    coco["annotations"][1]["category_id"] = 77
    with pytest.raises(DataError, match="category_id 77"):
        split_coco(coco, 0.5, progress=False)
    coco = make_coco([[1], [2], [3]])
    coco["images"].append(dict(coco["images"][0]))
    with pytest.raises(DataError, match="appears twice"):
        split_coco(coco, 0.5, progress=False)
    with pytest.raises(DataError, match="cannot fill 3 splits"):
        split_coco(make_coco([[1], [2]]), 0.5, 0.25, progress=False)
    with pytest.raises(DataError, match="none has an annotation"):
        split_coco(make_coco([], unannotated=3), 0.5, having_annotations=True, progress=False)


def test_write_round_trip_and_all_or_nothing(tmp_path):
    coco = common_set(50)
    result = split_coco(coco, 0.8, 0.1, progress=False)
    paths = result.write(tmp_path / "a" / "train.json", tmp_path / "val.json", tmp_path / "test.json")
    for name, path in zip(("train", "val", "test"), paths):
        assert json.loads(path.read_text()) == result.splits[name]
    with pytest.raises(ValueError, match="test_path"):
        result.write(tmp_path / "x.json", tmp_path / "y.json")
    with pytest.raises(ValueError, match="also another output"):
        result.write(tmp_path / "x.json", tmp_path / "x.json", tmp_path / "z.json")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = tmp_path / "out"
    with pytest.raises(OSError):
        result.write(out / "train.json", out / "val.json", blocker / "test.json")
    assert list(out.iterdir()) == []  # train/val temp files removed, nothing renamed
    two_way = split_coco(coco, 0.8, progress=False)
    with pytest.raises(ValueError, match="no test split"):
        two_way.write(tmp_path / "x.json", tmp_path / "y.json", tmp_path / "z.json")


def test_full_disk_on_the_last_file_leaves_the_old_set_byte_for_byte(tmp_path, monkeypatch):
    """A split's files belong together: an error syncing one of them (a full disk shows at
    flush or fsync) must not leave train from the old run beside val / test from the new one."""
    outs = [tmp_path / f"{n}.json" for n in ("train", "val", "test")]
    split_coco(common_set(60), 0.8, 0.1, seed=1, progress=False).write(*outs)
    before = {path: path.read_bytes() for path in outs}
    new = split_coco(common_set(60), 0.8, 0.1, seed=2, progress=False)
    assert json.loads(before[outs[1]]) != new.splits["val"]
    synced = []
    real_fsync = os.fsync

    def fsync_failing_on_the_last_file(fd):
        synced.append(fd)
        if len(synced) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync_failing_on_the_last_file)
    with pytest.raises(OSError, match="No space left"):
        new.write(*outs)
    monkeypatch.undo()
    assert {path: path.read_bytes() for path in outs} == before
    assert sorted(tmp_path.iterdir()) == sorted(outs)


def test_a_rename_failing_mid_way_puts_the_renamed_splits_back(tmp_path, monkeypatch):
    outs = [tmp_path / f"{n}.json" for n in ("train", "val", "test")]
    split_coco(common_set(60), 0.8, 0.1, seed=1, progress=False).write(*outs)
    before = {path: path.read_bytes() for path in outs}
    real_replace = os.replace

    def replace(src, dst):
        if str(src).endswith(".tmp") and Path(dst) == outs[2]:
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="nothing written"):
        split_coco(common_set(60), 0.8, 0.1, seed=2, progress=False).write(*outs)
    monkeypatch.undo()
    assert {path: path.read_bytes() for path in outs} == before
    assert sorted(tmp_path.iterdir()) == sorted(outs)


def test_table_shows_counts_per_split_and_class():
    result = split_coco(common_set(100), 0.8, 0.1, progress=False)
    table = result.table()
    header, images_row = table.splitlines()[1:3]
    assert header.split() == ["train", "val", "test"]
    assert images_row.split()[0] == "images"
    assert f"{result.image_counts['val']:,} (" in images_row
    for class_name in CLASS_NAMES:
        assert any(line.startswith(class_name + " ") for line in table.splitlines())


# --- command line -----------------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "helpers.split", "--quiet", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_writes_three_splits_and_prints_counts(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(common_set(120)))
    outs = [tmp_path / f"{n}.json" for n in ("train", "val", "test")]
    done = run_cli("-s", "0.8", "-t", "0.1", "--seed", "3", source, *outs)
    assert done.returncode == 0, done.stderr
    counts = [len(json.loads(p.read_text())["images"]) for p in outs]
    assert counts == [96, 12, 12]
    assert "images" in done.stdout and "scarf/tie" in done.stdout
    expected = split_coco(source, 0.8, 0.1, seed=3, progress=False)
    assert json.loads(outs[1].read_text()) == expected.splits["val"]


@pytest.mark.parametrize("args,problem", [
    (["-s", "1.2"], "train fraction"),
    (["-s", "abc"], "must be a number"),
    (["-s", "0.8", "-t", "0.3"], "below 1"),
    (["-s", "0.8", "-t", "0"], "above 0"),
    (["-s", "0.8", "-t", "0.1"], "TEST output path is required"),
    (["-s", "0.8", "TEST"], "without -t"),
    (["-s", "0.8", "MISSING"], "not found"),
    (["-s", "0.8", "BROKEN"], "not valid JSON"),
    (["-s", "0.8", "SAME"], "input file"),
    (["--seed", "1", "IN"], "required"),
])
def test_cli_bad_input_one_line_error_exit_2_nothing_written(tmp_path, args, problem):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(common_set(30)))
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    out = tmp_path / "out"
    out.mkdir()
    inputs, outputs = [source], [out / "train.json", out / "val.json"]
    if "MISSING" in args:
        inputs = [tmp_path / "missing.json"]
    if "BROKEN" in args:
        inputs = [broken]
    if "SAME" in args:
        outputs = [out / "train.json", source]
    if "TEST" in args:
        outputs.append(out / "test.json")
    flags = [a for a in args if a not in ("MISSING", "BROKEN", "SAME", "TEST", "IN")]
    done = run_cli(*flags, *inputs, *outputs)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and problem in lines[0], done.stderr
    assert list(out.iterdir()) == []


def one_line_error(done):
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_cli_output_a_folder_or_under_a_file_is_one_line_exit_2(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(common_set(30)))
    folder = tmp_path / "folder.json"
    folder.mkdir()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    assert "folder" in one_line_error(run_cli("-s", "0.8", source, tmp_path / "t.json", folder))
    assert "Not a directory" in one_line_error(
        run_cli("-s", "0.8", source, tmp_path / "t.json", blocker / "val.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "folder.json", "in.json"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_cli_unwritable_folder_is_one_line_exit_2(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(common_set(30)))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        line = one_line_error(run_cli("-s", "0.8", source, locked / "t.json", locked / "v.json"))
    finally:
        locked.chmod(0o700)
    assert "Permission denied" in line and list(locked.iterdir()) == []


def test_cli_refuses_an_output_that_is_a_hard_link_to_the_input(tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(common_set(30)))
    before = source.read_bytes()
    os.link(source, tmp_path / "link.json")
    line = one_line_error(run_cli("-s", "0.8", source, tmp_path / "t.json", tmp_path / "link.json"))
    assert "input file" in line and source.read_bytes() == before
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_signalled_mid_write_leaves_no_temp_file(tmp_path, signum):
    """tests/slow_write_driver.py runs the command line as a script and waits inside the first
    fsync, so the signal arrives while the temp files exist."""
    source = tmp_path / "in.json"
    source.write_text(json.dumps(common_set(30)))
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "slow_write_driver.py"), "helpers.split", "--quiet",
         "-s", "0.8", "-t", "0.1", str(source), *(str(out / f"{n}.json") for n in ("tr", "va", "te"))],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "READY"
    assert len(list(out.iterdir())) == 3            # the three temp files
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum and "Traceback" not in stderr
    assert list(out.iterdir()) == []


# --- the real ModaNet fixture -----------------------------------------------------------------

def test_real_modanet_subset_split_matches_pycocotools(tmp_path):
    if not MODANET_SUBSET.exists():
        pytest.skip(f"fixture not found: {MODANET_SUBSET}")
    from pycocotools.coco import COCO

    original = json.loads(MODANET_SUBSET.read_text())
    result = split_coco(MODANET_SUBSET, 0.5, 0.25, progress=False)
    assert result.image_counts == {"train": 2, "val": 1, "test": 1}
    assert sum(sum(c.values()) for c in result.class_counts.values()) == 37
    paths = result.write(tmp_path / "train.json", tmp_path / "val.json", tmp_path / "test.json")
    oracle = COCO(str(MODANET_SUBSET))
    for path in paths:
        split = COCO(str(path))
        written = json.loads(path.read_text())
        assert written["year"] == original["year"] and written["type"] == original["type"]
        for image_id in split.getImgIds():
            assert sorted(split.getAnnIds(imgIds=[image_id])) == sorted(oracle.getAnnIds(imgIds=[image_id]))
            for ann_id in split.getAnnIds(imgIds=[image_id]):
                assert (split.annToMask(split.anns[ann_id]) == oracle.annToMask(oracle.anns[ann_id])).all()
    # scarf/tie is in 3 of the 4 images: the stratified split gives it to all 3 splits
    assert all(counts["scarf/tie"] > 0 for counts in result.class_counts.values())


# --- limiting each split (the colab profile's subset) ---------------------------------------

def test_limited_cuts_each_split_keeps_rare_classes_and_repeats():
    result = split_coco(skewed_set(), train_fraction=0.8, test_fraction=0.1, seed=3, progress=False)
    small = result.limited(train=20, val=5)
    assert small.image_counts == {"train": 20, "val": 5, "test": result.image_counts["test"]}
    assert small.splits["test"] is result.splits["test"]
    for name in ("train", "val"):
        ids = {im["id"] for im in small.splits[name]["images"]}
        full_ids = {im["id"] for im in result.splits[name]["images"]}
        assert ids <= full_ids                                    # a subset of its own split
        assert all(a["image_id"] in ids for a in small.splits[name]["annotations"])
        kept = [a for a in result.splits[name]["annotations"] if a["image_id"] in ids]
        assert small.splits[name]["annotations"] == kept          # every annotation of a kept image
        assert small.class_counts[name] == brute_force_class_counts(small.splits[name])
        present = {c for c, n in brute_force_class_counts(result.splits[name]).items() if n}
        assert {c for c, n in small.class_counts[name].items() if n} == present   # no class lost
    again = result.limited(train=20, val=5)
    assert again.splits["train"]["images"] == small.splits["train"]["images"]
    other = result.limited(train=20, val=5, seed=4)
    assert other.splits["train"]["images"] != small.splits["train"]["images"]
    assert "train: kept 20 of" in small.table()


def test_limited_refuses_bad_counts_and_unknown_splits():
    result = split_coco(common_set(60), train_fraction=0.8, seed=1, progress=False)
    with pytest.raises(ValueError, match="no split named"):
        result.limited(test=3)
    with pytest.raises(ValueError, match="whole number"):
        result.limited(train=0)
    assert result.limited(train=None, val=10_000).image_counts == result.image_counts
