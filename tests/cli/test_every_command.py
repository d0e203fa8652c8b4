"""Every command of the rnnbench group, walked: one spelling for its output (-o/--out, earlier spellings still
read and not shown) and examples in its --help that the parser accepts, naming suites that exist."""

import shlex
from pathlib import Path

import click
import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
# The commands that write no file or folder of their own: what they print is what they make.
PRINT_ONLY = {
    "list": "prints the cases",
    "validate": "prints ok or the problem",
    "env": "prints the environment",
    "baseline-path": "prints a path",
    "compare": "prints the verdict; --markdown FILE asks for a copy in Markdown as well",
    "history add": "adds to the database that --db names, which every history command reads",
    "history regressions": "prints the steps",
}
OLD_SPELLINGS = {"export-pytest-benchmark": "--output", "merge": "--output"}


def walk(group: click.Group = main, prefix: tuple = ()):
    """(name, command) of every command and group under ``group``, the group itself first."""
    yield " ".join(prefix) or "rnnbench", group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from walk(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), command


COMMANDS = [(name, command) for name, command in walk() if not isinstance(command, click.Group)]


def parse(words: list[str]) -> click.Context:
    """The context ``rnnbench WORDS`` would run with, the command not run: types, ranges, required options and
    the option callbacks checked as a real call checks them."""
    assert words[0] == "rnnbench", words
    command, words, name = main, words[1:], "rnnbench"
    while isinstance(command, click.Group):
        name, words = words[0], words[1:]
        command = command.commands[name]
    return command.make_context(name, list(words))


def example_lines(command: click.Command) -> list[str]:
    return [line.strip() for line in (command.epilog or "").splitlines() if line.strip().startswith("rnnbench ")]


def test_every_command_is_walked_and_classified():
    names = {name for name, _ in COMMANDS}
    assert {"run", "list", "validate", "history show", "merge"} <= names
    assert set(PRINT_ONLY) <= names, set(PRINT_ONLY) - names


@pytest.mark.parametrize("name, command", COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_command_that_writes_names_its_output_with_o_and_out(name, command):
    spellings = [param.opts for param in command.params if isinstance(param, click.Option)]
    takes_out = any("-o" in opts and "--out" in opts for opts in spellings)
    assert takes_out != (name in PRINT_ONLY), (name, spellings)


@pytest.mark.parametrize("name, old", sorted(OLD_SPELLINGS.items()))
def test_an_earlier_spelling_of_the_output_is_still_read_and_no_longer_shown(name, old):
    command = main.commands[name]
    assert parse(["rnnbench", name, "in.json", old, "written.json"]).params["out"] == "written.json"
    assert parse(["rnnbench", name, "in.json", "-o", "written.json"]).params["out"] == "written.json"
    shown = command.get_help(click.Context(command, info_name=name))
    assert old not in shown and "-o, --out" in shown


@pytest.mark.parametrize("name, command", list(walk()), ids=[name for name, _ in walk()])
def test_every_help_shows_examples_that_parse_and_name_suites_that_exist(name, command):
    lines = example_lines(command)
    assert lines, f"{name}: no example in --help"
    shown = command.get_help(click.Context(command, info_name=name))
    for line in lines:
        assert line in shown, f"{name}: the example is rewrapped in --help: {line}"
        words = shlex.split(line)
        if not isinstance(command, click.Group):
            assert " ".join(words[1:]).startswith(name), f"{name}: an example of another command: {line}"
        parse(words)
        for word in words:
            if word.startswith("suites/"):
                assert (ROOT / word).is_file(), f"{name}: {line}: no {word}"
