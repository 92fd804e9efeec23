"""What the notebooks print: no TensorFlow C++ log lines.

TensorFlow's C++ side logs to stderr as it loads (absl's "All log messages before
absl::InitializeLog() ...", cpu_feature_guard, oneDNN, and on GPU machines the E-level
"Unable to register cuDNN factory" lines) and a notebook shows that stderr in its outputs.
TF_CPP_MIN_LOG_LEVEL quiets it only when set before TensorFlow loads, and "2" still lets
the E-level lines through, so cell 1, the first cell every notebook runs on every machine,
sets "3" before anything imports TensorFlow. An executed run in runs/demo/ (`make demo`),
when there is one, must then hold no such line.
"""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
DEMO = ROOT / "runs" / "demo"
LOADS_TENSORFLOW = ("tensorflow", "keras", "mrcnn", "helpers")   # helpers and mrcnn import it

# A C++ log line: absl's preamble, glog/absl "I0000 00:00:1796... 123 file.cc:45]" lines, and the
# older "2024-09-15 09:10:24.48: E tensorflow/..." form.
CPP_LOG = re.compile(r"absl::InitializeLog|^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]"
                     r"|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] (tensorflow|external)/", re.M)


def first_code_cell(path):
    cells = json.loads(path.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def log_level_statement(tree):
    """(index in the module body, value) of the top-level statement setting TF_CPP_MIN_LOG_LEVEL."""
    for index, node in enumerate(tree.body):
        text = ast.unparse(node)
        if "TF_CPP_MIN_LOG_LEVEL" not in text:
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            return index, node.value.value                           # os.environ["..."] = "3"
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and len(node.value.args) == 2:
            return index, getattr(node.value.args[1], "value", None)  # os.environ.setdefault("...", "3")
    return None, None


def imports_in(node):
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            yield from (alias.name for alias in sub.names)
        elif isinstance(sub, ast.ImportFrom) and sub.module:
            yield sub.module


def test_the_log_pattern_knows_the_lines_tensorflow_prints():
    seen = [  # as TensorFlow 2.20 / 2.21 print them (the last two on a GPU machine)
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796332382.737475   24168 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
        "W0000 00:00:1796333023.156716   28505 op_level_cost_estimator.cc:699] Error in PredictCost()",
        "2024-09-15 09:10:24.482241: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:485] Unable",
        "E0000 00:00:1740414484.530120    8769 cuda_dnn.cc:8310] Unable to register cuDNN factory"]
    for line in seen:
        assert CPP_LOG.search("output before\n" + line + "\nafter"), line
    for line in ["epoch 1/8 (50/50 steps), loss 3.194", "I0000 is not a log line", "W 2024-09-15"]:
        assert not CPP_LOG.search(line), line


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_cell_one_quiets_tensorflow_before_anything_loads_it(path):
    tree = ast.parse(first_code_cell(path))
    index, value = log_level_statement(tree)
    assert index is not None, f"{path.name}: cell 1 does not set TF_CPP_MIN_LOG_LEVEL at its top level"
    assert value == "3", f"{path.name}: TF_CPP_MIN_LOG_LEVEL is {value!r}; 3 also hides the E-level CUDA lines"
    for node in tree.body[:index]:
        loaded = [name for name in imports_in(node) if name.split(".")[0] in LOADS_TENSORFLOW]
        assert not loaded, f"{path.name}: cell 1 imports {loaded} before it sets TF_CPP_MIN_LOG_LEVEL"


def executed_outputs():
    for path in sorted(DEMO.glob("[0-9][0-9]_*.ipynb")):
        for number, cell in enumerate(json.loads(path.read_text())["cells"]):
            for output in cell.get("outputs", []):
                text = "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                yield path.name, number, text


@pytest.mark.skipif(not any(DEMO.glob("[0-9][0-9]_*.ipynb")), reason="no executed run in runs/demo (make demo)")
def test_an_executed_run_prints_no_cpp_log_lines():
    found = [(name, number, CPP_LOG.search(text).group(0)) for name, number, text in executed_outputs()
             if CPP_LOG.search(text)]
    assert not found, f"C++ log lines in the outputs (notebook, cell, line): {found[:5]}"
