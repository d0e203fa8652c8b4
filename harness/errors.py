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
    """A chart with more panels or rows than one image shows legibly (harness.spec.limits)."""


class ComparisonError(RnnbenchError):
    """Two results files that cannot be compared: nothing in common, a bad option, different environments."""


class UsageError(RnnbenchError):
    """Options that cannot be used together, or an option's value that cannot be used: the CLI says it as a
    usage error (one line that points at the command's --help, exit 2)."""


# How a command ends (the CLI's exit status): 0 success, 1 a case failed (run) or a regression (compare, ab,
# history regressions), 2 unusable input, 3 an internal error (a bug), 130 interrupted.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
