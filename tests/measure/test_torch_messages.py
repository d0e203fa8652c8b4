"""torch's warnings and log lines are kept with the case that raised them, never printed mid-table."""

import logging
import warnings

from harness.measure.backends import build_backend
from harness.measure.backends.cudnn import REPACKED_WEIGHTS_WARNING
from harness.measure.quiet import MAX_MESSAGES, messages_captured
from harness.report.text import summary_table, warnings_lines
from harness.record.results import RunResults
from harness.measure.runner import run_case
from tests.helpers import cpu_settings, tiny_case


def test_warnings_and_torch_log_lines_are_captured_deduplicated_and_not_printed(capsys):
    with messages_captured() as messages:
        warnings.warn("first line\nsecond line", UserWarning)
        warnings.warn("first line\nanother tail", UserWarning)
        logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found, using CUDA_HOME='/x'")
    assert messages == ["first line", "No CUDA runtime is found, using CUDA_HOME='/x'"]
    captured = capsys.readouterr()
    assert "first line" not in captured.err and "CUDA_HOME" not in captured.err


def test_messages_are_capped():
    with messages_captured() as messages:
        for index in range(MAX_MESSAGES + 5):
            warnings.warn(f"warning {index}")
    assert len(messages) == MAX_MESSAGES


def _build_that_warns(text):
    def build(name, reference):
        warnings.warn(text, UserWarning)
        return build_backend(name, reference)
    return build


def test_a_case_keeps_the_warnings_it_raised_and_the_table_lists_them_once_below(capsys):
    settings = cpu_settings()
    results = [run_case(tiny_case(backend=backend), settings, build=_build_that_warns("deprecated knob"))
               for backend in ("cudnn", "eager")]
    assert all(result.ok and result.warnings == ("deprecated knob",) for result in results)
    assert "deprecated knob" not in capsys.readouterr().err
    run = RunResults(environment={}, suite={}, cases=tuple(results))
    assert "deprecated knob" not in summary_table(run)
    assert warnings_lines(run)[1:] == ["  [2 cases] deprecated knob"]


def test_a_case_that_raises_the_contiguity_warning_is_flagged():
    text = f"RNN module weights are {REPACKED_WEIGHTS_WARNING}. This means they need to be compacted"
    result = run_case(tiny_case(), cpu_settings(), build=_build_that_warns(text))
    assert result.backend["weights_repacked_every_call"] is True
    run = RunResults(environment={}, suite={}, cases=(result,))
    assert "WEIGHTS RE-PACKED EVERY CALL" in summary_table(run)


def test_a_failed_case_keeps_its_warnings_too():
    def build(name, reference):
        warnings.warn("about to fail")
        raise RuntimeError("boom")

    result = run_case(tiny_case(), cpu_settings(), build=build)
    assert result.status == "failed" and result.warnings == ("about to fail",)
