"""The Colab side of the notebooks, without Colab or a network: the install cell and USE_DRIVE.

The install cell is plain Python, so it is run here as written, with a fake `google.colab`
module and a fake `subprocess.run` standing in for git and pip; Drive is a fake
`google.colab.drive` whose mount point is a temporary folder.
"""
import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
import types
from dataclasses import replace
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from helpers.paths import Paths, course_paths
from helpers.profiles import get_profile
from helpers.sample import build_sample
from helpers.training import run_folder

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[0-9]_*.ipynb"))
COURSE_NOTEBOOKS = [p for p in NOTEBOOKS if not p.name.startswith("00")]   # 00 keeps nothing: no Drive
REPO_LINE = re.compile(r'^COURSE_REPO = "([^"]+)"', re.M)
DRIVE_LINE = 'USE_DRIVE = False  # @param {type:"boolean"}'


def code_cells(path):
    cells = json.loads(path.read_text())["cells"]
    return [c for c in cells if c["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def install_cell():
    return source(code_cells(NOTEBOOKS[0])[0])


# --- the install cell: one text everywhere ----------------------------------------------------

def test_every_notebook_has_the_same_install_cell_in_plain_python():
    assert [p.name[:2] for p in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05", "06", "07", "08"]
    cells = {p.name: source(code_cells(p)[0]) for p in NOTEBOOKS}
    assert len(set(cells.values())) == 1, "install cells differ"
    ast.parse(install_cell())                      # no `!git` or `%cd`: it runs (and fails) as Python
    assert not re.search(r"^\s*[!%]", install_cell(), re.M)


def test_course_repo_is_at_the_top_and_the_same_as_in_the_readme():
    code = [line for line in install_cell().splitlines() if not line.startswith("#")]
    notebook_repo = REPO_LINE.match(code[0])
    readme_repos = set(re.findall(r'COURSE_REPO = "([^"]+)"', (ROOT / "README.md").read_text()))
    assert notebook_repo, "COURSE_REPO must be the cell's first statement"
    assert readme_repos == {notebook_repo.group(1)}
    assert notebook_repo.group(1).startswith("https://")


class FakeRun:
    """subprocess.run for git and pip: records each command, answers with the given return codes."""

    def __init__(self, course, git=0, pip=0):
        self.course, self.codes, self.calls = course, {"git": git, "pip": pip}, []

    def __call__(self, cmd, **kwargs):
        tool = "git" if cmd[0] == "git" else "pip"
        self.calls.append((tool, list(cmd), kwargs))
        code = self.codes[tool]
        if tool == "git" and code == 0:
            (self.course / "notebooks").mkdir(parents=True)
        if tool == "pip" and code == 0:
            constraints = Path(cmd[cmd.index("-c") + 1])
            self.constraints = constraints.read_text()      # read while the file is there
        stderr = {"git": "fatal: repository 'x' not found", "pip": "line\n" * 20 + "ERROR: no matching keras"}
        return subprocess.CompletedProcess(cmd, code, "", stderr[tool] if code else "")


@pytest.fixture
def colab(tmp_path, monkeypatch):
    """Run the install cell as on Colab, with /content in tmp_path; gives a function of FakeRun."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    real_version = importlib.metadata.version

    def version(name):        # a local tensorflow-cpu stands in for Colab's "tensorflow"
        try:
            return real_version(name)
        except importlib.metadata.PackageNotFoundError:
            if name != "tensorflow":
                raise
            return real_version("tensorflow-cpu")

    monkeypatch.setattr(importlib.metadata, "version", version)
    content = tmp_path / "content"
    content.mkdir()
    cell = install_cell().replace('"/content', f'"{content}')
    assert cell != install_cell()

    def run(fake_run):
        monkeypatch.setattr(subprocess, "run", fake_run)
        exec(compile(cell, "install cell", "exec"), {"__name__": "install_cell"})

    run.course = content / "modanet-seasons"
    return run


def test_a_failed_clone_stops_the_cell_naming_the_url_and_what_to_do(colab):
    fake = FakeRun(colab.course, git=128)
    with pytest.raises(RuntimeError) as error:
        colab(fake)
    repo = REPO_LINE.search(install_cell()).group(1)
    message = str(error.value)
    assert repo in message and "fatal: repository 'x' not found" in message and "Set COURSE_REPO" in message
    assert [tool for tool, _, _ in fake.calls] == ["git"]            # no pip after a failed clone
    _, cmd, kwargs = fake.calls[0]
    assert cmd[:2] == ["git", "clone"] and repo in cmd and str(colab.course) in cmd
    assert kwargs["env"]["GIT_TERMINAL_PROMPT"] == "0"               # fails, never waits for a password


def test_the_install_pins_colabs_tensorflow_keras_numpy(colab):
    fake = FakeRun(colab.course)
    colab(fake)
    assert [tool for tool, _, _ in fake.calls] == ["git", "pip"]
    _, cmd, _ = fake.calls[1]
    assert cmd[:3] == [sys.executable, "-m", "pip"] and cmd[cmd.index("-e") + 1] == ".."
    pins = dict(line.split("==") for line in fake.constraints.split())
    assert pins == {"tensorflow": importlib.metadata.version("tensorflow"),
                    "keras": importlib.metadata.version("keras"), "numpy": importlib.metadata.version("numpy")}
    assert Path.cwd() == colab.course / "notebooks" and sys.path[0] == str(colab.course)


def test_a_present_clone_is_not_cloned_again(colab):
    (colab.course / "notebooks").mkdir(parents=True)
    fake = FakeRun(colab.course)
    colab(fake)
    assert [tool for tool, _, _ in fake.calls] == ["pip"]


def test_a_clone_without_notebooks_says_to_delete_it(colab):
    colab.course.mkdir()
    with pytest.raises(RuntimeError, match="no notebooks/ folder"):
        colab(FakeRun(colab.course))


def test_a_failed_pip_shows_its_last_lines(colab):
    with pytest.raises(RuntimeError) as error:
        colab(FakeRun(colab.course, pip=1))
    assert "ERROR: no matching keras" in str(error.value) and str(error.value).count("line") <= 15


def test_off_colab_the_cell_only_puts_the_project_on_the_path(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("ran a command off Colab"))
    monkeypatch.chdir(ROOT / "notebooks")
    exec(compile(install_cell(), "install cell", "exec"), {"__name__": "install_cell"})
    assert Path.cwd() == ROOT / "notebooks" and sys.path[0] == str(ROOT)


def test_ipywidgets_accepts_colabs_7_7():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    widgets = [Requirement(d) for d in dependencies if Requirement(d).name == "ipywidgets"]
    assert widgets and widgets[0].specifier.contains("7.7.1")


# --- USE_DRIVE: one switch, every notebook ----------------------------------------------------

@pytest.mark.parametrize("path", COURSE_NOTEBOOKS, ids=lambda p: p.name)
def test_every_course_notebook_has_use_drive_and_uses_course_paths(path):
    code = code_cells(path)
    params = code[1]
    assert "parameters" in params["metadata"].get("tags", [])
    assert DRIVE_LINE in source(params).splitlines()
    text = "\n".join(source(c) for c in code)
    assert "paths = course_paths(profile, USE_DRIVE)" in text
    assert "profile.paths" not in text                     # every file goes through the chosen paths
    for call in re.findall(r"build_sample\([^)]*\)", text):
        assert "root=paths.source" in call                 # the smoke sample is drawn where paths reads it


@pytest.fixture
def fake_drive(tmp_path, monkeypatch):
    """A fake google.colab.drive: mount() records the mount point and makes MyDrive there."""
    monkeypatch.setenv("MODANET_DATA", str(tmp_path / "local"))
    colab = types.ModuleType("google.colab")
    drive = types.ModuleType("google.colab.drive")
    drive.mounted = []

    def mount(mount_point):
        drive.mounted.append(mount_point)
        (Path(mount_point) / "MyDrive").mkdir(parents=True, exist_ok=True)

    drive.mount = mount
    colab.drive = drive
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    drive.point = tmp_path / "drive"
    return drive


def test_on_colab_derived_files_go_to_drive_and_downloads_stay_local(fake_drive, tmp_path):
    profile = get_profile("colab")
    local = profile.paths
    paths = course_paths(profile, True, mount_point=fake_drive.point)
    assert fake_drive.mounted == [str(fake_drive.point)]
    on_drive = fake_drive.point / "MyDrive" / "modanet-seasons" / local.root.name
    assert paths.root == on_drive and on_drive.is_dir()
    for derived in (paths.split_file("train"), paths.via_file("train"), paths.model_file("model1"), paths.runs,
                    paths.custom_images, paths.autolabel_split("train"), paths.metrics, paths.figures):
        assert on_drive in derived.parents, derived
    for download in (paths.images, paths.train_annotations, paths.weights, paths.downloads):
        assert tmp_path / "local" in download.parents and fake_drive.point not in download.parents, download
    assert (paths.images, paths.train_annotations, paths.weights) == (local.images, local.train_annotations,
                                                                      local.weights)
    assert run_folder(paths, True) == paths.runs                # Drive already chosen: no second mount
    assert fake_drive.mounted == [str(fake_drive.point)]


def test_a_notebook_finds_on_drive_what_an_earlier_one_left(fake_drive):
    first = course_paths(get_profile("colab"), True, mount_point=fake_drive.point)
    first.models.mkdir(parents=True)
    first.model_file("model1").write_bytes(b"weights")            # 04 writes model-1, then Colab drops
    later = course_paths(get_profile("colab"), True, mount_point=fake_drive.point)   # 05, a new session
    assert later.model_file("model1").read_bytes() == b"weights"


def test_a_drawn_custom_set_lands_where_the_later_notebooks_read_it(fake_drive):
    """smoke draws its custom set beside its sample: on Drive both, drawn into paths.source as 01 does."""
    profile = replace(get_profile("smoke"), sample_images=3, custom_per_label=1, custom_classes=("top",))
    paths = course_paths(profile, True, mount_point=fake_drive.point)
    build_sample(profile, root=paths.source, progress=False)
    assert fake_drive.point in paths.root.parents
    assert paths.train_annotations.is_file() and paths.custom_truth.is_file()
    assert len(list(paths.custom_images.glob("*.jpg"))) == 5     # one photo of each season


def test_use_drive_off_colab_says_so_in_one_line_and_changes_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MODANET_DATA", str(tmp_path))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    profile = get_profile("smoke")
    assert course_paths(profile, True) == profile.paths
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Colab" in out


def test_without_use_drive_nothing_is_mounted(fake_drive):
    profile = get_profile("colab")
    assert course_paths(profile, False, mount_point=fake_drive.point) == profile.paths == Paths.for_profile(profile)
    assert fake_drive.mounted == []
