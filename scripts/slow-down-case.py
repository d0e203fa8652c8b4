#!/usr/bin/env python3
"""Copy a results file with the samples of some cases multiplied by a factor: a known regression to check
that the gate catches it (and names the case) on a real pair of runs.

    scripts/slow-down-case.py RESULTS OUT --case 'lstm/cudnn/*H128*' [--factor 1.2]

--case is a glob on the case key (repeatable); every timed region's kept samples of a matching case are
multiplied by --factor. Prints the keys it changed.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from dataclasses import replace

from harness.record.store import read_results, write_results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("out")
    parser.add_argument("--case", action="append", required=True, metavar="GLOB")
    parser.add_argument("--factor", type=float, default=1.2)
    args = parser.parse_args()
    run = read_results(args.results)
    changed, cases = [], []
    for result in run.cases:
        if result.ok and any(fnmatch.fnmatchcase(result.key, pattern) for pattern in args.case):
            samples = {region: tuple(v * args.factor for v in values) for region, values in result.samples_ms.items()}
            result = replace(result, samples_ms=samples)
            changed.append(result.key)
        cases.append(result)
    if not changed:
        print(f"no ok case matches {args.case}", file=sys.stderr)
        return 2
    write_results(args.out, replace(run, cases=tuple(cases)))
    for key in changed:
        print(f"x{args.factor:g}: {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
