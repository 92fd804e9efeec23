"""One call per profile (`build_sample`: the sample and custom set, skipped when nothing changed)
and the command line `python -m helpers.sample`."""
import argparse
import re
import sys
from pathlib import Path

from helpers.io import DataError, read_json, write_json_atomic
from helpers.modanet import CLASS_NAMES, class_slug
from helpers.sample.writing import TRAIN_FILE, VAL_FILE, generate_custom_set, generate_modanet_sample, is_custom_name
from helpers.seasons import SEASON_CODES, canonical_class

GENERATOR_VERSION = 1            # bump when the drawing changes, so build_sample rebuilds
MANIFEST_FILE = "sample_manifest.json"


def sample_parameters(profile):
    """What the sample of `profile` depends on (compared with the manifest to skip a re-run)."""
    return {"generator_version": GENERATOR_VERSION, "sample_images": int(profile.sample_images),
            "sample_size": [int(v) for v in profile.sample_size],
            "custom_classes": [canonical_class(c) for c in profile.custom_classes],
            "custom_per_label": int(profile.custom_per_label), "seed": int(profile.seed)}


def _remove_stale(folder, keep, is_ours):
    removed = 0
    for path in sorted(folder.glob("*.jpg")):
        if path.name not in keep and is_ours(path.name):
            path.unlink()
            removed += 1
    return removed


def build_sample(profile, force=False, progress=True, root=None):
    """Write the profile's synthetic sample and custom set under its data root (or `root`).

    A re-run with the same parameters returns the existing manifest ("skipped": True);
    other parameters, or force=True, rebuild. The manifest is written last, so an
    interrupted build is never mistaken for a finished one. A profile with custom_per_label 0
    (the colab profile standing in for ModaNet) gets no drawn custom set: its custom photos
    come from the held-out split (`helpers.custom`), as on real ModaNet."""
    if getattr(profile, "data", None) != "synthetic":
        raise ValueError(f"profile {getattr(profile, 'name', profile)!r} uses real ModaNet data; "
                         "build_sample draws the synthetic set of the 'smoke' profile")
    root = Path(root) if root is not None else profile.paths.source
    params = sample_parameters(profile)
    manifest_path = root / MANIFEST_FILE
    with_custom = params["custom_per_label"] > 0
    done = [root / "annotations" / TRAIN_FILE, root / "annotations" / VAL_FILE]
    done += [root / "custom" / "truth.json"] if with_custom else []
    if not force and manifest_path.is_file():
        try:
            manifest = read_json(manifest_path, "sample manifest")
        except DataError:
            manifest = None
        if isinstance(manifest, dict) and manifest.get("parameters") == params and all(p.is_file() for p in done):
            return dict(manifest, skipped=True)
    manifest_path.unlink(missing_ok=True)
    sample = generate_modanet_sample(root, params["sample_images"], params["sample_size"], params["seed"], progress)
    custom = (generate_custom_set(root, params["custom_classes"], params["custom_per_label"],
                                  params["sample_size"], params["seed"] + 1, progress) if with_custom else
              {"images": 0, "annotations": 0, "classes": [], "seasons": [], "per_label": 0})
    keep = {f"{i:07d}.jpg" for i in range(1, sample["images"] + sample["val_images"] + 1)}
    removed = _remove_stale(root / "images", keep, re.compile(r"^\d{7}\.jpg$").match)
    keep = {f"{class_slug(c)}_{s}_{n}.jpg" for c in params["custom_classes"] for s in SEASON_CODES
            for n in range(1, params["custom_per_label"] + 1)}
    if with_custom:
        removed += _remove_stale(root / "custom" / "images", keep, is_custom_name)
    for summary in (sample, custom):
        for key in ("train_annotations", "val_annotations", "truth"):
            if key in summary:
                summary[key] = str(Path(summary[key]).relative_to(root))
    manifest = {"parameters": params, "root": str(root), "modanet_sample": sample, "custom_set": custom,
                "stale_images_removed": removed}
    write_json_atomic(manifest_path, manifest, indent=1)
    return dict(manifest, skipped=False)


def format_summary(manifest):
    """The manifest as a few readable lines."""
    sample, custom = manifest["modanet_sample"], manifest["custom_set"]
    n = max(sample["images"], 1)
    lines = [f"Synthetic sample in {manifest['root']}" + (" (already built, skipped)" if manifest.get("skipped") else ""),
             f"  ModaNet-like: {sample['images']} train images ({sample['val_images']} more in val), "
             f"{sample['annotations']} annotations, {sample['multi_part_annotations']} multi-part",
             f"  {'class':12} {'annotations':>11} {'images':>7} {'% images':>9}"]
    for name in CLASS_NAMES:
        count = sample["images_per_class"][name]
        lines.append(f"  {name:12} {sample['annotations_per_class'][name]:>11} {count:>7} {100 * count / n:>8.1f}%")
    if not custom["images"]:
        lines.append("  Custom set: none drawn (taken from the held-out split by notebook 05, as on real ModaNet)")
        return "\n".join(lines)
    lines.append(f"  Custom set: {custom['images']} images = {len(custom['classes'])} classes x "
                 f"{len(custom['seasons'])} seasons x {custom['per_label']}, {custom['annotations']} annotations")
    lines.append(f"    classes: {', '.join(custom['classes'])}; seasons: {', '.join(custom['seasons'])}")
    return "\n".join(lines)


def main(argv=None):
    from helpers.profiles import get_profile

    parser = argparse.ArgumentParser(prog="python -m helpers.sample",
                                     description="Draw the synthetic ModaNet-like sample and custom season set.")
    parser.add_argument("--profile", default="smoke", help="profile to build for (default: smoke)")
    parser.add_argument("--root", default=None, help="write here instead of the profile's data folder")
    parser.add_argument("--force", action="store_true", help="rebuild even if the manifest matches")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
        manifest = build_sample(profile, force=args.force, progress=not args.quiet, root=args.root)
    except (ValueError, DataError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_summary(manifest))
    return 0
