"""--devices: one worker process per device, cases handed out as workers free up, one results file; Ctrl-C and
--resume as for one process. On this CPU machine with --devices cpu,cpu; the pinning of GPUs is checked on the
spelling here and for real in a GPU-marked test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from harness.execute.devices import parse_devices, run_on_devices
from harness.errors import SuiteError
from harness.record.results_store import read_results
from tests.helpers import cli, suite_file

DEVICES_SUITE = dict(name="devices", timing={"warmup_iters": 0, "min_iters": 2, "budget_s": 0.05},
                     telemetry={"enabled": False}, grid={"backend": ["cudnn", "eager"], "batch": [2, 3]})


def two_gpus():
    return 2


def test_each_gpu_worker_is_pinned_respecting_the_users_cuda_visible_devices():
    workers = parse_devices("cuda:0,cuda:1", two_gpus, visible="")
    assert [(w.device, w.visible) for w in workers] == [("cuda:0", "0"), ("cuda:0", "1")]
    workers = parse_devices("all", two_gpus, visible="GPU-aaaa,3")
    assert [w.visible for w in workers] == ["GPU-aaaa", "3"] and workers[1].environment()["CUDA_VISIBLE_DEVICES"] == "3"
    assert [w.visible for w in parse_devices("cpu,cpu", two_gpus, visible="1")] == [None, None]


@pytest.mark.parametrize("spec, message", [("cuda:0,cuda:0", "named twice"), ("cuda:2", "2 CUDA device"),
                                           ("cpu,cuda:0", "all CUDA or all CPU"), ("gpu0", "name devices"),
                                           ("", "name devices"), ("auto,auto", "name devices")])
def test_bad_device_lists_are_one_line(spec, message):
    with pytest.raises(SuiteError, match=message):
        parse_devices(spec, two_gpus, visible="")


def test_all_without_a_gpu_says_so():
    with pytest.raises(SuiteError, match="no usable CUDA GPU"):
        parse_devices("all", lambda: 0, visible="")
    with pytest.raises(SuiteError, match="not in CUDA_VISIBLE_DEVICES"):
        parse_devices("cuda:1", two_gpus, visible="0")


def test_a_worker_that_dies_on_a_case_loses_only_that_case(tmp_path):
    suite = suite_file(tmp_path, **DEVICES_SUITE)
    (worker,) = parse_devices("cpu", two_gpus, visible="")
    results, lost = [], []
    left = run_on_devices(str(suite), ["lstm/cudnn/forward_backward/B2-T3-I4-H4-L1/float32/cpu", "no/such/case",
                                       "gru/cudnn/forward_backward/B2-T3-I4-H4-L1/float32/cpu"], [worker],
                          on_environment=lambda index, environment: None,
                          on_result=lambda index, document: results.append(document["key"]),
                          on_lost=lambda index, key, reason: lost.append((key, reason)))
    assert results == ["lstm/cudnn/forward_backward/B2-T3-I4-H4-L1/float32/cpu"]
    assert lost and lost[0][0] == "no/such/case" and "not in the suite" in lost[0][1]
    assert left == ["gru/cudnn/forward_backward/B2-T3-I4-H4-L1/float32/cpu"]  # its only worker is gone


@pytest.mark.usefixtures("short_machine_window")
def test_two_workers_share_the_cases_stop_on_ctrl_c_and_resume(tmp_path):
    suite = suite_file(tmp_path, **DEVICES_SUITE)
    results = tmp_path / "r.json"
    process = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--quiet", "--devices",
                                "cpu,cpu", "--out", str(results)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    journal = tmp_path / "r.json.journal"
    deadline = time.time() + 120
    while not (journal.exists() and len(journal.read_text().splitlines()) >= 3) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the parent and its workers
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    first = read_results(results)
    assert first.status == "interrupted" and 2 <= len(first.cases) < 8
    assert all(case.ok for case in first.cases)  # a case cut short by Ctrl-C is not recorded as failed
    assert "--resume" in stderr
    # the resume's parent in this process (its workers are real): the Ctrl-C above is the one that needs its own
    done = cli("run", suite, "--quiet", "--resume", results)
    assert done.exit_code == 0, done.stderr
    final = read_results(results)
    assert final.status == "complete" and len(final.cases) == 8 and len({c.key for c in final.cases}) == 8
    assert {c.key: c.samples_ms for c in first.cases}.items() <= {c.key: c.samples_ms for c in final.cases}.items()
    # the resumed part ran on the recorded devices; which worker took how many cases is a race (one may still
    # be importing torch while the other finishes the rest, on a loaded machine), so not asserted
    workers = set(final.options["device_of_case"].values())
    assert workers and workers <= {"cpu (worker 0)", "cpu (worker 1)"}, workers
    assert set(final.options["device_of_case"]) == {c.key for c in final.cases}
    assert [d["device"] for d in json.loads(results.read_text())["options"]["devices"]] == ["cpu", "cpu"]


@pytest.mark.gpu
def test_every_gpu_runs_its_own_worker_with_its_own_telemetry(tmp_path):
    suite = suite_file(tmp_path, **{**DEVICES_SUITE, "device": "cuda", "telemetry": {"enabled": True}})
    results = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--quiet", "--devices", "all",
                           "--out", str(results)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    run = read_results(results)
    assert len(run.options["devices"]) == torch.cuda.device_count()
    uuids = {case.telemetry.get("nvml", {}).get("device", {}).get("uuid") for case in run.cases}
    assert None not in uuids and len(uuids) <= torch.cuda.device_count()
