"""The README's smoke-run figures, written from a run's metrics.json rather than typed.

`make demo` leaves runs/demo/metrics.json. This command copies it to docs/smoke_run_metrics.json (the
run the README quotes, kept in the repository) and rewrites the README's paragraph between the
markers below from it::

    python -m helpers.readme_figures runs/demo/metrics.json

tests/test_readme_figures.py fails when the README's paragraph is not the one this module writes
from docs/smoke_run_metrics.json, so a figure typed by hand, or left from an older run, is caught.
"""
import argparse
import sys
import textwrap
from pathlib import Path

from helpers.io import (DataError, describe_os_error, dumps, read_json, remove_temp_files_on_signals,
                        write_files_atomic)
from helpers.paths import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
SNAPSHOT = PROJECT_ROOT / "docs" / "smoke_run_metrics.json"
START = "<!-- smoke-figures: written by `python -m helpers.readme_figures`; do not edit by hand -->"
END = "<!-- /smoke-figures -->"


def smoke_paragraph(metrics):
    """The README's paragraph on what one smoke run reached, every figure taken from `metrics`."""
    model1, auto = metrics["model1"], metrics["autolabel"]
    compare, run = metrics["compare"], metrics.get("run", {})
    wrong = round(auto["share_wrong_garment"] * auto["instances"]) if "share_wrong_garment" in auto else None
    minutes = f"{run['wall_seconds'] / 60:.0f} minutes" if "wall_seconds" in run else "its wall time unrecorded"
    lines = [
        f"What one smoke run reached (`make demo` on this project's 2-core CPU, {minutes}; the figures move from run "
        "to run, since the models train from scratch for a few hundred steps):",
        "",
        f"- model-1: mask AP50 {model1['segm_AP50']:.3f} (mask AP {model1['segm_AP']:.3f}) on its "
        f"{model1['images']} val images, after {model1['epochs']} epochs;",
        f"- auto-labels: {auto['labelled']} of {auto['images_seen']} custom photos labelled"
        + (f", mean mask IoU {auto['mean_iou']:.3f} with the hidden truth, {wrong} on the wrong garment;"
           if "mean_iou" in auto else ";"),
        f"- on the {compare['images']} held-out custom photos, finding the named garment: mask AP50 "
        f"{compare['model1_segm_AP50']:.3f} for model-1, {compare['model2_segm_AP50']:.3f} for model-2 "
        f"({compare['model2_season_segm_AP50']:.3f} when the season must be right too); model-2's season "
        f"right for {compare['season_accuracy']:.0%} of them.",
    ]
    return "\n".join(textwrap.fill(line, 110, subsequent_indent="  " if line.startswith("- ") else "")
                     for line in lines)


def readme_block(readme_text):
    """The text between the README's markers (a DataError when they are missing)."""
    if START not in readme_text or END not in readme_text:
        raise DataError(f"{README}: the smoke-figures markers are missing")
    return readme_text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def update_readme(metrics_file, readme=None, snapshot=None):
    """Copy `metrics_file` to `snapshot` and rewrite `readme`'s paragraph from it; return the paragraph.

    readme, snapshot: default the repository's README.md and docs/smoke_run_metrics.json.
    """
    readme, snapshot = readme or README, snapshot or SNAPSHOT
    metrics = read_json(metrics_file, "metrics file")
    if not isinstance(metrics, dict):
        raise DataError(f"{metrics_file}: not a course metrics file (a JSON object of sections)")
    missing = [s for s in ("model1", "autolabel", "compare") if s not in metrics]
    if missing:
        raise DataError(f"{metrics_file}: no {', '.join(missing)} section (run the whole course: make demo)")
    try:
        paragraph = smoke_paragraph(metrics)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise DataError(f"{metrics_file}: not a course metrics file ({type(err).__name__}: {err})") from None
    text = Path(readme).read_text(encoding="utf-8")
    old = readme_block(text)
    text = text.replace(f"{START}\n{old}\n{END}", f"{START}\n{paragraph}\n{END}")
    write_files_atomic({snapshot: dumps(metrics, indent=2), readme: text.encode("utf-8")})   # both or neither
    return paragraph


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", help="a run's metrics.json, e.g. runs/demo/metrics.json")
    args = parser.parse_args(argv)
    try:
        print(update_readme(args.metrics))
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    remove_temp_files_on_signals()     # Ctrl-C while writing leaves no hidden temp file behind
    sys.exit(main())
