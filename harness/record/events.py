"""What a run says while it goes: the events the executor (:mod:`harness.execute.executor`) sends to its
``on_progress`` and the reporter's progress (:mod:`harness.report.progress`) shows. Data only: below both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class CaseProgress:
    """A case starts (``finished`` False: in this process only) or has finished; ``label`` says which, and
    where ("round 2/5 lstm/...", "cuda:1 gru/...")."""

    done: int
    total: int
    label: str
    finished: bool = True


@dataclass(frozen=True)
class WorkerStarted:
    """A worker process said where it runs: ``where`` names it ("round 2", "round 2 A", "cuda:1")."""

    where: str
    environment: Mapping | None
    side: str | None = None  # an A/B's side


@dataclass(frozen=True)
class WorkerLost:
    """A ``--devices`` worker ended with an error between cases (its cases go to the others)."""

    reason: str
