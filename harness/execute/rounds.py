"""Rounds: the cases of a run measured again in fresh worker processes, each round in its own shuffled order.

Two runs of the same code in two processes differ by more than what one process sees (memory layout,
thread placement, allocator and cache state, the order of cases, a neighbour's load). A round samples that
population once; several rounds let the gate see it. Nothing here prints; results arrive through callbacks
as each case finishes, so a round that dies keeps every case it finished.
"""

from __future__ import annotations

import random
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from harness.execute.worker_client import WorkerFailed, WorkerPlan, WorkerProcess, check_worker_environment


RoundFailed = WorkerFailed  # a round's worker ended before its plan was done (the message says how)


def round_order(keys: Sequence[str], seed: int, round_index: int) -> list[str]:
    """The case keys in the order round ``round_index`` runs them: a shuffle seeded by (seed, round)."""
    order = list(keys)
    random.Random(f"rnnbench-round:{seed}:{round_index}").shuffle(order)
    return order


@dataclass
class RoundOutcome:
    index: int
    order: list[str]
    interpreter: list[str]
    environment: dict | None = None
    results: list[dict] = field(default_factory=list)
    complete: bool = False


def run_round(index: int, suite_path: str, device: str | None, order: Sequence[str], *,
              interpreter: Sequence[str] = (sys.executable,),
              on_result: Callable[[dict], None] = lambda result: None,
              on_environment: Callable[[dict], None] = lambda environment: None,
              parent_environment: Mapping | None = None, measure_peak: bool = True,
              sets: Sequence[str] = ()) -> RoundOutcome:
    """Run ``order`` (case keys) of the suite in a fresh worker process that runs this process's harness,
    wherever it was started.

    ``on_result`` gets each case's result document as soon as the worker sends it. Raises RoundFailed when
    the worker ends before its plan is done (what it finished has been handed to ``on_result``), or when its
    environment breaks the rule of :func:`harness.execute.worker_client.check_worker_environment` (another harness;
    with ``parent_environment``, an environment a results file of the parent's cannot hold), before any case runs.
    """
    outcome = RoundOutcome(index=index, order=list(order), interpreter=list(interpreter))
    plan = WorkerPlan(suite=None if suite_path is None else str(suite_path), device=device, keys=tuple(order),
                      measure_peak=measure_peak, sets=tuple(sets))
    with WorkerProcess(interpreter, plan, label=f"round {index}", same_harness=True) as worker:
        for message in worker.messages():
            if message.get("type") == "environment":
                outcome.environment = message.get("environment")
                check_worker_environment(worker.label, outcome.environment, parent_environment)
                on_environment(outcome.environment)
            elif message.get("type") == "result":
                outcome.results.append(message["result"])
                on_result(message["result"])
            elif message.get("type") == "done":
                outcome.complete = True
        if not outcome.complete:
            raise worker.failure(of=len(order))
    return outcome


class _TurnTaker:
    """The parent's end of one worker that takes turns: its process, and the turn it asks for next."""

    def __init__(self, side: str, worker: WorkerProcess):
        self.side, self.worker = side, worker
        self.asking: tuple | None = None  # (key, phase, block) of the turn it waits for
        self.done = False

    def read_until_asking(self, on_result, on_environment) -> None:
        """Hand on what the worker says until it asks for a turn or says it is done."""
        self.asking = None
        for message in self.worker.messages():
            kind = message.get("type")
            if kind == "environment":
                on_environment(self.side, message.get("environment"))
            elif kind == "result":
                on_result(self.side, message["result"])
            elif kind == "turn":
                self.asking = (message.get("key"), message.get("phase"), message.get("block"))
                return
            elif kind == "done":
                self.done = True
                return
        raise self.worker.failure()

    def take_turn(self, on_result, on_environment) -> None:
        self.worker.send("go")
        self.read_until_asking(on_result, on_environment)


def run_interleaved_round(index: int, suite_path: str, device: str | None, order: Sequence[str],
                          interpreters: dict[str, Sequence[str]], *, blocks: int,
                          on_result: Callable[[str, dict], None] = lambda side, result: None,
                          on_environment: Callable[[str, dict], None] = lambda side, environment: None) -> None:
    """Round ``index`` of ``order`` (case keys) with one worker per side, alive together, taking turns.

    Per case: each side builds it (parity, warm-up) in turn, then times it in ``blocks`` blocks, the sides
    alternating block by block (A B, B A, A B, ...; the sides' first order reversed on odd rounds), so a
    drift of the machine within seconds hits every side alike. Only one process computes at any time.
    Results reach ``on_result(side, document)`` as each case finishes; RoundFailed when a worker dies.
    Each side's interpreter command decides which harness and torch it runs; its environment is its own
    (:mod:`harness.execute.worker_client`).
    """
    sides = list(interpreters)
    if index % 2:
        sides.reverse()
    plan = WorkerPlan(suite=str(suite_path), device=device, keys=tuple(order), turns_blocks=blocks)
    with ExitStack() as stack:
        takers = [_TurnTaker(side, stack.enter_context(WorkerProcess(
            interpreters[side], plan, label=f"round {index} {side.upper()}", same_harness=False, interactive=True)))
            for side in sides]
        for taker in takers:
            taker.read_until_asking(on_result, on_environment)
            if order and taker.asking != (order[0], "prepare", None):
                raise RoundFailed(f"{taker.worker.label}: the worker ({taker.worker.command}) does not take turns "
                                  f"(an rnnbench older than this one?): it "
                                  f"{'ran its cases alone' if taker.done else f'asked for {taker.asking}'}")
        for key in order:
            for taker in takers:
                if taker.asking == (key, "prepare", None):
                    taker.take_turn(on_result, on_environment)
            for block in range(blocks):
                for taker in (takers if block % 2 == 0 else takers[::-1]):
                    if taker.asking == (key, "block", block):
                        taker.take_turn(on_result, on_environment)
            for taker in takers:
                if taker.asking is not None and taker.asking[0] == key:
                    raise RoundFailed(f"{taker.worker.label}: the worker asked for a turn out of order: "
                                      f"{taker.asking}")
        for taker in takers:
            if not taker.done:
                raise RoundFailed(f"{taker.worker.label}: the worker asked for {taker.asking} after the last case")
