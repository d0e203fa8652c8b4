"""Calibration only (benchmarks/gate_calibration.py): make every timed step really do more work.

With RNNBENCH_INJECT_SLOWDOWN=F set, each backend's model also runs, inside the timed forward, a no-grad
forward of itself over the first round(3 F T) steps of its input (a step is about three forwards), so the
step takes about F longer through real kernels, never by scaling samples. The calibration reports the
slowdown the gate measured next to the one injected. Python imports this file at start-up when its folder
is on PYTHONPATH; without the variable it does nothing.
"""

import os

_FRACTION = float(os.environ.get("RNNBENCH_INJECT_SLOWDOWN") or 0)

if _FRACTION > 0:
    import torch

    import harness.runner

    _build = harness.runner.build_backend

    def _slowed_build(name, reference):
        built = _build(name, reference)
        model = built.model

        def slowed(x):
            steps = max(1, min(x.size(0), round(3 * _FRACTION * x.size(0))))
            with torch.no_grad():
                model(x[:steps])
            return model(x)

        built.model = slowed
        return built

    harness.runner.build_backend = _slowed_build
