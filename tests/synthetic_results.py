"""Synthetic results for the comparator's tests: runs whose samples come from a seeded RNG, with known shifts."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np

from harness.spec.cases import Case
from harness.record.results import CaseResult, RunResults
from tests.helpers import make_case

CPU_ENVIRONMENT = {
    "rnnbench_version": "0.1.0",
    "device": "cpu",
    "machine": {"node": "ci-box", "python_version": "3.11.7", "cpu": {"brand_raw": "AMD EPYC", "count": 2}},
    "commit": {"id": "0123456789abcdef", "dirty": False, "branch": "main", "time": None, "project": "rnnbench"},
    "torch": {"version": "2.13.0+cpu", "cuda": None, "cudnn": None, "onednn": "3.12.0"},
    "gpu": None,
    "threads": {"intra_op": 2, "inter_op": 2},
}

GPU_ENVIRONMENT = {
    **CPU_ENVIRONMENT,
    "device": "cuda:0",
    "torch": {"version": "2.13.0+cu128", "cuda": "12.8", "cudnn": 91002, "onednn": "3.12.0"},
    "gpu": {"index": 0, "name": "NVIDIA H100 80GB HBM3", "capability": "9.0", "driver": "570.124.06"},
}

SUITE = {"name": "synthetic", "precision": "fp32", "dtype": "float32", "sha256": "ab" * 32,
         "timing": {"warmup_iters": 3, "min_iters": 10, "budget_s": 0.5}}


def grid_cases(device_type="cpu") -> list[Case]:
    """20 cases, like suites/small.yaml: 2 cells x 5 backends x 2 sizes."""
    return [make_case(backend, cell, hidden_size=hidden, device_type=device_type) for cell in ("lstm", "gru")
            for backend in ("cudnn", "eager", "torchscript", "compile", "compile_module") for hidden in (64, 128)]


def base_ms(index: int) -> float:
    return 1.0 + 0.7 * index


def samples(rng: np.random.Generator, median_ms: float, n: int = 200, sigma: float = 0.03,
            drift: float = 0.0) -> tuple[float, ...]:
    """Lognormal noise around ``median_ms``; ``drift``: the run slows linearly by this fraction from start to end."""
    trend = 1.0 + drift * np.linspace(0.0, 1.0, n)
    return tuple(float(v) for v in median_ms * trend * np.exp(rng.normal(0.0, sigma, n)))


def case_result(case: Case, step_ms: tuple[float, ...], status: str = "ok", reason: str | None = None) -> CaseResult:
    if status != "ok":
        return CaseResult(case=case, status=status, reason=reason)
    step = np.asarray(step_ms)
    regions = {"forward": tuple(step * 0.4), "backward": tuple(step * 0.6), "step": tuple(step_ms)}
    if case.mode != "forward_backward":
        regions = {"forward": tuple(step_ms)}
    return CaseResult(case=case, status="ok", samples_ms=regions)


def synthetic_run(seed: int, *, shifts: dict[str, float] | None = None, cases: list[Case] | None = None,
                  environment: dict | None = None, n: int = 200, sigma: float = 0.03, drift: float = 0.0,
                  source: str | None = None) -> RunResults:
    """Every case's samples drawn afresh from ``seed``; ``shifts`` multiplies a case's times (by key)."""
    rng = np.random.default_rng(seed)
    shifts = shifts or {}
    cases = cases if cases is not None else grid_cases()
    results = [case_result(case, samples(rng, base_ms(i) * shifts.get(case.key, 1.0), n, sigma, drift))
               for i, case in enumerate(cases)]
    return RunResults(environment=copy.deepcopy(environment or CPU_ENVIRONMENT), suite=dict(SUITE),
                      cases=tuple(results), started_utc="2026-01-01T00:00:00+00:00", source=source)


def with_cases(run: RunResults, results) -> RunResults:
    return replace(run, cases=tuple(results))


TIGHT, DRIFTING = grid_cases()[3], grid_cases()[13]


def gate_cases():
    """A tight 20 % slowdown of TIGHT, and a 20 % slowdown of DRIFTING measured while each run slowed by 50 %
    from start to end, among 18 unchanged cases (like suites/small.yaml)."""
    rng = np.random.default_rng(5)
    drifting_a = case_result(DRIFTING, samples(rng, 3.1, drift=0.5))
    drifting_b = case_result(DRIFTING, samples(rng, 3.1 * 1.2, drift=0.5))
    base = synthetic_run(1, source="/r/a.json")
    current = synthetic_run(2, shifts={TIGHT.key: 1.2}, source="/r/b.json")
    return (with_cases(base, [drifting_a if r.case == DRIFTING else r for r in base.cases]),
            with_cases(current, [drifting_b if r.case == DRIFTING else r for r in current.cases]))


def ab_runs(seed: int, cases: list[Case], *, changes: dict[str, float] | None = None, rounds: int = 6,
            blocks: int = 4, per_block: int = 8, between_round_sd: float = 0.01, within_round_sd: float = 0.01,
            machine_sd: float = 0.05, sample_sd: float = 0.02, session: str = "s1") -> tuple[RunResults, RunResults]:
    """The two sides of one rnnbench ab with recorded blocks, step samples only (forward_backward cases): per round
    each side's process has its own speed (``between_round_sd``, log scale: the rounds' random effect of the log
    ratio is sqrt(2) x that), per block the machine's speed hits both sides alike (``machine_sd``: cancels when
    paired), each side's block has its own (``within_round_sd``), and each sample its noise. ``changes``: B's
    factor by case key (default 1: an A/A)."""
    rng = np.random.default_rng(seed)
    changes = changes or {}
    sides: dict[str, list[CaseResult]] = {"a": [], "b": []}
    for index, case in enumerate(cases):
        values = {"a": [], "b": []}
        for _ in range(rounds):
            process = {side: rng.normal(0, between_round_sd) for side in values}
            for _ in range(blocks):
                machine = rng.normal(0, machine_sd)
                for side in values:
                    factor = changes.get(case.key, 1.0) if side == "b" else 1.0
                    values[side].extend(base_ms(index) * factor * np.exp(
                        machine + process[side] + rng.normal(0, within_round_sd)
                        + rng.normal(0, sample_sd, per_block)))
        for side in sides:
            sides[side].append(CaseResult(case=case, status="ok", samples_ms={"step": tuple(map(float, values[side]))},
                                          round_lengths={"step": (blocks * per_block,) * rounds},
                                          block_lengths=(per_block,) * (rounds * blocks)))
    return tuple(RunResults(environment=copy.deepcopy(CPU_ENVIRONMENT), suite=dict(SUITE), cases=tuple(sides[side]),
                            options={"interleaved": {"session": session, "side": side, "blocks": blocks}})
                 for side in ("a", "b"))
