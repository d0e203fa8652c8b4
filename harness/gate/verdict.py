"""The regression gate's verdicts: what each means, and every word, symbol and colour it is shown with.

Definitions (time metrics, lower is better; t = threshold, band = [1/(1+t), 1+t]), by the comparison's
:class:`GateRule`:

ONE_SIDED_FDR (A/B sides paired block by block, ``rnnbench ab``)
    regression   the one-sided p of "slower" (against a ratio of 1), Benjamini-Hochberg-adjusted over all
                 compared cases, < alpha AND the change above 1+t: slower with confidence, and by more than
                 the threshold as measured. Promise: among the cases called regressions, the expected share
                 that are not slower at all is at most alpha (a false-discovery rate); when nothing changed,
                 the chance of any regression in the comparison is at most alpha.
    improvement  the mirror: the one-sided p of "faster", adjusted likewise over all cases, < alpha AND the
                 change below 1/(1+t).
HOLM_INTERVAL (every other comparison)
    regression   Holm-adjusted two-sided p < alpha AND the whole interval above 1+t: the current run is
                 slower, and slower by more than the threshold, with confidence (a family-wise rate).
    improvement  Holm-adjusted p < alpha AND the whole interval below 1/(1+t).
Both
    noise        neither, and the ratio is outside the band: a change of threshold size was measured but
                 cannot be told from noise (not significant after the adjustment, or, by Holm's rule, the
                 interval reaches back into the band). Reported, never fails the gate; more rounds, samples
                 (a larger budget_s) or a quieter machine decide it.
    unchanged    neither, and the ratio is inside the band: any change is smaller than the threshold.

This module is the one place that knows the vocabulary; renderers ask a :class:`Verdict` for its words.
"""

from __future__ import annotations

from enum import Enum


class Verdict(str, Enum):
    """A verdict; equal to its name ("regression"), so it reads and writes as that string.

    label: the terminal's word; plural: in counts; word: the report's word for B against A; icon: Markdown
    shortcode of ``rnnbench compare --markdown``; mark: the report's Markdown mark; colour and hollow: the
    A-vs-B chart's marker; legend: the chart's legend entry ({lower} and {upper}: the band's edges)."""

    # in rank order: the order every listing uses
    REGRESSION = ("regression", "REGRESSION", "regressions", "slower", ":x:", "🔴", "#d62728", False,
                  "slower (regression): significant, whole CI above {upper}×")
    IMPROVEMENT = ("improvement", "improvement", "improvements", "faster", ":rocket:", "🟢", "#2ca02c", False,
                   "faster (improvement): significant, whole CI below {lower}×")
    NOISE = ("noise", "noise", "noise", "noise", ":grey_question:", "⚪", "#8c8c8c", True,
             "noise (hollow): outside the band, not significant or CI reaches into it")
    UNCHANGED = ("unchanged", "unchanged", "unchanged", "unchanged", ":white_check_mark:", "", "#8c8c8c", False,
                 "unchanged: inside the band {lower}×–{upper}×")

    def __new__(cls, name, label, plural, word, icon, mark, colour, hollow, legend):
        verdict = str.__new__(cls, name)
        verdict._value_ = name
        verdict.label, verdict.plural, verdict.word = label, plural, word
        verdict.icon, verdict.mark, verdict.colour, verdict.hollow = icon, mark, colour, hollow
        verdict.legend_template = legend
        return verdict

    __str__ = str.__str__
    __format__ = str.__format__

    @property
    def rank(self) -> int:
        return list(Verdict).index(self)

    def count_text(self, count: int) -> str:
        """'1 regression', '2 regressions', '0 noise'."""
        return f"{count} {self.plural if count != 1 else self.label.lower()}"

    def word_with_name(self) -> str:
        """The report's word, with the gate's name where they differ: 'slower (regression)', 'noise'."""
        return f"{self.word} ({self.value})" if self.word != self.value else self.word

    def legend(self, threshold: float, rule: "GateRule | None" = None) -> str:
        lower, upper = band(threshold)
        template = self.legend_template
        if rule is GateRule.ONE_SIDED_FDR:  # the change itself beyond the band, not its whole interval
            template = template.replace("whole CI above", "change above").replace("whole CI below", "change below")
            template = template.replace("not significant or CI reaches into it", "not significant")
        return template.format(lower=f"{lower:.3g}", upper=f"{upper:.3g}")


VERDICTS = tuple(Verdict)
REGRESSION, IMPROVEMENT, NOISE, UNCHANGED = VERDICTS


def band(threshold: float) -> tuple[float, float]:
    """The ratios no verdict calls a change: [1/(1+t), 1+t]."""
    return 1.0 / (1.0 + threshold), 1.0 + threshold


class GateRule(Enum):
    """Which definitions a comparison's verdicts follow (module docstring), and the words they are shown with."""

    ONE_SIDED_FDR = "one-sided, Benjamini-Hochberg"
    HOLM_INTERVAL = "two-sided, Holm"

    @property
    def adjustment(self) -> str:
        """The multiple-comparison adjustment, short: a table's column is 'p (' + this + ')'."""
        return "BH" if self is GateRule.ONE_SIDED_FDR else "Holm"

    @property
    def adjustment_words(self) -> str:
        """The tests and their adjustment, in words: 'Holm-Bonferroni'."""
        return ("one-sided tests and Benjamini-Hochberg (a false-discovery rate)" if self is GateRule.ONE_SIDED_FDR
                else "Holm-Bonferroni")

    def interval_confidence(self, alpha: float) -> float:
        """The confidence of the interval shown: one-sided tests at alpha go with the 1 - 2 alpha two-sided
        interval (its ends are their one-sided bounds); Holm's two-sided test with 1 - alpha."""
        return 1 - 2 * alpha if self is GateRule.ONE_SIDED_FDR else 1 - alpha


def classify(ratio: float, ci_low: float | None, ci_high: float | None, p_adjusted: float, *,
             threshold: float, alpha: float, lower_is_better: bool = True,
             rule: GateRule = GateRule.HOLM_INTERVAL) -> Verdict:
    """The verdict of one case; see the module docstring for the definitions. ``p_adjusted``: under
    ONE_SIDED_FDR the adjusted one-sided p of the direction the ratio points (slower above 1, faster below)."""
    lower, upper = band(threshold)
    significant = p_adjusted < alpha
    if rule is GateRule.ONE_SIDED_FDR:
        slower_beyond, faster_beyond = ratio > upper, ratio < lower
    else:
        slower_beyond = ci_low is not None and ci_low > upper
        faster_beyond = ci_high is not None and ci_high < lower
    if significant and (slower_beyond or faster_beyond):
        worse = slower_beyond if lower_is_better else faster_beyond
        return Verdict.REGRESSION if worse else Verdict.IMPROVEMENT
    return Verdict.UNCHANGED if lower <= ratio <= upper else Verdict.NOISE


def verdict_rule(threshold: float, alpha: float, compared: int, rule: GateRule = GateRule.HOLM_INTERVAL) -> str:
    """One sentence on where the verdicts of an A-vs-B comparison come from and what they mean."""
    lower, upper = band(threshold)
    opening = (f"Verdicts are those of rnnbench compare A B (A the baseline, B the current run; threshold "
               f"{threshold:.1%}, alpha {alpha:g}): {REGRESSION.word} (a {REGRESSION.value}) or {IMPROVEMENT.word} "
               f"(an {IMPROVEMENT.value}) when ")
    if rule is GateRule.ONE_SIDED_FDR:
        return (opening + f"the one-sided test of that direction (against no change) is significant after "
                f"Benjamini-Hochberg over the {compared} compared cases (a false-discovery rate of {alpha:g}) and "
                f"the change lies beyond the band {lower:.3g}×–{upper:.3g}×; {NOISE.word} when the change is outside "
                f"the band but not significantly so; {UNCHANGED.word} inside the band")
    return (opening + f"the change is significant after Holm-Bonferroni over the {compared} "
            f"compared cases and the whole interval lies beyond the band {lower:.3g}×–{upper:.3g}×; {NOISE.word} "
            f"when the ratio is outside the band but not significantly so, or its interval reaches back into "
            f"the band; {UNCHANGED.word} inside the band")


def changed_cases_title() -> str:
    """'Slower, faster and noise cases': the report's heading over the cases it lists one by one."""
    words = [v.word for v in VERDICTS if v != Verdict.UNCHANGED]
    return f"{', '.join(words[:-1]).capitalize()} and {words[-1]} cases"
