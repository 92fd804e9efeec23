"""Split a COCO annotation file by image into train / val (/ test).

ModaNet publishes polygons only in its train file, so the course carves its own validation
(and test) set out of it. The split is by image (every annotation goes with its image),
reproducible by seed, and stratified by default: images are handed out rarest class first
(iterative stratification), so every split gets close to its share of every class and rare
classes such as scarf/tie reach every split.

    python -m helpers.split -s 0.80 -t 0.10 IN.json TRAIN.json VAL.json TEST.json
"""
import argparse
import copy
import math
import numbers
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from helpers.io import (DataError, atomic_write_many, describe_os_error, dumps, read_json,
                        remove_temp_files_on_signals, same_file)

SPLIT_NAMES = ("train", "val", "test")


# --- fractions and quotas ---------------------------------------------------------------

def _as_fraction(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return value


def check_fractions(train_fraction, test_fraction=0.0):
    """Validate the fractions; returns {split name: fraction} (val gets the rest).

    A bad value is a ValueError that says what is wrong.
    """
    train = _as_fraction(train_fraction, "train fraction")
    test = _as_fraction(test_fraction, "test fraction")
    if not 0 < train < 1:
        raise ValueError(f"train fraction must be between 0 and 1 (exclusive), got {train}")
    if not 0 <= test < 1:
        raise ValueError(f"test fraction must be 0 (no test split) or between 0 and 1, got {test}")
    val = 1.0 - train - test
    if val <= 1e-9:
        raise ValueError(f"train + test fractions must be below 1 to leave a val split, "
                         f"got {train} + {test}")
    fractions = {"train": train, "val": val}
    if test > 0:
        fractions["test"] = test
    return fractions


def _image_quotas(n_images, fractions, source):
    """Images per split: largest remainder of n * fraction, every split at least one."""
    names = list(fractions)
    if n_images < len(names):
        raise DataError(f"{source}: {n_images} image(s) cannot fill {len(names)} splits "
                        f"({', '.join(names)})")
    exact = [n_images * fractions[name] for name in names]
    counts = [math.floor(x + 1e-9) for x in exact]
    by_remainder = sorted(range(len(names)), key=lambda k: (counts[k] - exact[k], k))
    for k in by_remainder[: n_images - sum(counts)]:
        counts[k] += 1
    for k in range(len(names)):
        if counts[k] == 0:  # a tiny split on a tiny set: borrow from the largest
            donor = max(range(len(names)), key=counts.__getitem__)
            counts[donor] -= 1
            counts[k] += 1
    return dict(zip(names, counts))


# --- reading and indexing ---------------------------------------------------------------

def _load(coco):
    """(coco dict, name for messages); a path is read with helpers.io.read_json."""
    if isinstance(coco, (str, os.PathLike)):
        source = str(coco)
        coco = read_json(coco, "COCO annotation file")
    else:
        source = "COCO data"
    if not isinstance(coco, dict):
        raise DataError(f"{source}: expected a COCO object with 'images', 'annotations' and "
                        f"'categories', found a JSON {type(coco).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise DataError(f"{source}: no '{key}' list (is this a COCO annotation file?)")
    return coco, source


def _category_names(coco, source):
    names = {}
    for k, category in enumerate(coco["categories"]):
        try:
            names[category["id"]] = category["name"]
        except (TypeError, KeyError):
            raise DataError(f"{source}: category #{k} needs an 'id' and a 'name', "
                            f"found {category!r}") from None
    return names


def _image_ids(coco, source):
    ids = []
    seen = set()
    for k, image in enumerate(coco["images"]):
        try:
            image_id = image["id"]
            duplicate = image_id in seen
        except (TypeError, KeyError):
            raise DataError(f"{source}: image #{k} has no usable 'id'") from None
        if duplicate:
            raise DataError(f"{source}: image id {image_id!r} appears twice in 'images'")
        seen.add(image_id)
        ids.append(image_id)
    return ids


def _labels_by_image(coco, image_ids, category_names, source):
    """({image id: {category id: instances}}, annotations whose image is missing)."""
    labels = {image_id: {} for image_id in image_ids}
    orphans = 0
    for k, annotation in enumerate(coco["annotations"]):
        try:
            image_id = annotation["image_id"]
            category_id = annotation["category_id"]
            known = category_id in category_names
        except (TypeError, KeyError):
            raise DataError(f"{source}: annotation #{k} needs an 'image_id' and a "
                            f"'category_id'") from None
        if not known:
            raise DataError(f"{source}: annotation {annotation.get('id', '#' + str(k))!r} has "
                            f"category_id {category_id!r}, which is not in 'categories'")
        try:
            counts = labels.get(image_id)
        except TypeError:
            raise DataError(f"{source}: annotation #{k} has an unusable image_id "
                            f"{image_id!r}") from None
        if counts is None:
            orphans += 1
            continue
        counts[category_id] = counts.get(category_id, 0) + 1
    return labels, orphans


# --- assignment -------------------------------------------------------------------------

def _shuffled_assignment(order, quotas):
    """Plain split: the shuffled images cut into consecutive runs."""
    assignment = {}
    start = 0
    for split_index, count in enumerate(quotas.values()):
        for image_id in order[start:start + count]:
            assignment[image_id] = split_index
        start += count
    return assignment


def _stratified_assignment(order, labels, quotas, fractions, rng, progress):
    """Iterative stratification by instance counts, with hard per-split image quotas.

    Repeatedly take the class with the fewest instances still unassigned, and give each of
    its unassigned images to the split that (1) has no instance of that class yet, then
    (2) still wants the most instances of it, then (3) has the most room left. Images
    with no annotation fill the room that is left at the end.
    """
    n_splits = len(quotas)
    room = list(quotas.values())
    shares = list(fractions.values())
    totals = {}
    images_by_class = {}
    for image_id in order:
        for category_id, count in labels[image_id].items():
            totals[category_id] = totals.get(category_id, 0) + count
            images_by_class.setdefault(category_id, []).append(image_id)
    wanted = [{c: total * share for c, total in totals.items()} for share in shares]
    present = [set() for _ in range(n_splits)]
    unassigned = dict(totals)
    first_seen = {c: k for k, c in enumerate(images_by_class)}
    assignment = {}
    bar = tqdm(total=len(order), desc="split", unit="img", disable=not progress, leave=False)
    while True:
        pending = [c for c, n in unassigned.items() if n > 0]
        if not pending:
            break
        rarest = min(pending, key=lambda c: (unassigned[c], first_seen[c]))
        assigned_before = len(assignment)
        for image_id in images_by_class[rarest]:
            if image_id in assignment:
                continue
            best, best_key = None, None
            for s in range(n_splits):
                if room[s] <= 0:
                    continue
                key = (rarest not in present[s], wanted[s][rarest], room[s], rng.random())
                if best_key is None or key > best_key:
                    best, best_key = s, key
            assignment[image_id] = best
            room[best] -= 1
            wanted_here = wanted[best]
            for category_id, count in labels[image_id].items():
                wanted_here[category_id] -= count
                unassigned[category_id] -= count
                present[best].add(category_id)
        bar.update(len(assignment) - assigned_before)
    for image_id in order:
        if image_id not in assignment:
            s = max(range(n_splits), key=lambda k: (room[k], -k))
            assignment[image_id] = s
            room[s] -= 1
    bar.update(len(order) - bar.n)
    bar.close()
    return assignment


# --- result -----------------------------------------------------------------------------

@dataclass
class SplitResult:
    """The splits of one COCO file and what went where.

    `splits` maps "train", "val" (and "test") to COCO dicts. They share image and
    annotation objects with the input (no copies, to stay fast on ModaNet): treat them as
    read-only or deep-copy them first.
    """

    splits: dict
    image_counts: dict
    class_counts: dict
    fractions: dict
    seed: int
    stratified: bool
    source: str = "COCO data"
    dropped_unannotated: int = 0
    skipped_orphans: int = 0
    notes: list = field(default_factory=list)

    def table(self):
        """Printable text: images and instances per class in each split, with shares."""
        names = list(self.splits)
        label_width = max([len("images")] + [len(n) for n in self._class_names()]) + 2
        column = 18
        how = "stratified" if self.stratified else "plain shuffle"
        wanted = ", ".join(f"{n} {self.fractions[n]:.0%}" for n in names)
        lines = [f"Split of {self.source} ({how}, seed {self.seed}; asked {wanted})",
                 "".ljust(label_width) + "".join(n.rjust(column) for n in names)]

        def row(label, counts):
            total = sum(counts) or 1
            cells = [f"{c:,} ({c / total:.1%})".rjust(column) for c in counts]
            return label.ljust(label_width) + "".join(cells)

        lines.append(row("images", [self.image_counts[n] for n in names]))
        for class_name in self._class_names():
            lines.append(row(class_name, [self.class_counts[n][class_name] for n in names]))
        if self.dropped_unannotated:
            lines.append(f"dropped {self.dropped_unannotated:,} image(s) with no annotation "
                         f"(having_annotations)")
        if self.skipped_orphans:
            lines.append(f"skipped {self.skipped_orphans:,} annotation(s) whose image_id is "
                         f"not in 'images'")
        lines.extend(self.notes)
        return "\n".join(lines)

    def _class_names(self):
        first = next(iter(self.class_counts.values()))
        return list(first)

    def limited(self, seed=None, **counts):
        """A copy with at most counts[name] images in each split: `result.limited(train=4000, val=500)`.

        Why: a time budget (the colab profile) sees only a few thousand images; splitting all of
        ModaNet first and then cutting each split keeps the splits' separation and its
        stratification. The cut keeps, per split, one image of every class the split has
        (rarest class first), then fills up in a seeded random order. A count of None keeps the
        split whole. Same seed, same subset.
        """
        unknown = set(counts) - set(self.splits)
        if unknown:
            raise ValueError(f"no split named {sorted(unknown)}: this result has {list(self.splits)}")
        seed = self.seed if seed is None else int(seed)
        splits, image_counts, class_counts, notes = {}, {}, {}, list(self.notes)
        for name, split in self.splits.items():
            limit = counts.get(name)
            if limit is None or limit >= len(split["images"]):
                splits[name], image_counts[name] = split, self.image_counts[name]
                class_counts[name] = self.class_counts[name]
                continue
            if isinstance(limit, bool) or not isinstance(limit, numbers.Integral) or limit < 1:
                raise ValueError(f"{name}: the number of images to keep must be a whole number >= 1, got {limit!r}")
            kept = _subset_image_ids(split, int(limit), random.Random(f"{seed}-{name}"))
            names = {c["id"]: c["name"] for c in split.get("categories", [])}
            cut = dict(split, images=[im for im in split["images"] if im["id"] in kept],
                       annotations=[a for a in split["annotations"] if a["image_id"] in kept])
            splits[name], image_counts[name] = cut, len(cut["images"])
            class_counts[name] = dict.fromkeys(self.class_counts[name], 0)
            for annotation in cut["annotations"]:
                class_counts[name][names.get(annotation["category_id"], annotation["category_id"])] += 1
            notes.append(f"{name}: kept {len(cut['images']):,} of {len(split['images']):,} images")
        return SplitResult(splits=splits, image_counts=image_counts, class_counts=class_counts,
                           fractions=self.fractions, seed=self.seed, stratified=self.stratified,
                           source=self.source, dropped_unannotated=self.dropped_unannotated,
                           skipped_orphans=self.skipped_orphans, notes=notes)

    def write(self, train_path, val_path, test_path=None):
        """Write the splits as JSON, all or nothing: every file is written and synced to a temp
        file first, then all are renamed (`helpers.io.atomic_write_many`, whose docstring says
        what the rename phase can and cannot guarantee). On an error the old files stay.

        `test_path` is required exactly when there is a test split. Returns the paths.
        """
        targets = {"train": Path(train_path), "val": Path(val_path)}
        if "test" in self.splits:
            if test_path is None:
                raise ValueError("this split has a test set: give a test_path to write it")
            targets["test"] = Path(test_path)
        elif test_path is not None:
            raise ValueError(f"no test split (test fraction 0), but a test_path was given: "
                             f"{test_path}")
        check_output_paths(targets.values())
        with atomic_write_many(targets.values(), "wb") as files:
            for f, name in zip(files, targets):
                f.write(dumps(self.splits[name]))      # one split's JSON in memory at a time
        return list(targets.values())


def check_output_paths(paths, input_path=None):
    """A ValueError when two outputs are the same file, or one is the input file (after
    resolving symlinks; hard links too, for files that exist), or an output is a folder."""
    seen = [] if input_path is None else [(input_path, "the input file")]
    for path in paths:
        if Path(path).is_dir():
            raise ValueError(f"{path}: output path is a folder; give a file name")
        for other, what in seen:
            if same_file(path, other):
                raise ValueError(f"{path}: output path is also {what}")
        seen.append((path, "another output"))


def _subset_image_ids(split, limit, rng):
    """`limit` image ids of a COCO split: one image of each class first (rarest first), then the rest
    in `rng`'s order."""
    order = [im["id"] for im in split["images"]]
    rng.shuffle(order)
    classes_of = {image_id: set() for image_id in order}
    for annotation in split["annotations"]:
        if annotation["image_id"] in classes_of:
            classes_of[annotation["image_id"]].add(annotation["category_id"])
    images_with = {}
    for image_id in order:
        for category_id in classes_of[image_id]:
            images_with.setdefault(category_id, []).append(image_id)
    kept, covered = [], set()
    for category_id in sorted(images_with, key=lambda c: (len(images_with[c]), str(c))):
        if category_id not in covered and len(kept) < limit:
            kept.append(images_with[category_id][0])
            covered |= classes_of[images_with[category_id][0]]
    chosen = set(kept)
    for image_id in order:
        if len(kept) >= limit:
            break
        if image_id not in chosen:
            kept.append(image_id)
            chosen.add(image_id)
    return chosen


# --- the split --------------------------------------------------------------------------

def split_coco(coco, train_fraction=0.85, test_fraction=0.0, seed=42,
               having_annotations=False, stratify=True, progress=True):
    """Split a COCO dict (or the file at a path) by image into train / val (/ test).

    val gets 1 - train - test; a test split exists when test_fraction > 0. The same seed
    gives the same split. Every top-level key other than images/annotations (categories,
    info, licenses, ModaNet's year and type, ...) is copied into each split.
    `having_annotations=True` drops images without annotations (counted in the result).
    Bad fractions: ValueError; an unreadable or malformed file: DataError naming it.
    """
    fractions = check_fractions(train_fraction, test_fraction)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    coco, source = _load(coco)
    category_names = _category_names(coco, source)
    image_ids = _image_ids(coco, source)
    labels, orphans = _labels_by_image(coco, image_ids, category_names, source)

    dropped = 0
    if having_annotations:
        kept = [image_id for image_id in image_ids if labels[image_id]]
        dropped = len(image_ids) - len(kept)
        image_ids = kept
    if not image_ids:
        raise DataError(f"{source}: no images to split"
                        + (" (none has an annotation)" if dropped else ""))
    quotas = _image_quotas(len(image_ids), fractions, source)

    rng = random.Random(int(seed))
    order = list(image_ids)
    rng.shuffle(order)
    if stratify:
        assignment = _stratified_assignment(order, labels, quotas, fractions, rng, progress)
    else:
        assignment = _shuffled_assignment(order, quotas)

    names = list(fractions)
    images = [[] for _ in names]
    for image in coco["images"]:
        s = assignment.get(image["id"])
        if s is not None:
            images[s].append(image)
    annotations = [[] for _ in names]
    instances = [dict.fromkeys(category_names, 0) for _ in names]
    for annotation in coco["annotations"]:
        s = assignment.get(annotation["image_id"])
        if s is not None:
            annotations[s].append(annotation)
            instances[s][annotation["category_id"]] += 1

    extra_keys = [key for key in coco if key not in ("images", "annotations")]
    splits = {}
    for s, name in enumerate(names):
        split = {key: copy.deepcopy(coco[key]) for key in extra_keys}
        split["images"] = images[s]
        split["annotations"] = annotations[s]
        splits[name] = split

    notes = []
    if stratify:
        images_with = dict.fromkeys(category_names, 0)
        for image_id in image_ids:
            for category_id in labels[image_id]:
                images_with[category_id] += 1
        for category_id, class_name in category_names.items():
            missing = [n for s, n in enumerate(names) if instances[s][category_id] == 0]
            if images_with[category_id] and missing:
                why = (f"only {images_with[category_id]} image(s) have it"
                       if images_with[category_id] < len(names) else "no room left")
                notes.append(f"note: no {class_name} in {', '.join(missing)} ({why})")
    return SplitResult(
        splits=splits,
        image_counts={name: len(images[s]) for s, name in enumerate(names)},
        class_counts={name: {category_names[c]: n for c, n in instances[s].items()}
                      for s, name in enumerate(names)},
        fractions=fractions,
        seed=int(seed),
        stratified=bool(stratify),
        source=source,
        dropped_unannotated=dropped,
        skipped_orphans=orphans,
        notes=notes,
    )


# --- command line -----------------------------------------------------------------------

class _OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parse_fraction(text, what):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text!r}") from None


def main(argv=None):
    """`python -m helpers.split -s 0.85 [-t 0.10] [--seed N] IN TRAIN VAL [TEST]`."""
    parser = _OneLineErrorParser(
        prog="python -m helpers.split",
        description="Split a COCO annotation file by image into train / val (/ test).")
    parser.add_argument("-s", "--train-fraction", required=True, metavar="FRACTION",
                        help="share of images for train, e.g. 0.85")
    parser.add_argument("-t", "--test-fraction", metavar="FRACTION",
                        help="share of images for test (then TEST is required); val gets the rest")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--having-annotations", action="store_true",
                        help="drop images that have no annotation")
    parser.add_argument("--no-stratify", action="store_true",
                        help="plain shuffle instead of keeping class shares per split")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("input", metavar="IN", help="COCO annotation file to split")
    parser.add_argument("train", metavar="TRAIN", help="where to write the train split")
    parser.add_argument("val", metavar="VAL", help="where to write the val split")
    parser.add_argument("test", metavar="TEST", nargs="?", help="where to write the test split")
    args = parser.parse_args(argv)
    try:
        train_fraction = _parse_fraction(args.train_fraction, "train fraction (-s)")
        test_fraction = 0.0
        if args.test_fraction is not None:
            test_fraction = _parse_fraction(args.test_fraction, "test fraction (-t)")
            if test_fraction <= 0:
                raise ValueError(f"test fraction (-t) must be above 0, got {test_fraction}")
        check_fractions(train_fraction, test_fraction)
        if args.test_fraction is not None and args.test is None:
            raise ValueError("-t was given: a TEST output path is required")
        if args.test_fraction is None and args.test is not None:
            raise ValueError(f"TEST path {args.test} given without -t (test fraction)")
        outputs = [args.train, args.val] + ([args.test] if args.test else [])
        check_output_paths(outputs, input_path=args.input)
        result = split_coco(args.input, train_fraction, test_fraction, seed=args.seed,
                            having_annotations=args.having_annotations,
                            stratify=not args.no_stratify, progress=not args.quiet)
        written = result.write(*outputs)
    except ValueError as err:  # DataError is a ValueError
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    except OSError as err:     # unreadable input, output folder not writable, disk full
        parser.exit(2, f"{parser.prog}: error: {describe_os_error(err)}\n")
    print(result.table())
    for name, path in zip(result.splits, written):
        print(f"wrote {name}: {path}")
    return 0


if __name__ == "__main__":
    remove_temp_files_on_signals()     # SIGTERM / Ctrl-C leave no hidden temp file behind
    sys.exit(main())
