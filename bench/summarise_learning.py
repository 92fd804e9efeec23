"""Summarise bench_learning.py runs of several seeds: each side's mean mask AP at every checkpoint.

Why: one run of either side moves by about 0.1 AP50 from seed to seed (and torchvision's from run to run
of the same seed), so one seed cannot say which side learns faster. Given the JSON files of several
runs (`--out` of bench_learning.py; a `--compare-with` run's file holds both sides), this prints, at every
checkpoint and for each side, the number of runs, the mean and the sample standard deviation of each score,
whether ours' mean >= theirs' (at the 3 decimals printed, as bench_learning.py decides), and, over the
files that hold both sides (the same seed: the same training images, order and held-out set), in how many
runs ours was >= theirs and the paired difference ours - theirs: its mean and 95 % confidence interval
(Student's t with n - 1 degrees of freedom). An interval that holds 0 means these runs cannot tell the two
sides apart at that checkpoint; one wholly below 0 means ours is behind by more than the seeds' spread.

    python bench/summarise_learning.py bench/results/ours_one_mask_grid_it368/*.json \
        bench/results/torchvision_h200_it368/theirs_h200_it368_seed[0-5].json

With --baseline FILES (ours' runs of another --engine setting, e.g. the default), it also prints, at every
checkpoint, ours - baseline paired by seed (the same training images, order and held-out set): whether a
variant of the engine beats another by more than the seeds' spread, not only each against torchvision.

    python bench/summarise_learning.py bench/results/ours_aligned_rpn_tv_he_it368/*.json \
        --baseline bench/results/ours_aligned_it368/*.json

Runs by minutes (`--minutes`) summarise the same way, checkpoint by checkpoint in minutes, with each side's
mean number of iterations reached; each file of such a run holds both sides, timed on one machine, so they
pair within the file. They must all have the same `--threads` too, and never mix with runs by iterations.

    python bench/summarise_learning.py bench/results/ours_aligned_rpn_tv_he_min25/*.json

A side's run that appears in two files (a `--compare-with` file repeats the other side's file) counts once.
All files must be the same bench (the settings bench_learning.py compares, the checkpoints) and ours' runs
the same `--engine` settings; anything else is an error naming the file.
"""
import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_learning import (COMPARED_SETTINGS, SCORES, VERDICT_DECIMALS, at_least, format_score,    # noqa: E402
                            read_result)

SIDES = ("ours", "theirs")
SAME_BENCH = tuple(name for name in COMPARED_SETTINGS if name != "seed") + ("iterations", "eval_every")
# By minutes, the checkpoints are minutes, and the threads decide how many iterations fit in them.
SAME_BENCH_BY_MINUTES = tuple(name for name in COMPARED_SETTINGS if name != "seed") + ("minutes", "every", "threads")


def same_bench(settings):
    """The settings that must match for two runs to be averaged or paired (others for runs by minutes)."""
    names = SAME_BENCH_BY_MINUTES if trained_by(settings) == "minutes" else SAME_BENCH
    return {name: settings.get(name) for name in names}


def trained_by(settings):
    """"minutes" or "iterations", from a run's settings or their `same_bench` dict."""
    return "minutes" if settings.get("iterations") is None else "iterations"


KINDS_DIFFER = "runs by minutes and runs by iterations do not average or pair"


def bench_differences(bench, reference):
    """The names whose values differ between two `same_bench` dicts, in a stable order."""
    names = list(reference) + [name for name in bench if name not in reference]
    return [name for name in names if bench.get(name) != reference.get(name)]


def read_run(path):
    """(settings, {side: {target: scores}}) of one result file; a clear error for anything else."""
    _, settings, checkpoints = read_result(path, by_minutes=True)
    sides = {}
    for side in SIDES:
        by_target = {row["target"]: row[side] for row in checkpoints
                     if isinstance(row, dict) and isinstance(row.get(side), dict)}
        if by_target:
            sides[side] = by_target
    if not sides:
        raise SystemExit(f"{path}: no checkpoint of either side")
    return settings, sides


def collect(paths):
    """Each side's distinct runs, the paired (ours, theirs) runs, the common settings and ours' engine."""
    runs = {side: [] for side in SIDES}
    paired, reference, engine = [], None, None
    for path in paths:
        settings, sides = read_run(path)
        bench = same_bench(settings)
        if reference is None:
            reference, first = bench, path
        elif trained_by(bench) != trained_by(reference):
            raise SystemExit(f"{path}: trained by {trained_by(bench)}, {first} by {trained_by(reference)}: "
                             f"{KINDS_DIFFER}")
        elif bench != reference:
            differ = "; ".join(f"{name} {bench.get(name)!r} here, {reference.get(name)!r} in {first}"
                               for name in bench_differences(bench, reference))
            raise SystemExit(f"{path}: not the same bench as {first}: {differ}")
        if "ours" in sides:
            this_engine = sorted(settings.get("engine") or [])
            if engine is not None and this_engine != engine[0]:
                raise SystemExit(f"{path}: ours ran with --engine {this_engine or 'none'}, "
                                 f"but with {engine[0] or 'none'} in {engine[1]}")
            engine = engine or (this_engine, path)
        for side, by_target in sides.items():
            run = (settings.get("seed"), by_target)
            if run not in runs[side]:
                runs[side].append(run)
        if len(sides) == 2:
            paired.append((sides["ours"], sides["theirs"]))
    return runs, paired, reference, (engine or ([], None))[0]


def paired_difference(differences, confidence=0.95):
    """(n, mean, low, high) of ours - theirs over paired runs: a Student's t interval for the mean."""
    n = len(differences)
    if n == 0:
        return (0, None, None, None)
    mean = statistics.fmean(differences)
    if n == 1:
        return (1, mean, None, None)
    from scipy.stats import t     # scipy comes with scikit-image, which the course needs
    half = t.ppf((1 + confidence) / 2, n - 1) * statistics.stdev(differences) / n ** 0.5
    return (n, mean, mean - half, mean + half)


def checkpoint_summary(runs, paired, target):
    """{side: {score: (n, mean, sd)}}, mean verdicts, paired counts and paired differences at one checkpoint."""
    summary = {}
    for side in SIDES:
        summary[side] = {}
        for key in SCORES:
            values = [by_target[target][key] for _, by_target in runs[side]
                      if target in by_target and by_target[target].get(key) is not None]
            sd = statistics.stdev(values) if len(values) > 1 else None
            summary[side][key] = (len(values), statistics.fmean(values), sd) if values else (0, None, None)
    means = {side: {key: summary[side][key][1] for key in SCORES} for side in SIDES}
    verdicts = {key: at_least(means["ours"], means["theirs"], key) for key in SCORES}
    counts, differences = {}, {}
    for key in SCORES:
        wins = [at_least(ours.get(target), theirs.get(target), key) for ours, theirs in paired]
        wins = [win for win in wins if win is not None]
        counts[key] = (sum(wins), len(wins))
        differences[key] = paired_difference(
            [ours[target][key] - theirs[target][key] for ours, theirs in paired
             if target in ours and target in theirs
             and ours[target].get(key) is not None and theirs[target].get(key) is not None])
    return summary, verdicts, counts, differences


def baseline_rows(runs, baseline, targets):
    """Ours against the baseline engine's runs, paired by seed: one row per as-trained score and checkpoint."""
    for name, side in (("ours", runs), ("the baseline", baseline)):
        seeds = [seed for seed, _ in side]
        twice = sorted({seed for seed in seeds if seeds.count(seed) > 1}, key=str)
        if twice:
            raise SystemExit(f"--baseline: {name} has more than one run of seed(s) {twice}: pairing by seed "
                             f"needs one run of each")
    ours_by_seed, baseline_by_seed = dict(runs), dict(baseline)
    seeds = sorted(set(ours_by_seed) & set(baseline_by_seed), key=str)
    rows = []
    for key in ("ap50", "ap"):
        for target in targets:
            pairs = [(ours_by_seed[seed][target][key], baseline_by_seed[seed][target][key]) for seed in seeds
                     if target in ours_by_seed[seed] and target in baseline_by_seed[seed]
                     and ours_by_seed[seed][target].get(key) is not None
                     and baseline_by_seed[seed][target].get(key) is not None]
            wins = sum(at_least({key: a}, {key: b}, key) for a, b in pairs)
            rows.append({"target": target, "score": key, "ours_mean": statistics.fmean(a for a, _ in pairs)
                         if pairs else None, "baseline_mean": statistics.fmean(b for _, b in pairs) if pairs else None,
                         "paired_runs_ours_at_least_baseline": wins, "paired_runs": len(pairs),
                         "paired_difference": dict(zip(("runs", "mean", "low", "high"),
                                                       paired_difference([a - b for a, b in pairs])))})
    return rows


def print_baseline(rows, engine, baseline_engine, unit):
    print(f"\nours ({', '.join(engine) or 'no --engine'}) against the baseline "
          f"({', '.join(baseline_engine) or 'no --engine'}), paired by seed, as trained:")
    for key in ("ap50", "ap"):
        print(f"\n{key:>{5 + len(unit)}} | ours  | base  | runs >= | ours - baseline")
        for row in rows:
            if row["score"] != key:
                continue
            means = [format_score(row[name], 5) for name in ("ours_mean", "baseline_mean")]
            print(f"{_target(row['target'], unit)} | {means[0]} | {means[1]} | "
                  f"{row['paired_runs_ours_at_least_baseline']:>3}/{row['paired_runs']:<3} | "
                  f"{_difference_cell(*row['paired_difference'].values())}")


def iterations_reached(runs, target):
    """{side: (mean iterations, mean minutes trained)} at one checkpoint, over the runs that reached it."""
    reached = {}
    for side in SIDES:
        entries = [by_target[target] for _, by_target in runs[side] if target in by_target]
        iterations = [entry["iterations"] for entry in entries if entry.get("iterations") is not None]
        minutes = [entry["train_minutes"] for entry in entries if entry.get("train_minutes") is not None]
        reached[side] = (statistics.fmean(iterations) if iterations else None,
                         statistics.fmean(minutes) if minutes else None)
    return reached


def print_iterations(reached):
    """By minutes: how far each side got in the same time, and the ratio."""
    print("\niterations reached (mean over the runs; the minutes each side trained):")
    print(f"{'':>8} | {'ours':^18} | {'theirs':^18} | ours / theirs")
    for target, sides in reached.items():
        (ours, ours_minutes), (theirs, theirs_minutes) = sides["ours"], sides["theirs"]
        cells = [f"{'-':>18}" if n is None else f"{n:6.1f} ({m:5.1f} min)" if m is not None else f"{n:18.1f}"
                 for n, m in ((ours, ours_minutes), (theirs, theirs_minutes))]
        ratio = f"{ours / theirs:.2f}" if ours is not None and theirs else "-"
        print(f"{_target(target, 'min')} | {cells[0]} | {cells[1]} | {ratio}")


def batch_norm_lag(runs, key):
    """(mean of re-estimated minus as-trained `key` over every run and checkpoint that has both, count)."""
    gaps = [scores[f"{key}_bn"] - scores[key] for _, by_target in runs for scores in by_target.values()
            if scores.get(key) is not None and scores.get(f"{key}_bn") is not None]
    return (statistics.fmean(gaps), len(gaps)) if gaps else (None, 0)


def _difference_cell(n, mean, low, high):
    if mean is None:
        return "-"
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]" if low is not None else f"{mean:+.3f}"


def _target(target, unit):
    return f"{target:>4g} {unit}"


def _cell(n, mean, sd):
    if mean is None:
        return f"{'-':>13}"
    return f"{mean:.3f} ± {sd:.3f}" if sd is not None else f"{mean:.3f}        "


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", metavar="JSON", help="bench_learning.py result files")
    parser.add_argument("--baseline", nargs="+", default=[], metavar="JSON",
                        help="ours' runs of another --engine setting: ours - baseline, paired by seed")
    parser.add_argument("--out", help="also write the summary to this JSON file")
    args = parser.parse_args(argv)
    runs, paired, settings, engine = collect(args.files)
    baseline, baseline_engine = [], []
    if args.baseline:
        baseline_runs, _, baseline_settings, baseline_engine = collect(args.baseline)
        if trained_by(baseline_settings) != trained_by(settings):
            raise SystemExit(f"--baseline {args.baseline[0]}: trained by {trained_by(baseline_settings)}, "
                             f"{args.files[0]} by {trained_by(settings)}: {KINDS_DIFFER}")
        differ = bench_differences(baseline_settings, settings)
        if differ:
            raise SystemExit(f"--baseline {args.baseline[0]}: not the same bench as {args.files[0]}: "
                             + "; ".join(f"{name} {baseline_settings.get(name)!r} there, {settings.get(name)!r} here"
                                         for name in differ))
        if not baseline_runs["ours"]:
            raise SystemExit(f"--baseline {args.baseline[0]}: no run of ours in the baseline files")
        baseline = baseline_runs["ours"]
    targets = sorted({target for side in SIDES for _, by_target in runs[side] for target in by_target})
    by_minutes = trained_by(settings) == "minutes"
    unit = "min" if by_minutes else "it"
    span = (f"{settings['minutes']:g} minutes, {settings['threads']} thread(s)" if by_minutes
            else f"{settings['iterations']} iterations")
    print(f"Learning bench summary: {settings['size']} px, batch {settings['batch']}, {span}; "
          f"ours {len(runs['ours'])} run(s) (seeds {[seed for seed, _ in runs['ours']]}), "
          f"theirs {len(runs['theirs'])} (seeds {[seed for seed, _ in runs['theirs']]}); "
          f"ours' --engine: {', '.join(engine) or 'none'}")
    short = [f"{side} seed {seed} (to {max(by_target):g} {unit})" for side in SIDES for seed, by_target in runs[side]
             if set(by_target) != set(targets)]
    if short:       # bench_learning.py keeps the checkpoints of a run stopped early
        print(f"stopped early, counted at the checkpoints they reached: {', '.join(short)}")
    print("mean ± sample sd over the runs; 'mean': ours' mean >= theirs'; 'runs': in how many paired runs ours >= theirs;"
          "\n'ours - theirs': the paired runs' mean difference [95 % confidence interval, Student's t]")
    by_target = {target: checkpoint_summary(runs, paired, target) for target in targets}
    rows = []
    for key in SCORES:
        print(f"\n{key:>{5 + len(unit)}} | {'ours':^13} | {'theirs':^13} | mean | runs | ours - theirs")
        for target in targets:
            summary, verdicts, counts, differences = by_target[target]
            ours, theirs = summary["ours"][key], summary["theirs"][key]
            won, of = counts[key]
            verdict = "-" if verdicts[key] is None else ("yes" if verdicts[key] else "NO")
            print(f"{_target(target, unit)} | {_cell(*ours)} | {_cell(*theirs)} | {verdict:>4} | {won}/{of:<2} | "
                  f"{_difference_cell(*differences[key])}")
            rows.append({"target": target, "score": key, "ours": dict(zip(("runs", "mean", "sd"), ours)),
                         "theirs": dict(zip(("runs", "mean", "sd"), theirs)), "ours_mean_at_least_theirs":
                         verdicts[key], "paired_runs_ours_at_least_theirs": won, "paired_runs": of,
                         "paired_difference": dict(zip(("runs", "mean", "low", "high"), differences[key]))})
    for key in ("ap50", "ap"):
        verdicts = [row["ours_mean_at_least_theirs"] for row in rows if row["score"] == key]
        if verdicts and None not in verdicts:
            print(f"ours' mean {key} >= theirs' at every checkpoint (as trained, {VERDICT_DECIMALS} decimals): "
                  f"{'yes' if all(verdicts) else 'NO'}")
    reached = {target: iterations_reached(runs, target) for target in targets} if by_minutes else {}
    if reached:
        print_iterations(reached)
    lags = {}
    for side in SIDES:
        lags[side] = {key: batch_norm_lag(runs[side], key) for key in ("ap50", "ap")}
        (ap50_lag, count), (ap_lag, _) = lags[side]["ap50"], lags[side]["ap"]
        if count:
            ap_text = "" if ap_lag is None else f", {ap_lag:+.3f} AP"
            print(f"{side}: re-estimating the BatchNorm statistics adds {ap50_lag:+.3f} AP50{ap_text} "
                  f"on average ({count} checkpoints): what the moving averages' lag costs as trained")
    compared = baseline_rows(runs["ours"], baseline, targets) if baseline else []
    if compared:
        print_baseline(compared, engine, baseline_engine, unit)
    if args.out:
        from helpers.io import write_json_atomic    # the repository root is on the path via bench_learning
        iterations = [{"target": target, **{side: dict(zip(("iterations", "train_minutes"), sides[side]))
                                            for side in SIDES}} for target, sides in reached.items()]
        write_json_atomic(args.out, {"files": args.files, "engine": engine, "rows": rows, "iterations": iterations,
                                     "batch_norm_lag": lags, "baseline": {"files": args.baseline, "engine":
                                     baseline_engine, "rows": compared}}, indent=2)
        print(f"summary: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
