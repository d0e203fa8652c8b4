"""Several devices on one machine: one worker process per device (the protocol of :mod:`harness.worker`, each
running this process's harness), each handed the next case as soon as it is free, results streamed back as they
finish.

A worker for ``cuda:K`` sees only that GPU: its ``CUDA_VISIBLE_DEVICES`` is the K-th entry of the one the user
set (or ``K`` when none is set), and inside it the GPU is ``cuda:0``; its NVML telemetry finds that GPU through
the same variable (:mod:`harness.telemetry.nvml`). ``cpu`` may be named several times (several worker
processes on the CPU: the way to try this without a GPU). Nothing here prints.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Sequence

from harness.env import DEVICE_SPELLING
from harness.errors import SuiteError
from harness.worker import start_worker, worker_harness_mismatch

MAX_WORKERS = 64


@dataclass(frozen=True)
class WorkerDevice:
    requested: str  # as the user named it: "cuda:1", "cpu"
    device: str  # what the worker opens: "cuda:0" (pinned) or "cpu"
    visible: str | None  # the worker's CUDA_VISIBLE_DEVICES; None: inherited unchanged

    def environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        if self.visible is not None:
            environment["CUDA_VISIBLE_DEVICES"] = self.visible
        return environment

    def to_dict(self) -> dict:
        return {"device": self.requested, "CUDA_VISIBLE_DEVICES": self.visible}


def parse_devices(text: str, cuda_count: Callable[[], int] | None = None,
                  visible: str | None = None) -> list[WorkerDevice]:
    """``cuda:0,cuda:1``, ``all`` (every visible GPU) or ``cpu,cpu``; SuiteError for anything else.

    ``visible``: the CUDA_VISIBLE_DEVICES the user set (default: this process's)."""
    if cuda_count is None:
        import torch

        cuda_count = torch.cuda.device_count
    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible
    entries = [entry.strip() for entry in visible.split(",")] if visible not in (None, "") else None
    names = [name.strip() for name in str(text).split(",")]
    if names == ["all"]:
        count = cuda_count()
        if count == 0:
            raise SuiteError("--devices all: this machine has no usable CUDA GPU; name cpu,cpu to try it on the CPU")
        names = [f"cuda:{index}" for index in range(count)]
    if not names or any(not DEVICE_SPELLING.fullmatch(name) or name.startswith("auto") for name in names):
        raise SuiteError(f"--devices {text!r}: name devices as cuda:0,cuda:1 (or all, or cpu,cpu)")
    if len(names) > MAX_WORKERS:
        raise SuiteError(f"--devices {text!r}: at most {MAX_WORKERS} workers")
    kinds = {name.split(":")[0] for name in names}
    if len(kinds) > 1:
        raise SuiteError(f"--devices {text!r}: all CUDA or all CPU; a CPU and a GPU do not time alike")
    devices = []
    for name in names:
        if name == "cpu":
            devices.append(WorkerDevice(name, "cpu", None))
            continue
        index = int(name.split(":")[1]) if ":" in name else 0
        name = f"cuda:{index}"
        if any(device.requested == name for device in devices):
            raise SuiteError(f"--devices {text!r}: {name} named twice; one worker per GPU")
        count = cuda_count()
        if index >= count:
            raise SuiteError(f"--devices {text!r}: {name} asked for, but {count} CUDA device(s) are visible")
        if entries is not None and index >= len(entries):
            raise SuiteError(f"--devices {text!r}: {name} is not in CUDA_VISIBLE_DEVICES={visible}")
        devices.append(WorkerDevice(name, "cuda:0", entries[index] if entries is not None else str(index)))
    return devices


def run_on_devices(suite_path: str, keys: Sequence[str], devices: Sequence[WorkerDevice], *,
                   on_environment: Callable[[int, dict], None],
                   on_result: Callable[[int, dict], None],
                   on_lost: Callable[[int, str, str], None],
                   interpreter: Sequence[str] = (sys.executable,)) -> list[str]:
    """Run ``keys`` on one worker per device, the next key to whichever worker is free.

    ``on_environment(worker, environment)`` as each worker starts (it may raise to stop everything);
    ``on_result(worker, result document)`` as each case finishes; ``on_lost(worker, key, reason)`` when a worker
    dies while running ``key`` (the case is not retried; that worker is not replaced), or with key None when it
    exits with an error between cases. Returns the keys never
    started (all workers lost). Ctrl-C (KeyboardInterrupt) stops every worker and is raised again.
    """
    pending = deque(keys)
    events: queue.Queue = queue.Queue()
    running: dict[int, str | None] = {}
    processes: list[subprocess.Popen] = []
    folder = tempfile.TemporaryDirectory(prefix="rnnbench-devices-")
    stderr_files = []
    try:
        for index, device in enumerate(devices):
            plan_path = os.path.join(folder.name, f"plan-{index}.json")
            with open(plan_path, "w", encoding="utf-8") as handle:
                json.dump({"suite": str(suite_path), "device": device.device, "keys": "stdin"}, handle)
            stderr = open(os.path.join(folder.name, f"stderr-{index}.txt"), "w+", encoding="utf-8", errors="replace")
            stderr_files.append(stderr)
            try:
                process = start_worker(interpreter, plan_path, same_harness=True, environment=device.environment(),
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
            except OSError as exc:
                raise SuiteError(f"--devices: cannot start a worker ({' '.join(interpreter)}): {exc}") from None
            processes.append(process)
            running[index] = None
            threading.Thread(target=_read_messages, args=(index, process.stdout, events), daemon=True).start()

        def hand_out(index: int) -> None:
            process = processes[index]
            key = pending.popleft() if pending else None
            running[index] = key
            try:
                process.stdin.write(f"{key}\n" if key else "\n")
                process.stdin.flush()
                if key is None:
                    process.stdin.close()
            except OSError:  # it died before taking the case: the case goes to another worker
                if key is not None:
                    pending.appendleft(key)
                running[index] = None

        live = set(range(len(processes)))
        while live:
            try:
                index, message = events.get(timeout=0.2)
            except queue.Empty:
                continue
            kind = message.get("type")
            if kind == "environment":
                mismatch = worker_harness_mismatch(message.get("environment"))
                if mismatch:
                    raise SuiteError(f"--devices: the worker on {devices[index].requested}: {mismatch}")
                on_environment(index, message.get("environment") or {})
                hand_out(index)
            elif kind == "result":
                running[index] = None
                on_result(index, message["result"])
                hand_out(index)
            elif kind == "eof":
                live.discard(index)
                returncode = processes[index].wait()
                if returncode in (130, -signal.SIGINT, -signal.SIGTERM):
                    raise KeyboardInterrupt  # Ctrl-C reached the worker too: the run stops, the case is not failed
                key = running.get(index)
                if key is not None or returncode != 0:
                    on_lost(index, key, f"the worker on {devices[index].requested} exited with status {returncode}"
                                        f"{' while running it' if key else ''}: {_last_line(stderr_files[index])}")
                    running[index] = None
        return list(pending)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for stderr in stderr_files:
            stderr.close()
        folder.cleanup()


def _read_messages(index: int, stream, events: queue.Queue) -> None:
    try:
        for line in stream:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                events.put((index, message))
    finally:
        events.put((index, {"type": "eof"}))


def _last_line(stderr) -> str:
    stderr.flush()
    stderr.seek(0)
    lines = [line.strip() for line in stderr.read().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
