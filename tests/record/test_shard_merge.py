"""--shard I/N splits a run's cases deterministically and by estimated cost; merge joins the shards' files into one
that report and compare read like any other, and refuses what does not belong in one file."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from harness.spec.cases import expand_cases
from harness.errors import SuiteError
from harness.record.merge import MergeError, merge_runs
from harness.spec.shard import estimated_case_s, parse_shard, split
from harness.record.results_io import write_results
from harness.record.results_store import read_results
from harness.spec.suite import Timing, load_suite
from tests.helpers import cli
from synthetic_results import GPU_ENVIRONMENT, grid_cases, synthetic_run

ROOT = Path(__file__).resolve().parent.parent.parent
H100 = Path("/work/shared/gpu-runs/h100-2026-11-27")


@pytest.mark.parametrize("spec", ["3/2", "0/0", "2/2", "-1/2", "1", "a/b", "1/2/3", ""])
def test_a_bad_shard_spec_is_one_line(spec):
    with pytest.raises(SuiteError, match="--shard"):
        parse_shard(spec)


def test_shard_indices_count_from_zero():
    assert (parse_shard("0/4").index, parse_shard(" 3 / 4 ").count) == (0, 4)


@functools.lru_cache(maxsize=None)
def deepbench_cases():
    suite = load_suite(str(ROOT / "suites" / "deepbench.yaml"))
    return suite, expand_cases(suite, "cuda")


def test_deepbench_splits_into_disjoint_complete_balanced_shards():
    suite, cases = deepbench_cases()
    shards = split(cases, 4, suite.timing)
    keys = [case.key for shard in shards for case in shard]
    assert sorted(keys) == sorted(case.key for case in cases) and len(set(keys)) == len(keys)
    loads = [sum(estimated_case_s(case, suite.timing) for case in shard) for shard in shards]
    biggest_case = max(estimated_case_s(case, suite.timing) for case in cases)
    assert max(loads) - min(loads) <= biggest_case  # what longest-processing-time-first guarantees
    reversed_split = split(list(reversed(cases)), 4, suite.timing)  # the order cases come in does not matter
    assert [sorted(c.key for c in s) for s in reversed_split] == [sorted(c.key for c in s) for s in shards]


def test_the_estimate_grows_with_seq_len_and_with_the_flop_model():
    suite, cases = deepbench_cases()
    case = cases[0]
    longer = case.__class__(**{**case.to_dict(), "seq_len": case.seq_len * 10})
    wider = case.__class__(**{**case.to_dict(), "hidden_size": case.hidden_size * 4})
    assert estimated_case_s(longer, suite.timing) > estimated_case_s(case, suite.timing)
    assert estimated_case_s(wider, suite.timing) > estimated_case_s(case, suite.timing)


@settings(max_examples=30, deadline=None)
@given(count=st.integers(1, 20), size=st.integers(1, 20))
def test_any_split_is_a_partition(count, size):
    suite, cases = deepbench_cases()
    cases = cases[:size]
    shards = split(cases, count, suite.timing)
    assert len(shards) == count
    assert sorted(c.key for s in shards for c in s) == sorted(c.key for c in cases)


@pytest.fixture(scope="module")
def shard_files(tmp_path_factory):
    """The real H100 run of suites/small.yaml cut into the 2 shards `run --shard I/2` makes of it (the real
    `run --shard` processes are run by tests/project/test_recipes.py)."""
    if not H100.is_dir():
        pytest.skip("the H100 results are not on this machine")
    folder = tmp_path_factory.mktemp("shards")
    document = json.loads((H100 / "small-cuda.json").read_text())
    whole = read_results(H100 / "small-cuda.json")
    shards = split([case.case for case in whole.cases], 2, Timing())
    paths = []
    for index, shard in enumerate(shards):
        keys = {case.key for case in shard}
        part = {**document, "cases": [c for c in document["cases"] if c["key"] in keys],
                "options": {**document["options"], "shard": {"index": index, "count": 2}}}
        paths.append(folder / f"s{index}.json")
        paths[-1].write_text(json.dumps(part))
    return H100 / "small-cuda.json", paths[0], paths[1]


def test_each_shard_records_its_shard_and_the_merge_is_the_whole_suite(shard_files, tmp_path):
    whole, first, second = shard_files
    runs = [read_results(first), read_results(second)]
    assert [run.options["shard"] for run in runs] == [{"index": 0, "count": 2}, {"index": 1, "count": 2}]
    assert all(run.cases for run in runs)
    merged_path = tmp_path / "all.json"
    done = cli("merge", second, first, "-o", merged_path)
    assert done.exit_code == 0, done.output
    merged = read_results(merged_path)
    assert merged.status == "complete"
    assert sorted(case.key for case in merged.cases) == sorted(case.key for run in runs for case in run.cases)
    assert len(merged.cases) == len(read_results(whole).cases) == 20
    by_key = {case.key: case for run in runs for case in run.cases}
    for case in merged.cases:
        assert case.samples_ms == by_key[case.key].samples_ms  # every sample kept
    assert [entry["shard"]["index"] for entry in merged.options["merged_from"]] == [0, 1]
    assert "shard" not in merged.options
    assert cli("compare", merged_path, merged_path).exit_code == 0
    report = cli("report", merged_path, "-o", tmp_path / "report", "--filter", "lstm/cudnn/*")
    assert report.exit_code == 0, report.output
    assert (tmp_path / "report" / "report.html").is_file()


def test_a_missing_shard_is_said_and_the_merge_marked_interrupted(shard_files, tmp_path):
    _, first, second = shard_files
    done = cli("merge", first, "-o", tmp_path / "part.json")
    assert done.exit_code == 0
    assert "shards 1/2 missing" in done.stderr
    assert read_results(tmp_path / "part.json").status == "interrupted"


def test_merge_refuses_duplicates_and_never_writes_over_an_input(shard_files, tmp_path):
    _, first, second = shard_files
    done = cli("merge", first, first, "-o", tmp_path / "twice.json")
    assert done.exit_code == 2 and "is also in" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "twice.json").exists()
    before = first.read_bytes()
    done = cli("merge", first, second, "-o", first)
    assert done.exit_code == 2 and first.read_bytes() == before
    (tmp_path / "taken.json").write_bytes(before)
    assert cli("merge", first, second, "-o", tmp_path / "taken.json").exit_code == 2
    assert cli("merge", first, second, "-o", tmp_path / "taken.json", "--force").exit_code == 0


def test_merge_refuses_other_environments_unless_asked(shard_files, tmp_path):
    _, first, second = shard_files
    document = json.loads(second.read_text())
    document["environment"]["torch"]["version"] = "2.99.0"
    other = tmp_path / "other-torch.json"
    other.write_text(json.dumps(document))
    done = cli("merge", first, other, "-o", tmp_path / "m.json")
    assert done.exit_code == 2 and "torch" in done.stderr and "--allow-env-mismatch" in done.stderr
    assert not (tmp_path / "m.json").exists()
    done = cli("merge", first, other, "-o", tmp_path / "m.json", "--allow-env-mismatch")
    assert done.exit_code == 0 and "WARNING" in done.stderr


def test_merge_refuses_a_forged_shard_record(shard_files, tmp_path):
    _, first, _ = shard_files
    document = json.loads(first.read_text())
    document["options"]["shard"] = {"index": 3, "count": 2}
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    done = cli("merge", forged, "-o", tmp_path / "m.json")
    assert done.exit_code == 2 and "options.shard" in done.stderr


def test_resume_keeps_the_shard_and_refuses_another():
    from harness.errors import UsageError
    from harness.execute.run_plan import resumed_shard

    assert str(resumed_shard({"index": 0, "count": 2}, None)) == "0/2"
    assert str(resumed_shard({"index": 0, "count": 2}, "0/2")) == "0/2"
    with pytest.raises(UsageError, match="the run being resumed was shard 0/2"):
        resumed_shard({"index": 0, "count": 2}, "1/2")
    with pytest.raises(UsageError, match="not a shard"):
        resumed_shard(None, "1/2")


@pytest.mark.skipif(not H100.is_dir(), reason="the H100 results are not on this machine")
def test_real_h100_files_merge_as_shards_and_refuse_other_suites_and_repeats(tmp_path):
    whole = read_results(H100 / "reg-a.json")
    halves = []
    for index in range(2):
        document = json.loads((H100 / "reg-a.json").read_text())
        document["cases"] = document["cases"][index::2]
        document["options"]["shard"] = {"index": index, "count": 2}
        path = tmp_path / f"reg-a-{index}.json"
        path.write_text(json.dumps(document))
        halves.append(path)
    done = cli("merge", *halves, "-o", tmp_path / "reg-a-merged.json")
    assert done.exit_code == 0, done.output
    merged = read_results(tmp_path / "reg-a-merged.json")
    assert {c.key: c.samples_ms for c in merged.cases} == {c.key: c.samples_ms for c in whole.cases}
    assert cli("compare", H100 / "reg-b.json", tmp_path / "reg-a-merged.json").exit_code in (0, 1)
    done = cli("merge", H100 / "reg-a.json", H100 / "small-cuda.json", "-o", tmp_path / "x.json")
    assert done.exit_code == 2 and "different suite" in done.stderr
    done = cli("merge", H100 / "reg-a.json", H100 / "reg-b.json", "-o", tmp_path / "x.json")
    assert done.exit_code == 2 and "is also in" in done.stderr


def test_merge_of_runs_in_different_rounds_or_gpus_is_refused():
    cases = grid_cases("cuda")
    one = synthetic_run(1, cases=cases[:4], environment=GPU_ENVIRONMENT, source="a.json")
    other_gpu = {**GPU_ENVIRONMENT, "gpu": {**GPU_ENVIRONMENT["gpu"], "name": "NVIDIA A100-SXM4-80GB"}}
    two = synthetic_run(2, cases=cases[4:8], environment=other_gpu, source="b.json")
    with pytest.raises(MergeError, match="GPU model"):
        merge_runs([one, two])
    assert len(merge_runs([one, two], allow_env_mismatch=True).run.cases) == 8
    from dataclasses import replace

    three = replace(synthetic_run(3, cases=cases[8:12], environment=GPU_ENVIRONMENT, source="c.json"),
                    options={"rounds": 3})
    with pytest.raises(MergeError, match="rounds"):
        merge_runs([one, three])


def test_a_merged_file_round_trips_through_the_store(tmp_path):
    cases = grid_cases()
    runs = [synthetic_run(seed, cases=cases[seed * 5:(seed + 1) * 5], source=f"{seed}.json") for seed in range(4)]
    merged = merge_runs(runs).run
    write_results(tmp_path / "m.json", merged)
    assert [c.key for c in read_results(tmp_path / "m.json").cases] == [c.key for c in cases]
