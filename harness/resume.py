"""Continuing an interrupted run: what was finished, and whether it may be continued at all.

A run may be continued only with the same suite (its content, not its file name or comments) on the same
environment (the fields that decide timings: device, GPU, driver, torch, CUDA, cuDNN, CPU, host, threads,
precision); mixing cases measured under different conditions into one results file would make its
comparisons dishonest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from harness.compare import environment_differences
from harness.errors import RnnbenchError
from harness.results import JOURNAL_SUFFIX, CaseResult, RunResults, read_results_or_journal, thaw

# environment_differences() lets these pass for a comparison of two runs; within one run they must match.
ALSO_REFUSED_WHEN_RESUMING = ("host", "torch threads")
SUITE_FIELDS_IGNORED = ("source", "sha256", "description")


class ResumeError(RnnbenchError):
    """A run that cannot be continued: a different suite or environment, or nothing to resume."""


def results_path_of(resume_path: str | Path) -> Path:
    """The results file a resumed run writes: the one given, or the one its journal belongs to."""
    path = Path(resume_path)
    return path.with_name(path.name[: -len(JOURNAL_SUFFIX)]) if path.name.endswith(JOURNAL_SUFFIX) else path


def load_for_resume(resume_path: str | Path, suite: Mapping, environment: Mapping) -> RunResults:
    """The earlier run's results; raises ResumeError when this suite or environment is not the one it used."""
    previous = read_results_or_journal(resume_path)
    if _suite_content(previous.suite) != _suite_content(suite):
        raise ResumeError(f"{resume_path}: the suite has changed since that run (grid, timing, dtype or device "
                          f"differ); start a new run instead of resuming")
    now = RunResults(environment=environment, suite=suite, cases=())
    refused = [d for d in environment_differences(previous, now)
               if d.blocking or d.label in ALSO_REFUSED_WHEN_RESUMING]
    if refused:
        changes = ", ".join(f"{d.label}: {d.baseline} -> {d.current}" for d in refused)
        raise ResumeError(f"{resume_path}: the environment has changed since that run ({changes}); "
                          f"its timings would not be comparable; start a new run")
    return previous


def finished_cases(previous: RunResults) -> tuple[CaseResult, ...]:
    """Every case the earlier run recorded (ok, failed or skipped) is finished and is not run again."""
    return previous.cases


def _suite_content(suite: Mapping) -> dict:
    return {key: value for key, value in thaw(suite).items() if key not in SUITE_FIELDS_IGNORED}
