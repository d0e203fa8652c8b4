"""How ``rnnbench report`` and ``rnnbench compare`` scale with the number of cases in a results file.

Writes two synthetic results files of N cases each (default 10,000, the most a suite may hold; built with the
tests' synthetic builders: a grid of cells x backends x modes x batch x seq_len x hidden_size, every case
with seeded lognormal samples), then times, as subprocesses of the real CLI, ``rnnbench report A`` (one file)
and ``rnnbench compare A B``. Target: 10,000 cases in under 60 s each on the 2-core development machine.

    PYTHONPATH=. python benchmarks/report_scale.py [--cases 10000] [--samples 50] [--keep DIR]
                                                   [--only report|compare] [--profile OUT.prof]
                                                   [--code OLDER_CHECKOUT]

``--profile`` runs the command under cProfile (``python -m cProfile -o OUT.prof``) instead of timing it bare.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from harness.spec.cases import Case  # noqa: E402
from harness.record.store import write_results  # noqa: E402
from synthetic_results import synthetic_run  # noqa: E402

CELLS = ("lstm", "gru")
BACKENDS = ("cudnn", "eager", "torchscript", "compile", "compile_module")
MODES = ("forward_backward", "forward")
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SEQ_LENS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
HIDDEN_SIZES = (64, 128, 256, 512, 1024)
TARGET_S = 60.0


def grid(count: int) -> list[Case]:
    """The first ``count`` cases of the grid (10,000 in all), in an order that keeps every axis swept."""
    cases = [Case(cell=cell, backend=backend, mode=mode, batch=batch, seq_len=seq_len, input_size=64,
                  hidden_size=hidden, num_layers=1, bidirectional=False, dtype="float32", device_type="cpu")
             for hidden, seq_len, batch, cell, mode, backend in itertools.product(
                 HIDDEN_SIZES, SEQ_LENS, BATCHES, CELLS, MODES, BACKENDS)]
    if count > len(cases):
        raise SystemExit(f"--cases {count}: the grid holds {len(cases)}")
    return cases[:count]


def write_pair(folder: Path, count: int, samples: int) -> tuple[Path, Path]:
    cases = grid(count)
    a, b = folder / "a.json", folder / "b.json"
    write_results(a, synthetic_run(1, cases=cases, n=samples, source=str(a)))
    write_results(b, synthetic_run(2, cases=cases, n=samples, shifts={cases[0].key: 1.3}, source=str(b)))
    return a, b


def timed(label: str, arguments: list[str], profile: str | None, code: Path = ROOT) -> float:
    environment = {**os.environ, "PYTHONPATH": str(code)}
    prefix = [sys.executable, "-m", "cProfile", "-o", str(Path(profile).resolve()), "-m"] if profile else [sys.executable, "-m"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # run in ``code``: ``python -m`` puts the working folder before PYTHONPATH
    finished = subprocess.run([*prefix, "harness.cli", *arguments], env=environment, capture_output=True, text=True,
                              cwd=code)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    tail = (finished.stderr.strip().splitlines() or [""])[-1]
    # on a shared machine the wall time includes waiting for a core; the CPU time is the command's own work
    print(f"{label:<8} {elapsed:8.1f} s wall {cpu_s:8.1f} s CPU  exit {finished.returncode}  {tail[:90]}", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=50, help="samples per region per case")
    parser.add_argument("--keep", default=None, help="write the files (and the report) here and keep them")
    parser.add_argument("--only", choices=("report", "compare"), default=None)
    parser.add_argument("--profile", default=None, metavar="OUT.prof")
    parser.add_argument("--code", default=str(ROOT), metavar="DIR",
                        help="the tree whose harness the timed commands run (an older checkout: before/after)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        a, b = write_pair(folder, args.cases, args.samples)
        print(f"{args.cases} cases x {args.samples} samples: {a.stat().st_size >> 20} MiB per file, written in "
              f"{time.perf_counter() - start:.1f} s; cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
        figures = {}
        if args.only in (None, "report"):
            figures["report"] = timed("report", ["report", str(a), "-o", str(folder / "report")], args.profile,
                                      Path(args.code))
        if args.only in (None, "compare"):
            figures["compare"] = timed("compare", ["compare", str(a), str(b)], args.profile, Path(args.code))
        slow = [name for name, seconds in figures.items() if seconds > TARGET_S]
        print(f"target {TARGET_S:g} s: {'missed by ' + ', '.join(slow) if slow else 'met'}")


if __name__ == "__main__":
    main()
