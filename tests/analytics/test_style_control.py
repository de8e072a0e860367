from typing import Any

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
    separable_features,
    style_controlled_leaderboard,
    style_controlled_leaderboard_counts,
    style_counts,
)

STRENGTHS = np.array([0.6, 0.3, 0.0, 0.0, -0.5])
# Model 3 is exactly as strong as model 2 but writes four times as much.
TYPICAL_WORDS = np.array([250.0, 250.0, 250.0, 1000.0, 250.0])
LONGER, ITS_EQUAL = 3, 2
# Log-odds per unit of the normalised word difference (a − b) / (a + b): an answer four
# times as long as the other (0.6) gains 0.6 log-odds, about 100 Elo.
LENGTH_PREFERENCE = 1.0
# Where each model's answer is listed in the simulated import file: the longer model first,
# so that "A = listed first" puts it on side A whenever it is in the pair.
LISTING_POSITION = np.array([1, 2, 3, 0, 4])
ORIENTATIONS = ("random", "listed_first", "longer_is_a", "shorter_is_a")


def simulate_style_votes(n_votes: int, seed: int, orientation: str = "random") -> dict[str, Any]:
    """Votes on two answers of different models, the winner drawn from the true model
    (strengths plus the length preference), then named A and B by ``orientation``:

    * random: a coin flip, as in Chatbot Arena;
    * listed_first: A is the model listed first in the file (pickwise's canonical A);
    * longer_is_a / shorter_is_a: A is the answer with more / fewer words.

    Markdown counts play no part in the choice: their coefficients should be ~0.
    """
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 5, n_votes)
    second = (first + rng.integers(1, 5, n_votes)) % 5
    words = rng.lognormal(np.log(TYPICAL_WORDS[np.stack([first, second])]), 0.6)
    markdown = rng.poisson(1.0, (2, n_votes, 3)).astype(float)
    ratio = (words[0] - words[1]) / (words[0] + words[1])
    logit = STRENGTHS[first] - STRENGTHS[second] + LENGTH_PREFERENCE * ratio
    p = 1 / (1 + np.exp(-logit))
    half_tie = 0.3 * p * (1 - p)
    u = rng.random(n_votes)
    first_wins = np.where(u < p - half_tie, 1, np.where(u < p + half_tie, 0, -1))
    swap = {
        "random": rng.random(n_votes) < 0.5,
        "listed_first": LISTING_POSITION[first] > LISTING_POSITION[second],
        "longer_is_a": words[0] < words[1],
        "shorter_is_a": words[0] > words[1],
    }[orientation]
    a_wins = np.where(swap, -first_wins, first_wins)
    counts = np.concatenate([words[..., None], markdown], axis=2)
    return {
        "model_a": np.where(swap, second, first),
        "model_b": np.where(swap, first, second),
        "choice": np.select([a_wins == 1, a_wins == 0], [CHOICE_A, CHOICE_TIE], CHOICE_B),
        "counts_a": np.where(swap[:, None], counts[1], counts[0]),
        "counts_b": np.where(swap[:, None], counts[0], counts[1]),
        # The injected preference in the fit's units: per root mean square of the ratio.
        "true_coefficient": LENGTH_PREFERENCE * float(np.sqrt(np.mean(ratio**2))),
    }


def fit_board(votes: dict[str, Any]) -> StyleControlledLeaderboard:
    return style_controlled_leaderboard(
        votes["model_a"],
        votes["model_b"],
        votes["choice"],
        5,
        votes["counts_a"],
        votes["counts_b"],
    )


@pytest.fixture(scope="module")
def style_board() -> StyleControlledLeaderboard:
    return fit_board(simulate_style_votes(40_000, seed=21))


def test_recovers_injected_length_preference(style_board: StyleControlledLeaderboard) -> None:
    truth = simulate_style_votes(40_000, seed=21)["true_coefficient"]
    length, *markdown = style_board.style_coefficients
    print(f"length coefficient {length:.3f} (injected {truth:.3f})")

    assert style_board.feature_names == ("words", "headings", "list_items", "bold")
    assert style_board.converged
    assert length == pytest.approx(truth, abs=0.05)
    assert style_board.coefficient_lower[0] < truth < style_board.coefficient_upper[0]
    np.testing.assert_allclose(markdown, 0.0, atol=0.05)


def test_a_model_that_is_only_longer_loses_its_advantage(
    style_board: StyleControlledLeaderboard,
) -> None:
    without = style_board.scores_without_style_control
    with_control = style_board.scores_with_style_control
    advantage_without = without[LONGER] - without[ITS_EQUAL]
    advantage_with = with_control[LONGER] - with_control[ITS_EQUAL]
    print(f"longer model's advantage: {advantage_without:.1f} → {advantage_with:.1f} Elo")

    assert advantage_without > 60
    assert abs(advantage_with) < 15
    # The other models keep their order under style control.
    assert list(np.argsort(-with_control)[[0, 1, 4]]) == [0, 1, 4]
    assert with_control.mean() == pytest.approx(1000.0)


def orientation_sweep(orientation: str, seeds: range, n_votes: int) -> dict[str, float]:
    """The longer model's style-controlled advantage over its equal, and how often the
    length coefficient's 95% interval holds the injected value, over ``seeds``."""
    gaps, covered = [], 0
    for seed in seeds:
        votes = simulate_style_votes(n_votes, seed, orientation)
        board = fit_board(votes)
        scores = board.scores_with_style_control
        gaps.append(scores[LONGER] - scores[ITS_EQUAL])
        truth = votes["true_coefficient"]
        covered += bool(board.coefficient_lower[0] < truth < board.coefficient_upper[0])
    return {
        "mean_gap": float(np.mean(gaps)),
        "gap_spread": float(np.std(gaps)),
        "coverage": covered / len(seeds),
    }


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_a_pure_length_effect_is_removed_whichever_answer_is_a(orientation: str) -> None:
    """Ground truth: model 3 is model 2 with four times the words. Before the fix, centring
    the features over the votes left it ~48 Elo ahead when A was the model listed first and
    ~76 when A was the longer answer."""
    result = orientation_sweep(orientation, range(100, 103), 15_000)
    print(orientation, result)

    assert abs(result["mean_gap"]) < 10
    assert result["coverage"] >= 2 / 3


@pytest.mark.slow
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_a_pure_length_effect_is_removed_over_many_seeds(orientation: str) -> None:
    """The sweep docs/analytics.md quotes: 25 seeds of 20,000 votes per orientation."""
    result = orientation_sweep(orientation, range(25), 20_000)
    print(orientation, result)

    assert abs(result["mean_gap"]) < 10
    assert result["coverage"] >= 0.8


def test_swapping_a_and_b_changes_nothing() -> None:
    """Swap A and B in a random half of the votes (choices and counts with them): every score
    and coefficient stays the same."""
    votes = simulate_style_votes(5_000, seed=4, orientation="listed_first")
    swap = np.random.default_rng(5).random(5_000) < 0.5
    swapped_choice = np.select(
        [votes["choice"] == CHOICE_A, votes["choice"] == CHOICE_B],
        [CHOICE_B, CHOICE_A],
        votes["choice"],
    )
    swapped = {
        "model_a": np.where(swap, votes["model_b"], votes["model_a"]),
        "model_b": np.where(swap, votes["model_a"], votes["model_b"]),
        "choice": np.where(swap, swapped_choice, votes["choice"]),
        "counts_a": np.where(swap[:, None], votes["counts_b"], votes["counts_a"]),
        "counts_b": np.where(swap[:, None], votes["counts_a"], votes["counts_b"]),
    }

    original, relabelled = fit_board(votes), fit_board(swapped)

    for field, unit in (
        ("style_coefficients", 1.0),
        ("coefficient_lower", 1.0),
        ("coefficient_upper", 1.0),
        ("scores_with_style_control", ELO_PER_LOGIT),
    ):
        np.testing.assert_allclose(
            getattr(relabelled, field), getattr(original, field), rtol=0, atol=1e-6 * unit
        )


def test_normalized_differences_are_ratio_then_scaled_not_centred() -> None:
    counts_a = np.array([[30.0, 0.0, 2.0], [1.0, 0.0, 2.0], [20.0, 0.0, 2.0], [3.0, 0.0, 5.0]])
    counts_b = np.array([[10.0, 0.0, 2.0], [3.0, 0.0, 2.0], [20.0, 0.0, 2.0], [1.0, 0.0, 5.0]])

    features = normalized_style_differences(counts_a, counts_b)

    # (a − b) / (a + b) = 0.5, −0.5, 0, 0.5 whatever the scale of the counts, divided by their
    # root mean square √(0.75 / 4); the mean (0.125) is not subtracted.
    ratio = np.array([0.5, -0.5, 0.0, 0.5])
    np.testing.assert_allclose(features[:, 0], ratio / np.sqrt(0.75 / 4))
    # Both zero, or never different: the feature stays all zero.
    np.testing.assert_array_equal(features[:, 1:], 0.0)
    # Swapping the answers of any vote flips the sign of its features and nothing else.
    swap = np.array([False, True, False, True])
    swapped = normalized_style_differences(
        np.where(swap[:, None], counts_b, counts_a), np.where(swap[:, None], counts_a, counts_b)
    )
    np.testing.assert_allclose(swapped, np.where(swap[:, None], -features, features))


def test_features_that_only_follow_the_models_are_left_out() -> None:
    """The same pair judged again and again: its length ratio never changes, so a length
    effect could as well be model 0's strength. A feature that never differs is out too; a
    feature that varies within the pair stays."""
    rng = np.random.default_rng(3)
    counts_a = np.column_stack([np.full(30, 40.0), np.zeros(30), rng.integers(0, 4, 30)])
    counts_b = np.column_stack([np.full(30, 120.0), np.zeros(30), rng.integers(0, 4, 30)])
    features = normalized_style_differences(counts_a, counts_b)

    kept = separable_features(np.zeros(30, int), np.ones(30, int), 2, features, np.ones(30))

    assert kept.tolist() == [False, False, True]
    # With the answers named the other way round in some votes, the answer is the same.
    flip = np.arange(30) % 3 == 0
    flipped = np.where(flip[:, None], -features, features)
    first = np.where(flip, 1, 0)
    assert separable_features(first, 1 - first, 2, flipped, np.ones(30)).tolist() == kept.tolist()


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
