"""The real photos the course ships: present, readable, and each one credited."""
import pytest

from helpers.paths import EXAMPLE_PHOTOS, example_photos
from mrcnn.utils import read_image_rgb


def test_the_course_ships_real_photos_and_credits_each_one():
    photos = example_photos()
    assert len(photos) >= 2
    credits = (EXAMPLE_PHOTOS / "CREDITS.md").read_text()
    for photo in photos:
        image = read_image_rgb(photo)
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 256
        row = next(line for line in credits.splitlines() if f"`{photo.name}`" in line)
        assert "public domain" in row


def test_a_missing_photo_folder_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        example_photos(tmp_path / "nowhere")
