"""Small synthetic results for the reporter's tests: cases along known sweeps, times from known formulas,
samples spread evenly around an exact median (so the expected numbers are known without measuring)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from harness.spec.cases import Case
from harness.record.results import CaseResult, RunResults
from tests.helpers import make_case

ENVIRONMENT = {
    "rnnbench_version": "0.1.0",
    "device": "cpu",
    "machine": {"python_implementation": "CPython", "python_version": "3.11.7", "system": "Linux",
                "cpu": {"brand_raw": "Test CPU 9000", "count": 2}},
    "commit": {"id": "0123456789abcdef0123", "dirty": False, "branch": "main"},
    "torch": {"version": "2.13.0+cpu", "cuda": None, "cudnn": None, "onednn": "3.12.0"},
    "gpu": None,
    "threads": {"intra_op": 2, "inter_op": 2},
    "math_precision": {"requested": "fp32", "mkldnn": "ieee"},
}
SUITE = {"name": "synthetic", "description": "made up for a test", "source": "suites/synthetic.yaml",
         "sha256": "ab" * 32, "device": "cpu", "dtype": "float32", "precision": "fp32"}


def even_samples(median_ms: float, n: int = 21, spread: float = 0.04) -> tuple[float, ...]:
    """n (odd) samples evenly spaced within +-spread of median_ms: their median is exactly median_ms."""
    return tuple(float(v) for v in median_ms * (1 + spread * np.linspace(-1, 1, n)))


def ok_result(case: Case, step_ms: float, n: int = 21, spread: float = 0.04, backend_facts=None) -> CaseResult:
    step = np.asarray(even_samples(step_ms, n, spread))
    regions = ({"forward": tuple(step * 0.4), "backward": tuple(step * 0.6), "step": tuple(step)}
               if case.mode == "forward_backward" else {"forward": tuple(step)})
    return CaseResult(case=case, status="ok", samples_ms=regions, backend=backend_facts or {})


def failed_result(case: Case, reason: str = "out of memory: tried to allocate 1 TiB",
                  status: str = "failed") -> CaseResult:
    return CaseResult(case=case, status=status, reason=reason)


def make_run(results, source: str = "/results/synthetic.json", **suite) -> RunResults:
    return RunResults(environment=ENVIRONMENT, suite={**SUITE, **suite}, cases=tuple(results),
                      started_utc="2026-01-01T00:00:00+00:00", finished_utc="2026-01-01T00:01:00+00:00",
                      source=source)


# The power laws of the sweep run: time = PREFACTOR[backend] * batch^EXPONENT[backend] * (seq_len / 32)
EXPONENT = {"cudnn": 0.5, "eager": 0.9, "compile": 0.25}
PREFACTOR = {"cudnn": 1.0, "eager": 3.0, "compile": 2.0}
BATCHES = (1, 4, 16, 64, 256)
SEQ_LENS = (8, 16, 64)


def law_ms(backend: str, batch: int, seq_len: int = 32, cell: str = "lstm") -> float:
    return PREFACTOR[backend] * batch ** EXPONENT[backend] * (seq_len / 32) * (1.5 if cell == "gru" else 1.0)


def sweep_run(failed_keys=(), backends=("cudnn", "eager", "compile"), cells=("lstm", "gru"),
              source="/results/sweep.json") -> RunResults:
    """A batch sweep and a seq_len sweep around B16-T32 (like suites/scaling.yaml), every case on a power law;
    the cases whose key is in ``failed_keys`` failed."""
    results = []
    for cell in cells:
        for backend in backends:
            shapes = [dict(batch=b) for b in BATCHES] + [dict(seq_len=t) for t in SEQ_LENS]
            for shape in shapes:
                case = make_case(backend, cell, **shape)
                if case.key in failed_keys:
                    results.append(failed_result(case))
                else:
                    results.append(ok_result(case, law_ms(backend, case.batch, case.seq_len, cell)))
    return make_run(results, source=source)


def with_results(run: RunResults, results, source: str | None = None) -> RunResults:
    return replace(run, cases=tuple(results), source=source or run.source)
