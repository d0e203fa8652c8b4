"""Telemetry through the whole pipeline on the CPU: ``rnnbench run`` and ``rnnbench env`` as a user meets
them (the whole command, run in this process; its NVML sampler as in any run), with the real nvidia-ml-py
(no driver here) and with the fake NVML module."""

import json
import os

import pytest

from harness.measure.runner import run_case
from harness.spec.suite import Telemetry
from harness.measure.telemetry.case import close_monitors
from harness.measure.telemetry.nvml import MODULE_ENV_VAR
from tests import fake_nvml
from tests.helpers import cpu_settings, rnnbench_here, suite_file, tiny_case


@pytest.fixture
def tiny_suite(tmp_path):
    return suite_file(tmp_path, "tiny.yaml", name="tiny-telemetry", timing={"budget_s": 0.05},
                      grid={"cell": ["lstm"], "mode": ["forward_backward", "inference"]})


@pytest.fixture
def no_nvml_hooks(monkeypatch):
    """This process as ``rnnbench`` starts: no test hook names an NVML module or scenario."""
    monkeypatch.delenv(MODULE_ENV_VAR, raising=False)
    monkeypatch.delenv(fake_nvml.SCENARIO_ENV, raising=False)


def test_run_case_on_the_cpu_records_peak_rss_and_why_there_is_no_nvml(monkeypatch):
    monkeypatch.delenv(MODULE_ENV_VAR, raising=False)
    result = run_case(tiny_case(), cpu_settings())
    assert result.ok, result.reason
    assert result.memory["peak_rss_bytes"] > 0
    assert result.memory["source"]
    assert result.telemetry["nvml"] == {"available": False, "reason": "NVML unavailable: the case runs on the CPU"}


def test_run_case_with_fake_nvml_records_a_window_of_the_primary_region(monkeypatch):
    fake_nvml.configure(monkeypatch)
    monkeypatch.setenv(MODULE_ENV_VAR, fake_nvml.MODULE)
    try:
        training = run_case(tiny_case(batch=3), cpu_settings(telemetry=Telemetry(nvml_period_ms=10.0)))
        inference = run_case(tiny_case(mode="inference"), cpu_settings())
    finally:
        close_monitors()
    assert list(training.telemetry["windows"]) == ["step"]  # forward/backward are not split
    step = training.telemetry["windows"]["step"]
    assert step["iterations"] == len(training.samples_ms["step"]) and step["batch"] == 3
    assert step["low_confidence"] is True  # the quick timing's window is far under NVML's 1 s
    assert list(inference.telemetry["windows"]) == ["forward"]


@pytest.mark.usefixtures("short_machine_window")
def test_cpu_run_results_carry_rss_and_nvml_unavailable(tiny_suite, tmp_path, no_nvml_hooks):
    out = tmp_path / "r.json"
    done = rnnbench_here("run", tiny_suite, "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    for case in document["cases"]:
        assert case["memory"]["peak_rss_bytes"] > 0
        assert case["memory"]["source"]
        if case["memory"]["source"].startswith("VmHWM after clear_refs"):  # Linux: the case's own rise too
            memory = case["memory"]
            assert memory["rss_before_case_bytes"] > 0
            assert memory["case_peak_rss_growth_bytes"] == max(0, memory["peak_rss_bytes"] - memory["rss_before_case_bytes"])
        assert case["telemetry"] == {"nvml": {"available": False,
                                              "reason": "NVML unavailable: the case runs on the CPU"}}
    state = document["environment"]["gpu_state"]
    assert state["available"] is False and state["reason"].startswith("NVML unavailable: ")
    assert "telemetry: NVML unavailable: the case runs on the CPU (2 cases)" in done.stdout
    assert "case peak" in done.stdout and "process RSS" in done.stdout and "J/seq" not in done.stdout
    assert "fastest per configuration: " in done.stdout  # the verdict at the end
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("short_machine_window")
def test_run_with_fake_nvml_writes_windows_and_shows_energy_columns(tiny_suite, tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    fake_nvml.configure(monkeypatch)
    monkeypatch.setenv(MODULE_ENV_VAR, fake_nvml.MODULE)
    try:
        done = rnnbench_here("run", tiny_suite, "--out", out, "--quiet")
    finally:
        close_monitors()  # a process's monitors close as it exits; this one's go on
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    step = document["cases"][0]["telemetry"]["windows"]["step"]
    assert step["energy_j"] > 0 and step["energy_per_sequence_j"] > 0
    assert step["power_mean_w"] == 350 and step["gpu_utilization_mean_pct"] == 97
    assert document["cases"][1]["telemetry"]["windows"]["forward"]["samples"] >= 1
    assert "J/seq" in done.stdout and "LOW-CONFIDENCE" in done.stdout


@pytest.mark.usefixtures("short_machine_window")
def test_env_without_nvml_prints_a_clean_reason(no_nvml_hooks):
    done = rnnbench_here("env", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("gpu_state")]
    assert len(lines) == 1 and lines[0].startswith("gpu_state: NVML unavailable: "), done.stdout
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("short_machine_window")
def test_env_prints_the_gpu_state_and_warns_about_other_processes(monkeypatch):
    device = {**fake_nvml.DEFAULT_DEVICE, "processes": [{"pid": 4242, "used": 2**30}], "reasons": 0x1}
    monkeypatch.setenv(MODULE_ENV_VAR, fake_nvml.MODULE)
    fake_nvml.configure(monkeypatch, devices=[device])
    done = rnnbench_here("env", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "gpu_state: driver 550.54.15" in out
    assert "gpu_state.0.sm_clock: 1980 MHz (max 1980 MHz)" in out
    assert "gpu_state.0.power: 350 W (limit 700 W)" in out
    assert "gpu_state.0.persistence_mode: True" in out and "gpu_state.0.mig_mode: False" in out
    assert "gpu_state.0.temperature_c: 61" in out
    assert "gpu_state.0.processes: pid 4242 (1024 MiB)" in out
    assert "WARNING: 1 other process(es) on GPU 0" in out
    fake_nvml.configure(monkeypatch)
    as_json = rnnbench_here("env", "--device", "cpu", "--json")
    state = json.loads(as_json.stdout)["gpu_state"]
    assert state["available"] and state["driver"] == "550.54.15" and state["warnings"] == []


def test_other_processes_on_the_gpu_are_warned_about_but_this_one_is_not():
    import torch

    from harness.measure.env import _other_process_warnings

    mine = {"nvml_index": 0, "name": "G", "processes": [{"pid": os.getpid()}]}
    assert _other_process_warnings([mine], torch.device("cpu")) == []
    theirs = {"nvml_index": 1, "name": "G", "processes": [{"pid": os.getpid()}, {"pid": 1}]}
    warnings = _other_process_warnings([theirs], torch.device("cpu"))
    assert len(warnings) == 1 and "pids 1;" in warnings[0] and "GPU 1" in warnings[0]
