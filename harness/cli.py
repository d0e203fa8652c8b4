"""The ``rnnbench`` command. It wires the stages together and is, with the reporter, the only place that
prints. Exit codes: 0 success, 1 a case failed (run) / a regression (compare), 2 unusable input,
3 an internal error, 130 interrupted (the finished cases are saved)."""

from __future__ import annotations

import json
import sys

import click

from harness.errors import EXIT_FAILED, EXIT_OK
from harness.spec.limits import MAX_PROFILE_ITERS
from harness.terminal import AbProgress, BusyOnce, Group, Progress, SameCodeOnce, warn_about_machine


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnbench")
def main():
    """Benchmark LSTM and GRU in PyTorch across cuDNN, TorchScript, torch.compile and gate-level cells."""


BACKEND_OPTION = click.option("--backend", "backends", multiple=True, metavar="NAME",
                              help="Only these backends (repeatable): cudnn, eager, torchscript, compile, "
                                   "compile_module.")
FILTER_OPTION = click.option("--filter", "filters", multiple=True, metavar="AXIS=V[,V]|GLOB",
                             help="Only cases with these axis values (e.g. cell=lstm, hidden_size=256,512) or "
                                  "whose key matches a glob. Repeatable; all must match.")
DEVICE_OPTION = click.option("--device", default=None, metavar="DEVICE",
                             help="Override the suite's device: auto, cpu, cuda, cuda:N.")
THRESHOLD_OPTION = click.option("--threshold", default="5%", show_default=True, metavar="FRACTION",
                                help="Smallest slowdown that counts as a regression: 5% or 0.05.")
ALPHA_OPTION = click.option("--alpha", default="0.05", show_default=True, metavar="FRACTION",
                            help="Significance level, after Holm-Bonferroni over all compared cases; intervals "
                                 "are at confidence 1 - alpha.")


@main.command("list")
@click.argument("suite_path", metavar="SUITE")
@DEVICE_OPTION
@BACKEND_OPTION
@FILTER_OPTION
def list_cases(suite_path, device, backends, filters):
    """Print the cases SUITE expands to, without running them."""
    from harness.spec.flops import forward_flops
    from harness.execute.session import open_suite

    opened = open_suite(suite_path, device)
    cases = opened.select(backends, filters)
    for case in cases:
        click.echo(f"{case.key}  ({forward_flops(case) / 1e9:.3g} GFLOP forward)")
    click.echo(f"{len(cases)} cases of suite '{opened.suite.name}' on {opened.device}")


@main.command()
@click.argument("suite_path", metavar="SUITE")
@DEVICE_OPTION
def validate(suite_path, device):
    """Check SUITE (format, values, device and dtype on this machine) without running it."""
    from harness.execute.session import open_suite

    opened = open_suite(suite_path, device)
    click.echo(f"{suite_path}: ok: suite '{opened.suite.name}', {len(opened.cases)} cases on {opened.device}")


@main.command()
@click.argument("suite_path", metavar="SUITE")
@DEVICE_OPTION
@click.option("--out", "out", default=None, metavar="PATH",
              help="Results file (*.json) or folder for it. Default: results/<suite>-<device>-<time>.json")
@BACKEND_OPTION
@FILTER_OPTION
@click.option("--resume", "resume_path", default=None, metavar="RESULTS",
              help="Continue the interrupted run that wrote RESULTS (or its .journal): finished cases are kept, "
                   "the rest run. Refused if the suite or the environment changed.")
@click.option("--rounds", type=click.IntRange(1, 50), default=None, metavar="R",
              help="Measure every case in R rounds, each a fresh worker process with the cases in a new seeded "
                   "order (default: the suite's timing.rounds, else 1: one round, in this process).")
@click.option("--force", is_flag=True, help="Replace an existing results file (or an interrupted run's journal) at "
                                            "the --out path.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--nvtx", is_flag=True, help="NVTX ranges around forward, backward and step, for nsys (CUDA; no-op on "
                                           "a CPU). Off by default: their cost in the timed loop is not yet measured.")
@click.option("--shard", "shard_spec", default=None, metavar="I/N",
              help="Run only shard I of N (I from 0 to N-1): a deterministic split balanced by estimated cost, "
                   "for N CI jobs or Slurm tasks; join the files with rnnbench merge.")
@click.option("--devices", "devices", default=None, metavar="D,D…|all",
              help="One worker process per device (cuda:0,cuda:1 or all; cpu,cpu to try it on a CPU), cases "
                   "handed out as workers free up, one results file.")
def run(suite_path, device, out, backends, filters, resume_path, rounds, force, quiet, nvtx=False, shard_spec=None,
        devices=None):
    """Time every case of SUITE and write a results file."""
    from harness.execute.executor import execute, finish_run, open_writer
    from harness.report.run_text import run_ending_lines, run_header, run_summary_lines
    from harness.execute.run_plan import ON_DEVICES, plan_run

    plan = plan_run(suite_path, device=device, out=out, backends=backends, filters=filters, resume_path=resume_path,
                    rounds=rounds, force=force, nvtx=nvtx, shard_spec=shard_spec, devices=devices)
    writer = open_writer(plan)
    warn_about_machine(plan.machine_state, "the run")  # once the plan is accepted: a refusal stays one line
    click.echo(run_header(plan, writer.journal_path), err=True)
    busy = BusyOnce(warned=bool(plan.environment["machine_state"].get("busy"))) if plan.how != ON_DEVICES else None
    with Progress(plan.progress_total, quiet, busy) as progress:
        outcome = execute(plan, writer, progress)
    ending = finish_run(plan, writer, outcome)
    for line in run_summary_lines(ending.results):
        click.echo(line)
    click.echo(f"results: {plan.path}")
    for line in run_ending_lines(plan, ending):
        click.echo(line, err=True)
    sys.exit(ending.exit_code)


@main.command()
@click.argument("suite_path", metavar="SUITE")
@click.option("--a", "python_a", required=True, metavar="PYTHON_A",
              help="The baseline's interpreter, e.g. venv-a/bin/python (a command line: 'env PYTHONPATH=wt-a python').")
@click.option("--b", "python_b", required=True, metavar="PYTHON_B", help="The current side's interpreter.")
@click.option("--rounds", type=click.IntRange(2, 50), default=None, metavar="R",
              help="Rounds per side (default: the suite's timing.rounds, at least 5).")
@click.option("--blocks", type=click.IntRange(1, 50), default=4, show_default=True, metavar="K",
              help="Timed blocks per case and round; the sides alternate block by block.")
@DEVICE_OPTION
@BACKEND_OPTION
@FILTER_OPTION
@click.option("-o", "--out", "out_dir", default="results/ab", show_default=True, metavar="DIR",
              help="Folder for a.json, b.json (and comparison.md with --markdown).")
@THRESHOLD_OPTION
@ALPHA_OPTION
@click.option("--markdown", is_flag=True, help="Also write DIR/comparison.md.")
@click.option("--force", is_flag=True, help="Replace a.json and b.json if they exist.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--same-code-ok", is_flag=True,
              help="A and B are meant to run the same code (an A/A, to see the gate's noise): no warning when "
                   "their harness and torch come from the same folders; the files record that it was asked for.")
def ab(suite_path, python_a, python_b, rounds, blocks, device, backends, filters, out_dir, threshold, alpha,
       markdown, force, quiet, same_code_ok=False):
    """Interleaved A/B: SUITE under interpreter A and B on this machine, taking turns, then the gate.

    Each round starts a fresh worker process per side, both alive together. Case by case (in the round's
    shuffled order) each side builds it, then the sides time it in K blocks, alternating block by block,
    one process computing at a time: a drift of the machine hits both sides alike, and the gate compares
    them round by round (paired). Exit codes as for compare: 1 when B regresses against A.

    Each side imports what its interpreter command names, whatever folder ab runs in; each results file records
    where its harness and torch came from. When both come from the same folders, ab warns: an A/A comparison.
    """
    from harness.gate.compare import compare_runs
    from harness.execute.executor import run_ab_session
    from harness.report.answer import ab_verdict_text
    from harness.execute.run_plan import gate_settings, plan_ab
    from harness.report.compare_text import render_markdown, render_text
    from harness.report.run_text import ab_ending_line, ab_header
    from harness.record.results_io import write_text

    threshold_value, alpha_value = gate_settings(threshold, alpha)
    plan = plan_ab(suite_path, {"a": python_a, "b": python_b}, rounds=rounds, blocks=blocks, device=device,
                   backends=backends, filters=filters, out_dir=out_dir, force=force, same_code_ok=same_code_ok)
    click.echo(ab_header(plan), err=True)
    with AbProgress(plan.progress_total, quiet, SameCodeOnce(same_code_ok)) as progress:
        session = run_ab_session(plan, progress)
    if session.exit_code is not None:
        click.echo(ab_ending_line(plan, session), err=True)
        sys.exit(session.exit_code)
    comparison = compare_runs(session.runs["a"], session.runs["b"], threshold=threshold_value, alpha=alpha_value,
                              labels=("A", "B"))
    if markdown:
        write_text(plan.folder / "comparison.md", render_markdown(comparison))
    click.echo(render_text(comparison))
    click.echo(ab_verdict_text(comparison))
    sys.exit(EXIT_FAILED if comparison.failed else EXIT_OK)


@main.command()
@click.option("--device", default="auto", metavar="DEVICE", help="Which device to describe.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def env(device, as_json):
    """Describe this machine: Python, torch and its libraries, CPU, GPU, and who else is using it."""
    from harness.measure.env import collect_environment
    from harness.record.machine_state import collect_machine_state
    from harness.report.env_text import environment_lines
    from harness.execute.session import resolve_device_option

    environment = collect_environment(resolve_device_option(device))
    environment["machine_state"] = collect_machine_state(environment).to_dict()
    for line in [json.dumps(environment, indent=2)] if as_json else environment_lines(environment):
        click.echo(line)


@main.command()
@click.argument("baseline_path", metavar="BASELINE")
@click.argument("current_path", metavar="CURRENT")
@click.option("--metric", default=None, metavar="REGION",
              help="Timed region to compare: step, forward or backward. Default: each case's primary region "
                   "(the step of a training case, the forward otherwise). gpu_busy: the GPU's busy time per "
                   "step, from the profiled pass after the timed loop (when to use it: "
                   "docs/gate.md#which-metric-to-gate-on).")
@THRESHOLD_OPTION
@ALPHA_OPTION
@click.option("--markdown", "markdown_path", default=None, metavar="FILE",
              help="Also write the report as Markdown (a pull-request comment, $GITHUB_STEP_SUMMARY).")
@click.option("--allow-env-mismatch", is_flag=True,
              help="Compare even when the GPU model, driver, torch, CUDA or cuDNN version (or device type, CPU "
                   "model, math precision) differ. Refused without it.")
def compare(baseline_path, current_path, metric, threshold, alpha, markdown_path, allow_env_mismatch):
    """Is CURRENT slower than BASELINE? Compares two results files case by case.

    Exit code 0: no regression; 1: a regression (a case significantly slower by more than the threshold, or
    a case that ran in the baseline and fails now); 2: unusable input (a missing or malformed file, nothing
    in common, different environments without --allow-env-mismatch, a bad option).
    """
    from harness.gate.compare import compare_runs
    from harness.report.compare_text import (environment_refusal_error, render_environment_refusal, render_markdown,
                                             render_markdown_refusal, render_text)
    from harness.execute.run_plan import gate_settings
    from harness.record.results_io import write_text
    from harness.record.results_store import read_results

    threshold_value, alpha_value = gate_settings(threshold, alpha)
    baseline, current = read_results(baseline_path), read_results(current_path)
    comparison = compare_runs(baseline, current, metric=metric, threshold=threshold_value, alpha=alpha_value)
    blocking = comparison.blocking_differences
    if blocking and not allow_env_mismatch:
        if markdown_path:
            write_text(markdown_path, render_markdown_refusal(comparison, "--allow-env-mismatch"),
                       inputs=(baseline_path, current_path))
        click.echo(render_environment_refusal(comparison), err=True)
        raise environment_refusal_error(comparison, "--allow-env-mismatch")
    if markdown_path:  # first: a Markdown file that cannot be written must not follow a printed verdict
        write_text(markdown_path, render_markdown(comparison), inputs=(baseline_path, current_path))
    click.echo(render_text(comparison))
    sys.exit(EXIT_FAILED if comparison.failed else EXIT_OK)


@main.command("export-pytest-benchmark")
@click.argument("results_path", metavar="RESULTS")
@click.option("-o", "--output", required=True, metavar="FILE", help="The pytest-benchmark JSON file to write.")
@click.option("--metric", default=None, metavar="REGION",
              help="Timed region to export: step, forward or backward. Default: each case's primary region.")
def export_pytest_benchmark(results_path, output, metric):
    """Write RESULTS in pytest-benchmark's JSON format (times in seconds), for `pytest-benchmark compare`."""
    from harness.errors import ResultsFileError
    from harness.record.export_pytest_benchmark import to_pytest_benchmark
    from harness.record.results_io import refuse_overwriting, write_json_atomically
    from harness.record.results_store import read_results

    export = to_pytest_benchmark(read_results(results_path), metric)
    for line in export.skipped_cases:
        click.echo(f"left out: {line}", err=True)
    if not export.exported:
        raise ResultsFileError(f"{results_path}: no ok case with samples to export")
    write_json_atomically(refuse_overwriting(output, inputs=(results_path,)), export.document)
    click.echo(f"{output}: {export.exported} benchmarks in pytest-benchmark format")


@main.command("baseline-path")
@click.argument("results_path", metavar="[RESULTS]", required=False)
@click.option("--device", default="auto", show_default=True, metavar="DEVICE",
              help="Without RESULTS: the device of this machine whose baseline to name.")
@click.option("--dir", "directory", default=None, metavar="DIR",
              help="Where baselines live.  [default: results/baselines]")
def baseline_path(results_path, device, directory):
    """Print the baseline file for a machine: DIR/<GPU model>.json (cpu-<CPU model>.json on a CPU).

    With RESULTS, for the machine that wrote that results file; else for DEVICE on this machine.
    """
    from harness.record.results_store import STORE

    if results_path:
        from harness.record.results_store import read_results

        environment = read_results(results_path).environment
    else:
        from harness.measure.env import gpu_info, machine_info
        from harness.execute.session import resolve_device_option

        resolved = resolve_device_option(device)
        environment = {"machine": machine_info(), "gpu": gpu_info(resolved) if resolved.type == "cuda" else None}
    click.echo(str(STORE.baseline_path(environment, directory)))


@main.command()
@click.argument("suite_path", metavar="SUITE")
@DEVICE_OPTION
@BACKEND_OPTION
@FILTER_OPTION
@click.option("-o", "--out", "out_dir", default=None, metavar="DIR",
              help="Folder for the profile file (and the traces).  [default: profiles]")
@click.option("--steps", type=click.IntRange(1, MAX_PROFILE_ITERS), default=10, show_default=True, metavar="N",
              help="Steps recorded per case (after the case's warm-up and the profiler's wait and warm-up steps).")
@click.option("--trace", is_flag=True, help="Also write a Chrome/Perfetto trace per case (opens in ui.perfetto.dev).")
@click.option("--nvtx", is_flag=True, help="NVTX ranges around forward, backward and step (CUDA; no-op on a CPU).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def profile(suite_path, device, backends, filters, out_dir, steps, trace, nvtx, quiet):
    """Profile every case of SUITE: kernels (GPU) or operators (CPU) per step, by name and by class, GPU busy
    and idle time, launches per step, CPU dispatch time, and cuDNN's predicted algorithm."""
    from harness.execute.executor import execute_profile, finish_profile, open_profile_writer
    from harness.record.profile_file import profile_from_document
    from harness.report.profile_text import profile_text
    from harness.report.run_text import profile_ending_lines, profile_header
    from harness.execute.run_plan import plan_profile

    plan = plan_profile(suite_path, device=device, backends=backends, filters=filters, out_dir=out_dir, steps=steps,
                        trace=trace, nvtx=nvtx)
    writer = open_profile_writer(plan)  # before any case: a path that cannot be written fails now
    warn_about_machine(plan.machine_state, "the profile")
    click.echo(profile_header(plan, writer.journal_path), err=True)
    with Progress(len(plan.cases), quiet, label="profiling") as progress:
        outcome = execute_profile(plan, writer, progress)
    ending = finish_profile(writer, outcome)
    click.echo(profile_text(profile_from_document(ending.document, str(plan.path))))
    click.echo(f"profile: {plan.path}")
    for line in profile_ending_lines(plan, ending):
        click.echo(line, err=True)
    sys.exit(ending.exit_code)


# --- charts and reports: read results files, draw, write; never measure (harness/report) ---

RESULTS_ARGUMENT = click.argument("results_paths", metavar="RESULTS...", nargs=-1, required=True)
OUT_DIR_OPTION = click.option("-o", "--out", "out_dir", default=None, metavar="DIR",
                              help="Folder for the files written (created if missing).  [default: reports]")


@main.command()
@RESULTS_ARGUMENT
@click.option("--x", "x_axis", default=None, metavar="AXIS",
              help="The swept axis of the curves: batch, seq_len, input_size, hidden_size, num_layers. "
                   "Default: one chart per axis the results swept.")
@click.option("--y", "metric", default=None, metavar="METRIC",
              help="What to draw: step, forward, backward (median ms), sequences_per_s, tokens_per_s, "
                   "achieved_tflops, peak_memory, energy_per_sequence. Default: the step time (the forward "
                   "when not every case trains).")
@click.option("--by", default="backend", show_default=True, metavar="DIM",
              help="What one line stands for: backend, cell, mode or file; other dimensions that vary become "
                   "facets.")
@click.option("--chart", default="curves", show_default=True, metavar="KIND",
              help="curves: scaling curves; speedup: every backend over cudnn, per case; compare: each file "
                   "after the first (B) against the first (A), per case; roofline: achieved FLOP/s against arithmetic "
                   "intensity under the run's measured ceilings.")
@FILTER_OPTION
@THRESHOLD_OPTION
@ALPHA_OPTION
@OUT_DIR_OPTION
def plot(results_paths, x_axis, metric, by, chart, filters, threshold, alpha, out_dir):
    """Draw charts of RESULTS files as PNGs: scaling curves (default), speedups or an A-vs-B comparison."""
    from harness.execute.run_plan import gate_settings
    from harness.report.render import filter_runs, plot as draw, write_charts
    from harness.record.results_store import STORE, read_runs

    threshold_value, alpha_value = gate_settings(threshold, alpha)
    runs = filter_runs(read_runs(results_paths), filters)
    charts = draw(runs, chart, x_axis, metric, by, threshold=threshold_value, alpha=alpha_value)
    for path in write_charts(charts, out_dir or STORE.reports_dir):
        click.echo(str(path))


@main.command()
@RESULTS_ARGUMENT
@FILTER_OPTION
@THRESHOLD_OPTION
@ALPHA_OPTION
@OUT_DIR_OPTION
def report(results_paths, filters, threshold, alpha, out_dir):
    """Write charts, one self-contained HTML page and a Markdown summary of RESULTS files (and of profile files
    from rnnbench profile: a stacked bar per case and backend, the step by kernel class plus idle).

    Per file: scaling curves for every swept axis, the speedup over cudnn, the environment, summary tables,
    failed/skipped cases, noisy measurements. With two or more files, also each file after the first (B)
    against the first (A). summary.md suits a pull-request comment or $GITHUB_STEP_SUMMARY.
    """
    from harness.record.profile_file import read_results_and_profiles
    from harness.execute.run_plan import gate_settings
    from harness.report.render import filter_profiles, filter_runs, write_report
    from harness.record.results_store import STORE

    threshold_value, alpha_value = gate_settings(threshold, alpha)
    runs, profiles = read_results_and_profiles(results_paths)  # profile files: rnnbench profile's
    runs, profiles = filter_runs(runs, filters) if runs else runs, filter_profiles(profiles, filters)
    left_out = []
    for path in write_report(runs, out_dir or STORE.reports_dir, threshold=threshold_value, alpha=alpha_value,
                             profiles=profiles, left_out=left_out):
        click.echo(str(path))
    for chart in left_out:
        click.echo(f"rnnbench: chart not drawn: {chart.name}: {chart.left_out} (the report says so)", err=True)


# --- scale-out: shards and their merge (harness/spec/shard.py, harness/record/merge.py) ---

@main.command()
@click.argument("results_paths", metavar="RESULTS...", nargs=-1, required=True)
@click.option("-o", "--output", required=True, metavar="FILE", help="The merged results file to write.")
@click.option("--allow-env-mismatch", is_flag=True,
              help="Merge files whose environments differ (GPU model, driver, torch, CUDA, cuDNN, ...): "
                   "refused without it.")
@click.option("--force", is_flag=True, help="Replace FILE if it holds rnnbench results.")
def merge(results_paths, output, allow_env_mismatch, force):
    """Join results files (the shards of one run) into one: same suite, comparable environments, each case once,
    every sample kept. report and compare read the merged file like any other."""
    from harness.record.merge import merge_runs
    from harness.report.run_text import merge_line, merge_warning_lines
    from harness.record.results_io import refuse_overwriting, write_results
    from harness.record.results_store import read_runs

    target = refuse_overwriting(output, inputs=results_paths, force=force)
    merged = merge_runs(read_runs(results_paths), allow_env_mismatch=allow_env_mismatch)
    for line in merge_warning_lines(merged, written=False):
        click.echo(line, err=True)
    write_results(target, merged.run)
    for line in merge_warning_lines(merged, written=True):
        click.echo(line, err=True)
    click.echo(merge_line(merged, output, len(results_paths)))


# --- history: runs kept over time in SQLite, trend charts, step detection (harness/record/history.py) ---

HISTORY_DB_OPTION = click.option("--db", "db_path", default=None, metavar="FILE",
                                 help="The history database.  [default: results/history.sqlite]")


@main.group()
def history():
    """Keep runs over time (SQLite) and find the step where a case got slower."""


@history.command("add")
@click.argument("results_paths", metavar="RESULTS...", nargs=-1, required=True)
@HISTORY_DB_OPTION
def history_add(results_paths, db_path):
    """Store RESULTS files in the history: one row per run (environment fingerprint, commit, time), one per case
    (statistics, every sample). A run already there is refused; all files are checked before any is added."""
    from harness.measure.env import utc_now
    from harness.record.history import History, prepare_runs
    from harness.record.results_store import STORE, read_runs

    runs = read_runs(results_paths)
    prepare_runs(runs)  # every file is read and checked before a database is opened (or created)
    with History(db_path or STORE.history_path, create=True) as store:
        for run, run_id in zip(runs, store.add(runs, added_utc=utc_now())):
            click.echo(f"{run.source}: added as run {run_id} ({len(run.cases)} cases)")
        click.echo(f"{store.path}: {store.run_count()} runs")


@history.command("show")
@click.option("--case", "case_glob", default=None, metavar="GLOB", help="Only cases whose key matches the glob.")
@click.option("--metric", default=None, metavar="REGION",
              help="step, forward or backward. Default: each case's primary region.")
@click.option("--threshold", default="5%", show_default=True, metavar="FRACTION",
              help="Smallest step marked on the charts: 5% or 0.05.")
@click.option("--no-charts", is_flag=True, help="Print the series only.")
@click.option("-o", "--out", "out_dir", default=None, metavar="DIR",
              help="Folder for the trend charts.  [default: reports/history]")
@HISTORY_DB_OPTION
def history_show(case_glob, metric, threshold, no_charts, out_dir, db_path):
    """Print each case's series (one per environment fingerprint) and draw a trend chart per case."""
    from harness.report.history import series_lines, step_lines, trend_charts
    from harness.record.results_io import write_files
    from harness.record.results_store import STORE

    found = _series_steps(case_glob, metric, threshold, db_path)
    for item in found:
        for line in series_lines(item.series) + step_lines(item):
            click.echo(line)
    if not no_charts:
        for path in write_files(out_dir or STORE.history_charts_dir, trend_charts(found)):
            click.echo(str(path))


@history.command("regressions")
@click.option("--case", "case_glob", default=None, metavar="GLOB", help="Only cases whose key matches the glob.")
@click.option("--metric", default=None, metavar="REGION",
              help="step, forward or backward. Default: each case's primary region.")
@THRESHOLD_OPTION
@HISTORY_DB_OPTION
def history_regressions(case_glob, metric, threshold, db_path):
    """Step detection over each case's series within one environment fingerprint (asv's piecewise-constant fit).

    Exit code 1 when the latest step of a series is a regression: larger than both the noise and the threshold.
    """
    from harness.report.history import regressions_lines

    found = _series_steps(case_glob, metric, threshold, db_path)
    for line in regressions_lines(found):
        click.echo(line)
    sys.exit(EXIT_FAILED if any(item.latest_step_regresses for item in found) else EXIT_OK)


def _series_steps(case_glob, metric, threshold, db_path):
    """The history's series (of the cases matching ``case_glob``) with their fitted steps; none is an error."""
    from harness.spec.cases import REGIONS_BY_MODE
    from harness.execute.run_plan import parse_fraction
    from harness.report.history import stored_steps

    regions = sorted({region for regions in REGIONS_BY_MODE.values() for region in regions})
    if metric is not None and metric not in regions:
        raise click.BadParameter(f"{metric!r}: use one of {', '.join(regions)}", param_hint="--metric")
    return stored_steps(db_path, case_glob, metric, parse_fraction(threshold, "--threshold"))


if __name__ == "__main__":
    main()
