"""The answer a reader came for: per configuration, which backend is fastest and by how much.

One model, rendered three ways: the verdict at the end of ``rnnbench run`` (``answer_text``), the head of
the Markdown summary and the first section of the HTML report (which take ``run_answer`` and
``geomean_parts``).

fastest   The backend with the lowest median of the configuration's primary region (step; forward for
          forward-only modes) among the cases that ran.
× slower  Every other backend's median over the fastest's, with the interval of harness.gate.speedup (the
          same bootstrap as the speedups over cudnn). A ratio the measurement cannot support (the one rule
          of harness.gate.speedup: ``Speedup.reliable``) is shown as *unreliable*, without a number.
clear     The fastest is *clear* when the runner-up's ratio is reliable and its interval lies above 1;
          otherwise the configuration is counted as too close to call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from harness.report.names import BACKEND_NAMES_NOTE, baseline_name, display_backend, result_backend_name
from harness.report.text import configuration_groups, format_ms, speedups_by_key
from harness.record.results import CaseResult, RunResults
from harness.gate.speedup import UNRELIABLE_RULE, UNRELIABLE_RULE_SHORT, Speedup, SpeedupMean, geometric_mean_speedups, speedup_between
from harness.spec.suite import BACKENDS


# A compiled backend that Dynamo could not compile timed eager PyTorch: the verdict says so where it names it,
# as the charts' legends do.
RAN_EAGERLY_LABEL = " (NOT compiled: ran eagerly)"


def answer_name(result: CaseResult) -> str:
    """The backend of one result as the verdict names it: its display name, and whether it ran eagerly."""
    return result_backend_name(result) + (RAN_EAGERLY_LABEL if result.ran_eagerly else "")


@dataclass(frozen=True)
class Behind:
    """A backend that ran in a configuration and was not the fastest. ``speedup``: the fastest against it
    (its ratio is this backend's median over the fastest's, >= 1)."""

    result: CaseResult
    speedup: Speedup

    @property
    def name(self) -> str:
        return answer_name(self.result)

    @property
    def reliable(self) -> bool:
        return self.speedup.reliable

    @property
    def times_slower(self) -> float | None:
        return self.speedup.ratio.value if self.speedup.ratio is not None else None


@dataclass(frozen=True)
class ConfigurationAnswer:
    label: str  # the configuration without the parts every configuration shares
    region: str
    fastest: CaseResult | None  # None: no backend ran
    behind: tuple[Behind, ...]  # slowest last
    missing: tuple[CaseResult, ...]  # failed or skipped

    @property
    def fastest_name(self) -> str | None:
        return answer_name(self.fastest) if self.fastest else None

    @property
    def unclear_why(self) -> str | None:
        """Why the fastest is not clearly ahead of the runner-up; None when it is (or ran alone)."""
        if not self.behind:
            return None
        runner_up = self.behind[0]
        ratio = runner_up.speedup.ratio
        if ratio is None:
            return None
        if not runner_up.reliable:
            return "the lead is unreliable"
        if ratio.low <= 1:
            return f"{runner_up.name} within the interval"
        return None


@dataclass(frozen=True)
class RunAnswer:
    configurations: tuple[ConfigurationAnswer, ...]
    geomeans: dict[str, SpeedupMean]  # by backend label: the geometric mean speedup over cudnn
    baseline: str  # what the geometric means are over, as shown ('cudnn', 'nn.LSTM (oneDNN)')
    display_names: dict[str, str]  # backend label -> the name shown
    cpu_names_note: str | None  # the note on nn.LSTM for cudnn, on a CPU run

    def wins(self) -> dict[str, int]:
        """Per backend (as shown), the configurations it was fastest in, most first."""
        counts: dict[str, int] = {}
        for configuration in self.configurations:
            if configuration.fastest is not None:
                counts[configuration.fastest_name] = counts.get(configuration.fastest_name, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    def geomean_name(self, backend: str) -> str:
        """A backend label as its geometric mean is named: shown as everywhere, and whether its cases ran eagerly
        (all of them, or how many of those that ran)."""
        ran = [result for c in self.configurations for result in ([c.fastest] if c.fastest else [])
               + [b.result for b in c.behind] if result.case.backend_label == backend]
        eagerly = sum(result.ran_eagerly for result in ran)
        name = self.display_names.get(backend, backend)
        if not eagerly:
            return name
        return name + (RAN_EAGERLY_LABEL if eagerly == len(ran) else f" (NOT compiled in {eagerly} of {len(ran)})")

    @property
    def unclear(self) -> int:
        return sum(1 for c in self.configurations if c.unclear_why)

    def overall_line(self) -> str:
        """'fastest per configuration: cudnn 5 of 6, torchscript 1' (and how many were too close to call)."""
        wins = self.wins()
        ran = sum(wins.values())
        if not wins:
            return "fastest per configuration: none (no case ran)"
        parts = [f"{name} {count}" + (f" of {ran}" if i == 0 else "") for i, (name, count) in enumerate(wins.items())]
        text = "fastest per configuration: " + ", ".join(parts)
        if self.unclear:
            text += f" ({self.unclear} too close to call)"
        not_ran = len(self.configurations) - ran
        if not_ran:
            text += f"; {not_ran} configuration{'s' if not_ran != 1 else ''} where no backend ran"
        return text


def run_answer(run: RunResults, speedups: dict[str, Speedup] | None = None) -> RunAnswer:
    """The answer of one results file; ``speedups``: speedups_by_key(run), where the caller has it."""
    groups = configuration_groups(run)
    varying = [len({key[i] for key in groups}) > 1 for i in range(5)]
    configurations = []
    for key, results in groups.items():
        label = " ".join(part for part, varies in zip(key, varying) if varies or part == key[2])
        ran = [r for r in results if r.ok and r.median_ms()]
        region = results[0].primary_region
        if not ran:
            configurations.append(ConfigurationAnswer(label, region, None, (), tuple(results)))
            continue
        fastest = min(ran, key=lambda r: r.median_ms())
        behind = [Behind(r, speedup_between(fastest, r, region)) for r in ran if r is not fastest]
        behind.sort(key=lambda b: b.result.median_ms())
        configurations.append(ConfigurationAnswer(label, region, fastest, tuple(behind),
                                                  tuple(r for r in results if not r.ok)))
    speedups = speedups if speedups is not None else speedups_by_key(run)
    cpu = any(r.case.device_type == "cpu" and r.case.backend == "cudnn" for r in run.cases)
    return RunAnswer(configurations=tuple(configurations), geomeans=geometric_mean_speedups(speedups.values()),
                     baseline=baseline_name(run.cases), display_names=display_names(run),
                     cpu_names_note=BACKEND_NAMES_NOTE if cpu else None)


def display_names(run: RunResults) -> dict[str, str]:
    """Backend label -> the name shown, where every case of that label shows the same name (else the label)."""
    names: dict[str, set[str]] = {}
    for result in run.cases:
        names.setdefault(result.case.backend_label, set()).add(result_backend_name(result))
    devices: dict[str, set[str]] = {}
    for result in run.cases:
        devices.setdefault(result.case.backend_label, set()).add(result.case.device_type)
    shown = {}
    for label, distinct in names.items():
        if len(distinct) == 1:
            shown[label] = next(iter(distinct))
        else:  # cells or libraries differ: the name without them ('nn.LSTM/GRU' for cudnn on a CPU)
            device = next(iter(devices[label])) if len(devices[label]) == 1 else None
            shown[label] = display_backend(label, device)
    return shown


def ordered_geomeans(answer: RunAnswer) -> list[SpeedupMean]:
    return sorted(answer.geomeans.values(),
                  key=lambda m: BACKENDS.index(m.backend) if m.backend in BACKENDS else len(BACKENDS))


def geomean_parts(answer: RunAnswer, times: str = "×") -> list[tuple[str, str]]:
    """(backend as shown, its geometric mean speedup as text) in the suite's backend order: the figures
    of the line 'speedup over cudnn, geometric mean: eager 0.29× · torchscript 0.50×'."""
    parts = []
    for mean in ordered_geomeans(answer):
        value = f"{mean.value:.2f}{times}" if mean.value is not None else "no reliable ratio"
        if mean.unreliable:
            value += f" ({mean.left_out_text()})"
        parts.append((answer.geomean_name(mean.backend), value))
    return parts


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def format_times(value: float) -> str:
    return f"{value:.1f}×" if value >= 10 else f"{value:.2f}×"


def behind_text(behind: Behind) -> str:
    """'torchscript 1.42×', 'eager unreliable' (the rule of harness.gate.speedup), 'eager 3.1× (tie)'."""
    if behind.times_slower is None:
        return f"{behind.name} -"
    if not behind.reliable:
        return f"{behind.name} unreliable"
    return f"{behind.name} {format_times(behind.times_slower)}"


def configuration_line(configuration: ConfigurationAnswer) -> str:
    """'lstm B16-T32-I64-H64: cudnn 1.23 ms · slower: torchscript 1.42×, eager 3.10×'."""
    if configuration.fastest is None:
        return f"{configuration.label}: no backend ran"
    text = (f"{configuration.label}: {configuration.fastest_name} fastest, "
            f"{format_ms(configuration.fastest.median_ms())} ms")
    if configuration.behind:
        text += " · × slower: " + ", ".join(behind_text(b) for b in configuration.behind)
    if configuration.missing:
        text += " · " + ", ".join(f"{result_backend_name(r)} {r.status}" for r in configuration.missing)
    if configuration.unclear_why:
        reliable_lead = configuration.behind[0].reliable
        text += f" (too close to call{f': {configuration.unclear_why}' if reliable_lead else ''})"
    return text


def answer_text(run: RunResults, speedups: dict[str, Speedup] | None = None) -> str:
    """The verdict at the end of ``rnnbench run``: one line per configuration, then the overall lines."""
    answer = run_answer(run, speedups)
    regions = "/".join(sorted({c.region for c in answer.configurations}))
    lines = [f"verdict (median {regions} time; × slower: the backend's median over the fastest's):"]
    lines += [f"  {configuration_line(c)}" for c in answer.configurations]
    lines.append(answer.overall_line())
    parts = geomean_parts(answer)
    if parts:
        lines.append(f"speedup over {answer.baseline}, geometric mean (> 1: faster): "
                     + " · ".join(f"{name} {value}" for name, value in parts))
    if any(not b.reliable and b.times_slower is not None for c in answer.configurations for b in c.behind) \
            or any(mean.unreliable for mean in answer.geomeans.values()):
        lines.append(f"unreliable: no number, as the measurement cannot support one ({UNRELIABLE_RULE_SHORT})")
    if answer.cpu_names_note:
        lines.append(answer.cpu_names_note)
    return "\n".join(lines)


def ab_verdict_text(comparison) -> str:
    """The verdict at the end of ``rnnbench ab``: the A-vs-B gate first (the counts are the line above it), then
    B's fastest per configuration."""
    from harness.report.compare_text import verdict_line

    lines = [f"verdict: {verdict_line(comparison)}"]
    answer = run_answer(comparison.current)
    lines.append(f"  in B, {answer.overall_line()}")
    return "\n".join(lines)


def answers_for(sections: Sequence[tuple[str, RunResults, Sequence]]) -> list[tuple[str, RunAnswer]]:
    return [(label, run_answer(run)) for label, run, _ in sections]
