"""The ``rnnbench`` command. It wires the stages together and is, with the reporter, the only place that
prints. Exit codes: 0 success, 1 a case failed (run) / a regression (compare), 2 unusable input,
130 interrupted (the finished cases are saved)."""

from __future__ import annotations

import json
import signal
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click

from harness.errors import RnnbenchError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Group(click.Group):
    """Turns the project's own errors into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RnnbenchError as exc:
            click.echo(f"rnnbench: error: {exc}", err=True)
            ctx.exit(EXIT_BAD_INPUT)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnbench")
def main():
    """Benchmark LSTM and GRU in PyTorch across cuDNN, TorchScript, torch.compile and gate-level cells."""


def _load(suite_path: str, device_option: str | None):
    """Suite -> device -> cases: the shared first half of run, list and validate."""
    from harness.cases import expand_cases
    from harness.env import check_device_supports, resolve_device
    from harness.errors import SuiteError
    from harness.suite import load_suite

    suite = load_suite(suite_path)
    requested = device_option or suite.device
    try:
        device = resolve_device(requested)
        check_device_supports(device, suite.dtype)
    except ValueError as exc:
        where = "--device" if device_option else f"{suite_path}: device"
        raise SuiteError(f"{where}: {exc}") from None
    return suite, device, expand_cases(suite, device.type)


def _select(cases, backends, filters, suite_path):
    from harness.cases import select_cases
    from harness.errors import SuiteError

    selected = select_cases(cases, backends, filters)
    if not selected:
        raise SuiteError(f"{suite_path}: no case matches the --backend/--filter selection "
                         f"({len(cases)} cases in the suite)")
    return selected


BACKEND_OPTION = click.option("--backend", "backends", multiple=True, metavar="NAME",
                              help="Only these backends (repeatable): cudnn, eager, torchscript, compile, "
                                   "compile_module.")
FILTER_OPTION = click.option("--filter", "filters", multiple=True, metavar="AXIS=V[,V]|GLOB",
                             help="Only cases with these axis values (e.g. cell=lstm, hidden_size=256,512) or "
                                  "whose key matches a glob. Repeatable; all must match.")
DEVICE_OPTION = click.option("--device", default=None, metavar="DEVICE",
                             help="Override the suite's device: auto, cpu, cuda, cuda:N.")


@main.command("list")
@click.argument("suite_path", metavar="SUITE")
@DEVICE_OPTION
@BACKEND_OPTION
@FILTER_OPTION
def list_cases(suite_path, device, backends, filters):
    """Print the cases SUITE expands to, without running them."""
    from harness.flops import forward_flops

    suite, resolved, cases = _load(suite_path, device)
    cases = _select(cases, backends, filters, suite_path)
    for case in cases:
        click.echo(f"{case.key}  ({forward_flops(case) / 1e9:.3g} GFLOP forward)")
    click.echo(f"{len(cases)} cases of suite '{suite.name}' on {resolved}")


@main.command()
@click.argument("suite_path", metavar="SUITE")
@DEVICE_OPTION
def validate(suite_path, device):
    """Check SUITE (format, values, device and dtype on this machine) without running it."""
    suite, resolved, cases = _load(suite_path, device)
    click.echo(f"{suite_path}: ok: suite '{suite.name}', {len(cases)} cases on {resolved}")


@main.command()
@click.argument("suite_path", metavar="SUITE")
@DEVICE_OPTION
@click.option("--out", "out", default=None, metavar="PATH",
              help="Results file (*.json) or folder for it. Default: results/<suite>-<device>-<time>.json")
@BACKEND_OPTION
@FILTER_OPTION
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(suite_path, device, out, backends, filters, quiet):
    """Time every case of SUITE and write a results file."""
    from harness.env import collect_environment, utc_now
    from harness.precision import apply_math_precision
    from harness.report.text import summary_table
    from harness.results import ResultsWriter
    from harness.runner import RunSettings, run_case

    suite, resolved, cases = _load(suite_path, device)
    cases = _select(cases, backends, filters, suite_path)
    precision_flags = apply_math_precision(suite.precision)
    environment = collect_environment(resolved)
    environment["math_precision"] = precision_flags
    settings = RunSettings(device=resolved, precision=suite.precision, seed=suite.seed,
                           timing=suite.timing, telemetry=suite.telemetry)
    path = _results_path(out, suite.name, resolved.type)
    writer = ResultsWriter(path, environment, suite.to_dict(), started_utc=utc_now())
    click.echo(f"rnnbench: {len(cases)} cases of suite '{suite.name}' on {resolved} "
               f"({environment['gpu']['name'] if environment['gpu'] else environment['machine']['cpu']['brand_raw']}, "
               f"{suite.dtype}, {suite.precision}); journal: {writer.journal_path}", err=True)
    status = "complete"
    try:
        with _stop_on_sigterm(), click.progressbar(
                cases, label="running", file=sys.stderr, show_pos=True, hidden=quiet,
                item_show_func=lambda case: case.key if case else "") as progress:
            for case in progress:
                writer.append(run_case(case, settings))
    except KeyboardInterrupt:
        status = "interrupted"
    results = writer.finish(status, finished_utc=utc_now())
    click.echo(summary_table(results))
    click.echo(f"results: {path}")
    if status == "interrupted":
        click.echo(f"rnnbench: interrupted; {len(results.cases)} finished cases saved to {path}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_FAILED if results.counts()["failed"] else EXIT_OK)


def _results_path(out: str | None, suite_name: str, device_type: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    default_name = f"{suite_name}-{device_type}-{stamp}.json"
    if out is None:
        return Path("results") / default_name
    path = Path(out)
    return path if path.suffix == ".json" else path / default_name


@contextmanager
def _stop_on_sigterm():
    """SIGTERM stops the run like Ctrl-C does: the finished cases are saved before exiting."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
@click.option("--device", default="auto", metavar="DEVICE", help="Which device to describe.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def env(device, as_json):
    """Describe this machine: Python, torch and its libraries, CPU, GPU."""
    from harness.env import collect_environment, resolve_device
    from harness.errors import SuiteError

    try:
        resolved = resolve_device(device)
    except ValueError as exc:
        raise SuiteError(f"--device: {exc}") from None
    environment = collect_environment(resolved)
    if as_json:
        click.echo(json.dumps(environment, indent=2))
        return
    for line in _flatten(environment):
        click.echo(line)


def _flatten(value, prefix: str = ""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield f"{prefix}: {value}"


if __name__ == "__main__":
    main()
