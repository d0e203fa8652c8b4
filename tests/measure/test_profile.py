"""rnnbench profile: the step breakdown on traces (arithmetic), on real CPU profiles of tiny cases, the
profile file, the command, and a real CUDA trace on a GPU."""

import json

import pytest
import torch

from harness.measure.activity import ITERATION_RANGE, complete_events, iteration_windows
from harness.errors import ResultsFileError
from harness.record.profile_file import PROFILE_SCHEMA_VERSION, profile_from_document, read_profile
from harness.measure.profiling import ProfileSettings, profile_case
from harness.measure.step_profile import analyze_steps
from tests.helpers import cpu_settings, suite_file, tiny_case


def _event(cat, name, ts, dur, tid=1):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "tid": tid}


def _gpu_trace():
    """Two steps of 100 us. Step 1: a cuDNN kernel 10-40 overlapping a GEMM 30-50, a memset 60-70 (busy 50).
    Step 2: the same cuDNN kernel 210-240 (busy 30). Host: one top-level operator per step with a launch call."""
    return [
        _event("user_annotation", ITERATION_RANGE, 0, 100), _event("user_annotation", ITERATION_RANGE, 200, 100),
        _event("kernel", "void RNN_blockPersist_fp_LSTM<float>", 10, 30, tid=7),
        _event("kernel", "ampere_sgemm_32x32_sliced1x4_tn", 30, 20, tid=8),
        _event("gpu_memset", "Memset (Device)", 60, 10, tid=7),
        _event("kernel", "void RNN_blockPersist_fp_LSTM<float>", 210, 30, tid=7),
        _event("kernel", "stray between steps", 150, 30, tid=7),
        _event("cpu_op", "aten::lstm", 1, 80), _event("cpu_op", "aten::_cudnn_rnn", 2, 70),
        _event("cuda_runtime", "cudaLaunchKernel", 3, 4), _event("cuda_runtime", "cudaLaunchKernel", 8, 4),
        _event("cpu_op", "aten::lstm", 201, 40), _event("cuda_runtime", "cudaLaunchKernel", 203, 5),
    ]


def test_gpu_breakdown_takes_busy_as_a_union_and_idle_against_the_unprofiled_step():
    record = analyze_steps(_gpu_trace(), "cuda", unprofiled_step_ms=0.08)
    assert record["available"] and record["steps"] == 2
    assert record["busy_ms_per_step"] == [0.05, 0.03]
    assert record["busy_ms"] == pytest.approx(0.04)
    assert record["step_ms"] == 0.08 and record["profiled_step_ms"] == pytest.approx(0.1)
    assert record["idle_ms"] == pytest.approx(0.04) and record["idle_fraction"] == pytest.approx(0.5)
    assert record["launches_per_step"] == pytest.approx(2)  # 3 and 1 device activities
    assert record["cpu_dispatch_ms"] == pytest.approx(0.06)  # top-level operators: 80 and 40 us
    assert record["launch_api_ms"] == pytest.approx(0.0065)  # 8 and 5 us of launch calls
    assert record["launch_calls_per_step"] == pytest.approx(1.5) and record["graph_launches_per_step"] == 0
    groups = {g["name"]: g for g in record["groups"]}
    cudnn = groups["void RNN_blockPersist_fp_LSTM<float>"]
    assert cudnn["calls_per_step"] == 1 and cudnn["ms_per_step"] == pytest.approx(0.03)
    assert cudnn["mean_us"] == pytest.approx(30) and cudnn["share"] == pytest.approx(0.03 / 0.08)
    assert "stray between steps" not in groups
    classes = {c["class"]: c["ms_per_step"] for c in record["classes"]}
    assert classes["rnn_library"] == pytest.approx(0.03)
    assert classes["gemm"] == pytest.approx(0.01) and classes["copy"] == pytest.approx(0.005)
    assert classes["idle"] == pytest.approx(0.04)
    assert record["cudnn_algorithm_seen"] == "persistent"


def test_a_replayed_cuda_graph_is_one_launch_call_for_its_many_kernels():
    """A cudagraph step: the host calls cudaGraphLaunch twice (forward, backward graph), the device runs the
    graphs' kernels one by one (CUPTI reports each)."""
    kernels = [_event("kernel", "void RNN_blockPersist_fp_LSTM<float>", 10 + 10 * i, 8, tid=7) for i in range(6)]
    trace = [_event("user_annotation", ITERATION_RANGE, 0, 100), *kernels,
             _event("cpu_op", "aten::mse_loss", 1, 3),
             _event("cuda_runtime", "cudaGraphLaunch", 5, 6), _event("cuda_runtime", "cudaGraphLaunch", 40, 4),
             _event("cuda_runtime", "cudaLaunchKernel", 60, 2),
             _event("cuda_runtime", "cudaStreamSynchronize", 70, 20)]  # not a launch
    record = analyze_steps(trace, "cuda")
    assert record["launches_per_step"] == 6  # the device's kernels
    assert record["launch_calls_per_step"] == 3 and record["graph_launches_per_step"] == 2
    assert record["launch_api_ms"] == pytest.approx(0.012)  # 6 + 4 + 2 us: the graph launches' cost counts


def test_a_trace_without_step_ranges_is_said_to_be_so():
    assert analyze_steps([_event("kernel", "k", 0, 1)], "cuda") == {
        "available": False, "reason": f"the trace holds no '{ITERATION_RANGE}' range"}


def test_cpu_self_times_add_up_to_the_time_in_operators():
    events = [_event("user_annotation", ITERATION_RANGE, 0, 100),
              _event("cpu_op", "aten::lstm", 10, 50), _event("cpu_op", "aten::mkldnn_rnn_layer", 15, 30),
              _event("cpu_op", "aten::empty", 20, 5), _event("cpu_op", "aten::mse_loss", 70, 10)]
    record = analyze_steps(events, "cpu")
    groups = {g["name"]: g["ms_per_step"] for g in record["groups"]}
    assert groups == pytest.approx({"aten::lstm": 0.02, "aten::mkldnn_rnn_layer": 0.025, "aten::empty": 0.005,
                                    "aten::mse_loss": 0.01})
    assert record["busy_ms"] == pytest.approx(0.06) == pytest.approx(sum(groups.values()))
    assert record["idle_fraction"] == pytest.approx(0.4) and record["launches_per_step"] is None


@pytest.fixture(scope="module")
def cpu_profiles(tmp_path_factory):
    """Real profiles of a tiny LSTM (cudnn backend: oneDNN here) and a gate-level GRU, 1 thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("traces")
    try:
        lstm = profile_case(tiny_case(), cpu_settings(), ProfileSettings(steps=3), str(folder / "lstm.json"))
        gru = profile_case(tiny_case(cell="gru", backend="eager"), cpu_settings(), ProfileSettings(steps=3))
    finally:
        torch.set_num_threads(threads)
    return lstm, gru, folder / "lstm.json"


def test_a_real_cpu_profile_breaks_the_step_down_by_operator(cpu_profiles):
    lstm, gru, _ = cpu_profiles
    for record in (lstm, gru):
        assert record["status"] == "ok", record["reason"]
        assert record["parity"]["passed"]
        profile = record["profile"]
        assert profile["steps"] == 3 and profile["device_type"] == "cpu"
        assert 0 < profile["busy_ms"] <= profile["step_ms"] == profile["profiled_step_ms"]
        assert len(record["unprofiled_step_samples_ms"]) >= 5
        total = sum(c["ms_per_step"] for c in profile["classes"])
        assert total == pytest.approx(profile["step_ms"], rel=0.05)  # operators' self time + outside them
        assert record["cudnn_algorithm"] == {"absent": "the case runs on the CPU: no cuDNN"} or \
            record["case"]["backend"] != "cudnn"
    lstm_groups = {g["name"]: g for g in lstm["profile"]["groups"]}
    if "oneDNN" in lstm["backend"]["kernel_library"]:
        assert lstm_groups["aten::mkldnn_rnn_layer"]["calls_per_step"] == 1
        assert lstm_groups["aten::mkldnn_rnn_layer"]["class"] == "rnn_library"
    gru_groups = {g["name"]: g for g in gru["profile"]["groups"]}
    # the gate-level GRU: one hidden-state matmul per time step (T=4) and its gradients
    assert gru_groups["aten::mm"]["calls_per_step"] >= 4 and gru_groups["aten::mm"]["class"] == "gemm"
    assert gru["profile"]["operators_per_step"] > lstm["profile"]["operators_per_step"]


def test_the_chrome_trace_of_a_case_is_kept_with_its_recorded_steps(cpu_profiles):
    lstm, _, trace = cpu_profiles
    assert lstm["trace_file"] == str(trace)
    events = json.loads(trace.read_text())["traceEvents"]
    assert len(iteration_windows(complete_events(events))) == 3


def test_a_case_that_fails_parity_is_recorded_failed_with_its_reason():
    from harness.measure.backends import build_backend

    def broken(name, reference):
        built = build_backend(name, reference)
        with torch.no_grad():
            next(iter(built.parameters.values())).add_(1.0)
        return built

    import harness.measure.runner as runner

    original = runner.build_backend
    runner.build_backend = broken  # prepare_case's default builder, as run uses it
    try:
        record = profile_case(tiny_case(backend="eager"), cpu_settings(), ProfileSettings(steps=1))
    finally:
        runner.build_backend = original
    assert record["status"] == "failed" and record["reason"] and record["parity"]["passed"] is False
    assert "profile" not in record  # a case that computes something else is not profiled


def _document(**changes):
    document = {"schema": "rnnbench.profile", "schema_version": PROFILE_SCHEMA_VERSION, "status": "complete",
                "environment": {}, "suite": {}, "options": {},
                "cases": [{"key": tiny_case().key, "case": tiny_case().to_dict(), "status": "ok",
                           "profile": analyze_steps(_gpu_trace(), "cuda", 0.08)}]}
    document.update(changes)
    return document


def test_a_profile_file_reads_back_and_bad_ones_are_refused_in_one_line(tmp_path):
    run = profile_from_document(_document(), "p.json")
    assert run.cases[0].ok and run.cases[0].profile["busy_ms"] == pytest.approx(0.04)
    with pytest.raises(ResultsFileError, match="profile schema version 2"):
        profile_from_document(_document(schema_version=2), "p.json")
    bad = _document()
    bad["cases"][0]["profile"]["busy_ms"] = -1
    with pytest.raises(ResultsFileError, match="busy_ms"):
        profile_from_document(bad, "p.json")
    path = tmp_path / "cut.profile.json"
    path.write_text(json.dumps(_document())[:50])
    with pytest.raises(ResultsFileError, match="not valid JSON"):
        read_profile(path)


@pytest.mark.gpu
def test_a_real_cuda_trace_of_a_tiny_lstm_is_classified_and_adds_up(tmp_path):
    from harness.measure.runner import RunSettings
    from tests.helpers import QUICK_TIMING

    settings = RunSettings(device=torch.device("cuda"), timing=QUICK_TIMING)
    record = profile_case(tiny_case(device_type="cuda", hidden_size=64, input_size=64, batch=8, seq_len=16),
                          settings, ProfileSettings(steps=3), str(tmp_path / "trace.json"))
    assert record["status"] == "ok", record["reason"]
    profile = record["profile"]
    assert profile["steps"] == 3 and profile["launches_per_step"] > 0
    assert 0 < profile["busy_ms"] and 0 <= profile["idle_fraction"] <= 1
    assert profile["busy_ms"] <= max(profile["step_ms"], profile["profiled_step_ms"])
    classes = {c["class"]: c["ms_per_step"] for c in profile["classes"]}
    assert classes["rnn_library"] > 0, profile["groups"]  # cuDNN's RNN kernels are recognised
    names = [g["name"] for g in profile["groups"]]
    assert profile["cudnn_algorithm_seen"] in ("persistent", "standard"), names
    assert record["cudnn_algorithm"]["forward"] in ("STANDARD", "PERSIST_STATIC", "PERSIST_STATIC_SMALL_H")
    # the union never exceeds the sum of the kernels' times, and idle is the rest of the step
    assert profile["busy_ms"] <= sum(classes[c] for c in classes if c != "idle") + 1e-9
    assert profile["idle_ms"] == pytest.approx(max(0.0, profile["step_ms"] - profile["busy_ms"]))
    assert all(busy > 0 for busy in profile["busy_ms_per_step"])
    assert profile["busy_ms"] == pytest.approx(sum(profile["busy_ms_per_step"]) / 3, rel=1e-4)
    unclassified = [g["name"] for g in profile["groups"] if g["class"] == "other"]
    assert sum(g["ms_per_step"] for g in profile["groups"] if g["class"] == "other") <= 0.5 * profile["busy_ms"], \
        f"kernels left as other: {unclassified}"


# --- the command and the report -------------------------------------------------------------------------

def profile_suite(folder, backends=("cudnn", "eager")):
    """One LSTM case a backend, tiny: what the profile command's tests profile."""
    return suite_file(folder, "tiny.yaml", name="tiny-profile", grid={"cell": ["lstm"], "backend": list(backends)})


@pytest.mark.usefixtures("short_machine_window")
def test_profile_writes_a_profile_file_traces_and_tables_and_report_draws_it(tmp_path):
    from tests.helpers import rnnbench_here

    suite = profile_suite(tmp_path)
    done = rnnbench_here("profile", suite, "-o", tmp_path / "profiles", "--steps", 2, "--trace", "--quiet",
                         "--backend", "cudnn")
    assert done.returncode == 0, done.stderr
    [path] = (tmp_path / "profiles").glob("*.profile.json")
    run = read_profile(path)
    assert [entry.case.backend for entry in run.cases] == ["cudnn"]
    assert all(entry.ok and entry.profile["steps"] == 2 for entry in run.cases)
    assert run.environment.intra_op_threads == 1 and run.options["steps"] == 2
    traces = sorted((tmp_path / "profiles").glob("*.traces/*.pt.trace.json"))
    assert len(traces) == 1 and all(entry.trace_file for entry in run.cases)
    assert "largest operators (self time)" in done.stdout and f"profile: {path}" in done.stdout
    assert "1 case profiled: 1 ok, 0 failed, 0 skipped" in done.stdout

    report = rnnbench_here("report", path, "-o", tmp_path / "report")
    assert report.returncode == 0, report.stderr
    [chart] = (tmp_path / "report").glob("*-step-breakdown.png")
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert "(profiles)</h2>" in (tmp_path / "report" / "report.html").read_text()


@pytest.mark.parametrize("args, message", [
    (("--steps", "0"), "--steps"),
    (("--backend", "cudnm"), "did you mean 'cudnn'"),
    (("--filter", "cell=gru"), "no case matches"),
])
def test_profile_refuses_bad_input_in_one_line(tmp_path, args, message):
    from tests.helpers import rnnbench_here

    suite = profile_suite(tmp_path)
    done = rnnbench_here("profile", suite, "-o", tmp_path, *args)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.profile.json"))


def test_the_stacked_bars_draw_every_class_of_a_case_and_its_idle_time():
    from harness.report.profile_plots import profile_figure

    run = profile_from_document(_document(), "p.json")
    figure = profile_figure(run)
    widths = sorted(round(patch.get_width(), 6) for patch in figure.axes[0].patches if patch.get_width() > 0)
    # rnn_library 0.03, gemm 0.01, copy 0.005, idle 0.04 (against the unprofiled step of 0.08 ms)
    assert widths == [0.005, 0.01, 0.03, 0.04]


@pytest.mark.gpu
def test_a_real_cuda_trace_of_a_replayed_graph_counts_its_graph_launches(tmp_path):
    from harness.measure.runner import RunSettings
    from tests.helpers import QUICK_TIMING

    settings = RunSettings(device=torch.device("cuda"), timing=QUICK_TIMING)
    record = profile_case(tiny_case(backend="cudagraph", device_type="cuda", hidden_size=64, input_size=64, batch=8,
                                    seq_len=16), settings, ProfileSettings(steps=3), str(tmp_path / "trace.json"))
    assert record["status"] == "ok", record["reason"]
    profile = record["profile"]
    assert profile["graph_launches_per_step"] == 2, profile  # the forward graph, then the loss-and-backward one
    assert profile["launches_per_step"] > profile["launch_calls_per_step"]


def _cpu_document(profiled_step_us: float, unprofiled_step_ms: float):
    """A CPU profile of one step (``profiled_step_us`` long, one operator in it) beside its unprofiled step."""
    events = [_event("user_annotation", ITERATION_RANGE, 0, profiled_step_us),
              _event("cpu_op", "aten::lstm", 1, profiled_step_us / 2)]
    profile = analyze_steps(events, "cpu", unprofiled_step_ms=unprofiled_step_ms)
    return _document(cases=[{"key": tiny_case().key, "case": tiny_case().to_dict(), "status": "ok",
                             "profile": profile}])


def test_a_profile_the_profiler_dominates_says_so_in_the_table_and_the_chart():
    from harness.report.profile_plots import profile_figure
    from harness.report.profile_text import profile_text

    run = profile_from_document(_cpu_document(375_000, 1.06), "p.json")
    text = profile_text(run)
    assert ("DISTORTED: profiled step 375 ms is 354x the unprofiled 1.06 ms: the profiler's overhead dominates; "
            "the breakdown shows shares, not times") in text
    figure = profile_figure(run)
    notes = [t.get_text() for t in figure.axes[0].texts]
    assert notes == [" 375 ms profiled · unprofiled 1.06 ms (354×)"]
    assert "shares, not times" in figure._suptitle.get_text()
    # the unprofiled step is drawn where it ends, on the profiled step's bar
    [mark] = figure.axes[0].lines
    assert list(mark.get_xdata()) == [1.06, 1.06]


def test_a_profile_near_its_unprofiled_step_carries_no_distortion_flag():
    from harness.report.profile_plots import profile_figure
    from harness.report.profile_text import profile_text

    run = profile_from_document(_cpu_document(1_500, 1.0), "p.json")
    assert "DISTORTED" not in profile_text(run)
    figure = profile_figure(run)
    assert [t.get_text() for t in figure.axes[0].texts] == [" 1.50 ms profiled · unprofiled 1.00 ms"]
    assert "shares, not times" not in figure._suptitle.get_text()


def test_a_gpu_profile_flags_a_host_the_profiler_slowed_beside_its_unprofiled_step():
    from harness.report.profile_text import profile_text

    # the trace's steps are 0.1 ms; unprofiled 0.04 ms: 2.5x
    run = profile_from_document(_document(cases=[{"key": tiny_case().key, "case": tiny_case().to_dict(),
                                                  "status": "ok", "profile": analyze_steps(_gpu_trace(), "cuda", 0.04)}]),
                                "p.json")
    text = profile_text(run)
    assert "step 0.040 ms (unprofiled; profiled 0.100)" in text
    assert "DISTORTED: profiled step 0.100 ms is 2.5x the unprofiled 0.040 ms: the profiler slowed the host" in text
    assert "DISTORTED" not in profile_text(profile_from_document(_document(), "p.json"))  # 0.1 against 0.08
