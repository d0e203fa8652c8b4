"""Forged results files: a real small results file with one field changed to something hostile (another type,
a word no suite allows, a huge or negative count, a 5,000-digit integer, NaN, a key removed or added). Every
command that reads results files either works or refuses with one line and exit 2: never an internal error."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.helpers import cli, short_machine_window, suite_file

H100 = Path("/work/shared/gpu-runs/h100-2026-11-27")
HUGE_INTEGER = "9" * 5000  # json.loads refuses integers past Python's int-string limit (4300 digits)
HUGE = "__huge_integer__"


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    """Documents of real results files: shard 0/2 of a 4-case CPU run, the merge of its two shards, and (where
    they are on this machine) three cases of a real H100 run (GPU environment, telemetry)."""
    folder = tmp_path_factory.mktemp("forgeable")
    suite = suite_file(folder, name="forgeable", grid={"mode": ["forward_backward", "inference"]},
                       timing={"min_iters": 2, "max_iters": 3, "budget_s": 0.001, "profile_iters": 1})
    shards = []
    with short_machine_window():
        for index in range(2):
            out = folder / f"s{index}.json"
            done = cli("run", suite, "--out", out, "--quiet", "--shard", f"{index}/2")
            assert done.exit_code == 0, done.output
            shards.append(out)
    merged = folder / "merged.json"
    assert cli("merge", *shards, "-o", merged).exit_code == 0
    documents = [json.loads(shards[0].read_text()), json.loads(merged.read_text())]
    if (H100 / "reg-a.json").is_file():
        document = json.loads((H100 / "reg-a.json").read_text())
        document["cases"] = document["cases"][:3]
        documents.append(document)
    return documents


def paths_of(value, prefix=()):
    """Every place in the document (of a list, its first and last item only: samples are many)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, prefix + (key,))
    elif isinstance(value, list) and value:
        for index in sorted({0, len(value) - 1}):
            yield from paths_of(value[index], prefix + (index,))


WORDS = st.sampled_from(["rnn", "sideways", "cuda", "cpu", "cuda:99", "step", "forward", "complete", "ok", "",
                         "../x", "lstm", "float64", "mps", "a" * 300])
SCALARS = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.sampled_from([0, -1, 10**12, 2**63, HUGE])
           | st.floats(allow_nan=True, allow_infinity=True) | WORDS | st.text(max_size=6))
VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(WORDS, SCALARS, max_size=2)


@st.composite
def forged(draw, documents):
    base = draw(st.sampled_from(documents))
    document = copy.deepcopy(base)
    path = draw(st.sampled_from(list(paths_of(document))[1:]))
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
    value = None
    if action == "remove" and isinstance(parent, dict):
        del parent[path[-1]]
    elif action == "add" and isinstance(parent[path[-1]], dict):
        key, value = draw(WORDS), draw(VALUES)
        parent[path[-1]][key] = value
        path += (key,)
    else:
        action, value = "replace", draw(VALUES)
        parent[path[-1]] = value
    text = json.dumps(document)  # NaN and Infinity written as JSON's readers (Python's among them) take them
    return Forged(text.replace(f'"{HUGE}"', HUGE_INTEGER), f"{action} {'.'.join(map(str, path))} {repr(value)[:60]}",
                  base)


class Forged:
    def __init__(self, text: str, what: str, base: dict):
        self.text, self.what, self.base = text, what, base

    def __repr__(self):  # what was changed, not the whole document
        return f"Forged({self.what!r})"


def one_line_or_success(done, what):
    assert done.exit_code in (0, 1, 2), f"{what}: exit {done.exit_code}: {done.output}"
    if done.exit_code == 2:
        lines = done.stderr.strip().splitlines()
        assert "Traceback" not in done.stderr and lines[-1].startswith("rnnbench: error: "), f"{what}: {done.stderr}"
        # compare explains an environment refusal (a table of the differences) above its one error line
        explained = what.startswith("compare") and "ENVIRONMENTS DIFFER" in done.stderr
        assert len(lines) == 1 or explained, f"{what}: {done.stderr}"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_every_reader_works_or_refuses_a_forged_file_in_one_line(bases, tmp_path, data):
    document = data.draw(forged(bases))
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    forged_file, original = folder / "forged.json", folder / "original.json"
    forged_file.write_text(document.text)
    original.write_text(json.dumps(document.base))  # compare: the forged file against the file it was made from
    what = document.what
    readable = cli("export-pytest-benchmark", forged_file, "-o", folder / "bench.json")
    one_line_or_success(readable, f"export-pytest-benchmark ({what})")
    commands = [("compare", original, forged_file), ("compare", forged_file, original),
                ("merge", forged_file, "-o", folder / "merged.json"),
                ("history", "add", forged_file, "--db", folder / "history.sqlite")]
    if "not an rnnbench results file" not in readable.stderr and "must be" not in readable.stderr:
        # the file passes the reader's checks (or nearly): the commands that draw are worth their time
        commands += [("report", forged_file, "-o", folder / "report"),
                     ("plot", forged_file, "-o", folder / "plots")]
    for command in commands:
        one_line_or_success(cli(*command), f"{command[0]} ({what})")
