"""What rnnbench shows while it works: a run's progress and the warnings said while it runs, on stderr (the
reporter's side of the executor's events, :mod:`harness.record.events`), and a stdout whose reader may go."""

from __future__ import annotations

import os
import sys

import click

from harness.record.events import CaseProgress, WorkerLost, WorkerStarted


class Progress:
    """The progress of a run on stderr: click's bar on a terminal, else (a log, CI) a plain line per finished
    case; nothing with --quiet. Worker events: a busy machine warned about once, a lost worker named."""

    def __init__(self, total: int, quiet: bool, busy_once=None, label: str = "running"):
        self._bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True, hidden=quiet,
                                      item_show_func=lambda label: label)
        self._plain = not quiet and not sys.stderr.isatty()
        self._busy_once = busy_once
        self._sides: dict = {}

    def __enter__(self):
        self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def __call__(self, event) -> None:
        if isinstance(event, CaseProgress):
            self._bar.update(1 if event.finished else 0, event.label)
            if self._plain and event.finished:
                click.echo(f"  {event.done}/{event.total} {event.label}", err=True)
        elif isinstance(event, WorkerStarted) and self._busy_once is not None:
            self._busy_once(event.environment, event.where)
        elif isinstance(event, WorkerLost):
            click.echo(f"\nrnnbench: WARNING: {event.reason}", err=True)


def warn_about_machine(state, where: str) -> None:
    from harness.record.machine_state import busy_line

    line = busy_line([(where, state)])
    if line:
        click.echo(f"rnnbench: WARNING: {line}; its timings measure the other work too", err=True)
    for note in state.notes:
        click.echo(f"rnnbench: note: {note}", err=True)


class BusyOnce:
    """Warns of the first busy round (or A/B side) a run meets, then stays quiet: the results keep each one."""

    def __init__(self, warned: bool = False):
        self.warned = warned

    def __call__(self, environment: dict | None, where: str) -> None:
        from harness.record.machine_state import MachineState

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
            warn_about_machine(state, where)


class SameCodeOnce(BusyOnce):
    """An A/B's warnings as its sides start: a busy machine once, and an A/A not asked for once."""

    def __init__(self, same_code_ok: bool):
        super().__init__()
        self._same_code_ok, self._environments = same_code_ok, {}

    def __call__(self, environment: dict | None, where: str, side: str | None = None) -> None:
        from harness.gate.compare import same_code_warning, same_folders
        from harness.record.results import Environment

        if side is not None and side not in self._environments:
            self._environments[side] = Environment(environment)
            sides = list(self._environments.values())
            if len(sides) == 2 and not self._same_code_ok and same_folders(*sides):
                click.echo(f"\nrnnbench: WARNING: {same_code_warning(sides[0], sides_took_turns=True)}", err=True)
        super().__call__(environment, where)


class AbProgress(Progress):
    def __call__(self, event) -> None:
        if isinstance(event, WorkerStarted):
            self._busy_once(event.environment, event.where, event.side)
        else:
            super().__call__(event)


class QuietWhenClosed:
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
