"""A busy machine is named: the rule on synthetic readings, a real busy process found through /proc, the record
through results files, the CLI's warning and the headers of the table, the report and compare."""

import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.record.machine_state import (BUSY_OTHERS_CORES, BUSY_PROCESS_SHARE, GpuReading, MachineState, ProcessLoad,
                                   busy_line, clock_ticks_per_s, collect_machine_state, gpu_readings, read_stat,
                                   start_sampling)
from harness.record import machine_state
from harness.record.results import RunResults
from harness.record.journal import ResultsWriter, read_journal
from harness.record.results_io import write_results
from harness.record.results_store import read_results
from tests import fake_nvml
from tests.helpers import rnnbench_here, suite_file
from tests.synthetic_results import CPU_ENVIRONMENT, synthetic_run

ON_LINUX = os.path.isdir("/proc/self")


def quiet(**changes) -> MachineState:
    fields = dict(allowed_cores=2, online_cores=2, load_average=(0.3, 0.2, 0.1), window_s=0.5, others_cores=0.02,
                  busiest=(ProcessLoad(77, "sshd", 0.02),), torch_threads=1)
    fields.update(changes)
    return MachineState(**fields)


# --- the rule, on synthetic readings ----------------------------------------------------------------------

def test_a_quiet_machine_has_no_reasons_and_says_quiet():
    state = quiet()
    assert not state.busy and state.reasons == () and state.notes == ()
    assert state.idle_cores == 2 and state.suggested_threads is None
    assert state.summary().startswith("quiet (load 0.30 on 2 cores")
    assert busy_line([("the run", state)]) is None


def test_others_beyond_half_a_core_make_it_busy_and_the_busiest_are_named():
    state = quiet(others_cores=0.9, busiest=(ProcessLoad(4242, "stress", 0.2), ProcessLoad(17, "make", 0.2),
                                             ProcessLoad(9, "cc1", 0.2), ProcessLoad(8, "ld", 0.2)))
    assert state.busy
    [reason] = state.reasons
    assert reason.startswith("other processes used 0.90 of the 2 cores this process may use over 0.5 s")
    assert "pid 4242 (stress) 20% of a core, pid 17 (make) 20% of a core, pid 9 (cc1)" in reason
    assert "pid 8" not in reason  # three named; the record keeps the rest


def test_one_process_above_a_quarter_core_is_busy_though_the_sum_is_small():
    assert quiet(others_cores=0.3, busiest=(ProcessLoad(5, "x", 0.3),)).busy
    assert not quiet(others_cores=0.4, busiest=(ProcessLoad(5, "x", 0.2), ProcessLoad(6, "y", 0.2))).busy


def test_more_torch_threads_than_idle_cores_is_busy_and_suggests_threads_1():
    state = quiet(others_cores=0.9, busiest=(ProcessLoad(5, "x", 0.9),), torch_threads=2)
    assert state.idle_cores == 1 and state.oversubscribed and state.suggested_threads == 1
    assert "torch runs 2 threads on 1 core left idle" in state.reasons[-1]
    assert "set 'threads: 1' in the suite" in state.reasons[-1]
    assert not quiet(torch_threads=2).oversubscribed  # two threads, two idle cores
    assert quiet(torch_threads=4).suggested_threads == 2
    # a GPU run's kernels do not use torch's CPU threads
    assert not quiet(others_cores=0.9, torch_threads=2, device_type="cuda").oversubscribed


def test_another_process_on_the_runs_gpu_is_busy_on_another_gpu_a_note():
    mine = GpuReading(index=0, name="H100", in_use=True, other_pids=(4242,))
    state = quiet(device_type="cuda", gpus=(mine,))
    assert state.busy and state.reasons == ("1 other process(es) on GPU 0 (H100): pids 4242",)
    # listed under a pid of another namespace: one listed process may be this one
    assert not quiet(device_type="cuda", gpus=(replace(mine, unlisted_allowance=1),)).busy
    elsewhere = quiet(gpus=(replace(mine, in_use=False),))
    assert not elsewhere.busy and elsewhere.notes == ("1 process(es) on GPU 0 (H100), which this run does not use",)


def test_the_governor_throttling_and_a_lagging_load_average_are_notes_only():
    state = quiet(governors={"powersave": 2}, load_average=(2.4, 1.0, 0.5),
                  gpus=(GpuReading(index=0, name="G", throttle_reasons=("sw_thermal_slowdown",)),))
    assert not state.busy
    assert state.notes[0].startswith("CPU frequency governor powersave on 2 of 2 cores")
    assert "load average 2.40 (1 min) with nothing else running" in state.notes[1]
    assert state.notes[2] == "GPU 0 (G) throttles as the run starts: sw_thermal_slowdown"
    assert quiet(governors={"performance": 2}).notes == ()


def test_busy_line_says_which_rounds_were_busy():
    busy = quiet(others_cores=1.5, busiest=(ProcessLoad(3, "x", 1.5),))
    line = busy_line([("round 1", quiet()), ("round 2", busy), ("round 3", busy)])
    assert line.startswith("machine BUSY at the start of round 2, round 3 (2 of 3); at round 2: other processes")


shares = st.floats(min_value=0, max_value=8, allow_nan=False)
states = st.builds(
    lambda allowed, others, tops, threads, load, device: MachineState(
        allowed_cores=allowed, online_cores=allowed, device_type=device, load_average=load, window_s=0.5,
        others_cores=round(max(others, sum(tops)), 4),
        busiest=tuple(ProcessLoad(100 + i, f"p{i}", round(top, 4)) for i, top in enumerate(sorted(tops, reverse=True))),
        torch_threads=threads),
    st.integers(1, 64), shares, st.lists(shares, max_size=4), st.integers(1, 64) | st.none(),
    st.tuples(shares, shares, shares) | st.none(), st.sampled_from(["cpu", "cuda"]))


@settings(max_examples=200, deadline=None)
@given(states)
def test_the_rule_holds_on_any_readings(state):
    top = max((p.core_share for p in state.busiest), default=0)
    cpu_busy = state.others_cores > BUSY_OTHERS_CORES or top > BUSY_PROCESS_SHARE
    assert state.busy == (cpu_busy or state.oversubscribed)
    assert 0 <= state.idle_cores <= state.allowed_cores
    if state.suggested_threads is not None:
        assert 1 <= state.suggested_threads < state.torch_threads and state.device_type == "cpu"
    # more load elsewhere never makes a busy machine quiet
    heavier = replace(state, others_cores=state.others_cores + 0.5)
    assert heavier.busy or not state.busy
    assert heavier.idle_cores <= state.idle_cores
    # the record reads back as written, through JSON
    assert MachineState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@pytest.mark.parametrize("broken, message", [
    ({"allowed_cores": 0}, "allowed_cores: must be at least 1"),
    ({"allowed_cores": "2"}, "allowed_cores: must be whole numbers"),
    ({"load_average": [1, 2]}, "load_average: must be three numbers"),
    ({"busiest": [{"pid": 1, "name": "x", "core_share": float("inf")}]}, "core_share: must be numbers"),
    ({"busiest": {"pid": 1}}, "busiest: must be a list"),
    ({"gpus": ["GPU 0"]}, "gpus: must hold mappings"),
])
def test_a_malformed_record_is_refused_with_what_is_wrong(broken, message):
    with pytest.raises(ValueError, match=message):
        MachineState.from_dict({**quiet().to_dict(), **broken})


# --- the real machine: a busy child found through /proc ------------------------------------------------------

@pytest.fixture
def busy_child():
    """A process that spins, returned once it has burned CPU time of its own (read from its /proc stat): an
    event, not a guess how long it takes to start on a loaded machine."""
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 60  # a safety net only: the wait ends on the child's own CPU time
        while (stat := read_stat(child.pid)) is None or stat.ticks < 5:
            assert child.poll() is None and time.monotonic() < deadline, "the busy child never ran"
            time.sleep(0.01)
        yield child
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(not ON_LINUX, reason="reads /proc")
def test_a_busy_process_is_named_among_the_busiest_and_the_machine_flagged_busy(busy_child):
    state = collect_machine_state({"device": "cpu", "threads": {"intra_op": 1}})
    pids = [p.pid for p in state.busiest]
    assert busy_child.pid in pids, state.to_dict()
    [mine] = [p for p in state.busiest if p.pid == busy_child.pid]
    assert mine.name == "python" or mine.name.startswith("python"), mine
    # with the child spinning, either it alone holds more than a quarter core, or the machine is loaded besides
    assert state.busy and state.reasons[0].startswith("other processes used"), state.to_dict()
    assert state.others_cores >= mine.core_share > 0
    assert os.getpid() not in pids  # this process is never its own neighbour
    assert state.allowed_cores == len(os.sched_getaffinity(0)) and state.window_s >= 0.4


@pytest.mark.skipif(not ON_LINUX, reason="reads /proc")
def test_a_workers_family_is_not_counted_against_it(busy_child):
    """A worker passes its parent: the parent's children (here the busy child; in an A/B the other side) are ours."""
    state = collect_machine_state({"device": "cpu", "threads": {"intra_op": 1}}, family_root=os.getpid())
    assert busy_child.pid not in [p.pid for p in state.busiest]


@pytest.mark.skipif(not ON_LINUX, reason="reads /proc")
def test_a_window_started_with_the_command_is_read_without_waiting_again(busy_child, monkeypatch):
    """Started as the command starts (before it imports torch), the window is long enough by the time the
    environment is read: it is read at once, and finds the process that was busy meanwhile."""
    sampling = start_sampling()
    deadline = time.monotonic() + 60  # a safety net only: the wait ends on the child's own CPU time
    # the child spun 0.1 s of CPU since the first reading: at least 0.1 s of the window has passed. Two ticks more,
    # as /proc counts CPU in whole ticks: the first reading may have missed up to one tick the child had already
    # spun, and then 0.1 s of counted ticks came after only 0.09 s (CI saw the window 9 ms short of it)
    while read_stat(busy_child.pid).ticks < sampling.snapshot[busy_child.pid].ticks + 0.1 * clock_ticks_per_s() + 2:
        assert time.monotonic() < deadline, "the busy child stopped running"
        time.sleep(0.01)
    monkeypatch.setattr(machine_state.time, "sleep", lambda seconds: pytest.fail(f"waited {seconds} s again"))
    state = collect_machine_state({"device": "cpu", "threads": {"intra_op": 1}}, sampling=sampling, window_s=0.1)
    assert state.window_s >= 0.1
    assert busy_child.pid in [p.pid for p in state.busiest] and state.busy, state.to_dict()


@pytest.mark.skipif(not ON_LINUX, reason="reads /proc")
def test_a_window_read_too_soon_waits_for_the_rest_of_it(monkeypatch):
    """On a clock of the test's own: read 0.05 s after it opened, a 0.2 s window waits the other 0.15 s."""
    now, waits = [100.0], []

    def sleep(seconds):
        waits.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(machine_state.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(machine_state.time, "sleep", sleep)
    sampling = start_sampling()
    now[0] += 0.05
    state = collect_machine_state({"device": "cpu", "threads": {"intra_op": 1}}, sampling=sampling, window_s=0.2)
    assert waits == [pytest.approx(0.15)]
    assert state.window_s == pytest.approx(0.2)  # never shorter than asked for, however soon it is read


# --- the GPU, through the NVML layer and the fake -----------------------------------------------------------

def _fake_gpu_state(monkeypatch, processes, graphics=()):
    from harness.measure.telemetry.nvml import DeviceSpec, gpu_state, init, load_nvml, resolve_handle, shutdown

    fake_nvml.configure(monkeypatch, devices=[{**fake_nvml.DEFAULT_DEVICE, "processes": processes,
                                              "graphics_processes": list(graphics), "reasons": 0x004}])
    nvml = load_nvml(fake_nvml.MODULE)
    init(nvml)
    try:
        handle, found_by = resolve_handle(nvml, DeviceSpec(index=0))
        return {"available": True, "gpus": [{**gpu_state(nvml, handle), "found_by": found_by}]}
    finally:
        shutdown(nvml)


def test_another_process_on_the_gpu_in_a_fake_nvml_scenario_makes_a_cuda_run_busy(monkeypatch):
    state_of_gpu = _fake_gpu_state(monkeypatch, [{"pid": os.getpid(), "used": 2**30}, {"pid": 4242, "used": 2**31}],
                                   graphics=[{"pid": 5151}])
    [reading] = gpu_readings(state_of_gpu, "cuda", {os.getpid()}, cuda_initialised=True)
    assert reading.in_use and reading.other_pids == (4242, 5151) and reading.unlisted_allowance == 0
    assert reading.throttle_reasons == ("sw_power_cap",) and reading.sm_clock_mhz == 1980
    state = collect_machine_state({"device": "cuda:0", "threads": {"intra_op": 1}, "gpu_state": state_of_gpu},
                                  window_s=0.05)
    assert "2 other process(es) on GPU 0 (Fake H100 80GB HBM3): pids 4242, 5151" in state.reasons
    assert "GPU 0 (Fake H100 80GB HBM3) throttles as the run starts: sw_power_cap" in state.notes
    # alone on it (listed under its own pid), the GPU is no reason
    alone = _fake_gpu_state(monkeypatch, [{"pid": os.getpid()}])
    assert gpu_readings(alone, "cuda", {os.getpid()}, cuda_initialised=True)[0].others == 0
    # a CPU run only notes the GPU's processes
    [on_cpu] = gpu_readings(state_of_gpu, "cpu", {os.getpid()}, cuda_initialised=False)
    assert not on_cpu.in_use and on_cpu.others == 2


def test_nvml_unavailable_gives_no_gpu_readings():
    assert gpu_readings({"available": False, "reason": "NVML unavailable: x"}, "cuda", {1}, True) == ()
    assert gpu_readings(None, "cpu", {1}, False) == ()


# --- the record in results files ------------------------------------------------------------------------------

BUSY = quiet(others_cores=1.2, busiest=(ProcessLoad(4242, "stress", 1.1),), torch_threads=2)


def test_results_keep_the_machine_state_and_old_files_still_load(tmp_path):
    run = synthetic_run(1, environment={**CPU_ENVIRONMENT, "machine_state": BUSY.to_dict()})
    write_results(tmp_path / "r.json", run)
    back = read_results(tmp_path / "r.json")
    assert back.environment.machine_states == (("the run", BUSY),)
    assert back.environment.machine_busy_line.startswith("machine BUSY at the start of the run: other processes")
    write_results(tmp_path / "old.json", synthetic_run(1))  # no machine_state: a file from before the record
    old = read_results(tmp_path / "old.json")
    assert old.environment.machine_states == () and old.environment.machine_busy_line is None


def test_a_results_file_with_a_malformed_machine_state_is_refused_in_one_line(tmp_path):
    document = json.loads(json.dumps(synthetic_run(1, environment={**CPU_ENVIRONMENT,
                                                                   "machine_state": BUSY.to_dict()}).to_dict()))
    document["environment"]["machine_state"]["busiest"][0]["core_share"] = "lots"
    (tmp_path / "r.json").write_text(json.dumps(document))
    from harness.errors import ResultsFileError

    with pytest.raises(ResultsFileError, match=r"environment.machine_state: core_share: must be numbers"):
        read_results(tmp_path / "r.json")


def test_each_rounds_machine_state_is_journaled_and_kept_in_the_results(tmp_path):
    run = synthetic_run(1)
    writer = ResultsWriter(tmp_path / "r.json", run.environment, run.suite, started_utc="2026-01-01T00:00:00+00:00",
                           options={"rounds": 2})
    writer.record_round_machine_state(0, quiet().to_dict())
    writer.record_round_machine_state(1, BUSY.to_dict())
    writer.record_round_machine_state(2, None)  # a worker too old to read the machine: nothing recorded
    writer.record_round_machine_state(3, {"allowed_cores": "many"})  # another rnnbench's record: left out
    for result in run.cases[:2]:
        writer.append_round(0, result.to_dict())
    killed = read_journal(writer.journal_path)  # what a killed run leaves: the journal keeps every round's state
    assert [where for where, _ in killed.environment.machine_states] == ["round 1", "round 2"]
    finished = writer.finish("complete", finished_utc="2026-01-01T00:01:00+00:00")
    assert finished.environment.machine_states == (("round 1", quiet()), ("round 2", BUSY))
    back = read_results(tmp_path / "r.json")
    assert back.environment.machine_busy_line.startswith("machine BUSY at the start of round 2 (1 of 2): ")


# --- where a person sees it -----------------------------------------------------------------------------------

def test_the_table_report_and_compare_headers_say_the_machine_was_busy(tmp_path):
    from harness.gate.compare import compare_runs
    from harness.report.compare_text import render_markdown, render_text
    from harness.report.html import report_html
    from harness.report.markdown import report_markdown
    from harness.report.text import summary_table

    busy = synthetic_run(2, environment={**CPU_ENVIRONMENT, "machine_state": BUSY.to_dict()}, source="/r/b.json")
    calm = synthetic_run(1, environment={**CPU_ENVIRONMENT, "machine_state": quiet().to_dict()}, source="/r/a.json")
    first_line = summary_table(busy).splitlines()[0]
    assert first_line.startswith("machine BUSY at the start of the run: other processes used 1.20 of the 2 cores")
    assert "set 'threads: 1' in the suite" in first_line
    assert "BUSY" not in summary_table(calm)

    text = render_text(compare_runs(calm, busy))
    header = text.split("\n\n")[0]
    assert "warning: the current run: machine BUSY at the start of the run: other processes used 1.20" in header
    assert "the baseline run: machine BUSY" not in text
    assert "the current run: machine BUSY" in render_markdown(compare_runs(calm, busy))

    markdown = report_markdown([("b", busy, ()), ("a", calm, ())], [])
    assert "> :warning: **machine BUSY at the start of the run: other processes used 1.20" in markdown
    html = report_html([("b", busy, ()), ("a", calm, ())], [], [])
    assert "<p class=flag>machine BUSY at the start of the run: other processes used 1.20" in html
    assert "<dt>machine</dt><dd>the run: quiet (load 0.30 on 2 cores, others 0.02 cores)</dd>" in html


@pytest.mark.skipif(not ON_LINUX, reason="reads /proc")
def test_run_on_a_busy_machine_warns_once_and_records_it(busy_child, tmp_path):
    suite = suite_file(tmp_path, "tiny.yaml", grid={"cell": ["lstm"]})
    out = tmp_path / "r.json"
    done = rnnbench_here("run", suite, "--out", out, "--quiet")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "machine BUSY" in line]
    assert len(warnings) == 1, done.stderr
    assert warnings[0].startswith("rnnbench: WARNING: machine BUSY at the start of the run: other processes used ")
    state = json.loads(out.read_text())["environment"]["machine_state"]
    assert state["busy"] and busy_child.pid in [p["pid"] for p in state["busiest"]]
    assert done.stdout.splitlines()[0].startswith("machine BUSY at the start of the run")


def test_env_shows_the_machine_state():
    done = rnnbench_here("env", "--device", "cpu", "--json")
    assert done.returncode == 0, done.stderr
    state = MachineState.from_dict(json.loads(done.stdout)["machine_state"])
    assert state.allowed_cores >= 1 and state.device_type == "cpu"


def test_a_run_without_a_record_has_no_machine_line():
    run = RunResults(environment={}, suite={}, cases=())
    from harness.report import context

    assert context.machine_state(run) is None and context.machine_notes(run) == []


@pytest.mark.gpu
def test_on_a_real_gpu_this_process_is_not_its_own_neighbour():
    """With a CUDA context of its own (listed by NVML under its pid, or under another namespace's), a run alone
    on the GPU is not busy on its account; clocks are read. Run by scripts/gpu-check.sh on a GPU machine."""
    import torch

    from harness.measure.env import collect_environment

    torch.zeros(1, device="cuda:0")  # a context, so NVML lists this process
    environment = collect_environment(torch.device("cuda:0"))
    state = collect_machine_state(environment, window_s=0.1)
    [gpu] = state.gpus
    assert gpu.in_use and gpu.sm_clock_max_mhz and gpu.sm_clock_max_mhz >= (gpu.sm_clock_mhz or 0)
    assert os.getpid() not in gpu.other_pids
    assert (gpu.others > 0) == any("other process(es) on GPU" in reason for reason in state.reasons)
