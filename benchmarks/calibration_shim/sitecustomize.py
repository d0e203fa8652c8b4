"""Calibration only (benchmarks/gate_calibration.py): make every timed step really do more work.

With RNNBENCH_INJECT_SLOWDOWN=F set, each backend's model also runs, inside the timed forward, no-grad
forwards of itself over part of its input, sized so that the step takes about F longer through real kernels,
never by scaling samples. The size is measured per case at its third call (untimed: the parity iteration is
the first, warm-up iterations follow; TorchScript's profiling executor is slow in its first calls): the case's
step (a forward and, if gradients are on, a backward through autograd.grad, which leaves .grad alone)
against a no-grad forward over the whole sequence, each the fastest of 7 after 3 warm-ups (the fastest, not
the median: on a busy machine a preempted repeat inflates one side of the ratio, and the size with it). The suite needs
two or more warm-up iterations. The calibration reports the
slowdown the gate measured next to the one injected. Python imports this file at start-up when its folder
is on PYTHONPATH; without the variable it does nothing.
"""

import os

_FRACTION = float(os.environ.get("RNNBENCH_INJECT_SLOWDOWN") or 0)


def extra_forward_steps(fraction: float, step_s: float, forward_s: float, seq_len: int) -> int:
    """How many time steps of no-grad forward make a step ``fraction`` longer: the step costs
    ``step_s / forward_s`` whole-sequence forwards, so ``fraction`` of it is that many times ``seq_len`` steps."""
    return max(1, round(fraction * step_s / forward_s * seq_len))

if _FRACTION > 0:
    import time

    import torch

    import harness.measure.runner

    _build = harness.measure.runner.build_backend

    def _fastest_s(work, x, repeats=7, warmups=3):
        times = []
        for _ in range(warmups + repeats):
            if x.is_cuda:
                torch.cuda.synchronize(x.device)
            started = time.perf_counter()
            work()
            if x.is_cuda:
                torch.cuda.synchronize(x.device)
            times.append(time.perf_counter() - started)
        return min(times[warmups:])

    def _slowed_build(name, reference):
        built = _build(name, reference)
        model, parameters = built.model, [p for p in built.parameters.values() if p.requires_grad]
        extra_steps: list[int] = []
        calls = [0]

        def step(x):
            if not torch.is_grad_enabled():
                return model(x)
            output = model(x)[0]
            torch.autograd.grad(output.float().pow(2).mean(), parameters, allow_unused=True)

        def no_grad_forward(x, steps):
            with torch.no_grad():
                model(x[:steps])

        def slowed(x):
            calls[0] += 1
            if calls[0] < 3:
                return model(x)
            if not extra_steps:
                grad_enabled = torch.is_grad_enabled()
                with torch.set_grad_enabled(grad_enabled):
                    step_s = _fastest_s(lambda: step(x), x)
                forward_s = _fastest_s(lambda: no_grad_forward(x, x.size(0)), x)
                extra_steps.append(extra_forward_steps(_FRACTION, step_s, forward_s, x.size(0)))
            remaining = extra_steps[0]
            while remaining > 0:
                no_grad_forward(x, min(remaining, x.size(0)))
                remaining -= x.size(0)
            return model(x)

        built.model = slowed
        built.injected_extra_steps = extra_steps  # what the sizing chose, for the shim's own test
        return built

    harness.measure.runner.build_backend = _slowed_build
