"""Keep torch's own messages off the user's terminal; what a case raised is recorded with the case instead.

torch speaks three ways: Python warnings (its C++ ``TORCH_WARN`` arrives as one), its loggers (which write to
whatever ``sys.stderr`` is at the time), and C++ code writing straight to file descriptor 2 (the profiler's
start/stop lines). The first two are captured as messages; the third is silenced only around the profiler.
"""

from __future__ import annotations

import io
import os
import re
import sys
import warnings
from contextlib import contextmanager, redirect_stderr
from typing import Iterator

MAX_MESSAGES = 20
MAX_MESSAGE_CHARS = 300
# torch's log format puts "W1127 04:34:45.038000 6690 file.py:19] " before the message
_LOG_PREFIX = re.compile(r"^[DIWEC]\d{4} [\d:.]+ \d+ [^\]]*\] ")


@contextmanager
def messages_captured() -> Iterator[list[str]]:
    """Yields a list that, when the block ends, holds the first line of each warning and of each line torch's
    loggers wrote, deduplicated, in order (at most ``MAX_MESSAGES``)."""
    messages: list[str] = []
    logged = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, redirect_stderr(logged):
            warnings.simplefilter("always")
            yield messages
    finally:
        lines = [_first_line(str(warning.message)) for warning in caught]
        # a logged message may span lines; its continuation lines are indented or blank
        lines += [_LOG_PREFIX.sub("", line.strip()) for line in logged.getvalue().splitlines() if line[:1].strip()]
        messages.extend(deduplicated(lines))


def deduplicated(lines) -> list[str]:
    seen: dict[str, None] = {}
    for line in lines:
        line = line[:MAX_MESSAGE_CHARS]
        if line and line not in seen and len(seen) < MAX_MESSAGES:
            seen[line] = None
    return list(seen)


def _first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0] if text else ""


@contextmanager
def native_stderr_silenced():
    """Some torch builds log profiler start/stop lines from C++ straight to file descriptor 2; keep them
    off the user's terminal by pointing descriptor 2 at /dev/null while the profiler runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
