"""One case cannot sink a run: injected faults fail their own case, with the reason, and the run goes on."""

import json
import time

import pytest
import torch
from click.testing import CliRunner

import harness.measure.runner
from harness.measure.backends import build_backend
from harness.cli import main
from harness.measure.runner import run_case
from harness.spec.suite import Timing
from tests.helpers import cpu_settings, suite_file, tiny_case


@pytest.mark.usefixtures("short_machine_window")
def test_out_of_memory_in_one_backend_does_not_stop_the_run(tmp_path, monkeypatch):
    def eager_runs_out_of_memory(name, reference):
        if name == "eager":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return build_backend(name, reference)

    monkeypatch.setattr(harness.measure.runner, "build_backend", eager_runs_out_of_memory)
    suite = suite_file(tmp_path, threads=None, timing={"warmup_iters": 0, "min_iters": 2},
                       grid={"backend": ["cudnn", "eager"]})
    out = tmp_path / "r.json"
    result = CliRunner().invoke(main, ["run", str(suite), "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    cases = {case["key"].split("/")[0] + "/" + case["case"]["backend"]: case for case in
             json.loads(out.read_text())["cases"]}
    assert len(cases) == 4
    for cell in ("lstm", "gru"):
        assert cases[f"{cell}/cudnn"]["status"] == "ok"
        assert cases[f"{cell}/eager"]["status"] == "failed"
        assert cases[f"{cell}/eager"]["reason"].startswith("out of memory: CUDA out of memory")
    assert "4 cases: 2 ok, 2 failed, 0 skipped" in result.output


def test_host_out_of_memory_is_named(monkeypatch):
    def no_host_memory(name, reference):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 85899345920 bytes")

    result = run_case(tiny_case(), cpu_settings(), build=no_host_memory)
    assert result.status == "failed" and result.reason.startswith("out of memory: ")


@pytest.mark.compile
def test_a_compile_error_fails_the_compiled_case(monkeypatch):
    def broken_compile(*args, **kwargs):
        raise RuntimeError("inductor: C++ compile failed")

    monkeypatch.setattr(torch, "compile", broken_compile)
    result = run_case(tiny_case(backend="compile"), cpu_settings())
    assert result.status == "failed"
    assert result.reason == "RuntimeError: inductor: C++ compile failed"


def test_a_case_that_hangs_outside_the_timed_loop_is_stopped(monkeypatch):
    monkeypatch.setattr(harness.measure.runner, "HARD_LIMIT_GRACE_S", 0.0)

    def hanging_build(name, reference):
        time.sleep(30)

    started = time.perf_counter()
    settings = cpu_settings(timing=Timing(warmup_iters=0, min_iters=1, budget_s=0.01, case_timeout_s=0.3))
    result = run_case(tiny_case(), settings, build=hanging_build)
    assert time.perf_counter() - started < 10
    assert result.status == "failed" and "time limit of 0.3 s exceeded" in result.reason


def test_a_case_too_slow_for_its_time_limit_fails_with_that_reason():
    settings = cpu_settings(timing=Timing(warmup_iters=0, min_iters=10**6, max_iters=10**6, budget_s=60,
                                          case_timeout_s=0.2))
    result = run_case(tiny_case(), settings)
    assert result.status == "failed"
    assert result.reason.startswith("time limit of 0.2 s exceeded: time limit reached")
