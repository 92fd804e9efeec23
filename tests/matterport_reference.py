"""Matterport's original Mask R-CNN beside ours, as a test oracle (tests only).

`install()` puts Matterport's package (PyPI `mrcnn==0.2`) and `tf-keras` of the installed
TensorFlow's release line into a cache folder with `pip install --no-deps --target`; it is never
installed into the environment, where it would shadow our `mrcnn`. `run()` runs a job in a
subprocess (tests/matterport_worker.py), which loads Matterport's package under another name with
its load-time fixes, and returns the arrays it wrote. Nothing of Matterport's is in this repository.

The cache is `.cache/matterport/` in the repository (or $MATTERPORT_REFERENCE_CACHE). When the
package index cannot be reached, `install()` raises ReferenceUnavailable with pip's reason and the
tests that need the oracle skip with it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("matterport_worker.py")
MATTERPORT = "mrcnn==0.2"
INSTALL_SECONDS = 600


class ReferenceUnavailable(RuntimeError):
    """Matterport's reference cannot be installed or run here (the message says why)."""


def tensorflow_version():
    for name in ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    import tensorflow as tf
    return tf.__version__


def tf_keras_requirement():
    """tf-keras of TensorFlow's release line: tf-keras 2.21.x goes with TensorFlow 2.21."""
    major, minor = tensorflow_version().split(".")[:2]
    return f"tf-keras~={major}.{minor}.0"


def cache_root():
    return Path(os.environ.get("MATTERPORT_REFERENCE_CACHE", REPO / ".cache" / "matterport"))


def install(cache=None):
    """The folder holding Matterport's `mrcnn` and `tf_keras`, installed there on first use.

    Installed into a temporary folder beside it and renamed when complete, so an interrupted
    install is never taken for a finished one.
    """
    requirement = tf_keras_requirement()
    root = Path(cache) if cache else cache_root()
    site = root / f"{MATTERPORT.replace('==', '-')}_{requirement.split('~=')[1]}"
    if (site / "mrcnn" / "model.py").is_file() and (site / "tf_keras").is_dir():
        return site
    root.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".installing-", dir=root))
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--no-deps", "--no-compile", "--target", str(partial), MATTERPORT, requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_SECONDS)
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        raise ReferenceUnavailable(f"pip install {MATTERPORT} {requirement}: no answer in {INSTALL_SECONDS} s")
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise ReferenceUnavailable(f"pip install {MATTERPORT} {requirement} failed: "
                                   f"{lines[-1] if lines else 'exit ' + str(done.returncode)}")
    try:
        partial.rename(site)
    except OSError:                      # another process finished first
        shutil.rmtree(partial, ignore_errors=True)
    return site


def source_dir(cache=None):
    """Matterport's installed `mrcnn` source folder (model.py, utils.py, visualize.py, ...)."""
    return install(cache) / "mrcnn"


def run(job, workdir, images=None, timeout=900, env=None):
    """Run `job` (see matterport_worker.run_job) with Matterport's model; returns its arrays (dict).

    images: a list of (H, W, 3) uint8 arrays, handed over in an .npz file. The subprocess gets a
    clean environment for TensorFlow's logging, plus `env` (a dict) where given; its stderr's last
    lines come with any failure.
    """
    site = install()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    job = dict(job)
    if images is not None:
        np.savez(workdir / "reference_images.npz", **{f"image_{i}": image for i, image in enumerate(images)})
        job["images"] = str(workdir / "reference_images.npz")
    job["out"] = str(workdir / "reference_out.npz")
    (workdir / "reference_job.json").write_text(json.dumps(job))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore", **(env or {}))
    done = subprocess.run([sys.executable, str(WORKER), str(site), str(workdir / "reference_job.json")],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"Matterport's reference failed (exit {done.returncode}):\n{tail}")
    with np.load(job["out"]) as data:
        return {key: data[key] for key in data.files}
