"""bench/: the pieces of the bench scripts that decide what they measure and what they print.

The benches themselves run for minutes (bench/*.py); these checks keep their schedule, their
argument checks and their memory verdicts right without running a model.
"""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_learning    # noqa: E402
import bench_mrcnn       # noqa: E402


def test_checkpoints_fall_every_chunk_and_always_at_the_end():
    by_time = bench_learning.parse_args(["--minutes", "25", "--every", "5"])
    assert bench_learning.checkpoint_targets(by_time) == [5, 10, 15, 20, 25]
    uneven = bench_learning.parse_args(["--minutes", "12", "--every", "5"])
    assert bench_learning.checkpoint_targets(uneven) == [5, 10, 12]
    by_iterations = bench_learning.parse_args(["--iterations", "20", "--eval-every", "8"])
    assert bench_learning.checkpoint_targets(by_iterations) == [8, 16, 20]


def test_learning_rate_warms_up_linearly_then_stays():
    rates = [bench_learning.learning_rate_at(i, 0.01, 4) for i in range(6)]
    assert rates == pytest.approx([0.0025, 0.005, 0.0075, 0.01, 0.01, 0.01])
    assert bench_learning.learning_rate_at(0, 0.01, 0) == 0.01


def test_learning_verdict_compares_at_the_printed_resolution():
    at_least = bench_learning.at_least
    assert at_least({"ap50": 0.0}, {"ap50": 0.0004}, "ap50") is True          # both print 0.000
    assert at_least({"ap50": 0.0}, {"ap50": 0.0006}, "ap50") is False         # 0.000 against 0.001
    assert at_least({"ap50": 0.7}, {"ap50": 0.6}, "ap50") is True
    assert at_least({"ap50": 0.7}, None, "ap50") is None
    assert at_least({"ap50_bn": None}, {"ap50_bn": 0.1}, "ap50_bn") is None


@pytest.mark.parametrize("argv", [["--size", "100"], ["--batch", "0"], ["--train-images", "2", "--batch", "4"],
                                  ["--lr", "0"], ["--iterations", "0"], ["--minutes", "-1"],
                                  ["--only", "ours", "--compare-with", "x.json"],
                                  ["--iterations", "8", "--compare-with", "x.json"],
                                  ["--engine", "CONV_INIT"], ["--engine", "=he"], ["--engine", "NO_SUCH=1"],
                                  ["--engine", "CONV_INIT=kaiming"]])
def test_bad_learning_bench_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        bench_learning.parse_args(argv)
    assert "error" in capsys.readouterr().err


def test_engine_settings_are_python_literals_or_strings():
    args = bench_learning.parse_args(["--engine", "CONV_INIT=he", "--engine", "TRAIN_ROIS_PER_IMAGE=64",
                                      "--engine", "RPN_ANCHOR_SCALES=(8, 16, 32, 64, 128)",
                                      "--engine", "USE_MINI_MASK = False"])
    assert bench_learning.engine_overrides(args.engine) == {
        "CONV_INIT": "he", "TRAIN_ROIS_PER_IMAGE": 64, "RPN_ANCHOR_SCALES": (8, 16, 32, 64, 128),
        "USE_MINI_MASK": False}
    assert bench_learning.engine_overrides([]) == {}


def test_a_bad_engine_setting_is_named(capsys):
    with pytest.raises(SystemExit):
        bench_learning.parse_args(["--engine", "CONV_INIT=kaiming"])
    assert "CONV_INIT" in capsys.readouterr().err
    with pytest.raises(SystemExit):     # ours trains its BatchNorm, unless the engine says otherwise
        bench_learning.parse_args(["--engine", "PRECISE_BN_BATCHES=10", "--engine", "TRAIN_BN=False"])
    assert "PRECISE_BN_BATCHES" in capsys.readouterr().err


@pytest.mark.parametrize("batches", [0, 3])
def test_ours_ends_a_chunk_as_train_ends_an_epoch(batches):
    """With PRECISE_BN_BATCHES the trained BatchNorm layers are measured once after the chunk's last step."""
    from types import SimpleNamespace
    calls = []
    ours = object.__new__(bench_learning.Ours)
    bench_learning.Learner.__init__(ours, bench_learning.parse_args(["--seed", "2"]), "train-set", "held-out")
    ours.model = SimpleNamespace(config=SimpleNamespace(PRECISE_BN_BATCHES=batches),
                                 calibrate_batch_norm=lambda *a, **k: calls.append(("measure", a, k)))
    ours.train_step = lambda rate: calls.append("step") or 1.0
    assert ours.train_chunk(until_iterations=4, progress=False) == 1.0
    measured = [("measure", ("train-set",), {"batches": 3, "seed": 6, "trainable_only": True})]
    assert calls == ["step"] * 4 + (measured if batches else [])


def test_by_minutes_ours_leaves_room_for_the_last_measurement(monkeypatch):
    """Steps of 1 s and a measurement of 3 s: the first chunk to 10 s ends at 13 s (nothing measured yet),
    the second, to 20 s, stops training at 17 s so that its measurement ends on time."""
    from types import SimpleNamespace
    clock = [0.0]
    monkeypatch.setattr(bench_learning.time, "perf_counter", lambda: clock[0])
    ours = object.__new__(bench_learning.Ours)
    bench_learning.Learner.__init__(ours, bench_learning.parse_args([]), "train-set", "held-out")

    def advance(seconds):
        clock[0] += seconds
        return 1.0

    ours.model = SimpleNamespace(config=SimpleNamespace(PRECISE_BN_BATCHES=2),
                                 calibrate_batch_norm=lambda *a, **k: advance(3.0))
    ours.train_step = lambda rate: advance(1.0)
    ours.train_chunk(until_seconds=10, progress=False)
    assert (ours.iterations, ours.train_seconds) == (10, 13.0)
    ours.train_chunk(until_seconds=20, progress=False)
    assert (ours.iterations, ours.train_seconds) == (14, 20.0)


def _entry(iterations, ap50, device="cpu"):
    """One side's checkpoint report, as a worker sends it."""
    return {"iterations": iterations, "train_minutes": iterations / 60, "seconds_per_iteration": 1.0,
            "first_iteration_seconds": 2.0, "chunk_loss": 1.0, "ap50": ap50, "ap": ap50 / 2,
            "ap50_bn": ap50, "ap_bn": ap50 / 2}


def _saved_run(tmp_path, argv, side, ap50s):
    """The --out file of an earlier one-side run: settings from its own arguments, one row per checkpoint."""
    args = bench_learning.parse_args(argv)
    rows = [{"target": target, "ours": None, "theirs": None, side: _entry(target, ap50)}
            for target, ap50 in zip(bench_learning.checkpoint_targets(args), ap50s)]
    settings = {key: value for key, value in vars(args).items() if key != "worker"}
    path = tmp_path / f"{side}.json"
    bench_learning.write_json_atomic(path, {"settings": settings, "speed": {side: {"device": "cuda"}},
                                            "checkpoints": rows})
    return path


THEIRS_RUN = ["--only", "theirs", "--iterations", "8", "--eval-every", "4", "--device", "cuda", "--threads", "16"]


def test_other_side_is_read_back_from_an_earlier_run(tmp_path):
    path = _saved_run(tmp_path, THEIRS_RUN, "theirs", [0.25, 0.5])
    args = bench_learning.parse_args(["--only", "ours", "--iterations", "8", "--eval-every", "4",
                                      "--compare-with", str(path)])
    side, by_target, device = bench_learning.load_other_side(path, args)
    assert side == "theirs" and device == f"cuda (from {path})"
    assert [by_target[4]["ap50"], by_target[8]["ap50"]] == [0.25, 0.5]
    fewer = bench_learning.parse_args(["--only", "ours", "--iterations", "4", "--compare-with", str(path)])
    assert bench_learning.load_other_side(path, fewer)[1][4]["iterations"] == 4      # a prefix of its checkpoints


def test_another_bn_batches_compares_the_as_trained_scores_only(tmp_path, capsys):
    path = _saved_run(tmp_path, THEIRS_RUN, "theirs", [0.25, 0.5])       # --bn-batches 10 there
    args = bench_learning.parse_args(["--only", "ours", "--iterations", "8", "--eval-every", "4",
                                      "--compare-with", str(path), "--bn-batches", "0"])
    by_target = bench_learning.load_other_side(path, args)[1]
    assert [by_target[4]["ap50"], by_target[8]["ap"]] == [0.25, 0.25]
    assert all(by_target[t][key] is None for t in (4, 8) for key in ("ap50_bn", "ap_bn"))
    assert "--bn-batches 10 there, 0 here" in capsys.readouterr().out
    same = bench_learning.parse_args(["--only", "ours", "--iterations", "8", "--eval-every", "4",
                                      "--compare-with", str(path)])
    assert bench_learning.load_other_side(path, same)[1][8]["ap_bn"] == 0.25


@pytest.mark.parametrize("ours_argv, saved_argv, message", [
    (["--seed", "1"], THEIRS_RUN, "seed 0 there, 1 here"),
    (["--lr", "0.02", "--batch", "2"], THEIRS_RUN, "batch 4 there, 2 here; lr 0.01 there, 0.02 here"),
    (["--eval-every", "3"], THEIRS_RUN, "no theirs checkpoint at iteration(s) 3, 6"),
    ([], ["--only", "theirs", "--minutes", "1"], "trained by minutes"),
])
def test_an_earlier_run_that_does_not_compare_is_refused_by_name(tmp_path, ours_argv, saved_argv, message):
    path = _saved_run(tmp_path, saved_argv, "theirs", [0.5, 0.5])
    args = bench_learning.parse_args(["--only", "ours", "--iterations", "8", "--eval-every", "4",
                                      "--compare-with", str(path), *ours_argv])
    with pytest.raises(SystemExit) as refused:
        bench_learning.load_other_side(path, args)
    assert str(path) in str(refused.value) and message in str(refused.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"settings": {}}'])
def test_a_file_that_is_no_bench_result_is_refused_by_name(tmp_path, text):
    path = tmp_path / "other.json"
    path.write_text(text)
    args = bench_learning.parse_args(["--only", "ours", "--iterations", "8", "--compare-with", str(path)])
    with pytest.raises(SystemExit) as refused:
        bench_learning.load_other_side(path, args)
    assert str(path) in str(refused.value)


def test_compare_with_puts_the_saved_side_beside_this_run_and_gives_the_verdict(tmp_path, monkeypatch, capsys):
    path = _saved_run(tmp_path, THEIRS_RUN, "theirs", [0.25, 0.5])

    class OursWithoutAModel:              # stands in for the worker subprocess: AP 0.3, then 0.4
        def __init__(self, name, argv):
            self.name, self.scores = name, iter([0.3, 0.4])

        def report(self, kind):
            return {"device": "cpu"}

        def run_chunk(self):
            ap50 = next(self.scores)
            return _entry(4 if ap50 < 0.35 else 8, ap50)

        def close(self):
            pass

    monkeypatch.setattr(bench_learning, "Worker", OursWithoutAModel)
    out = tmp_path / "ours.json"
    assert bench_learning.main(["--only", "ours", "--iterations", "8", "--eval-every", "4", "--compare-with",
                                str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "theirs: cuda (from" in printed
    assert "goal ours >= theirs (mask AP50, as trained) at every checkpoint: NOT met" in printed   # 0.4 < 0.5
    saved = json.loads(out.read_text())
    rows = saved["checkpoints"]
    assert saved["complete"] is True
    assert [(row["ours"]["ap50"], row["theirs"]["ap50"]) for row in rows] == [(0.3, 0.25), (0.4, 0.5)]
    assert [row["ours_at_least_theirs_ap50"] for row in rows] == [True, False]


def test_results_are_kept_after_every_checkpoint_when_a_run_stops(tmp_path, monkeypatch):
    """A run stopped after its first checkpoint (here: the worker fails) leaves that checkpoint in --out."""
    class OursThatStops:
        def __init__(self, name, argv):
            self.name, self.chunks = name, 0

        def report(self, kind):
            return {"device": "cpu"}

        def run_chunk(self):
            self.chunks += 1
            if self.chunks > 1:
                raise KeyboardInterrupt
            return _entry(4, 0.3)

        def close(self):
            pass

    monkeypatch.setattr(bench_learning, "Worker", OursThatStops)
    out = tmp_path / "ours.json"
    with pytest.raises(KeyboardInterrupt):
        bench_learning.main(["--only", "ours", "--iterations", "8", "--eval-every", "4", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["complete"] is False and saved["settings"]["iterations"] == 8
    assert [(row["target"], row["ours"]["ap50"]) for row in saved["checkpoints"]] == [(4, 0.3)]
    assert saved["speed"]["ours"]["device"] == "cpu"
    assert list(tmp_path.iterdir()) == [out]                     # no temporary file left beside it


def test_big_training_memory_line_on_a_gpu_and_on_a_cpu():
    gb = 10 ** 9
    on_gpu = bench_mrcnn._big_training_line({"seconds": [2.0], "gpu_peak_bytes": 11 * gb, "peak_rss_bytes": 5 * gb})
    assert "peak GPU memory 11.00 GB" in on_gpu and ": met" in on_gpu and "0.500 steps/s" in on_gpu
    too_big = bench_mrcnn._big_training_line({"seconds": [2.0], "gpu_peak_bytes": 17 * gb, "peak_rss_bytes": 0})
    assert "NOT met" in too_big
    on_cpu = bench_mrcnn._big_training_line({"seconds": [90.0], "gpu": False, "peak_rss_bytes": 9.5 * gb,
                                             "rss_after_import_bytes": 1.5 * gb})
    assert "about 8.00 GB: fits in 16.0 GB" in on_cpu and "not a GPU measurement" in on_cpu
    big_on_cpu = bench_mrcnn._big_training_line({"seconds": [90.0], "gpu": False, "peak_rss_bytes": 20 * gb,
                                                 "rss_after_import_bytes": 1 * gb})
    assert "does NOT fit" in big_on_cpu
    assert "failed" in bench_mrcnn._big_training_line(None)


def test_current_rss_is_positive_and_below_the_peak():
    now = bench_mrcnn._current_rss_bytes()
    if now is None:
        pytest.skip("no /proc on this system")
    assert 0 < now <= bench_mrcnn._peak_rss_bytes() * 1.01


def test_against_matterport_exits_2_with_the_reason_when_the_reference_cannot_be_installed(monkeypatch, capsys,
                                                                                          tmp_path):
    from tests import matterport_reference

    def unavailable(cache=None):
        raise matterport_reference.ReferenceUnavailable("pip install mrcnn==0.2 failed: no index")

    monkeypatch.setattr(matterport_reference, "install", unavailable)
    out = tmp_path / "result.json"
    assert bench_mrcnn.main(["--against", "matterport", "--sizes", "64", "--out", str(out)]) == 2
    assert "no index" in capsys.readouterr().out
    assert not out.exists()


@pytest.mark.parametrize("argv", [["--backbone", "resnet101"], ["--out", "x.json"],
                                  ["--against", "matterport", "--warmup", "3"], ["--against", "keras"]])
def test_options_of_the_other_reference_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        bench_mrcnn.main(argv)
    assert "error" in capsys.readouterr().err


def test_against_matterport_times_both_with_the_same_weights(tmp_path):
    """The bench's smallest run (64 px, ResNet-50, 1 timed call a side): what it prints and writes, not its speed."""
    import subprocess
    from tests import matterport_reference
    try:
        matterport_reference.install()
    except matterport_reference.ReferenceUnavailable as error:
        pytest.skip(f"Matterport's reference is not available: {error}")
    out = tmp_path / "against.json"
    done = subprocess.run([sys.executable, str(Path(bench_mrcnn.__file__)), "--against", "matterport", "--sizes", "64",
                           "--backbone", "resnet50", "--repeat", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    saved = json.loads(out.read_text())
    assert saved["complete"] is True and saved["settings"]["backbone"] == "resnet50"
    (entry,) = saved["results"]
    assert entry["size"] == 64
    assert entry["ours"]["weights_whole"] is True, entry["ours"]["weights"]
    for side, key in (("ours", "ours_s_per_image"), ("matterport", "matterport_s_per_image")):
        assert len(entry[side]["seconds"]) == 1 and entry[key] == entry[side]["seconds"][0] > 0
    assert entry["ratio_matterport_over_ours"] == pytest.approx(entry["matterport_s_per_image"] /
                                                                entry["ours_s_per_image"])
    # The same weights and image: both keep the same number of detections.
    assert entry["ours"]["detections"] == entry["matterport"]["detections"]
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("64 px"))
    assert f"{entry['ratio_matterport_over_ours']:.2f}" in row and f"{entry['ours_s_per_image']:.3f}" in row
