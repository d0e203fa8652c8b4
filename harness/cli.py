"""The ``rnnbench`` command. It wires the stages together and is, with the reporter, the only place that
prints. Exit codes: 0 success, 1 a case failed (run) / a regression (compare), 2 unusable input,
3 an internal error, 130 interrupted (the finished cases are saved)."""

from __future__ import annotations

import dataclasses
import gc
import json
import math
import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from harness.errors import RnnbenchError
from harness.limits import MAX_PROFILE_ITERS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Group(click.Group):
    """Every way a command can end, as an exit code and at most one line on stderr, never a traceback.

    0 success, 1 a case failed (run) or a regression (compare), 2 unusable input (the project's own errors,
    usage errors, files that cannot be read or written), 3 an internal error (a bug: RNNBENCH_DEBUG=1 shows
    its traceback), 130 interrupted. A closed stdout (``| head``) ends nothing: output stops, the command
    finishes and exits with its own code.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if sys.stdout is sys.__stdout__ and sys.stdout is not None:
            sys.stdout = _QuietWhenClosed(sys.stdout)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            sys.exit(EXIT_BAD_INPUT)
        except click.UsageError as exc:
            command = f" {exc.ctx.command_path.split(' ', 1)[-1]}" if exc.ctx and " " in exc.ctx.command_path else ""
            _fail(f"{exc.format_message()} (see: rnnbench{command} --help)", EXIT_BAD_INPUT)
        except (click.exceptions.Abort, KeyboardInterrupt):
            _fail("interrupted", EXIT_INTERRUPTED, prefix="rnnbench: ")
        except click.ClickException as exc:
            _fail(exc.format_message(), EXIT_BAD_INPUT)
        except RnnbenchError as exc:
            _fail(str(exc), EXIT_BAD_INPUT)
        except RecursionError:
            _fail("input nested too deeply to read", EXIT_BAD_INPUT)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}", EXIT_BAD_INPUT)
        except Exception as exc:  # a bug: say it in one line; the traceback is one variable away
            if os.environ.get("RNNBENCH_DEBUG"):
                raise
            _fail(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''} "
                  f"(set RNNBENCH_DEBUG=1 for the traceback)", EXIT_INTERNAL, prefix="rnnbench: internal error: ")
        sys.exit(EXIT_OK)


def _fail(message: str, code: int, prefix: str = "rnnbench: error: ") -> None:
    click.echo(f"{prefix}{_one_line(message)}", err=True)
    sys.exit(code)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _QuietWhenClosed:
    """stdout that, once its reader has gone (``rnnbench ... | head``), drops further output instead of
    raising BrokenPipeError, so the command still finishes and exits with its own code."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_devnull()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_devnull()

    def _to_devnull(self):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    from harness.flops import forward_flops

    from harness.session import open_suite

    opened = open_suite(suite_path, device)
    suite, resolved = opened.suite, opened.device
    cases = opened.select(backends, filters)
    for case in cases:
        click.echo(f"{case.key}  ({forward_flops(case) / 1e9:.3g} GFLOP forward)")
    click.echo(f"{len(cases)} cases of suite '{suite.name}' on {resolved}")


@main.command()
@click.argument("suite_path", metavar="SUITE")
@DEVICE_OPTION
def validate(suite_path, device):
    """Check SUITE (format, values, device and dtype on this machine) without running it."""
    from harness.session import open_suite

    opened = open_suite(suite_path, device)
    suite, resolved, cases = opened.suite, opened.device, opened.cases
    click.echo(f"{suite_path}: ok: suite '{suite.name}', {len(cases)} cases on {resolved}")


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
    from harness.env import collect_environment, measured_peak, utc_now
    from harness.report.answer import answer_text
    from harness.report.text import summary_table, warnings_lines
    from harness.results import Environment
    from harness.runner import run_case
    from harness.session import apply_process_settings
    from harness.journal import ResultsWriter
    from harness.results_store import STORE

    from harness.session import open_suite

    worker_devices = _worker_devices(devices, device, rounds)
    opened = open_suite(suite_path, device or (worker_devices[0].requested if worker_devices else None))
    suite, resolved = opened.suite, opened.device
    opened.select(backends, filters)  # a selection that matches nothing is refused before anything is set
    precision_flags = apply_process_settings(suite)
    environment = collect_environment(resolved)
    environment["math_precision"] = precision_flags
    environment["measured_peak"] = measured_peak(resolved, suite.dtype)
    # measured now, with the environment; warned about once the plan is accepted, so a refusal stays one line
    machine_state = _machine_state(environment, "the run", warn=False)
    environment["machine_state"] = machine_state.to_dict()
    previous_cases: tuple = ()
    if resume_path:
        from harness.results import thaw
        from harness.resume import CARRIED_ON_RESUME, load_for_resume, refuse_another_plan

        if out:
            raise click.UsageError("--resume writes to the results file it resumes; leave out --out")
        previous = load_for_resume(resume_path, suite.to_dict(), environment)
        nvtx = refuse_another_plan(previous, resume_path, rounds=rounds, nvtx=nvtx)
        rounds = 1  # as recorded (a suite's timing.rounds included): refuse_another_plan refuses the others
        carried = {key: thaw(previous.options[key]) for key in CARRIED_ON_RESUME if key in previous.options}
        # The interrupted run's selection stays the plan; a --backend/--filter now only narrows what runs now.
        plan_backends = tuple(previous.options.get("backends", ()))
        plan_filters = tuple(previous.options.get("filters", ()))
        planned = opened.select(plan_backends, plan_filters)
        shard = _resumed_shard(previous.options.get("shard"), shard_spec)
        if worker_devices is None and previous.options.get("devices") and not device and rounds in (None, 1):
            # resumed as it ran: one worker per device it named
            recorded = previous.options["devices"]
            names = [str(d.get("device")) for d in recorded if hasattr(d, "get")] if isinstance(recorded, tuple) else []
            worker_devices = _worker_devices(",".join(names), None, rounds)  # junk there: one line, exit 2
        now = set(case.key for case in opened.select(backends, filters)) if backends or filters else None
        previous_cases = previous.cases  # every case it recorded (ok, failed or skipped) is finished
        path = STORE.results_path_of(resume_path)
    else:
        plan_backends, plan_filters = backends, filters
        planned = opened.select(backends, filters)
        carried = {}
        now = None
        shard = _parse_shard(shard_spec)
        path = STORE.new_results_path(out, suite.name, resolved.type)
    if shard is not None:
        from harness.shard import shard_cases

        planned = shard_cases(planned, shard, suite.timing)
    done = {result.key for result in previous_cases}
    cases = [case for case in planned if case.key not in done and (now is None or case.key in now)]
    settings = opened.settings()
    options = {"device": str(resolved), "backends": list(plan_backends), "filters": list(plan_filters), **carried}
    if shard is not None:
        options["shard"] = shard.to_dict()
    if worker_devices:
        # a resumed run keeps where its finished cases ran
        ran_on = previous.options.get("device_of_case") if resume_path else None
        options.update(devices=[worker.to_dict() for worker in worker_devices],
                       device_of_case=dict(ran_on) if hasattr(ran_on, "items") else {})
    rounds = rounds or suite.timing.rounds
    if nvtx:
        if rounds > 1:
            raise click.UsageError("--nvtx is not supported with rounds yet; profile one round")
        settings = dataclasses.replace(settings, nvtx=True)
        options["nvtx"] = True
    if rounds > 1:
        from harness.rounds import round_order

        if worker_devices:
            raise click.UsageError("--devices with rounds (--rounds or the suite's timing.rounds) is not supported: "
                                   "rounds run one process after another")
        orders = [round_order([case.key for case in cases], suite.seed, index) for index in range(rounds)]
        options.update(rounds=rounds, round_orders=orders, planned_order=[case.key for case in cases])
    writer = ResultsWriter(path, environment, suite.to_dict(), started_utc=utc_now(),
                           previous_cases=previous_cases, options=options, resuming=bool(resume_path), force=force)
    hardware = Environment(environment).hardware_name
    resumed = f" ({len(previous_cases)} already finished)" if resume_path else ""
    resumed += f" (shard {shard})" if shard is not None else ""
    _warn_about_machine(machine_state, "the run")
    click.echo(f"rnnbench: {len(cases)} cases of suite '{suite.name}'{resumed} on {resolved} ({hardware}, "
               f"{suite.dtype}, {suite.precision}); journal: {writer.journal_path}", err=True)
    # torch's and the libraries' objects live as long as the process: keep the collections that the runner
    # makes around every case (about 0.1 s each with torch loaded) from walking them again and again
    gc.freeze()
    status, journal_failure = "complete", None
    try:
        if rounds > 1:
            _run_rounds(writer, options["round_orders"], suite_path, device, quiet)
        elif worker_devices:
            _run_on_devices(writer, cases, suite_path, worker_devices, quiet)
        else:
            with _stop_on_signals(), click.progressbar(
                    cases, label="running", file=sys.stderr, show_pos=True, hidden=quiet,
                    item_show_func=lambda case: case.key if case else "") as progress:
                for case in progress:
                    writer.append(run_case(case, settings))
    except KeyboardInterrupt:
        status = "interrupted"
    except RnnbenchError as exc:  # the journal cannot be written (a full disk): stop, keep what finished
        status, journal_failure = "interrupted", str(exc)
    recorded = {result.key for result in writer.cases} | set(writer.round_documents)
    remaining = [case for case in planned if case.key not in recorded]
    if status == "complete" and remaining:
        status = "interrupted"  # a narrower --filter on resume ran part of the plan: the run is not complete
    with _signals_deferred():
        results = writer.finish(status, finished_utc=utc_now())
    click.echo(summary_table(results))
    for line in warnings_lines(results):
        click.echo(line)
    if results.cases:
        click.echo(answer_text(results))
    click.echo(f"results: {path}")
    if journal_failure:
        click.echo(f"rnnbench: error: {journal_failure}; the run stopped; {len(results.cases)} finished cases "
                   f"saved to {path}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if status == "interrupted":
        how = (f"continue with: rnnbench run {suite_path} --resume {path}" if rounds == 1 else
               "a run in rounds cannot be resumed: run it again")
        click.echo(f"rnnbench: interrupted, not complete: {len(remaining)} planned cases not run; "
                   f"{len(results.cases)} finished cases saved to {path}; {how}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_FAILED if results.counts()["failed"] else EXIT_OK)


def _machine_state(environment: dict, where: str, warn: bool = True):
    """Who else uses the machine as this process starts (harness.machine_state), warned about once: here, or
    by the caller once its input is accepted (``warn=False``)."""
    from harness.machine_state import collect_machine_state

    state = collect_machine_state(environment)
    if warn:
        _warn_about_machine(state, where)
    return state


def _warn_about_machine(state, where: str) -> None:
    from harness.machine_state import busy_line

    line = busy_line([(where, state)])
    if line:
        click.echo(f"rnnbench: WARNING: {line}; its timings measure the other work too", err=True)
    for note in state.notes:
        click.echo(f"rnnbench: note: {note}", err=True)


class _BusyOnce:
    """Warns of the first busy round (or A/B side) a run meets, then stays quiet: the results keep each one."""

    def __init__(self, warned: bool = False):
        self.warned = warned

    def __call__(self, environment: dict | None, where: str) -> None:
        from harness.machine_state import MachineState

        recorded = (environment or {}).get("machine_state")
        if self.warned or recorded is None:
            return
        try:
            state = MachineState.from_dict(recorded)
        except ValueError:  # another rnnbench's record (one side of an A/B): the writer leaves it out too
            return
        if state.busy:
            self.warned = True
            click.echo("", err=True)  # off the progress bar's line
            _warn_about_machine(state, where)


def _worker_devices(devices, device, rounds):
    if devices is None:
        return None
    from harness.devices import parse_devices

    if device is not None:
        raise click.UsageError("--device and --devices: give one (--devices names every device a worker runs on)")
    if rounds and rounds > 1:
        raise click.UsageError("--devices with --rounds is not supported: rounds run one process after another")
    return parse_devices(devices)


def _run_on_devices(writer, cases, suite_path: str, worker_devices, quiet: bool) -> None:
    """One worker process per device, each handed the next case when it is free; one progress bar, one journal."""
    from harness.devices import run_on_devices
    from harness.environment_diff import environment_differences
    from harness.errors import SuiteError
    from harness.results import CaseResult, RunResults

    by_key = {case.key: case for case in cases}
    here = RunResults(environment=writer.environment, suite=writer.suite, cases=())

    def started(index, environment):
        blocking = [d for d in environment_differences(here, RunResults(environment=environment, suite=writer.suite,
                                                                        cases=())) if d.blocking]
        if blocking:
            raise SuiteError(f"--devices: the worker on {worker_devices[index].requested} runs in another environment "
                             f"({', '.join(f'{d.label}: {d.baseline} -> {d.current}' for d in blocking)}); "
                             f"one results file holds one environment: run each kind of device on its own")

    with _stop_on_signals(), click.progressbar(length=len(cases), label="running", file=sys.stderr, show_pos=True,
                                               hidden=quiet) as progress:
        def received(index, document):
            writer.options["device_of_case"][document.get("key")] = f"{worker_devices[index].requested} (worker {index})"
            writer.append(CaseResult.from_dict(document))
            progress.update(1, f"{worker_devices[index].requested} {document.get('key', '')}")

        def lost(index, key, reason):
            if key is None:
                click.echo(f"\nrnnbench: WARNING: {reason}", err=True)
                return
            from harness.env import utc_now

            writer.append(CaseResult(case=by_key[key], status="failed", reason=reason, started_utc=utc_now()))
            progress.update(1, f"{worker_devices[index].requested} {key} (worker lost)")

        run_on_devices(suite_path, [case.key for case in cases], worker_devices, on_environment=started,
                       on_result=received, on_lost=lost)


def _parse_shard(spec):
    if spec is None:
        return None
    from harness.shard import parse_shard

    return parse_shard(spec)


def _resumed_shard(recorded, spec):
    """A resumed run keeps its shard; a --shard given with --resume must name the same one."""
    from harness.shard import ShardSpec

    shard = ShardSpec(recorded["index"], recorded["count"]) if recorded else None
    if spec is not None and _parse_shard(spec) != shard:
        raise click.UsageError(f"--shard {spec}: the run being resumed was {'shard ' + str(shard) if shard else 'not a shard'}; "
                               f"leave out --shard")
    return shard


def _run_rounds(writer, orders: list[list[str]], suite_path: str, device: str | None, quiet: bool) -> None:
    """Each round in a fresh worker process, the cases in that round's order; results journaled as they come."""
    from harness.rounds import run_round

    total = sum(len(order) for order in orders)
    with _stop_on_signals(), click.progressbar(length=total, label="running", file=sys.stderr, show_pos=True,
                                               hidden=quiet) as progress:
        warn = _BusyOnce(warned=bool(writer.environment.get("machine_state", {}).get("busy")))
        for index, order in enumerate(orders):
            def received(document, index=index):
                writer.append_round(index, document)
                progress.update(1, f"round {index + 1}/{len(orders)} {document.get('key', '')}")

            def started(environment, index=index):
                writer.record_round_machine_state(index, (environment or {}).get("machine_state"))
                warn(environment, f"round {index + 1}")

            run_round(index, suite_path, device, order, on_result=received, on_environment=started)


DEFAULT_AB_BLOCKS = 4


@main.command()
@click.argument("suite_path", metavar="SUITE")
@click.option("--a", "python_a", required=True, metavar="PYTHON_A",
              help="The baseline's interpreter, e.g. venv-a/bin/python (a command line: 'env PYTHONPATH=wt-a python').")
@click.option("--b", "python_b", required=True, metavar="PYTHON_B", help="The current side's interpreter.")
@click.option("--rounds", type=click.IntRange(2, 50), default=None, metavar="R",
              help="Rounds per side (default: the suite's timing.rounds, at least 5).")
@click.option("--blocks", type=click.IntRange(1, 50), default=DEFAULT_AB_BLOCKS, show_default=True, metavar="K",
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
    import shlex
    import uuid

    from harness.compare import compare_runs, same_code_warning, same_folders
    from harness.env import utc_now
    from harness.report.answer import ab_verdict_text
    from harness.report.compare_text import render_markdown, render_text
    from harness.results import Environment
    from harness.rounds import round_order, run_interleaved_round
    from harness.session import open_suite
    from harness.journal import ResultsWriter
    from harness.results_io import write_text

    threshold_value, alpha_value = _gate_settings(threshold, alpha)
    opened = open_suite(suite_path, device)
    cases = opened.select(backends, filters)
    rounds = rounds or max(5, opened.suite.timing.rounds)
    interpreters = {"a": shlex.split(python_a), "b": shlex.split(python_b)}
    keys = [case.key for case in cases]
    orders = [round_order(keys, opened.suite.seed, index) for index in range(rounds)]
    folder = Path(out_dir)
    writers: dict[str, ResultsWriter] = {}
    session = uuid.uuid4().hex
    options = {"device": device, "backends": list(backends), "filters": list(filters), "rounds": rounds,
               "round_orders": orders, "planned_order": keys}

    def writer_for(side: str, environment: dict) -> None:
        if side not in writers:
            interleaved = {"session": session, "side": side, "blocks": blocks}
            if same_code_ok:
                interleaved["same_code_ok"] = True
            writers[side] = ResultsWriter(folder / f"{side}.json", environment, opened.suite.to_dict(),
                                          started_utc=utc_now(), options={**options, "interleaved": interleaved,
                                                                          "interpreter": python_a
                                                                          if side == "a" else python_b},
                                          force=force)
            sides = [Environment(writer.environment) for writer in writers.values()]
            if len(sides) == 2 and not same_code_ok and same_folders(*sides):
                click.echo(f"\nrnnbench: WARNING: {same_code_warning(sides[0], sides_took_turns=True)}", err=True)

    plural = "s" if len(cases) != 1 else ""
    click.echo(f"rnnbench: A/B of {len(cases)} case{plural} of suite '{opened.suite.name}', {rounds} rounds, "
               f"{blocks} alternating blocks per case; A: {python_a}; B: {python_b}", err=True)
    status, failure = "complete", None
    try:
        with _stop_on_signals(), click.progressbar(length=2 * rounds * len(cases), label="running",
                                                   file=sys.stderr, show_pos=True, hidden=quiet) as progress:
            warn = _BusyOnce()
            for index, order in enumerate(orders):
                def received(side, document, index=index):
                    writers[side].append_round(index, document)
                    progress.update(1, f"round {index + 1}/{rounds} {side.upper()} {document.get('key', '')}")

                def started(side, environment, index=index):
                    writer_for(side, environment)
                    writers[side].record_round_machine_state(index, (environment or {}).get("machine_state"))
                    warn(environment, f"round {index + 1} {side.upper()}")

                run_interleaved_round(index, suite_path, device, order, interpreters, blocks=blocks,
                                      on_result=received, on_environment=started)
    except KeyboardInterrupt:
        status = "interrupted"
    except RnnbenchError as exc:  # a worker died, or a journal cannot be written: keep what finished
        status, failure = "interrupted", str(exc)
    with _signals_deferred():
        runs = {side: writer.finish(status, finished_utc=utc_now()) for side, writer in writers.items()}
    if failure:
        kept = f"what finished is in {folder}" if runs else "nothing was measured"
        click.echo(f"rnnbench: error: {failure}; {kept}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if status == "interrupted" or len(runs) < 2:
        click.echo(f"rnnbench: interrupted; what finished is in {folder}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    comparison = compare_runs(runs["a"], runs["b"], threshold=threshold_value, alpha=alpha_value,
                              labels=("A", "B"))
    if markdown:
        write_text(folder / "comparison.md", render_markdown(comparison))
    click.echo(render_text(comparison))
    click.echo(ab_verdict_text(comparison))
    sys.exit(EXIT_FAILED if comparison.failed else EXIT_OK)


@contextmanager
def _signals_deferred():
    """While the results file is written, a second Ctrl-C or SIGTERM does not cut the writing short."""
    handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@contextmanager
def _stop_on_signals():
    """Ctrl-C (SIGINT) and SIGTERM stop the run after saving every finished case.

    SIGINT is set explicitly: a process started in the background by a shell inherits it ignored.
    """

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, on_sigterm)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@main.command()
@click.option("--device", default="auto", metavar="DEVICE", help="Which device to describe.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def env(device, as_json):
    """Describe this machine: Python, torch and its libraries, CPU, GPU, and who else is using it."""
    from harness.env import collect_environment, resolve_device
    from harness.errors import SuiteError
    from harness.machine_state import collect_machine_state

    try:
        resolved = resolve_device(device)
    except ValueError as exc:
        raise SuiteError(f"--device: {exc}") from None
    environment = collect_environment(resolved)
    environment["machine_state"] = collect_machine_state(environment).to_dict()
    if as_json:
        click.echo(json.dumps(environment, indent=2))
        return
    gpu_state = environment.pop("gpu_state", None)
    for line in _flatten(environment):
        click.echo(line)
    if gpu_state is not None:
        for line in _gpu_state_lines(gpu_state):
            click.echo(line)


def _gpu_state_lines(state: dict):
    """The GPU's state (NVML) for ``rnnbench env``: one line per GPU fact, a WARNING per intruder."""
    if not state.get("available"):
        yield f"gpu_state: {state.get('reason', 'NVML unavailable')}"
        return
    yield (f"gpu_state: driver {state.get('driver', '?')}, NVML {state.get('nvml_version', '?')}, "
           f"{len(state.get('gpus', []))} GPU(s)")
    for gpu in state.get("gpus", []):
        where = f"gpu_state.{gpu.get('nvml_index', '?')}"
        yield f"{where}: {gpu.get('name', '?')} {gpu.get('uuid', '')}".rstrip()
        if gpu.get("found_by"):
            yield f"{where}.found_by: {gpu['found_by']}"

        def pair(now, top, unit, top_label="max"):
            if gpu.get(now) is None:
                return "absent"
            return f"{gpu[now]:g} {unit}" + (f" ({top_label} {gpu[top]:g} {unit})" if gpu.get(top) is not None else "")

        yield f"{where}.sm_clock: {pair('sm_clock_mhz', 'sm_clock_max_mhz', 'MHz')}"
        yield f"{where}.mem_clock: {pair('mem_clock_mhz', 'mem_clock_max_mhz', 'MHz')}"
        yield f"{where}.power: {pair('power_draw_w', 'power_limit_w', 'W', 'limit')}"
        for key, label in (("persistence_mode", "persistence_mode"), ("mig_mode", "mig_mode"),
                           ("temperature_c", "temperature_c"), ("clock_event_reasons", "clock_event_reasons")):
            value = gpu.get(key, "absent")
            yield f"{where}.{label}: {', '.join(value) or 'none' if isinstance(value, list) else value}"
        processes = gpu.get("processes")
        if processes is None:
            yield f"{where}.processes: absent"
        else:
            listed = ", ".join(f"pid {p['pid']} ({_mib(p.get('used_memory_bytes'))})" for p in processes)
            yield f"{where}.processes: {listed or 'none'}"
        for key, reason in (gpu.get("absent") or {}).items():
            yield f"{where}.{key}: absent ({reason})"
    for warning in state.get("warnings", []):
        yield f"WARNING: {warning}"


def _mib(value) -> str:
    return "memory unknown" if value is None else f"{value / 2**20:.0f} MiB"


def _flatten(value, prefix: str = ""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield f"{prefix}: {value}"


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
    from harness.compare import compare_runs
    from harness.errors import ComparisonError
    from harness.report.compare_text import (render_environment_refusal, render_markdown,
                                             render_markdown_refusal, render_text)
    from harness.results_io import write_text
    from harness.results_store import read_results

    threshold_value, alpha_value = _gate_settings(threshold, alpha)
    baseline, current = read_results(baseline_path), read_results(current_path)
    comparison = compare_runs(baseline, current, metric=metric, threshold=threshold_value, alpha=alpha_value)
    blocking = comparison.blocking_differences
    if blocking and not allow_env_mismatch:
        if markdown_path:
            write_text(markdown_path, render_markdown_refusal(comparison, "--allow-env-mismatch"),
                       inputs=(baseline_path, current_path))
        click.echo(render_environment_refusal(comparison), err=True)
        raise ComparisonError(f"refusing to compare runs of different environments "
                              f"({', '.join(d.label for d in blocking)}); refresh the baseline on this machine "
                              f"or pass --allow-env-mismatch")
    if markdown_path:  # first: a Markdown file that cannot be written must not follow a printed verdict
        write_text(markdown_path, render_markdown(comparison), inputs=(baseline_path, current_path))
    click.echo(render_text(comparison))
    sys.exit(EXIT_FAILED if comparison.failed else EXIT_OK)


def _gate_settings(threshold: str, alpha: str) -> tuple[float, float]:
    return (parse_fraction(threshold, "--threshold"),
            parse_fraction(alpha, "--alpha", allow_zero=False, upper=1.0))


def parse_fraction(text: str | float, option: str, *, allow_zero: bool = True, upper: float | None = None) -> float:
    """'5%' or '0.05' -> 0.05. A bare number must be below 1 (a bare 5 is ambiguous: 5 % or 500 %?)."""
    from harness.errors import ComparisonError

    raw = str(text).strip()
    percent = raw.endswith("%")
    number = raw[:-1].strip() if percent else raw
    try:
        value = float(number)
    except ValueError:
        raise ComparisonError(f"{option} {text!r}: not a number; write e.g. 5% or 0.05") from None
    if not math.isfinite(value):
        raise ComparisonError(f"{option} {text!r}: must be a finite number")
    if percent:
        value /= 100.0
    elif value >= 1:
        raise ComparisonError(f"{option} {text!r}: a bare number must be a fraction below 1; "
                              f"write {value:g}% for a percentage")
    if value < 0 or (value == 0 and not allow_zero):
        raise ComparisonError(f"{option} {text!r}: must be {'at least' if allow_zero else 'above'} 0")
    if upper is not None and value >= upper:
        raise ComparisonError(f"{option} {text!r}: must be below {upper:g}")
    return value


@main.command("export-pytest-benchmark")
@click.argument("results_path", metavar="RESULTS")
@click.option("-o", "--output", required=True, metavar="FILE", help="The pytest-benchmark JSON file to write.")
@click.option("--metric", default=None, metavar="REGION",
              help="Timed region to export: step, forward or backward. Default: each case's primary region.")
def export_pytest_benchmark(results_path, output, metric):
    """Write RESULTS in pytest-benchmark's JSON format (times in seconds), for `pytest-benchmark compare`."""
    from harness.errors import ResultsFileError
    from harness.export_pytest_benchmark import to_pytest_benchmark
    from harness.results_io import refuse_overwriting, write_json_atomically
    from harness.results_store import read_results

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
    from harness.results_store import STORE

    if results_path:
        from harness.results_store import read_results

        environment = read_results(results_path).environment
    else:
        from harness.env import gpu_info, machine_info, resolve_device
        from harness.errors import SuiteError

        try:
            resolved = resolve_device(device)
        except ValueError as exc:
            raise SuiteError(f"--device: {exc}") from None
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
    from harness.env import collect_environment, utc_now
    from harness.errors import ResultsFileError
    from harness.profile_file import ProfileWriter, profile_from_document
    from harness.profiling import ProfileSettings, profile_case
    from harness.report.profile_text import profile_text
    from harness.session import apply_process_settings, open_suite
    from harness.results_store import STORE

    opened = open_suite(suite_path, device)
    suite, resolved = opened.suite, opened.device
    cases = opened.select(backends, filters)
    path = STORE.new_profile_path(out_dir, suite.name, resolved.type)
    flags = apply_process_settings(suite)  # first: the environment records the suite's threads, not torch's default
    environment = collect_environment(resolved)
    environment["math_precision"] = flags
    machine_state = _machine_state(environment, "the profile", warn=False)  # warned once the output is accepted
    environment["machine_state"] = machine_state.to_dict()
    settings = opened.settings()
    options = ProfileSettings(steps=steps, nvtx=nvtx)
    # before any case: a path that cannot be written fails now, not after the last case
    writer = ProfileWriter(path, environment, suite.to_dict(),
                           {"device": str(resolved), "backends": list(backends), "filters": list(filters),
                            "steps": steps, "nvtx": nvtx, "trace": trace}, utc_now())
    if trace:
        traces = STORE.trace_path(path, "-").parent
        try:
            traces.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            writer.discard()
            raise ResultsFileError(f"{traces}: cannot create the folder for the traces: {exc.strerror or exc}") from None
    _warn_about_machine(machine_state, "the profile")
    click.echo(f"rnnbench: profiling {len(cases)} cases of suite '{suite.name}' on {resolved}, {steps} steps each; "
               f"journal: {writer.journal_path}", err=True)
    status, journal_failure = "complete", None
    try:
        with _stop_on_signals(), click.progressbar(cases, label="profiling", file=sys.stderr, show_pos=True,
                                                   hidden=quiet,
                                                   item_show_func=lambda c: c.key if c else "") as progress:
            for case in progress:
                trace_path = STORE.trace_path(path, case.key) if trace else None
                writer.append(profile_case(case, settings, options, str(trace_path) if trace_path else None))
    except KeyboardInterrupt:
        status = "interrupted"
    except ResultsFileError as exc:  # the journal cannot be written (a full disk): stop, keep what finished
        status, journal_failure = "interrupted", str(exc)
    with _signals_deferred():
        document = writer.finish(status, utc_now())  # or, if it cannot be written, an error naming the rescue
    click.echo(profile_text(profile_from_document(document, str(path))))
    click.echo(f"profile: {path}")
    if journal_failure:
        click.echo(f"rnnbench: error: {journal_failure}; the profile stopped; {len(writer.records)} finished cases "
                   f"saved to {path}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    if status == "interrupted":
        click.echo(f"rnnbench: interrupted; {len(writer.records)} finished cases saved to {path}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_FAILED if any(r["status"] == "failed" for r in writer.records) else EXIT_OK)


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
    from harness.report.render import filter_runs, plot as draw, write_charts
    from harness.results_store import STORE, read_runs

    threshold_value, alpha_value = _gate_settings(threshold, alpha)
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
    from harness.profile_file import read_results_and_profiles
    from harness.report.render import filter_profiles, filter_runs, write_report
    from harness.results_store import STORE

    threshold_value, alpha_value = _gate_settings(threshold, alpha)
    runs, profiles = read_results_and_profiles(results_paths)  # profile files: rnnbench profile's
    runs, profiles = filter_runs(runs, filters) if runs else runs, filter_profiles(profiles, filters)
    left_out = []
    for path in write_report(runs, out_dir or STORE.reports_dir, threshold=threshold_value, alpha=alpha_value,
                             profiles=profiles, left_out=left_out):
        click.echo(str(path))
    for chart in left_out:
        click.echo(f"rnnbench: chart not drawn: {chart.name}: {chart.left_out} (the report says so)", err=True)


# --- scale-out: shards and their merge (harness/shard.py, harness/merge.py) ---

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
    from harness.merge import merge_runs
    from harness.results_io import refuse_overwriting, write_results
    from harness.results_store import read_runs

    target = refuse_overwriting(output, inputs=results_paths, force=force)
    merged = merge_runs(read_runs(results_paths), allow_env_mismatch=allow_env_mismatch)
    for source, difference in merged.environment_differences:
        click.echo(f"rnnbench: WARNING: {source}: {difference.label} {difference.baseline} -> {difference.current} "
                   f"(merged with --allow-env-mismatch)", err=True)
    write_results(target, merged.run)
    if merged.missing_shards:
        click.echo(f"rnnbench: WARNING: shards {', '.join(f'{i}/{merged.shard_count}' for i in merged.missing_shards)}"
                   f" missing: the merged file is marked interrupted", err=True)
    elif merged.missing_cases:
        click.echo(f"rnnbench: WARNING: {merged.missing_cases} planned cases in no input: the merged file is marked "
                   f"interrupted", err=True)
    if merged.plan_unknown:
        click.echo(f"rnnbench: WARNING: {_one_line(merged.plan_unknown)}; the cases it plans cannot be listed, so the "
                   f"merged file is marked interrupted", err=True)
    counts = merged.run.counts()
    click.echo(f"{output}: {len(merged.run.cases)} cases from {len(results_paths)} files ({counts['ok']} ok, "
               f"{counts['failed']} failed, {counts['skipped']} skipped), {merged.run.status}")


# --- history: runs kept over time in SQLite, trend charts, step detection (harness/history.py) ---

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
    from harness.env import utc_now
    from harness.history import History, prepare_runs
    from harness.results_store import STORE, read_runs

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
    from harness.history import History
    from harness.report.history import detect, series_lines, step_lines, trend_charts
    from harness.results_io import write_files
    from harness.results_store import STORE

    threshold_value = parse_fraction(threshold, "--threshold")
    with History(db_path or STORE.history_path, create=False) as store:
        found = [detect(series, threshold_value) for series in store.series(case_glob, _region(metric))]
    if not found:
        raise _history_error(f"no ok case{' matches ' + case_glob if case_glob else ''} in the history")
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
    from harness.history import History
    from harness.report.history import detect, step_lines
    from harness.results_store import STORE

    threshold_value = parse_fraction(threshold, "--threshold")
    with History(db_path or STORE.history_path, create=False) as store:
        found = [detect(series, threshold_value) for series in store.series(case_glob, _region(metric))]
    if not found:
        raise _history_error(f"no ok case{' matches ' + case_glob if case_glob else ''} in the history")
    regressed = [item for item in found if item.latest_step_regresses]
    for item in found:
        if item.steps:
            click.echo(f"{item.series.key}  [{item.series.region}; {item.series.environment_label}]")
            for line in step_lines(item):
                click.echo(line)
    stepped = sum(1 for item in found if item.steps)
    click.echo(f"{len(found)} series, {stepped} with steps; latest step a regression in {len(regressed)}"
               + (": " + ", ".join(item.series.key for item in regressed) if regressed else ""))
    sys.exit(EXIT_FAILED if regressed else EXIT_OK)


def _region(metric):
    from harness.cases import REGIONS_BY_MODE

    regions = sorted({region for regions in REGIONS_BY_MODE.values() for region in regions})
    if metric is not None and metric not in regions:
        raise click.BadParameter(f"{metric!r}: use one of {', '.join(regions)}", param_hint="--metric")
    return metric


def _history_error(message):
    from harness.history import HistoryError

    return HistoryError(message)


if __name__ == "__main__":
    main()
