"""Results of ``rnnbench run`` in pytest-benchmark's JSON format, so ``pytest-benchmark compare`` /
``py.test-benchmark list`` and the tools built on them read them.

One benchmark per ok case, for one timed region (each case's primary region by default). pytest-benchmark's
statistics are in SECONDS (ours are milliseconds); they are computed by pytest-benchmark's own ``Stats``
class from the kept samples, so every figure (quartiles, outliers, ops) means exactly what it means there.
Each sample is one round of one iteration. Failed and skipped cases are left out, as pytest-benchmark leaves
out benchmarks that raised; ``skipped_cases`` in the result says which.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.record.metrics import check_sampled_metric
from harness.record.results import RunResults, thaw


@dataclass(frozen=True)
class Export:
    document: dict
    exported: int
    skipped_cases: tuple[str, ...]  # (key: why) of the cases left out


def benchmark_name(region: str, key: str) -> str:
    return f"{region}[{key}]"


def to_pytest_benchmark(run: RunResults, metric: str | None = None) -> Export:
    from pytest_benchmark import __version__ as pytest_benchmark_version
    from pytest_benchmark.stats import Stats

    check_sampled_metric(metric)
    suite = thaw(run.suite)
    suite_name = suite.get("name", "suite")
    timing = suite.get("timing") or {}
    on_cuda = run.environment.device_type == "cuda"
    options = {
        "disable_gc": True,  # the harness pauses the garbage collector inside the timed loop
        "timer": "torch.cuda.Event (per region)" if on_cuda else "time.perf_counter_ns",
        "min_rounds": timing.get("min_iters"),
        "max_time": timing.get("budget_s"),
        "min_time": None,
        "warmup": timing.get("warmup_iters"),
    }
    benchmarks, skipped = [], []
    for result in run.cases:
        region = metric or result.primary_region
        samples = result.samples_ms.get(region) or ()
        if not result.ok or not samples:
            why = (result.reason or result.status) if not result.ok else f"no {region} samples"
            skipped.append(f"{result.key}: {why}")
            continue
        stats = Stats()
        for sample_ms in samples:
            stats.update(sample_ms / 1e3)  # pytest-benchmark: seconds per round
        figures = stats.as_dict()
        figures["data"] = list(stats.data)
        figures["iterations"] = 1
        case = result.case
        benchmarks.append({
            "group": f"{suite_name}: {case.cell} {case.mode} {case.shape_label} {case.dtype} {case.device_type}",
            "name": benchmark_name(region, result.key),
            "fullname": f"rnnbench::{suite_name}::{benchmark_name(region, result.key)}",
            "params": case.to_dict(),
            "param": result.key,
            "extra_info": {
                "rnnbench_key": result.key,
                "region": region,
                "unit": "seconds per iteration",
                "backend": case.backend,
                "noisy": bool(result.stats[region].noisy),
                "source": run.source,
            },
            "options": options,
            "stats": figures,
        })
    machine_info = {**thaw(run.environment.machine), "gpu": thaw(run.environment.gpu),
                    "torch": thaw(run.environment.get("torch")), "device": run.environment.device}
    document = {
        "machine_info": machine_info,
        "commit_info": thaw(run.environment.commit),
        "benchmarks": benchmarks,
        "datetime": run.finished_utc or run.started_utc or run.environment.get("collected_utc"),
        "version": pytest_benchmark_version,
    }
    return Export(document=document, exported=len(benchmarks), skipped_cases=tuple(skipped))


def export_file(results_path, out, metric: str | None = None, on_left_out=lambda line: None) -> Export:
    """``rnnbench export-pytest-benchmark``: RESULTS read, exported and written to ``out`` (never over an input
    or another program's file); ``on_left_out`` hears each case left out. ResultsFileError when none is left."""
    from harness.errors import ResultsFileError
    from harness.record.results_io import refuse_overwriting, write_json_atomically
    from harness.record.results_store import read_results

    export = to_pytest_benchmark(read_results(results_path), metric)
    for line in export.skipped_cases:
        on_left_out(line)
    if not export.exported:
        raise ResultsFileError(f"{results_path}: no ok case with samples to export")
    write_json_atomically(refuse_overwriting(out, inputs=(results_path,)), export.document)
    return export
