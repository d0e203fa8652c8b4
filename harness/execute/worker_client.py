"""The parent's end of a worker process (:mod:`harness.execute.worker`): the one client every way of running cases in
other processes uses (rounds, ``--devices``, the sides of an A/B).

:class:`WorkerProcess` starts a worker through :func:`harness.execute.worker.start_worker`, hands it its plan
(:class:`WorkerPlan`, the worker's ``plan.json``), reads its JSON lines, sends it lines (case keys, "go"),
says why it ended with the last line it wrote to stderr, and stops it when the parent is done with it.
Nothing here prints.

The one rule for a worker's environment (:func:`check_worker_environment`):

- A worker that runs this process's harness (each round of ``run --rounds``, each ``run --devices`` worker)
  measures for this process's results file, whose environment is the parent's. So its environment is
  *checked*, never adopted: it must have imported this process's harness, and it must not differ from the
  parent's environment in anything that makes two runs incomparable (the blocking differences of
  :mod:`harness.record.environment_diff`: device type, GPU model, driver, torch, CUDA, cuDNN, CPU model, precision).
  A worker that does is refused before any of its cases counts. Its machine state is kept per round.
- A side of an A/B runs whatever its interpreter command names (another checkout, another torch): its own
  environment is *adopted* as its results file's environment, and never checked against the parent's.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

from harness.errors import RnnbenchError
from harness.execute.worker import start_worker, worker_harness_mismatch

STOP_TIMEOUT_S = 30


class WorkerFailed(RnnbenchError):
    """A worker process that could not start, imported other code, or ended before its plan was done (the
    message says which, with its last stderr line)."""


@dataclass(frozen=True)
class WorkerPlan:
    """What a worker runs (its ``plan.json``, :mod:`harness.execute.worker`)."""

    suite: str | None  # None: a suite of --set alone
    device: str | None
    keys: tuple[str, ...] | None  # None: the parent hands them out one at a time on the worker's stdin
    turns_blocks: int | None = None  # taking turns (an A/B): the timed blocks per case
    measure_peak: bool = True  # False: the parent measured the run's peak already
    sets: tuple[str, ...] = ()  # the run's --set overrides, applied by the worker as by the parent

    def to_dict(self) -> dict:
        document = {"suite": None if self.suite is None else str(self.suite), "device": self.device,
                    "keys": "stdin" if self.keys is None else list(self.keys)}
        if self.turns_blocks is not None:
            document["turns"] = {"blocks": self.turns_blocks}
        if not self.measure_peak:
            document["measure_peak"] = False
        if self.sets:
            document["sets"] = list(self.sets)
        return document

    @classmethod
    def from_dict(cls, data: Mapping) -> "WorkerPlan":
        keys = data["keys"]
        turns = data.get("turns")
        return cls(suite=data["suite"], device=data.get("device"),
                   keys=None if keys == "stdin" else tuple(keys),
                   turns_blocks=int(turns["blocks"]) if turns else None,
                   measure_peak=data.get("measure_peak", True) is not False, sets=tuple(data.get("sets") or ()))


class WorkerProcess:
    """One worker process and its pipes. ``label`` starts every message about it ("round 2", "round 0 B",
    "--devices: the worker on cuda:1"). ``interactive``: the parent writes to its stdin (keys, turns).

    Use it as a context manager: on exit the worker is stopped (terminated, killed when it does not end) and
    its files removed."""

    def __init__(self, interpreter: Sequence[str], plan: WorkerPlan, *, label: str, same_harness: bool,
                 environment: Mapping[str, str] | None = None, interactive: bool = False):
        self.interpreter, self.plan, self.label = list(interpreter), plan, label
        self.environment: dict | None = None
        self.results = 0
        self._folder = tempfile.TemporaryDirectory(prefix="rnnbench-worker-")
        plan_path = os.path.join(self._folder.name, "plan.json")
        with open(plan_path, "w", encoding="utf-8") as handle:
            json.dump(plan.to_dict(), handle)
        self._stderr = open(os.path.join(self._folder.name, "stderr.txt"), "w+", encoding="utf-8", errors="replace")
        try:
            self.process = start_worker(self.interpreter, plan_path, same_harness=same_harness,
                                        environment=environment, stdout=subprocess.PIPE, stderr=self._stderr,
                                        stdin=subprocess.PIPE if interactive else subprocess.DEVNULL)
        except OSError as exc:
            self._stderr.close()
            self._folder.cleanup()
            raise WorkerFailed(f"{label}: cannot start {self.command}: {exc}") from None

    @property
    def command(self) -> str:
        return " ".join(self.interpreter)

    def messages(self) -> Iterator[dict]:
        """Each JSON document the worker writes, as it comes, until its stdout ends (other lines are skipped).
        The first, its environment, is kept as ``environment``; results are counted."""
        for line in self.process.stdout:
            message = parse_message(line)
            if message is None:
                continue
            if message.get("type") == "environment" and self.environment is None:
                self.environment = message.get("environment")
            elif message.get("type") == "result":
                self.results += 1
            yield message

    def next_message(self) -> dict | None:
        """The next document, or None when the worker's stdout has ended."""
        return next(self.messages(), None)

    def send(self, line: str) -> bool:
        """Write one line to the worker's stdin; False when the worker has gone."""
        try:
            self.process.stdin.write(f"{line}\n")
            self.process.stdin.flush()
            return True
        except OSError:
            return False

    def close_input(self) -> None:
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def wait(self) -> int:
        return self.process.wait()

    def last_stderr_line(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().splitlines() if line.strip()]
        return lines[-1] if lines else "no message"

    def ended(self, of: int | None = None) -> str:
        """Why the worker ended (it has): ``exited with status N after K [of M] cases: <last stderr line>``."""
        returncode = self.wait()
        count = f"{self.results} of {of}" if of is not None else str(self.results)
        return f"exited with status {returncode} after {count} cases: {self.last_stderr_line()}"

    def failure(self, of: int | None = None) -> WorkerFailed:
        return WorkerFailed(f"{self.label}: the worker ({self.command}) {self.ended(of)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._stderr.close()
            self._folder.cleanup()

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_worker_environment(label: str, environment: Mapping | None, parent: Mapping | None) -> None:
    """The rule for a worker that runs this process's harness (see the module's docstring): raises WorkerFailed
    when it imported another harness, or when its environment differs from ``parent`` (the parent's
    environment, the results file's) in a way that makes two runs incomparable. ``parent`` None: the harness
    alone is checked."""
    mismatch = worker_harness_mismatch(environment)
    if mismatch:
        raise WorkerFailed(f"{label}: {mismatch}")
    if parent is None:
        return
    from harness.record.environment_diff import environment_differences
    from harness.record.results import RunResults

    blocking = [difference for difference in environment_differences(
        RunResults(environment=parent, suite={}, cases=()),
        RunResults(environment=environment or {}, suite={}, cases=())) if difference.blocking]
    if blocking:
        changes = ", ".join(f"{d.label}: {d.baseline} -> {d.current}" for d in blocking)
        raise WorkerFailed(f"{label}: runs in another environment than this process ({changes}); one results file "
                           f"holds one environment")


def parse_message(line: str) -> dict | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
