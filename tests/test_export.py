"""helpers.training.export_model says which checkpoint it hands on, and how it compares with the best."""
import csv
import json

import pytest

from mrcnn.config import Config

from helpers import training


def write_run(folder, val_losses, kept_epochs, name="modanet"):
    """A run folder as training leaves it: Keras' CSV log (epochs from 0) and the kept checkpoints."""
    folder.mkdir(parents=True)
    with open(folder / "training_log.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "loss", "val_loss"])
        for epoch, val in enumerate(val_losses):
            writer.writerow([epoch, 9.0 - epoch, val])
    for epoch in kept_epochs:
        (folder / f"mask_rcnn_{name}_{epoch:04d}.h5").write_bytes(f"weights of epoch {epoch}".encode())
    return folder


class FakeModel:
    """What export_model reads of a MaskRCNN: config, epoch, find_last()."""

    def __init__(self, folder, epoch):
        self.config, self.epoch, self.folder = Config(NAME="modanet", NUM_CLASSES=3), epoch, folder

    def find_last(self):
        return sorted(self.folder.glob("*.h5"))[-1]


def test_export_says_it_hands_on_the_last_epoch_and_where_the_best_was(tmp_path, capsys):
    run = write_run(tmp_path / "runs" / "modanet20260101T0000", [3.0, 2.5, 2.2, 2.4, 2.6],
                    kept_epochs=[3, 4, 5])
    target = training.export_model(FakeModel(run, 5), ["a", "b"], tmp_path / "models" / "model1.h5")
    printed = capsys.readouterr().out
    assert printed.startswith("exported epoch 5 of 5 (the last; validation loss 2.600; the lowest, 2.200, "
                              "was at epoch 3)")
    assert f'checkpoint="{run / "mask_rcnn_modanet_0003.h5"}"' in printed     # still kept: how to export it
    assert target.read_bytes() == b"weights of epoch 5"
    sidecar = json.loads(target.with_suffix(".json").read_text())
    assert (sidecar["epoch"], sidecar["val_loss"], sidecar["lowest_val_loss_epoch"]) == (5, 2.6, 3)
    assert sidecar["class_names"] == ["BG", "a", "b"]


def test_export_of_the_best_last_epoch_and_of_a_pruned_best(tmp_path, capsys):
    best_last = write_run(tmp_path / "a", [3.0, 2.0, 1.5], kept_epochs=[2, 3])
    training.export_model(FakeModel(best_last, 3), ["a"], tmp_path / "m1.h5")
    assert capsys.readouterr().out.startswith("exported epoch 3 of 3 (the last; also the lowest validation "
                                              "loss, 1.500) -> ")
    pruned = write_run(tmp_path / "b", [3.0, 1.0, 2.0, 2.5], kept_epochs=[3, 4])
    training.export_model(FakeModel(pruned, 4), ["a"], tmp_path / "m2.h5", verbose=True)
    out = capsys.readouterr().out
    assert "the lowest, 1.000, was at epoch 2 (its checkpoint was not kept)" in out
    assert "checkpoint=" not in out
    chosen = training.export_model(FakeModel(pruned, 4), ["a"], tmp_path / "m3.h5",
                                   checkpoint=pruned / "mask_rcnn_modanet_0003.h5", verbose=False)
    assert capsys.readouterr().out == ""
    assert json.loads(chosen.with_suffix(".json").read_text())["epoch"] == 3


@pytest.mark.parametrize("log", [None, "epoch,loss\n0,1.0\n", "not,a\ncsv log"])
def test_export_without_a_usable_log_still_exports_and_says_so(tmp_path, capsys, log):
    run = tmp_path / "run"
    run.mkdir()
    (run / "mask_rcnn_x_0002.h5").write_bytes(b"w")
    if log is not None:
        (run / "training_log.csv").write_text(log)
    target = training.export_model(FakeModel(run, 2), ["a"], tmp_path / "m.h5")
    assert target.read_bytes() == b"w"
    assert "exported epoch 2 of 2 (the last; no validation loss logged)" in capsys.readouterr().out
    assert training.exported_epoch(run / "mask_rcnn_x_0002.h5")["epochs"] is None    # no log, no model


def test_a_resumed_runs_log_counts_its_last_row_per_epoch(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "training_log.csv").write_text("epoch,val_loss\n0,3.0\n1,1.0\n1,2.0\n2,1.5\n")
    (run / "mask_rcnn_x_0003.h5").write_bytes(b"w")
    choice = training.exported_epoch(run / "mask_rcnn_x_0003.h5")
    assert (choice["epoch"], choice["epochs"], choice["best_epoch"], choice["best_val_loss"]) == (3, 3, 3, 1.5)
