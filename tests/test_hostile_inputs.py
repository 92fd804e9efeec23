"""Hostile and careless inputs (issue 31, item 4): every kind through every entry point it reaches.

The kinds, their inputs and the judging live in tests/hostile_driver.py (`python tests/hostile_driver.py
KIND ENTRY WORKDIR` runs one case by hand and prints its verdict). Every case runs in a process of its
own under a 2 GB address-space cap (RLIMIT_AS) and a timeout, so that what kills a process (pycocotools
asking for 22 GB, a segfault under the cap) fails one case, not the session:
- a CLI case (`python -m helpers.convert coco-to-via / via-to-coco`, `helpers.split`, `helpers.repair`,
  `helpers.custom from-modanet`) is a real `python -m` process, capped by setrlimit before exec;
- a library case (`helpers.io.read_json`, `helpers.via.read_via`, `CocoDataset` / `ViaDataset`: load,
  prepare, load_image and load_mask of every image; `coco_to_via` / `via_to_coco` / `split_coco` given
  dicts, as NaN and inf do not survive JSON; `mrcnn.utils.read_image_rgb`;
  `helpers.autolabel.autolabel_folder` with a stub model, i.e. its reading path;
  `helpers.training.check_weight_file`) is a forked child of a server that imported them once, capped
  by setrlimit before the case runs. None of them imports TensorFlow.
A case passes when it ends in a clear one-line error naming the file or the problem, or a counted skip
(as each kind allows): exit code 0 or 2, no traceback, no stray temp file, outputs absent or complete
JSON, inputs and an earlier run's outputs intact, nothing read from outside the images folder.
Two cases run at a time, started in the background when the session begins (~80 s on 2 idle cores).
"""
import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import hostile_driver

DRIVER = Path(hostile_driver.__file__).resolve()
MEMORY_CAP = 2 * 1024 ** 3     # every entry point imports numpy, Pillow and pycocotools, none TensorFlow
TIMEOUT = 120
WORKERS = 2          # the cases run two at a time (make test's machine has 2 cores)

CASES = hostile_driver.cases()


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
    # sample, download and run_course read no user data file: they build, fetch or run notebooks;
    # readme_figures reads a course run's own metrics.json (its bad inputs: tests/test_readme_figures.py)
    for module in with_main - {"sample", "download", "run_course", "readme_figures"}:
        assert clis.get(module, set()) <= entries and module in clis, f"CLI helpers.{module} not fed"


class _ForkServer:
    """`python tests/hostile_driver.py --serve CAP`: runs each library case in a forked child under the
    memory cap (the entry points imported once, not once per case)."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(DRIVER), "--serve", str(MEMORY_CAP)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, TQDM_DISABLE="1"))

    def run(self, kind, entry, workdir):
        self.proc.stdin.write(json.dumps([kind, entry, str(workdir), TIMEOUT]) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        returncode, verdict = answer["returncode"], answer["verdict"]
        if returncode is not None and returncode < 0:
            verdict = (f"killed by {signal.Signals(-returncode).name} (exit {returncode}; memory cap "
                       f"{MEMORY_CAP >> 30} GB)")
        return returncode == 0 and verdict.startswith("PASS"), verdict, answer["stderr"].strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _run_case(servers, kind, entry, workdir):
    """(passed, verdict line, stderr when useful). A CLI case is built and judged here, the CLI running
    as a child process under the cap; a library case runs in a fork server's child under the cap."""
    if entry in hostile_driver.CLI_ENTRIES:
        passed, verdict = hostile_driver.judge(kind, entry, workdir, cap=MEMORY_CAP)
        return passed, verdict, ""
    server = servers.get()
    try:
        return server.run(kind, entry, workdir)
    finally:
        servers.put(server)


@pytest.fixture(scope="session")
def case_results(request, tmp_path_factory):
    """The selected cases started two at a time in the background as the session begins; each test
    then waits for its own."""
    selected = [item.callspec.params for item in request.session.items
                if getattr(item, "originalname", None) == "test_hostile_input" and hasattr(item, "callspec")]
    root = tmp_path_factory.mktemp("hostile")
    servers = queue.Queue()
    for _ in range(WORKERS if any(p["entry"] not in hostile_driver.CLI_ENTRIES for p in selected) else 0):
        servers.put(_ForkServer())
    pool = ThreadPoolExecutor(max_workers=WORKERS)

    def finish():
        pool.shutdown(wait=True, cancel_futures=True)
        while not servers.empty():
            servers.get().close()
    request.addfinalizer(finish)
    futures = {}
    for n, params in enumerate(selected):
        key = (params["kind"], params["entry"])
        if key not in futures and not _missing_module(key[1]):
            futures[key] = pool.submit(_run_case, servers, *key, root / f"{n:03d}")
    return futures


@pytest.mark.parametrize("kind, entry", CASES, ids=[f"{k}:{e}" for k, e in CASES])
def test_hostile_input(kind, entry, case_results):
    reason = _missing_module(entry)
    if reason:
        pytest.skip(reason)
    passed, verdict, err = case_results[(kind, entry)].result()
    assert passed, f"{kind} -> {entry}: {verdict or 'no verdict'}" + (f"\n{err}" if err else "")
