"""Safe reading and atomic writing."""
import json

import pytest

from helpers.io import DataError, atomic_write, read_json, write_json_atomic


def test_round_trip(tmp_path):
    target = write_json_atomic(tmp_path / "a" / "b.json", {"x": [1, 2], "é": "ü"})
    assert read_json(target) == {"x": [1, 2], "é": "ü"}
    assert [p.name for p in target.parent.iterdir()] == ["b.json"]


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.json: annotation file not found"):
        read_json(tmp_path / "missing.json", "annotation file")
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [1, 2')
    with pytest.raises(DataError, match="bad.json: not valid JSON"):
        read_json(bad)
    with pytest.raises(DataError, match="found a folder"):
        read_json(tmp_path)


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"old": True})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"new": object()})  # not serialisable, fails mid-way
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_interrupted_binary_write(tmp_path):
    target = tmp_path / "img.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target, "wb") as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert not list(tmp_path.iterdir())
