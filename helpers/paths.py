"""Where every file of the course lives, in one place.

Data goes under `data/` at the project root (or `$MODANET_DATA`). Each profile has its own
root so the synthetic sample never mixes with real ModaNet:

    data/sample/        smoke profile: the synthetic ModaNet-like set and its custom season set
    data/modanet/       full profile: real ModaNet (downloaded by notebook 01)
    data/colab/         colab profile: its own splits, models, labels and runs; the photos,
                        annotations and start weights it reads are real ModaNet's, in data/modanet/
    data/colab-sample/  colab profile with MODANET_DATA_SOURCE=sample: the synthetic sample
                        standing in for ModaNet (a rehearsal of the real path on a CPU)

A Paths has two roots: `source` holds what is downloaded or drawn (images, ModaNet's annotation
files, archives, start weights), `root` everything the notebooks derive from it. They are one
folder except for the colab profile on real data, which shares ModaNet's download with `full`.
Inside a root, every notebook reads and writes the same names (see `Paths`).
"""
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_root():
    """The folder that holds all data: $MODANET_DATA, or `data/` in the project."""
    return Path(os.environ.get("MODANET_DATA", PROJECT_ROOT / "data")).expanduser()


# profile name -> (folder of derived files, folder of downloaded or drawn data), under data_root()
PROFILE_FOLDERS = {
    ("smoke", "synthetic"): ("sample", "sample"),
    ("full", "modanet"): ("modanet", "modanet"),
    ("full", "synthetic"): ("full-sample", "full-sample"),
    ("colab", "modanet"): ("colab", "modanet"),
    ("colab", "synthetic"): ("colab-sample", "colab-sample"),
}


@dataclass(frozen=True)
class Paths:
    """The files one profile reads and writes; `Paths.for_profile("smoke")`.

    `root`: derived files (splits, VIA, models, runs, labels, figures, metrics);
    `source`: downloaded or drawn data (images, annotation files, archives, weights); same as
    root unless given.
    """

    root: Path
    source: Path = None

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "source", Path(self.source) if self.source is not None else self.root)

    @classmethod
    def for_profile(cls, profile):
        """Paths of a Profile, or of a profile name (its default data source)."""
        name = getattr(profile, "name", profile)
        data = getattr(profile, "data", None) or {"smoke": "synthetic"}.get(name, "modanet")
        root, source = PROFILE_FOLDERS[(name, data)]
        return cls(data_root() / root, data_root() / source)

    def with_root(self, root):
        """The same source (images stay where they are) with derived files under `root` (Drive)."""
        return Paths(Path(root), self.source)

    # 01: download (full) or generate (smoke)
    @property
    def annotations_dir(self):
        return self.source / "annotations"

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
        return self.source / "images"

    @property
    def downloads(self):
        """Archives and partial downloads (kept so a re-run resumes)."""
        return self.source / "downloads"

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
        """Truth of the custom set (COCO): drawn (synthetic) or ModaNet's polygons (held-out photos); absent for your own photos."""
        return self.custom / "truth.json"

    # 04 / 06: training runs and checkpoints
    @property
    def runs(self):
        """Run folders of training: <name><timestamp>/ with a checkpoint per epoch and logs."""
        return self.root / "runs"

    @property
    def weights(self):
        """Downloaded start weights (mask_rcnn_coco.h5)."""
        return self.source / "weights"

    @property
    def models(self):
        return self.root / "models"

    def model_file(self, name):
        """The trained model a notebook hands on: 'model1' (04) or 'model2' (06), plus a .json sidecar."""
        return self.models / f"{name}.h5"

    # 05: auto-labels of the custom set
    @property
    def autolabels(self):
        return self.custom / "autolabels"

    @property
    def autolabel_via(self):
        """Every auto-label as VIA 2 (the original project's training format)."""
        return self.autolabels / "via.json"

    @property
    def autolabel_coco(self):
        """Every auto-label as COCO (categories = <class>_<season> labels)."""
        return self.autolabels / "coco.json"

    @property
    def labels_truth(self):
        """The truth of the photos 05 labelled (a copy 05 makes; absent for your own photos): 06 and 07 read it."""
        return self.autolabels / "truth.json"

    def autolabel_split(self, split):
        """Kept labels (>= MIN_PER_CLASS instances), split for model-2: 'train', 'val' or 'test'."""
        return self.autolabels / f"{split}.json"

    # every notebook: figures and headline numbers
    @property
    def figures(self):
        return self.root / "figures"

    @property
    def metrics(self):
        """One JSON of headline figures; each notebook adds its own section."""
        return self.root / "metrics.json"


# On Colab, USE_DRIVE keeps each profile's derived files in <Drive>/MyDrive/modanet-seasons/<profile folder>.
COLAB_DRIVE_MOUNT = "/content/drive"
DRIVE_FOLDER = "modanet-seasons"


def on_colab():
    """True inside a Colab runtime (it imports google.colab before the first cell runs)."""
    import sys

    return "google.colab" in sys.modules


def course_paths(profile, use_drive=False, mount_point=COLAB_DRIVE_MOUNT):
    """The Paths every notebook uses: the profile's, or with `use_drive` on Colab its derived files on Drive.

    A Colab disconnect wipes the local disk. On Drive, what the notebooks make (splits, VIA files,
    models, auto-labels, custom photos, runs, metrics, figures) survives, and each notebook finds
    what the earlier ones left there. Downloads (images, ModaNet's annotation files, archives, start
    weights) stay on the fast local disk: notebook 01 fetches them again after a disconnect.
    A profile that draws its own custom set (smoke) draws it beside its sample, so its whole
    (small) folder goes to Drive: 01 must then draw into `paths.source`.
    """
    paths = Paths.for_profile(profile)
    if not use_drive:
        return paths
    if not on_colab():
        print(f"USE_DRIVE only works on Colab (Google Drive): files stay in {paths.root}")
        return paths
    from google.colab import drive  # only on Colab

    drive.mount(str(mount_point))
    root = Path(mount_point) / "MyDrive" / DRIVE_FOLDER / paths.root.name
    root.mkdir(parents=True, exist_ok=True)
    draws_custom_set = getattr(profile, "custom_per_label", 0) > 0
    paths = Paths(root, root) if draws_custom_set else paths.with_root(root)
    print(f"USE_DRIVE: derived files in {paths.root}, downloads in {paths.source}")
    return paths


def require(path, made_by):
    """Return `path` if it exists; else raise FileNotFoundError saying what makes it.

    `made_by` names the notebook (or command) to run first, e.g. "01_download_modanet.ipynb".
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run {made_by} first (same profile).")
    return path


# Two public-domain photos of people shipped with the course (credits: data/photos/CREDITS.md), so that
# 00 and 07 show the models on real pictures on every machine, Colab included.
EXAMPLE_PHOTOS = PROJECT_ROOT / "data" / "photos"


def example_photos(folder=EXAMPLE_PHOTOS):
    """The .jpg photos in `folder` (sorted); a missing folder is an error that says so (a clone has it)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is missing: the course ships its example photos there "
                                "(git checkout data/photos).")
    return sorted(folder.glob("*.jpg"))
