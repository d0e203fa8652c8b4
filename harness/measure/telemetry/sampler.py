"""The NVML sampler: a separate process, so that sampling never holds the timing process's GIL.

The eager and TorchScript backends are launch-bound: a Python thread that wakes every 20 ms to call
NVML would take the GIL from the loop that launches kernels and slow what is being measured. So the
samples are read by a child process (``multiprocessing`` 'spawn': no fork of a process that holds a
CUDA context), started once per run, which talks to the timing process over a Pipe:

    parent                           sampler process
    begin_window(name) -- begin -->  reads a sample (the window's first), starts sampling every period
                       <-- begun --  (its time.monotonic, which is the window's begin)
    ... the timed loop runs; the parent does nothing for telemetry ...
    end_window(name)   -- end   -->  reads a sample (the energy counter's end), stops sampling
                       <-- samples - every sample since begin, what is absent and why
    close()            -- stop  -->  nvmlShutdown, exits

Outside windows the sampler sleeps on the pipe, so it costs nothing between cases. time.monotonic is
CLOCK_MONOTONIC, one clock for every process on Linux, so both sides' timestamps compare directly.
The NVML module is named, not passed, so tests run this very code against a fake module.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import asdict, replace
from typing import Any

from harness.measure.telemetry.nvml import (DeviceSpec, NvmlUnavailable, SampleReader, device_identity, init,
                                    load_nvml, resolve_handle, shutdown, system_info)
from harness.measure.telemetry.window import WindowMeasurement, summarize_window

START_TIMEOUT_S = 60.0  # spawn re-imports the parent's main module; NVML init can take seconds
REPLY_TIMEOUT_S = 30.0
MAX_WINDOW_SAMPLES = 500_000  # about 14 h at the default 100 ms; past it, sampling stops (noted in the window)


class MonitorUnavailable(Exception):
    """The monitor cannot measure (NVML missing, sampler died); the message is the reason."""


class NvmlMonitor:
    """Zeus-style windows over NVML samples taken by a child process.

    ``begin_window(name)`` / ``end_window(name)`` -> one immutable :class:`WindowMeasurement`. One window
    at a time. Use as a context manager, or call ``start`` and ``close``.
    """

    def __init__(self, spec: DeviceSpec, period_s: float = 0.02, module: str | None = None,
                 start_timeout_s: float = START_TIMEOUT_S):
        if period_s <= 0:
            raise ValueError(f"sampling period must be positive, got {period_s}")
        self.spec = spec
        self.period_s = period_s
        self.module = module
        self.start_timeout_s = start_timeout_s
        self.info: dict[str, Any] = {}
        self.reason: str | None = None
        self._process = None
        self._conn = None
        self._open: tuple[str, float] | None = None
        self._sequence = 0

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "NvmlMonitor":
        """Start the sampler and wait until it has found the device. On failure ``reason`` says why."""
        if self._process is not None or self.reason is not None:
            return self
        context = multiprocessing.get_context("spawn")
        parent_conn, child_conn = context.Pipe(duplex=True)
        process = context.Process(target=sampler_main, name="rnnbench-nvml-sampler", daemon=True,
                                  args=(child_conn, self.module, asdict(self.spec), self.period_s))
        try:
            process.start()
        except Exception as exc:
            parent_conn.close()
            child_conn.close()
            self.reason = f"cannot start the sampler process: {type(exc).__name__}: {exc}"
            return self
        child_conn.close()
        self._process, self._conn = process, parent_conn
        try:
            kind, payload = self._receive(self.start_timeout_s, "starting")
        except MonitorUnavailable as exc:
            self.reason = str(exc)
            self.close()
            return self
        if kind == "ready":
            self.info = payload
        else:
            self.reason = str(payload)
            self.close()
        return self

    @property
    def available(self) -> bool:
        return self._process is not None and self.reason is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the sampler and wait for it; terminate it if it does not stop. Safe to call twice."""
        process, conn = self._process, self._conn
        self._process, self._conn, self._open = None, None, None
        if conn is not None:
            try:
                conn.send(("stop",))
            except (OSError, EOFError, ValueError):
                pass
        if process is not None:
            process.join(timeout_s)
            if process.is_alive():
                process.terminate()
                process.join(timeout_s)
            if process.is_alive():
                process.kill()
                process.join(timeout_s)
            process.close()
        if conn is not None:
            conn.close()

    def __enter__(self) -> "NvmlMonitor":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self):
        try:
            self.close(timeout_s=1.0)
        except Exception:
            pass

    # -- windows ----------------------------------------------------------------------------------
    def begin_window(self, name: str) -> float:
        """Open window ``name``; returns its begin (time.monotonic). The sampler's first sample is its start."""
        if not self.available:
            raise MonitorUnavailable(self.reason or "the sampler is not running")
        if self._open is not None:
            raise RuntimeError(f"window {self._open[0]!r} is still open; one window at a time")
        kind, begin = self._request("begin", f"opening window {name!r}")
        if kind != "begun":
            raise self._fail(f"unexpected reply {kind!r} to begin")
        self._open = (name, begin)
        return begin

    def end_window(self, name: str, *, iterations: int | None = None, batch: int | None = None,
                   region: str | None = None) -> WindowMeasurement:
        end = time.monotonic()
        if self._open is None or self._open[0] != name:
            raise RuntimeError(f"window {name!r} is not open")
        _, begin = self._open
        self._open = None
        kind, payload = self._request("end", f"closing window {name!r}")
        if kind != "samples":
            raise self._fail(f"unexpected reply {kind!r} to end")
        measurement = summarize_window(payload["samples"], begin, end, region=region or name,
                                       period_s=self.period_s, iterations=iterations, batch=batch,
                                       absent=payload["absent"], notes=payload["notes"],
                                       memory_api=payload["memory_api"])
        if payload.get("truncated"):
            measurement = replace(measurement, low_confidence=True, low_confidence_why=(
                *measurement.low_confidence_why, f"sampling stopped after {MAX_WINDOW_SAMPLES} samples"))
        return measurement

    def notes(self) -> dict:
        """Transient read errors the sampler has seen (metric -> last error)."""
        if not self.available:
            return {}
        kind, payload = self._request("notes", "asking for notes")
        return payload if kind == "notes" else {}

    # -- pipe -------------------------------------------------------------------------------------
    def _request(self, kind: str, doing: str) -> tuple[str, Any]:
        """Send a numbered request and wait for its reply. A reply left unread by an exchange that an
        exception (a case's hard time limit, Ctrl-C) cut short carries an older number and is dropped."""
        self._sequence += 1
        sequence = self._sequence
        self._send((kind, sequence))
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        while True:
            reply = self._receive(max(0.0, deadline - time.monotonic()), doing)
            if len(reply) == 3 and reply[2] == sequence:
                return reply[0], reply[1]

    def _send(self, message: tuple) -> None:
        try:
            self._conn.send(message)
        except (OSError, EOFError, ValueError, AttributeError) as exc:
            raise self._fail(f"the sampler process is gone ({type(exc).__name__})") from None

    def _receive(self, timeout_s: float, doing: str) -> tuple[str, Any]:
        try:
            if not self._conn.poll(timeout_s):
                raise self._fail(f"the sampler did not answer within {timeout_s:g} s when {doing}")
            return self._conn.recv()
        except (OSError, EOFError) as exc:
            code = self._process.exitcode if self._process is not None else None
            raise self._fail(f"the sampler process died when {doing} (exit code {code}, "
                             f"{type(exc).__name__})") from None

    def _fail(self, reason: str) -> MonitorUnavailable:
        self.reason = reason
        self.close(timeout_s=2.0)
        return MonitorUnavailable(reason)


def sampler_main(conn, module: str | None, spec: dict, period_s: float) -> None:
    """The sampler process. Sends ("ready", info) or ("unavailable", reason) first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the run; the run stops the sampler
    placement = stay_out_of_the_way()
    nvml = None
    try:
        nvml = load_nvml(module)
        init(nvml)
        handle, found_by = resolve_handle(nvml, DeviceSpec(**spec))
        reader = SampleReader(nvml, handle)
        info = {"module": getattr(nvml, "__name__", str(module)),
                "device": {**device_identity(nvml, handle), "found_by": found_by},
                "system": system_info(nvml), "period_ms": period_s * 1e3, "placement": placement}
    except NvmlUnavailable as exc:
        _send_quietly(conn, ("unavailable", str(exc)))
        if nvml is not None:
            shutdown(nvml)
        conn.close()
        return
    except Exception as exc:  # a broken binding must not hang the parent
        _send_quietly(conn, ("unavailable", f"{type(exc).__name__}: {exc}"))
        conn.close()
        return
    try:
        conn.send(("ready", info))
        _serve(conn, reader, period_s)
    except (EOFError, OSError, KeyboardInterrupt):  # the parent went away
        pass
    finally:
        shutdown(nvml)
        conn.close()


def stay_out_of_the_way() -> dict:
    """Lower the sampler's priority and, on a machine with cores to spare, keep it on one core, so that it
    never takes a core from the process whose kernel launches are being timed."""
    placement: dict = {}
    try:
        placement["nice"] = os.nice(10)
    except OSError:
        pass
    if hasattr(os, "sched_getaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) >= 4:
            try:
                os.sched_setaffinity(0, {allowed[-1]})
                placement["cpu"] = allowed[-1]
            except OSError:
                pass
    return placement


def _serve(conn, reader: SampleReader, period_s: float) -> None:
    samples: list[dict] = []
    sampling = False
    truncated = False
    next_due = 0.0
    while True:
        timeout = max(0.0, next_due - time.monotonic()) if sampling else None
        if conn.poll(timeout):
            message = conn.recv()
            kind, sequence = message[0], message[-1]
            if kind == "begin":
                samples, truncated = [reader.read()], False
                sampling = True
                next_due = samples[0]["t"] + period_s
                conn.send(("begun", samples[0]["t"], sequence))
            elif kind == "end":
                samples.append(reader.read())
                sampling = False
                conn.send(("samples", {"samples": samples, "absent": dict(reader.absent),
                                       "notes": dict(reader.notes), "memory_api": reader.memory_api,
                                       "truncated": truncated}, sequence))
                samples = []
            elif kind == "notes":
                conn.send(("notes", dict(reader.notes), sequence))
            elif kind == "stop":
                return
        elif sampling:
            if len(samples) < MAX_WINDOW_SAMPLES:
                samples.append(reader.read())
            else:
                truncated = True
            next_due += period_s
            now = time.monotonic()
            if next_due < now:  # fell behind (a slow NVML call): skip the missed ticks, keep the phase
                next_due += period_s * ((now - next_due) // period_s + 1)


def _send_quietly(conn, message) -> None:
    try:
        conn.send(message)
    except (OSError, EOFError):
        pass
