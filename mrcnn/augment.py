"""Apply one augmentation to an image and its instance masks, whatever library made it.

Training (mrcnn.data.load_image_gt) calls `apply_augmentation` before resizing. Three kinds
of augmentation are accepted, so course notebooks and old Matterport code both work:

* an albumentations transform (A.Compose or a single transform): the masks travel through
  its `masks=` target, so geometric transforms move them and pixel-level ones leave them;
* an imgaug augmenter (Matterport's choice): imgaug is imported only when one is passed,
  because imgaug 0.4 does not import on numpy 2. A deterministic copy moves image and masks
  alike, and pixel-level augmenters are switched off for the masks;
* any callable `(image, masks) -> (image, masks)`.

The result is checked: a uint8 (H', W', C) image and (H', W', N) masks of the same size and
count, else an AugmentationError naming the augmentation. Size changes (crops) are allowed.
"""
import threading

import numpy as np

# imgaug augmenters that only change pixel values: they must not touch the masks.
_IMGAUG_PIXEL_ONLY = frozenset({
    "Add", "AddElementwise", "AdditiveGaussianNoise", "AdditiveLaplaceNoise", "AdditivePoissonNoise",
    "Multiply", "MultiplyElementwise", "Dropout", "CoarseDropout", "SaltAndPepper", "CoarseSaltAndPepper",
    "Salt", "CoarseSalt", "Pepper", "CoarsePepper", "Invert", "ContrastNormalization", "LinearContrast",
    "GammaContrast", "SigmoidContrast", "LogContrast", "AllChannelsCLAHE", "CLAHE", "HistogramEqualization",
    "AllChannelsHistogramEqualization", "GaussianBlur", "AverageBlur", "MedianBlur", "BilateralBlur",
    "MotionBlur", "Sharpen", "Emboss", "EdgeDetect", "DirectedEdgeDetect", "Grayscale", "AddToHueAndSaturation",
    "AddToHue", "AddToSaturation", "MultiplyHueAndSaturation", "MultiplyHue", "MultiplySaturation",
    "ChangeColorspace", "WithColorspace", "WithHueAndSaturation", "JpegCompression", "Superpixels",
    "Clouds", "Fog", "Snowflakes", "Rain", "FastSnowyLandscape", "ChangeColorTemperature", "Solarize",
    "Posterize", "UniformColorQuantization", "KMeansColorQuantization", "MultiplyAndAddToBrightness",
    "AddToBrightness", "MultiplyBrightness", "Cutout", "Canny",
})

# Seeding a shared albumentations transform and calling it must not interleave between the
# loader threads of tf.data, or two images would swap random draws.
_SEEDED_CALL_LOCK = threading.Lock()


class AugmentationError(ValueError):
    """An augmentation failed or returned something that is not an image with its masks."""


def _library(augmentation):
    """'albumentations', 'imgaug' or 'callable', from where the object's class was defined."""
    module = type(augmentation).__module__ or ""
    if module.startswith("albumentations"):
        return "albumentations"
    if module.startswith("imgaug"):
        return "imgaug"
    return "callable"


def describe_augmentation(augmentation):
    """A one-line description for logs, e.g. 'albumentations Compose[HorizontalFlip(p=0.5)]'."""
    if augmentation is None:
        return "none"
    library = _library(augmentation)
    if library == "albumentations":
        return f"albumentations {_describe_albumentations(augmentation)}"
    if library == "imgaug":
        return f"imgaug {_describe_imgaug(augmentation)}"
    name = getattr(augmentation, "__qualname__", None) or type(augmentation).__qualname__
    module = getattr(augmentation, "__module__", None)
    return f"callable {module}.{name}" if module and module != "__main__" else f"callable {name}"


def _describe_albumentations(transform):
    name = type(transform).__name__
    children = getattr(transform, "transforms", None)
    probability = getattr(transform, "p", None)
    suffix = f"(p={probability:g})" if isinstance(probability, (int, float)) else ""
    if children is not None:
        return f"{name}{suffix}[" + ", ".join(_describe_albumentations(child) for child in children) + "]"
    return name + suffix


def _describe_imgaug(augmenter):
    name = type(augmenter).__name__
    children = []
    for child_list in getattr(augmenter, "get_children_lists", lambda: [])():
        children.extend(child_list)
    if children:
        return f"{name}[" + ", ".join(_describe_imgaug(child) for child in children) + "]"
    return name


def apply_augmentation(augmentation, image, masks, rng=None):
    """Augment an (H, W, 3) uint8 image and its (H, W, N) bool masks -> (image, masks).

    `rng` (a numpy Generator) makes albumentations and imgaug draws reproducible; a plain
    callable gets no rng (it manages its own randomness). None as augmentation returns the
    inputs unchanged. Raises AugmentationError naming the augmentation when it fails or
    returns the wrong shapes or dtypes.
    """
    image = np.asarray(image)
    masks = np.asarray(masks)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise AugmentationError(f"apply_augmentation: image must be (H, W, C) uint8, "
                                f"got {image.dtype} {image.shape}")
    if masks.ndim != 3 or masks.shape[:2] != image.shape[:2]:
        raise AugmentationError(f"apply_augmentation: masks must be (H, W, N) with the image's H, W "
                                f"{image.shape[:2]}, got {masks.shape}")
    if augmentation is None:
        return image, masks.astype(bool)
    library = _library(augmentation)
    try:
        if library == "albumentations":
            new_image, new_masks = _apply_albumentations(augmentation, image, masks, rng)
        elif library == "imgaug":
            new_image, new_masks = _apply_imgaug(augmentation, image, masks, rng)
        elif callable(augmentation):
            new_image, new_masks = _apply_callable(augmentation, image, masks)
        else:
            raise AugmentationError(f"{type(augmentation).__name__} is not an albumentations transform, "
                                    "an imgaug augmenter or a callable (image, masks) -> (image, masks)")
    except AugmentationError as err:
        raise AugmentationError(f"augmentation {describe_augmentation(augmentation)}: {err}") from None
    except Exception as err:
        raise AugmentationError(f"augmentation {describe_augmentation(augmentation)} failed: "
                                f"{type(err).__name__}: {err}") from err
    return _checked(augmentation, image, masks, new_image, new_masks)


def _checked(augmentation, image, masks, new_image, new_masks):
    """Validate an augmentation's output and return it as (uint8 image, bool masks)."""
    def fail(problem):
        raise AugmentationError(f"augmentation {describe_augmentation(augmentation)} returned {problem}")

    if not isinstance(new_image, np.ndarray):
        fail(f"an image of type {type(new_image).__name__}, expected a numpy array")
    if new_image.dtype != np.uint8:
        fail(f"an image of dtype {new_image.dtype}, expected uint8")
    if new_image.ndim != 3 or new_image.shape[2] != image.shape[2] or 0 in new_image.shape[:2]:
        fail(f"an image of shape {new_image.shape}, expected (H, W, {image.shape[2]}) with H, W > 0")
    if not isinstance(new_masks, np.ndarray):
        fail(f"masks of type {type(new_masks).__name__}, expected a numpy array")
    if new_masks.dtype != bool and not np.issubdtype(new_masks.dtype, np.integer):
        fail(f"masks of dtype {new_masks.dtype}, expected bool (or 0/1 integers)")
    expected = new_image.shape[:2] + (masks.shape[2],)
    if new_masks.shape != expected:
        fail(f"masks of shape {new_masks.shape}, expected {expected} (the new image's size, "
             f"{masks.shape[2]} instances)")
    return new_image, new_masks.astype(bool)


def _apply_callable(augmentation, image, masks):
    result = augmentation(image.copy(), masks.copy())
    if not isinstance(result, tuple) or len(result) != 2:
        raise AugmentationError(f"returned {type(result).__name__}, expected a tuple (image, masks)")
    return result


def _apply_albumentations(transform, image, masks, rng):
    """Run the transform with the masks as its `masks` target, seeded from `rng` if given."""
    count = masks.shape[2]
    mask_list = [np.ascontiguousarray(masks[:, :, i], dtype=np.uint8) for i in range(count)]

    def run():
        if count:
            return transform(image=image, masks=mask_list)
        return transform(image=image)

    if rng is None:
        result = run()
    else:
        with _SEEDED_CALL_LOCK:
            transform.set_random_seed(int(rng.integers(0, 2 ** 31 - 1)))
            result = run()
    new_image = result["image"]
    if not count:
        return new_image, np.zeros(np.shape(new_image)[:2] + (0,), dtype=bool)
    moved = result["masks"]
    if isinstance(moved, np.ndarray):           # (N, H, W) array
        moved = [moved[i] for i in range(moved.shape[0])]
    if len(moved) != count:
        raise AugmentationError(f"returned {len(moved)} masks for {count} instances")
    return new_image, np.stack([np.asarray(m) for m in moved], axis=-1)


def _apply_imgaug(augmenter, image, masks, rng):
    """The same random geometry for image and masks; pixel-only augmenters skip the masks."""
    try:
        import imgaug
    except Exception as err:   # imgaug 0.4 raises AttributeError on numpy 2, not ImportError
        raise AugmentationError(f"imgaug does not import here ({type(err).__name__}: {err}); "
                                "use an albumentations transform instead") from None
    if rng is not None:
        augmenter = augmenter.deepcopy()
        augmenter.reseed(int(rng.integers(0, 2 ** 31 - 1)))
    deterministic = augmenter.to_deterministic()
    new_image = deterministic.augment_image(image)

    def geometric_only(images, aug, parents, default):
        return type(aug).__name__ not in _IMGAUG_PIXEL_ONLY and default

    hooks = imgaug.HooksImages(activator=geometric_only)
    moved = deterministic.augment_image(masks.astype(np.uint8), hooks=hooks)
    if moved.ndim == 2:
        moved = moved[:, :, None]
    return new_image, moved.astype(bool)
