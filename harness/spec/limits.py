"""What rnnbench refuses, and why: the one table of limits, checked where input enters.

Each limit keeps a hostile or mistaken input from exhausting memory or time, or from turning into a crash
far from where it came in. docs/refusals.md#limits is this table.
"""

from __future__ import annotations

import os

MAX_SUITE_BYTES = 1 << 20
MAX_RESULTS_BYTES = 256 << 20
MAX_NESTING = 100
MAX_CASES = 10_000
MAX_INCLUDE_ENTRIES = 1_000
MAX_NAME_CHARS = 100
MAX_SIZE = 1 << 20  # batch, seq_len, input_size, hidden_size
MAX_LAYERS = 64
MAX_SEED = 2**31 - 1
MAX_WARMUP_ITERS = 100_000
MAX_ITERS = 10_000_000
MAX_PROFILE_ITERS = 1_000
MAX_ROUNDS = 50
MAX_BUDGET_S = 3_600.0
MAX_CASE_TIMEOUT_S = 86_400.0
MIN_NVML_PERIOD_MS, MAX_NVML_PERIOD_MS = 1.0, 60_000.0
MAX_SAMPLE_MS = 86_400_000.0  # a day: a larger "time" is a corrupt or forged file
MAX_CHART_PANELS = 36  # panels (facets) of one scaling chart
MAX_CHART_ROWS = 300  # configurations (rows) of one speedup or A-vs-B chart


def max_threads() -> int:
    """Torch threads up to the cores this process may use: more only oversubscribes (or kills libgomp)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


LIMITS = (
    ("suite file size", f"{MAX_SUITE_BYTES >> 20} MiB", "a suite is a page of YAML; more is a mistake or an attack"),
    ("nesting depth of a suite or results file", str(MAX_NESTING),
     "deeper documents exhaust the parser's stack"),
    ("cases per suite (grid product plus include entries)", f"{MAX_CASES:,}",
     "counted before expanding, so YAML anchors cannot multiply a small file into millions of cases"),
    ("include entries", f"{MAX_INCLUDE_ENTRIES:,}", "same"),
    ("suite name", f"{MAX_NAME_CHARS} printable characters",
     "it names the results file; control characters and path separators have no place there"),
    ("batch, seq_len, input_size, hidden_size", f"1 to {MAX_SIZE:,}", "beyond any RNN that fits in memory"),
    ("num_layers", f"1 to {MAX_LAYERS}", "same"),
    ("seed", f"0 to {MAX_SEED:,}", "torch's generators take 31-bit seeds here"),
    ("threads", "1 to the cores this process may use", "more only oversubscribes; huge values kill libgomp"),
    ("timing.warmup_iters", f"0 to {MAX_WARMUP_ITERS:,}", "bounded run time"),
    ("timing.min_iters, max_iters", f"1 to {MAX_ITERS:,}", "bounded run time and results size"),
    ("timing.profile_iters; rnnbench profile --steps", f"0 to {MAX_PROFILE_ITERS:,}; 1 to {MAX_PROFILE_ITERS:,}",
     "bounded run time"),
    ("timing.rounds, --rounds", f"1 to {MAX_ROUNDS}", "bounded run time: each round is a fresh process"),
    ("timing.budget_s", f"above 0, up to {MAX_BUDGET_S:g} s", "bounded run time"),
    ("timing.case_timeout_s", f"above 0, up to {MAX_CASE_TIMEOUT_S:g} s (a day)",
     "larger values overflow the alarm that enforces it"),
    ("telemetry.nvml_period_ms", f"{MIN_NVML_PERIOD_MS:g} to {MAX_NVML_PERIOD_MS:g} ms", "NVML resolves no finer"),
    ("results file size", f"{MAX_RESULTS_BYTES >> 20} MiB", "bounded memory and time for compare and report"),
    ("a timing sample", f"finite, above 0, at most {MAX_SAMPLE_MS:g} ms (a day)",
     "anything else is a corrupt or forged file and must not pass the gate"),
    ("panels of one scaling chart; rows of one speedup or A-vs-B chart",
     f"{MAX_CHART_PANELS}; {MAX_CHART_ROWS}",
     "past them an image is unreadable and takes minutes to draw: plot refuses it, report leaves it out and "
     "says so (narrow it with --filter); the tables keep every case"),
)
