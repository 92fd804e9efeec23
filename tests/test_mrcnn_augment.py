"""mrcnn.augment: albumentations, imgaug (when it imports) and plain callables move masks
with the image, leave them alone for colour changes, and fail clearly on bad results."""
import albumentations as A
import numpy as np
import pytest

from mrcnn.augment import AugmentationError, apply_augmentation, describe_augmentation


def sample(height=40, width=60, count=3, seed=0):
    """A noisy image and `count` random, distinct rectangle-ish masks."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    masks = np.zeros((height, width, count), dtype=bool)
    for i in range(count):
        y, x = rng.integers(0, height - 10), rng.integers(0, width - 10)
        masks[y:y + rng.integers(3, 10), x:x + rng.integers(3, 10), i] = True
        masks[rng.integers(0, height), rng.integers(0, width), i] = True     # an odd pixel: breaks symmetry
    return image, masks


def test_albumentations_flip_moves_image_and_masks_exactly():
    image, masks = sample()
    new_image, new_masks = apply_augmentation(A.HorizontalFlip(p=1.0), image, masks)
    assert np.array_equal(new_image, np.fliplr(image))
    assert new_masks.dtype == bool and new_masks.shape == masks.shape
    for i in range(masks.shape[2]):
        assert np.array_equal(new_masks[:, :, i], np.fliplr(masks[:, :, i]))
    # inside a Compose as well
    _, composed = apply_augmentation(A.Compose([A.VerticalFlip(p=1.0)]), image, masks)
    assert np.array_equal(composed, masks[::-1])


def test_albumentations_colour_transform_leaves_masks_untouched():
    image, masks = sample()
    colour = A.Compose([A.RandomBrightnessContrast(brightness_limit=(0.3, 0.3), contrast_limit=0, p=1.0),
                        A.HueSaturationValue(p=1.0)])
    new_image, new_masks = apply_augmentation(colour, image, masks, rng=np.random.default_rng(0))
    assert not np.array_equal(new_image, image)
    assert np.array_equal(new_masks, masks)


def test_albumentations_crop_changes_the_size_and_a_seed_repeats_the_draw():
    image, masks = sample(count=4)
    crop = A.RandomCrop(height=24, width=30, p=1.0)
    first = apply_augmentation(crop, image, masks, rng=np.random.default_rng(3))
    again = apply_augmentation(crop, image, masks, rng=np.random.default_rng(3))
    assert first[0].shape == (24, 30, 3) and first[1].shape == (24, 30, 4)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    # the crop took the same window from image and masks: find it in the image and compare
    windows = [(y, x) for y in range(40 - 24 + 1) for x in range(60 - 30 + 1)
               if np.array_equal(image[y:y + 24, x:x + 30], first[0])]
    assert len(windows) == 1
    y, x = windows[0]
    assert np.array_equal(first[1], masks[y:y + 24, x:x + 30])
    # a seeded Compose repeats too, and different seeds draw different crops
    composed = A.Compose([A.RandomCrop(height=24, width=30, p=1.0), A.HorizontalFlip(p=0.5)])
    draws = [apply_augmentation(composed, image, masks, rng=np.random.default_rng(seed))[0] for seed in (1, 1, 2, 3)]
    assert np.array_equal(draws[0], draws[1])
    assert not (np.array_equal(draws[0], draws[2]) and np.array_equal(draws[0], draws[3]))


def test_no_instances_and_no_augmentation():
    image, _ = sample()
    empty = np.zeros(image.shape[:2] + (0,), dtype=bool)
    new_image, new_masks = apply_augmentation(A.RandomCrop(20, 20, p=1.0), image, empty)
    assert new_image.shape == (20, 20, 3) and new_masks.shape == (20, 20, 0)
    same_image, same_masks = apply_augmentation(None, image, empty)
    assert same_image is image and same_masks.shape == (40, 60, 0)


def test_a_callable_augmentation():
    image, masks = sample()

    def transpose(image, masks):
        return np.ascontiguousarray(image.transpose(1, 0, 2)), masks.transpose(1, 0, 2).astype(np.uint8)

    new_image, new_masks = apply_augmentation(transpose, image, masks)
    assert new_image.shape == (60, 40, 3) and new_masks.dtype == bool
    assert np.array_equal(new_masks, masks.transpose(1, 0, 2))


@pytest.mark.parametrize("bad, message", [
    (lambda image, masks: image, "expected a tuple"),
    (lambda image, masks: (image.astype(np.float32), masks), "dtype float32, expected uint8"),
    (lambda image, masks: (image[:, :30], masks), r"masks of shape \(40, 60, 3\), expected \(40, 30, 3\)"),
    (lambda image, masks: (image, masks[:, :, :2]), r"expected \(40, 60, 3\)"),
    (lambda image, masks: (image[:, :, :1], masks), r"expected \(H, W, 3\)"),
    (lambda image, masks: 1 / 0, "ZeroDivisionError"),
])
def test_a_bad_callable_is_a_clear_error_naming_it(bad, message):
    image, masks = sample()
    with pytest.raises(AugmentationError, match=message) as info:
        apply_augmentation(bad, image, masks)
    assert "augmentation callable" in str(info.value) and "<lambda>" in str(info.value)


def test_something_that_is_no_augmentation():
    image, masks = sample()
    with pytest.raises(AugmentationError, match="not an albumentations transform"):
        apply_augmentation(42, image, masks)


def test_describe_augmentation():
    composed = A.Compose([A.HorizontalFlip(p=0.5), A.OneOf([A.Blur(p=1.0), A.RandomGamma(p=1.0)], p=0.3)])
    text = describe_augmentation(composed)
    assert text.startswith("albumentations Compose")
    assert "HorizontalFlip(p=0.5)" in text and "OneOf(p=0.3)[Blur(p=1), RandomGamma(p=1)]" in text
    assert describe_augmentation(None) == "none"

    def my_flip(image, masks):
        return image, masks

    assert describe_augmentation(my_flip) == f"callable {my_flip.__module__}.{my_flip.__qualname__}"


def test_imgaug_moves_masks_with_geometry_only():
    try:
        import imgaug.augmenters as iaa
    except Exception as err:            # imgaug 0.4 does not import on numpy 2
        pytest.skip(f"imgaug does not import here: {type(err).__name__}")
    image, masks = sample()
    flip_and_colour = iaa.Sequential([iaa.Fliplr(1.0), iaa.Multiply(1.5)])
    new_image, new_masks = apply_augmentation(flip_and_colour, image, masks, rng=np.random.default_rng(0))
    assert new_image.shape == image.shape and not np.array_equal(new_image, np.fliplr(image))
    assert np.array_equal(new_masks, masks[:, ::-1])
    assert describe_augmentation(flip_and_colour).startswith("imgaug Sequential")
