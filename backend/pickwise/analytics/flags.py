"""Rules that flag raters for review, with the thresholds as one dataclass.

A flag means "this rater is worse than the others, with evidence": every rule is a test
with its numbers, and the accuracy rules compare the rater with the other raters of the same
pairs, so a hard task (where good raters are often wrong) does not flag good raters.
``assess_raters`` measures and flags in one go, and takes the raters it flags out of "the
others" the rest are compared with.
"""

import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from pickwise.analytics.rater_comparison import OthersComparison, compare_with_others
from pickwise.analytics.rater_judgments import RaterJudgments
from pickwise.analytics.rater_quality import RaterQuality, rater_quality


class FlagCode(StrEnum):
    LOW_AGREEMENT = "low_agreement"
    LOW_GOLD_ACCURACY = "low_gold_accuracy"
    POSITION_BIAS = "position_bias"
    LENGTH_BIAS = "length_bias"
    TOO_FAST = "too_fast"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    FlagCode.LOW_AGREEMENT: "Agrees less than others",
    FlagCode.LOW_GOLD_ACCURACY: "Worse on gold",
    FlagCode.POSITION_BIAS: "Position bias",
    FlagCode.LENGTH_BIAS: "Length bias",
    FlagCode.TOO_FAST: "Too fast",
}


@dataclass(frozen=True)
class FlagThresholds:
    """Defaults checked on simulated crowds from easy to hard tasks (tests/analytics,
    docs/analytics.md): good raters are flagged at most a few per cent of the time.

    The tests against the other raters each run at ``comparison_p_value``; a project has many
    raters and each rater meets several tests, so the level is strict. The two bias rules
    also need a large effect, so that a huge number of judgments does not turn a harmless
    lean into a flag.
    """

    # One-sided for agreement and gold accuracy (only worse counts), two-sided for length.
    comparison_p_value: float = 0.005
    # Flag when |left share − 0.5| exceeds this AND the binomial test rejects 0.5 below
    # position_p_value.
    max_position_bias: float = 0.15
    position_p_value: float = 0.001
    # Flag when the share of longer picks differs from the others' on the same pairs by more
    # than this AND the comparison rejects at comparison_p_value.
    max_length_bias: float = 0.15
    # Flag when the median time per judgment is under this; the rater table counts the
    # judgments under it too.
    min_median_seconds: float = 5.0


@dataclass(frozen=True)
class FlagReason:
    code: FlagCode
    detail: str  # the evidence in words: the test and its numbers
    test: str  # which test
    observed: float  # the rater's value (a share, or seconds)
    expected: float  # what a rater like the others (or an unbiased one) would have
    judgments: int  # how many judgments the evidence rests on
    p_value: float | None  # None for a rule that is not a test (too fast)


# Rounds of "flag, then compare the rest with the unflagged raters only"; two suffice in the
# simulations (docs/analytics.md), the cap only guards against a crowd that flips back and forth.
MAX_ROUNDS = 5


@dataclass(frozen=True)
class RaterAssessment:
    quality: RaterQuality
    flags: list[list[FlagReason]]


def assess_raters(
    judgments: RaterJudgments, n_raters: int, thresholds: FlagThresholds | None = None
) -> RaterAssessment:
    """Every measure and every flag, with raters compared against the unflagged raters.

    Compared with everyone, a random clicker in a crowd with many bad raters is measured
    against a low average. So: flag with everyone as "the others", then compare again with the
    raters found nothing against, until the flags stop changing. A rater who is like the
    unflagged raters still passes each test with probability 1 − its level. The reference
    never shrinks below two raters (nothing left to compare with).
    """
    limits = thresholds or FlagThresholds()
    quality = rater_quality(judgments, n_raters, fast_threshold_seconds=limits.min_median_seconds)
    flags = rater_flags(quality, limits)
    for _ in range(MAX_ROUNDS):
        reference = np.array([not reasons for reasons in flags], dtype=np.bool_)
        if reference.sum() < 2 or np.array_equal(reference, quality.comparisons.reference):
            break
        comparisons = compare_with_others(judgments, n_raters, reference)
        quality = dataclasses.replace(quality, comparisons=comparisons)
        flags = rater_flags(quality, limits)
    return RaterAssessment(quality, flags)


def rater_flags(
    quality: RaterQuality, thresholds: FlagThresholds | None = None
) -> list[list[FlagReason]]:
    """For each rater, the reasons to review them (an empty list: nothing to flag).

    A measure without data (NaN) never flags.
    """
    limits = thresholds or FlagThresholds()
    return [_reasons(quality, rater, limits) for rater in range(len(quality.tie_rate))]


COMPARISON_TEST = "exchangeability test against the other raters of the same pairs"
POSITION_TEST = "exact binomial test of a 50% left share"
PACE_RULE = "median seconds per judgment"


def _reasons(quality: RaterQuality, rater: int, limits: FlagThresholds) -> list[FlagReason]:
    reasons = []
    agreement = quality.comparisons.agreement
    if _below(agreement.p_value[rater], limits.comparison_p_value):
        reasons.append(
            _comparison_reason(
                FlagCode.LOW_AGREEMENT,
                agreement,
                rater,
                f"agreed with {_share(agreement.observed[rater])} of the other raters on the "
                f"same pairs, where a rater like them would agree with "
                f"{_share(agreement.expected[rater])}",
                limits,
                one_sided=True,
            )
        )
    gold = quality.comparisons.gold
    if _below(gold.p_value[rater], limits.comparison_p_value):
        right = round(gold.observed[rater] * gold.judgments[rater])
        reasons.append(
            _comparison_reason(
                FlagCode.LOW_GOLD_ACCURACY,
                gold,
                rater,
                f"right on {right} of {gold.judgments[rater]} gold judgments "
                f"({_share(gold.observed[rater])}), where a rater like the others on the same "
                f"gold pairs would be right on {_share(gold.expected[rater])}",
                limits,
                one_sided=True,
            )
        )
    position = quality.position
    left_share = float(position.left_share[rater])
    if (
        abs(left_share - 0.5) > limits.max_position_bias
        and position.p_value[rater] < limits.position_p_value
    ):
        p_value = float(position.p_value[rater])
        reasons.append(
            FlagReason(
                FlagCode.POSITION_BIAS,
                f"picked the left answer {position.left_picks[rater]} of "
                f"{position.decisive[rater]} times ({_share(left_share)}), where 50% is "
                f"expected ({POSITION_TEST}: p = {_p(p_value)} < {limits.position_p_value:g})",
                POSITION_TEST,
                observed=left_share,
                expected=0.5,
                judgments=int(position.decisive[rater]),
                p_value=p_value,
            )
        )
    longer = quality.comparisons.longer_picks
    lean = float(longer.observed[rater] - longer.expected[rater])
    if abs(lean) > limits.max_length_bias and _below(
        longer.p_value[rater], limits.comparison_p_value
    ):
        picks = round(longer.observed[rater] * longer.judgments[rater])
        reasons.append(
            _comparison_reason(
                FlagCode.LENGTH_BIAS,
                longer,
                rater,
                f"picked the longer answer in {picks} of {longer.judgments[rater]} A-or-B "
                f"choices ({_share(longer.observed[rater])}), where a rater like the others "
                f"on the same pairs would pick it in {_share(longer.expected[rater])}",
                limits,
                one_sided=False,
            )
        )
    pace = quality.pace
    median = float(pace.median_seconds[rater])
    if _below(median, limits.min_median_seconds):
        reasons.append(
            FlagReason(
                FlagCode.TOO_FAST,
                f"median {median:.1f} s per judgment, under {limits.min_median_seconds:g} s; "
                f"{pace.fast_count[rater]} of {pace.judgments[rater]} judgments took under "
                f"{pace.fast_threshold_seconds:g} s",
                PACE_RULE,
                observed=median,
                expected=limits.min_median_seconds,
                judgments=int(pace.judgments[rater]),
                p_value=None,
            )
        )
    return reasons


def _comparison_reason(
    code: FlagCode,
    comparison: OthersComparison,
    rater: int,
    finding: str,
    limits: FlagThresholds,
    *,
    one_sided: bool,
) -> FlagReason:
    p_value = float(comparison.p_value[rater])
    sides = "one-sided" if one_sided else "two-sided"
    return FlagReason(
        code,
        f"{finding} ({comparison.judgments[rater]} judgments; {sides} {COMPARISON_TEST}: "
        f"z = {comparison.z[rater]:.1f}, p = {_p(p_value)} < {limits.comparison_p_value:g})",
        f"{sides} {COMPARISON_TEST}",
        observed=float(comparison.observed[rater]),
        expected=float(comparison.expected[rater]),
        judgments=int(comparison.judgments[rater]),
        p_value=p_value,
    )


def _share(value: float) -> str:
    return f"{value:.0%}"


def _p(value: float) -> str:
    return f"{value:.1g}" if value < 0.001 else f"{value:.3f}"


def _below(value: float, limit: float) -> bool:
    return not math.isnan(value) and value < limit
