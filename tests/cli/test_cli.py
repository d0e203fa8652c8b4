"""The command line as a user meets it: real (tiny) suites. One run goes through a real subprocess (``python -m
harness.cli``, the installed entry point's module); the others, and the commands that stop before running anything
(list, env, input refused), run in this process through the same entry point: the same wiring, without paying for
another interpreter and torch import each time."""

import json
import subprocess
import sys

import pytest

from tests.helpers import rnnbench_here, suite_file

pytestmark = pytest.mark.usefixtures("short_machine_window")  # the commands run in this process

THREE_BACKENDS = {"backend": ["cudnn", "eager", "torchscript"]}


def rnnbench(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


@pytest.fixture
def tiny_suite(tmp_path):
    return suite_file(tmp_path, "tiny.yaml", grid=THREE_BACKENDS)


def test_run_writes_a_results_file_and_prints_a_summary(tiny_suite, tmp_path):
    out = tmp_path / "results" / "tiny.json"
    done = rnnbench("run", tiny_suite, "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert document["status"] == "complete"
    assert document["counts"] == {"ok": 6, "failed": 0, "skipped": 0}
    assert document["environment"]["math_precision"]["requested"] == "fp32"
    assert document["environment"]["threads"]["intra_op"] == 1 == document["suite"]["threads"]
    assert document["environment"]["torch"]["version"]
    assert document["suite"]["name"] == "tiny"
    assert "6 cases: 6 ok, 0 failed, 0 skipped" in done.stdout
    assert "Traceback" not in done.stderr
    assert not (out.parent / "tiny.json.journal").exists()


def test_run_with_backend_and_filter_selection(tiny_suite, tmp_path):
    out = tmp_path / "r.json"
    done = rnnbench_here("run", tiny_suite, "--out", out, "--quiet", "--backend", "eager", "--filter", "cell=gru")
    assert done.returncode == 0, done.stderr
    keys = [case["key"] for case in json.loads(out.read_text())["cases"]]
    assert keys == ["gru/eager/forward_backward/B2-T3-I4-H4-L1/float32/cpu"]


def test_out_folder_gets_a_named_file(tiny_suite, tmp_path):
    done = rnnbench_here("run", tiny_suite, "--out", tmp_path / "folder", "--quiet", "--backend", "cudnn")
    assert done.returncode == 0, done.stderr
    [written] = (tmp_path / "folder").glob("tiny-cpu-*.json")
    assert json.loads(written.read_text())["counts"]["ok"] == 2


def test_list_prints_the_expanded_cases_without_running(tiny_suite):
    done = rnnbench_here("list", tiny_suite)
    assert done.returncode == 0, done.stderr
    assert "lstm/torchscript/forward_backward/B2-T3-I4-H4-L1/float32/cpu" in done.stdout
    assert "6 cases of suite 'tiny' on cpu" in done.stdout


def test_env_describes_the_machine():
    done = rnnbench_here("env", "--json")
    assert done.returncode == 0, done.stderr
    environment = json.loads(done.stdout)
    assert environment["torch"]["version"] and environment["machine"]["cpu"]["count"]


@pytest.mark.parametrize("args, fragment, in_process", [
    (["run", "no-such-suite.yaml"], "no such suite file", True),
    (["list", "{suite}", "--filter", "colour=red"], "unknown axis 'colour'", True),
    (["run", "{suite}", "--backend", "nope"], "unknown backend 'nope'", True),
    (["run", "{suite}", "--filter", "hidden_size=99"], "no case matches", True),
])
def test_bad_input_is_one_line_and_exit_2(tiny_suite, args, fragment, in_process):
    done = (rnnbench_here if in_process else rnnbench)(*[a.format(suite=tiny_suite) for a in args])
    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_on_a_machine_without_a_gpu_is_refused(tiny_suite):
    done = rnnbench_here("run", tiny_suite, "--device", "cuda")
    assert done.returncode == 2
    assert "no usable CUDA GPU" in done.stderr and "Traceback" not in done.stderr
