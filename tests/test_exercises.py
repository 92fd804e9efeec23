"""Every notebook ends with 3-5 exercises that change only its parameters cell and say what to observe.

The exercises are a numbered list under "## Exercises". Each names the parameters it changes as
code, `NAME = value`, and says what to look for after "**Observe:**". A dry run checks that each one
is runnable as written: the parameters cell is executed, the exercise's values laid over it, then
the cell after it (which reads the form, e.g. `profile.with_form`) runs, and for the training
notebooks the Config is built from the resulting profile. A bad name, a value the form refuses, or
a Config that does not validate fails here, not in a learner's session.
"""
import ast
import contextlib
import io
import json
import os
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ASSIGNMENT = re.compile(r"`([A-Z][A-Z0-9_]*) = ([^`]+)`")
ITEM = re.compile(r"^\d+\. ", re.M)


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def source(cell):
    return "".join(cell["source"])


def exercises(path):
    """The exercise texts of a notebook (the numbered items under '## Exercises')."""
    found = [source(c) for c in cells(path) if c["cell_type"] == "markdown" and source(c).startswith("## Exercises")]
    assert len(found) == 1, f"{path.name}: needs one '## Exercises' cell"
    return [item.strip() for item in ITEM.split(found[0])[1:]]


def parameters_and_setup(path):
    code = [c for c in cells(path) if c["cell_type"] == "code"]
    index = next(i for i, c in enumerate(code) if "parameters" in c.get("metadata", {}).get("tags", []))
    return source(code[index]), source(code[index + 1])


# cells cheap enough to run too, because they are where a notebook's own knobs are checked
CHECK_CELLS = {"00": "from mrcnn.config import Config"}


def dry_run(path, values):
    """Run the parameters cell, lay `values` over it, run the cell after it; return its namespace."""
    params, setup = parameters_and_setup(path)
    check = CHECK_CELLS.get(path.name[:2])
    if check:
        setup += "\n" + next(source(c) for c in cells(path) if source(c).startswith(check))
    namespace = {}
    exec(compile(params, f"{path.name}:parameters", "exec"), namespace)
    unknown = set(values) - set(namespace)
    assert not unknown, f"{path.name}: the parameters cell has no {sorted(unknown)}"
    namespace.update(values)
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(setup, f"{path.name}:setup", "exec"), namespace)
    finally:
        os.chdir(cwd)
    return namespace


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_three_to_five_exercises_each_changing_parameters_and_saying_what_to_observe(path):
    items = exercises(path)
    assert 3 <= len(items) <= 5, f"{path.name}: {len(items)} exercises"
    for item in items:
        assert ASSIGNMENT.search(item), f"{path.name}: no `NAME = value` in: {item[:80]}"
        assert "**Observe:**" in item, f"{path.name}: does not say what to observe: {item[:80]}"


CASES = [(path, i, item) for path in NOTEBOOKS for i, item in enumerate(exercises(path), 1)]


@pytest.mark.parametrize("profile_name", ["smoke", "colab"])
@pytest.mark.parametrize("path, number, item", CASES, ids=[f"{p.name[:2]}-{i}" for p, i, _ in CASES])
def test_each_exercise_is_runnable_by_changing_only_the_parameters_cell(path, number, item, profile_name,
                                                                        monkeypatch, tmp_path):
    monkeypatch.setenv("MODANET_PROFILE", profile_name)
    monkeypatch.setenv("MODANET_DATA", str(tmp_path))
    values = {}
    for name, value in ASSIGNMENT.findall(item):
        values[name] = ast.literal_eval(value)
    shown = {}
    exec(parameters_and_setup(path)[0], shown)
    for name, value in values.items():   # a value equal to the form's means "the profile's": a no-op elsewhere
        assert name not in shown or shown[name] != value, f"{path.name}: `{name} = {value!r}` is what the form shows"
    namespace = dry_run(path, values)
    profile = namespace.get("profile")
    if path.name[:2] in ("04", "06") and profile is not None:
        from helpers.training import make_config

        make_config(profile, "exercise", ["BG", "top", "skirt"]).validate()


def test_the_dry_run_catches_an_unknown_name_and_a_refused_value(monkeypatch, tmp_path):
    from helpers.profiles import KnobError

    monkeypatch.setenv("MODANET_PROFILE", "smoke")
    monkeypatch.setenv("MODANET_DATA", str(tmp_path))
    train = next(p for p in NOTEBOOKS if p.name.startswith("04"))
    with pytest.raises(AssertionError, match="has no"):
        dry_run(train, {"EPOCHZ": 3})
    with pytest.raises(KnobError):
        dry_run(train, {"IMAGE_SIZE": 500})
    quickstart = next(p for p in NOTEBOOKS if p.name.startswith("00"))
    with pytest.raises(ValueError):
        dry_run(quickstart, {"IMAGE_SIZE": 100})   # Config: a multiple of 64
