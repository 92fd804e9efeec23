"""bench/: the pieces of the bench scripts that decide what they measure and what they print.

The benches themselves run for minutes (bench/*.py); these checks keep their schedule, their
argument checks and their memory verdicts right without running a model.
"""
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
    at_least = bench_learning._at_least
    assert at_least({"ap50": 0.0}, {"ap50": 0.0004}, "ap50") is True          # both print 0.000
    assert at_least({"ap50": 0.0}, {"ap50": 0.0006}, "ap50") is False         # 0.000 against 0.001
    assert at_least({"ap50": 0.7}, {"ap50": 0.6}, "ap50") is True
    assert at_least({"ap50": 0.7}, None, "ap50") is None
    assert at_least({"ap50_bn": None}, {"ap50_bn": 0.1}, "ap50_bn") is None


@pytest.mark.parametrize("argv", [["--size", "100"], ["--batch", "0"], ["--train-images", "2", "--batch", "4"],
                                  ["--lr", "0"], ["--iterations", "0"], ["--minutes", "-1"]])
def test_bad_learning_bench_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        bench_learning.parse_args(argv)
    assert "error" in capsys.readouterr().err


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
