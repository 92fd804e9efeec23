"""Dataset base class and numpy helpers shared by the model and its users.

`Dataset` keeps Matterport's interface: subclass it, call `add_class` and `add_image` while
reading your annotations, then `prepare()`; override `load_mask` (and `image_reference`).
Below it, the numpy geometry of Mask R-CNN: boxes, IoU, NMS, box deltas, resizing images
and masks, mini-masks, anchors and per-image AP.
"""
import logging
import math
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)

# Matterport's COCO-trained Mask R-CNN weights (ResNet-101, 81 classes), download_trained_weights' source.
COCO_MODEL_URL = "https://github.com/matterport/Mask_RCNN/releases/download/v2.0/mask_rcnn_coco.h5"

# Matterport's names of TensorFlow functions that live in mrcnn.box_graph: found there on first
# use, so that importing this numpy module does not import TensorFlow.
_GRAPH_FUNCTIONS = ("batch_slice", "box_refinement_graph")


def __getattr__(name):
    if name in _GRAPH_FUNCTIONS:
        from mrcnn import box_graph
        return getattr(box_graph, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_GRAPH_FUNCTIONS))


class ImageTooLargeError(ValueError):
    """An image whose header claims more pixels than Pillow decodes safely (a decompression bomb)."""


def read_image_rgb(path):
    """Read an image file as an (H, W, 3) uint8 RGB array, whatever its mode.

    Grayscale, palette, RGBA (composited on white), CMYK and 16-bit files become RGB;
    an EXIF orientation tag is applied so the pixels match what a viewer shows.
    Raises ValueError naming the file when it cannot be read as an image, and its subclass
    ImageTooLargeError when the header claims more than twice Pillow's MAX_IMAGE_PIXELS
    (Pillow's DecompressionBombError is no OSError: it would escape a caller's ValueError).
    """
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im)
            elif im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64)
                top = arr.max() or 1.0
                im = Image.fromarray((arr * (255.0 / top)).astype(np.uint8))
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: image file not found") from None
    except Image.DecompressionBombError as err:
        raise ImageTooLargeError(f"{path}: image too large to decode safely ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from None


class Dataset:
    """A set of images with instance masks, addressed by internal ids 0..N-1.

    Classes come from one or more sources ("coco", "via", ...); internal class id 0 is
    always the background "BG". Subclasses add classes and images, then call prepare().
    """

    def __init__(self, class_map=None):
        self._image_ids = []
        self.image_info = []
        self.class_info = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids = {}

    # -- building ---------------------------------------------------------------------
    def add_class(self, source, class_id, class_name):
        """Register class `class_id` of `source`; adding the same pair twice is a no-op."""
        if "." in source:
            raise ValueError(f"Source name {source!r} must not contain a dot")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source, image_id, path, **kwargs):
        """Register an image; extra keyword arguments are kept in its image_info dict."""
        info = {"id": image_id, "source": source, "path": path}
        info.update(kwargs)
        self.image_info.append(info)

    def image_reference(self, image_id):
        """A string that tells a person where image `image_id` came from."""
        info = self.image_info[image_id]
        return str(info.get("path", info["id"]))

    def prepare(self, class_map=None):
        """Build the internal id tables; call once all classes and images are added."""
        def clean_name(name):
            return ",".join(name.split(",")[:1])

        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)

        self.class_from_source_map = {
            f"{info['source']}.{info['id']}": i for i, info in enumerate(self.class_info)}
        self.image_from_source_map = {
            f"{info['source']}.{info['id']}": i for i, info in enumerate(self.image_info)}

        self.sources = sorted({c["source"] for c in self.class_info})
        self.source_class_ids = {}
        for source in self.sources:
            ids = [i for i, c in enumerate(self.class_info) if i == 0 or c["source"] == source]
            self.source_class_ids[source] = ids

    # -- lookups ----------------------------------------------------------------------
    @property
    def image_ids(self):
        return self._image_ids

    def map_source_class_id(self, source_class_id):
        """Internal class id for 'source.class_id', e.g. 'coco.12'."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id, source):
        """The source's own id for internal class `class_id`."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError(f"Class {class_id} comes from {info['source']!r}, not {source!r}")
        return info["id"]

    def source_image_link(self, image_id):
        return self.image_info[image_id]["path"]

    def append_data(self, class_info, image_info):
        """Add the classes and images of another dataset (its class_info and image_info lists).

        Classes are added as by add_class (a pair already present, and "BG", is not added
        again), images with all their keys as by add_image; call prepare() afterwards.
        Matterport's method of this name was unfinished (it ignored its arguments).
        """
        for info in class_info:
            if info["source"] == "" and info["id"] == 0:
                continue
            self.add_class(info["source"], info["id"], info["name"])
        for info in image_info:
            extra = {key: value for key, value in info.items() if key not in ("source", "id", "path")}
            self.add_image(info["source"], info["id"], info.get("path"), **extra)

    # -- loading ----------------------------------------------------------------------
    def load_image(self, image_id):
        """The image as an (H, W, 3) uint8 RGB array."""
        return read_image_rgb(self.image_info[image_id]["path"])

    def load_mask(self, image_id):
        """Instance masks (H, W, N) bool and their class ids (N,) int32.

        Subclasses override this; the base class knows no masks and returns none.
        """
        log.warning("Dataset.load_mask is not overridden: returning no instances.")
        return np.empty((0, 0, 0), dtype=bool), np.empty((0,), dtype=np.int32)


# ======================================================================================
# Geometry. Boxes are [y1, x1, y2, x2] in pixels with y2/x2 exclusive (one past the last
# row/column), so a box's area is (y2 - y1) * (x2 - x1). Instance masks are (H, W, N).
# ======================================================================================

def extract_bboxes(mask):
    """Tight boxes of instance masks (H, W, N) -> (N, 4) int32 [y1, x1, y2, x2].

    y2 and x2 are exclusive. An empty mask gets the box [0, 0, 0, 0].
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"extract_bboxes: masks must be (H, W, N), got shape {mask.shape}")
    height, width, _ = mask.shape
    rows = mask.any(axis=1)          # (H, N): does row y hold any pixel of instance n
    cols = mask.any(axis=0)          # (W, N)
    y1 = rows.argmax(axis=0)
    y2 = height - rows[::-1].argmax(axis=0)
    x1 = cols.argmax(axis=0)
    x2 = width - cols[::-1].argmax(axis=0)
    boxes = np.stack([y1, x1, y2, x2], axis=1).astype(np.int32).reshape(-1, 4)
    boxes[~rows.any(axis=0)] = 0
    return boxes


def _box_areas(boxes):
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def compute_iou(box, boxes, box_area, boxes_area):
    """IoU of one box (4,) with each of boxes (N, 4); areas are passed in to avoid recomputing.

    Returns (N,) float64. A pair whose union is empty has IoU 0.
    """
    box = np.asarray(box, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    inter_h = np.maximum(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0)
    inter_w = np.maximum(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0)
    intersection = inter_h * inter_w
    union = box_area + np.asarray(boxes_area, dtype=np.float64) - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def compute_overlaps(boxes1, boxes2):
    """IoU of every pair: boxes1 (N1, 4) x boxes2 (N2, 4) -> (N1, N2) float64."""
    boxes1 = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    a = boxes1[:, None, :]
    b = boxes2[None, :, :]
    inter_h = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    inter_w = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    intersection = inter_h * inter_w
    union = _box_areas(boxes1)[:, None] + _box_areas(boxes2)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def compute_overlaps_masks(masks1, masks2):
    """Mask IoU of every pair: masks1 (H, W, N1) x masks2 (H, W, N2) -> (N1, N2) float64."""
    masks1 = np.asarray(masks1)
    masks2 = np.asarray(masks2)
    if masks1.ndim != 3 or masks2.ndim != 3 or masks1.shape[:2] != masks2.shape[:2]:
        raise ValueError("compute_overlaps_masks: both mask stacks must be (H, W, N) with the same H, W; "
                         f"got {masks1.shape} and {masks2.shape}")
    count1, count2 = masks1.shape[-1], masks2.shape[-1]
    if count1 == 0 or count2 == 0:
        return np.zeros((count1, count2))
    # float32 sums are exact up to 2**24 pixels per mask (a 4096 x 4096 image).
    flat1 = (masks1.reshape(-1, count1) > 0).astype(np.float32)
    flat2 = (masks2.reshape(-1, count2) > 0).astype(np.float32)
    intersection = (flat1.T @ flat2).astype(np.float64)
    union = flat1.sum(axis=0, dtype=np.float64)[:, None] + flat2.sum(axis=0, dtype=np.float64)[None, :]
    union -= intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def non_max_suppression(boxes, scores, threshold):
    """Greedy NMS: indices (int32) of the boxes kept, highest score first.

    Walks the boxes from the highest score down and drops every box whose IoU with an
    already kept box is above `threshold`. Equal scores keep their input order.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if len(scores) != len(boxes):
        raise ValueError(f"non_max_suppression: {len(boxes)} boxes but {len(scores)} scores")
    areas = _box_areas(boxes)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        ious = compute_iou(boxes[best], boxes[rest], areas[best], areas[rest])
        order = rest[ious <= threshold]
    return np.array(keep, dtype=np.int32)


def box_refinement(box, gt_box):
    """Deltas that move boxes (N, 4) onto gt_box (N, 4): (N, 4) float32 [dy, dx, log dh, log dw].

    dy, dx are the shift of the centre in units of the box's height and width; dh, dw the
    ratio of the sides. apply_box_deltas is the inverse.
    """
    box = np.asarray(box, dtype=np.float64).reshape(-1, 4)
    gt_box = np.asarray(gt_box, dtype=np.float64).reshape(-1, 4)
    height = box[:, 2] - box[:, 0]
    width = box[:, 3] - box[:, 1]
    centre_y = box[:, 0] + 0.5 * height
    centre_x = box[:, 1] + 0.5 * width
    gt_height = gt_box[:, 2] - gt_box[:, 0]
    gt_width = gt_box[:, 3] - gt_box[:, 1]
    gt_centre_y = gt_box[:, 0] + 0.5 * gt_height
    gt_centre_x = gt_box[:, 1] + 0.5 * gt_width
    deltas = np.stack([(gt_centre_y - centre_y) / height,
                       (gt_centre_x - centre_x) / width,
                       np.log(gt_height / height),
                       np.log(gt_width / width)], axis=1)
    return deltas.astype(np.float32)


def apply_box_deltas(boxes, deltas):
    """Move boxes (N, 4) by deltas (N, 4) [dy, dx, log dh, log dw] -> (N, 4) float32 boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    deltas = np.asarray(deltas, dtype=np.float64).reshape(-1, 4)
    height = boxes[:, 2] - boxes[:, 0]
    width = boxes[:, 3] - boxes[:, 1]
    centre_y = boxes[:, 0] + 0.5 * height + deltas[:, 0] * height
    centre_x = boxes[:, 1] + 0.5 * width + deltas[:, 1] * width
    height = height * np.exp(deltas[:, 2])
    width = width * np.exp(deltas[:, 3])
    y1 = centre_y - 0.5 * height
    x1 = centre_x - 0.5 * width
    moved = np.stack([y1, x1, y1 + height, x1 + width], axis=1)      # as box_graph.apply_box_deltas_graph
    return moved.astype(np.float32)


# -- resizing -----------------------------------------------------------------------------

RESIZE_MODES = ("none", "square", "pad64", "crop")
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)
_CV2_MAX_CHANNELS = 128   # cv2.resize takes at most 128 channels in OpenCV 5 (512 in OpenCV 4)


def _scaled_size(height, width, scale):
    """The (height, width) an image of that size has after scaling (never below 1 pixel)."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize_array(array, height, width, smooth=True):
    """Resize a (H, W) or (H, W, C) array to (height, width), keeping its dtype.

    smooth=True interpolates (area averaging when shrinking, bilinear otherwise);
    smooth=False takes the nearest pixel, for label and mask arrays.
    """
    array = np.asarray(array)
    if array.shape[:2] == (height, width):
        return array.copy()
    if smooth:
        shrinking = height <= array.shape[0] and width <= array.shape[1]
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    else:
        interpolation = cv2.INTER_NEAREST_EXACT
    if array.ndim == 3 and array.shape[2] == 0:
        return np.zeros((height, width, 0), dtype=array.dtype)
    if array.ndim == 3 and array.shape[2] > _CV2_MAX_CHANNELS:
        parts = [_resize_array(array[..., i:i + _CV2_MAX_CHANNELS], height, width, smooth)
                 for i in range(0, array.shape[2], _CV2_MAX_CHANNELS)]
        return np.concatenate(parts, axis=2)

    work = array
    if array.dtype == bool:
        work = array.astype(np.uint8)
    elif array.dtype.type not in _CV2_DTYPES:
        work = array.astype(np.float64)
    resized = cv2.resize(work, (width, height), interpolation=interpolation)
    if array.ndim == 3 and resized.ndim == 2:   # cv2 drops a single channel axis
        resized = resized[..., None]
    if array.dtype == bool:
        return resized > 0
    if resized.dtype != array.dtype:
        if np.issubdtype(array.dtype, np.integer):
            info = np.iinfo(array.dtype)
            resized = np.clip(np.rint(resized), info.min, info.max)
        resized = resized.astype(array.dtype)
    return resized


def _resize_bilinear(image, height, width):
    """The image resized as Matterport resizes it, so that its weight files see what they were
    trained on: scikit-image's bilinear `resize` with its defaults (a Gaussian blur against
    aliasing when shrinking), values kept in the image's range, then cast back to the image's
    dtype (numpy's cast: an integer image's values are truncated, not rounded).
    """
    import skimage.transform   # here: importing scikit-image is slow, and most uses never resize
    resized = skimage.transform.resize(image, (height, width), order=1, mode="constant", preserve_range=True)
    return resized.astype(image.dtype)


def resize_image(image, min_dim=None, max_dim=None, min_scale=None, mode="square", rng=None):
    """Resize an (H, W, C) image for the network, keeping its aspect ratio and dtype.

    Modes:
      "none":   unchanged.
      "square": scale up so the short side is at least min_dim (and the scale at least
                min_scale), but down so the long side is at most max_dim; then pad with
                zeros, centred, to max_dim x max_dim.
      "pad64":  scale as "square" (max_dim optional), then pad, centred, so both sides
                are multiples of 64.
      "crop":   scale up as "square" (no max_dim), then take a random min_dim x min_dim
                crop (from `rng`, a numpy Generator, or a fresh one). For training only.

    Returns (image, window, scale, padding, crop):
      window  (y1, x1, y2, x2) of the real picture inside the result (y2/x2 exclusive),
      scale   the factor applied to the original,
      padding [(top, bottom), (left, right), (0, 0)] for np.pad,
      crop    (y, x, h, w) taken from the scaled image, or None.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize_image: mode {mode!r} is not one of {RESIZE_MODES}")
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"resize_image: image must be (H, W, C) with H, W > 0, got shape {image.shape}")
    height, width = image.shape[:2]
    no_padding = [(0, 0), (0, 0), (0, 0)]
    if mode == "none":
        return image, (0, 0, height, width), 1.0, no_padding, None
    if mode == "square" and not max_dim:
        raise ValueError("resize_image: 'square' mode needs max_dim")
    if mode == "crop" and not min_dim:
        raise ValueError("resize_image: 'crop' mode needs min_dim")

    scale = 1.0
    if min_dim:
        scale = max(1.0, min_dim / min(height, width))
    if min_scale and scale < min_scale:
        scale = float(min_scale)
    if max_dim and mode in ("square", "pad64") and round(max(height, width) * scale) > max_dim:
        scale = max_dim / max(height, width)
    if scale != 1.0:
        image = _resize_bilinear(image, *_scaled_size(height, width, scale))
    height, width = image.shape[:2]

    if mode == "crop":
        rng = np.random.default_rng() if rng is None else rng
        y = int(rng.integers(0, height - min_dim + 1))
        x = int(rng.integers(0, width - min_dim + 1))
        image = image[y:y + min_dim, x:x + min_dim]
        return image, (0, 0, min_dim, min_dim), scale, no_padding, (y, x, min_dim, min_dim)

    if mode == "square":
        target_height = target_width = max_dim
    else:  # pad64
        target_height = int(math.ceil(height / 64) * 64)
        target_width = int(math.ceil(width / 64) * 64)
    top = (target_height - height) // 2
    left = (target_width - width) // 2
    padding = [(top, target_height - height - top), (left, target_width - width - left), (0, 0)]
    image = np.pad(image, padding, mode="constant", constant_values=0)
    return image, (top, left, top + height, left + width), scale, padding, None


def resize_mask(mask, scale, padding, crop=None):
    """Apply resize_image's scale, crop and padding to masks (H, W) or (H, W, N).

    Nearest-pixel resizing, so a bool mask stays bool and labels stay labels.
    """
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3):
        raise ValueError(f"resize_mask: mask must be (H, W) or (H, W, N), got shape {mask.shape}")
    if scale != 1:
        mask = _resize_array(mask, *_scaled_size(mask.shape[0], mask.shape[1], scale), smooth=False)
    if crop is not None:
        y, x, height, width = crop
        mask = mask[y:y + height, x:x + width]
    return np.pad(mask, list(padding)[:mask.ndim], mode="constant", constant_values=0)


def _paste(canvas, box, patch):
    """Write `patch` (sized like `box`) into 2-D `canvas` at `box`, clipped to the canvas."""
    y1, x1, y2, x2 = (int(v) for v in box)
    top, left = max(y1, 0), max(x1, 0)
    bottom, right = min(y2, canvas.shape[0]), min(x2, canvas.shape[1])
    if bottom > top and right > left:
        canvas[top:bottom, left:right] = patch[top - y1:bottom - y1, left - x1:right - x1]


def minimize_mask(bbox, mask, mini_shape):
    """Crop each mask (H, W, N) to its box (N, 4) and shrink it to mini_shape -> (h, w, N) bool.

    Saves memory during training; expand_mask undoes it (approximately).
    Raises ValueError for an instance whose box is empty.
    """
    mask = np.asarray(mask)
    bbox = np.asarray(bbox).reshape(-1, 4)
    mini_height, mini_width = (int(v) for v in mini_shape)
    mini = np.zeros((mini_height, mini_width, mask.shape[-1]), dtype=bool)
    for i in range(mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i])
        crop = mask[y1:y2, x1:x2, i]
        if crop.size == 0:
            raise ValueError(f"minimize_mask: instance {i} has an empty box {bbox[i].tolist()}")
        mini[:, :, i] = _resize_array(crop.astype(np.float32), mini_height, mini_width) >= 0.5
    return mini


def expand_mask(bbox, mini_mask, image_shape):
    """Undo minimize_mask: put each mini mask (h, w, N) back at its box -> (H, W, N) bool.

    Parts of a box outside the image are cut off; an empty box gives an empty mask.
    """
    mini_mask = np.asarray(mini_mask)
    bbox = np.asarray(bbox).reshape(-1, 4)
    full = np.zeros(tuple(image_shape[:2]) + (mini_mask.shape[-1],), dtype=bool)
    for i in range(mini_mask.shape[-1]):
        y1, x1, y2, x2 = (int(v) for v in bbox[i])
        if y2 <= y1 or x2 <= x1:
            continue
        patch = _resize_array(mini_mask[:, :, i].astype(np.float32), y2 - y1, x2 - x1) >= 0.5
        _paste(full[:, :, i], (y1, x1, y2, x2), patch)
    return full


def resize_mask_to_box(mask, bbox, image_shape, threshold=0.5):
    """Matterport's way back from the mask head: the small float mask resized (scikit-image,
    bilinear) to the whole-pixel box [y1, x1, y2, x2] (ends exclusive), >= threshold, pasted into
    an (H, W) bool mask. detect() uses it with MASK_TARGET_SAMPLING "resized", unmold_mask
    with "pixel_centres".
    """
    import skimage.transform
    y1, x1, y2, x2 = (int(v) for v in bbox)
    height, width = (int(v) for v in image_shape[:2])
    full = np.zeros((height, width), dtype=bool)
    if y2 <= y1 or x2 <= x1:
        return full
    resized = skimage.transform.resize(np.asarray(mask, dtype=np.float32), (y2 - y1, x2 - x1), order=1,
                                       mode="constant") >= threshold
    top, left = max(y1, 0), max(x1, 0)
    bottom, right = min(y2, height), min(x2, width)
    if bottom > top and right > left:
        full[top:bottom, left:right] = resized[top - y1:bottom - y1, left - x1:right - x1]
    return full


def unmold_mask(mask, bbox, image_shape, threshold=0.5):
    """Turn the mask head's small float mask (h, w) for box `bbox` into an (H, W) bool mask.

    bbox is [y1, x1, y2, x2] in pixel edges, ends exclusive, whole or fractional. The mask's
    rows are samples from the box's first pixel centre (y1 + 0.5) to its last (y2 - 0.5), the
    grid the mask targets and ROIAlign use (mrcnn/targets.py); every image pixel whose centre
    lies in the box takes the soft mask's bilinear value there, then the threshold. For a
    whole-pixel box this is an align-corners resize of the mask to the box.
    """
    mask = np.asarray(mask, dtype=np.float64)
    y1, x1, y2, x2 = (float(v) for v in bbox)
    height, width = (int(v) for v in image_shape[:2])
    full = np.zeros((height, width), dtype=bool)
    rows = _pixels_centred_in(y1, y2, height)
    columns = _pixels_centred_in(x1, x2, width)
    if not len(rows) or not len(columns):
        return full
    soft = _interpolate_rows(mask, _sample_positions(rows, y1, y2, mask.shape[0]))
    soft = _interpolate_rows(soft.T, _sample_positions(columns, x1, x2, mask.shape[1])).T
    full[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1] = soft >= threshold
    return full


def _pixels_centred_in(start, end, size):
    """Pixel indices k in [0, size) whose centre k + 0.5 lies in [start, end)."""
    first = max(int(np.ceil(start - 0.5)), 0)
    stop = min(int(np.ceil(end - 0.5)), size)
    return np.arange(first, stop) if end > start else np.arange(0)


def _sample_positions(pixels, start, end, samples):
    """Where the centres of `pixels` fall among `samples` points from start + 0.5 to end - 0.5."""
    if end - start <= 1 or samples == 1:
        return np.full(len(pixels), (samples - 1) / 2)
    return np.clip((pixels - start) * (samples - 1) / (end - start - 1), 0, samples - 1)


def _interpolate_rows(array, positions):
    """Rows of a 2-D array linearly interpolated at fractional row `positions`."""
    below = np.floor(positions).astype(int)
    above = np.minimum(below + 1, array.shape[0] - 1)
    weight = (positions - below)[:, None]
    return array[below] * (1 - weight) + array[above] * weight


# -- anchors ------------------------------------------------------------------------------

def generate_anchors(scales, ratios, shape, feature_stride, anchor_stride):
    """Anchor boxes (N, 4) [y1, x1, y2, x2] in image pixels for one feature map.

    scales: anchor side(s) in pixels; ratios: width / height of each anchor (so the
    area is scale**2 for every ratio); shape: (height, width) of the feature map;
    feature_stride: image pixels per feature cell; anchor_stride: place anchors on
    every anchor_stride-th cell. Anchors are centred on (row * feature_stride,
    col * feature_stride). Order: row, then column, then ratio, then scale -- the
    order in which the RPN head's per-cell outputs are flattened.
    """
    scales = np.atleast_1d(np.asarray(scales, dtype=np.float64))
    ratios = np.atleast_1d(np.asarray(ratios, dtype=np.float64))
    ratio_grid, scale_grid = np.meshgrid(ratios, scales, indexing="ij")   # (ratio, scale)
    heights = (scale_grid / np.sqrt(ratio_grid)).ravel()
    widths = (scale_grid * np.sqrt(ratio_grid)).ravel()
    centres_y = np.arange(0, shape[0], anchor_stride) * float(feature_stride)
    centres_x = np.arange(0, shape[1], anchor_stride) * float(feature_stride)
    cy = centres_y[:, None, None]
    cx = centres_x[None, :, None]
    half_h = 0.5 * heights[None, None, :]
    half_w = 0.5 * widths[None, None, :]
    grid = (len(centres_y), len(centres_x), len(heights))
    boxes = np.stack([np.broadcast_to(cy - half_h, grid), np.broadcast_to(cx - half_w, grid),
                      np.broadcast_to(cy + half_h, grid), np.broadcast_to(cx + half_w, grid)], axis=-1)
    return boxes.reshape(-1, 4)


def generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides, anchor_stride):
    """Anchors of every pyramid level, level by level: scales[i] goes with level i."""
    if not len(scales) == len(feature_shapes) == len(feature_strides):
        raise ValueError(f"generate_pyramid_anchors: {len(scales)} scales, {len(feature_shapes)} feature "
                         f"shapes and {len(feature_strides)} strides; need one of each per level")
    return np.concatenate([
        generate_anchors(scales[i], ratios, feature_shapes[i], feature_strides[i], anchor_stride)
        for i in range(len(scales))], axis=0)


def norm_boxes(boxes, shape):
    """Pixel boxes -> normalised [0, 1] float32 boxes for an image of `shape` (H, W, ...).

    Matterport's convention: (y1, x1) map by /(size - 1); (y2, x2), being exclusive,
    are first moved in by one pixel.
    """
    height, width = shape[:2]
    scale = np.array([height - 1, width - 1, height - 1, width - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return ((np.asarray(boxes, dtype=np.float64) - shift) / scale).astype(np.float32)


def box_edges(boxes, shape):
    """Inverse of norm_boxes without rounding: normalised boxes -> float pixel edges, ends exclusive."""
    height, width = shape[:2]
    scale = np.array([height - 1, width - 1, height - 1, width - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return np.asarray(boxes, dtype=np.float64) * scale + shift


def denorm_boxes(boxes, shape):
    """Inverse of norm_boxes: normalised boxes -> int32 pixel boxes (rounded)."""
    return np.rint(box_edges(boxes, shape)).astype(np.int32)


def molded_to_original_edges(boxes, molded_shape, window, original_shape):
    """Normalised boxes of a molded image -> float pixel edges [y1, x1, y2, x2] of the original.

    The molded image holds the original resized into `window` ([y1, x1, y2, x2] pixels, ends
    exclusive), so an edge e of the molded image is (e - window start) * original size /
    window size in the original. Round the result for Matterport's int32 boxes.
    """
    edges = box_edges(boxes, molded_shape)
    wy1, wx1, wy2, wx2 = (float(v) for v in window)
    scale = [original_shape[0] / max(wy2 - wy1, 1.0), original_shape[1] / max(wx2 - wx1, 1.0)] * 2
    return (edges - [wy1, wx1, wy1, wx1]) * scale


# -- evaluation ---------------------------------------------------------------------------

def trim_zeros(x):
    """Drop the all-zero rows that pad a fixed-size array of boxes (N, 4)."""
    x = np.asarray(x)
    return x[np.any(x != 0, axis=1)] if len(x) else x


def compute_matches(gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores,
                    pred_masks, iou_threshold=0.5, score_threshold=0.0):
    """Match predictions to ground truth by mask IoU, greedily from the highest score down.

    All-zero box rows (batch padding) are dropped first, with their masks and ids. Each
    prediction takes the unmatched ground-truth instance of its class with the highest
    mask IoU, if that IoU is >= iou_threshold. score_threshold is, despite its name, a second
    lower bound on that IoU, as in Matterport's compute_matches (it never filters scores).

    Returns (gt_match, pred_match, overlaps), with predictions SORTED BY SCORE (descending):
      gt_match[j]   index (in that sorted order) of the prediction matched to gt j, or -1
      pred_match[i] index of the gt matched to sorted prediction i, or -1
      overlaps      (num_pred, num_gt) mask IoU, rows in sorted order
    """
    gt_keep = np.any(np.asarray(gt_boxes).reshape(-1, 4) != 0, axis=1)
    pred_keep = np.any(np.asarray(pred_boxes).reshape(-1, 4) != 0, axis=1)
    gt_class_ids = np.asarray(gt_class_ids)[gt_keep]
    gt_masks = np.asarray(gt_masks)[..., gt_keep]
    pred_class_ids = np.asarray(pred_class_ids)[pred_keep]
    pred_scores = np.asarray(pred_scores, dtype=np.float64)[pred_keep]
    pred_masks = np.asarray(pred_masks)[..., pred_keep]

    order = np.argsort(-pred_scores, kind="stable")
    pred_class_ids = pred_class_ids[order]
    pred_masks = pred_masks[..., order]

    overlaps = compute_overlaps_masks(pred_masks, gt_masks)
    gt_match = -np.ones(len(gt_class_ids), dtype=np.int32)
    pred_match = -np.ones(len(pred_class_ids), dtype=np.int32)
    for i in range(len(pred_class_ids)):
        candidates = ((gt_match == -1) & (gt_class_ids == pred_class_ids[i]) & (overlaps[i] >= iou_threshold)
                      & (overlaps[i] >= score_threshold))
        if candidates.any():
            best = int(np.argmax(np.where(candidates, overlaps[i], -1.0)))
            gt_match[best] = i
            pred_match[i] = best
    return gt_match, pred_match, overlaps


def compute_ap(gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores,
               pred_masks, iou_threshold=0.5):
    """Average precision of ONE image at one mask-IoU threshold, VOC style.

    The area under the interpolated precision-recall curve (precision made non-increasing
    in recall), over predictions ranked by score. This is per-image VOC-style AP, NOT COCO
    mAP (which pools all images per class and averages over IoU 0.50:0.95); use
    pycocotools for numbers comparable with papers.

    Returns (mAP, precisions, recalls, overlaps); precisions and recalls are padded with
    sentinels (precision 0 at both ends, recall 0 first and 1 last). mAP is 0.0 when there
    is ground truth but no correct prediction, and nan when the image has no ground truth
    (AP is undefined there; average with np.nanmean).
    """
    gt_match, pred_match, overlaps = compute_matches(
        gt_boxes, gt_class_ids, gt_masks, pred_boxes, pred_class_ids, pred_scores, pred_masks,
        iou_threshold)
    hits = np.cumsum(pred_match > -1)
    precisions = hits / np.arange(1, len(pred_match) + 1)
    recalls = hits / max(len(gt_match), 1)
    precisions = np.concatenate([[0.0], precisions, [0.0]])
    recalls = np.concatenate([[0.0], recalls, [1.0]])
    if len(gt_match) == 0:
        return float("nan"), precisions, recalls, overlaps
    # Interpolate: the precision at recall r is the best precision at any recall >= r.
    precisions = np.maximum.accumulate(precisions[::-1])[::-1]
    steps = np.where(recalls[1:] != recalls[:-1])[0] + 1
    mean_ap = float(np.sum((recalls[steps] - recalls[steps - 1]) * precisions[steps]))
    return mean_ap, precisions, recalls, overlaps


def compute_ap_range(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
                     iou_thresholds=None, verbose=1):
    """compute_ap averaged over mask-IoU thresholds (default 0.50, 0.55, ..., 0.95), one image.

    With verbose, prints each threshold's AP and the mean, as Matterport's does. Like compute_ap
    it is per-image VOC-style AP, not COCO mAP; nan when the image has no ground truth.
    """
    thresholds = np.arange(0.5, 1.0, 0.05) if iou_thresholds is None else np.asarray(iou_thresholds, float)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(f"compute_ap_range: iou_thresholds must be a non-empty list, got {iou_thresholds!r}")
    values = []
    for threshold in thresholds:
        ap = compute_ap(gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
                        iou_threshold=threshold)[0]
        if verbose:
            print(f"AP @{threshold:.2f}:\t {ap:.3f}")
        values.append(ap)
    mean_ap = float(np.mean(values))
    if verbose:
        print(f"AP @{thresholds[0]:.2f}-{thresholds[-1]:.2f}:\t {mean_ap:.3f}")
    return mean_ap


def compute_recall(pred_boxes, gt_boxes, iou):
    """Box recall: the fraction of gt boxes that some predicted box overlaps with IoU >= iou.

    Returns (recall, positive_ids): positive_ids are the predictions whose best IoU with
    any gt box reaches `iou`. With no gt boxes recall is nan.
    """
    pred_boxes = np.asarray(pred_boxes).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes).reshape(-1, 4)
    overlaps = compute_overlaps(pred_boxes, gt_boxes)
    if len(gt_boxes) == 0:
        return float("nan"), np.zeros(0, dtype=np.int64)
    if len(pred_boxes) == 0:
        return 0.0, np.zeros(0, dtype=np.int64)
    covered = (overlaps >= iou).any(axis=0)
    positive_ids = np.where(overlaps.max(axis=1) >= iou)[0]
    return float(covered.mean()), positive_ids


# -- Matterport's remaining helpers -----------------------------------------------------------

def mold_mask(mask, config):
    """Not provided: Matterport's mold_mask was an empty stub (it returned None)."""
    raise NotImplementedError("mold_mask: Matterport's was an empty stub; to shrink instance masks to "
                              "their boxes use utils.minimize_mask(bbox, mask, config.MINI_MASK_SHAPE), "
                              "and utils.unmold_mask to put a network mask back into the image")


def download_trained_weights(coco_model_path, verbose=1, url=None):
    """Download Matterport's COCO-trained weights (COCO_MODEL_URL, or `url`) to `coco_model_path`.

    Written to a temporary file beside the target and renamed when complete, so an interrupted
    download never leaves a half-written weight file under that name. A download shorter than
    the server's Content-Length raises OSError naming the file. Returns the path.
    """
    target = Path(coco_model_path)
    url = COCO_MODEL_URL if url is None else url
    if verbose > 0:
        print(f"Downloading pretrained model to {coco_model_path} ...")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            expected = response.headers.get("Content-Length")
            shutil.copyfileobj(response, out, length=1 << 20)
            written = out.tell()
        if expected is not None and written != int(expected):
            raise OSError(f"{target}: download of {url} stopped after {written} of {expected} bytes; run again")
        os.replace(partial, target)
    except urllib.error.URLError as err:
        Path(partial).unlink(missing_ok=True)
        raise OSError(f"{target}: could not download {url}: {getattr(err, 'reason', err)}") from None
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    if verbose > 0:
        print("... done downloading pretrained model!")
    return str(target)
