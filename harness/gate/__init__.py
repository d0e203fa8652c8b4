"""Stage 3a, what the records mean: ratios, speedups, verdicts, the regression comparison, step detection and
the roofline. Reads records; measures nothing.

Imports :mod:`harness.spec` and :mod:`harness.record`."""
