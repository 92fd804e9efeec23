"""Tests for helpers.seasons: season words, custom file names, labels, distinct error messages."""
import itertools

import pytest

from helpers import sample
from helpers.modanet import CLASS_NAMES, SEASONS, class_slug
from helpers.seasons import (CustomName, canonical_class, custom_file_name, label_name, parse_custom_name,
                             parse_label, season_code, season_from_filename)

ENGLISH = {"summer": "yaz", "autumn": "sonb", "fall": "sonb", "spring": "ilkb", "winter": "kis",
           "all": "4mev", "all seasons": "4mev", "allseasons": "4mev", "all_seasons": "4mev", "4mev": "4mev"}


@pytest.mark.parametrize("word, code", list(ENGLISH.items()))
def test_season_code_reads_english_in_any_case(word, code):
    assert season_code(word) == code
    assert season_code(word.upper()) == code
    assert season_code(f" {word.title()} ") == code


def test_season_code_reads_every_code_and_its_own_word():
    for code, word in SEASONS.items():
        assert season_code(code) == code
        assert season_code(word) == code


@pytest.mark.parametrize("bad", ["", "monsoon", "summers", "yaz_"])
def test_unknown_season_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="Unknown season"):
        season_code(bad)


def test_every_class_and_season_round_trips_through_file_name_and_label():
    """Brute force over 13 classes x 5 seasons x a few numbers and extensions."""
    for name, code, number, ext in itertools.product(CLASS_NAMES, SEASONS, (1, 7, 120), (".jpg", ".PNG", ".jpeg")):
        file_name = custom_file_name(name, code, number, ext)
        assert file_name == f"{class_slug(name)}_{code}_{number}{ext}"
        parsed = parse_custom_name(file_name)
        assert parsed == CustomName(name, code, number) == (name, code, number)
        assert (parsed.class_name, parsed.season, parsed.number) == (name, code, number)
        assert season_from_filename(file_name) == code
        label = label_name(name, code)
        assert label == f"{class_slug(name)}_{code}"
        assert parse_label(label) == (name, code)


@pytest.mark.parametrize("file_name, expected", [
    ("skirt_yaz_12.jpg", ("skirt", "yaz", 12)),
    ("skirt_summer_3.jpg", ("skirt", "yaz", 3)),
    ("Skirt_Summer_3.JPG", ("skirt", "yaz", 3)),
    ("scarf_tie_kis_3.jpeg", ("scarf/tie", "kis", 3)),
    ("scarf_tie_all_seasons_2.png", ("scarf/tie", "4mev", 2)),
    ("top_all seasons_5.jpg", ("top", "4mev", 5)),
    ("boots_fall_01.jpg", ("boots", "sonb", 1)),
    ("some/folder/bag_4mev_12.jpg", ("bag", "4mev", 12)),
])
def test_parse_custom_name_accepts_codes_words_and_folders(file_name, expected):
    assert parse_custom_name(file_name) == expected


@pytest.mark.parametrize("file_name, message", [
    ("hat_kis_1.jpg", "unknown class 'hat'"),
    ("scarf_kis_1.jpg", "unknown class 'scarf'"),
    ("bag_monsoon_1.jpg", "unknown season 'monsoon'"),
    ("scarf_tie_1.jpg", "unknown season 'tie'"),
    ("bag_1.jpg", "no season"),
    ("bag_kis.jpg", "not named"),
    ("bag_kis_x.jpg", "not named"),
    ("bag_kis_1", "not named"),
    ("holiday photo.jpg", "not named"),
    ("bag_kis_1.gif", "extension '.gif'"),
    ("bag_kis_0.jpg", "number must be 1 or more"),
])
def test_bad_names_say_what_is_wrong_and_name_the_file(file_name, message):
    with pytest.raises(ValueError, match=message) as err:
        parse_custom_name(file_name)
    assert file_name in str(err.value)


def test_label_helpers_accept_words_and_reject_nonsense():
    assert label_name("Scarf_Tie", "Winter") == "scarf_tie_kis"
    assert canonical_class("SCARF/TIE") == "scarf/tie"
    assert parse_label("scarf_tie_all_seasons") == ("scarf/tie", "4mev")
    for bad in ("skirt", "skirt_", "hat_kis", "skirt_monsoon"):
        with pytest.raises(ValueError, match="is not <class>_<season>"):
            parse_label(bad)
    with pytest.raises(ValueError, match="Unknown class 'hat'"):
        label_name("hat", "kis")
    with pytest.raises(ValueError, match="Unknown season"):
        label_name("bag", "monsoon")


def test_sample_keeps_its_strict_generator_names():
    assert sample.parse_custom_name("scarf_tie_kis_3.jpg") == ("scarf/tie", "kis", 3)
    for not_generated in ("skirt_summer_3.jpg", "skirt_yaz_3.png", "skirt_yaz_03.jpg", "Skirt_yaz_3.jpg"):
        assert parse_custom_name(not_generated).class_name == "skirt"
        with pytest.raises(ValueError, match="not a name helpers.sample writes"):
            sample.parse_custom_name(not_generated)


def test_one_photo_per_class_shows_every_class_once():
    from helpers.seasons import one_photo_per_class

    files = ["bag_yaz_2.jpg", "bag_kis_1.jpg", "top_yaz_3.jpg", "skirt_4mev_1.jpg", "notes.txt", "bag_yaz_1.jpg"]
    picked = one_photo_per_class(files)
    assert picked == ["bag_kis_1.jpg", "skirt_4mev_1.jpg", "top_yaz_3.jpg"]
    assert [n.split("_")[0] for n in picked] == sorted({n.split("_")[0] for n in files if n.endswith(".jpg")})


def test_garments_without_labels_are_named():
    from helpers.seasons import garments_without_labels

    files = ["bag_yaz_1.jpg", "top_kis_2.jpg", "scarf_tie_yaz_1.jpg", "skirt_sonb_1.jpg", "readme.txt"]
    assert garments_without_labels(files, ["top_kis", "skirt_yaz"]) == ["bag", "scarf/tie"]
    assert garments_without_labels(files, []) == ["bag", "scarf/tie", "skirt", "top"]
