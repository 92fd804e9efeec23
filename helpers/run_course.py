"""Run the numbered notebooks top to bottom with papermill: `python -m helpers.run_course`.

This is what `make demo` calls. Executed notebooks land in the output folder (default
runs/demo/), one per input, so a learner can open them and see every output.

The colab profile rehearsed on this machine, the synthetic sample standing in for ModaNet and
short time budgets::

    MODANET_DATA_SOURCE=sample python -m helpers.run_course --profile colab --out runs/colab-rehearsal \
        -p TRAIN_MINUTES 2 --model2-minutes 1
"""
import argparse
import ast
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from helpers.paths import PROJECT_ROOT
from helpers.profiles import FORM_SHOWS, FORMS, get_profile, resolve_profile_name
from helpers.io import describe_os_error, remove_temp_files_on_signals, write_json_atomic
from helpers.report import read_metrics

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def course_notebooks(folder=NOTEBOOKS_DIR):
    """The course notebooks in order: files named NN_*.ipynb."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def run_course(out_dir="runs/demo", profile="smoke", only=None, parameters=None, notebook_parameters=None):
    """Execute every course notebook (or those whose number is in `only`) into `out_dir`.

    Each notebook gets its form's knobs with the values of the running profile (`form_parameters`),
    so its injected-parameters cell shows the values really used; then `parameters`, which go to
    every notebook that has them in its parameters cell (papermill adds the rest harmlessly);
    then `notebook_parameters`, mapping a notebook number ("06") to parameters for it alone.
    Later ones win. Returns a list of (notebook name, seconds). Stops at the first notebook that
    fails and says which one and where its partly executed copy is.
    """
    import papermill

    out_dir = Path(out_dir)
    if not out_dir.is_absolute():
        out_dir = PROJECT_ROOT / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    running = get_profile(profile)
    if not only:            # a whole run: figures of an earlier run must not pass for this one's
        retire_previous_outputs(running.paths)
    params = {"PROFILE": profile, **(parameters or {})}
    timings = []
    _quiet_about_form_shows()
    for nb in course_notebooks():
        if only and nb.name[:2] not in only:
            continue
        target = out_dir / nb.name
        print(f"== {nb.name} -> {target.relative_to(PROJECT_ROOT) if target.is_relative_to(PROJECT_ROOT) else target}", flush=True)
        start = time.perf_counter()
        try:
            has = set(parameter_names(nb))
            these = {**form_parameters(nb, running), **{k: v for k, v in params.items() if k in has or k not in DEFAULTS},
                     **(notebook_parameters or {}).get(nb.name[:2], {})}
            papermill.execute_notebook(str(nb), str(target), parameters=these, cwd=str(NOTEBOOKS_DIR),
                                       kernel_name="python3", progress_bar=False)
        except papermill.PapermillExecutionError as err:
            raise SystemExit(f"{nb.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                             f"Open {target} to see the cell and its output.") from None
        timings.append((nb.name, time.perf_counter() - start))
    return timings


DEFAULTS = ("PROFILE",)   # passed to the notebooks that have it; a -p name reaches all (papermill warns where unknown)


class _FormShowsFilter:
    """Drops papermill's "Passed unknown parameter: FORM_SHOWS": no parameters cell has it, on purpose."""

    def filter(self, record):
        return record.getMessage() != f"Passed unknown parameter: {FORM_SHOWS}"


def _quiet_about_form_shows():
    logger = logging.getLogger("papermill")
    if not any(isinstance(f, _FormShowsFilter) for f in logger.filters):
        logger.addFilter(_FormShowsFilter())


def parameter_names(notebook):
    """The names the parameters cell (tag `parameters`) of `notebook` (a path) assigns."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    names = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "".join(cell.get("source", []))
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign):
                    names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def form_parameters(notebook, profile):
    """The knobs of `notebook`'s form (helpers.profiles.FORMS) with `profile`'s values, for papermill.

    Only the names its parameters cell has; with them FORM_SHOWS names the profile, so that the
    notebook takes every injected value as meant (a value equal to what the committed form shows
    is otherwise read as "the running profile's").
    """
    knobs = FORMS.get(Path(notebook).name[:2])
    if not knobs:
        return {}
    names = set(parameter_names(notebook))
    values = {name: value for name, value in profile.form_values(Path(notebook).name[:2]).items() if name in names}
    return {**values, FORM_SHOWS: profile.name} if values else {}


def retire_previous_outputs(paths):
    """Move an earlier run's metrics.json and figures aside (metrics.previous.json, figures.previous/).

    Each notebook adds its own section to the metrics file, so a section that this run does not
    write (say model-2 against the truth, when the truth is absent) would otherwise be reported
    from the earlier run. Nothing is deleted: the previous run's files are kept one level back.
    """
    metrics = Path(paths.metrics)
    if metrics.is_file():
        metrics.replace(metrics.with_name("metrics.previous.json"))
    figures = Path(paths.figures)
    if figures.is_dir() and any(figures.iterdir()):
        previous = figures.with_name("figures.previous")
        if previous.exists():
            shutil.rmtree(previous)
        figures.rename(previous)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo", help="folder for the executed notebooks")
    parser.add_argument("--profile", default="smoke", choices=["smoke", "colab", "full", "auto"])
    parser.add_argument("--only", nargs="*", help="notebook numbers to run, e.g. 01 02")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter for every notebook, e.g. -p TRAIN_MINUTES 2 (a number or text)")
    parser.add_argument("--model2-minutes", type=float, default=None,
                        help="TRAIN_MINUTES for 06 alone (model-2's budget), when -p TRAIN_MINUTES sets model-1's")
    args = parser.parse_args(argv)
    parameters = {name: _parameter_value(value) for name, value in args.parameter}
    per_notebook = {"06": {"TRAIN_MINUTES": args.model2_minutes}} if args.model2_minutes is not None else None
    total = time.perf_counter()
    try:
        timings = run_course(args.out, args.profile, args.only, parameters, per_notebook)
        wall = time.perf_counter() - total
        print("\nExecuted notebooks:")
        for name, seconds in timings:
            print(f"  {name:34} {seconds:7.1f} s")
        metrics = collect_outputs(args.out, args.profile, timings, wall)
    except OSError as err:     # --out not writable or a file, disk full
        print(f"error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    print(headline(metrics))
    print(f"Wall time {wall:.1f} s; notebooks, figures/ and metrics.json are in {args.out}/")
    return 0


def _parameter_value(text):
    """'2' -> 2, '0.5' -> 0.5, 'True' -> True, 'None' -> None, anything else stays text."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def collect_outputs(out_dir, profile, timings, wall_seconds):
    """Copy the figures and the metrics JSON the notebooks wrote into `out_dir`; return the metrics."""
    paths = get_profile(profile).paths
    out_dir = Path(out_dir) if Path(out_dir).is_absolute() else PROJECT_ROOT / out_dir
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for stale in figures.glob("*.png"):         # the out folder shows this run's figures only
        stale.unlink()
    for png in sorted(Path(paths.figures).glob("*.png")) if Path(paths.figures).is_dir() else []:
        shutil.copy2(png, figures / png.name)
    metrics = read_metrics(paths)
    metrics["run"] = {"profile": resolve_profile_name(profile), "wall_seconds": round(wall_seconds, 1),
                      "notebook_seconds": {name: round(s, 1) for name, s in timings}}
    write_json_atomic(out_dir / "metrics.json", metrics, indent=1)
    return metrics


HEADLINES = [
    ("model1", "segm_AP50", "model-1 mask AP50 (val)"),
    ("model1", "segm_AP", "model-1 mask AP (val)"),
    ("autolabel", "share_labelled", "auto-labelled share of custom images"),
    ("autolabel", "mean_iou", "auto-label mask IoU vs truth"),
    ("autolabel", "share_wrong_garment", "auto-labels on the wrong garment"),
    ("model2", "segm_AP50", "model-2 mask AP50 (held-out auto-labels)"),
    ("compare", "season_accuracy", "model-2 season accuracy (file-name truth)"),
]


def headline(metrics):
    """The figures worth a glance, as lines of text (missing ones are left out)."""
    lines = ["\nHeadline figures:"]
    for section, key, label in HEADLINES:
        value = metrics.get(section, {}).get(key)
        if isinstance(value, (int, float)):
            lines.append(f"  {label:45} {value:.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    remove_temp_files_on_signals()     # SIGTERM / Ctrl-C leave no hidden temp file behind
    sys.exit(main())
