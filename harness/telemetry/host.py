"""The process's peak resident memory (RSS) over one case, on the CPU.

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


def reset_peak_rss() -> dict:
    """Reset the high-water mark where the OS allows; returns what ``peak_rss`` needs to know."""
    before = _status_kib("VmRSS")
    try:
        CLEAR_REFS.write_text("5")
    except OSError as exc:
        return {"reset": False, "why": f"cannot reset the peak ({CLEAR_REFS}: {exc.strerror or exc})",
                "rss_before_bytes": before}
    return {"reset": True, "rss_before_bytes": before}


def peak_rss(reset: dict) -> dict:
    """``peak_rss_bytes`` with its ``source`` (and a note where it is the process's lifetime peak)."""
    memory: dict = {}
    hwm = _status_kib("VmHWM")
    if reset.get("reset") and hwm is not None:
        memory.update(source="VmHWM after clear_refs (peak RSS over the warm-up and timed loop)", peak_rss_bytes=hwm)
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
