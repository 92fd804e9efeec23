"""One place for what every notebook sets first: seeds and plot defaults."""
import os
import random

import numpy as np


def setup_notebook(seed=42, seed_tensorflow=False):
    """Seed Python and numpy (and TensorFlow when it is already imported); set plot defaults.

    seed_tensorflow=True imports Keras and seeds it too (notebooks that train), so that random
    initial weights, and with them the results, repeat from run to run.
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    # Cell 1 of every notebook already set this before anything loaded TensorFlow; here it only
    # helps a script that skips cell 1, and only if TensorFlow is not loaded yet (it reads it once).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import sys
    if seed_tensorflow:
        import keras
        keras.utils.set_random_seed(seed)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(seed)
    import matplotlib.pyplot as plt
    plt.rcParams.update({
        "figure.figsize": (10, 6),
        "figure.dpi": 90,
        "axes.grid": False,
        "axes.titlesize": 10,
        "image.interpolation": "nearest",
    })


class CourseStop(Exception):
    """Stop a notebook with guidance for the learner, shown as that text alone.

    A learner's missing step (no photos yet, a notebook not run) is not a bug: IPython shows an
    exception's `_render_traceback_()` lines in place of the traceback, so the learner reads only
    what to do. Outside IPython it is an ordinary exception with that message.
    """

    def _render_traceback_(self):
        return str(self).splitlines() or [type(self).__name__]
