"""Reading and writing files safely: clear errors on bad input, no half-written output.

Every writer in `helpers` goes through `atomic_write` (a temp file beside the target, then
an atomic rename), so an interrupted run never leaves a truncated JSON behind. Files that
belong together (a split's train / val / test) go through `atomic_write_many`: all written
and synced first, then renamed together.

Temp files and signals: every live temp file is in a registry. An exception (KeyboardInterrupt
included) removes it as it unwinds. A SIGTERM would kill the process on the spot, so each
command line calls `remove_temp_files_on_signals()`: its handler removes the registered temp
files at once, then raises SystemExit(128 + signal number), the shell's conventional status, so
that `finally` blocks still run as the stack unwinds (a resumable download keeps its state, a
notebook runner shuts its kernels down); a second signal of the same kind ends the process at
once. It is installed by the command lines when run as scripts (in their
`if __name__ == "__main__":` block), not on import nor in `main()`, because a library should not
take over the signals of a notebook kernel, of pytest or of a program that imports it; and only
from the main thread (Python allows signal handlers nowhere else).
"""
import contextlib
import errno
import gc
import json
import os
import signal
import tempfile
import threading
from pathlib import Path

try:  # orjson parses and writes JSON several times faster than the standard library
    import orjson
except ImportError:  # pragma: no cover - the standard library does the same, slower
    orjson = None


class DataError(ValueError):
    """Bad input data: the message names the file and what is wrong with it."""


@contextlib.contextmanager
def paused_gc():
    """Pause Python's cycle collector while building many small objects that form no cycles.

    Parsing a ModaNet-size JSON makes millions of dicts and lists; with the collector on, each
    of its passes walks all of them again (reading the 100 MB train file took 4.9 s of CPU
    with it, a fraction of that without). On leaving, everything the pause built goes straight
    to the oldest generation (`gc.freeze()` then `gc.unfreeze()`, a list splice): otherwise the
    first allocation afterwards walks all of it as "young" (0.4-1 s for a ModaNet-size file),
    only to find no cycles. Cycles among those objects are still found by full collections.
    Skipped when the caller has frozen objects itself (unfreezing would undo that).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def loads(data):
    """Parse JSON text or bytes (orjson when installed)."""
    return orjson.loads(data) if orjson is not None else json.loads(data)


def dumps(obj, indent=None):
    """JSON of `obj` as UTF-8 bytes (orjson when installed; indent: None or 2 with orjson)."""
    if orjson is not None:
        options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
        return orjson.dumps(obj, option=options | (orjson.OPT_INDENT_2 if indent else 0))
    return json.dumps(obj, indent=indent, ensure_ascii=False).encode("utf-8")


def read_json(path, what="JSON file"):
    """Parse a JSON file; a missing or malformed file is a DataError naming it."""
    path = Path(path)
    try:
        with open(path, "rb") as f, paused_gc():
            return loads(f.read())
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: expected a {what}, found a folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


# --- temp files, removed on errors and on SIGTERM / SIGINT ------------------------------------

_LIVE_TEMPS = set()          # temp files not yet renamed onto their target nor removed
_HANDLED_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


def _remove_quietly(path):
    with contextlib.suppress(OSError):
        os.unlink(path)


def _new_temp(path):
    """A new empty temp file beside `path` (registered): (fd, temp path)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    _LIVE_TEMPS.add(tmp)
    return fd, tmp


def _forget_temp(tmp, remove=True):
    if remove:
        _remove_quietly(tmp)
    _LIVE_TEMPS.discard(tmp)


def live_temp_files():
    """The temp files being written now (for tests and for signal handlers)."""
    return sorted(_LIVE_TEMPS)


def _name_target(err, path, tmp=None):
    """An OSError from our own steps of writing `path` names `path`, not our temp file."""
    if err.filename is None or err.filename == tmp:
        err.filename, err.filename2 = str(path), None
    return err


def _open_temp(path):
    """(fd, temp path) beside `path`, its folder created; an OSError names the folder that could
    not be made, or `path` when the temp file could not be created."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:      # a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory (a file is in the way)",
                                 err.filename) from None
    try:
        return _new_temp(path)
    except OSError as err:
        err.filename, err.filename2 = str(path), None
        raise


def _on_signal(signum, frame):
    """Remove the live temp files, then exit with status 128 + signum, unwinding the stack."""
    for tmp in list(_LIVE_TEMPS):
        _forget_temp(tmp)
    signal.signal(signum, signal.SIG_DFL)      # a second one ends the process at once
    name = signal.Signals(signum).name
    os.write(2, f"interrupted ({name}): no output file half-written\n".encode())
    raise SystemExit(128 + signum)


def remove_temp_files_on_signals():
    """In a command line's `__main__` block: SIGTERM, SIGINT and SIGHUP remove the live temp files
    before the process ends (exit status 128 + n, as the shell reports a process the signal ended).

    Only signals still at their default are taken (a caller's own handler is kept; SIGINT's
    default is Python's KeyboardInterrupt, which already removes temp files as it unwinds,
    but would print a traceback). Does nothing outside the main thread. Returns the signals
    taken.
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    taken = []
    for name in _HANDLED_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        current = signal.getsignal(signum)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, _on_signal)
            taken.append(name)
    return taken


@contextlib.contextmanager
def _signals_held():
    """Hold back SIGTERM / SIGINT / SIGHUP (where the OS allows it) while a few renames run, so
    a signal cannot split them; they are delivered right after."""
    block = getattr(signal, "pthread_sigmask", None)
    if block is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {getattr(signal, name) for name in _HANDLED_SIGNALS if hasattr(signal, name)}
    previous = block(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        block(signal.SIG_SETMASK, previous)


def _sync_folder(folder):
    """fsync a folder so the renames in it survive a power cut (POSIX; a no-op elsewhere)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="w", **kwargs):
    """Open a temp file beside `path` for writing; rename it onto `path` only on success.

    The temp file is removed on any error (and on SIGTERM in command lines, see
    `remove_temp_files_on_signals`); an OSError names `path`.
    """
    path = Path(path)
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            try:
                f.flush()
                os.fsync(f.fileno())
            except OSError as err:
                raise _name_target(err, path, tmp)
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise _name_target(err, path, tmp)
        _forget_temp(tmp, remove=False)
    except BaseException:
        _forget_temp(tmp)
        raise


@contextlib.contextmanager
def atomic_write_many(paths, mode="wb", **kwargs):
    """Write several files as one set: yields one open file per path (in order); on success all
    are renamed onto their targets, on any error none is and the old files stay as they were.

    Two phases:
    1. every file is written to a temp file beside its target, flushed and fsynced. Any error
       here (an exception in the `with` body, a full disk at flush or fsync, a signal) removes
       all the temp files: the old set is untouched.
    2. the renames. Each rename is atomic on its own, the set of them cannot be: the guarantees
       are that (a) SIGTERM / SIGINT / SIGHUP are held back until the renames are done (POSIX
       main thread), (b) each existing target gets a hard-link backup first, so if a rename
       fails mid-way the targets already replaced are put back from their backups (and the ones
       that did not exist before are removed), and the error says so; (c) if even that restore
       fails (or a file system without hard links gave no backup), the OSError lists exactly
       which targets are new and which are old. A power cut or SIGKILL during the renames
       (microseconds) can still leave a mixed set, and a `.NAME.*.bak` backup beside it.
    Targets must be distinct files (ValueError otherwise).
    """
    paths = [Path(p) for p in paths]
    seen = {}
    for path in paths:
        key = os.path.normcase(os.path.abspath(path.parent.resolve() / path.name))
        if key in seen:
            raise ValueError(f"{path}: given twice to write as a set (also {seen[key]})")
        seen[key] = path
    temps, files = [], []
    try:
        for path in paths:
            fd, tmp = _open_temp(path)
            temps.append(tmp)
            files.append(os.fdopen(fd, mode, **kwargs))
        yield files
        for path, tmp, f in zip(paths, temps, files):
            try:
                f.flush()
                os.fsync(f.fileno())
                f.close()
            except OSError as err:
                raise _name_target(err, path, tmp) from None
    except BaseException:
        for f in files:
            with contextlib.suppress(OSError):
                f.close()
        for tmp in temps:
            _forget_temp(tmp)
        raise
    with _signals_held():
        _rename_set(paths, temps)
    for folder in {path.parent for path in paths}:
        _sync_folder(folder)


def _rename_set(paths, temps):
    """Phase 2 of `atomic_write_many`: backups, renames, and a restore if a rename fails."""
    backups, existed = {}, set()
    try:
        for path in paths:
            if not os.path.lexists(path):
                continue
            existed.add(path)
            backup = tempfile.mktemp(prefix=f".{path.name}.", suffix=".bak", dir=path.parent)
            with contextlib.suppress(OSError, NotImplementedError):   # else: no backup
                if path.is_symlink():
                    os.symlink(os.readlink(path), backup)
                else:
                    os.link(path, backup, follow_symlinks=False)
                backups[path] = backup
        done = []
        for path, tmp in zip(paths, temps):
            try:
                os.replace(tmp, path)
            except OSError as err:
                _name_target(err, path, tmp)
                raise _restore(paths, done, backups, existed, path, err) from err
            _forget_temp(tmp, remove=False)
            done.append(path)
    finally:
        for tmp in temps:
            if tmp in _LIVE_TEMPS:
                _forget_temp(tmp)
        for backup in backups.values():
            _remove_quietly(backup)


def _restore(paths, done, backups, existed, failed, err):
    """Put back the targets in `done` after the rename onto `failed` failed; the error to raise."""
    not_restored, kept = [], []
    for path in done:
        try:
            if path in backups:
                os.replace(backups[path], path)
                del backups[path]
            elif path not in existed:
                os.unlink(path)
            else:                       # existed, but the file system made no backup
                not_restored.append(path)
        except OSError:
            not_restored.append(path)
            if path in backups:         # the old content: kept for the user, not removed
                kept.append(f"{path} in {backups.pop(path)}")
    if not not_restored:
        return OSError(err.errno, f"{err.strerror}; nothing written, the earlier files are as "
                                  f"they were", str(failed))
    old = [str(p) for p in paths if p not in not_restored]
    message = (f"{err.strerror}; MIXED SET: new {', '.join(map(str, not_restored))}, "
               f"old {', '.join(old)}")
    if kept:
        message += f"; old copies kept: {', '.join(kept)}"
    return OSError(err.errno, message, str(failed))


def write_files_atomic(contents, mode="wb"):
    """Write {path: bytes or text} as one set (see `atomic_write_many`); returns the paths."""
    paths = list(contents)
    with atomic_write_many(paths, mode) as files:
        for f, data in zip(files, contents.values()):
            f.write(data)
    return [Path(p) for p in paths]


def same_file(a, b):
    """True when paths `a` and `b` are the same file: equal after resolving symlinks, or (both
    existing) the same inode, which also catches hard links."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def describe_os_error(err):
    """An OSError as one line for a user: 'out.json: Permission denied'."""
    reason = err.strerror or str(err)
    names = [n for n in (err.filename, err.filename2) if n is not None]
    return f"{' -> '.join(map(str, names))}: {reason}" if names else reason


def name_leaves_folder(name):
    """Why the file name `name` (from an annotation file) would leave its images folder, or None.

    Refused: names that are not text, empty, with a NUL byte, absolute (or with a drive), or with
    any `..` part (even `a/../b.jpg`: if `a` is a symlink, the OS resolves `a/..` from where it
    points). Decided on the name's text alone, not on where symlinks lead: a symlink inside the
    folder may point anywhere (course data folders link to shared or mounted image stores) and
    is followed, since only the folder's owner can create it, whereas the name comes from an
    annotation file that anyone may have written.
    """
    if not isinstance(name, str):
        return f"file name {name!r} is not text"
    if not name or "\0" in name:
        return "empty file name or NUL byte in it"
    if os.path.isabs(name) or os.path.splitdrive(name)[0] or name.startswith(("/", "\\")):
        return "absolute file name, outside the images folder"
    parts = name.replace("\\", "/").split("/")
    if os.pardir in parts:
        return "file name with '..', outside the images folder"
    return None


def write_json_atomic(path, obj, indent=None):
    """Write `obj` as JSON to `path` atomically; returns the path."""
    data = dumps(obj, indent=indent)    # encoded first: a failure leaves no file behind
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)
