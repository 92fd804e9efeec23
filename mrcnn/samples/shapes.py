"""A toy data set: filled squares, circles and triangles, for the engine's tests, benches and your own tries.

Each image draws 1-3 shapes of three classes on a plain background, each in its class colour,
later shapes covering earlier ones (masks are what is visible). Deterministic per seed.
`coco_mask_ap` scores detections with pycocotools (COCO mask AP and AP50).

    from mrcnn.samples.shapes import ShapesDataset
    shapes = ShapesDataset()
    shapes.load_shapes(8, size=128, seed=0)
    shapes.prepare()
"""
import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mrcnn import utils

CLASS_NAMES = ("square", "circle", "triangle")
COLOURS = {1: (230, 70, 60), 2: (70, 200, 80), 3: (60, 90, 230)}


class ShapesDataset(utils.Dataset):
    def load_shapes(self, count, size=128, seed=0):
        rng = np.random.default_rng(seed)
        for class_id, name in enumerate(CLASS_NAMES, 1):
            self.add_class("shapes", class_id, name)
        low, high = int(size * 0.08), int(size * 0.19)
        for i in range(count):
            shapes = [(int(rng.integers(1, 4)), rng.integers(high, size - high, 2), int(rng.integers(low, high)))
                      for _ in range(int(rng.integers(1, 4)))]
            self.add_image("shapes", i, None, size=size, shapes=shapes,
                           background=tuple(int(v) for v in rng.integers(20, 90, 3)))

    def image_reference(self, image_id):
        return f"shapes image {image_id}"

    def load_image(self, image_id):
        info = self.image_info[image_id]
        image = np.empty((info["size"], info["size"], 3), np.uint8)
        image[:] = info["background"]
        masks, class_ids = self.load_mask(image_id)
        for k, class_id in enumerate(class_ids):
            image[masks[..., k]] = COLOURS[int(class_id)]
        return image

    def load_mask(self, image_id):
        info = self.image_info[image_id]
        size = info["size"]
        yy, xx = np.mgrid[:size, :size]
        masks, class_ids = [], []
        for class_id, (cy, cx), r in info["shapes"]:
            if class_id == 1:
                mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
            elif class_id == 2:
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            else:
                mask = (yy - cy <= r) & (yy - cy >= -r) & (abs(xx - cx) <= (yy - cy + r) / 2)
            for earlier in masks:          # the new shape covers what it is drawn on
                earlier &= ~mask
            masks.append(mask)
            class_ids.append(class_id)
        return np.stack(masks, axis=-1), np.array(class_ids, np.int32)


def coco_mask_ap(dataset, image_ids, results):
    """(mask AP, mask AP50) of `results` (detect() dicts, one per image id) against the truth."""
    gt = {"images": [], "annotations": [], "categories": [{"id": i} for i in range(1, len(CLASS_NAMES) + 1)]}
    detections = []
    for image_id, result in zip(image_ids, results):
        masks, class_ids = dataset.load_mask(image_id)
        gt["images"].append({"id": int(image_id), "height": masks.shape[0], "width": masks.shape[1]})
        for k in range(masks.shape[-1]):
            rle = mask_utils.encode(np.asfortranarray(masks[..., k].astype(np.uint8)))
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": int(image_id),
                                      "category_id": int(class_ids[k]), "segmentation": rle,
                                      "area": float(mask_utils.area(rle)), "bbox": list(mask_utils.toBbox(rle)),
                                      "iscrowd": 0})
        for k in range(len(result["class_ids"])):
            rle = mask_utils.encode(np.asfortranarray(result["masks"][..., k].astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            detections.append({"image_id": int(image_id), "category_id": int(result["class_ids"][k]),
                               "segmentation": rle, "score": float(result["scores"][k])})
    if not detections:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = gt
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(detections), "segm")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0]), float(evaluation.stats[1])
