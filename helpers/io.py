"""Reading and writing files safely: clear errors on bad input, no half-written output.

Every writer in `helpers` goes through `atomic_write` (a temp file beside the target, then
an atomic rename), so an interrupted run never leaves a truncated JSON behind.
"""
import contextlib
import json
import os
import tempfile
from pathlib import Path


class DataError(ValueError):
    """Bad input data: the message names the file and what is wrong with it."""


def read_json(path, what="JSON file"):
    """Parse a JSON file; a missing or malformed file is a DataError naming it."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: expected a {what}, found a folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


@contextlib.contextmanager
def atomic_write(path, mode="w", **kwargs):
    """Open a temp file beside `path` for writing; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path, obj, indent=None):
    """Write `obj` as JSON to `path` atomically; returns the path."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False)  # C encoder: json.dump's is pure Python
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)
