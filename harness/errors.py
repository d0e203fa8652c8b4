"""The project's own error types: each carries a message fit for one line on a terminal."""


class RnnbenchError(Exception):
    """Base of every error the CLI turns into a one-line message and exit code 2."""


class SuiteError(RnnbenchError):
    """A suite file that cannot be loaded or does not validate."""


class ResultsFileError(RnnbenchError):
    """A results file that cannot be read: missing, truncated, wrong schema."""


class BackendUnavailable(RnnbenchError):
    """A backend cannot run in this environment (the case is skipped, with this as reason)."""


class ReportError(RnnbenchError):
    """Results that cannot be charted as asked: an unknown metric or axis, a metric no case recorded."""


class ChartTooLarge(ReportError):
    """A chart with more panels or rows than one image shows legibly (harness.limits)."""


class ComparisonError(RnnbenchError):
    """Two results files that cannot be compared: nothing in common, a bad option, different environments."""
