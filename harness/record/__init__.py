"""Stage 2, what was measured: the immutable case result and its statistics, the results file and its store,
merges of shards and rounds, the history, profile files and exports. Reads and writes records; measures nothing.

Imports :mod:`harness.spec` only."""
