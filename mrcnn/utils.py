"""Dataset base class and numpy helpers shared by the model and its users.

`Dataset` keeps Matterport's interface: subclass it, call `add_class` and `add_image` while
reading your annotations, then `prepare()`; override `load_mask` (and `image_reference`).
"""
import logging

import numpy as np
from PIL import Image, ImageOps

log = logging.getLogger(__name__)


def read_image_rgb(path):
    """Read an image file as an (H, W, 3) uint8 RGB array, whatever its mode.

    Grayscale, palette, RGBA (composited on white), CMYK and 16-bit files become RGB;
    an EXIF orientation tag is applied so the pixels match what a viewer shows.
    Raises ValueError naming the file when it cannot be read as an image.
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
