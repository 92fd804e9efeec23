"""Run the numbered notebooks top to bottom with papermill: `python -m helpers.run_course`.

This is what `make demo` calls. Executed notebooks land in the output folder (default
runs/demo/), one per input, so a learner can open them and see every output.
"""
import argparse
import sys
import time
from pathlib import Path

from helpers.paths import PROJECT_ROOT

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def course_notebooks(folder=NOTEBOOKS_DIR):
    """The course notebooks in order: files named NN_*.ipynb."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def run_course(out_dir="runs/demo", profile="smoke", only=None, parameters=None):
    """Execute every course notebook (or those whose number is in `only`) into `out_dir`.

    Returns a list of (notebook name, seconds). Stops at the first notebook that fails and
    says which one and where its partly executed copy is.
    """
    import papermill

    out_dir = Path(out_dir)
    if not out_dir.is_absolute():
        out_dir = PROJECT_ROOT / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"PROFILE": profile, **(parameters or {})}
    timings = []
    for nb in course_notebooks():
        if only and nb.name[:2] not in only:
            continue
        target = out_dir / nb.name
        print(f"== {nb.name} -> {target.relative_to(PROJECT_ROOT) if target.is_relative_to(PROJECT_ROOT) else target}", flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(nb), str(target), parameters=params, cwd=str(NOTEBOOKS_DIR),
                                       kernel_name="python3", progress_bar=False)
        except papermill.PapermillExecutionError as err:
            raise SystemExit(f"{nb.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
                             f"Open {target} to see the cell and its output.") from None
        timings.append((nb.name, time.perf_counter() - start))
    return timings


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/demo", help="folder for the executed notebooks")
    parser.add_argument("--profile", default="smoke", choices=["smoke", "full", "auto"])
    parser.add_argument("--only", nargs="*", help="notebook numbers to run, e.g. 01 02")
    args = parser.parse_args(argv)
    total = time.perf_counter()
    timings = run_course(args.out, args.profile, args.only)
    print("\nExecuted notebooks:")
    for name, seconds in timings:
        print(f"  {name:34} {seconds:7.1f} s")
    print(f"Wall time {time.perf_counter() - total:.1f} s; open them in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
