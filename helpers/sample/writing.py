"""Writing the synthetic sets in ModaNet's COCO form: `generate_modanet_sample` (the ModaNet-like
train and val files with their pictures) and `generate_custom_set` (the custom season photos of
notebook 05 and their hidden truth), and the names the custom set's photos get."""
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from helpers.io import atomic_write, write_json_atomic
from helpers.modanet import CATEGORY_ID_BY_NAME, CLASS_NAMES, INFO, categories, class_slug
from helpers.sample.scene import draw_scene
from helpers.seasons import SEASON_CODES, canonical_class, custom_file_name
from helpers.seasons import parse_custom_name as parse_any_custom_name

TRAIN_FILE = "modanet2018_instances_train.json"
VAL_FILE = "modanet2018_instances_val.json"
JPEG_QUALITY = 90
SAMPLE_YEAR = 2018               # ModaNet's "year"
SAMPLE_LICENSES = [{
    "url": "https://opensource.org/licenses/MIT",
    "id": 1,
    "name": "Synthetic picture drawn by helpers.sample (MIT, like the course code)",
}]
SAMPLE_INFO = dict(
    INFO,
    contributor="ModaNet Seasons course (helpers.sample)",
    description="Synthetic ModaNet-like sample drawn by helpers.sample; not MODA-NET data",
)


# --- COCO records ---------------------------------------------------------------------------
def _annotation(ann_id, image_id, name, polygons, height, width):
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    area = int(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(
        [list(map(float, p)) for p in polygons], height, width))))
    return {"segmentation": [list(p) for p in polygons], "area": area, "iscrowd": 0, "image_id": image_id,
            "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
            "category_id": CATEGORY_ID_BY_NAME[name], "id": ann_id}


def _coco(images, annotations):
    return {"year": SAMPLE_YEAR, "categories": categories(), "licenses": SAMPLE_LICENSES, "type": "instances",
            "info": SAMPLE_INFO, "images": images, "annotations": annotations}


def _write_jpeg(path, rgb):
    with atomic_write(path, "wb") as f:
        Image.fromarray(rgb).save(f, format="JPEG", quality=JPEG_QUALITY)


def _check_size(size):
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height) in pixels, got {size!r}") from None
    if width < 64 or height < 128:
        raise ValueError(f"size {width}x{height} is too small: use at least 64x128 pixels "
                         "(width x height), or small garments vanish")
    return width, height


def _image_entry(file_name, image_id, width, height):
    return {"file_name": file_name, "width": width, "id": image_id, "license": 1, "height": height}


def val_image_count(n_images):
    """How many extra, unannotated 'val' pictures go with `n_images` train pictures."""
    return max(1, min(50, n_images // 20))


def _annotate(garments, image_id, labels, annotations, label_maps, file_name):
    """Append one COCO annotation per visible garment; with `label_maps`, record the image's
    map of annotation ids (for the tests' pixel-exact check)."""
    height, width = labels.shape
    ann_map = np.zeros(labels.shape, np.int32) if label_maps is not None else None
    for garment in garments:
        ann = _annotation(len(annotations) + 1, image_id, garment["name"], garment["polygons"], height, width)
        annotations.append(ann)
        if ann_map is not None:
            ann_map[labels == garment["index"]] = ann["id"]
    if ann_map is not None:
        label_maps[file_name] = ann_map


def generate_modanet_sample(root, n_images, size=(128, 192), seed=42, progress=True, return_label_maps=False):
    """Draw `n_images` ModaNet-like pictures under `root` and write them in ModaNet's COCO form.

    Writes root/images/<id>.jpg, root/annotations/modanet2018_instances_train.json (with
    polygons) and root/annotations/modanet2018_instances_val.json (a few extra images, no
    annotations, like the real val file). Returns a summary dict; with
    `return_label_maps=True` it also holds "label_maps": {file_name: int32 array whose pixels
    are the annotation id seen there, 0 for none}."""
    if int(n_images) < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images!r}")
    n_images = int(n_images)
    width, height = _check_size(size)
    root = Path(root)
    image_dir = root / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    n_val = val_image_count(n_images)
    train_images, val_images, annotations, label_maps = [], [], [], {}
    for k in tqdm(range(n_images + n_val), desc="Drawing ModaNet-like sample", disable=not progress):
        image_id = k + 1
        file_name = f"{image_id:07d}.jpg"
        rng = np.random.default_rng([int(seed), 0, k])
        rgb, labels, garments = draw_scene(rng, (width, height))
        _write_jpeg(image_dir / file_name, rgb)
        entry = _image_entry(file_name, image_id, width, height)
        if k >= n_images:
            val_images.append(entry)
            continue
        train_images.append(entry)
        _annotate(garments, image_id, labels, annotations, label_maps if return_label_maps else None, file_name)
    train_path = write_json_atomic(root / "annotations" / TRAIN_FILE, _coco(train_images, annotations))
    val_path = write_json_atomic(root / "annotations" / VAL_FILE, _coco(val_images, []))
    summary = _summarise(train_images, annotations)
    summary.update({"val_images": len(val_images), "size": [width, height], "seed": int(seed),
                    "train_annotations": str(train_path), "val_annotations": str(val_path)})
    if return_label_maps:
        summary["label_maps"] = label_maps
    return summary


def _summarise(images, annotations):
    per_class = {name: 0 for name in CLASS_NAMES}
    images_with = {name: set() for name in CLASS_NAMES}
    for ann in annotations:
        name = CLASS_NAMES[ann["category_id"] - 1]
        per_class[name] += 1
        images_with[name].add(ann["image_id"])
    return {"images": len(images), "annotations": len(annotations),
            "multi_part_annotations": sum(len(a["segmentation"]) > 1 for a in annotations),
            "annotations_per_class": per_class,
            "images_per_class": {name: len(ids) for name, ids in images_with.items()}}


def parse_custom_name(file_name):
    """A name this generator writes: 'scarf_tie_kis_3.jpg' -> ('scarf/tie', 'kis', 3).

    Stricter than helpers.seasons.parse_custom_name (which also reads English seasons and
    other extensions): ValueError for any name that is not canonical."""
    parsed = parse_any_custom_name(file_name)
    expected = custom_file_name(*parsed)
    if Path(file_name).name != expected:
        raise ValueError(f"{file_name}: not a name helpers.sample writes (it would be {expected})")
    return parsed


def is_custom_name(file_name):
    try:
        parse_custom_name(file_name)
    except ValueError:
        return False
    return True




def generate_custom_set(root, classes, per_label, size=(128, 192), seed=43, progress=True,
                        return_label_maps=False):
    """Draw the custom season set: `per_label` pictures for every (class, season) label.

    Writes root/custom/images/<slug>_<season>_<n>.jpg, where the named garment is worn in
    the season's look, and the hidden truth root/custom/truth.json: COCO with ModaNet's
    categories, every visible garment annotated, each image entry carrying "target_class"
    and "season". Returns a summary dict (plus "label_maps" like generate_modanet_sample)."""
    classes, per_label = _check_custom_arguments(classes, per_label)
    width, height = _check_size(size)
    root = Path(root)
    image_dir = root / "custom" / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(c, s, n) for c in classes for s in SEASON_CODES for n in range(1, per_label + 1)]
    images, annotations, label_maps = [], [], {}
    for image_id, (name, season, n) in enumerate(
            tqdm(jobs, desc="Drawing custom season set", disable=not progress), start=1):
        file_name = f"{class_slug(name)}_{season}_{n}.jpg"
        rng = np.random.default_rng([int(seed), 1, CLASS_NAMES.index(name), SEASON_CODES.index(season), n])
        rgb, labels, garments = _draw_clear_target(rng, (width, height), name, season, file_name)
        _write_jpeg(image_dir / file_name, rgb)
        entry = _image_entry(file_name, image_id, width, height)
        entry.update({"target_class": name, "season": season})
        images.append(entry)
        _annotate(garments, image_id, labels, annotations, label_maps if return_label_maps else None, file_name)
    truth_path = write_json_atomic(root / "custom" / "truth.json", _coco(images, annotations))
    summary = _summarise(images, annotations)
    summary.update({"classes": classes, "seasons": list(SEASON_CODES), "per_label": per_label,
                    "labels": len(classes) * len(SEASON_CODES), "size": [width, height], "seed": int(seed),
                    "truth": str(truth_path)})
    if return_label_maps:
        summary["label_maps"] = label_maps
    return summary


def _check_custom_arguments(classes, per_label):
    """(canonical class names, per_label as int); ValueError for an empty or repeated class list
    or a per_label below 1."""
    if isinstance(classes, str):
        classes = [classes]
    classes = [canonical_class(c) for c in classes]
    if not classes:
        raise ValueError("classes is empty: name at least one ModaNet class")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes lists a class twice: {classes}")
    if int(per_label) < 1:
        raise ValueError(f"per_label must be at least 1, got {per_label!r}")
    return classes, int(per_label)


def _draw_clear_target(rng, size, name, season, file_name):
    """draw_scene's (rgb, labels, garments) of a picture where the target garment `name` shows
    at least 60% of itself (up to 50 tries; ValueError after)."""
    for _ in range(50):
        rgb, labels, garments = draw_scene(rng, size, target=name, target_season=season)
        target = [g for g in garments if g["target"]]
        if target and target[0]["visible_fraction"] >= 0.6:
            return rgb, labels, garments
    raise ValueError(f"could not draw a clearly visible {name} for {file_name}: "
                     "try a larger size or another seed")
