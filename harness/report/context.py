"""What a chart or a page says about where its numbers come from: suite, device, dtype, torch."""

from __future__ import annotations

from typing import Iterable, Sequence

from harness.report.names import cpu_libraries, format_cudnn_version
from harness.record.results import RunResults


def device_name(run: RunResults) -> str:
    """The GPU's name, or the CPU's model with the threads torch used."""
    environment = run.environment
    if environment.gpu:
        return f"{environment.gpu_name or 'GPU'} ({environment.device or 'cuda'})"
    cpu = environment.cpu_model or "unknown CPU"
    threads = environment.intra_op_threads
    threads_text = f", {threads} thread{'' if threads == 1 else 's'}" if threads else ""
    return f"{cpu} (CPU{threads_text})"


def torch_versions(run: RunResults) -> str:
    """torch and the libraries that ran: 'torch 2.11.0+cu130, CUDA 13.0, cuDNN 9.19.0' on a GPU; on a CPU
    the RNN kernel libraries nn.LSTM/nn.GRU dispatched ('torch 2.14.1+cpu, oneDNN v3.10.2, ATen native'),
    never the CUDA and cuDNN a CUDA build of torch carries but did not use."""
    torch = run.environment.torch
    parts = [f"torch {torch.get('version', '?')}"]
    if run.environment.device_type == "cpu":
        return ", ".join(parts + cpu_libraries(run.cases))  # none named where no file says what ran
    if torch.get("cuda"):
        parts.append(f"CUDA {torch['cuda']}")
    cudnn = format_cudnn_version(torch.get("cudnn"))
    if cudnn:
        parts.append(f"cuDNN {cudnn}")
    return ", ".join(parts)


def dtype_and_precision(run: RunResults) -> str:
    suite = run.suite
    return f"{suite.get('dtype', '?')} ({suite.get('precision', '?')} math)"


def commit(run: RunResults) -> str:
    facts = run.environment.commit
    if not facts.get("id"):
        return "not in a git checkout"
    dirty = " (uncommitted changes)" if facts.get("dirty") else ""
    branch = f" on {facts['branch']}" if facts.get("branch") else ""
    return f"{facts['id'][:12]}{branch}{dirty}"


def machine_state(run: RunResults) -> str | None:
    """How busy the machine was as the run (each of its rounds) started: 'quiet (load 0.12 on 2 cores, ...)',
    or the busy line; None in files older than the record."""
    states = run.environment.machine_states
    if not states:
        return None
    busy = run.environment.machine_busy_line
    if busy:
        return busy
    return "; ".join(f"{where}: {state.summary()}" for where, state in states[:1]) + (
        f" (and {len(states) - 1} more round{'s' if len(states) > 2 else ''}, all quiet)" if len(states) > 1 else "")


def machine_notes(run: RunResults) -> list[str]:
    """The notes of every recorded state, each once (governor, throttling GPU, ...)."""
    return list(dict.fromkeys(note for _, state in run.environment.machine_states for note in state.notes))


def context_line(runs: Sequence[RunResults]) -> str:
    """One line for a chart title: 'suite scaling · AMD EPYC (CPU, 2 threads) · float32 (fp32 math) ·
    torch 2.13.0+cpu'; where several files differ, their values joined with ' / '."""
    parts = [
        "suite " + _joined(run.suite.get("name", "?") for run in runs),
        _joined(device_name(run) for run in runs),
        _joined(dtype_and_precision(run) for run in runs),
        _joined(torch_versions(run) for run in runs),
    ]
    return " · ".join(parts)


def _joined(values: Iterable[str]) -> str:
    distinct = list(dict.fromkeys(values))
    return " / ".join(distinct)
