"""Shards: a deterministic split of a run's cases into N parts of about equal estimated cost, for N CI jobs,
N Slurm array tasks or N machines, each running ``rnnbench run SUITE --shard I/N`` (I from 0 to N-1).

The estimate only has to rank cases against each other: it is the suite's timing policy (warm-up, at least
``min_iters`` iterations and ``budget_s`` seconds, the profiled pass) applied to an estimated iteration
time, made of the arithmetic (the FLOP model, :mod:`harness.spec.flops`) at a nominal throughput of the device
plus a fixed cost per time step (``seq_len`` steps per layer and direction run one after the other whatever
the width, which is what makes a 1500-step GRU long), larger for backends that run the gate math op by op,
plus each backend's fixed cost per case (compilation, TorchScript's profiling runs). The split is longest-processing-time-first: cases by
decreasing cost (ties by key), each to the shard with the least cost so far (ties: the lowest index). It
depends on nothing but the selected cases and the suite, so every job computes the same split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from harness.spec.cases import Case
from harness.errors import SuiteError
from harness.spec.flops import region_flops
from harness.spec.suite import Timing, profile_iters_for

# Rough figures for ranking cases, not predictions, read off the H100 results of 2026-11-27 (torch 2.11,
# /work/shared/gpu-runs: suites small, regression and a bfloat16 DeepBench subset): sustained FLOP/s of an
# RNN's matmuls, and the cost of one time step (fwd or bwd, per layer and direction) of cuDNN's kernels:
# about 35 us on the H100 (kernel launches); on a CPU a guess.
NOMINAL_FLOPS_PER_S = {"cuda": 50e12, "cpu": 50e9}
STEP_OVERHEAD_S = {"cuda": 35e-6, "cpu": 20e-6}
# Backends that run the gate math op by op pay the per-step cost several times over (H100: eager 420-520 us,
# compile 390 us, torchscript 160 us per step against cuDNN's 35 us).
STEP_OVERHEAD_FACTOR = {"cudnn": 1.0, "compile_module": 1.0, "torchscript": 4.5, "compile": 11.0, "eager": 13.0}
# Per case, apart from the timed loop: building, parity, the first call with its compilation (H100: TorchScript's
# profiling runs 6-12 s a case, torch.compile 3-10 s, the others well under a second).
CASE_OVERHEAD_S = {"cudnn": 0.3, "eager": 0.3, "compile_module": 0.5, "compile": 6.0, "torchscript": 9.0}

SHARD_SPELLING = re.compile(r"\s*([0-9]{1,6})\s*/\s*([0-9]{1,6})\s*")


@dataclass(frozen=True)
class ShardSpec:
    index: int  # 0 .. count-1
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_dict(self) -> dict:
        return {"index": self.index, "count": self.count}


def parse_shard(text: str, option: str = "--shard") -> ShardSpec:
    """'I/N' with 0 <= I < N; anything else raises SuiteError with one line saying what is allowed."""
    match = SHARD_SPELLING.fullmatch(str(text))
    if match is None:
        raise SuiteError(f"{option} {text!r}: write I/N, e.g. 0/4 for the first of 4 shards")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise SuiteError(f"{option} {text!r}: the number of shards must be at least 1")
    if index >= count:
        raise SuiteError(f"{option} {text!r}: the shard index counts from 0 to {count - 1} (0/{count} is the first "
                         f"of {count} shards)")
    return ShardSpec(index, count)


def estimated_case_s(case: Case, timing: Timing) -> float:
    """A rough estimate of the seconds ``rnnbench run`` spends on ``case`` under ``timing``."""
    device = case.device_type if case.device_type in NOMINAL_FLOPS_PER_S else "cpu"
    sequential_steps = case.seq_len * case.num_layers * case.directions * (2 if case.needs_grad else 1)
    iteration_s = (region_flops(case, case.primary_region) / NOMINAL_FLOPS_PER_S[device]
                   + sequential_steps * STEP_OVERHEAD_S[device] * STEP_OVERHEAD_FACTOR.get(case.backend, 1.0))
    timed_s = max(timing.budget_s, timing.min_iters * iteration_s)
    untimed_s = (1 + timing.warmup_iters + profile_iters_for(timing, case.device_type)) * iteration_s
    return CASE_OVERHEAD_S.get(case.backend, 1.0) + timed_s + untimed_s


def split(cases: Sequence[Case], count: int, timing: Timing) -> list[list[Case]]:
    """The ``count`` shards of ``cases`` (longest-processing-time first); each keeps the cases' given order."""
    costs = {case.key: estimated_case_s(case, timing) for case in cases}
    loads = [0.0] * count
    assignment: dict[str, int] = {}
    for case in sorted(cases, key=lambda c: (-costs[c.key], c.key)):
        target = min(range(count), key=lambda index: (loads[index], index))
        assignment[case.key] = target
        loads[target] += costs[case.key]
    return [[case for case in cases if assignment[case.key] == index] for index in range(count)]


def shard_cases(cases: Sequence[Case], spec: ShardSpec, timing: Timing) -> tuple[Case, ...]:
    """The cases of shard ``spec``. Refuses more shards than cases: a job with nothing to run is a mistake."""
    if spec.count > len(cases):
        raise SuiteError(f"--shard {spec}: {spec.count} shards of {len(cases)} selected case(s) would leave "
                         f"shards empty; use at most {len(cases)} shards")
    return tuple(split(cases, spec.count, timing)[spec.index])
