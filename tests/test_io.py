"""Safe reading and atomic writing."""
import errno
import gc
import json
import os
import signal
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

import helpers.io
from helpers.io import (DataError, atomic_write, atomic_write_many, describe_os_error, live_temp_files,
                        name_leaves_folder, paused_gc, read_json, same_file, write_files_atomic,
                        write_json_atomic)

REPO = Path(__file__).resolve().parents[1]


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


# --- several files as one set ------------------------------------------------------------------

def old_set(folder, names=("train.json", "val.json", "test.json")):
    """Three existing files with distinct contents: {path: bytes}."""
    folder.mkdir(exist_ok=True)
    contents = {folder / name: f"old {name} ".encode() * (k + 1) for k, name in enumerate(names)}
    for path, data in contents.items():
        path.write_bytes(data)
    return contents


def assert_unchanged(contents):
    for path, data in contents.items():
        assert path.read_bytes() == data, path
    folder = next(iter(contents)).parent
    assert sorted(folder.iterdir()) == sorted(contents), "a temp or backup file was left"


def test_write_set_replaces_all_files_and_leaves_nothing_else(tmp_path):
    old = old_set(tmp_path)
    new = {path: b"new " + path.name.encode() for path in old}
    assert write_files_atomic(new) == list(old)
    assert_unchanged(new)
    assert live_temp_files() == []


def test_write_set_full_disk_at_sync_of_the_last_file_keeps_the_old_set(tmp_path, monkeypatch):
    """The data of a file may fail to reach the disk only at its flush or fsync: by then, with
    one rename per file as each closes, the other files were already replaced."""
    old = old_set(tmp_path)
    calls = []
    real_fsync = os.fsync

    def failing_fsync(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="No space left") as caught:
        write_files_atomic({path: b"new" for path in old})
    assert caught.value.filename == str(list(old)[2])       # names the target, not the temp
    monkeypatch.undo()
    assert_unchanged(old)
    assert live_temp_files() == []


def test_write_set_error_in_the_body_keeps_the_old_set(tmp_path):
    old = old_set(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with atomic_write_many(old) as files:
            files[0].write(b"half")
            raise KeyboardInterrupt
    assert_unchanged(old)


def failing_replace(monkeypatch, fail_onto, fail_restore=False):
    """os.replace that fails renaming a temp file onto `fail_onto` (and, with fail_restore,
    putting a backup back)."""
    real_replace = os.replace

    def replace(src, dst):
        src = str(src)
        if src.endswith(".tmp") and Path(dst) == fail_onto:
            raise OSError(errno.EIO, "Input/output error")
        if fail_restore and src.endswith(".bak"):
            raise OSError(errno.EIO, "Input/output error")
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)


def test_rename_failing_mid_way_puts_the_renamed_files_back(tmp_path, monkeypatch):
    old = old_set(tmp_path)
    paths = list(old)
    failing_replace(monkeypatch, paths[2])
    with pytest.raises(OSError, match="nothing written, the earlier files are as they were"):
        write_files_atomic({path: b"new" for path in paths})
    monkeypatch.undo()
    assert_unchanged(old)


def test_rename_failing_mid_way_removes_new_files_that_did_not_exist(tmp_path, monkeypatch):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    failing_replace(monkeypatch, paths[1])
    with pytest.raises(OSError, match="nothing written"):
        write_files_atomic({path: b"new" for path in paths})
    assert list(tmp_path.iterdir()) == []


def test_rename_and_restore_failing_say_exactly_which_files_are_new(tmp_path, monkeypatch):
    old = old_set(tmp_path)
    paths = list(old)
    failing_replace(monkeypatch, paths[2], fail_restore=True)
    with pytest.raises(OSError) as caught:
        write_files_atomic({path: b"new" for path in paths})
    message = str(caught.value)
    assert f"MIXED SET: new {paths[0]}, {paths[1]}, old {paths[2]}" in message
    assert [p.read_bytes() for p in paths] == [b"new", b"new", old[paths[2]]]
    backups = sorted(tmp_path.glob(".*.bak"))           # the old contents, named in the message
    assert sorted(p.read_bytes() for p in backups) == sorted([old[paths[0]], old[paths[1]]])
    assert all(str(p) in message for p in backups)


def test_write_set_refuses_the_same_file_twice(tmp_path):
    with pytest.raises(ValueError, match="given twice"):
        write_files_atomic({tmp_path / "a.json": b"1", tmp_path / "sub" / ".." / "a.json": b"2"})
    assert list(tmp_path.iterdir()) == []


# --- errors name the target -----------------------------------------------------------------------

def test_os_errors_name_the_target_not_the_temp_file(tmp_path):
    folder = tmp_path / "out.json"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        write_json_atomic(folder, {"a": 1})
    assert caught.value.filename == str(folder)
    assert describe_os_error(caught.value) == f"{folder}: Is a directory"
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    for under_a_file in (blocker / "out.json", blocker / "sub" / "out.json"):
        with pytest.raises(NotADirectoryError) as caught:
            write_json_atomic(under_a_file, {"a": 1})
        message = describe_os_error(caught.value)
        assert message.startswith(str(blocker)) and ": Not a directory" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "out.json"]
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root writes into read-only folders")
def test_unwritable_folder_is_a_permission_error_naming_the_target(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as caught:
            write_json_atomic(locked / "out.json", {"a": 1})
    finally:
        locked.chmod(0o700)
    assert describe_os_error(caught.value) == f"{locked / 'out.json'}: Permission denied"


def test_same_file_sees_symlinks_and_hard_links(tmp_path):
    original = tmp_path / "in.json"
    original.write_text("{}")
    (tmp_path / "soft.json").symlink_to(original)
    os.link(original, tmp_path / "hard.json")
    assert same_file(original, tmp_path / "soft.json")
    assert same_file(original, tmp_path / "hard.json")
    assert same_file(original, tmp_path / "sub" / ".." / "in.json")
    assert not same_file(original, tmp_path / "other.json")


@pytest.mark.parametrize("name,problem", [
    ("../x.jpg", "'..'"), ("a/../../x.jpg", "'..'"), ("a/../b.jpg", "'..'"), ("..", "'..'"),
    ("..\\x.jpg", "'..'"), ("/etc/passwd", "absolute"), ("\\server\\x.jpg", "absolute"),
    ("", "empty"), ("a\0.jpg", "NUL"), (12, "not text"), (None, "not text"),
])
def test_names_that_leave_the_folder_are_refused(name, problem):
    assert problem in name_leaves_folder(name)


@pytest.mark.parametrize("name", ["a.jpg", "sub/a.jpg", "./a.jpg", "a..b.jpg", "..a.jpg", "é b.jpg"])
def test_names_inside_the_folder_are_accepted(name):
    assert name_leaves_folder(name) is None


# --- signals ---------------------------------------------------------------------------------------

# A background job of a non-interactive shell (CI's, nohup's) starts with SIGINT ignored, and the
# handler rightly leaves an ignored signal alone: the writer starts as a terminal's command would.
WRITER = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)
from helpers.io import atomic_write, remove_temp_files_on_signals
if sys.argv[2] == "handled":
    remove_temp_files_on_signals()
with atomic_write(sys.argv[1], "wb") as f:
    f.write(b"x" * 100_000)
    print("READY", flush=True)
    time.sleep(120)
"""


def signal_writer(tmp_path, signum, handled):
    """Start a process writing tmp_path/out.bin, signal it mid-write; (process, stderr)."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "out.bin"), handled],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "READY"
    assert len(list(tmp_path.glob(".out.bin.*.tmp"))) == 1
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    return process, stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_write_removes_the_temp_file_and_exits_128_plus_signal(tmp_path, signum):
    process, stderr = signal_writer(tmp_path, signum, "handled")
    assert process.returncode == 128 + signum
    assert list(tmp_path.iterdir()) == []
    assert "Traceback" not in stderr and "interrupted" in stderr


def test_without_the_handler_sigterm_leaves_the_temp_file(tmp_path):
    """Why command lines install the handler: SIGTERM's default ends the process at once."""
    process, _ = signal_writer(tmp_path, signal.SIGTERM, "default")
    assert process.returncode == -signal.SIGTERM
    assert len(list(tmp_path.glob(".out.bin.*.tmp"))) == 1


def test_the_handler_keeps_a_handler_someone_else_installed():
    previous = signal.getsignal(signal.SIGTERM)
    mine = lambda signum, frame: None      # noqa: E731
    signal.signal(signal.SIGTERM, mine)
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        taken = helpers.io.remove_temp_files_on_signals()
        assert "SIGTERM" not in taken and signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
