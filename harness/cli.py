"""The ``rnnbench`` command. It wires the stages together and is, with the reporter, the only place that
prints; how a command ends (exit codes: harness.errors) is harness.terminal's. Commands import what they use
when they run: ``--help``, ``list`` and ``validate`` of a CPU suite never import torch (docs/suites.md)."""

from __future__ import annotations

import json
import sys

import click

from harness.errors import EXIT_FAILED, EXIT_OK
from harness.spec.limits import MAX_PROFILE_ITERS
from harness.spec.backend_names import BACKENDS
from harness.terminal import Group, OutOption, echo_lines, examples, fraction, options


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=examples("rnnbench run suites/small.yaml --device cpu",
                             "rnnbench run --set cell=lstm,gru --set hidden_size=64,128 --set device=cpu"))
@click.version_option(package_name="rnnbench")
def main():
    """Benchmark LSTM and GRU in PyTorch across cuDNN, TorchScript, torch.compile and gate-level cells."""


SUITE_ARGUMENT = click.argument("suite_path", metavar="[SUITE]", required=False)
SET_OPTION = click.option("--set", "sets", multiple=True, metavar="KEY=V[,V]",
                          help="Set a grid axis or key of SUITE (hidden_size=64,128, timing.budget_s=0.2, device=cpu); "
                               "without SUITE, build the suite from defaults and these (docs/suites.md). Repeatable.")
BACKEND_OPTION = click.option("--backend", "backends", multiple=True, metavar="NAME",
                              help=f"Only these backends (repeatable): {', '.join(BACKENDS)}, or one the suite adds "
                                   f"(custom_backends, installed entry points).")
FILTER_OPTION = click.option("--filter", "filters", multiple=True, metavar="AXIS=V[,V]|GLOB",
                             help="Only cases with these axis values (e.g. cell=lstm, hidden_size=256,512) or "
                                  "whose key matches a glob. Repeatable; all must match.")
DEVICE_OPTION = click.option("--device", default=None, metavar="DEVICE",
                             help="Override the suite's device: auto, cpu, cuda, cuda:N.")
THRESHOLD_OPTION = click.option("--threshold", default="5%", show_default=True, metavar="FRACTION", callback=fraction,
                                help="Smallest slowdown that counts as a regression: 5% or 0.05.")
ALPHA_OPTION = click.option("--alpha", default="0.05", show_default=True, metavar="FRACTION", callback=fraction,
                            help="Significance level over all compared cases: Benjamini-Hochberg, one-sided, for A/B sides paired "
                                 "by block; Holm-Bonferroni otherwise (docs/gate.md#verdicts).")
SELECTION_OPTIONS = options(DEVICE_OPTION, BACKEND_OPTION, FILTER_OPTION)
GATE_OPTIONS = options(THRESHOLD_OPTION, ALPHA_OPTION)
REGION_OPTION = click.option("--metric", metavar="REGION", help="step, forward or backward.  [default: each case's "
                                                                "primary region]")
SUITE_OPTIONS = options(SUITE_ARGUMENT, SELECTION_OPTIONS, SET_OPTION)
QUIET_OPTION = click.option("--quiet", is_flag=True, help="No progress bar.")
FORCE_OPTION = click.option("--force", is_flag=True, help="Replace what rnnbench wrote at -o/--out before (a results "
                                                           "file, an interrupted run's journal, a.json and b.json).")


def out_option(help: str, metavar: str = "DIR", old: tuple[str, ...] = (), **extra):
    """``-o/--out``, the one spelling of every command's output (``old``: an earlier one, still read, not shown)."""
    return click.option("-o", "--out", *old, "out", cls=OutOption, old=old, metavar=metavar, help=help, **extra)


@main.command("list", epilog=examples("rnnbench list suites/small.yaml --device cpu --backend cudnn",
                                      "rnnbench list --set cell=lstm,gru --set hidden_size=64,128 --set device=cpu"))
@SUITE_OPTIONS
def list_cases(suite_path, device, backends, filters, sets):
    """Print the cases SUITE expands to, without running them."""
    from harness.spec.flops import forward_flops
    from harness.execute.session import open_suite

    opened = open_suite(suite_path, device, sets=sets)
    cases = opened.select(backends, filters)
    echo_lines([*(f"{case.key}  ({forward_flops(case) / 1e9:.3g} GFLOP forward)" for case in cases),
                f"{len(cases)} cases of suite '{opened.suite.name}' on {opened.device_name}"])


@main.command(epilog=examples("rnnbench validate suites/regression-cpu.yaml",
                              "rnnbench validate suites/small.yaml --set hidden_size=256 --device cpu"))
@SUITE_ARGUMENT
@DEVICE_OPTION
@SET_OPTION
def validate(suite_path, device, sets):
    """Check SUITE (format, values, device and dtype on this machine) without running it."""
    from harness.execute.session import open_suite

    opened = open_suite(suite_path, device, sets=sets)
    click.echo(f"{opened.path}: ok: suite '{opened.suite.name}', {len(opened.cases)} cases on {opened.device_name}")


@main.command(epilog=examples("rnnbench run suites/small.yaml --device cpu -o results/",
                              "rnnbench run suites/small.yaml --set hidden_size=64 --backend cudnn --device cpu",
                              "rnnbench run --set cell=lstm,gru --set backend=cudnn,torchscript --set device=cpu"))
@SUITE_OPTIONS
@out_option("Results file (*.json) or folder for it.  [default: results/<suite>-<device>-<time>.json]", "PATH")
@click.option("--resume", "resume_path", metavar="RESULTS",
              help="Continue the interrupted run that wrote RESULTS (or its .journal); refused if the suite or the "
                   "environment changed.")
@click.option("--rounds", type=click.IntRange(1, 50), metavar="R",
              help="R rounds, each a fresh worker with the cases in a new seeded order.  [default: timing.rounds]")
@FORCE_OPTION
@QUIET_OPTION
@click.option("--nvtx", is_flag=True, help="NVTX ranges around forward, backward and step, for nsys (CUDA only).")
@click.option("--shard", "shard_spec", metavar="I/N", help="Only shard I (0 to N-1) of N, split by estimated cost "
                                                          "(docs/scale-out.md); join the files with rnnbench merge.")
@click.option("--devices", "devices", metavar="D,D…|all",
              help="One worker per device (cuda:0,cuda:1 or all; cpu,cpu on a CPU), one results file.")
def run(suite_path, device, out, backends, filters, sets, resume_path, rounds, force, quiet, nvtx, shard_spec,
        devices):
    """Time every case of SUITE (or of the suite --set builds) and write a results file."""
    from harness.execute.executor import execute, finish_run, open_writer
    from harness.execute.run_plan import ON_DEVICES, plan_run
    from harness.report.progress import BusyOnce, Progress, warn_about_machine
    from harness.report.run_text import run_ending_lines, run_header, run_summary_lines

    plan = plan_run(suite_path, device=device, out=out, backends=backends, filters=filters, resume_path=resume_path,
                    rounds=rounds, force=force, nvtx=nvtx, shard_spec=shard_spec, devices=devices, sets=sets)
    writer = open_writer(plan)
    warn_about_machine(plan.machine_state, "the run")  # once the plan is accepted: a refusal stays one line
    click.echo(run_header(plan, writer.journal_path), err=True)
    busy = BusyOnce(warned=bool(plan.environment["machine_state"].get("busy"))) if plan.how != ON_DEVICES else None
    with Progress(plan.progress_total, quiet, busy) as progress:
        outcome = execute(plan, writer, progress)
    ending = finish_run(plan, writer, outcome)
    echo_lines([*run_summary_lines(ending.results), f"results: {plan.path}"])
    echo_lines(run_ending_lines(plan, ending), err=True)
    sys.exit(ending.exit_code)


@main.command(epilog=examples("rnnbench ab suites/regression-cpu.yaml --a ../main/.venv/bin/python "
                              "--b .venv/bin/python -o results/ab"))
@click.argument("suite_path", metavar="SUITE")
@click.option("--a", "python_a", required=True, metavar="PYTHON_A",
              help="The baseline's interpreter: venv-a/bin/python, or a command line ('env PYTHONPATH=wt-a python').")
@click.option("--b", "python_b", required=True, metavar="PYTHON_B", help="The current side's interpreter.")
@click.option("--rounds", type=click.IntRange(2, 50), metavar="R", help="Rounds per side.  [default: timing.rounds, "
                                                                        "at least 5]")
@click.option("--blocks", type=click.IntRange(1, 50), default=4, show_default=True, metavar="K",
              help="Timed blocks per case and round; the sides alternate block by block.")
@SELECTION_OPTIONS
@out_option("Folder for a.json, b.json (and comparison.md).", default="results/ab", show_default=True)
@GATE_OPTIONS
@click.option("--markdown", is_flag=True, help="Also write DIR/comparison.md.")
@FORCE_OPTION
@QUIET_OPTION
@click.option("--same-code-ok", is_flag=True, help="An A/A is meant (the gate's noise): no warning when both sides "
                                                   "run the same harness and torch; the files record it.")
def ab(suite_path, python_a, python_b, rounds, blocks, device, backends, filters, out, threshold, alpha,
       markdown, force, quiet, same_code_ok):
    """Interleaved A/B: SUITE under interpreters A and B, a fresh worker per side and round, taking turns block
    by block, then the gate round by round; exit 1 when B regresses against A (docs/gate.md#interleaved-ab)."""
    from harness.execute.executor import run_ab_session
    from harness.execute.run_plan import plan_ab
    from harness.report.compare_text import ab_comparison_lines
    from harness.report.progress import AbProgress, SameCodeOnce
    from harness.report.run_text import ab_ending_line, ab_header

    plan = plan_ab(suite_path, {"a": python_a, "b": python_b}, rounds=rounds, blocks=blocks, device=device,
                   backends=backends, filters=filters, out_dir=out, force=force, same_code_ok=same_code_ok)
    click.echo(ab_header(plan), err=True)
    with AbProgress(plan.progress_total, quiet, SameCodeOnce(same_code_ok)) as progress:
        session = run_ab_session(plan, progress)
    if session.exit_code is not None:
        click.echo(ab_ending_line(plan, session), err=True)
        sys.exit(session.exit_code)
    lines, failed = ab_comparison_lines(session.runs, threshold, alpha,
                                        plan.folder / "comparison.md" if markdown else None)
    echo_lines(lines)
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@main.command(epilog=examples("rnnbench env", "rnnbench env --device cpu --json"))
@click.option("--device", default="auto", metavar="DEVICE", help="Which device to describe.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def env(device, as_json):
    """Describe this machine: Python, torch and its libraries, CPU, GPU, and who else is using it."""
    from harness.execute.session import machine_environment
    from harness.report.env_text import environment_lines

    environment = machine_environment(device)
    echo_lines([json.dumps(environment, indent=2)] if as_json else environment_lines(environment))


@main.command(epilog=examples("rnnbench compare results/baselines/cpu.json results/new.json --markdown comparison.md"))
@click.argument("baseline_path", metavar="BASELINE")
@click.argument("current_path", metavar="CURRENT")
@click.option("--metric", metavar="REGION", help="step, forward, backward, or gpu_busy (docs/gate.md#which-metric-"
                                                 "to-gate-on).  [default: each case's primary region]")
@GATE_OPTIONS
@click.option("--markdown", "markdown_path", metavar="FILE", help="Also write the report as Markdown (a pull-request "
                                                                  "comment, $GITHUB_STEP_SUMMARY).")
@click.option("--allow-env-mismatch", is_flag=True, help="Compare even when GPU, driver, torch, CUDA, cuDNN, device "
                                                         "type, CPU model or math precision differ.")
def compare(baseline_path, current_path, metric, threshold, alpha, markdown_path, allow_env_mismatch):
    """Is CURRENT slower than BASELINE? Compares two results files case by case. Exit code 0: no regression;
    1: a case significantly slower by more than the threshold, or failing now; 2: unusable input."""
    from harness.report.compare_text import compare_files

    verdict = compare_files(baseline_path, current_path, metric=metric, threshold=threshold, alpha=alpha,
                            markdown_path=markdown_path, allow_env_mismatch=allow_env_mismatch)
    click.echo(verdict.text, err=verdict.refusal is not None)
    if verdict.refusal is not None:
        raise verdict.refusal
    sys.exit(EXIT_FAILED if verdict.failed else EXIT_OK)


@main.command("export-pytest-benchmark",
              epilog=examples("rnnbench export-pytest-benchmark results/small-cpu.json -o small.pytest-benchmark.json"))
@click.argument("results_path", metavar="RESULTS")
@out_option("The pytest-benchmark JSON file to write.", "FILE", old=("--output",), required=True)
@REGION_OPTION
def export_pytest_benchmark(results_path, out, metric):
    """Write RESULTS in pytest-benchmark's JSON format (times in seconds), for `pytest-benchmark compare`."""
    from harness.record.export_pytest_benchmark import export_file

    export = export_file(results_path, out, metric, on_left_out=lambda line: click.echo(f"left out: {line}", err=True))
    click.echo(f"{out}: {export.exported} benchmarks in pytest-benchmark format")


@main.command("baseline-path", epilog=examples("rnnbench baseline-path --device cpu",
                                                "rnnbench baseline-path results/small-cpu.json"))
@click.argument("results_path", metavar="[RESULTS]", required=False)
@click.option("--device", default="auto", show_default=True, metavar="DEVICE", help="Without RESULTS: this device.")
@click.option("--dir", "directory", metavar="DIR", help="Where baselines live.  [default: results/baselines]")
def baseline_path(results_path, device, directory):
    """Print the baseline file, DIR/<GPU model>.json (cpu-<CPU model>.json on a CPU), of the machine that wrote
    RESULTS, or of DEVICE on this machine."""
    from harness.execute.session import baseline_environment
    from harness.record.results_store import STORE

    click.echo(str(STORE.baseline_path(baseline_environment(results_path, device), directory)))


@main.command(epilog=examples("rnnbench profile suites/small.yaml --device cpu --backend cudnn --steps 5 -o profiles/",
                              "rnnbench profile --set cell=gru --set hidden_size=256 --set device=cpu"))
@SUITE_OPTIONS
@out_option("Folder for the profile file (and the traces).  [default: profiles]")
@click.option("--steps", type=click.IntRange(1, MAX_PROFILE_ITERS), default=10, show_default=True, metavar="N",
              help="Steps recorded per case (after the case's warm-up and the profiler's wait and warm-up steps).")
@click.option("--trace", is_flag=True, help="Also write a Chrome/Perfetto trace per case (opens in ui.perfetto.dev).")
@click.option("--nvtx", is_flag=True, help="NVTX ranges around forward, backward and step (CUDA; no-op on a CPU).")
@QUIET_OPTION
def profile(suite_path, device, backends, filters, sets, out, steps, trace, nvtx, quiet):
    """Profile every case of SUITE: kernels (GPU) or operators (CPU) per step, by name and by class, GPU busy
    and idle time, launches per step, CPU dispatch time, and cuDNN's predicted algorithm."""
    from harness.execute.executor import execute_profile, finish_profile, open_profile_writer
    from harness.execute.run_plan import plan_profile
    from harness.report.progress import Progress, warn_about_machine
    from harness.report.run_text import profile_ending_lines, profile_header, profile_summary_lines

    plan = plan_profile(suite_path, device=device, backends=backends, filters=filters, out_dir=out, steps=steps,
                        trace=trace, nvtx=nvtx, sets=sets)
    writer = open_profile_writer(plan)  # before any case: a path that cannot be written fails now
    warn_about_machine(plan.machine_state, "the profile")
    click.echo(profile_header(plan, writer.journal_path), err=True)
    with Progress(len(plan.cases), quiet, label="profiling") as progress:
        outcome = execute_profile(plan, writer, progress)
    ending = finish_profile(writer, outcome)
    echo_lines(profile_summary_lines(plan, ending))
    echo_lines(profile_ending_lines(plan, ending), err=True)
    sys.exit(ending.exit_code)


# --- charts and reports: read results files, draw, write; never measure (harness/report) ---

RESULTS_ARGUMENT = click.argument("results_paths", metavar="RESULTS...", nargs=-1, required=True)
REPORT_OPTIONS = options(FILTER_OPTION, GATE_OPTIONS,
                         out_option("Folder for the files written (created if missing).  [default: reports]"))


@main.command(epilog=examples("rnnbench plot results/small-cpu.json --x hidden_size --y tokens_per_s -o reports/"))
@RESULTS_ARGUMENT
@click.option("--x", "x_axis", metavar="AXIS", help="The swept axis: batch, seq_len, input_size, hidden_size, "
                                                   "num_layers.  [default: one chart per swept axis]")
@click.option("--y", "metric", metavar="METRIC", help="step, forward, backward (median ms), sequences_per_s, "
                                                      "tokens_per_s, achieved_tflops, peak_memory, energy_per_sequence.")
@click.option("--by", default="backend", show_default=True, metavar="DIM",
              help="What one line stands for: backend, cell, mode or file; other varying dimensions become facets.")
@click.option("--chart", default="curves", show_default=True, metavar="KIND", help="curves, speedup (over cudnn), "
              "compare (each file against the first) or roofline (docs/reports.md).")
@REPORT_OPTIONS
def plot(results_paths, x_axis, metric, by, chart, filters, threshold, alpha, out):
    """Draw charts of RESULTS files as PNGs: scaling curves (default), speedups or an A-vs-B comparison."""
    from harness.report.render import plot_files

    echo_lines(plot_files(results_paths, filters, out, chart=chart, x=x_axis, metric=metric, by=by,
                          threshold=threshold, alpha=alpha))


@main.command(epilog=examples("rnnbench report results/small-cpu.json -o reports/",
                              "rnnbench report results/baselines/cpu.json results/new.json profiles/small-cpu.json"))
@RESULTS_ARGUMENT
@REPORT_OPTIONS
def report(results_paths, filters, threshold, alpha, out):
    """Write charts, one self-contained HTML page and a Markdown summary of RESULTS files and profile files;
    with two or more results files, each after the first against the first (docs/reports.md)."""
    from harness.report.render import write_report_of_files

    left_out = []
    echo_lines(write_report_of_files(results_paths, filters, out, threshold=threshold, alpha=alpha, left_out=left_out))
    echo_lines([f"rnnbench: chart not drawn: {chart.name}: {chart.left_out} (the report says so)"
                for chart in left_out], err=True)


# --- scale-out: shards and their merge (harness/spec/shard.py, harness/record/merge.py) ---

@main.command(epilog=examples("rnnbench merge results/shard-0.json results/shard-1.json -o results/merged.json"))
@click.argument("results_paths", metavar="RESULTS...", nargs=-1, required=True)
@out_option("The merged results file to write.", "FILE", old=("--output",), required=True)
@click.option("--allow-env-mismatch", is_flag=True, help="Merge files whose environments differ (GPU, driver, "
                                                         "torch, CUDA, cuDNN, ...).")
@FORCE_OPTION
def merge(results_paths, out, allow_env_mismatch, force):
    """Join results files (the shards of one run) into one: same suite, comparable environments, each case once,
    every sample kept. report and compare read the merged file like any other."""
    from harness.record.merge import merge_files
    from harness.report.run_text import merge_line, merge_warning_lines

    merged = merge_files(results_paths, out, allow_env_mismatch=allow_env_mismatch, force=force,
                         before_writing=lambda merged: echo_lines(merge_warning_lines(merged, written=False), err=True))
    echo_lines(merge_warning_lines(merged, written=True), err=True)
    click.echo(merge_line(merged, out, len(results_paths)))


# --- history: runs kept over time in SQLite, trend charts, step detection (harness/record/history.py) ---

HISTORY_DB_OPTION = click.option("--db", "db_path", metavar="FILE", help="The history database.  [default: results/history.sqlite]")
CASE_OPTION = click.option("--case", "case_glob", metavar="GLOB", help="Only cases whose key matches the glob.")


@main.group(epilog=examples("rnnbench history add results/small-cpu.json", "rnnbench history regressions"))
def history():
    """Keep runs over time (SQLite) and find the step where a case got slower."""


@history.command("add", epilog=examples("rnnbench history add results/small-cpu.json --db results/history.sqlite"))
@click.argument("results_paths", metavar="RESULTS...", nargs=-1, required=True)
@HISTORY_DB_OPTION
def history_add(results_paths, db_path):
    """Store RESULTS files in the history: one row per run (environment fingerprint, commit, time), one per case
    (statistics, every sample). A run already there is refused; all files are checked before any is added."""
    from harness.report.history import add_to_history

    echo_lines(add_to_history(results_paths, db_path))


@history.command("show", epilog=examples("rnnbench history show --case 'lstm/*' -o reports/history"))
@CASE_OPTION
@REGION_OPTION
@click.option("--threshold", default="5%", show_default=True, metavar="FRACTION", callback=fraction,
              help="Smallest step marked on the charts: 5% or 0.05.")
@click.option("--no-charts", is_flag=True, help="Print the series only.")
@out_option("Folder for the trend charts.  [default: reports/history]")
@HISTORY_DB_OPTION
def history_show(case_glob, metric, threshold, no_charts, out, db_path):
    """Print each case's series (one per environment fingerprint) and draw a trend chart per case."""
    from harness.report.history import show_history

    echo_lines(show_history(db_path, case_glob, metric, threshold, charts=not no_charts, out_dir=out))


@history.command("regressions", epilog=examples("rnnbench history regressions --threshold 5%"))
@CASE_OPTION
@REGION_OPTION
@THRESHOLD_OPTION
@HISTORY_DB_OPTION
def history_regressions(case_glob, metric, threshold, db_path):
    """Step detection over each case's series per environment fingerprint (asv's piecewise-constant fit); exit
    code 1 when a series' latest step is a regression, larger than both the noise and the threshold."""
    from harness.report.history import regressions_lines, series_steps

    found = series_steps(db_path, case_glob, metric, threshold)
    echo_lines(regressions_lines(found))
    sys.exit(EXIT_FAILED if any(item.latest_step_regresses for item in found) else EXIT_OK)


if __name__ == "__main__":
    main()
