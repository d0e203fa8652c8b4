"""A run's plan is a typed record that reads back from its JSON: RunPlan.to_dict and RunPlan.from_dict, like
CaseResult's and RunOptions'."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings, strategies as st

from harness.errors import SuiteError
from harness.execute.run_plan import IN_PROCESS, IN_ROUNDS, ON_DEVICES, RunPlan, plan_run, run_settings
from harness.record.run_options import RunOptions
from tests.execute.test_executor import WRITTEN
from tests.helpers import suite_file
from tests.synthetic_results import case_result


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    """A real plan of an 8-case suite (its environment and machine state read on this machine)."""
    folder = tmp_path_factory.mktemp("plan")
    suite = suite_file(folder, grid={"backend": ["cudnn", "eager"], "batch": [2, 3]})
    return plan_run(str(suite), out=str(folder / "r.json"))


# the options results files record, less a merged file's (rounds without the orders a run's plan has)
OPTIONS = [options for options in map(RunOptions.from_dict, WRITTEN) if options.rounds is None or options.round_orders]
OPTIONS.append(RunOptions(device="cpu", nvtx=True))


@st.composite
def variants(draw, plan):
    """The plan with another selection of what runs now, finished cases of a resumed run, options, flags."""
    planned = draw(st.lists(st.sampled_from(plan.planned), min_size=1, unique=True))
    finished = [case for case in planned if draw(st.booleans())]
    now = tuple(case for case in planned if case not in finished)
    previous = tuple(case_result(case, (1.0 + index, 1.5, 0.75)) for index, case in enumerate(finished))
    options = draw(st.sampled_from(OPTIONS))
    return replace(plan, planned=tuple(planned), cases=now, previous_cases=previous, options=options,
                   settings=run_settings(plan.opened, options), resuming=bool(previous) or draw(st.booleans()),
                   force=draw(st.booleans()), path=plan.path.with_name(draw(st.sampled_from(["r.json", "ü b.json"]))))


def test_a_real_plan_reads_back_from_its_json(plan):
    document = json.loads(json.dumps(plan.to_dict()))
    back = RunPlan.from_dict(document)
    assert back.to_dict() == document
    assert (back.planned, back.cases, back.options, back.settings, back.path) == (
        plan.planned, plan.cases, plan.options, plan.settings, plan.path)
    assert back.machine_state == plan.machine_state and back.machine_state is not None
    assert back.suite == plan.suite and back.opened.device == plan.opened.device and back.how == IN_PROCESS


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_plan_reads_back_from_its_json(plan, data):
    variant = data.draw(variants(plan))
    document = json.loads(json.dumps(variant.to_dict()))
    back = RunPlan.from_dict(document)
    assert back.to_dict() == document
    for name in ("planned", "cases", "previous_cases", "options", "settings", "path", "resuming", "force", "how",
                 "rounds", "progress_total", "machine_state"):
        assert getattr(back, name) == getattr(variant, name), name
    assert back.settings.nvtx == variant.options.nvtx
    assert back.how in (IN_PROCESS, IN_ROUNDS, ON_DEVICES)


def test_a_plan_whose_case_the_suite_no_longer_holds_is_refused_in_one_line(plan, tmp_path):
    document = plan.to_dict()
    suite = suite_file(tmp_path, grid={"backend": ["cudnn"], "batch": [2, 3]})  # the eager cases are gone
    with pytest.raises(SuiteError, match="is not in the suite") as refused:
        RunPlan.from_dict({**document, "suite_path": str(suite)})
    assert "\n" not in str(refused.value) and "/eager/" in str(refused.value)


def test_the_busy_machine_window_opens_before_the_suite_is_opened_and_closes_before_the_peak(tmp_path, monkeypatch):
    from harness.execute import session
    from harness.measure import env
    from harness.record import machine_state

    events = []

    def recorded(what, function):
        def call(*args, **kwargs):
            events.append(what)
            return function(*args, **kwargs)
        return call

    opened = machine_state.start_sampling
    monkeypatch.setattr(machine_state, "start_sampling", recorded("window opens", opened))
    monkeypatch.setattr(session, "open_suite", recorded("suite opened", session.open_suite))
    monkeypatch.setattr(machine_state, "collect_machine_state",
                        recorded("window closes", machine_state.collect_machine_state))
    monkeypatch.setattr(env, "measured_peak", recorded("peak measured", env.measured_peak))
    plan = plan_run(str(suite_file(tmp_path)), out=str(tmp_path / "r.json"))
    assert events == ["window opens", "suite opened", "window closes", "peak measured"]
    assert plan.machine_state.window_s >= machine_state.SAMPLE_WINDOW_S
