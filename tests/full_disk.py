"""A real full disk for the tests of what a command does when it cannot write: a small tmpfs, filled.

Mounting needs root (CAP_SYS_ADMIN); where it is refused the test is skipped with the reason."""

from __future__ import annotations

import errno
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

PAGE_BYTES = 4096  # tmpfs allocates whole pages


@contextmanager
def small_disk(folder: Path, size: str = "256k"):
    """``folder`` as the mount point of a fresh tmpfs of ``size``; unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a full disk: {mounted.stderr.strip() or mounted.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave_pages: int = 0) -> Path:
    """Fill the file system of ``folder`` to the last byte, then free ``leave_pages`` whole pages."""
    filler = folder / ".filler"
    with open(filler, "wb", buffering=0) as handle:
        block = b"\0" * (64 * 1024)
        while True:
            try:
                written = handle.write(block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
                continue
            if not written:
                break
    if leave_pages:
        size = filler.stat().st_size
        os.truncate(filler, max(0, size - size % PAGE_BYTES - leave_pages * PAGE_BYTES))
    return filler
