"""Stage 1, what to run: a suite file loaded and validated into immutable objects, and the cases of its grid.

Imports nothing of rnnbench but :mod:`harness.errors`."""
