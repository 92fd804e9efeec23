"""bench/summarise_learning.py: means over several learning-bench runs, checked against hand-made files."""
import json
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import summarise_learning    # noqa: E402

SETTINGS = {"iterations": 20, "eval_every": 10, "size": 128, "batch": 4, "train_images": 256, "eval_images": 50,
            "lr": 0.01, "warmup": 50, "bn_batches": 10, "engine": []}


def _side(ap50):
    return {"iterations": 0, "ap50": ap50, "ap": ap50 / 2, "ap50_bn": ap50 + 0.1, "ap_bn": None}


def _write(path, seed, ours=None, theirs=None, **settings):
    """A result file with ours and/or theirs AP50 at iterations 10 and 20."""
    rows = [{"target": target, "ours": _side(ours[i]) if ours else None,
             "theirs": _side(theirs[i]) if theirs else None} for i, target in enumerate((10, 20))]
    path.write_text(json.dumps({"settings": {**SETTINGS, "seed": seed, **settings}, "checkpoints": rows}))
    return str(path)


@pytest.fixture
def files(tmp_path):
    return [_write(tmp_path / "pair0.json", 0, ours=(0.5, 0.9), theirs=(0.4, 0.95)),
            _write(tmp_path / "pair1.json", 1, ours=(0.7, 0.8), theirs=(0.6, 0.7)),
            _write(tmp_path / "theirs0.json", 0, theirs=(0.4, 0.95)),        # the copy inside pair0.json
            _write(tmp_path / "theirs2.json", 2, theirs=(0.8, 0.9))]


def test_each_sides_runs_are_counted_once_and_averaged(files, tmp_path, capsys):
    out = tmp_path / "summary.json"
    assert summarise_learning.main(files + ["--out", str(out)]) == 0
    rows = {(row["target"], row["score"]): row for row in json.loads(out.read_text())["rows"]}
    at10 = rows[(10, "ap50")]
    assert at10["ours"]["runs"] == 2 and at10["theirs"]["runs"] == 3             # theirs0.json counted once
    assert at10["ours"]["mean"] == pytest.approx(0.6)
    assert at10["theirs"]["mean"] == pytest.approx(0.6)
    assert at10["theirs"]["sd"] == pytest.approx(statistics.stdev([0.4, 0.6, 0.8]))
    assert at10["ours_mean_at_least_theirs"] is True                              # 0.600 >= 0.600
    assert (at10["paired_runs_ours_at_least_theirs"], at10["paired_runs"]) == (2, 2)
    at20 = rows[(20, "ap50")]
    assert at20["ours"]["mean"] == pytest.approx(0.85) and at20["theirs"]["mean"] == pytest.approx(0.85)
    assert (at20["paired_runs_ours_at_least_theirs"], at20["paired_runs"]) == (1, 2)
    assert rows[(20, "ap")]["ours_mean_at_least_theirs"] is True
    assert rows[(10, "ap_bn")]["ours"]["runs"] == 0 and rows[(10, "ap_bn")]["ours_mean_at_least_theirs"] is None
    printed = capsys.readouterr().out
    assert "ours 2 run(s) (seeds [0, 1]), theirs 3 (seeds [0, 1, 2])" in printed
    assert "ours' mean ap50 >= theirs' at every checkpoint (as trained, 3 decimals): yes" in printed


def test_a_behind_mean_reads_no(tmp_path, capsys):
    files = [_write(tmp_path / "a.json", 0, ours=(0.5, 0.9), theirs=(0.6, 0.9)),
             _write(tmp_path / "b.json", 1, ours=(0.6, 0.9), theirs=(0.6, 0.9))]
    summarise_learning.main(files)
    printed = capsys.readouterr().out
    assert "  10 it | 0.550 ± 0.071 | 0.600 ± 0.000 |   NO | 1/2" in printed
    assert "ours' mean ap50 >= theirs' at every checkpoint (as trained, 3 decimals): NO" in printed


def test_a_run_stopped_early_counts_where_it_reached_and_is_named(tmp_path, capsys):
    full = _write(tmp_path / "full.json", 0, ours=(0.5, 0.9), theirs=(0.6, 0.9))
    stopped = tmp_path / "stopped.json"              # bench_learning.py's file of a run killed after 10 it
    saved = json.loads(Path(_write(stopped, 1, ours=(0.7, 0.0), theirs=(0.4, 0.8))).read_text())
    saved["checkpoints"] = saved["checkpoints"][:1]
    saved["complete"] = False
    stopped.write_text(json.dumps(saved))
    out = tmp_path / "summary.json"
    summarise_learning.main([full, str(stopped), "--out", str(out)])
    rows = {(row["target"], row["score"]): row for row in json.loads(out.read_text())["rows"]}
    assert rows[(10, "ap50")]["ours"]["runs"] == 2 and rows[(10, "ap50")]["ours"]["mean"] == pytest.approx(0.6)
    assert rows[(20, "ap50")]["ours"]["runs"] == 1 and rows[(20, "ap50")]["ours"]["mean"] == pytest.approx(0.9)
    assert rows[(20, "ap50")]["paired_runs"] == 1
    assert ("stopped early, counted at the checkpoints they reached: ours seed 1 (to 10 it), theirs seed 1 "
            "(to 10 it)") in capsys.readouterr().out


@pytest.mark.parametrize("settings, ours, message", [
    ({"size": 256}, None, "size 256 here, 128 in"),
    ({"iterations": 30}, None, "iterations 30 here, 20 in"),
    ({"engine": ["CONV_INIT=he"]}, (0.1, 0.2), "ours ran with --engine ['CONV_INIT=he'], but with none in"),
    ({"iterations": None, "eval_every": None, "minutes": 2, "every": 1}, None,
     "trained by minutes, {first} by iterations: runs by minutes and runs by iterations do not average or pair"),
])
def test_runs_of_another_bench_are_refused_by_name(files, tmp_path, settings, ours, message):
    odd = _write(tmp_path / "odd.json", 3, ours=ours, theirs=(0.1, 0.2), **settings)
    with pytest.raises(SystemExit) as failure:
        summarise_learning.main(files + [odd])
    assert str(failure.value).startswith(f"{odd}: ") and message.format(first=files[0]) in str(failure.value)


@pytest.mark.parametrize("text, message", [("not json", "cannot read it as JSON"),
                                           ('{"a": 1}', "not a bench_learning.py result"),
                                           (json.dumps({"settings": SETTINGS, "checkpoints": []}), "no checkpoint")])
def test_a_file_that_is_no_result_is_refused_by_name(tmp_path, text, message):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(SystemExit) as failure:
        summarise_learning.main([str(bad)])
    assert str(failure.value).startswith(f"{bad}: ") and message in str(failure.value)


def test_batch_norm_lag_is_the_mean_gain_of_re_estimating(files, tmp_path, capsys):
    out = tmp_path / "summary.json"
    summarise_learning.main(files + ["--out", str(out)])
    lags = json.loads(out.read_text())["batch_norm_lag"]
    assert lags["ours"]["ap50"] == [pytest.approx(0.1), 4]       # every ap50_bn is ap50 + 0.1
    assert lags["theirs"]["ap"] == [None, 0]                      # no ap_bn anywhere
    assert "ours: re-estimating the BatchNorm statistics adds +0.100 AP50" in capsys.readouterr().out


def test_paired_difference_is_students_t_interval_of_the_same_seeds(tmp_path, capsys):
    ours, theirs = [(0.5, 0.9), (0.7, 0.8), (0.6, 0.75)], [(0.4, 0.95), (0.65, 0.7), (0.62, 0.9)]
    files = [_write(tmp_path / f"pair{seed}.json", seed, ours=ours[seed], theirs=theirs[seed]) for seed in range(3)]
    files.append(_write(tmp_path / "theirs9.json", 9, theirs=(0.0, 0.0)))    # no pair: not in the difference
    out = tmp_path / "summary.json"
    summarise_learning.main(files + ["--out", str(out)])
    rows = {(row["target"], row["score"]): row for row in json.loads(out.read_text())["rows"]}
    from scipy.stats import ttest_rel                 # the oracle: scipy's paired t-test and its interval
    for i, target in enumerate((10, 20)):
        a, b = [run[i] for run in ours], [run[i] for run in theirs]
        oracle = ttest_rel(a, b).confidence_interval(0.95)
        got = rows[(target, "ap50")]["paired_difference"]
        assert got["runs"] == 3 and got["mean"] == pytest.approx(statistics.fmean(a) - statistics.fmean(b))
        assert (got["low"], got["high"]) == (pytest.approx(oracle.low), pytest.approx(oracle.high))
    assert rows[(10, "ap_bn")]["paired_difference"] == {"runs": 0, "mean": None, "low": None, "high": None}
    at20 = rows[(20, "ap50")]["paired_difference"]
    assert f"| {at20['mean']:+.3f} [{at20['low']:+.3f}, {at20['high']:+.3f}]" in capsys.readouterr().out


def test_one_pair_has_a_difference_but_no_interval(tmp_path):
    files = [_write(tmp_path / "pair.json", 0, ours=(0.5, 0.9), theirs=(0.4, 0.95))]
    out = tmp_path / "summary.json"
    summarise_learning.main(files + ["--out", str(out)])
    rows = {(row["target"], row["score"]): row for row in json.loads(out.read_text())["rows"]}
    assert rows[(10, "ap50")]["paired_difference"] == {"runs": 1, "mean": pytest.approx(0.1), "low": None,
                                                        "high": None}


def test_baseline_is_paired_with_ours_by_seed(tmp_path, capsys):
    ours, base = [(0.5, 0.9), (0.7, 0.8), (0.6, 0.75)], [(0.4, 0.95), (0.65, 0.7), (0.62, 0.9)]
    files = [_write(tmp_path / f"variant{seed}.json", seed, ours=ours[seed], theirs=(0.1, 0.1),
                    engine=["CONV_INIT=he"]) for seed in range(3)]
    baseline = [_write(tmp_path / f"base{seed}.json", seed, ours=base[seed]) for seed in range(3)]
    baseline.append(_write(tmp_path / "base7.json", 7, ours=(0.0, 0.0)))     # no seed 7 in ours: left out
    out = tmp_path / "summary.json"
    summarise_learning.main(files + ["--baseline", *baseline, "--out", str(out)])
    saved = json.loads(out.read_text())["baseline"]
    assert saved["engine"] == [] and saved["files"] == baseline
    rows = {(row["target"], row["score"]): row for row in saved["rows"]}
    from scipy.stats import ttest_rel                 # the oracle: scipy's paired t-test and its interval
    for i, target in enumerate((10, 20)):
        a, b = [run[i] for run in ours], [run[i] for run in base]
        got = rows[(target, "ap50")]
        oracle = ttest_rel(a, b).confidence_interval(0.95)
        assert got["paired_runs"] == 3 and got["baseline_mean"] == pytest.approx(statistics.fmean(b))
        assert got["paired_difference"]["mean"] == pytest.approx(statistics.fmean(a) - statistics.fmean(b))
        assert (got["paired_difference"]["low"], got["paired_difference"]["high"]) == (
            pytest.approx(oracle.low), pytest.approx(oracle.high))
        assert got["paired_runs_ours_at_least_baseline"] == sum(x >= y for x, y in zip(a, b))
        assert rows[(target, "ap")]["ours_mean"] == pytest.approx(statistics.fmean(a) / 2)
    printed = capsys.readouterr().out
    assert "ours (CONV_INIT=he) against the baseline (no --engine), paired by seed" in printed
    assert "  10 it | 0.600 | 0.557 |   2/3   | +0.043 [" in printed


def test_a_baseline_of_another_bench_or_without_ours_is_refused(tmp_path):
    files = [_write(tmp_path / "variant.json", 0, ours=(0.5, 0.9))]
    odd = _write(tmp_path / "odd.json", 0, ours=(0.5, 0.9), size=256)
    with pytest.raises(SystemExit) as failure:
        summarise_learning.main(files + ["--baseline", odd])
    assert str(odd) in str(failure.value) and "size 256 there, 128 here" in str(failure.value)
    theirs_only = _write(tmp_path / "theirs.json", 0, theirs=(0.5, 0.9))
    with pytest.raises(SystemExit) as failure:
        summarise_learning.main(files + ["--baseline", theirs_only])
    assert "no run of ours in the baseline files" in str(failure.value)


def test_a_baseline_pairing_with_two_runs_of_a_seed_is_refused(tmp_path):
    files = [_write(tmp_path / "variant.json", 0, ours=(0.5, 0.9))]
    baseline = [_write(tmp_path / "base.json", 0, ours=(0.4, 0.8)), _write(tmp_path / "rerun.json", 0, ours=(0.3, 0.7))]
    with pytest.raises(SystemExit) as failure:
        summarise_learning.main(files + ["--baseline", *baseline])
    assert "the baseline has more than one run of seed(s) [0]" in str(failure.value)


MINUTES = {"iterations": None, "eval_every": None, "minutes": 10.0, "every": 5.0, "threads": 2}


def _write_by_minutes(path, seed, ours, theirs, threads=2):
    """A run by minutes: both sides in one file, AP50 and iterations reached at 5 and 10 minutes."""
    rows = [{"target": target, **{side: {**_side(ap50[i]), "iterations": reached[i], "train_minutes": target + 0.25}
                                  for side, (ap50, reached) in (("ours", ours), ("theirs", theirs))}}
            for i, target in enumerate((5.0, 10.0))]
    settings = {**SETTINGS, **MINUTES, "seed": seed, "threads": threads}
    path.write_text(json.dumps({"settings": settings, "checkpoints": rows}))
    return str(path)


def test_runs_by_minutes_pair_within_their_file_and_show_the_iterations_reached(tmp_path, capsys):
    ours = [((0.5, 0.9), (100, 180)), ((0.7, 0.8), (96, 190)), ((0.6, 0.95), (99, 176))]
    theirs = [((0.4, 0.95), (50, 100)), ((0.65, 0.7), (58, 110)), ((0.62, 0.9), (54, 102))]
    files = [_write_by_minutes(tmp_path / f"min{seed}.json", seed, ours[seed], theirs[seed]) for seed in range(3)]
    out = tmp_path / "summary.json"
    assert summarise_learning.main(files + ["--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    rows = {(row["target"], row["score"]): row for row in saved["rows"]}
    from scipy.stats import ttest_rel                 # the oracle: scipy's paired t-test and its interval
    for i, target in enumerate((5.0, 10.0)):
        a, b = [run[0][i] for run in ours], [run[0][i] for run in theirs]
        oracle = ttest_rel(a, b).confidence_interval(0.95)
        got = rows[(target, "ap50")]
        assert got["paired_runs"] == 3 and got["paired_runs_ours_at_least_theirs"] == sum(x >= y for x, y in zip(a, b))
        assert (got["paired_difference"]["low"], got["paired_difference"]["high"]) == (
            pytest.approx(oracle.low), pytest.approx(oracle.high))
    reached = {row["target"]: row for row in saved["iterations"]}
    assert reached[5.0]["ours"]["iterations"] == pytest.approx(statistics.fmean([100, 96, 99]))
    assert reached[10.0]["theirs"]["iterations"] == pytest.approx(statistics.fmean([100, 110, 102]))
    assert reached[10.0]["ours"]["train_minutes"] == pytest.approx(10.25)
    printed = capsys.readouterr().out
    assert "128 px, batch 4, 10 minutes, 2 thread(s); ours 3 run(s) (seeds [0, 1, 2])" in printed
    assert "  10 min | 0.883 ± 0.076 | 0.850 ± 0.132 |  yes | 2/3  |" in printed
    ratio = statistics.fmean([180, 190, 176]) / statistics.fmean([100, 110, 102])
    assert f"  10 min |  182.0 ( 10.2 min) |  104.0 ( 10.2 min) | {ratio:.2f}" in printed


def test_runs_by_minutes_with_other_threads_are_refused(tmp_path):
    two = _write_by_minutes(tmp_path / "two.json", 0, ((0.5, 0.9), (100, 180)), ((0.4, 0.9), (50, 100)))
    one = _write_by_minutes(tmp_path / "one.json", 1, ((0.5, 0.9), (60, 110)), ((0.4, 0.9), (30, 60)), threads=1)
    with pytest.raises(SystemExit) as failure:
        summarise_learning.main([two, one])
    assert str(failure.value).startswith(f"{one}: ") and "threads 1 here, 2 in" in str(failure.value)
    iterations = _write(tmp_path / "iterations.json", 0, ours=(0.5, 0.9))       # --minutes left at its default
    with pytest.raises(SystemExit) as failure:
        summarise_learning.main([two, "--baseline", iterations])
    assert str(failure.value).startswith(f"--baseline {iterations}: trained by iterations, {two} by minutes")


def test_runs_by_iterations_ignore_the_unused_minutes(files, tmp_path):
    other = _write(tmp_path / "other.json", 5, ours=(0.5, 0.9), theirs=(0.4, 0.9), minutes=3.0, threads=1)
    assert summarise_learning.main(files + [other]) == 0
