"""The course notebooks follow the house form; nbval (`pytest --nbval-lax notebooks`) runs them.

These checks read the notebooks as JSON: names, the Colab install cell, the parameters cell,
prose before code, and no long logic in cells.
"""
import ast
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_course_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_name_is_number_verb_object(notebook):
    path, _ = notebook
    assert re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb", path.name), path.name


def test_first_code_cell_installs_on_colab_only(notebook):
    _, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "google.colab" in code[0].source and "pip install" in code[0].source


def test_second_code_cell_is_the_tagged_parameters_cell(notebook):
    path, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = code[1]
    assert "parameters" in params.metadata.get("tags", [])
    assert ("PROFILE" in params.source) != path.name.startswith("00_")   # 00 uses no profile
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for line in params.source.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert re.match(r"[A-Z_]+ = .+# @param", line), f"not a Colab form: {line}"


def test_starts_with_markdown_and_explains_before_code(notebook):
    path, nb = notebook
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code_after_params = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"][3:]
    # every later code cell follows a markdown cell within two cells
    for i in code_after_params:
        window = nb.cells[max(0, i - 2):i]
        assert any(c.cell_type == "markdown" for c in window), f"{path.name} cell {i} has no prose before it"


def test_cells_hold_no_long_logic(notebook):
    path, nb = notebook
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or i < 3:
            continue
        source = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith(("!", "%")))
        tree = ast.parse(source)
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert not defs, f"{path.name} cell {i} defines {defs[0].name}: that belongs in helpers"
        assert len(cell.source.splitlines()) <= 12, f"{path.name} cell {i} is long"


def test_notebooks_are_saved_without_outputs(notebook):
    path, nb = notebook
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: clear outputs"
