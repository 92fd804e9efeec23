"""The custom season set of notebook 05: which photos, and, on real data, held-out ModaNet photos with truth.

ModaNet has no season photos. On the real path the custom set is made of held-out ModaNet photos
(the test split: model-1 never trained on them), each named after its largest garment with the
season `4mev` (all seasons): `top_4mev_3.jpg`. Their ModaNet polygons go with them as the truth
(`truth.json`, the form `helpers.sample.generate_custom_set` writes for the synthetic set), so
notebook 05 measures the auto-labels on real photos the same way it does on the synthetic set.

- `largest_garments`: each image's largest garment, by the area of its polygons (ModaNet's own
  `area` field is the box's width x height, so it is not used).
- `from_modanet`: copy up to N photos per garment and write their truth; resumable, atomic.
- `custom_photos`: which photos 05 labels (the learner's, those already there, or held-out
  ModaNet), or a `CourseStop` that says what to do.
- `upload_photos`: Colab's upload button, into a folder.

    python -m helpers.custom from-modanet COCO_JSON IMAGES_DIR OUT_DIR --per-class 20 --seed 42 \
        [--exclude TRAIN_JSON]
"""
import argparse
import contextlib
import filecmp
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from PIL import Image

from helpers.guards import image_size_problem, polygon_problem, rle_problem
from helpers.io import (DataError, atomic_write, name_leaves_folder, read_json, remove_temp_files_on_signals,
                        same_file, write_json_atomic)
from helpers.modanet import CLASS_NAMES, SEASONS, class_slug
from helpers.notebook import CourseStop
from helpers.seasons import IMAGE_EXTENSIONS, canonical_class, custom_file_name, parse_custom_name

SEASON = "4mev"                      # ModaNet's photos carry no season: "all seasons"
TRUTH_FILE = "truth.json"
PARTIAL_FILE = "build.partial.json"  # present while a from_modanet run is unfinished
SKIP_REASONS = ("in_exclude", "no_garment", "missing_file", "unsupported_format", "too_large")
ID_TYPES = {int, str}                # exact types: a list is unhashable, True would pass for 1


# --- reading ------------------------------------------------------------------------------

def _read_coco(path, what):
    """A COCO dict from `path`; DataError naming the file when it is missing or not COCO."""
    coco = read_json(path, what)
    if not (isinstance(coco, dict) and all(isinstance(coco.get(k), list)
                                           for k in ("images", "annotations", "categories"))):
        raise DataError(f"{path}: not a COCO file (needs lists 'images', 'annotations' and 'categories')")
    return coco


def _class_by_category(coco, source):
    """{category id: ModaNet class name}; DataError for a category that is not a ModaNet class."""
    classes = {}
    for category in coco["categories"]:
        try:
            classes[category["id"]] = canonical_class(category["name"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{source}: category {category!r} is not one of ModaNet's classes") from None
    return classes


def _images_by_id(coco, source):
    images = {}
    for image in coco["images"]:
        if not isinstance(image, dict) or not {"id", "file_name", "width", "height"} <= image.keys():
            raise DataError(f"{source}: an image entry lacks id, file_name, width or height: {image!r:.120}")
        if type(image["id"]) not in ID_TYPES:
            raise DataError(f"{source}: image entry {image!r:.120}: 'id' must be an integer or a string")
        if not isinstance(image["file_name"], str):
            raise DataError(f"{source}: image {image['id']!r}: 'file_name' must be a string")
        leaves = name_leaves_folder(image["file_name"])
        if leaves:
            raise DataError(f"{source}: image {image['id']!r} ({image['file_name']}): {leaves}")
        problem = (image_size_problem(image["width"], image["height"])
                   if all(type(image[k]) is int and image[k] > 0 for k in ("width", "height"))
                   else "'width' and 'height' must be positive integers")
        if problem:
            raise DataError(f"{source}: image {image['id']!r} ({image['file_name']}): {problem}")
        if image["id"] in images:
            raise DataError(f"{source}: image id {image['id']!r} appears twice")
        images[image["id"]] = image
    return images


def _annotations_by_image(coco, images, source):
    by_image = {image_id: [] for image_id in images}
    for ann in coco["annotations"]:
        if isinstance(ann, dict) and type(ann.get("image_id")) in ID_TYPES and ann["image_id"] in by_image:
            by_image[ann["image_id"]].append(ann)
        # else: an annotation of no listed image: it belongs to no photo we copy
    return by_image


def _segmentation_area(segmentation, height, width):
    """Pixels of a COCO segmentation (the union of its polygons, or an RLE), by pycocotools.

    What pycocotools cannot take is left out (helpers.guards): polygons of fewer than 3 points
    (it would read a 4-number polygon as a box), non-finite or far-out coordinates, outlines too
    long, RLE counts that do not cover the image (an RLE that is left out covers nothing)."""
    if isinstance(segmentation, dict):
        if rle_problem(segmentation, height, width):
            return 0.0
        rle = {"size": [height, width], "counts": segmentation["counts"]}
        if isinstance(rle["counts"], list):
            rle = mask_utils.frPyObjects(rle, height, width)
        elif isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
        return float(mask_utils.area(rle))
    if not isinstance(segmentation, list):
        return 0.0
    polygons = [[float(v) for v in p] for p in segmentation if polygon_problem(p, height, width) is None]
    if not polygons:
        return 0.0
    return float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))))


def largest_garments(coco, source="COCO data", progress=False):
    """{image id: (class name, polygon area in pixels)} of each image's largest garment.

    The area is that of the annotation's polygons (their union, rasterised by pycocotools), not
    the annotation's `area` field: ModaNet's is the box's w x h, which ranks a thin diagonal
    garment above a big compact one. Ties go to the lower category id, then the lower
    annotation id. Images without an annotation that covers a pixel are left out."""
    classes = _class_by_category(coco, source)
    images = _images_by_id(coco, source)
    by_image = _annotations_by_image(coco, images, source)
    largest = {}
    for image_id, anns in tqdm(by_image.items(), desc="Measuring garments", unit="img", disable=not progress):
        image = images[image_id]
        best = None
        for ann in anns:
            if type(ann.get("category_id")) is not int or ann["category_id"] not in classes:
                raise DataError(f"{source}: annotation {ann.get('id')!r} has category_id "
                                f"{ann.get('category_id')!r}, not in 'categories'")
            area = _segmentation_area(ann.get("segmentation"), image["height"], image["width"])
            key = (-area, ann["category_id"], ann.get("id", 0))
            if area > 0 and (best is None or key < best[0]):
                best = (key, classes[ann["category_id"]], area)
        if best is not None:
            largest[image_id] = (best[1], best[2])
    return largest


def _exclusion(exclude):
    """(image ids, file names) of the exclude file (a train split), or two empty sets."""
    if exclude is None:
        return set(), set()
    coco = _read_coco(exclude, "exclude file (train split)")
    entries = [im for im in coco["images"] if isinstance(im, dict)]
    return ({im["id"] for im in entries if type(im.get("id")) in ID_TYPES},
            {Path(im["file_name"]).name for im in entries if isinstance(im.get("file_name"), str)})


# --- choosing and copying -----------------------------------------------------------------

def _choose(largest, images, images_dir, per_class, seed, counts):
    """{class: [image ids]}: up to `per_class` photos of each largest-garment class.

    Each class's images are shuffled with a seed of their own (one class's photos never change
    another's choice), then taken in that order; a photo whose file is missing, whose format
    the course cannot read or whose header claims more pixels than Pillow decodes (a
    decompression bomb) is counted and the next one taken instead."""
    candidates = {}
    for image_id, (class_name, _) in largest.items():
        candidates.setdefault(class_name, []).append(image_id)
    chosen = {}
    for class_name in CLASS_NAMES:
        order = sorted(candidates.get(class_name, []), key=lambda i: (str(type(i)), i))
        random.Random(f"{seed}-{class_name}").shuffle(order)
        taken = []
        for image_id in order:
            if len(taken) == per_class:
                break
            source = images_dir / images[image_id]["file_name"]
            if source.suffix.lower() not in IMAGE_EXTENSIONS:
                counts["unsupported_format"] += 1
            elif not source.is_file():
                counts["missing_file"] += 1
            elif _too_large(source):
                counts["too_large"] += 1
            else:
                taken.append(image_id)
        if taken:
            chosen[class_name] = sorted(taken, key=lambda i: (str(type(i)), i))
    return chosen


def _too_large(path):
    """True when the photo's header claims more pixels than Pillow decodes (a decompression bomb).

    Only the header is read. Other unreadable photos are copied as they are: the auto-labeller
    skips and reports them."""
    try:
        with Image.open(path):
            return False
    except Image.DecompressionBombError:
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def _copy(source, target):
    """Copy a photo atomically; False when `target` already holds the same bytes (a re-run)."""
    if target.is_file() and filecmp.cmp(source, target, shallow=False):
        return False
    with open(source, "rb") as src, atomic_write(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return True


def _earlier_names(out_dir):
    """Photo names an earlier run wrote into out_dir/images (its truth, or its unfinished plan)."""
    names = set()
    with contextlib.suppress(DataError, TypeError, KeyError, AttributeError):
        names.update(im["file_name"] for im in read_json(out_dir / TRUTH_FILE, "truth")["images"])
    with contextlib.suppress(DataError, TypeError, KeyError, AttributeError):
        names.update(read_json(out_dir / PARTIAL_FILE, "partial build")["names"])
    return {Path(str(name)).name for name in names}


def from_modanet(coco_json, images_dir, out_dir, per_class, seed=42, exclude=None, progress=True, only=None):
    """Copy up to `per_class` photos per garment from a ModaNet COCO file into a custom set with truth.

    Each image is filed under its largest garment (`largest_garments`) and named
    `<garment>_4mev_<n>` (n = 1, 2, ... in image-id order), so `helpers.seasons.parse_custom_name`
    reads back the garment and the season 4mev. Writes out_dir/images/<name> (the photo's bytes,
    unchanged: a .png stays a .png, and formats the course does not read, other than
    .jpg/.jpeg/.png, are skipped and counted; bytes unchanged means the polygons fit the pixels
    exactly) and out_dir/truth.json: COCO with the source's (ModaNet's) categories, the chosen
    images (file_name = the new name, plus "source_file_name", "target_class" and "season") and
    all their annotations exactly as in the source.

    `exclude` (a train split) refuses its images, matched by id and by file name: they are
    skipped and counted, and naming one in `only` (image ids or file names to choose from) is an
    error. A photo missing from images_dir is skipped and counted. Every file is written
    atomically and truth.json last (an unfinished run leaves out_dir/build.partial.json and no
    truth); a re-run with the same arguments copies nothing again, and photos an earlier run
    wrote that are not chosen now are removed. Returns a summary dict (`format_summary`).
    """
    if isinstance(per_class, bool) or int(per_class) != per_class or per_class < 1:
        raise ValueError(f"per_class must be a whole number >= 1, got {per_class!r}")
    per_class, seed = int(per_class), int(seed)
    coco_json, images_dir, out_dir = Path(coco_json), Path(images_dir), Path(out_dir)
    coco = _read_coco(coco_json, "ModaNet COCO file")
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: images folder not found")
    excluded_ids, excluded_names = _exclusion(exclude)
    images = _images_by_id(coco, coco_json)

    def is_excluded(image):
        return image["id"] in excluded_ids or Path(image["file_name"]).name in excluded_names

    counts = dict.fromkeys(SKIP_REASONS, 0)
    if only is not None:
        images = _only(images, only, is_excluded, coco_json, exclude)
    kept = {i: im for i, im in images.items() if not is_excluded(im)}
    counts["in_exclude"] = len(images) - len(kept)
    largest = largest_garments(dict(coco, images=list(kept.values())), coco_json, progress)
    counts["no_garment"] = len(kept) - len(largest)
    chosen = _choose(largest, kept, images_dir, per_class, seed, counts)
    names = {image_id: custom_file_name(class_name, SEASON, n, images_dir.joinpath(kept[image_id]["file_name"])
                                        .suffix.lower())
             for class_name, ids in chosen.items() for n, image_id in enumerate(ids, 1)}

    parameters = {"coco_json": str(coco_json.resolve()), "images_dir": str(images_dir.resolve()),
                  "per_class": per_class, "seed": seed, "season": SEASON,
                  "exclude": str(Path(exclude).resolve()) if exclude is not None else None}
    earlier = _earlier_names(out_dir)
    write_json_atomic(out_dir / PARTIAL_FILE, {"parameters": parameters,
                                               "names": sorted(earlier | set(names.values()))})
    (out_dir / TRUTH_FILE).unlink(missing_ok=True)
    stale = 0
    for name in sorted(earlier - set(names.values())):
        with contextlib.suppress(FileNotFoundError):
            (out_dir / "images" / name).unlink()
            stale += 1
    copied = 0
    for image_id, name in tqdm(names.items(), desc="Copying held-out photos", unit="img", disable=not progress):
        copied += _copy(images_dir / kept[image_id]["file_name"], out_dir / "images" / name)

    truth_path = write_json_atomic(out_dir / TRUTH_FILE, _truth(coco, kept, chosen, names, parameters))
    (out_dir / PARTIAL_FILE).unlink()
    return {"out_dir": str(out_dir), "truth": str(truth_path), "images": len(names),
            "per_class": {c: len(chosen.get(c, [])) for c in CLASS_NAMES},
            "available_per_class": {c: sum(g == c for g, _ in largest.values()) for c in CLASS_NAMES},
            "copied": copied, "already_copied": len(names) - copied, "stale_removed": stale,
            "skipped": counts, "parameters": parameters}


def _only(images, only, is_excluded, source, exclude):
    """The images the user asked for by id or file name; DataError for an unknown or excluded one."""
    by_name = {Path(im["file_name"]).name: i for i, im in images.items()}
    picked = {}
    for wanted in only:
        image_id = wanted if wanted in images else by_name.get(Path(str(wanted)).name)
        if image_id is None:
            raise DataError(f"{source}: no image with id or file name {wanted!r}")
        if is_excluded(images[image_id]):
            raise DataError(f"{exclude}: image {wanted!r} is in the exclude file (model-1 trained on it); "
                            "choose a held-out image")
        picked[image_id] = images[image_id]
    return picked


def _truth(coco, images, chosen, names, parameters):
    """The truth COCO: the source's other keys, the chosen images renamed, all their annotations."""
    ids = [image_id for class_ids in chosen.values() for image_id in class_ids]
    class_of = {image_id: class_name for class_name, class_ids in chosen.items() for image_id in class_ids}
    entries = [dict(images[i], file_name=names[i], source_file_name=images[i]["file_name"],
                    target_class=class_of[i], season=SEASON) for i in sorted(ids, key=names.get)]
    wanted = set(ids)
    annotations = [ann for ann in coco["annotations"]
                   if isinstance(ann, dict) and type(ann.get("image_id")) in ID_TYPES and ann["image_id"] in wanted]
    info = dict(coco.get("info") or {}, custom_set=dict(parameters, made_by="helpers.custom.from_modanet"))
    return dict(coco, info=info, images=entries, annotations=annotations)


def format_summary(summary):
    """A from_modanet summary as a few readable lines."""
    skipped = ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in summary["skipped"].items()
                        if count) or "none"
    lines = [f"Custom set from held-out ModaNet photos: {summary['images']} photos in {summary['out_dir']}",
             f"  copied {summary['copied']}, already there {summary['already_copied']}, "
             f"stale removed {summary['stale_removed']}; skipped: {skipped}",
             f"  truth: {summary['truth']}",
             f"  {'largest garment':16} {'photos':>6} {'available':>9}"]
    for name in CLASS_NAMES:
        available = summary["available_per_class"][name]
        if available:
            lines.append(f"  {name:16} {summary['per_class'][name]:>6} {available:>9}")
    return "\n".join(lines)


# --- notebook 05: which photos ------------------------------------------------------------

@dataclass(frozen=True)
class CustomPhotos:
    """The photos notebook 05 labels: their folder, their truth (None for a learner's own), where from."""

    images_dir: Path
    truth: Path = None
    source: str = ""
    files: tuple = ()               # photo names that parse as <class>_<season>_<n>
    unparsed: tuple = ()            # photo names that do not (05 skips them as "bad name")
    built: dict = field(default=None, compare=False)   # from_modanet's summary when this call built the set

    def hand_over_truth(self, target):
        """Copy this set's truth to `target` (paths.labels_truth), or remove a stale one when it has none.

        06 and 07 measure against `target` only: truth of another photo set (an earlier build,
        before the learner switched to their own photos) must never be compared with these labels.
        """
        target = Path(target)
        if self.truth is None:
            target.unlink(missing_ok=True)
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(target, "wb") as out, open(self.truth, "rb") as src:
            shutil.copyfileobj(src, out)
        return target

    def __str__(self):
        lines = [f"Custom photos: {len(self.files)} in {self.images_dir} ({self.source})",
                 f"  truth: {self.truth}" if self.truth else "  truth: none (a real custom set has none)"]
        if self.unparsed:
            lines.append(f"  {len(self.unparsed)} not named <class>_<season>_<n> (skipped), "
                         f"e.g. {', '.join(self.unparsed[:3])}")
        if self.built:
            lines.append(format_summary(self.built))
        return "\n".join(lines)


def _photo_names(folder):
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _parsed(names):
    good, bad = [], []
    for name in names:
        try:
            parse_custom_name(name)
            good.append(name)
        except ValueError:
            bad.append(name)
    return tuple(good), tuple(bad)


def guidance(profile, paths, problem="No custom photos to label yet."):
    """What to do when there are no usable custom photos: the notebook to run first, or where the
    learner's own photos go, how they are named and how many each label needs."""
    seasons = ", ".join(f"{code} ({word})" for code, word in SEASONS.items())
    lines = [problem]
    if profile.custom_per_class > 0:
        lines.append(f"Run 02_split.ipynb first (profile {profile.name}): this notebook then takes up to "
                     f"{profile.custom_per_class} held-out ModaNet test photos per garment, with their true outlines.")
    elif profile.custom_per_label > 0:
        lines.append(f"Run 01_download_modanet.ipynb first (profile {profile.name}): it draws the synthetic "
                     "custom set, with its truth.")
    lines += [("Or label" if len(lines) > 1 else "Label") + " photos of your own, named <class>_<season>_<n>.jpg "
              "(.jpeg and .png work too), e.g. skirt_yaz_12.jpg or top_kis_3.jpg:",
              f"  classes: {', '.join(class_slug(c) for c in CLASS_NAMES)}",
              f"  seasons: {seasons}",
              f"  * put them in {paths.custom_images},",
              "  * or in a folder of your own (on Colab, a Drive folder such as /content/drive/MyDrive/my_photos)",
              "    and set CUSTOM_IMAGES = \"/path/to/that/folder\" in the parameters cell,",
              "  * or, on Colab, tick UPLOAD_PHOTOS and upload them;",
              f"  then run this notebook again. Take at least {profile.min_per_class} photos of every label "
              "(<class>_<season>) model-2 should learn,",
              f"  more if you can: a label is kept only with {profile.min_per_class} auto-labelled garments "
              "(MIN_PER_CLASS), and model-1 misses some photos."]
    return "\n".join(lines)


def _usable(folder, profile, paths, source, truth=None):
    """CustomPhotos for a folder of photos, or CourseStop when none is named <class>_<season>_<n>."""
    names = _photo_names(folder)
    if not names:
        raise CourseStop(guidance(profile, paths, f"{folder}: no .jpg, .jpeg or .png photos in it."))
    good, bad = _parsed(names)
    if not good:
        raise CourseStop(guidance(profile, paths, f"{folder}: none of its {len(names)} photos is named "
                                                  f"<class>_<season>_<n> (e.g. {bad[0]})."))
    return CustomPhotos(Path(folder), truth, source, good, bad)


def custom_photos(profile, paths, custom_images=None, progress=True):
    """Which photos notebook 05 auto-labels, first that applies:

    (a) `custom_images`, a folder the learner gave (CUSTOM_IMAGES, an upload): their own photos, no truth;
    (b) paths.custom_images when it already holds photos (the synthetic set 01 drew, or an
        earlier build), with paths.custom_truth when it is there;
    (c) a real-data profile (custom_per_class > 0) once 02 wrote the test split: up to
        custom_per_class held-out test photos per garment (`from_modanet`, excluding the train
        split), with their ModaNet polygons as truth; an unfinished build is resumed;
    (d) otherwise a CourseStop whose message says what to do (`guidance`).
    Returns CustomPhotos.
    """
    if custom_images:
        folder = Path(custom_images).expanduser()
        if not folder.is_dir():
            raise CourseStop(guidance(profile, paths, f"CUSTOM_IMAGES = {str(custom_images)!r}: no such folder."))
        own = folder.resolve() == paths.custom_images.resolve()
        truth = paths.custom_truth if own and _finished(paths) else None
        return _usable(folder, profile, paths, "CUSTOM_IMAGES", truth)
    real = profile.custom_per_class > 0
    if _photo_names(paths.custom_images) and (_finished(paths) or not real):
        if not _finished(paths):
            raise CourseStop(guidance(profile, paths, f"{paths.custom}: an unfinished build ({PARTIAL_FILE}); "
                                                      "run `python -m helpers.custom from-modanet` again, or "
                                                      "delete the folder."))
        truth = paths.custom_truth if paths.custom_truth.is_file() else None
        return _usable(paths.custom_images, profile, paths, "the custom set", truth)
    test, train = paths.split_file("test"), paths.split_file("train")
    if real and test.is_file():
        if not train.is_file():
            raise CourseStop(guidance(profile, paths, f"{train} is missing: run 02_split.ipynb again "
                                                      "(same profile) so the held-out photos can be checked."))
        try:
            built = from_modanet(test, paths.images, paths.custom, profile.custom_per_class, seed=profile.seed,
                                 exclude=train, progress=progress)
        except DataError as err:
            raise CourseStop(f"{err}\nRun 02_split.ipynb again (same profile), or see below.\n\n"
                             + guidance(profile, paths)) from None
        if not built["images"]:
            raise CourseStop(guidance(profile, paths, f"No held-out photo of {test} was found in {paths.images} "
                                                      "(run 01_download_modanet.ipynb for the photos)."))
        photos = _usable(paths.custom_images, profile, paths, "held-out ModaNet test photos", paths.custom_truth)
        return CustomPhotos(photos.images_dir, photos.truth, photos.source, photos.files, photos.unparsed, built)
    raise CourseStop(guidance(profile, paths))


def _finished(paths):
    """False while a from_modanet build of paths.custom is unfinished."""
    return not (paths.custom / PARTIAL_FILE).exists()


def upload_photos(folder):
    """On Colab: Colab's upload button, saving the photos into `folder`; returns the folder.

    Elsewhere it says uploads are Colab-only and returns None. Colab saves uploads in the
    working directory (a name already there gets " (1)" added), so the upload runs inside `folder`.
    """
    try:
        from google.colab import files
    except ImportError:
        print("Uploading works on Colab only: here, copy your photos into a folder and set CUSTOM_IMAGES to it.")
        return None
    folder = Path(folder).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(folder):
        uploaded = files.upload() or {}
    good, bad = _parsed(_photo_names(folder))
    print(f"Uploaded {len(uploaded)} file(s); {folder} now holds {len(good)} photo(s) named <class>_<season>_<n>"
          + (f" and {len(bad)} not so named (skipped), e.g. {', '.join(bad[:3])}" if bad else ""))
    return folder


# --- the command line ---------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m helpers.custom",
                                     description="Build a custom season set from held-out ModaNet photos.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("from-modanet", help="copy up to N photos per largest garment, with their truth")
    build.add_argument("coco_json", help="ModaNet COCO file to take photos from (e.g. the test split)")
    build.add_argument("images_dir", help="folder of ModaNet's photos")
    build.add_argument("out_dir", help="output folder: images/ and truth.json")
    build.add_argument("--per-class", type=int, required=True, help="photos per largest garment (N)")
    build.add_argument("--seed", type=int, default=42, help="seed of the choice (default 42)")
    build.add_argument("--exclude", default=None, help="train split JSON: its images are never taken")
    build.add_argument("--image", action="append", default=None, dest="only",
                       help="take only this image (file name or id; repeatable)")
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    only = None if args.only is None else [int(v) if v.isdigit() else v for v in args.only]
    try:
        for source in (args.coco_json, args.exclude):    # truth.json must not replace an input
            if source is not None and same_file(Path(args.out_dir) / TRUTH_FILE, source):
                raise DataError(f"{args.out_dir}: its {TRUTH_FILE} would replace the input {source}; "
                                f"choose another output folder")
        summary = from_modanet(args.coco_json, args.images_dir, args.out_dir, args.per_class, seed=args.seed,
                               exclude=args.exclude, progress=not args.quiet, only=only)
    except (DataError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    remove_temp_files_on_signals()     # SIGTERM / Ctrl-C leave no hidden temp file behind
    sys.exit(main())
