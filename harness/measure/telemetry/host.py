"""The process's peak resident memory (RSS) over one case, on the CPU, and how much of it is the case's.

case peak  ``case_peak_rss_growth_bytes``: the peak RSS over the warm-up and timed loop minus the RSS just
           before the case was built (``rss_before_case_bytes``, after a garbage collection): the memory the
           case's model, inputs and steps took on top of what the process already held. torch's CPU
           allocator keeps no statistics, so this is read from the kernel's counters; it is cheap (two reads
           of /proc/self/status) and an approximation: memory that an earlier case freed but the C allocator
           kept is reused without raising the RSS (the growth then reads low, down to 0), and memory freed
           before the loop but kept by the allocator counts (it reads high). Only where the peak was reset
           (below); otherwise the peak is the process's lifetime peak and no growth is given.
process    ``peak_rss_bytes``: the whole process's peak, torch's own libraries and every earlier case
           included (it grows in run order); a fact about the process, not the model.

On Linux the kernel's high-water mark (``VmHWM`` in /proc/self/status) is reset to the current RSS by
writing "5" to /proc/self/clear_refs (Linux >= 4.0), so the peak read after the case is the case's own.
Elsewhere, or where that write is refused, ``resource.getrusage``'s ``ru_maxrss`` is used: the peak of
the process's whole life so far, which an earlier, larger case may have set; the result says so.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


def current_rss_bytes() -> int | None:
    """The process's resident memory now (VmRSS); None where /proc is not there."""
    return _status_kib("VmRSS")


def reset_peak_rss() -> dict:
    """Reset the high-water mark where the OS allows; returns what ``peak_rss`` needs to know."""
    before = _status_kib("VmRSS")
    try:
        CLEAR_REFS.write_text("5")
    except OSError as exc:
        return {"reset": False, "why": f"cannot reset the peak ({CLEAR_REFS}: {exc.strerror or exc})",
                "rss_before_bytes": before}
    return {"reset": True, "rss_before_bytes": before}


def peak_rss(reset: dict, rss_before_case_bytes: int | None = None) -> dict:
    """``peak_rss_bytes`` with its ``source`` (and a note where it is the process's lifetime peak); with
    ``rss_before_case_bytes`` (current_rss_bytes() before the case was built) and a reset peak, the case's
    ``case_peak_rss_growth_bytes`` too (module docstring)."""
    memory: dict = {}
    hwm = _status_kib("VmHWM")
    if reset.get("reset") and hwm is not None:
        memory.update(source="VmHWM after clear_refs (peak RSS over the warm-up and timed loop)", peak_rss_bytes=hwm)
        if rss_before_case_bytes is not None:
            memory.update(rss_before_case_bytes=rss_before_case_bytes,
                          case_peak_rss_growth_bytes=max(0, hwm - rss_before_case_bytes))
    else:
        lifetime = _rusage_max_rss_bytes()
        if lifetime is None and hwm is None:
            return {"source": "none", "reason": "no way to read the peak resident memory on this OS"}
        memory.update(source="getrusage ru_maxrss" if lifetime is not None else "VmHWM",
                      peak_rss_bytes=lifetime if lifetime is not None else hwm,
                      note="the process's lifetime peak, not this case's: "
                           + reset.get("why", "the peak could not be reset"))
    if reset.get("rss_before_bytes") is not None:
        memory["rss_before_bytes"] = reset["rss_before_bytes"]
    return memory


def _status_kib(field: str) -> int | None:
    try:
        text = STATUS.read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _rusage_max_rss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024  # bytes on macOS, KiB on Linux
