"""Safe reading and atomic writing."""
import gc
import json
import weakref

import pytest

from helpers.io import DataError, atomic_write, paused_gc, read_json, write_json_atomic


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


class Node:
    """Something that can hold a reference to itself (a cycle) and be weakly referenced."""


def in_generation(obj, generation):
    return any(tracked is obj for tracked in gc.get_objects(generation))


def test_paused_gc_puts_what_it_built_in_the_oldest_generation_and_still_frees_cycles():
    """No young-generation pass has to walk a big parsed file again, yet cycles are not leaked."""
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        built = [[i] for i in range(1000)]
        cycle = Node()
        cycle.itself = cycle
        cycle_alive = weakref.ref(cycle)
        del cycle
    assert gc.isenabled()
    assert in_generation(built, 2) and not in_generation(built, 0)
    assert gc.get_freeze_count() == 0
    assert cycle_alive() is not None
    gc.collect()
    assert cycle_alive() is None


def test_paused_gc_nested_and_with_objects_frozen_by_the_caller():
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()       # the inner pause does not switch the collector back on
    assert gc.isenabled()
    gc.freeze()                         # the caller's own freeze is left as it is
    try:
        frozen = gc.get_freeze_count()
        with paused_gc():
            built = [[1]]
        assert gc.get_freeze_count() == frozen > 0
        assert not in_generation(built, 2)
    finally:
        gc.unfreeze()
