"""Rounds: the cases of a run measured again in fresh worker processes, each round in its own shuffled order.

Two runs of the same code in two processes differ by more than what one process sees (memory layout,
thread placement, allocator and cache state, the order of cases, a neighbour's load). A round samples that
population once; several rounds let the gate see it. Nothing here prints; results arrive through callbacks
as each case finishes, so a round that dies keeps every case it finished.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Sequence

from harness.errors import RnnbenchError
from harness.worker import start_worker, worker_harness_mismatch


class RoundFailed(RnnbenchError):
    """A worker process ended before its plan was done (the message says how, with its last stderr line)."""


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
              on_environment: Callable[[dict], None] = lambda environment: None) -> RoundOutcome:
    """Run ``order`` (case keys) of the suite in a fresh worker process (:func:`harness.worker.start_worker`)
    that runs this process's harness, wherever it was started.

    ``on_result`` gets each case's result document as soon as the worker sends it. Raises RoundFailed when
    the worker ends before its plan is done (what it finished has been handed to ``on_result``), or when it
    imported another harness than this process's (before any case runs).
    """
    outcome = RoundOutcome(index=index, order=list(order), interpreter=list(interpreter))
    with tempfile.TemporaryDirectory(prefix="rnnbench-round-") as folder:
        plan_path = os.path.join(folder, "plan.json")
        with open(plan_path, "w", encoding="utf-8") as handle:
            json.dump({"suite": str(suite_path), "device": device, "keys": list(order)}, handle)
        with open(os.path.join(folder, "stderr.txt"), "w+", encoding="utf-8", errors="replace") as stderr:
            try:
                process = start_worker(interpreter, plan_path, same_harness=True, stdout=subprocess.PIPE,
                                       stderr=stderr, stdin=subprocess.DEVNULL)
            except OSError as exc:
                raise RoundFailed(f"round {index}: cannot start {' '.join(interpreter)}: {exc}") from None
            try:
                for line in process.stdout:
                    message = _parse(line)
                    if message is None:
                        continue
                    if message.get("type") == "environment":
                        outcome.environment = message.get("environment")
                        mismatch = worker_harness_mismatch(outcome.environment)
                        if mismatch:
                            raise RoundFailed(f"round {index}: {mismatch}")
                        on_environment(outcome.environment)
                    elif message.get("type") == "result":
                        outcome.results.append(message["result"])
                        on_result(message["result"])
                    elif message.get("type") == "done":
                        outcome.complete = True
                returncode = process.wait()
            except BaseException:
                process.terminate()
                process.wait()
                raise
            if not outcome.complete:
                stderr.seek(0)
                tail = [line.strip() for line in stderr.read().splitlines() if line.strip()]
                last = tail[-1] if tail else "no message"
                raise RoundFailed(f"round {index}: the worker ({' '.join(interpreter)}) exited with status "
                                  f"{returncode} after {len(outcome.results)} of {len(order)} cases: {last}")
    return outcome


class _TurnTaker:
    """The parent's end of one worker that takes turns: its process, and the turn it asks for next."""

    def __init__(self, side: str, interpreter: Sequence[str], plan_path: str, stderr, round_index: int):
        self.side, self.interpreter, self.round_index, self._stderr = side, list(interpreter), round_index, stderr
        self.asking: tuple | None = None  # (key, phase, block) of the turn it waits for
        self.done = False
        self.results = 0
        try:
            # each side's interpreter command decides which harness and torch it runs (rnnbench ab)
            self.process = start_worker(interpreter, plan_path, same_harness=False, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=stderr)
        except OSError as exc:
            raise RoundFailed(f"round {round_index} {side.upper()}: cannot start {' '.join(interpreter)}: {exc}") from None

    def read_until_asking(self, on_result, on_environment) -> None:
        """Hand on what the worker says until it asks for a turn or says it is done."""
        self.asking = None
        for line in self.process.stdout:
            message = _parse(line)
            if message is None:
                continue
            kind = message.get("type")
            if kind == "environment":
                on_environment(self.side, message.get("environment"))
            elif kind == "result":
                self.results += 1
                on_result(self.side, message["result"])
            elif kind == "turn":
                self.asking = (message.get("key"), message.get("phase"), message.get("block"))
                return
            elif kind == "done":
                self.done = True
                return
        self.process.wait()
        self._stderr.seek(0)
        tail = [line.strip() for line in self._stderr.read().splitlines() if line.strip()]
        raise RoundFailed(f"round {self.round_index} {self.side.upper()}: the worker ({' '.join(self.interpreter)}) "
                          f"exited with status {self.process.returncode} after {self.results} cases: "
                          f"{tail[-1] if tail else 'no message'}")

    def take_turn(self, on_result, on_environment) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        self.read_until_asking(on_result, on_environment)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait()


def run_interleaved_round(index: int, suite_path: str, device: str | None, order: Sequence[str],
                          interpreters: dict[str, Sequence[str]], *, blocks: int,
                          on_result: Callable[[str, dict], None] = lambda side, result: None,
                          on_environment: Callable[[str, dict], None] = lambda side, environment: None) -> None:
    """Round ``index`` of ``order`` (case keys) with one worker per side, alive together, taking turns.

    Per case: each side builds it (parity, warm-up) in turn, then times it in ``blocks`` blocks, the sides
    alternating block by block (A B, B A, A B, ...; the sides' first order reversed on odd rounds), so a
    drift of the machine within seconds hits every side alike. Only one process computes at any time.
    Results reach ``on_result(side, document)`` as each case finishes; RoundFailed when a worker dies.
    """
    sides = list(interpreters)
    if index % 2:
        sides.reverse()
    with tempfile.TemporaryDirectory(prefix="rnnbench-round-") as folder:
        plan_path = os.path.join(folder, "plan.json")
        with open(plan_path, "w", encoding="utf-8") as handle:
            json.dump({"suite": str(suite_path), "device": device, "keys": list(order),
                       "turns": {"blocks": blocks}}, handle)
        takers: list[_TurnTaker] = []
        try:
            for side in sides:
                stderr = open(os.path.join(folder, f"stderr-{side}.txt"), "w+", encoding="utf-8", errors="replace")
                takers.append(_TurnTaker(side, interpreters[side], plan_path, stderr, index))
            for taker in takers:
                taker.read_until_asking(on_result, on_environment)
                if order and taker.asking != (order[0], "prepare", None):
                    raise RoundFailed(f"round {index} {taker.side.upper()}: the worker ({' '.join(taker.interpreter)}) "
                                      f"does not take turns (an rnnbench older than this one?): it "
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
                        raise RoundFailed(f"round {index} {taker.side.upper()}: the worker asked for a turn "
                                          f"out of order: {taker.asking}")
            for taker in takers:
                if not taker.done:
                    raise RoundFailed(f"round {index} {taker.side.upper()}: the worker asked for {taker.asking} "
                                      f"after the last case")
        finally:
            for taker in takers:
                taker.stop()
                taker._stderr.close()


def _parse(line: str) -> dict | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
