"""rnnbench: benchmark and profile LSTM/GRU in PyTorch.

The pipeline runs one way, one module per stage:

    suite.py      load and validate a YAML suite into immutable objects
    cases.py      expand the suite's grid into cases (the case key lives here)
    backends/     build each backend's model from the same reference weights
    parity.py     compare outputs and gradients with the cudnn backend before timing
    timing.py     time forward / backward / step regions on the case's device
    telemetry/    NVML samples (a separate process) and peak memory around the timed loop
    stats.py      derived statistics of a list of samples
    results.py    immutable case and run records, with typed views of what they recorded
    results_store.py   the folders and file names, and load(): any results, journal or profile file read back
    results_io.py, results_schema.py, journal.py   atomic writes; the check of a file read back; a run's journal
    runner.py     one case through backend -> parity -> timing -> result
    resume.py     what an interrupted run finished, and whether it may be continued

Readers of results files:

    compare.py    the one comparison model (the regression gate), from ratios.py (statistics),
                  verdict.py (verdicts and their vocabulary) and environment_diff.py
    speedup.py    speedups over cudnn within one run
    report/       renders only: terminal tables, scaling/speedup/A-vs-B charts, HTML page, Markdown summary
    export_pytest_benchmark.py, pytest_plugin.py   pytest-benchmark interop

    cli.py        wires the stages together; it and report/ are the only modules that print
"""

__version__ = "0.1.0"
