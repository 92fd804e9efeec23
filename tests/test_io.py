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


def test_paused_gc_leaves_no_young_collection_to_walk_what_it_built():
    """Leaving the pause, the objects it built are not counted as young: the next allocations
    start no collection pass over them (at ModaNet size such a pass took 0.4-1 s)."""
    started = []

    def record(phase, info):
        if phase == "start":
            started.append(info["generation"])
    gc.callbacks.append(record)
    try:
        with paused_gc():
            assert not gc.isenabled()
            built = [[i] for i in range(20_000)]     # far more than a young generation holds
        assert gc.isenabled()
        after = [[i] for i in range(100)]            # a few allocations afterwards
    finally:
        gc.callbacks.remove(record)
    assert started == [] and len(built) + len(after) == 20_100


def test_paused_gc_still_frees_cycles_built_during_the_pause():
    with paused_gc():
        cycle = Node()
        cycle.itself = cycle
        cycle_alive = weakref.ref(cycle)
        del cycle
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
            [[1] for _ in range(10)]
        assert gc.get_freeze_count() == frozen > 0
    finally:
        gc.unfreeze()
