"""Per-rater quality measures: gold accuracy, position bias, pace, ties, agreement, Dawid-Skene,
and each rater against the other raters of the same pairs (``rater_comparison``).

Inputs are flat arrays with one entry per judgment; raters are dense indices 0..n_raters−1
(the caller maps user ids), items may be any integer ids (e.g. pair ids).
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pickwise.analytics.agreement import MajorityAgreement, agreement_with_majority
from pickwise.analytics.arrays import (
    FloatArray,
    IntArray,
    as_bool_array,
    as_float_array,
    as_int_array,
    safe_share,
)
from pickwise.analytics.dawid_skene import DawidSkeneResult, dawid_skene
from pickwise.analytics.labels import (
    CHOICE_BOTH_BAD,
    CHOICE_TIE,
    NO_GOLD,
    is_decisive,
    picked_left,
    preference_labels,
)
from pickwise.analytics.rater_comparison import Comparisons, compare_with_others
from pickwise.analytics.rater_judgments import RaterJudgments

DEFAULT_FAST_SECONDS = 5.0


@dataclass(frozen=True)
class GoldAccuracy:
    correct: IntArray
    total: IntArray
    accuracy: FloatArray  # NaN without gold judgments
    lower: FloatArray  # Wilson score interval
    upper: FloatArray


@dataclass(frozen=True)
class PositionBias:
    left_picks: IntArray
    decisive: IntArray  # A or B choices: the only ones with a side
    left_share: FloatArray
    p_value: FloatArray  # exact two-sided binomial test of left_share = 0.5


@dataclass(frozen=True)
class Pace:
    judgments: IntArray
    median_seconds: FloatArray
    fast_count: IntArray  # judgments faster than the threshold
    fast_threshold_seconds: float


@dataclass(frozen=True)
class RaterQuality:
    gold: GoldAccuracy
    position: PositionBias
    pace: Pace
    tie_rate: FloatArray  # share of "tie" choices
    both_bad_rate: FloatArray
    majority: MajorityAgreement
    dawid_skene_accuracy: FloatArray
    comparisons: Comparisons  # each rater against the other raters of the same pairs
    # The whole fit, on A / tie / B with gold items fixed (adaptive overlap weighs votes by it).
    dawid_skene: DawidSkeneResult


def wilson_interval(
    successes: npt.ArrayLike, trials: npt.ArrayLike, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for a binomial proportion; NaN where there are no trials.

    Unlike p ± z·se it stays inside [0, 1] and is sensible at 0/n and n/n.
    """
    # Imported here: scipy takes seconds to import and the app must start without it.
    from scipy import stats

    k = as_float_array(successes)
    n = as_float_array(trials)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    share = safe_share(k, n)
    safe_n = np.where(n > 0, n, np.nan)
    center = (share + z**2 / (2 * safe_n)) / (1 + z**2 / safe_n)
    half_width = (z / (1 + z**2 / safe_n)) * np.sqrt(
        share * (1 - share) / safe_n + z**2 / (4 * safe_n**2)
    )
    return as_float_array(center - half_width), as_float_array(center + half_width)


def gold_accuracy(
    rater: npt.ArrayLike,
    choice: npt.ArrayLike,
    gold_choice: npt.ArrayLike,
    n_raters: int,
    confidence: float = 0.95,
) -> GoldAccuracy:
    """Share of gold judgments that picked the gold winner.

    Gold pairs have a clear winner, so a tie or "both bad" on a gold pair counts as wrong.
    """
    raters = as_int_array(rater)
    gold = as_int_array(gold_choice)
    is_gold = gold != NO_GOLD
    correct = np.bincount(
        raters[is_gold], weights=as_int_array(choice)[is_gold] == gold[is_gold], minlength=n_raters
    )
    total = np.bincount(raters[is_gold], minlength=n_raters)
    lower, upper = wilson_interval(correct, total, confidence)
    return GoldAccuracy(
        correct=as_int_array(correct),
        total=as_int_array(total),
        accuracy=safe_share(correct, total),
        lower=lower,
        upper=upper,
    )


def position_bias(
    rater: npt.ArrayLike, choice: npt.ArrayLike, a_shown_left: npt.ArrayLike, n_raters: int
) -> PositionBias:
    """Share of A-or-B choices that picked the left answer, tested against 0.5."""
    # Imported here: scipy takes seconds to import and the app must start without it.
    from scipy import stats

    raters = as_int_array(rater)
    decisive = is_decisive(choice)
    left = picked_left(choice, a_shown_left) & decisive
    left_picks = as_int_array(np.bincount(raters, weights=left, minlength=n_raters))
    decisive_count = as_int_array(np.bincount(raters, weights=decisive, minlength=n_raters))
    p_values = [
        stats.binomtest(int(k), int(n), 0.5).pvalue if n > 0 else np.nan
        for k, n in zip(left_picks, decisive_count, strict=True)
    ]
    return PositionBias(
        left_picks=left_picks,
        decisive=decisive_count,
        left_share=safe_share(left_picks, decisive_count),
        p_value=as_float_array(p_values),
    )


def pace(
    rater: npt.ArrayLike,
    seconds: npt.ArrayLike,
    n_raters: int,
    fast_threshold_seconds: float = DEFAULT_FAST_SECONDS,
) -> Pace:
    """Median seconds per judgment and how many judgments were implausibly fast."""
    raters = as_int_array(rater)
    durations = as_float_array(seconds)
    order = np.lexsort((durations, raters))
    sorted_durations = durations[order]
    judgments = np.bincount(raters, minlength=n_raters)
    starts = np.concatenate([[0], np.cumsum(judgments)[:-1]])
    # Median of each rater's sorted block: mean of its two middle elements (equal if odd).
    low = starts + (judgments - 1) // 2
    high = starts + judgments // 2
    has_any = judgments > 0
    medians = np.full(n_raters, np.nan)
    medians[has_any] = (sorted_durations[low[has_any]] + sorted_durations[high[has_any]]) / 2
    fast = np.bincount(raters, weights=durations < fast_threshold_seconds, minlength=n_raters)
    return Pace(
        judgments=as_int_array(judgments),
        median_seconds=medians,
        fast_count=as_int_array(fast),
        fast_threshold_seconds=fast_threshold_seconds,
    )


def choice_rate(
    rater: npt.ArrayLike, choice: npt.ArrayLike, choice_code: int, n_raters: int
) -> FloatArray:
    """Share of each rater's judgments that made the given choice."""
    raters = as_int_array(rater)
    matches = np.bincount(raters, weights=as_int_array(choice) == choice_code, minlength=n_raters)
    return safe_share(matches, np.bincount(raters, minlength=n_raters))


def rater_quality(
    judgments: RaterJudgments,
    n_raters: int,
    *,
    fast_threshold_seconds: float = DEFAULT_FAST_SECONDS,
    confidence: float = 0.95,
) -> RaterQuality:
    """All per-rater measures; Dawid-Skene runs on A / tie / B with gold items fixed."""
    labels = preference_labels(judgments.choice)
    gold_labels = np.where(
        judgments.gold_choice == NO_GOLD, NO_GOLD, preference_labels(judgments.gold_choice.clip(0))
    )
    model = dawid_skene(judgments.rater, judgments.item, labels, n_raters, known_label=gold_labels)
    return RaterQuality(
        gold=gold_accuracy(
            judgments.rater, judgments.choice, judgments.gold_choice, n_raters, confidence
        ),
        position=position_bias(
            judgments.rater, judgments.choice, as_bool_array(judgments.a_shown_left), n_raters
        ),
        pace=pace(judgments.rater, judgments.seconds, n_raters, fast_threshold_seconds),
        tie_rate=choice_rate(judgments.rater, judgments.choice, CHOICE_TIE, n_raters),
        both_bad_rate=choice_rate(judgments.rater, judgments.choice, CHOICE_BOTH_BAD, n_raters),
        majority=agreement_with_majority(judgments.rater, judgments.item, labels, n_raters),
        dawid_skene_accuracy=model.rater_accuracy,
        comparisons=compare_with_others(judgments, n_raters),
        dawid_skene=model,
    )
