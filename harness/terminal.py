"""How ``rnnbench`` talks to the terminal: every way a command ends (one line, an exit code), a stdout whose
reader has gone, the progress of a run, and the warnings said while it runs. The CLI (:mod:`harness.cli`) uses
these; the stages never print."""

from __future__ import annotations

import os
import sys

import click

from harness.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, RnnbenchError, UsageError


class Command(click.Command):
    """A command whose option rules (harness.execute.run_plan's UsageError) are said as click's usage errors: one line that
    points at the command's --help."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise click.UsageError(str(exc), ctx) from None


class Group(click.Group):
    """Every way a command can end, as an exit code and at most one line on stderr, never a traceback.

    0 success, 1 a case failed (run) or a regression (compare), 2 unusable input (the project's own errors,
    usage errors, files that cannot be read or written), 3 an internal error (a bug: RNNBENCH_DEBUG=1 shows
    its traceback), 130 interrupted. A closed stdout (``| head``) ends nothing: output stops, the command
    finishes and exits with its own code.
    """

    command_class = Command
    group_class = type

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if sys.stdout is sys.__stdout__ and sys.stdout is not None:
            sys.stdout = QuietWhenClosed(sys.stdout)
        try:
            super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help())
            sys.exit(EXIT_BAD_INPUT)
        except click.UsageError as exc:
            command = f" {exc.ctx.command_path.split(' ', 1)[-1]}" if exc.ctx and " " in exc.ctx.command_path else ""
            fail(f"{exc.format_message()} (see: rnnbench{command} --help)", EXIT_BAD_INPUT)
        except (click.exceptions.Abort, KeyboardInterrupt):
            fail("interrupted", EXIT_INTERRUPTED, prefix="rnnbench: ")
        except click.ClickException as exc:
            fail(exc.format_message(), EXIT_BAD_INPUT)
        except RnnbenchError as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        except RecursionError:
            fail("input nested too deeply to read", EXIT_BAD_INPUT)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", EXIT_BAD_INPUT)
        except Exception as exc:  # a bug: say it in one line; the traceback is one variable away
            if os.environ.get("RNNBENCH_DEBUG"):
                raise
            fail(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''} "
                  f"(set RNNBENCH_DEBUG=1 for the traceback)", EXIT_INTERNAL, prefix="rnnbench: internal error: ")
        sys.exit(EXIT_OK)


def fail(message: str, code: int, prefix: str = "rnnbench: error: ") -> None:
    click.echo(f"{prefix}{one_line(message)}", err=True)
    sys.exit(code)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


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
        from harness.execute.executor import CaseProgress, WorkerLost, WorkerStarted

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
        from harness.execute.executor import WorkerStarted

        if isinstance(event, WorkerStarted):
            self._busy_once(event.environment, event.where, event.side)
        else:
            super().__call__(event)
