"""The names scripts of their own (like those in benchmarks/ and scripts/) read and write results files with.

rnnbench's storage lives in :mod:`harness.record.results_store` (folders, file names, ``ResultsStore.load``),
:mod:`harness.record.results_io` (atomic writes), :mod:`harness.record.results_schema` (the check of a results file read back)
and :mod:`harness.record.journal` (a run's journal and lock); these two names stay here for scripts written against
them.
"""

from harness.record.results_io import write_results
from harness.record.results_store import read_results

__all__ = ["read_results", "write_results"]
