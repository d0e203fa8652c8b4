"""Does rnnbench report what a user measures on their own nn.LSTM / nn.GRU?

For each configuration, two sides take turns in one process:

- **the user's side** shares no code with the harness: it builds ``nn.LSTM``/``nn.GRU`` as a user would
  (``nn.LSTM(I, H).to(device, dtype)``), makes its own inputs, sets the math precision with torch's public
  flags, and times forward + MSE loss + backward with one bare CUDA event pair per iteration (``perf_counter``
  on a CPU), synchronised per iteration, gradients cleared before the clock starts;
- **the harness's side** is what ``rnnbench run`` does for the same configuration: the suite file is loaded,
  the process settings applied and the case run (build, parity, warm-up, timed loop, telemetry window,
  profiled pass) by the harness's own functions; its figure is the case's median step.

Rounds alternate which side goes first, so that drift of a shared machine hits both alike. The figure that
counts is the median over rounds of harness median / user median. One more user-only round after the last
harness round is set against the first user round: a harness that leaves something behind in the process
(a profiler still attached, a flag left set) slows the user's module too, which that ratio shows.

Exit status: 0 every configuration agrees within the tolerance (2 % on a GPU, 5 % on a CPU), 1 one disagrees,
2 the rounds scatter too much to tell (inconclusive).

    PYTHONPATH=. python benchmarks/agreement.py [--device cuda|cpu] [--rounds 5] [--seconds 1.0]
                                                [--threads N] [--only NAME,...] [--json OUT.json]

On a CPU the configurations are CPU-sized copies of the GPU ones (same cells and dtypes, smaller shapes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Config:
    name: str
    cell: str
    batch: int
    seq_len: int
    input_size: int
    hidden_size: int
    dtype: str = "float32"


GPU_CONFIGS = (
    Config("launch-bound", "lstm", 8, 50, 64, 64),
    Config("medium-lstm", "lstm", 64, 100, 512, 512),
    Config("medium-gru", "gru", 64, 100, 512, 512),
    Config("compute-bound", "lstm", 128, 25, 1024, 1024),
    Config("compute-bound-bf16", "lstm", 128, 25, 4096, 4096, "bfloat16"),
)
# CPU-sized copies of the GPU configurations: the same cells and dtypes, shapes a 2-core machine times in
# milliseconds.
CPU_CONFIGS = (
    Config("launch-bound", "lstm", 8, 50, 64, 64),
    Config("medium-lstm", "lstm", 16, 50, 256, 256),
    Config("medium-gru", "gru", 16, 50, 256, 256),
    Config("compute-bound", "lstm", 32, 25, 512, 512),
    Config("compute-bound-bf16", "lstm", 16, 25, 256, 256, "bfloat16"),
)
TOLERANCE = {"cuda": 0.02, "cpu": 0.05}


# ---- the user's side: torch only ---------------------------------------------------------------------
def set_user_precision(precision: str) -> None:
    """The math precision a careful user sets: IEEE float32 ('fp32') or TensorFloat-32 ('tf32')."""
    allow = precision == "tf32"
    if hasattr(torch.backends, "fp32_precision"):
        mode = "tf32" if allow else "ieee"
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.rnn.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow


def user_module(config: Config, device: torch.device) -> nn.Module:
    torch.manual_seed(1234)
    rnn_class = nn.LSTM if config.cell == "lstm" else nn.GRU
    return rnn_class(config.input_size, config.hidden_size).to(device=device, dtype=getattr(torch, config.dtype))


def user_inputs(config: Config, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = getattr(torch, config.dtype)
    x = torch.randn(config.seq_len, config.batch, config.input_size, device=device, dtype=dtype)
    target = torch.randn(config.seq_len, config.batch, config.hidden_size, device=device, dtype=dtype)
    return x, target


def user_step_times_ms(module: nn.Module, x: torch.Tensor, target: torch.Tensor, seconds: float,
                       warmup: int = 3, min_iters: int = 10) -> list[float]:
    """Forward + MSE loss + backward, one bare clock pair per iteration, synchronised per iteration."""
    on_gpu = x.device.type == "cuda"
    if on_gpu:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times: list[float] = []
    began = time.perf_counter()
    iteration = 0
    while iteration < warmup + min_iters or time.perf_counter() - began < seconds:
        module.zero_grad(set_to_none=True)
        if on_gpu:
            start.record()
            output, _ = module(x)
            F.mse_loss(output, target).backward()
            end.record()
            torch.cuda.synchronize()
            elapsed_ms = start.elapsed_time(end)
        else:
            t0 = time.perf_counter()
            output, _ = module(x)
            F.mse_loss(output, target).backward()
            elapsed_ms = (time.perf_counter() - t0) * 1e3
        iteration += 1
        if iteration == warmup:
            began = time.perf_counter()
        elif iteration > warmup:
            times.append(elapsed_ms)
    return times


# ---- the harness's side: what `rnnbench run` does ------------------------------------------------------
def suite_yaml(config: Config, device: str, precision: str, seconds: float, threads: int | None) -> str:
    lines = [f"name: agreement-{config.name}", f"device: {device}", f"dtype: {config.dtype}",
             f"precision: {precision}"]
    if threads:
        lines.append(f"threads: {threads}")
    lines += ["timing: {warmup_iters: 3, min_iters: 10, budget_s: %g}" % seconds,
              "grid:", f"  cell: [{config.cell}]", "  backend: [cudnn]", "  mode: [forward_backward]",
              f"  batch: [{config.batch}]", f"  seq_len: [{config.seq_len}]",
              f"  input_size: [{config.input_size}]", f"  hidden_size: [{config.hidden_size}]"]
    return "\n".join(lines) + "\n"


def harness_step_median_ms(suite_path: str, device: str) -> tuple[float, float, list[str]]:
    """(median step ms, IQR / median, torch warnings) of the case, run as `rnnbench run` runs it."""
    from harness.measure.runner import run_case
    from harness.execute.session import apply_process_settings, open_suite

    opened = open_suite(suite_path, device)
    apply_process_settings(opened.suite)
    (case,) = opened.cases
    result = run_case(case, opened.settings())
    if not result.ok:
        raise RuntimeError(f"{case.key}: {result.status}: {result.reason}")
    stats = result.stats["step"]
    return stats.median_ms, stats.relative_iqr, list(result.warnings)


# ---- rounds, figures and the verdict --------------------------------------------------------------------
def relative_iqr(times: list[float]) -> float:
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (q3 - q1) / statistics.median(times)


def check_config(config: Config, device: torch.device, rounds: int, seconds: float, precision: str,
                 threads: int | None, tolerance: float, workdir: Path) -> dict:
    suite_path = workdir / f"{config.name}.yaml"
    suite_path.write_text(suite_yaml(config, str(device), precision, seconds, threads))
    module = user_module(config, device)
    x, target = user_inputs(config, device)

    def user_round() -> tuple[float, float]:
        set_user_precision(precision)
        if threads:
            torch.set_num_threads(threads)
        times = user_step_times_ms(module, x, target, seconds)
        return statistics.median(times), relative_iqr(times)

    user, harness, warnings = [], [], set()
    for index in range(rounds):
        user_first = index % 2 == 0
        if user_first:
            user.append(user_round())
        median, iqr, raised = harness_step_median_ms(str(suite_path), str(device))
        harness.append((median, iqr))
        warnings.update(raised)
        if not user_first:
            user.append(user_round())
    after = user_round()
    ratios = [h / u for (h, _), (u, _) in zip(harness, user)]
    ratio = statistics.median(ratios)
    spread = max(ratios) - min(ratios)
    if abs(ratio - 1) <= tolerance:
        verdict = "agree"
    elif spread > 4 * tolerance and min(ratios) <= 1 + tolerance:
        verdict = "inconclusive"  # rounds scatter both ways across the tolerance: the machine, not the harness
    else:
        verdict = "DISAGREE"
    return {**asdict(config), "device": str(device), "rounds": rounds,
            "user_median_ms": statistics.median(u for u, _ in user),
            "harness_median_ms": statistics.median(h for h, _ in harness),
            "ratio": ratio, "ratios": ratios,
            "user_iqr": statistics.median(i for _, i in user),
            "harness_iqr": statistics.median(i for _, i in harness),
            "user_after_over_first": after[0] / user[0][0],
            "tolerance": tolerance, "verdict": verdict, "harness_warnings": sorted(warnings)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per side per round")
    parser.add_argument("--precision", choices=("fp32", "tf32"), default="fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch's CPU threads (default: torch's)")
    parser.add_argument("--tolerance", type=float, default=None, help="default: 0.02 on a GPU, 0.05 on a CPU")
    parser.add_argument("--only", default=None, help="comma-separated configuration names")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    tolerance = args.tolerance if args.tolerance is not None else TOLERANCE[device.type]
    configs = GPU_CONFIGS if device.type == "cuda" else CPU_CONFIGS
    if args.only:
        wanted = set(args.only.split(","))
        configs = tuple(c for c in configs if c.name in wanted)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{hardware}, torch {torch.__version__}, {torch.get_num_threads()} threads, precision {args.precision}, "
          f"{args.rounds} alternating rounds of {args.seconds:g} s per side; tolerance {tolerance:.0%}")
    print(f"{'configuration':20} {'shape':26} {'user ms':>8} {'harness ms':>10} {'ratio':>6} "
          f"{'user IQR':>8} {'harn IQR':>8} {'after':>6}  verdict   per-round ratios")
    figures = []
    with tempfile.TemporaryDirectory(prefix="rnnbench-agreement-") as workdir:
        for config in configs:
            row = check_config(config, device, args.rounds, args.seconds, args.precision, args.threads,
                               tolerance, Path(workdir))
            figures.append(row)
            shape = f"{config.cell} B{config.batch} T{config.seq_len} I{config.input_size} H{config.hidden_size}"
            shape += " bf16" if config.dtype == "bfloat16" else ""
            print(f"{config.name:20} {shape:26} {row['user_median_ms']:8.3f} {row['harness_median_ms']:10.3f} "
                  f"{row['ratio']:6.3f} {row['user_iqr']:8.1%} {row['harness_iqr']:8.1%} "
                  f"{row['user_after_over_first']:6.3f}  {row['verdict']:9} "
                  + " ".join(f"{r:.3f}" for r in row["ratios"]), flush=True)
            for warning in row["harness_warnings"]:
                print(f"    torch warned during the harness's run: {warning}")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(device), "hardware": hardware,
                                               "torch": torch.__version__, "threads": torch.get_num_threads(),
                                               "precision": args.precision, "configs": figures}, indent=2))
    verdicts = {row["verdict"] for row in figures}
    if "DISAGREE" in verdicts:
        return 1
    if "inconclusive" in verdicts:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
