"""Rules that flag raters for review, with the thresholds as one dataclass."""

import math
from dataclasses import dataclass

from pickwise.analytics.rater_quality import RaterQuality


@dataclass(frozen=True)
class FlagThresholds:
    """Defaults tuned on simulated raters with ~100 judgments each (tests/analytics).

    At that volume the Dawid-Skene accuracy of one rater has a standard deviation of about
    0.06, so its threshold sits below the midpoint between a 0.7 and a 0.5 rater: a false
    flag costs a good rater more than a missed flag costs the data, and the other rules
    catch the clearly bad patterns (left-clickers, random clickers) on their own.
    """

    # Flag when even the upper end of the Wilson interval is below this: ten gold judgments
    # are too few to trust a point estimate, but 2/10 correct is clearly below 0.6.
    min_gold_accuracy: float = 0.6
    # Flag when |left share − 0.5| exceeds this AND the binomial test rejects 0.5 below
    # position_p_value. A project has many raters, so the test level is strict.
    max_position_bias: float = 0.15
    position_p_value: float = 0.001
    min_median_seconds: float = 5.0
    min_dawid_skene_accuracy: float = 0.57


@dataclass(frozen=True)
class FlagReason:
    code: str  # low_gold_accuracy | position_bias | too_fast | low_estimated_accuracy
    detail: str


def rater_flags(
    quality: RaterQuality, thresholds: FlagThresholds | None = None
) -> list[list[FlagReason]]:
    """For each rater, the reasons to review them (an empty list: nothing to flag).

    A measure without data (NaN) never flags.
    """
    limits = thresholds or FlagThresholds()
    return [_reasons(quality, rater, limits) for rater in range(len(quality.tie_rate))]


def _reasons(quality: RaterQuality, rater: int, limits: FlagThresholds) -> list[FlagReason]:
    reasons = []
    gold = quality.gold
    if _below(gold.upper[rater], limits.min_gold_accuracy):
        reasons.append(
            FlagReason(
                "low_gold_accuracy",
                f"gold accuracy {gold.correct[rater]}/{gold.total[rater]}, interval up to "
                f"{gold.upper[rater]:.2f}, below {limits.min_gold_accuracy:.2f}",
            )
        )
    position = quality.position
    bias = abs(float(position.left_share[rater]) - 0.5)
    if bias > limits.max_position_bias and position.p_value[rater] < limits.position_p_value:
        reasons.append(
            FlagReason(
                "position_bias",
                f"picked the left answer {position.left_picks[rater]}/"
                f"{position.decisive[rater]} times (p = {position.p_value[rater]:.2g})",
            )
        )
    if _below(quality.pace.median_seconds[rater], limits.min_median_seconds):
        reasons.append(
            FlagReason(
                "too_fast",
                f"median {quality.pace.median_seconds[rater]:.1f} s per judgment, "
                f"{quality.pace.fast_count[rater]} under "
                f"{quality.pace.fast_threshold_seconds:g} s",
            )
        )
    if _below(quality.dawid_skene_accuracy[rater], limits.min_dawid_skene_accuracy):
        reasons.append(
            FlagReason(
                "low_estimated_accuracy",
                f"estimated accuracy {quality.dawid_skene_accuracy[rater]:.2f} "
                f"(Dawid-Skene), below {limits.min_dawid_skene_accuracy:.2f}",
            )
        )
    return reasons


def _below(value: float, limit: float) -> bool:
    return not math.isnan(value) and value < limit
