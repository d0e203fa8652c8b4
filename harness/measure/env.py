"""The environment a run measured: machine, Python, torch and its libraries, GPU, project commit."""

from __future__ import annotations

import os
import platform
import re
import socket
import subprocess
import sys
from pathlib import Path

import torch

import harness
from harness.spec.dtypes import torch_dtype
from harness.record.results import utc_now

PROJECT_ROOT = Path(harness.__file__).resolve().parent.parent
ENV_VARS = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG",
            "PYTORCH_CUDA_ALLOC_CONF", "TORCHINDUCTOR_CACHE_DIR", "TORCHINDUCTOR_FX_GRAPH_CACHE")


DEVICE_SPELLING = re.compile(r"(auto|cpu|cuda)(?::([0-9]{1,4}))?", re.ASCII)


def resolve_device(requested: str) -> torch.device:
    """'auto' means the GPU when there is one. Raises ValueError when the device is not on this machine."""
    match = DEVICE_SPELLING.fullmatch(requested) if isinstance(requested, str) else None
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ValueError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N")
    if requested == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} asked for, but this machine has no usable CUDA GPU "
                             f"(torch {torch.__version__}, built with CUDA {torch.version.cuda or 'none'})")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {requested!r} asked for, but only {torch.cuda.device_count()} "
                             f"CUDA device(s) are visible")
        device = torch.device("cuda", index)
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {requested!r}; use auto, cpu, cuda or cuda:N")
    return device


def collect_environment(device: torch.device) -> dict:
    gpu_state = nvml_environment(device)
    return {
        "rnnbench_version": harness.__version__,
        "collected_utc": utc_now(),
        "device": str(device),
        "machine": machine_info(),
        "commit": commit_info(),
        "code": code_info(),
        "torch": torch_info(),
        "gpu": gpu_info(device, gpu_state) if device.type == "cuda" else None,
        # The GPU's state as the run starts (NVML): clocks, power, modes, other processes on it.
        "gpu_state": gpu_state,
        "threads": {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()},
        "env_vars": {name: os.environ[name] for name in ENV_VARS if name in os.environ},
    }


def machine_info() -> dict:
    """Named as pytest-benchmark's machine_info, so exported results read the same there."""
    uname = platform.uname()
    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cores = os.cpu_count()
    return {
        "node": socket.gethostname(),
        "processor": uname.processor,
        "machine": uname.machine,
        "system": uname.system,
        "release": uname.release,
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
        "python_compiler": platform.python_compiler(),
        "cpu": {"brand_raw": _cpu_model(), "count": os.cpu_count(), "usable_cores": usable_cores},
    }


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or "unknown")


def commit_info() -> dict:
    """The git commit of the checkout this process's harness was imported from (pytest-benchmark's commit_info
    names); empty fields where that harness is not a file of a git checkout (an installed copy)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    # harness installed into a virtualenv inside some checkout is not that checkout's code at its commit
    if commit is not None and git("ls-files", "--error-unmatch", "--", "harness/__init__.py") is None:
        commit = None
    if commit is None:
        return {"id": None, "dirty": None, "branch": None, "time": None, "project": "rnnbench"}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "id": commit,
        "dirty": bool(status),
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "time": git("show", "-s", "--format=%cI", "HEAD"),
        "project": "rnnbench",
    }


def code_info() -> dict:
    """Which code this process runs: its interpreter, and the folders its ``harness`` and ``torch`` packages were
    imported from. Two processes that name the same folders at the same time run the same code. Their versions
    are ``rnnbench_version`` and ``torch``, the commit of the harness's checkout ``commit``."""
    return {
        "python": sys.executable,
        "harness": {"path": str(Path(harness.__file__).resolve().parent)},
        "torch": {"path": str(Path(torch.__file__).resolve().parent)},
    }


def torch_info() -> dict:
    cudnn_version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    onednn = re.search(r"DNN v([\d.]+)", torch.__config__.show())
    return {
        "version": torch.__version__,
        "git_version": getattr(torch.version, "git_version", None),
        "cuda": torch.version.cuda,
        "cudnn": cudnn_version,
        "onednn": onednn.group(1) if onednn else None,
        "mkldnn_enabled": torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled,
        "debug": torch.version.debug,
    }


def gpu_info(device: torch.device, state: dict | None = None) -> dict:
    """torch's view of the GPU, with the driver, NVML version and UUID from NVML (None without NVML)."""
    properties = torch.cuda.get_device_properties(device)
    state = state if state is not None else nvml_environment(device)
    gpus = state.get("gpus") or [{}]
    return {
        "index": device.index,
        "name": properties.name,
        "capability": f"{properties.major}.{properties.minor}",
        "total_memory_bytes": properties.total_memory,
        "multiprocessors": properties.multi_processor_count,
        "driver": state.get("driver"),
        "nvml_version": state.get("nvml_version"),
        "uuid": gpus[0].get("uuid") or _torch_uuid(properties),
    }


def _torch_uuid(properties) -> str | None:
    uuid = getattr(properties, "uuid", None)
    return f"GPU-{uuid}" if uuid is not None else None


def nvml_environment(device: torch.device) -> dict:
    """The GPU's state from NVML, once, in this process (never while timing): the run's GPU on a CUDA
    device, every GPU NVML sees otherwise. ``{"available": False, "reason": "NVML unavailable: ..."}``
    where NVML cannot be used. ``warnings`` names other processes using the GPU."""
    from harness.measure.telemetry.case import UNAVAILABLE, device_spec
    from harness.measure.telemetry.nvml import (NvmlUnavailable, all_gpu_states, gpu_state, init, load_nvml,
                                        resolve_handle, shutdown, system_info)

    try:
        nvml = load_nvml()
        init(nvml)
    except NvmlUnavailable as exc:
        return {"available": False, "reason": f"{UNAVAILABLE}: {exc}"}
    try:
        info: dict = {"available": True, **system_info(nvml)}
        if device.type == "cuda":
            handle, found_by = resolve_handle(nvml, device_spec(device))
            info["gpus"] = [{**gpu_state(nvml, handle), "found_by": found_by}]
        else:
            info["gpus"] = all_gpu_states(nvml)
        info["warnings"] = _other_process_warnings(info["gpus"], device)
        return info
    except NvmlUnavailable as exc:
        return {"available": False, "reason": f"{UNAVAILABLE}: {exc}"}
    except Exception as exc:  # a broken binding must not stop the run
        return {"available": False, "reason": f"{UNAVAILABLE}: {type(exc).__name__}: {exc}"}
    finally:
        shutdown(nvml)


def _other_process_warnings(gpus: list[dict], device: torch.device) -> list[str]:
    """Other processes on a GPU share it with the benchmark and make its numbers worthless (which processes
    count as others: :func:`harness.record.machine_state.gpu_readings`)."""
    from harness.record.machine_state import gpu_readings

    readings = gpu_readings({"available": True, "gpus": gpus}, device.type, {os.getpid()},
                            torch.cuda.is_initialized())
    warnings = []
    for reading in readings:
        if reading.others:
            maybe = (" (this process is not listed under its own pid, so one of them may be this one)"
                     if reading.unlisted_allowance else "")
            warnings.append(f"{len(reading.other_pids)} other process(es) on GPU "
                            f"{'?' if reading.index is None else reading.index} ({reading.name or '?'}): pids "
                            f"{', '.join(map(str, reading.other_pids))}{maybe}; they share the GPU and "
                            f"make timings, power and energy worthless")
    return warnings


def check_device_supports(device: torch.device, dtype: str) -> None:
    """Raise ValueError when this device and torch cannot run an RNN step in ``dtype``."""
    as_torch = torch_dtype(dtype)
    try:
        module = torch.nn.LSTM(2, 2).to(device=device, dtype=as_torch)
        output, _ = module(torch.zeros(2, 1, 2, device=device, dtype=as_torch))
        output.sum().backward()
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"dtype {dtype} cannot run on {device} with torch {torch.__version__}: {message}") from None


def measured_peak(device: torch.device, dtype: str) -> dict:
    """The device's measured GEMM and copy peak for the roofline (:mod:`harness.measure.peak`); a measurement that
    fails is recorded as such and never stops a run."""
    from harness.measure.peak import measure_peak

    try:
        return measure_peak(device, dtype)
    except Exception as exc:  # e.g. out of memory on a busy GPU: the run goes on without a roofline
        return {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"}
