"""What a command will run, decided before anything runs: the policy of ``rnnbench run`` and ``rnnbench ab``.

:func:`plan_run` turns the options of ``rnnbench run`` into a :class:`RunPlan`: the suite opened on its device,
the cases planned and the ones to run now, how they run (in this process, in rounds, on several devices), the
results file and the :class:`harness.record.run_options.RunOptions` it records. It holds every rule of the options:
which combinations are refused (checked once, here), what ``--resume`` continues (the recorded selection,
shard and devices), and the shard. :func:`plan_ab` does the same for ``rnnbench ab`` (:class:`AbPlan`),
refusing unusable interpreter commands and results files that could not be written before any worker starts.
The executor (:mod:`harness.execute.executor`) runs a plan; nothing here prints or runs a case.
"""

from __future__ import annotations

import math
import shlex
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from harness.errors import ComparisonError, SuiteError, UsageError
from harness.record.run_options import AbSide, RunOptions, WorkerDevice
from harness.spec.shard import ShardSpec, parse_shard

MIN_AB_ROUNDS = 5
IN_PROCESS, IN_ROUNDS, ON_DEVICES = "in-process", "rounds", "devices"


@dataclass(frozen=True)
class RunPlan:
    """One ``rnnbench run``, decided: what runs, where, how, into which file."""

    suite_path: str | None  # None: a suite of --set alone
    opened: object  # harness.execute.session.OpenedSuite: the suite, its resolved device, its cases
    planned: tuple  # the cases of the run's plan (Case), in order: a resumed run's whole selection
    cases: tuple  # the cases to run now: the planned ones not finished (and inside a narrower --filter)
    settings: object  # harness.measure.runner.RunSettings
    options: RunOptions
    environment: Mapping  # this process's: the results file's
    path: Path
    previous_cases: tuple = ()  # a resumed run's finished cases (CaseResult)
    resuming: bool = False
    force: bool = False
    machine_state: object = None  # harness.record.machine_state.MachineState: who else used the machine as it started
    sets: tuple[str, ...] = ()  # --set KEY=VALUE overrides of the suite (its workers apply them too)

    @property
    def suite(self):
        return self.opened.suite

    @property
    def rounds(self) -> int:
        return self.options.round_count

    @property
    def progress_total(self) -> int:
        """How many case results the run will report: each case once, or once per round."""
        return sum(map(len, self.options.round_orders)) if self.rounds > 1 else len(self.cases)

    @property
    def how(self) -> str:
        """in-process, rounds (a fresh worker per round) or devices (a worker per device)."""
        return IN_ROUNDS if self.rounds > 1 else ON_DEVICES if self.options.devices else IN_PROCESS

    def to_dict(self) -> dict:
        return {"suite": self.opened.path, "device": self.opened.device_name, "how": self.how,
                "path": str(self.path), "resuming": self.resuming, "force": self.force,
                "planned": [case.key for case in self.planned], "cases": [case.key for case in self.cases],
                "previous_cases": [result.key for result in self.previous_cases], "options": self.options.to_dict()}


def plan_run(suite_path: str | None, *, device: str | None = None, out: str | None = None,
             backends: Sequence[str] = (), filters: Sequence[str] = (), resume_path: str | None = None,
             rounds: int | None = None, force: bool = False, nvtx: bool = False, shard_spec: str | None = None,
             devices: str | None = None, sets: Sequence[str] = ()) -> RunPlan:
    """The plan of ``rnnbench run`` from its options. Raises UsageError for options that do not go together,
    and the stages' own errors (a bad suite, device, shard, a run that cannot be resumed) otherwise."""
    from harness.measure.env import collect_environment, measured_peak
    from harness.record.machine_state import collect_machine_state
    from harness.record.resume import CARRIED_ON_RESUME, ResumeError, check_resumable, refuse_another_plan
    from harness.execute.session import apply_process_settings, open_suite
    from harness.record.results_store import STORE, read_results_or_journal

    if resume_path and out:
        raise UsageError("--resume writes to the results file it resumes; leave out --out")
    if devices is not None and device is not None:
        raise UsageError("--device and --devices: give one (--devices names every device a worker runs on)")
    previous = read_results_or_journal(resume_path) if resume_path else None
    recorded = previous.run_options if previous is not None else None
    if previous is not None:  # the recorded plan decides how it continues: --rounds and --nvtx must not change it
        nvtx = refuse_another_plan(previous, resume_path, rounds=rounds, nvtx=nvtx)
        rounds = 1  # as recorded (a suite's timing.rounds included): refuse_another_plan refuses the others
    if recorded is not None and devices is None and not device and rounds in (None, 1):
        if "devices" in recorded.extra:
            raise ResumeError(f"{resume_path}: options.devices is not a list of devices; start a new run")
        if recorded.devices:  # resumed as it ran: one worker per device it named
            devices = ",".join(worker.requested for worker in recorded.devices)
    workers = _parse_devices(devices) if devices is not None else None
    opened = open_suite(suite_path, device or (workers[0].requested if workers else None), sets=sets)
    rounds = rounds or opened.suite.timing.rounds
    refuse_combinations(rounds=rounds, workers=workers, nvtx=nvtx)
    opened.select(backends, filters)  # a selection that matches nothing is refused before anything is set
    precision_flags = apply_process_settings(opened.suite)
    environment = collect_environment(opened.device)
    environment["math_precision"] = precision_flags
    environment["measured_peak"] = measured_peak(opened.device, opened.suite.dtype)  # once: the workers do not
    state = collect_machine_state(environment)  # measured with the environment; said once the plan is accepted
    environment["machine_state"] = state.to_dict()
    now = None
    if previous is not None:
        check_resumable(previous, resume_path, opened.suite.to_dict(), environment)
        # The interrupted run's selection stays the plan; a --backend/--filter now only narrows what runs now.
        plan_backends, plan_filters = tuple(recorded.backends or ()), tuple(recorded.filters or ())
        shard = resumed_shard(recorded.shard, shard_spec)
        if backends or filters:
            now = {case.key for case in opened.select(backends, filters)}
        path = STORE.results_path_of(resume_path)
    else:
        plan_backends, plan_filters = tuple(backends), tuple(filters)
        shard = parse_shard(shard_spec) if shard_spec is not None else None
        path = STORE.new_results_path(out, opened.suite.name, opened.device.type)
    planned = opened.select(plan_backends, plan_filters)
    if shard is not None:
        from harness.spec.shard import shard_cases

        planned = shard_cases(planned, shard, opened.suite.timing)
    previous_cases = previous.cases if previous is not None else ()  # every case it recorded is finished
    done = {result.key for result in previous_cases}
    cases = tuple(case for case in planned if case.key not in done and (now is None or case.key in now))
    options = RunOptions(device=str(opened.device), backends=plan_backends, filters=plan_filters, shard=shard,
                         devices=tuple(workers) if workers else None, nvtx=nvtx,
                         # a resumed run keeps where its finished cases ran
                         device_of_case=recorded.device_of_case if workers and recorded is not None else None)
    if recorded is not None:  # and what it carries beside the plan (where a merged file came from)
        options = replace(options, **{name: getattr(recorded, name) for name in CARRIED_ON_RESUME})
    settings = opened.settings()
    if nvtx:
        settings = replace(settings, nvtx=True)
    if rounds > 1:
        from harness.execute.rounds import round_order

        keys = [case.key for case in cases]
        options = replace(options, rounds=rounds, planned_order=keys,
                          round_orders=[round_order(keys, opened.suite.seed, index) for index in range(rounds)])
    return RunPlan(suite_path=suite_path, opened=opened, planned=tuple(planned), cases=cases, settings=settings,
                   options=options, environment=environment, path=Path(path), previous_cases=tuple(previous_cases),
                   resuming=previous is not None, force=force, machine_state=state, sets=tuple(sets))


def refuse_combinations(*, rounds: int, workers: Sequence[WorkerDevice] | None, nvtx: bool) -> None:
    """The options of ``rnnbench run`` that do not go together (``rounds``: the option's, else the suite's; a
    resumed run's are its recorded plan's, :func:`harness.record.resume.refuse_another_plan`)."""
    if rounds > 1 and workers:
        raise UsageError("--devices with rounds (--rounds or the suite's timing.rounds) is not supported: rounds run "
                         "one process after another")
    if rounds > 1 and nvtx:
        raise UsageError("--nvtx is not supported with rounds yet; profile one round")


def resumed_shard(recorded: ShardSpec | Mapping | None, spec: str | None) -> ShardSpec | None:
    """A resumed run keeps its shard; a --shard given with --resume must name the same one."""
    if isinstance(recorded, Mapping):
        recorded = ShardSpec(recorded["index"], recorded["count"])
    if spec is not None and parse_shard(spec) != recorded:
        raise UsageError(f"--shard {spec}: the run being resumed was "
                         f"{'shard ' + str(recorded) if recorded else 'not a shard'}; leave out --shard")
    return recorded


def _parse_devices(text: str) -> list[WorkerDevice]:
    from harness.execute.devices import parse_devices

    return parse_devices(text)


@dataclass(frozen=True)
class AbPlan:
    """One ``rnnbench ab`` session (or the calibration benchmark's, with more sides), decided."""

    suite_path: str
    opened: object  # harness.execute.session.OpenedSuite
    cases: tuple
    rounds: int
    blocks: int
    interpreters: Mapping[str, tuple[str, ...]]  # side -> the interpreter command, split
    sides: Mapping[str, AbSide]
    options: RunOptions  # what every side's file records, less its side
    folder: Path
    force: bool = False
    orders: tuple[tuple[str, ...], ...] = field(default=())

    @property
    def suite(self):
        return self.opened.suite

    @property
    def device(self) -> str:
        """The device every side opens (this process resolved it)."""
        return str(self.opened.device)

    @property
    def progress_total(self) -> int:
        return len(self.sides) * self.rounds * len(self.cases)

    def path_for(self, side: str) -> Path:
        return self.folder / f"{side}.json"

    def options_for(self, side: str) -> RunOptions:
        return replace(self.options, ab_side=self.sides[side])

    def to_dict(self) -> dict:
        return {"suite": str(self.suite_path), "device": self.device, "rounds": self.rounds, "blocks": self.blocks,
                "folder": str(self.folder), "force": self.force,
                "interpreters": {side: list(command) for side, command in self.interpreters.items()},
                "options": {side: self.options_for(side).to_dict() for side in self.sides}}


def plan_ab(suite_path: str, interpreters: Mapping[str, str], *, rounds: int | None = None, blocks: int = 4,
            device: str | None = None, backends: Sequence[str] = (), filters: Sequence[str] = (),
            out_dir: str | Path = "results/ab", force: bool = False, same_code_ok: bool = False,
            seed: int | None = None) -> AbPlan:
    """The plan of an A/B: ``interpreters`` maps each side ("a", "b") to its interpreter command as typed.
    Everything that would refuse the session is checked here, before a worker starts or a file is created.
    ``seed``: of the rounds' orders (default: the suite's)."""
    from harness.execute.rounds import round_order
    from harness.execute.session import open_suite
    from harness.record.journal import ResultsWriter

    commands = {side: parse_interpreter(text, f"--{side}") for side, text in interpreters.items()}
    opened = open_suite(suite_path, device)
    cases = opened.select(backends, filters)
    rounds = rounds or max(MIN_AB_ROUNDS, opened.suite.timing.rounds)
    folder = Path(out_dir)
    for side in commands:
        ResultsWriter.check_target(folder / f"{side}.json", force=force)
    keys = [case.key for case in cases]
    orders = tuple(tuple(round_order(keys, opened.suite.seed if seed is None else seed, index))
                   for index in range(rounds))
    session = uuid.uuid4().hex
    sides = {side: AbSide(session=session, side=side, blocks=blocks, interpreter=text, same_code_ok=same_code_ok)
             for side, text in interpreters.items()}
    options = RunOptions(device=str(opened.device), backends=tuple(backends), filters=tuple(filters), rounds=rounds,
                         round_orders=orders, planned_order=keys)
    return AbPlan(suite_path=suite_path, opened=opened, cases=tuple(cases), rounds=rounds, blocks=blocks,
                  interpreters=commands, sides=sides, options=options, folder=folder, force=force, orders=orders)


def parse_interpreter(text: str, option: str) -> tuple[str, ...]:
    """An interpreter command as typed ('venv-a/bin/python', "env PYTHONPATH=wt-a python") -> its words;
    SuiteError, one line, for one that cannot be a command."""
    try:
        words = tuple(shlex.split(str(text)))
    except ValueError as exc:
        raise SuiteError(f"{option} {text!r}: not a command line ({str(exc).lower()}); quote it as a shell "
                         f"would") from None
    if not words:
        raise SuiteError(f"{option} {text!r}: name an interpreter, e.g. {option} venv-a/bin/python")
    return words


def parse_fraction(text: str | float, option: str, *, allow_zero: bool = True, upper: float | None = None) -> float:
    """'5%' or '0.05' -> 0.05. A bare number must be below 1 (a bare 5 is ambiguous: 5 % or 500 %?)."""
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


# The gate's fractions: a threshold may be 0 (every significant slowdown counts); a significance level is in (0, 1).
GATE_FRACTIONS = {"--threshold": {}, "--alpha": {"allow_zero": False, "upper": 1.0}}


def gate_option(option: str, text: str | float) -> float:
    """``--threshold`` or ``--alpha`` of the gate's commands (``rnnbench history``'s --threshold too) as a fraction."""
    return parse_fraction(text, option, **GATE_FRACTIONS[option])


def gate_settings(threshold: str, alpha: str) -> tuple[float, float]:
    """``--threshold`` and ``--alpha`` of the gate's commands."""
    return gate_option("--threshold", threshold), gate_option("--alpha", alpha)



@dataclass(frozen=True)
class ProfilePlan:
    """One ``rnnbench profile``, decided: the cases, their settings, the profile file and its traces."""

    suite_path: str
    opened: object  # harness.execute.session.OpenedSuite
    cases: tuple
    settings: object  # harness.measure.runner.RunSettings
    profile_settings: object  # harness.measure.profiling.ProfileSettings
    environment: Mapping
    path: Path
    options: Mapping  # what the profile file records: device, backends, filters, steps, nvtx, trace
    machine_state: object = None  # harness.record.machine_state.MachineState

    @property
    def suite(self):
        return self.opened.suite

    @property
    def trace(self) -> bool:
        return bool(self.options.get("trace"))

    def to_dict(self) -> dict:
        return {"suite": self.opened.path, "path": str(self.path), "cases": [case.key for case in self.cases],
                "options": dict(self.options)}


def plan_profile(suite_path: str | None, *, device: str | None = None, backends: Sequence[str] = (),
                 filters: Sequence[str] = (), out_dir: str | None = None, steps: int = 10, trace: bool = False,
                 nvtx: bool = False, sets: Sequence[str] = ()) -> ProfilePlan:
    """The plan of ``rnnbench profile``."""
    from harness.measure.env import collect_environment
    from harness.record.machine_state import collect_machine_state
    from harness.measure.profiling import ProfileSettings
    from harness.execute.session import apply_process_settings, open_suite
    from harness.record.results_store import STORE

    opened = open_suite(suite_path, device, sets=sets)
    cases = opened.select(backends, filters)
    path = STORE.new_profile_path(out_dir, opened.suite.name, opened.device.type)  # refused there if taken: its writer
    flags = apply_process_settings(opened.suite)  # first: the environment records the suite's threads
    environment = collect_environment(opened.device)
    environment["math_precision"] = flags
    state = collect_machine_state(environment)  # said once the profile's output is accepted
    environment["machine_state"] = state.to_dict()
    options = {"device": str(opened.device), "backends": list(backends), "filters": list(filters), "steps": steps,
               "nvtx": nvtx, "trace": trace}
    return ProfilePlan(suite_path=suite_path, opened=opened, cases=tuple(cases), settings=opened.settings(),
                       profile_settings=ProfileSettings(steps=steps, nvtx=nvtx), environment=environment,
                       path=Path(path), options=options, machine_state=state)
