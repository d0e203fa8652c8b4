"""How often does the gate cry wolf, and how often does it catch a real slowdown?

Two ways to gate, two modes:

--mode ab (default): sessions of `rnnbench ab` as the gate runs it, with three or more sides taking turns
  (harness.execute.executor.run_ab_session): A, A' (the same code again) and one side per injected slowdown.
  A against A' counts false regressions; A against each slowed side counts detections. Each session is one
  "pair" of the targets.
--mode back-to-back: K back-to-back pairs of `rnnbench run SUITE --rounds R` compared with `rnnbench compare`.

The slowed sides really do more work per step (benchmarks/calibration_shim: extra kernels inside the timed
forward, not scaled samples). Prints a table (and --json) with the measured slowdowns, rates and wall time.

    PYTHONPATH=. python benchmarks/gate_calibration.py SUITE [--mode ab] [--pairs 20] [--rounds 5]
        [--blocks 4] [--slowdowns 0.20] [--threshold 0.05] [--json OUT.json] [--keep DIR]
        [--first-session K]        split the sessions over several calls (sessions K, K+1, ...)
    PYTHONPATH=. python benchmarks/gate_calibration.py SUITE --from-kept DIR     tally what --keep wrote
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def run_once(suite: str, out: Path, rounds: int, slowdown: float) -> None:
    environment = dict(os.environ)
    if slowdown:
        environment["PYTHONPATH"] = os.pathsep.join([str(HERE / "calibration_shim"), str(REPO),
                                                     environment.get("PYTHONPATH", "")])
        environment["RNNBENCH_INJECT_SLOWDOWN"] = str(slowdown)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", suite, "--rounds", str(rounds), "--quiet",
                           "--force", "--out", str(out)], env=environment, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"rnnbench run failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")


def slowed_interpreter(slowdown: float) -> list[str]:
    """This interpreter, with the calibration shim loaded and told to slow every step by ``slowdown``."""
    if not slowdown:
        return [sys.executable]
    path = os.pathsep.join([str(HERE / "calibration_shim"), str(REPO), os.environ.get("PYTHONPATH", "")])
    return ["env", f"PYTHONPATH={path}", f"RNNBENCH_INJECT_SLOWDOWN={slowdown}", sys.executable]


def ab_session(suite: str, rounds: int, blocks: int, slowdowns: list[float], seed: int) -> dict:
    """One interleaved session, as ``rnnbench ab`` runs one (harness.execute.executor.run_ab_session): sides "a",
    "a-again" and one per slowdown take turns; their RunResults."""
    import shlex

    from harness.execute.executor import run_ab_session
    from harness.execute.run_plan import plan_ab

    sides = {"a": [sys.executable], "a-again": [sys.executable]}
    sides.update({f"slowed-{s:g}": slowed_interpreter(s) for s in slowdowns})
    with tempfile.TemporaryDirectory(prefix="rnnbench-calibration-") as folder:
        # every side imports this checkout's harness on purpose (the slowdown is the shim's): an A/A asked for
        plan = plan_ab(suite, {side: shlex.join(command) for side, command in sides.items()}, rounds=rounds,
                       blocks=blocks, out_dir=folder, same_code_ok=True, seed=seed)
        session = run_ab_session(plan)
    if not session.complete:
        raise SystemExit(f"session {seed}: {session.outcome.failure or 'interrupted'}")
    return dict(session.runs)


def compare(baseline: Path, current: Path, threshold: float) -> list:
    from harness.gate.compare import compare_runs
    from harness.record.store import read_results

    return list(compare_runs(read_results(baseline), read_results(current), threshold=threshold).pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--mode", choices=("ab", "back-to-back"), default="ab")
    parser.add_argument("--pairs", type=int, default=20, help="ab: sessions; back-to-back: unchanged pairs")
    parser.add_argument("--injected-pairs", type=int, default=5, help="back-to-back: pairs per slowdown")
    parser.add_argument("--rounds", type=int, default=None, help="default: 5 (ab), 3 (back-to-back)")
    parser.add_argument("--blocks", type=int, default=4, help="ab: timed blocks per case and round")
    parser.add_argument("--slowdowns", default=None, help="default: 0.20 (ab), 0.05,0.10,0.20 (back-to-back)")
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--json", default=None)
    parser.add_argument("--keep", default=None, metavar="DIR", help="ab: write every session's results files here")
    parser.add_argument("--first-session", type=int, default=0, metavar="K",
                        help="ab: number the sessions (and seed their orders) from K, to split the sessions "
                             "over several calls or machines")
    parser.add_argument("--from-kept", default=None, metavar="DIR",
                        help="ab: measure nothing; tally the sessions --keep wrote to DIR (from several calls)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (5 if args.mode == "ab" else 3)
    slowdowns = [float(s) for s in (args.slowdowns or ("0.20" if args.mode == "ab" else "0.05,0.10,0.20")).split(",") if s]
    started = time.perf_counter()
    tallies: dict[float, dict] = {s: {"injected": s, "pairs": 0, "cases": 0, "flagged": 0, "ratios": [],
                                      "pairs_flagged": 0} for s in [0.0, *slowdowns]}

    def tally(slowdown: float, pairs_compared: list, label: str) -> None:
        row = tallies[slowdown]
        flagged = sum(p.verdict == "regression" for p in pairs_compared)
        row["pairs"] += 1
        row["cases"] += len(pairs_compared)
        row["flagged"] += flagged
        row["pairs_flagged"] += bool(flagged)
        row["ratios"] += [p.ratio for p in pairs_compared]
        print(f"{label} slowdown {slowdown:.0%}: {flagged} of {len(pairs_compared)} flagged; median change "
              f"{statistics.median(p.ratio for p in pairs_compared) - 1:+.1%}; min/max "
              f"{min(p.ratio for p in pairs_compared) - 1:+.1%}/{max(p.ratio for p in pairs_compared) - 1:+.1%}",
              flush=True)
        surprises = [p for p in pairs_compared if (p.verdict == "regression") != bool(slowdown)]
        for pair in surprises:
            interval = f"[{pair.ci_low - 1:+.1%}, {pair.ci_high - 1:+.1%}]" if pair.ci_low else "[-]"
            print(f"    {'missed' if slowdown else 'FALSE ALARM'}: {pair.key} {pair.ratio - 1:+.1%} {interval} "
                  f"p(Holm) {pair.p_adjusted:.3g} {pair.verdict}", flush=True)

    if args.mode == "ab":
        from harness.gate.compare import compare_runs
        from harness.record.store import read_results, write_results

        def tally_session(runs: dict, label: str) -> None:
            tally(0.0, list(compare_runs(runs["a"], runs["a-again"], threshold=args.threshold).pairs), label)
            for slowdown in slowdowns:
                tally(slowdown, list(compare_runs(runs["a"], runs[f"slowed-{slowdown:g}"],
                                                  threshold=args.threshold).pairs), label)

        if args.from_kept:
            sessions = sorted({path.name.split("-")[0] for path in Path(args.from_kept).glob("session*-a.json")},
                              key=lambda name: int(name[len("session"):]))
            for position, name in enumerate(sessions):
                runs = {side: read_results(Path(args.from_kept) / f"{name}-{side}.json")
                        for side in ["a", "a-again", *(f"slowed-{s:g}" for s in slowdowns)]}
                tally_session(runs, f"{name} ({position + 1}/{len(sessions)})")
        for index in ([] if args.from_kept else range(args.first_session, args.first_session + args.pairs)):
            runs = ab_session(args.suite, rounds, args.blocks, slowdowns, seed=index)
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                for side, run in runs.items():
                    write_results(Path(args.keep) / f"session{index}-{side}.json", run)
            tally_session(runs, f"session {index + 1}/{args.first_session + args.pairs}")
    else:
        with tempfile.TemporaryDirectory(prefix="rnnbench-calibration-") as folder:
            folder = Path(folder)
            for slowdown, pairs in [(0.0, args.pairs)] + [(s, args.injected_pairs) for s in slowdowns]:
                for index in range(pairs):
                    a, b = folder / f"a-{slowdown}-{index}.json", folder / f"b-{slowdown}-{index}.json"
                    run_once(args.suite, a, rounds, 0.0)
                    run_once(args.suite, b, rounds, slowdown)
                    tally(slowdown, compare(a, b, args.threshold), f"pair {index + 1}/{pairs}")
    rows = []
    for row in tallies.values():
        ratios = row.pop("ratios")
        rows.append({**row, "measured_median_change": statistics.median(ratios) - 1 if ratios else None})
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{'injected':>8} {'pairs':>5} {'pairs flagged':>13} {'cases':>5} {'flagged':>7} {'rate':>6} "
          f"{'measured change':>15}")
    for row in rows:
        rate = row["flagged"] / row["cases"] if row["cases"] else 0
        change = row["measured_median_change"]
        print(f"{row['injected']:8.0%} {row['pairs']:5d} {row['pairs_flagged']:13d} {row['cases']:5d} "
              f"{row['flagged']:7d} {rate:6.1%} {change if change is not None else float('nan'):+15.1%}")
    print(f"mode {args.mode}, {rounds} rounds" + (f", {args.blocks} blocks" if args.mode == "ab" else "")
          + f", threshold {args.threshold:.0%}; {minutes:.1f} min in all")
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": args.suite, "mode": args.mode, "rounds": rounds,
                                               "blocks": args.blocks if args.mode == "ab" else None,
                                               "threshold": args.threshold, "minutes": minutes, "rows": rows},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
