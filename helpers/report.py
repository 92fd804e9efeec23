"""Headline figures and pictures that outlive a notebook: one metrics JSON, PNG figures.

Each notebook adds its section to `paths.metrics` (data/<profile root>/metrics.json) and saves
the figures worth keeping under `paths.figures`; `make demo` gathers both into runs/demo/.
"""
import io
import math
import numbers
import re
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


# -- printed tables: what a notebook shows instead of a raw dict ------------------------------
def figure(value, digits=3):
    """A number as a table shows it: floats rounded to `digits` decimals, None and NaN as "n/a"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return f"{float(value):.{digits}f}"


def percent(share):
    """A share (0..1) as "62.7%" (None: "n/a")."""
    return "n/a" if share is None or (isinstance(share, float) and math.isnan(share)) else f"{100 * share:.1f}%"


_NUMBER_TEXT = re.compile(r"^([-+]?\d[\d,.]*%?|-|n/a)$")


def _numeric_like(value):
    """Right-aligned in a table: numbers, None, and text that reads as one ("62.7%", "-", "n/a")."""
    if value is None or (isinstance(value, numbers.Real) and not isinstance(value, bool)):
        return True
    return isinstance(value, str) and bool(_NUMBER_TEXT.match(value))


def text_table(rows, columns=None, headers=None, indent="  ", digits=3):
    """Rows (dicts, or sequences with `columns`) as aligned text: text left, numbers right.

    `columns` picks and orders the keys (default: the first row's); `headers` renames them.
    Floats are rounded to `digits` decimals and None / NaN show as "n/a".
    """
    rows = list(rows)
    if not rows:
        return ""
    if isinstance(rows[0], dict):
        columns = list(columns or rows[0])
        cells = [[row.get(column) for column in columns] for row in rows]
    else:
        cells = [list(row) for row in rows]
        columns = list(columns or range(len(cells[0])))
    headers = [str(h) for h in (headers or columns)]
    shown = [[figure(value, digits) for value in row] for row in cells]
    numeric = [all(_numeric_like(row[i]) for row in cells) for i in range(len(columns))]
    widths = [max([len(headers[i])] + [len(row[i]) for row in shown]) for i in range(len(columns))]

    def line(values):
        parts = [v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)]
        return (indent + "  ".join(parts)).rstrip()
    return "\n".join([line(headers)] + [line(row) for row in shown])


def show_table(rows, columns=None, headers=None, digits=3):
    """Print `text_table(rows, ...)`."""
    print(text_table(rows, columns, headers, digits=digits))


def label_grid(counts, title="label", empty="-"):
    """Counts of `<garment>_<season>` labels as a garment x season table (a row per garment).

    `counts` maps a label ("skirt_yaz") to a number; labels that are not garment_season
    get their own rows at the end. Seasons come in the course's order (yaz, sonb, ilkb, kis,
    4mev) and a garment without a season shows `empty`.
    """
    from helpers.seasons import SEASON_CODES, parse_label

    grid, others = {}, {}
    for label, count in counts.items():
        try:
            garment, season = parse_label(label)
        except ValueError:
            others[str(label)] = count
            continue
        grid.setdefault(garment, {})[season] = grid.get(garment, {}).get(season, 0) + count
    seasons = [s for s in SEASON_CODES if any(s in row for row in grid.values())]
    rows = [[garment] + [row.get(s, empty) for s in seasons] + [sum(row.values())]
            for garment, row in sorted(grid.items())]
    text = text_table(rows, headers=[f"{title} (garment x season)"] + seasons + ["all"]) if rows else ""
    if others:
        text += ("\n" if text else "") + text_table(sorted(others.items()), headers=[title, "count"])
    return text


def _pack(items, width, indent, first=""):
    """`items` joined by ", " in lines of at most `width` characters; an item is never split."""
    lines, line, fresh = [], indent + first, True
    for n, item in enumerate(items):
        piece = item + ("," if n < len(items) - 1 else "")
        if not fresh and len(line) + 1 + len(piece) > width:
            lines.append(line)
            line, fresh = indent + "  ", True
        line += piece if fresh else " " + piece
        fresh = False
    lines.append(line)
    return lines


def format_mapping(mapping, indent="", width=104):
    """A nested dict (a run's summary) as short readable lines instead of one raw dict.

    Neighbouring scalars share a line ("images 240, annotations 1316, ..."); a dict of scalars
    (counts per class) becomes one wrapped line after its key; deeper dicts nest, indented.
    Floats are rounded to 3 decimals; lines wrap between items, never inside one.
    """
    def flat(value):
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(flat(v) for v in value) + "]"
        return figure(value)

    def scalar(value):
        return not isinstance(value, (dict, list, tuple))

    lines, run = [], []
    for key, value in mapping.items():
        if scalar(value) or (isinstance(value, (list, tuple)) and len(flat(value)) <= 40):
            run.append(f"{key} {flat(value)}")
            continue
        if run:
            lines += _pack(run, width, indent)
            run = []
        if isinstance(value, dict) and all(scalar(v) for v in value.values()):
            lines += _pack([f"{k} {flat(v)}" for k, v in value.items()], width, indent, f"{key}: ")
        elif isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.append(format_mapping(value, indent + "  ", width))
        else:
            lines += _pack([flat(v) for v in value], width, indent, f"{key}: ")
    if run:
        lines += _pack(run, width, indent)
    return "\n".join(line for line in lines if line.strip())


def coco_overview(coco):
    """A COCO dict in a few lines: how many images, annotations and categories, and the categories."""
    counts = {key: len(value) if isinstance(value, list) else value for key, value in coco.items()
              if key not in ("categories", "info")}
    lines = [format_mapping(counts)]
    if isinstance(coco.get("info"), dict):
        lines.append(format_mapping({"info": coco["info"]}))
    categories = coco.get("categories") or []
    lines += _pack([f"{c.get('id')} {c.get('name')}" for c in categories], 104, "",
                   f"{len(categories)} categories (id name): ")
    return "\n".join(lines)
