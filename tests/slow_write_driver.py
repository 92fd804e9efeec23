"""Run `python -m MODULE ARGS...` as a script, with an fsync that announces itself and then waits.

`python tests/slow_write_driver.py helpers.convert coco-to-via IN OUT` prints READY on stdout
once the first temp file is written and being synced, then sleeps: a test can then send a
signal to a process that is in the middle of writing, without depending on timing.
"""
import os
import runpy
import signal
import sys
import time
from pathlib import Path

# A background job of a non-interactive shell (CI's, nohup's) starts with SIGINT ignored, and the
# command lines rightly leave an ignored signal alone: start as a terminal's command would.
signal.signal(signal.SIGINT, signal.SIG_DFL)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
_real_fsync = os.fsync


def _announcing_fsync(fd):
    _real_fsync(fd)
    print("READY", flush=True)
    time.sleep(120)     # killed long before: the test signals as soon as it reads READY


os.fsync = _announcing_fsync
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
