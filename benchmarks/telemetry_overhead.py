"""Does sampling the GPU disturb what the harness measures?

For a launch-bound case (the eager backend: many small kernels launched from Python, small sizes, a long
sequence) and a compute-bound case (cudnn, large sizes), the harness's median step time is measured with
telemetry off and on, interleaved in one process (off, on, on, off, ... so that drift of a shared machine
hits both alike), ``--reps`` times each. The figure that counts is the median of the "on" medians over
the median of the "off" medians; the spread is the range of the per-pair ratios.

Arms:
    off      no sampling
    process  the harness's sampler: a separate process, reading NVML every period while the loop runs
    thread   for comparison only: the same reads from a thread of the timing process (it takes the GIL)

    python benchmarks/telemetry_overhead.py [--device auto|cpu|cuda] [--reps 5] [--seconds 0.6]
        [--arms off,process,thread] [--nvml-module pynvml|tests.fake_nvml] [--json PATH]

Without NVML (a CPU machine) the sampler cannot start; ``--nvml-module tests.fake_nvml`` puts the fake
NVML module in its place, which exercises the process and the pipe (not NVML's own cost).
"""

from __future__ import annotations

# Only light imports at the top: the sampler process ('spawn') re-imports this file as its main module.
import argparse
import json
import statistics
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    # name: (backend, batch, seq_len, input_size, hidden_size) on a GPU, then on a CPU (smaller: 2 cores)
    "launch-bound": {"cuda": ("eager", 4, 256, 32, 32), "cpu": ("eager", 4, 128, 32, 32)},
    "compute-bound": {"cuda": ("cudnn", 256, 128, 1024, 1024), "cpu": ("cudnn", 32, 32, 256, 256)},
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--reps", type=int, default=5, help="measurements per arm and case (default 5)")
    parser.add_argument("--seconds", type=float, default=0.6, help="timed loop per measurement (default 0.6 s)")
    parser.add_argument("--period-ms", type=float, default=None,
                        help="sampling period (default: the suites' default, harness.spec.suite.Telemetry)")
    parser.add_argument("--arms", default="off,process,thread")
    parser.add_argument("--nvml-module", default=None, help="NVML module (default pynvml; tests.fake_nvml)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: 1 on a CPU, to leave a core for the "
                             "sampler as a GPU machine does; torch's default on a GPU)")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--json", dest="json_path", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # for --nvml-module tests.fake_nvml

    import torch

    from harness.measure.env import resolve_device
    from harness.spec.suite import Telemetry
    from harness.measure.precision import apply_math_precision
    from harness.measure.telemetry.case import device_spec
    from harness.measure.telemetry.sampler import NvmlMonitor

    args.period_ms = args.period_ms or Telemetry().nvml_period_ms
    device = resolve_device(args.device)
    threads = args.threads or (1 if device.type == "cpu" else None)
    if threads:
        torch.set_num_threads(threads)
    apply_math_precision("fp32")
    arms = [arm for arm in args.arms.split(",") if arm]
    period_s = args.period_ms / 1e3
    module = args.nvml_module or "pynvml"

    monitor = NvmlMonitor(device_spec(device), period_s=period_s, module=module).start()
    nvml_note = (f"sampler: {module}, device {monitor.info.get('device', {}).get('name')}"
                 if monitor.available else f"NVML unavailable: {monitor.reason}")
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name())
    print(f"telemetry overhead on {device} ({machine}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s); period {args.period_ms:g} ms; {nvml_note}")
    if not monitor.available:
        print("  the 'process' and 'thread' arms sample nothing here: their figures measure only the "
              "begin/end exchange (or nothing); use --nvml-module tests.fake_nvml to exercise the sampler")

    report = {"device": str(device), "machine": machine, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "period_ms": args.period_ms, "module": module,
              "nvml": nvml_note, "reps": args.reps, "seconds": args.seconds, "cases": {}}
    try:
        for name in args.cases.split(","):
            report["cases"][name] = _measure_case(name, device, arms, monitor, module, period_s, args)
    finally:
        monitor.close()
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def _cpu_name() -> str:
    from harness.measure.env import machine_info

    return machine_info()["cpu"]["brand_raw"]


def _measure_case(name, device, arms, monitor, module, period_s, args) -> dict:
    import torch

    from harness.measure.backends import build_backend
    from harness.spec.cases import Case
    from harness.measure.runner import RunSettings, make_inputs, make_reference
    from harness.record.stats import summarize
    from harness.spec.suite import Timing
    from harness.measure.timing import Workload, clock_for, measure

    backend_name, batch, seq_len, input_size, hidden_size = CASES[name][device.type]
    case = Case("lstm", backend_name, "forward_backward", batch, seq_len, input_size, hidden_size, 1, False,
                "float32", device.type)
    settings = RunSettings(device=device)
    reference = make_reference(case, settings)
    x, target = make_inputs(case, settings)
    backend = build_backend(case.backend, reference)
    work = Workload(backend.model, x, target, case.mode, tuple(backend.parameters.values()))
    clock = clock_for(device)
    timing = Timing(warmup_iters=3, min_iters=10, max_iters=1_000_000, budget_s=args.seconds)

    windows = {"off": None, "process": lambda: _process_window(monitor),
               "thread": lambda: _thread_window(device, module, period_s)}
    medians: dict[str, list[float]] = {arm: [] for arm in arms}
    iterations: dict[str, list[int]] = {arm: [] for arm in arms}
    for rep in range(args.reps):
        order = arms if rep % 2 == 0 else arms[::-1]  # ABBA: drift cancels
        for arm in order:
            measured = measure(work, clock, timing, around_loop=windows[arm])
            medians[arm].append(summarize(measured.samples_ms["step"]).median_ms)
            iterations[arm].append(len(measured.samples_ms["step"]))
    del backend, work
    if device.type == "cuda":
        torch.cuda.empty_cache()

    figures = {"case": case.key, "medians_ms": medians, "iterations": iterations, "vs_off": {}}
    off = statistics.median(medians["off"]) if "off" in medians else None
    print(f"\n{name}: {case.key}")
    for arm in arms:
        median = statistics.median(medians[arm])
        line = f"  {arm:8s} median of {args.reps} medians {median:9.4f} ms  (each {_range(medians[arm])})"
        if off and arm != "off":
            pairs = [on / base for on, base in zip(medians[arm], medians["off"])]
            ratio = median / off
            figures["vs_off"][arm] = {"ratio_of_medians": ratio, "pair_ratio_min": min(pairs),
                                      "pair_ratio_max": max(pairs)}
            line += (f"  on/off {ratio:.4f} ({(ratio - 1) * 100:+.2f} %), pairs {min(pairs):.3f}.."
                     f"{max(pairs):.3f}{'  OVER 1 %' if abs(ratio - 1) > 0.01 else ''}")
        print(line)
    return figures


def _range(values) -> str:
    return f"{min(values):.4f}..{max(values):.4f}"


@contextmanager
def _process_window(monitor):
    if not monitor.available:
        yield
        return
    monitor.begin_window("step")
    try:
        yield
    finally:
        monitor.end_window("step")


@contextmanager
def _thread_window(device, module, period_s):
    """What the harness does NOT do: read NVML from a thread of the timing process."""
    from harness.measure.telemetry.case import device_spec
    from harness.measure.telemetry.nvml import NvmlUnavailable, SampleReader, init, load_nvml, resolve_handle, shutdown

    try:
        nvml = load_nvml(module)
        init(nvml)
        handle, _ = resolve_handle(nvml, device_spec(device))
    except NvmlUnavailable:
        yield
        return
    reader = SampleReader(nvml, handle)
    stop = threading.Event()
    samples = []

    def sample():
        while not stop.wait(period_s):
            samples.append(reader.read())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        shutdown(nvml)


if __name__ == "__main__":
    sys.exit(main())
