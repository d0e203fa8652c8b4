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
        [--backend NAME] [--filter AXIS=V]  only these cases, as rnnbench ab selects them
        [--first-session K]        split the sessions over several calls (sessions K, K+1, ...)
    PYTHONPATH=. python benchmarks/gate_calibration.py SUITE --from-kept DIR [--json OUT.json] [--simulate N]
        tally what --keep wrote: per injected slowdown (the slowed-* files found), per rule
        (benchmarks/gate_rules.py: today's, the new one, and the alternatives) and per number of rounds used (the
        first 3 .. R of the kept rounds): cases flagged and sessions with any flagged; the sequential policy
        (looks at rounds 3 .. R, Bonferroni and a simulated Pocock level); the A/A sessions' variance components
        (between rounds, within a round) and, with --simulate N, N sessions drawn from them per rule
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # benchmarks.gate_rules, when run as a script
    sys.path.insert(0, str(REPO))

from harness.gate.ratios import DEFAULT_ALPHA  # noqa: E402  (numpy only; after the path above)


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


def session_plan(suite: str, rounds: int, blocks: int, slowdowns: list[float], seed: int, folder: str | Path,
                 backends: tuple[str, ...] = (), filters: tuple[str, ...] = ()):
    """The plan of one interleaved session: sides "a", "a-again" and one per slowdown, over the suite's cases that
    ``backends`` and ``filters`` select (as ``rnnbench ab --backend/--filter``), writing into ``folder``."""
    import shlex

    from harness.execute.run_plan import plan_ab

    sides = {"a": [sys.executable], "a-again": [sys.executable]}
    sides.update({f"slowed-{s:g}": slowed_interpreter(s) for s in slowdowns})
    # every side imports this checkout's harness on purpose (the slowdown is the shim's): an A/A asked for
    return plan_ab(suite, {side: shlex.join(command) for side, command in sides.items()}, rounds=rounds,
                   blocks=blocks, backends=backends, filters=filters, out_dir=folder, same_code_ok=True, seed=seed)


def ab_session(suite: str, rounds: int, blocks: int, slowdowns: list[float], seed: int,
               backends: tuple[str, ...] = (), filters: tuple[str, ...] = ()) -> dict:
    """One interleaved session (:func:`session_plan`), as ``rnnbench ab`` runs one
    (harness.execute.executor.run_ab_session); its RunResults by side."""
    from harness.execute.executor import run_ab_session

    with tempfile.TemporaryDirectory(prefix="rnnbench-calibration-") as folder:
        session = run_ab_session(session_plan(suite, rounds, blocks, slowdowns, seed, folder, backends, filters))
    if not session.complete:
        raise SystemExit(f"session {seed}: {session.outcome.failure or 'interrupted'}")
    return dict(session.runs)


def compare(baseline: Path, current: Path, threshold: float, alpha: float = DEFAULT_ALPHA) -> list:
    from harness.gate.compare import compare_runs
    from harness.record.store import read_results

    return list(compare_runs(read_results(baseline), read_results(current), threshold=threshold, alpha=alpha).pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--mode", choices=("ab", "back-to-back"), default="ab")
    parser.add_argument("--pairs", type=int, default=20, help="ab: sessions; back-to-back: unchanged pairs")
    parser.add_argument("--injected-pairs", type=int, default=5, help="back-to-back: pairs per slowdown")
    parser.add_argument("--rounds", type=int, default=None, help="default: 5 (ab), 3 (back-to-back)")
    parser.add_argument("--blocks", type=int, default=4, help="ab: timed blocks per case and round")
    parser.add_argument("--slowdowns", default=None, help="default: 0.20 (ab), 0.05,0.10,0.20 (back-to-back)")
    parser.add_argument("--backend", action="append", default=[], metavar="NAME",
                        help="ab: only these backends (repeatable), as rnnbench ab --backend: a session that fits "
                             "one call of a lent GPU")
    parser.add_argument("--filter", action="append", default=[], metavar="AXIS=V[,V]|GLOB",
                        help="ab: only these cases (repeatable), as rnnbench ab --filter")
    parser.add_argument("--threshold", type=float, default=0.05)
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="the gate's alpha (rnnbench ab --alpha)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--keep", default=None, metavar="DIR", help="ab: write every session's results files here")
    parser.add_argument("--first-session", type=int, default=0, metavar="K",
                        help="ab: number the sessions (and seed their orders) from K, to split the sessions "
                             "over several calls or machines")
    parser.add_argument("--from-kept", default=None, metavar="DIR",
                        help="ab: measure nothing; tally the sessions --keep wrote to DIR (from several calls)")
    parser.add_argument("--simulate", type=int, default=0, metavar="N",
                        help="--from-kept: also N sessions simulated from the A/A sessions' variance components")
    parser.add_argument("--pocock-sessions", type=int, default=2000, metavar="N",
                        help="--from-kept: simulated A/A sessions that find the sequential policy's per-look level")
    parser.add_argument("--simulate-rounds", default=None, metavar="R1,R2,...",
                        help="--from-kept --simulate: the rounds of the simulated sessions (default: 3 and the kept "
                             "sessions' rounds)")
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
                  f"p({pair.method.rule.adjustment}) {pair.p_adjusted:.3g} {pair.verdict}", flush=True)

    if args.mode == "ab":
        from harness.gate.compare import compare_runs
        from harness.record.store import read_results, write_results

        def tally_session(runs: dict, label: str) -> None:
            tally(0.0, list(compare_runs(runs["a"], runs["a-again"], threshold=args.threshold,
                                         alpha=args.alpha).pairs), label)
            for slowdown in slowdowns:
                tally(slowdown, list(compare_runs(runs["a"], runs[f"slowed-{slowdown:g}"],
                                                  threshold=args.threshold, alpha=args.alpha).pairs), label)

        if args.from_kept:
            return tally_kept(Path(args.from_kept), threshold=args.threshold, alpha=args.alpha,
                              simulate=args.simulate, json_path=args.json, pocock_sessions=args.pocock_sessions,
                              simulate_rounds=[int(r) for r in (args.simulate_rounds or "").split(",") if r])
        for index in range(args.first_session, args.first_session + args.pairs):
            session_started = time.perf_counter()
            runs = ab_session(args.suite, rounds, args.blocks, slowdowns, seed=index, backends=tuple(args.backend),
                              filters=tuple(args.filter))
            print(f"session {index}: {time.perf_counter() - session_started:.0f} s", flush=True)
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
                    tally(slowdown, compare(a, b, args.threshold, args.alpha), f"pair {index + 1}/{pairs}")
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


def kept_sessions(folder: Path) -> dict[str, dict[float, Path]]:
    """The kept sessions with every side written: name -> {0.0: a-again file, slowdown: slowed file, ...}, with the
    A file under -1."""
    sessions = {}
    for a_path in folder.glob("session*-a.json"):
        name = a_path.name[:-len("-a.json")]
        sides = {-1.0: a_path}
        if (folder / f"{name}-a-again.json").exists():
            sides[0.0] = folder / f"{name}-a-again.json"
        for slowed in folder.glob(f"{name}-slowed-*.json"):
            sides[float(slowed.name[len(name) + len("-slowed-"):-len(".json")])] = slowed
        if 0.0 in sides:
            sessions[name] = sides
    return dict(sorted(sessions.items(), key=lambda item: int(item[0][len("session"):])))


def tally_kept(folder: Path, *, threshold: float, alpha: float, simulate: int = 0, json_path: str | None = None,
               seed: int = 0, simulate_rounds: list[int] | None = None, pocock_sessions: int = 2000) -> int:
    """The offline tally of kept sessions (module docstring): prints the tables, writes ``json_path``."""
    import numpy as np

    from benchmarks import gate_rules
    from harness.gate.compare import compare_runs
    from harness.record.store import read_results

    started = time.perf_counter()
    sessions = kept_sessions(folder)
    if not sessions:
        raise SystemExit(f"{folder}: no kept session with an A and an A-again file")
    rows: dict[tuple, dict] = {}
    changes: dict[float, list[float]] = {}
    aa_logs: dict[str, list] = {}
    aa_round_values: dict[str, list] = {}
    sequential_input: dict[float, list] = {}
    most_rounds = 0
    checked = mismatched = 0
    for name, paths in sessions.items():
        runs = {slowdown: read_results(path) for slowdown, path in paths.items()}
        baseline = runs.pop(-1.0)
        for slowdown, current in sorted(runs.items()):
            logs = gate_rules.case_logs(baseline, current)
            rounds_kept = min(blocks.shape[0] for blocks, _ in logs)
            most_rounds = max(most_rounds, rounds_kept)
            changes.setdefault(slowdown, []).extend(math.expm1(float(blocks.mean())) for blocks, _ in logs)
            if slowdown == 0.0:
                for (blocks, round_values), case in zip(logs, [c for c in baseline.cases if c.ok]):
                    aa_logs.setdefault(case.key, []).append(blocks)
                    aa_round_values.setdefault(case.key, []).append(round_values)
            sequential_input.setdefault(slowdown, []).append([blocks for blocks, _ in logs])
            for used in range(3, rounds_kept + 1):
                flags = gate_rules.flags_by_rule([b[:used] for b, _ in logs], [r[:used] for _, r in logs],
                                                 threshold, alpha)
                if used == rounds_kept:  # the gate itself, on the files, agrees with the offline rules
                    for rule, run_pair in (("new", (baseline, current)),
                                           ("today", (gate_rules.without_blocks(baseline),
                                                      gate_rules.without_blocks(current)))):
                        gate = [p.verdict == "regression" for p in compare_runs(*run_pair, threshold=threshold,
                                                                                alpha=alpha).pairs]
                        checked += 1
                        mismatched += gate != flags[rule]
                for rule, flagged in flags.items():
                    row = rows.setdefault((slowdown, rule, used), dict(injected=slowdown, rule=rule, rounds=used,
                                                                       sessions=0, cases=0, flagged=0,
                                                                       sessions_flagged=0))
                    row["sessions"] += 1
                    row["cases"] += len(flagged)
                    row["flagged"] += sum(flagged)
                    row["sessions_flagged"] += any(flagged)
    looks = list(range(3, most_rounds + 1))
    components = [gate_rules.variance_components(tables) for tables in aa_logs.values()]
    blocks_per_round = next(iter(aa_logs.values()))[0].shape[1]
    pocock = gate_rules.pocock_alpha(components, blocks_per_round, threshold, alpha, looks, seed=seed,
                                     sessions=pocock_sessions) \
        if len(looks) > 1 else alpha
    sequential = []
    for slowdown, session_logs in sorted(sequential_input.items()):
        for policy, per_look in (("sequential-bonferroni", alpha / len(looks)), ("sequential-pocock", pocock)):
            outcomes = [gate_rules.sequential_flags([b for b in logs if b.shape[0] >= looks[-1]], threshold, alpha,
                                                    looks, per_look) for logs in session_logs]
            sequential.append(dict(injected=slowdown, rule=policy, rounds=looks[-1], per_look_alpha=per_look,
                                   sessions=len(outcomes), cases=sum(len(f) for f, _ in outcomes),
                                   flagged=sum(sum(f) for f, _ in outcomes),
                                   sessions_flagged=sum(any(f) for f, _ in outcomes),
                                   case_rounds=sum(spent for _, spent in outcomes),
                                   case_rounds_fixed=sum(len(f) for f, _ in outcomes) * looks[-1]))
    simulated = []
    if simulate:
        rng = np.random.default_rng(seed)
        pools = [(np.concatenate(aa_logs[key]), np.concatenate(aa_round_values[key])) for key in aa_logs]
        draws = {"normal": lambda used, change: gate_rules.simulated_session(rng, components, used, blocks_per_round,
                                                                             change),
                 "resampled": lambda used, change: gate_rules.resampled_session(rng, pools, used, change)}
        for (how, draw), slowdown, used in itertools.product(draws.items(), sorted(sequential_input),
                                                             simulate_rounds or (3, most_rounds)):
            tally = {rule: [0, 0, 0] for rule in gate_rules.RULES}  # cases, flagged, sessions flagged
            for _ in range(simulate):
                block_logs, round_logs = draw(used, math.log1p(slowdown))
                for rule, flagged in gate_rules.flags_by_rule(block_logs, round_logs, threshold, alpha).items():
                    tally[rule][0] += len(flagged)
                    tally[rule][1] += sum(flagged)
                    tally[rule][2] += any(flagged)
            simulated += [dict(injected=slowdown, rule=f"{rule} ({how})", rounds=used, sessions=simulate,
                               cases=cases, flagged=flagged, sessions_flagged=flagged_sessions)
                          for rule, (cases, flagged, flagged_sessions) in tally.items()]
        for (how, draw), slowdown in itertools.product(draws.items(), sorted(sequential_input)):
            drawn = [draw(looks[-1], math.log1p(slowdown))[0] for _ in range(simulate)]
            for policy, per_look in (("sequential-bonferroni", alpha / len(looks)), ("sequential-pocock", pocock)):
                outcomes = [gate_rules.sequential_flags(logs, threshold, alpha, looks, per_look) for logs in drawn]
                sequential.append(dict(injected=slowdown, rule=f"{policy} ({how})", rounds=looks[-1],
                                       per_look_alpha=per_look, sessions=simulate,
                                       cases=sum(len(f) for f, _ in outcomes),
                                       flagged=sum(sum(f) for f, _ in outcomes),
                                       sessions_flagged=sum(any(f) for f, _ in outcomes),
                                       case_rounds=sum(spent for _, spent in outcomes),
                                       case_rounds_fixed=sum(len(f) for f, _ in outcomes) * looks[-1]))
    report = dict(folder=str(folder), sessions=list(sessions), threshold=threshold, alpha=alpha,
                  gate_checked=checked, gate_mismatched=mismatched,
                  measured_change={str(s): dict(median=statistics.median(v), low=min(v), high=max(v))
                                   for s, v in sorted(changes.items())},
                  variance_components={key: dict(between_round_var=b, within_round_var=w)
                                       for key, (b, w) in zip(aa_logs, components)},
                  rows=list(rows.values()), sequential=sequential, simulated=simulated,
                  minutes=(time.perf_counter() - started) / 60)
    print_kept_report(report)
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2))
    return 0


def print_kept_report(report: dict) -> None:
    def rate(row):
        return f"{row['flagged']}/{row['cases']} ({row['flagged'] / row['cases']:.0%})" if row["cases"] else "-"

    print(f"{len(report['sessions'])} kept sessions in {report['folder']}; threshold {report['threshold']:.0%}, "
          f"alpha {report['alpha']:g}; the gate agreed with the offline rules in "
          f"{report['gate_checked'] - report['gate_mismatched']} of {report['gate_checked']} comparisons")
    for slowdown, change in report["measured_change"].items():
        print(f"  injected {float(slowdown):+.0%}: measured change median {change['median']:+.1%} "
              f"(cases {change['low']:+.1%} .. {change['high']:+.1%})")
    print("\nA/A variance components of the log block ratio (between rounds / within a round), as standard "
          "deviations:")
    for key, parts in report["variance_components"].items():
        print(f"  {key}: {math.sqrt(parts['between_round_var']):.2%} / {math.sqrt(parts['within_round_var']):.2%}")
    for title, rows in (("kept sessions", report["rows"]),
                        ("sequential (kept sessions; with --simulate also simulated ones)", report["sequential"]),
                        ("simulated: normal from the A/A variance components, or resampled from the kept A/A "
                         "rounds (random signs), plus the injected change", report["simulated"])):
        if not rows:
            continue
        print(f"\n{title}:\n{'injected':>8} {'rule':<34} {'rounds':>6} {'sessions':>8} {'with any':>8} "
              f"{'cases flagged':>16}" + ("  case-rounds" if "case_rounds" in rows[0] else ""))
        for row in sorted(rows, key=lambda r: (r["injected"], r["rule"], r["rounds"])):
            extra = f"  {row['case_rounds']}/{row['case_rounds_fixed']} (per look {row['per_look_alpha']:.4f})" \
                if "case_rounds" in row else ""
            print(f"{row['injected']:8.0%} {row['rule']:<34} {row['rounds']:6d} {row['sessions']:8d} "
                  f"{row['sessions_flagged']:8d} {rate(row):>16}{extra}")
    print(f"\n{report['minutes']:.1f} min")


if __name__ == "__main__":
    sys.exit(main())
