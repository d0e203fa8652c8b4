"""Telemetry while timing: NVML samples of the GPU per timed window, and the process's peak memory.

    nvml.py     NVML through nvidia-ml-py (``pynvml``), tolerant of missing functions; device mapping
    sampler.py  the sampler process and the Zeus-style monitor (begin_window / end_window)
    window.py   pure functions: slice samples to a window and summarise it (energy, power, ...)
    host.py     peak resident memory of the process over one case (CPU runs)
    case.py     the glue the runner uses: one monitor per run, one window per case

Nothing imported here imports torch: the sampler process imports this package and must start fast.
"""
