"""Headline figures and pictures that outlive a notebook: one metrics JSON, PNG figures.

Each notebook adds its section to `paths.metrics` (data/<profile root>/metrics.json) and saves
the figures worth keeping under `paths.figures`; `make demo` gathers both into runs/demo/.
"""
import io
from pathlib import Path

from helpers.io import atomic_write, read_json, write_json_atomic


def record_metrics(paths, section, values):
    """Merge `values` (a JSON-ready dict) into section `section` of the metrics file; return all."""
    target = Path(paths.metrics)
    metrics = read_json(target, "metrics file") if target.is_file() else {}
    metrics[section] = {**metrics.get(section, {}), **values}
    write_json_atomic(target, metrics, indent=1)
    return metrics


def read_metrics(paths):
    """The metrics file as a dict ({} when no notebook has written one yet)."""
    target = Path(paths.metrics)
    return read_json(target, "metrics file") if target.is_file() else {}


def save_figure(fig, paths, name, dpi=100):
    """Save a matplotlib Figure as figures/<name>.png (atomically); returns the path."""
    target = Path(paths.figures) / f"{name}.png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_write(target, "wb") as out:
        out.write(buffer.getvalue())
    return target
