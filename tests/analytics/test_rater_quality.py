import numpy as np
import pytest
from scipy import stats

from pickwise.analytics.flags import FlagThresholds, rater_flags
from pickwise.analytics.labels import CHOICE_A, CHOICE_B, CHOICE_BOTH_BAD, CHOICE_TIE, NO_GOLD
from pickwise.analytics.rater_quality import (
    RaterJudgments,
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
    judgments = RaterJudgments(rater, item, choice, a_left, seconds, gold)

    flags = rater_flags(rater_quality(judgments, n_raters=3))

    assert flags[0] == []
    assert {reason.code for reason in flags[1]} >= {
        "low_gold_accuracy",
        "position_bias",
        "too_fast",
    }
    assert flags[2] == []  # no judgments: nothing to judge
    loose = FlagThresholds(min_median_seconds=1.0, position_p_value=1e-30, min_gold_accuracy=0.1)
    assert "too_fast" not in {
        reason.code for reason in rater_flags(rater_quality(judgments, 3), loose)[1]
    }
