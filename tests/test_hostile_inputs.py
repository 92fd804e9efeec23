"""Hostile and careless inputs (issue 31, item 4): every kind through every entry point it reaches.

Each case is one run of tests/hostile_driver.py (KIND ENTRY WORKDIR) in its own process, under a
memory cap (RLIMIT_AS, inherited by the CLI the driver starts) and a timeout, so that what kills a
process (pycocotools asking for 22 GB, a segfault under the cap, a decompression bomb) fails one
case instead of the session. The driver builds the inputs, runs the entry point and judges: a
clear one-line error naming the file or the problem, or a counted skip; exit code 0 or 2; no
traceback; no stray temp file; outputs absent or complete JSON; inputs and earlier outputs intact;
nothing read from outside the images folder. The last line it prints is the verdict shown here.

Entry points: the CLIs `python -m helpers.convert coco-to-via / via-to-coco`, `helpers.split`,
`helpers.repair`, `helpers.custom from-modanet`; the loaders `helpers.io.read_json`,
`helpers.via.read_via`, `CocoDataset` / `ViaDataset` (load, prepare, load_image and load_mask of
every image), `coco_to_via` / `via_to_coco` / `split_coco` given dicts (NaN and inf do not survive
JSON), `mrcnn.utils.read_image_rgb`, `helpers.autolabel.autolabel_folder` (with a stub model: its
reading path is what is tested) and `helpers.training.check_weight_file`. None imports TensorFlow.
"""
import importlib.util
import os
import resource
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import hostile_driver

DRIVER = Path(hostile_driver.__file__).resolve()
MEMORY_CAP = 2 * 1024 ** 3     # every entry point here imports numpy, Pillow and pycocotools, no TensorFlow
TIMEOUT = 120
WORKERS = 2          # the cases run two at a time (make test's machine has 2 cores)

CASES = hostile_driver.cases()


def _cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _missing_module(entry):
    """Why an entry point cannot run yet (its module is not written), or None."""
    if entry == "repair" and importlib.util.find_spec("helpers.repair") is None:
        return "helpers.repair does not exist yet (issue 31, item 1): python -m helpers.repair IN OUT"
    return None


def test_at_least_40_kinds_and_every_cli():
    kinds = {kind for kind, _ in CASES} - {"valid_input"}
    assert len(kinds) >= 40, sorted(kinds)
    entries = {entry for _, entry in CASES}
    clis = {"convert": {"coco-to-via", "via-to-coco"}, "split": {"split"}, "repair": {"repair"},
            "custom": {"custom"}}
    helpers_dir = Path(__file__).resolve().parents[1] / "helpers"
    with_main = {p.stem for p in helpers_dir.glob("*.py") if "\ndef main(" in p.read_text()}
    # sample, download and run_course read no user data file: they build, fetch or run notebooks
    for module in with_main - {"sample", "download", "run_course"}:
        assert clis.get(module, set()) <= entries and module in clis, f"CLI helpers.{module} not fed"


def _run_case(kind, entry, workdir):
    """(driver's exit code, its verdict line, the tail of its stderr)."""
    proc = subprocess.Popen([sys.executable, str(DRIVER), kind, entry, str(workdir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_cap_memory,
                            start_new_session=True, env=dict(os.environ, TQDM_DISABLE="1"))
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)      # the driver and the CLI it started
        proc.communicate()
        return None, f"no verdict within {TIMEOUT} s", ""
    out, err = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    verdict = out.strip().splitlines()[-1] if out.strip() else ""
    return proc.returncode, verdict, err.strip()[-1500:]


@pytest.fixture(scope="session")
def case_results(request, tmp_path_factory):
    """The selected cases started two at a time in the background as the session begins (each case is
    a process of its own, mostly waiting on imports); each test then waits for its own."""
    selected = [item.callspec.params for item in request.session.items
                if getattr(item, "originalname", None) == "test_hostile_input" and hasattr(item, "callspec")]
    root = tmp_path_factory.mktemp("hostile")
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    request.addfinalizer(lambda: pool.shutdown(wait=True, cancel_futures=True))
    futures = {}
    for n, params in enumerate(selected):
        key = (params["kind"], params["entry"])
        if key not in futures and not _missing_module(key[1]):
            futures[key] = pool.submit(_run_case, *key, root / f"{n:03d}")
    return futures


@pytest.mark.parametrize("kind, entry", CASES, ids=[f"{k}:{e}" for k, e in CASES])
def test_hostile_input(kind, entry, case_results):
    reason = _missing_module(entry)
    if reason:
        pytest.skip(reason)
    returncode, verdict, err = case_results[(kind, entry)].result()
    if returncode is not None and returncode < 0:
        pytest.fail(f"{kind} -> {entry}: the process was killed by {signal.Signals(-returncode).name} "
                    f"(memory cap {MEMORY_CAP >> 30} GB); stderr: {err[-300:]}")
    assert returncode == 0 and verdict.startswith("PASS"), (
        f"{kind} -> {entry}: {verdict or 'no verdict'}" + (f"\n{err}" if not verdict.startswith("FAIL") else ""))
