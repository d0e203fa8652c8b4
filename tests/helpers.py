"""Small builders shared by the tests: tiny cases and settings that run in milliseconds on a CPU."""

from __future__ import annotations

import torch

from harness.spec.cases import Case
from harness.measure.runner import RunSettings
from harness.spec.suite import Timing

QUICK_TIMING = Timing(warmup_iters=1, min_iters=3, max_iters=5, budget_s=0.01, case_timeout_s=120, profile_iters=1)


def tiny_case(**overrides) -> Case:
    fields = dict(cell="lstm", backend="cudnn", mode="forward_backward", batch=3, seq_len=4, input_size=5,
                  hidden_size=6, num_layers=1, bidirectional=False, dtype="float32", device_type="cpu")
    fields.update(overrides)
    return Case(**fields)


def cpu_settings(**overrides) -> RunSettings:
    fields = dict(device=torch.device("cpu"), precision="fp32", seed=0, timing=QUICK_TIMING)
    fields.update(overrides)
    return RunSettings(**fields)
