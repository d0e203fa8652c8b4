"""The one executor: a plan's cases run in this process, in rounds, on several devices, or as an interleaved A/B.

:func:`execute` runs a :class:`harness.execute.run_plan.RunPlan` into its results writer and says how it ended
(:class:`Outcome`); :func:`finish_run` writes the results file and decides the run's status and exit code
(:class:`RunEnding`); :func:`run_ab_session` does both for an :class:`harness.execute.run_plan.AbPlan` (``rnnbench ab``
and ``benchmarks/gate_calibration.py``). Every worker process is a :class:`harness.execute.worker_client.WorkerProcess`,
whose module states the one rule for a worker's environment.

Also the one place for signals: while cases run, SIGINT and SIGTERM raise KeyboardInterrupt
(:func:`stop_on_signals`), so a run stops after saving every finished case; while the results file is
written they are deferred (:func:`signals_deferred`). Progress reaches the caller as events
(:class:`CaseProgress`, :class:`WorkerStarted`, :class:`WorkerLost`) through ``on_progress``; nothing here
prints.
"""

from __future__ import annotations

import gc
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Mapping

from harness.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, RnnbenchError
from harness.execute.run_plan import AbPlan, IN_ROUNDS, ON_DEVICES, RunPlan
from harness.record.events import CaseProgress, WorkerLost, WorkerStarted  # noqa: F401 (the events it sends)

COMPLETE, INTERRUPTED = "complete", "interrupted"


@dataclass(frozen=True)
class Outcome:
    """How executing a plan ended: ``stopped_by`` None (every case ran), "interrupt" (Ctrl-C, SIGTERM),
    "error" (a journal that cannot be written, a worker that failed: ``failure`` says it), or "workers" (every
    ``--devices`` worker died with cases left: ``failure`` says why)."""

    stopped_by: str | None = None
    failure: str | None = None

    @property
    def status(self) -> str:
        return COMPLETE if self.stopped_by is None else INTERRUPTED


@dataclass(frozen=True)
class RunEnding:
    """A run once its results file is written: its status, what of the plan did not run, the exit code."""

    results: object  # harness.record.results.RunResults
    outcome: Outcome
    remaining: tuple  # planned cases not recorded

    @property
    def status(self) -> str:
        return self.results.status

    @property
    def exit_code(self) -> int:
        if self.outcome.stopped_by == "error":
            return EXIT_BAD_INPUT
        if self.outcome.stopped_by == "workers":
            return EXIT_FAILED
        if self.status == INTERRUPTED:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.results.counts()["failed"] else EXIT_OK


def open_writer(plan: RunPlan):
    """The results writer of a plan (its journal is created, its file locked)."""
    from harness.record.results import utc_now
    from harness.record.journal import ResultsWriter

    return ResultsWriter(plan.path, plan.environment, plan.suite.to_dict(), started_utc=utc_now(),
                         previous_cases=plan.previous_cases, options=plan.options, resuming=plan.resuming,
                         force=plan.force)


def execute(plan: RunPlan, writer, on_progress: Callable = lambda event: None) -> Outcome:
    """Run the plan's cases, each result into ``writer`` as it finishes; never raises for an interrupt, a
    journal that cannot be written or a worker that failed: the Outcome says so, and what finished is kept."""
    # torch's and the libraries' objects live as long as the process: keep the collections that the runner
    # makes around every case (about 0.1 s each with torch loaded) from walking them again and again
    gc.freeze()
    try:
        with stop_on_signals():
            if plan.how == IN_ROUNDS:
                _execute_rounds(plan, writer, on_progress)
            elif plan.how == ON_DEVICES:
                left = _execute_on_devices(plan, writer, on_progress)
                if left:
                    return Outcome("workers", f"every --devices worker died; {len(left)} cases were never started "
                                              f"(last: {left.reason})")
            else:
                _execute_in_process(plan, writer, on_progress)
    except KeyboardInterrupt:
        return Outcome("interrupt")
    except RnnbenchError as exc:  # the journal cannot be written (a full disk), a worker failed: keep what finished
        return Outcome("error", str(exc))
    return Outcome()


def finish_run(plan: RunPlan, writer, outcome: Outcome) -> RunEnding:
    """Write the results file (signals deferred) with the run's status: complete only when every planned case
    is recorded (a narrower --filter on resume runs part of the plan)."""
    from harness.record.results import utc_now

    recorded = {result.key for result in writer.cases} | set(writer.round_documents)
    remaining = tuple(case for case in plan.planned if case.key not in recorded)
    status = outcome.status if not remaining else INTERRUPTED
    with signals_deferred():
        results = writer.finish(status, finished_utc=utc_now())
    return RunEnding(results=results, outcome=outcome, remaining=remaining)


def _execute_in_process(plan: RunPlan, writer, on_progress) -> None:
    from harness.measure.runner import run_case

    total = len(plan.cases)
    for done, case in enumerate(plan.cases):
        on_progress(CaseProgress(done, total, case.key, finished=False))
        writer.append(run_case(case, plan.settings))
        on_progress(CaseProgress(done + 1, total, case.key))


def _execute_rounds(plan: RunPlan, writer, on_progress) -> None:
    """Each round in a fresh worker process, the cases in that round's order; results journaled as they come."""
    from harness.execute.rounds import run_round

    orders = plan.options.round_orders
    total, done = plan.progress_total, 0
    for index, order in enumerate(orders):
        def received(document, index=index):
            nonlocal done
            writer.append_round(index, document)
            done += 1
            on_progress(CaseProgress(done, total, f"round {index + 1}/{len(orders)} {document.get('key', '')}"))

        def started(environment, index=index):
            writer.record_round_machine_state(index, (environment or {}).get("machine_state"))
            on_progress(WorkerStarted(f"round {index + 1}", environment))

        run_round(index, plan.suite_path, plan.options.device, order, on_result=received, on_environment=started,
                  parent_environment=plan.environment, measure_peak=False, sets=plan.sets)


class _Left(list):
    """The keys no worker started, and the last reason a worker gave for dying."""

    reason = "no message"


def _execute_on_devices(plan: RunPlan, writer, on_progress) -> _Left:
    """One worker process per device, each handed the next case when it is free; the keys never started."""
    from harness.execute.devices import run_on_devices
    from harness.record.results import CaseResult, utc_now

    workers = plan.options.devices
    by_key = {case.key: case for case in plan.cases}
    total, done = len(plan.cases), 0
    left = _Left()

    def received(index, document):
        nonlocal done
        writer.record_device_of_case(document.get("key"), f"{workers[index].requested} (worker {index})")
        writer.append(CaseResult.from_dict(document))
        done += 1
        on_progress(CaseProgress(done, total, f"{workers[index].requested} {document.get('key', '')}"))

    def lost(index, key, reason):
        nonlocal done
        left.reason = reason
        if key is None:
            on_progress(WorkerLost(reason))
            return
        writer.append(CaseResult(case=by_key[key], status="failed", reason=reason, started_utc=utc_now()))
        done += 1
        on_progress(CaseProgress(done, total, f"{workers[index].requested} {key} (worker lost)"))

    def started(index, environment):
        on_progress(WorkerStarted(workers[index].requested, environment))

    left.extend(run_on_devices(plan.suite_path, [case.key for case in plan.cases], workers, on_environment=started,
                               on_result=received, on_lost=lost, parent_environment=plan.environment,
                               measure_peak=False, sets=plan.sets))
    return left


@dataclass(frozen=True)
class AbOutcome:
    """An A/B session once its files are written: each side's results (a side whose worker never started has
    none), and how it ended."""

    runs: Mapping  # side -> RunResults
    outcome: Outcome
    sides: tuple = ()  # every side of the plan

    @property
    def complete(self) -> bool:
        return self.outcome.stopped_by is None and len(self.runs) == len(self.sides)

    @property
    def exit_code(self) -> int | None:
        """2 when a worker failed or a journal could not be written, 130 when interrupted; None when complete
        (the comparison decides)."""
        if self.outcome.stopped_by == "error":
            return EXIT_BAD_INPUT
        return None if self.complete else EXIT_INTERRUPTED


def run_ab_session(plan: AbPlan, on_progress: Callable = lambda event: None) -> AbOutcome:
    """The rounds of an A/B, the sides taking turns (:func:`harness.execute.rounds.run_interleaved_round`). Each side's
    results file is opened when its first worker says where it runs (that environment is the file's), and
    every file is finished, whatever happened."""
    from harness.record.results import utc_now
    from harness.execute.rounds import run_interleaved_round
    from harness.record.journal import ResultsWriter

    writers: dict = {}
    total, done = plan.progress_total, 0
    outcome = Outcome()
    try:
        with stop_on_signals():
            for index, order in enumerate(plan.orders):
                def received(side, document, index=index):
                    nonlocal done
                    writers[side].append_round(index, document)
                    done += 1
                    on_progress(CaseProgress(done, total, f"round {index + 1}/{plan.rounds} {side.upper()} "
                                                          f"{document.get('key', '')}"))

                def started(side, environment, index=index):
                    if side not in writers:
                        writers[side] = ResultsWriter(plan.path_for(side), environment, plan.suite.to_dict(),
                                                      started_utc=utc_now(), options=plan.options_for(side),
                                                      force=plan.force)
                    writers[side].record_round_machine_state(index, (environment or {}).get("machine_state"))
                    on_progress(WorkerStarted(f"round {index + 1} {side.upper()}", environment, side=side))

                run_interleaved_round(index, plan.suite_path, plan.device, order, plan.interpreters,
                                      blocks=plan.blocks, on_result=received, on_environment=started)
    except KeyboardInterrupt:
        outcome = Outcome("interrupt")
    except RnnbenchError as exc:  # a worker died, or a journal cannot be written: keep what finished
        outcome = Outcome("error", str(exc))
    with signals_deferred():
        runs = {side: writer.finish(outcome.status, finished_utc=utc_now()) for side, writer in writers.items()}
    return AbOutcome(runs=runs, outcome=outcome, sides=tuple(plan.sides))


@contextmanager
def signals_deferred():
    """While a results file is written, a second Ctrl-C or SIGTERM does not cut the writing short."""
    handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@contextmanager
def stop_on_signals():
    """Ctrl-C (SIGINT) and SIGTERM raise KeyboardInterrupt: the run stops after saving every finished case.

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


@dataclass(frozen=True)
class ProfileEnding:
    """A profile once its file is written: the document, how it ended, the exit code."""

    document: Mapping
    outcome: Outcome

    @property
    def status(self) -> str:
        return self.outcome.status

    @property
    def records(self) -> list:
        return list(self.document.get("cases") or ())

    @property
    def exit_code(self) -> int:
        if self.outcome.stopped_by == "error":
            return EXIT_BAD_INPUT
        if self.status == INTERRUPTED:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if any(record.get("status") == "failed" for record in self.records) else EXIT_OK


def open_profile_writer(plan):
    """The profile's writer (:class:`harness.record.profile_file.ProfileWriter`: its journal created now) and, with
    traces, their folder; ResultsFileError, nothing left behind, when either cannot be created."""
    from harness.record.results import utc_now
    from harness.errors import ResultsFileError
    from harness.record.profile_file import ProfileWriter
    from harness.record.results_store import STORE

    writer = ProfileWriter(plan.path, plan.environment, plan.suite.to_dict(), dict(plan.options), utc_now())
    if plan.trace:
        traces = STORE.trace_path(plan.path, "-").parent
        try:
            traces.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            writer.discard()
            raise ResultsFileError(f"{traces}: cannot create the folder for the traces: {exc.strerror or exc}") from None
    return writer


def execute_profile(plan, writer, on_progress: Callable = lambda event: None) -> Outcome:
    """Profile the plan's cases in this process (:mod:`harness.measure.profiling`), each record into ``writer`` as it
    finishes; Ctrl-C, SIGTERM or a journal that cannot be written stop it with every finished case kept."""
    from harness.errors import ResultsFileError
    from harness.measure.profiling import profile_case
    from harness.record.results_store import STORE

    try:
        with stop_on_signals():
            for done, case in enumerate(plan.cases):
                on_progress(CaseProgress(done, len(plan.cases), case.key, finished=False))
                trace_path = STORE.trace_path(plan.path, case.key) if plan.trace else None
                writer.append(profile_case(case, plan.settings, plan.profile_settings,
                                           str(trace_path) if trace_path else None))
                on_progress(CaseProgress(done + 1, len(plan.cases), case.key))
    except KeyboardInterrupt:
        return Outcome("interrupt")
    except ResultsFileError as exc:  # the journal cannot be written (a full disk): stop, keep what finished
        return Outcome("error", str(exc))
    return Outcome()


def finish_profile(writer, outcome: Outcome) -> ProfileEnding:
    """Write the profile file (signals deferred; if it cannot be written, an error naming the rescue)."""
    from harness.record.results import utc_now

    with signals_deferred():
        document = writer.finish(outcome.status, utc_now())
    return ProfileEnding(document=document, outcome=outcome)
