"""Several devices on one machine: one worker process per device (the protocol of :mod:`harness.execute.worker`, each
running this process's harness), each handed the next case as soon as it is free, results streamed back as they
finish.

A worker for ``cuda:K`` sees only that GPU: its ``CUDA_VISIBLE_DEVICES`` is the K-th entry of the one the user
set (or ``K`` when none is set), and inside it the GPU is ``cuda:0``; its NVML telemetry finds that GPU through
the same variable (:mod:`harness.measure.telemetry.nvml`). ``cpu`` may be named several times (several worker
processes on the CPU: the way to try this without a GPU). Each worker is a
:class:`harness.execute.worker_client.WorkerProcess`; its environment must be the parent's (the rule there). Nothing here prints.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
from collections import deque
from contextlib import ExitStack
from typing import Callable, Mapping, Sequence

from harness.measure.env import DEVICE_SPELLING
from harness.errors import SuiteError
from harness.record.run_options import WorkerDevice
from harness.execute.worker_client import WorkerPlan, WorkerProcess, check_worker_environment

MAX_WORKERS = 64


def parse_devices(text: str, cuda_count: Callable[[], int] | None = None,
                  visible: str | None = None) -> list[WorkerDevice]:
    """``cuda:0,cuda:1``, ``all`` (every visible GPU) or ``cpu,cpu``; SuiteError for anything else.

    A device's kind is never changed: a CPU is named ``cpu`` (it has no index), and only ``cuda:N`` is pinned.
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
        if name.split(":")[0] == "cpu":
            if name != "cpu":
                raise SuiteError(f"--devices {text!r}: {name}: a CPU has no index; name cpu,cpu for two workers "
                                 f"on the CPU")
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
                   interpreter: Sequence[str] = (sys.executable,),
                   parent_environment: Mapping | None = None, measure_peak: bool = True,
                   sets: Sequence[str] = ()) -> list[str]:
    """Run ``keys`` on one worker per device, the next key to whichever worker is free.

    Each worker's environment is checked as :func:`harness.execute.worker_client.check_worker_environment` says
    (against ``parent_environment`` when given; WorkerFailed stops everything), then handed to
    ``on_environment(worker, environment)`` (it may raise to stop everything); ``on_result(worker, result
    document)`` as each case finishes; ``on_lost(worker, key, reason)`` when a worker dies while running ``key``
    (the case is not retried; that worker is not replaced), or with key None when it exits with an error
    between cases. Returns the keys never started (all workers lost). Ctrl-C (KeyboardInterrupt) stops every
    worker and is raised again.
    """
    pending = deque(keys)
    events: queue.Queue = queue.Queue()
    running: dict[int, str | None] = {}
    with ExitStack() as stack:
        workers: list[WorkerProcess] = []
        for index, device in enumerate(devices):
            plan = WorkerPlan(suite=None if suite_path is None else str(suite_path), device=device.device, keys=None,
                              measure_peak=measure_peak, sets=tuple(sets))
            workers.append(stack.enter_context(WorkerProcess(
                interpreter, plan, label=f"--devices: the worker on {device.requested}", same_harness=True,
                environment=device.environment(), interactive=True)))
            running[index] = None
            threading.Thread(target=_read_messages, args=(index, workers[index], events), daemon=True).start()

        def hand_out(index: int) -> None:
            key = pending.popleft() if pending else None
            running[index] = key
            if not workers[index].send(key or ""):  # it died before taking the case: another worker gets it
                if key is not None:
                    pending.appendleft(key)
                running[index] = None
            elif key is None:
                workers[index].close_input()

        live = set(range(len(workers)))
        while live:
            try:
                index, message = events.get(timeout=0.2)
            except queue.Empty:
                continue
            kind = message.get("type")
            if kind == "environment":
                check_worker_environment(workers[index].label, message.get("environment"), parent_environment)
                on_environment(index, message.get("environment") or {})
                hand_out(index)
            elif kind == "result":
                running[index] = None
                on_result(index, message["result"])
                hand_out(index)
            elif kind == "eof":
                live.discard(index)
                returncode = workers[index].wait()
                if returncode in (130, -signal.SIGINT, -signal.SIGTERM):
                    raise KeyboardInterrupt  # Ctrl-C reached the worker too: the run stops, the case is not failed
                key = running.get(index)
                if key is not None or returncode != 0:
                    on_lost(index, key, f"the worker on {devices[index].requested} exited with status {returncode}"
                                        f"{' while running it' if key else ''}: {workers[index].last_stderr_line()}")
                    running[index] = None
        return list(pending)


def _read_messages(index: int, worker: WorkerProcess, events: queue.Queue) -> None:
    try:
        for message in worker.messages():
            events.put((index, message))
    except (OSError, ValueError):  # its pipe closed under it as the parent stopped it
        pass
    finally:
        events.put((index, {"type": "eof"}))
