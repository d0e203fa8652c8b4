"""How long ``rnnbench --help``, ``list`` and ``validate`` take to answer: each command N times, each in a fresh
process (``python -m harness.cli ...``), the median, fastest and slowest wall time. Target: under 1 s each for a
CPU suite on the 2-core development machine. A suite on ``device: auto`` (suites/small.yaml) is timed too: it
asks torch whether there is a GPU, so it pays torch's import.

    PYTHONPATH=. python benchmarks/cli_startup.py [--runs 11] [--code OTHER_CHECKOUT]

``--code`` times another checkout's CLI (PYTHONPATH set to it), e.g. the tree before the lazy imports.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (
    ("--help",),
    ("list", "suites/regression-cpu.yaml"),
    ("validate", "suites/regression-cpu.yaml"),
    ("list", "--set", "device=cpu", "--set", "hidden_size=64,128"),
    ("validate", "suites/small.yaml"),
)


def time_command(args: tuple[str, ...], code: Path, runs: int) -> list[float] | str:
    """Wall seconds of each run, or why the command does not run in that checkout (an older one lacks --set)."""
    environment = {**os.environ, "PYTHONPATH": str(code)}
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=code, env=environment,
                                capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        if result.returncode != 0:
            return f"exit {result.returncode}: {result.stderr.strip().splitlines()[-1]}"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose CLI to time")
    options = parser.parse_args()
    load = os.getloadavg()
    print(f"{platform.node()}: {os.cpu_count()} cores, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"Python {platform.python_version()}, torch {metadata.version('torch')}, click {metadata.version('click')}; "
          f"code {options.code}; {options.runs} runs each")
    print("| command | median s | fastest s | slowest s |")
    print("| --- | --- | --- | --- |")
    for args in COMMANDS:
        seconds = time_command(args, options.code.resolve(), options.runs)
        if isinstance(seconds, str):
            print(f"| `rnnbench {' '.join(args)}` | does not run here ({seconds}) | | |")
            continue
        print(f"| `rnnbench {' '.join(args)}` | {statistics.median(seconds):.2f} | {min(seconds):.2f} | "
              f"{max(seconds):.2f} |")
    load = os.getloadavg()
    print(f"load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
