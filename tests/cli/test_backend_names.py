"""One list of backend names (harness.spec.backend_names.BACKENDS) behind --backend's help, the unknown-backend error
and docs/backends.md; the error adds the suite's own backends."""

import re
from pathlib import Path

from click.testing import CliRunner

from harness.cli import main
from harness.spec.suite import BACKENDS

DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "backends.md"


def docs_backend_names() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    paragraph = text[text.index("Every backend name rnnbench brings"):].split("\n\n", 1)[0]
    listed = paragraph[paragraph.index("):") + 2:paragraph.index("A suite adds")]
    return re.findall(r"`([a-z0-9_]+)`", listed)


def test_the_docs_list_the_backends_the_code_knows_in_its_order():
    assert docs_backend_names() == list(BACKENDS)


def test_the_help_of_backend_names_every_backend():
    result = CliRunner().invoke(main, ["list", "--help"], terminal_width=400)
    line = next(line for line in result.output.splitlines() if "--backend" in line)
    named = line.split("(repeatable):", 1)[1].split(", or one the suite adds", 1)[0]
    assert named.strip().split(", ") == list(BACKENDS)


def test_an_unknown_backend_is_refused_naming_every_backend_and_the_suites_own(tmp_path):
    suite = tmp_path / "mine.yaml"
    suite.write_text("name: mine\ndevice: cpu\ncustom_backends: {my_lstm: 'my_package.rnn:build'}\n"
                     "grid: {batch: 2, seq_len: 3, input_size: 4, hidden_size: 5}\n")
    result = CliRunner().invoke(main, ["list", str(suite), "--backend", "cudnnn"])
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "unknown backend 'cudnnn' (did you mean 'cudnn'?)" in message
    assert message.split("known: ", 1)[1].split(", ") == [*BACKENDS, "my_lstm"]
