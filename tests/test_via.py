"""Tests for helpers.via: every VIA version reads into the VIA 2 export shape; bad files fail clearly."""
import json
from pathlib import Path

import pytest

from helpers.io import DataError
from helpers.via import read_via, write_via

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "modanet"


def fixture(name):
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"real fixture {path} absent")
    return path


def polygon(xs, ys, **attributes):
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": attributes}


REGION_A = polygon([1, 5, 5], [1, 1, 6], fashion="1")
REGION_B = polygon([2, 8, 8], [2, 2, 9], fashion="2")
REGION_C = polygon([3, 9, 9], [3, 3, 7], fashion="3")


def via2_export():
    return {
        "7": {"filename": "0000007.jpg", "size": -1, "regions": [REGION_A, REGION_B],
              "file_attributes": {"width": 40, "height": 60}},
        "8": {"filename": "0000008.jpg", "size": 1234, "regions": [], "file_attributes": {}},
    }


def test_via2_export_is_returned_unchanged():
    assert read_via(via2_export()) == via2_export()


def test_via1_dict_regions_become_a_list_in_numeric_order():
    via1 = {"a.jpg123": {"fileref": "", "size": 123, "filename": "a.jpg", "base64_img_data": "",
                         "file_attributes": {},
                         "regions": {"10": REGION_C, "2": REGION_B, "0": REGION_A}}}
    via = read_via(via1)
    assert via == {"a.jpg123": {"filename": "a.jpg", "size": 123,
                                "regions": [REGION_A, REGION_B, REGION_C], "file_attributes": {}}}


def test_via2_project_gives_its_image_metadata():
    project = {"_via_settings": {"ui": {}, "core": {}, "project": {"name": "p"}},
               "_via_img_metadata": via2_export(),
               "_via_attributes": {"region": {"fashion": {"type": "text"}}, "file": {}},
               "_via_data_format_version": "2.0.10", "_via_image_id_list": ["7", "8"]}
    assert read_via(project) == via2_export()


def test_missing_size_and_file_attributes_get_defaults():
    via = read_via({"k": {"filename": "k.jpg", "regions": []}})
    assert via == {"k": {"filename": "k.jpg", "size": -1, "regions": [], "file_attributes": {}}}


def test_reading_a_path_equals_reading_the_parsed_object(tmp_path):
    path = tmp_path / "via.json"
    path.write_text(json.dumps(via2_export()))
    assert read_via(path) == read_via(str(path)) == via2_export()


def test_empty_export_is_an_empty_dataset():
    assert read_via({}) == {}


@pytest.mark.parametrize("content, words", [
    ({"images": [], "annotations": [], "categories": []}, "COCO"),
    ([{"filename": "a.jpg", "regions": []}], "list"),
    ({"7": {"filename": "a.jpg"}}, "'7'"),
    ({"7": {"filename": "a.jpg", "regions": "oops"}}, "regions"),
    ({"7": {"filename": "a.jpg", "regions": [], "file_attributes": [1]}}, "file_attributes"),
    ({"_via_img_metadata": [1, 2]}, "_via_img_metadata"),
])
def test_non_via_files_are_a_data_error_naming_file_and_expectation(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataError) as caught:
        read_via(path)
    message = str(caught.value)
    assert str(path) in message and words in message
    assert "\n" not in message


def test_unparseable_and_missing_files_are_data_errors(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": ')
    with pytest.raises(DataError, match="broken.json"):
        read_via(broken)
    with pytest.raises(DataError, match="nothere.json"):
        read_via(tmp_path / "nothere.json")


def test_write_via_round_trips_and_is_atomic(tmp_path):
    path = tmp_path / "out" / "via.json"
    write_via(via2_export(), path)
    assert read_via(path) == via2_export()
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_via({"k": {"filename": "x", "regions": [object()]}}, path)
    assert path.read_bytes() == before               # the old file survives a failed write
    assert sorted(p.name for p in path.parent.iterdir()) == ["via.json"]   # no temp file left


def test_real_modanet_via_fixture_reads_unchanged():
    path = fixture("modanet_via_subset.json")
    raw = json.loads(path.read_text())
    via = read_via(path)
    assert via == raw
    assert len(via) == 4 and all(isinstance(entry["regions"], list) for entry in via.values())


def test_real_season_via_fixture_reads():
    via = read_via(fixture("season_via_subset.json"))
    assert len(via) == 9
    assert all(len(entry["regions"]) == 1 for entry in via.values())
    assert via["skirt_yaz_252"]["filename"] == "skirt_yaz_252.jpg"
