import numpy as np
import pytest

from pickwise.analytics.bradley_terry import (
    ELO_PER_LOGIT,
    aggregate_battles,
    counted_battles,
    outcomes_of_choices,
)
from pickwise.analytics.labels import CHOICE_A, CHOICE_B, CHOICE_TIE
from pickwise.analytics.style_control import (
    StyleControlledLeaderboard,
    normalized_style_differences,
    style_controlled_leaderboard,
    style_controlled_leaderboard_counts,
    style_counts,
)

STRENGTHS = np.array([0.6, 0.3, 0.0, 0.0, -0.5])
# Model 3 is exactly as strong as model 2 but writes three times as much.
TYPICAL_WORDS = np.array([250.0, 250.0, 250.0, 750.0, 250.0])
LENGTH_PREFERENCE = 0.25


def simulate_style_votes(n_votes: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    model_a = rng.integers(0, 5, n_votes)
    model_b = (model_a + rng.integers(1, 5, n_votes)) % 5
    words_a = rng.lognormal(np.log(TYPICAL_WORDS[model_a]), 0.6)
    words_b = rng.lognormal(np.log(TYPICAL_WORDS[model_b]), 0.6)
    # Markdown counts that play no part in the choice: their coefficients should be ~0.
    counts_a = np.column_stack([words_a, rng.poisson(1.0, (n_votes, 3))])
    counts_b = np.column_stack([words_b, rng.poisson(1.0, (n_votes, 3))])
    features = normalized_style_differences(counts_a, counts_b)
    logit = STRENGTHS[model_a] - STRENGTHS[model_b] + LENGTH_PREFERENCE * features[:, 0]
    p = 1 / (1 + np.exp(-logit))
    half_tie = 0.3 * p * (1 - p)
    u = rng.random(n_votes)
    choice = np.where(u < p - half_tie, CHOICE_A, np.where(u < p + half_tie, CHOICE_TIE, CHOICE_B))
    return {
        "model_a": model_a,
        "model_b": model_b,
        "choice": choice,
        "counts_a": counts_a,
        "counts_b": counts_b,
    }


@pytest.fixture(scope="module")
def style_board() -> StyleControlledLeaderboard:
    votes = simulate_style_votes(40_000, seed=21)
    return style_controlled_leaderboard(
        votes["model_a"],
        votes["model_b"],
        votes["choice"],
        5,
        votes["counts_a"],
        votes["counts_b"],
    )


def test_recovers_injected_length_preference(style_board: StyleControlledLeaderboard) -> None:
    length, *markdown = style_board.style_coefficients
    print(f"length coefficient {length:.3f} (injected {LENGTH_PREFERENCE})")

    assert style_board.feature_names == ("words", "headings", "list_items", "bold")
    assert style_board.converged
    assert length == pytest.approx(LENGTH_PREFERENCE, abs=0.05)
    assert style_board.coefficient_lower[0] < LENGTH_PREFERENCE < style_board.coefficient_upper[0]
    np.testing.assert_allclose(markdown, 0.0, atol=0.05)


def test_a_model_that_is_only_longer_loses_its_advantage(
    style_board: StyleControlledLeaderboard,
) -> None:
    without = style_board.scores_without_style_control
    with_control = style_board.scores_with_style_control
    advantage_without = without[3] - without[2]
    advantage_with = with_control[3] - with_control[2]
    print(f"longer model's advantage: {advantage_without:.1f} → {advantage_with:.1f} Elo")

    assert advantage_without > 30
    assert abs(advantage_with) < 15
    # The other models keep their order under style control.
    assert list(np.argsort(-with_control)[[0, 1, 4]]) == [0, 1, 4]
    assert with_control.mean() == pytest.approx(1000.0)


def test_normalized_differences_are_ratio_then_standardized() -> None:
    counts_a = np.array([[30.0, 0.0, 2.0], [1.0, 0.0, 2.0], [20.0, 0.0, 2.0]])
    counts_b = np.array([[10.0, 0.0, 2.0], [3.0, 0.0, 2.0], [20.0, 0.0, 2.0]])

    features = normalized_style_differences(counts_a, counts_b)

    # (a − b) / (a + b) = 0.5, −0.5, 0 whatever the scale of the counts, then standardised by
    # the (population) standard deviation √(1/6).
    np.testing.assert_allclose(features[:, 0], np.array([0.5, -0.5, 0.0]) / np.sqrt(1 / 6))
    # Both zero, or never different: the feature stays all zero.
    np.testing.assert_array_equal(features[:, 1:], 0.0)


def test_style_counts_come_from_text_features() -> None:
    counts = style_counts(["# Title\n\n- one\n- **two**", "plain words here"])

    # Columns: words, headings, list items, bold. "#" and "-" alone are not words.
    np.testing.assert_array_equal(counts, [[3.0, 1.0, 2.0, 1.0], [3.0, 0.0, 0.0, 0.0]])


def simulate_counted_pairs(n_pairs: int, seed: int) -> dict[str, np.ndarray]:
    """Pairs of answers with 0-5 votes each: per pair, and the same votes one row each."""
    rng = np.random.default_rng(seed)
    model_a = rng.integers(0, 5, n_pairs)
    model_b = (model_a + rng.integers(1, 5, n_pairs)) % 5
    counts_a = np.column_stack(
        [rng.integers(0, 400, n_pairs), rng.poisson(0.5, (n_pairs, 3))]
    ).astype(float)
    counts_b = np.column_stack(
        [rng.integers(0, 400, n_pairs), rng.poisson(0.5, (n_pairs, 3))]
    ).astype(float)
    votes = rng.integers(0, 6, n_pairs)  # pairs without votes must count nowhere
    vote_pair = np.repeat(np.arange(n_pairs), votes)
    ratio = (counts_a[vote_pair, 0] - counts_b[vote_pair, 0]) / (
        counts_a[vote_pair, 0] + counts_b[vote_pair, 0] + 1
    )
    logit = STRENGTHS[model_a[vote_pair]] - STRENGTHS[model_b[vote_pair]] + ratio
    u = rng.random(len(vote_pair))
    p = 1 / (1 + np.exp(-logit))
    choice = np.where(u < 0.1, CHOICE_TIE, np.where(u < 0.1 + 0.9 * p, CHOICE_A, CHOICE_B))
    outcome = outcomes_of_choices(choice)
    outcome_counts = np.zeros((n_pairs, 3))
    np.add.at(outcome_counts, (vote_pair, outcome), 1.0)
    return {
        "vote_pair": vote_pair,
        "choice": choice,
        "model_a": model_a,
        "model_b": model_b,
        "counts_a": counts_a,
        "counts_b": counts_b,
        "outcome_counts": outcome_counts,
    }


def test_votes_counted_per_pair_fit_exactly_like_one_row_per_vote() -> None:
    pairs = simulate_counted_pairs(3_000, seed=8)
    per_vote = pairs["vote_pair"]

    one_row_per_vote = style_controlled_leaderboard(
        pairs["model_a"][per_vote],
        pairs["model_b"][per_vote],
        pairs["choice"],
        5,
        pairs["counts_a"][per_vote],
        pairs["counts_b"][per_vote],
    )
    counted = style_controlled_leaderboard_counts(
        pairs["model_a"],
        pairs["model_b"],
        pairs["outcome_counts"],
        5,
        pairs["counts_a"],
        pairs["counts_b"],
    )

    assert counted.converged and one_row_per_vote.converged
    assert abs(one_row_per_vote.style_coefficients[0]) > 0.1  # a real fit, not all zeros
    # Equal to 1e-6 in log-odds; scores are on the Elo scale (ELO_PER_LOGIT per log-odds unit).
    for field, unit in (
        ("style_coefficients", 1.0),
        ("coefficient_lower", 1.0),
        ("coefficient_upper", 1.0),
        ("scores_with_style_control", ELO_PER_LOGIT),
        ("scores_without_style_control", ELO_PER_LOGIT),
    ):
        np.testing.assert_allclose(
            getattr(counted, field), getattr(one_row_per_vote, field), rtol=0, atol=1e-6 * unit
        )


def test_weighted_normalized_differences_equal_the_per_vote_ones() -> None:
    pairs = simulate_counted_pairs(500, seed=9)
    votes = pairs["outcome_counts"].sum(axis=1)
    per_vote = pairs["vote_pair"]

    weighted = normalized_style_differences(pairs["counts_a"], pairs["counts_b"], votes)
    expected = normalized_style_differences(
        pairs["counts_a"][per_vote], pairs["counts_b"][per_vote]
    )

    np.testing.assert_allclose(weighted[per_vote], expected, rtol=0, atol=1e-12)


def test_counted_battles_equal_aggregated_votes() -> None:
    pairs = simulate_counted_pairs(500, seed=10)
    per_vote = pairs["vote_pair"]

    counted = counted_battles(pairs["model_a"], pairs["model_b"], pairs["outcome_counts"], 5)
    aggregated = aggregate_battles(
        pairs["model_a"][per_vote], pairs["model_b"][per_vote], pairs["choice"], 5
    )

    for field in ("model_a", "model_b", "outcome", "count"):
        np.testing.assert_array_equal(getattr(counted, field), getattr(aggregated, field))
