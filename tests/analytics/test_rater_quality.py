import numpy as np
import pytest
from scipy import stats

from pickwise.analytics.flags import FlagCode, FlagThresholds, rater_flags
from pickwise.analytics.labels import (
    CHOICE_A,
    CHOICE_B,
    CHOICE_BOTH_BAD,
    CHOICE_TIE,
    NO_GOLD,
    PREFER_A,
    PREFER_B,
)
from pickwise.analytics.rater_comparison import agreement_with_others, property_versus_others
from pickwise.analytics.rater_judgments import RaterJudgments
from pickwise.analytics.rater_quality import (
    choice_rate,
    gold_accuracy,
    pace,
    position_bias,
    rater_quality,
    wilson_interval,
)


def test_wilson_interval_known_values() -> None:
    lower, upper = wilson_interval([8, 0, 0], [10, 10, 0])

    np.testing.assert_allclose(lower[:2], [0.4902, 0.0], atol=1e-4)
    np.testing.assert_allclose(upper[:2], [0.9433, 0.2775], atol=1e-4)
    assert np.isnan(lower[2]) and np.isnan(upper[2])


def test_gold_accuracy_counts_ties_on_gold_pairs_as_wrong() -> None:
    rater = [0, 0, 0, 0, 1]
    choice = [CHOICE_A, CHOICE_B, CHOICE_TIE, CHOICE_A, CHOICE_A]
    gold = [CHOICE_A, CHOICE_B, CHOICE_A, NO_GOLD, NO_GOLD]

    result = gold_accuracy(rater, choice, gold, n_raters=2)

    assert list(result.correct) == [2, 0] and list(result.total) == [3, 0]
    assert result.accuracy[0] == pytest.approx(2 / 3)
    assert np.isnan(result.accuracy[1])


def test_position_bias_share_and_binomial_test() -> None:
    # Rater 0 picks the left answer 18 of 20 times; ties have no side and are left out.
    a_left = np.arange(22) % 2 == 0
    choice = np.where(a_left, CHOICE_A, CHOICE_B)
    choice[[1, 3]] = CHOICE_A  # B was on the left there: two right-hand picks
    choice[[20, 21]] = CHOICE_TIE

    result = position_bias(np.zeros(22, dtype=int), choice, a_left, n_raters=1)

    assert (result.left_picks[0], result.decisive[0]) == (18, 20)
    assert result.left_share[0] == pytest.approx(0.9)
    assert result.p_value[0] == pytest.approx(stats.binomtest(18, 20, 0.5).pvalue)


def test_pace_median_and_fast_judgments() -> None:
    rater = [1, 0, 1, 0, 0, 1, 1]
    seconds = [40.0, 2.0, 3.0, 10.0, 30.0, 20.0, 1.0]

    result = pace(rater, seconds, n_raters=3, fast_threshold_seconds=4.0)

    np.testing.assert_allclose(result.median_seconds, [10.0, 11.5, np.nan])
    assert list(result.fast_count) == [1, 2, 0]
    assert list(result.judgments) == [3, 4, 0]


def test_choice_rate_per_rater() -> None:
    rates = choice_rate(
        [0, 0, 0, 0, 1],
        [CHOICE_TIE, CHOICE_A, CHOICE_BOTH_BAD, CHOICE_TIE, CHOICE_B],
        CHOICE_TIE,
        2,
    )

    np.testing.assert_allclose(rates, [0.5, 0.0])


def test_each_rule_names_its_reason() -> None:
    # Rater 0: careful. Rater 1: fast, gets every gold pair wrong, otherwise clicks left.
    n = 60
    rng = np.random.default_rng(0)
    rater = np.repeat([0, 1], n)
    item = np.tile(np.arange(n), 2)
    a_left = rng.random(2 * n) < 0.5
    truth = rng.integers(0, 2, n)
    is_gold = np.arange(n) < 20
    left_clicks = np.where(a_left[n:], CHOICE_A, CHOICE_B)
    choice = np.concatenate([truth, np.where(is_gold, 1 - truth, left_clicks)])
    gold = np.tile(np.where(is_gold, truth, NO_GOLD), 2)
    seconds = np.concatenate([np.full(n, 30.0), np.full(n, 2.0)])
    judgments = RaterJudgments(rater, item, choice, a_left, seconds, gold, np.ones(2 * n, int))

    flags = rater_flags(rater_quality(judgments, n_raters=3))

    assert flags[0] == []
    assert {reason.code for reason in flags[1]} >= {
        FlagCode.LOW_GOLD_ACCURACY,
        FlagCode.POSITION_BIAS,
        FlagCode.TOO_FAST,
    }
    assert flags[2] == []  # no judgments: nothing to judge
    loose = FlagThresholds(min_median_seconds=1.0, position_p_value=1e-30)
    assert FlagCode.TOO_FAST not in {
        reason.code for reason in rater_flags(rater_quality(judgments, 3), loose)[1]
    }


def test_agreement_with_others_moments_are_those_of_a_random_member() -> None:
    """Pair 0: labels A, A, B (rater 0 says B); pair 1: A, A (nothing to compare: both
    agree); pair 2: only rater 0. Rater 0's score on pair 0 is 0 of 2 others; a label drawn
    at random from (A, A, B) scores 1/2 with probability 2/3 and 0 with 1/3."""
    rater = [0, 1, 2, 0, 1, 0]
    item = [0, 0, 0, 1, 1, 2]
    label = [PREFER_B, PREFER_A, PREFER_A, PREFER_A, PREFER_A, PREFER_A]

    result = agreement_with_others(rater, item, label, n_raters=3)

    # Pair 1 has variance 0 but is still compared (score 1, expected 1); pair 2 is not.
    assert list(result.judgments) == [2, 2, 1]
    assert result.observed[0] == pytest.approx((0 + 1) / 2)
    assert result.expected[0] == pytest.approx((1 / 3 + 1) / 2)
    variance = (2 / 3) * 0.25 - (1 / 3) ** 2
    deviation = max(abs(0 - 1 / 3) - 0.5 * (1 / 2 + 1) / 2, 0)  # continuity correction
    assert result.z[0] == pytest.approx(-deviation / np.sqrt(variance))
    assert result.p_value[0] == pytest.approx(stats.norm.cdf(result.z[0]))


def test_property_versus_others_is_mantel_haenszel_pair_by_pair() -> None:
    """Rater 0 is wrong on three gold pairs where the two others were right, and right on
    one where another rater was wrong."""
    rater = [0, 1, 2] * 4
    item = np.repeat([10, 11, 12, 13], 3)
    right = [0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1]

    result = property_versus_others(rater, item, right, np.ones(12, bool), 3, two_sided=False)

    assert result.judgments[0] == 4
    assert result.observed[0] == pytest.approx(1 / 4)
    assert result.expected[0] == pytest.approx((2 / 3) * 4 / 4)
    variance = 4 * (2 / 3) * (1 / 3)
    assert result.z[0] == pytest.approx((1 - 8 / 3 + 0.5) / np.sqrt(variance))
    assert result.p_value[0] == pytest.approx(stats.norm.cdf(result.z[0]))
    # Two-sided: the same distance either way.
    both = property_versus_others(rater, item, right, np.ones(12, bool), 3, two_sided=True)
    assert both.p_value[0] == pytest.approx(2 * stats.norm.cdf(result.z[0]))
