"""Where every file of the course lives, in one place.

Data goes under `data/` at the project root (or `$MODANET_DATA`). Each profile has its own
root so the synthetic sample never mixes with real ModaNet:

    data/sample/    smoke profile: the synthetic ModaNet-like set and its custom season set
    data/modanet/   full profile: real ModaNet (downloaded by notebook 01)

Inside a root, every notebook reads and writes the same names (see `Paths`).
"""
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_root():
    """The folder that holds all data: $MODANET_DATA, or `data/` in the project."""
    return Path(os.environ.get("MODANET_DATA", PROJECT_ROOT / "data")).expanduser()


@dataclass(frozen=True)
class Paths:
    """The files one profile reads and writes; `Paths.for_profile("smoke")`."""

    root: Path

    @classmethod
    def for_profile(cls, profile):
        name = getattr(profile, "name", profile)
        folder = {"smoke": "sample", "full": "modanet"}[name]
        return cls(data_root() / folder)

    # 01: download (full) or generate (smoke)
    @property
    def annotations_dir(self):
        return self.root / "annotations"

    @property
    def train_annotations(self):
        """The ModaNet-format train file that 02 splits (the only one with polygons)."""
        return self.annotations_dir / "modanet2018_instances_train.json"

    @property
    def val_annotations(self):
        """ModaNet's official val file: image entries only, no polygons."""
        return self.annotations_dir / "modanet2018_instances_val.json"

    @property
    def images(self):
        return self.root / "images"

    @property
    def downloads(self):
        """Archives and partial downloads (kept so a re-run resumes)."""
        return self.root / "downloads"

    # 02: split
    @property
    def splits(self):
        return self.root / "splits"

    def split_file(self, split):
        """COCO JSON of one split: 'train', 'val' or 'test'."""
        return self.splits / f"{split}.json"

    # 03: convert
    @property
    def via(self):
        return self.root / "via"

    def via_file(self, split):
        """VIA 2 JSON of one split."""
        return self.via / f"{split}.json"

    # 05: the custom season set (images named <class>_<season>_<n>.jpg)
    @property
    def custom(self):
        return self.root / "custom"

    @property
    def custom_images(self):
        return self.custom / "images"

    @property
    def custom_truth(self):
        """Hidden truth for the synthetic custom set (COCO); absent for a real one."""
        return self.custom / "truth.json"

    # 04 / 06: training runs and checkpoints
    @property
    def runs(self):
        return self.root / "runs"


def require(path, made_by):
    """Return `path` if it exists; else raise FileNotFoundError saying what makes it.

    `made_by` names the notebook (or command) to run first, e.g. "01_download_modanet.ipynb".
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run {made_by} first (same profile).")
    return path
