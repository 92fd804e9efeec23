"""Time the data steps on a ModaNet-scale annotation file, against the cost of just reading and writing it.

Generates (with a seed) a synthetic COCO file the size of ModaNet (55,176 images of 400x600,
about 270,000 polygons of 10-40 points, some annotations in several parts) in a temp folder,
then times in this one process:

  floor    json parse + json dump of that file (the least any step that reads and writes it pays)
  split    helpers.split.split_coco 80/10/10 stratified, reading the file and writing three files
  convert  helpers.convert coco_to_via and via_to_coco, each reading and writing its file

Goal for each step: within 2x the floor and under 10 s. For the conversions it also prints where
a step's time went: read, convert, write, and freeing what it built when it returns.

    .venv/bin/python bench/bench_data.py                # full scale
    .venv/bin/python bench/bench_data.py --images 5000  # smaller
"""
import argparse
import gc
import inspect
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers.io import atomic_write, read_json, write_json_atomic  # noqa: E402
from helpers.modanet import INFO, categories  # noqa: E402
from helpers.split import split_coco  # noqa: E402

MODANET_IMAGES = 55_176
POLYGONS_PER_IMAGE = 270_000 / MODANET_IMAGES
MULTI_PART_SHARE = 0.06  # annotations drawn as 2-3 separate polygons
# Rough ModaNet class frequencies (bag ... scarf/tie): footwear, top and bag dominate.
CLASS_WEIGHTS = np.array([36, 12, 4, 58, 23, 15, 9, 20, 40, 5, 12, 5, 4], dtype=float)
GOAL_RATIO = 2.0
GOAL_SECONDS = 10.0


def synthetic_modanet(n_images, seed):
    """A COCO dict shaped like ModaNet's train file, with random star-shaped polygons."""
    rng = np.random.default_rng(seed)
    width, height = 400, 600
    image_ids = 100_000 + rng.choice(n_images * 20, size=n_images, replace=False)
    images = [{"file_name": f"{i:07d}.jpg", "width": width, "id": int(i), "license": 3,
               "height": height} for i in image_ids.tolist()]

    n_polygons = int(round(n_images * POLYGONS_PER_IMAGE))
    parts = np.where(rng.random(n_polygons) < MULTI_PART_SHARE, rng.integers(2, 4, n_polygons), 1)
    parts = parts[np.cumsum(parts) <= n_polygons]
    n_annotations = len(parts)
    owner = np.sort(rng.integers(0, n_images, n_annotations))
    category = rng.choice(13, size=n_annotations, p=CLASS_WEIGHTS / CLASS_WEIGHTS.sum()) + 1

    n_parts = int(parts.sum())
    points = rng.integers(10, 41, n_parts)
    centre_x = rng.uniform(40, width - 40, n_parts)
    centre_y = rng.uniform(40, height - 40, n_parts)
    radius = rng.uniform(8, 120, n_parts)
    part_of_point = np.repeat(np.arange(n_parts), points)
    starts = np.cumsum(points) - points
    step = np.arange(len(part_of_point)) - np.repeat(starts, points)
    angle = 2 * np.pi * step / points[part_of_point]
    reach = radius[part_of_point] * rng.uniform(0.5, 1.0, len(part_of_point))
    xs = np.clip(np.rint(centre_x[part_of_point] + reach * np.cos(angle)), 0, width - 1).astype(np.int64)
    ys = np.clip(np.rint(centre_y[part_of_point] + reach * np.sin(angle)), 0, height - 1).astype(np.int64)
    shoelace = xs * np.roll(ys, -1) - np.roll(xs, -1) * ys
    closing = starts + points - 1  # the last point's term wraps to the part's own first point
    shoelace[closing] = xs[closing] * ys[starts] - xs[starts] * ys[closing]
    part_area = np.abs(np.add.reduceat(shoelace, starts)) / 2
    part_x0, part_x1 = np.minimum.reduceat(xs, starts), np.maximum.reduceat(xs, starts)
    part_y0, part_y1 = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts)

    flat = np.empty(2 * len(xs), dtype=np.int64)
    flat[0::2], flat[1::2] = xs, ys
    polygons = np.split(flat, 2 * np.cumsum(points)[:-1])
    annotations = []
    part = 0
    image_id_list = image_ids.tolist()
    for k in range(n_annotations):
        first, last = part, part + int(parts[k])
        part = last
        x0, y0 = int(part_x0[first:last].min()), int(part_y0[first:last].min())
        x1, y1 = int(part_x1[first:last].max()), int(part_y1[first:last].max())
        annotations.append({
            "segmentation": [polygons[p].tolist() for p in range(first, last)],
            "area": int(part_area[first:last].sum()),
            "iscrowd": 0,
            "image_id": image_id_list[owner[k]],
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "category_id": int(category[k]),
            "id": k + 1,
        })
    coco = {"year": 2018, "categories": categories(),
            "licenses": [{"url": "http://creativecommons.org/licenses/by-nc/4.0/", "id": 3,
                          "name": "Attribution-NonCommercial License"}],
            "type": "instances", "info": dict(INFO), "images": images, "annotations": annotations}
    return coco, n_parts


def write_json_fast(path, obj):
    """Atomic JSON write through one json.dumps (the C encoder), as helpers.split writes."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False))


def timed(step, repeat=1):
    """(wall seconds, CPU seconds of this process) of the fastest of `repeat` runs."""
    best = None
    for _ in range(repeat):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        step()
        took = (time.perf_counter() - wall, time.process_time() - cpu)
        best = took if best is None or took[0] < best[0] else best
    return best


def read_json_stdlib(path):
    with open(path, "rb") as f:
        return json.load(f)


def bench_floor(source, folder, repeat):
    """The reference: the standard library's json parse and dump of the file, nothing else."""
    return timed(lambda: write_json_fast(folder / "floor.json", read_json_stdlib(source)), repeat)


def bench_split(source, folder, repeat):
    tables = []

    def step():
        result = split_coco(source, 0.8, 0.1, seed=42, stratify=True, progress=False)
        result.write(folder / "train.json", folder / "val.json", folder / "test.json")
        tables.append(result.table())
    took = timed(step, repeat)
    print("  " + tables[-1].replace("\n", "\n  "))
    return took


def bench_convert(source, folder, repeat):
    """(coco->via seconds, via->coco seconds), or None when helpers.convert is not there."""
    try:
        from helpers.convert import coco_to_via, via_to_coco
    except (ImportError, SyntaxError) as err:  # absent, or mid-edit
        print(f"conversion bench skipped: helpers.convert not available ({err})")
        return None
    def quiet(fn):
        return {"progress": False} if "progress" in inspect.signature(fn).parameters else {}
    via_path, back_path = folder / "via.json", folder / "back.json"

    summaries, phases = {}, {}

    def to_via():
        clock = time.perf_counter()
        coco = read_json(source)
        parsed = time.perf_counter()
        via, summaries["coco_to_via"] = coco_to_via(coco, **quiet(coco_to_via))
        converted = time.perf_counter()
        write_json_atomic(via_path, via)
        phases["coco_to_via"] = (parsed - clock, converted - parsed, time.perf_counter() - converted)

    def to_coco():
        clock = time.perf_counter()
        via = read_json(via_path)
        parsed = time.perf_counter()
        coco, summaries["via_to_coco"] = via_to_coco(via, categories(), info=dict(INFO),
                                                     **quiet(via_to_coco))
        converted = time.perf_counter()
        write_json_atomic(back_path, coco)
        phases["via_to_coco"] = (parsed - clock, converted - parsed, time.perf_counter() - converted)
    took = timed(to_via, repeat), timed(to_coco, repeat)
    for name, summary in summaries.items():
        print(f"  {name}: " + str(summary).replace("\n", "\n  "))
    for (name, (read, convert, write)), (wall, _) in zip(phases.items(), took):
        line = f"  {name} (last run): read {read:.2f} s, convert {convert:.2f} s, write {write:.2f} s"
        if repeat == 1:   # the rest of the step is freeing the parsed and converted objects
            line += f", freeing {wall - read - convert - write:.2f} s"
        print(line)
    return took


def report(name, took, floor):
    """One line: wall time and CPU time, each as a ratio to the floor's; the goal is on wall time."""
    (wall, cpu), (floor_wall, floor_cpu) = took, floor
    ok = wall / floor_wall <= GOAL_RATIO and wall < GOAL_SECONDS
    verdict = "meets goal" if ok else "MISSES goal"
    print(f"{name:<15}{wall:7.2f} s {wall / floor_wall:5.2f}x   cpu {cpu:7.2f} s "
          f"{cpu / floor_cpu:5.2f}x   {verdict} (<= {GOAL_RATIO:g}x floor, < {GOAL_SECONDS:g} s)")
    return ok


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=MODANET_IMAGES,
                        help=f"images to generate (default {MODANET_IMAGES:,}, ModaNet's count)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic file")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each step this many times and keep the fastest (default 1)")
    args = parser.parse_args(argv)
    if args.images < 3:
        parser.error("--images must be at least 3 (one image per split)")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        folder = Path(tmp)
        source = folder / "modanet_like.json"
        start = time.perf_counter()
        coco, n_polygons = synthetic_modanet(args.images, args.seed)
        write_json_fast(source, coco)
        n_annotations = len(coco["annotations"])
        del coco
        size_mb = source.stat().st_size / 1e6
        print(f"generated {args.images:,} images, {n_annotations:,} annotations, "
              f"{n_polygons:,} polygons, {size_mb:.0f} MB in {time.perf_counter() - start:.1f} s")

        floor = bench_floor(source, folder, args.repeat)
        print(f"{'floor':<15}{floor[0]:7.2f} s          cpu {floor[1]:7.2f} s"
              f"          (json parse + json dump of {size_mb:.0f} MB)")
        results = [report("split 80/10/10", bench_split(source, folder, args.repeat), floor)]
        converted = bench_convert(source, folder, args.repeat)
        if converted is not None:
            results.append(report("coco_to_via", converted[0], floor))
            results.append(report("via_to_coco", converted[1], floor))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
