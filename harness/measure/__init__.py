"""Stage 3b, one case measured in this process: backends (same weights for all), parity, precision, the timer,
telemetry (NVML windows), the environment, the peak and the profiled pass with its analysis.

Imports :mod:`harness.spec` and :mod:`harness.record`."""
