"""``rnnbench run|list|validate --set``: a suite without a YAML file, or a file's keys overridden; the results
file records the suite as loaded; refusals are one line and exit 2."""

import json

from click.testing import CliRunner

from harness.cli import main
from harness.record.results_store import read_results
from tests.helpers import cli

TINY = ["--set", "device=cpu", "--set", "threads=1", "--set", "batch=2", "--set", "seq_len=3",
        "--set", "input_size=4", "--set", "timing.warmup_iters=1", "--set", "timing.min_iters=3",
        "--set", "timing.budget_s=0.01", "--set", "timing.profile_iters=0"]


def test_list_without_a_suite_file_expands_the_axes_given():
    result = CliRunner().invoke(main, ["list", "--set", "cell=lstm,gru", "--set", "hidden_size=64,128",
                                       "--set", "backend=cudnn,torchscript", "--set", "device=cpu"])
    assert result.exit_code == 0, result.output
    keys = result.stdout.splitlines()[:-1]
    assert len(keys) == 8 and all(key.startswith(("lstm/", "gru/")) for key in keys)
    assert {key.split("/")[1] for key in keys} == {"cudnn", "torchscript"}
    assert result.stdout.splitlines()[-1] == "8 cases of suite 'adhoc' on cpu"


def test_validate_of_a_suite_file_with_a_set_says_which():
    result = CliRunner().invoke(main, ["validate", "suites/small.yaml", "--set", "hidden_size=32", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("suites/small.yaml --set hidden_size=32: ok: suite 'small', 10 cases on cpu")


def test_a_malformed_or_unknown_set_is_one_line_and_exit_2():
    for args, problem in [(["run", "--set", "hidden_size"], "expected KEY=VALUE"),
                          (["run", "--set", "hiden_size=64"], "did you mean 'hidden_size'?"),
                          (["list", "suites/small.yaml", "--set", "cell=lstm,rnn"], "unknown value 'rnn'"),
                          (["run"], "give a SUITE file, or --set")]:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and problem in result.stderr, result.stderr
        assert not result.stdout


def test_an_ad_hoc_run_in_rounds_records_its_suite_as_loaded(tmp_path, short_machine_window):
    out = tmp_path / "adhoc.json"
    sets = [*TINY, "--set", "hidden_size=5", "--set", "backend=cudnn", "--set", "cell=gru"]
    result = cli("run", *sets, "--rounds", "2", "--quiet", "-o", out)  # each round's worker a process all the same
    assert result.exit_code == 0, result.stderr
    run = read_results(out)  # checked as any results file is
    suite = json.loads(out.read_text())["suite"]
    assert suite["name"] == "adhoc" and suite["source"] == " ".join(sets)
    assert suite["grid"]["cell"] == ["gru"] and suite["timing"]["budget_s"] == 0.01 and len(suite["sha256"]) == 64
    assert [case.status for case in run.cases] == ["ok"] and run.run_options.round_count == 2


def test_a_profile_of_a_suite_without_a_file(tmp_path, short_machine_window):
    result = cli("profile", *TINY, "--set", "hidden_size=5", "--steps", "1", "--quiet", "-o", tmp_path)
    assert result.exit_code == 0, result.stderr
    written = json.loads(next(tmp_path.glob("adhoc-cpu-*.json")).read_text())
    assert written["suite"]["name"] == "adhoc" and written["suite"]["grid"]["hidden_size"] == [5]
