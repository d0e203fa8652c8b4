"""How ``rnnbench`` ends: every way a command ends (one line, an exit code) and a stdout whose reader has gone.
The CLI (:mod:`harness.cli`) uses these; a run's progress and warnings are the reporter's
(:mod:`harness.report.progress`); the other stages never print."""

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
    """Every way a command can end, as an exit code (harness.errors) and at most one line on stderr, never a
    traceback (RNNBENCH_DEBUG=1 shows a bug's). A closed stdout (``| head``) ends nothing: output stops, the
    command finishes and exits with its own code."""

    command_class = Command
    group_class = type

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if sys.stdout is sys.__stdout__ and sys.stdout is not None:
            from harness.report.progress import QuietWhenClosed

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


class OutOption(click.Option):
    """An option with earlier spellings (``old``, e.g. ``--output``) that it still reads and no longer shows."""

    def __init__(self, param_decls, old: tuple[str, ...] = (), **attrs):
        super().__init__(param_decls, **attrs)
        self.old = tuple(old)

    def _shown(self, method, ctx):
        opts, self.opts = self.opts, [name for name in self.opts if name not in self.old]
        try:
            return method(ctx)
        finally:
            self.opts = opts

    def get_help_record(self, ctx):
        return self._shown(super().get_help_record, ctx)

    def get_error_hint(self, ctx):
        return self._shown(super().get_error_hint, ctx)


def fraction(ctx, param, value) -> float:
    """The callback of the gate's fraction options (--threshold, --alpha: '5%' or 0.05), by the gate's rules."""
    from harness.execute.run_plan import gate_option

    return gate_option(f"--{param.name}", value)


def echo_lines(lines, err: bool = False) -> None:
    for line in lines:
        click.echo(str(line), err=err)


def options(*decorators):
    """Options that go together (--device, --backend, --filter), as one decorator."""
    def decorate(function):
        for decorator in reversed(decorators):
            function = decorator(function)
        return function
    return decorate


def examples(*command_lines: str) -> str:
    """A command's ``--help`` epilog: command lines that run as shown (tests/cli/test_help_examples.py runs them
    through the parser), printed as written."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in command_lines)


def fail(message: str, code: int, prefix: str = "rnnbench: error: ") -> None:
    click.echo(f"{prefix}{one_line(message)}", err=True)
    sys.exit(code)


def one_line(text: str) -> str:
    return " ".join(str(text).split())
