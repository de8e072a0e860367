import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from pickwise.analytics.bradley_terry import (
    ELO_PER_LOGIT,
    INITIAL_RATING,
    POINTS_FOR_A,
    BattleCounts,
    aggregate_battles,
    bootstrap_cell_counts,
    bradley_terry_leaderboard,
    elo_scores,
    empirical_win_rates,
    fit_bradley_terry,
    ranks_from_intervals,
)
from pickwise.analytics.labels import CHOICE_A, CHOICE_B, CHOICE_BOTH_BAD, CHOICE_TIE
from pickwise.analytics.logistic import fit_logistic

TRUE_STRENGTHS = np.array([0.9, 0.5, 0.1, -0.3, -1.2])  # natural log-odds units


def simulate_votes(
    strengths: np.ndarray, n_votes: int, rng: np.random.Generator, tie_propensity: float = 0.4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Votes whose expected points for A equal σ(θ_A − θ_B), so ties-as-half-wins is unbiased.

    P(tie) = 2ν·p(1−p) takes half its mass from each side; about 15% ties here.
    """
    n_models = len(strengths)
    model_a = rng.integers(0, n_models, n_votes)
    model_b = (model_a + rng.integers(1, n_models, n_votes)) % n_models
    p = 1 / (1 + np.exp(-(strengths[model_a] - strengths[model_b])))
    half_tie = tie_propensity * p * (1 - p)
    u = rng.random(n_votes)
    choice = np.where(u < p - half_tie, CHOICE_A, np.where(u < p + half_tie, CHOICE_TIE, CHOICE_B))
    return model_a, model_b, choice


def sklearn_reference(
    model_a: np.ndarray, model_b: np.ndarray, choice: np.ndarray, n_models: int
) -> np.ndarray:
    """Unpenalised logistic regression on the expanded per-vote design.

    A tie becomes one win and one loss of weight ½ each; model 0's column is dropped so the
    problem is full rank (its strength is 0).
    """
    decisive = choice != CHOICE_TIE
    rows_a = np.concatenate([model_a[decisive], model_a[~decisive], model_a[~decisive]])
    rows_b = np.concatenate([model_b[decisive], model_b[~decisive], model_b[~decisive]])
    target = np.concatenate(
        [choice[decisive] == CHOICE_A, np.ones((~decisive).sum()), np.zeros((~decisive).sum())]
    )
    weight = np.concatenate([np.ones(decisive.sum()), np.full(2 * (~decisive).sum(), 0.5)])
    design = np.zeros((len(rows_a), n_models))
    design[np.arange(len(rows_a)), rows_a] = 1.0
    design[np.arange(len(rows_a)), rows_b] = -1.0
    model = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-12, max_iter=10_000)
    model.fit(design[:, 1:], target.astype(int), sample_weight=weight)
    return np.concatenate([[0.0], model.coef_[0]])


def test_recovers_exact_order_and_matches_reference_logistic_regression() -> None:
    rng = np.random.default_rng(7)
    model_a, model_b, choice = simulate_votes(TRUE_STRENGTHS, 20_000, rng)
    assert 0.05 < np.mean(choice == CHOICE_TIE) < 0.2

    strengths = fit_bradley_terry(aggregate_battles(model_a, model_b, choice, 5))

    assert list(np.argsort(-strengths)) == [0, 1, 2, 3, 4]
    reference = sklearn_reference(model_a, model_b, choice, 5)
    np.testing.assert_allclose(strengths - strengths[0], reference, atol=1e-4)
    assert abs(strengths.mean()) < 1e-9


def wald_standard_errors_of_centered_scores(battles: BattleCounts) -> np.ndarray:
    """Elo-scale standard errors of mean-anchored scores from the inverse Fisher information.

    Treats a tie as half a win and half a loss, so it slightly overstates the variance when
    there are ties (a tie varies less than a coin flip).
    """
    design = np.zeros((len(battles.count), battles.n_models))
    design[np.arange(len(design)), battles.model_a] = 1.0
    design[np.arange(len(design)), battles.model_b] = -1.0
    fit = fit_logistic(design, POINTS_FOR_A[battles.outcome], weight=battles.count, ridge=1e-6)
    centering = np.eye(battles.n_models) - 1 / battles.n_models
    return np.sqrt(np.diag(centering @ fit.covariance @ centering)) * ELO_PER_LOGIT


def test_bootstrap_intervals_cover_true_strengths_without_being_inflated() -> None:
    rng = np.random.default_rng(11)
    centered_truth = elo_scores(TRUE_STRENGTHS)
    covered: list[bool] = []
    width_ratios: list[float] = []
    for _ in range(20):
        model_a, model_b, choice = simulate_votes(TRUE_STRENGTHS, 20_000, rng)
        board = bradley_terry_leaderboard(
            model_a, model_b, choice, 5, bootstrap_rounds=200, seed=int(rng.integers(1 << 30))
        )
        covered.extend((board.lower <= centered_truth) & (centered_truth <= board.upper))
        wald = wald_standard_errors_of_centered_scores(
            aggregate_battles(model_a, model_b, choice, 5)
        )
        width_ratios.extend((board.upper - board.lower) / (2 * 1.96 * wald))
    coverage = float(np.mean(covered))
    width_ratio = float(np.mean(width_ratios))
    print(f"coverage over 20 datasets × 5 models: {coverage:.2f}; width / Wald: {width_ratio:.2f}")
    assert coverage >= 0.85
    # Coverage alone would reward needlessly wide intervals.
    assert 0.7 < width_ratio < 1.1


def test_leaderboard_scores_ranks_and_win_rates() -> None:
    rng = np.random.default_rng(3)
    model_a, model_b, choice = simulate_votes(TRUE_STRENGTHS, 20_000, rng)

    board = bradley_terry_leaderboard(model_a, model_b, choice, 5, bootstrap_rounds=100)

    assert board.scores.mean() == pytest.approx(INITIAL_RATING)
    assert np.all(board.lower < board.scores) and np.all(board.scores < board.upper)
    assert list(board.ranks) == [1, 2, 3, 4, 5]  # well separated strengths
    assert board.votes.sum() == 2 * 20_000
    # One natural log-odds unit is 400 / ln 10 ≈ 173.7 Elo points.
    gap = (board.scores[0] - board.scores[4]) / ELO_PER_LOGIT
    assert gap == pytest.approx(TRUE_STRENGTHS[0] - TRUE_STRENGTHS[4], abs=0.1)
    assert board.win_rate[0, 4] > 0.8 and board.win_rate[4, 0] < 0.2
    off_diagonal = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose((board.win_rate + board.win_rate.T)[off_diagonal], 1.0)
    assert np.all(np.isnan(np.diag(board.win_rate)))


def test_anchor_model_scores_exactly_the_initial_rating() -> None:
    rng = np.random.default_rng(5)
    model_a, model_b, choice = simulate_votes(TRUE_STRENGTHS, 5_000, rng)

    board = bradley_terry_leaderboard(
        model_a, model_b, choice, 5, bootstrap_rounds=100, anchor_model=2
    )

    assert board.scores[2] == pytest.approx(INITIAL_RATING)
    np.testing.assert_allclose(board.bootstrap_scores[:, 2], INITIAL_RATING)


def test_aggregation_counts_cells_and_both_bad_is_a_tie() -> None:
    battles = aggregate_battles(
        [0, 0, 0, 1, 0],
        [1, 1, 1, 0, 1],
        [CHOICE_A, CHOICE_A, CHOICE_BOTH_BAD, CHOICE_B, CHOICE_TIE],
        2,
    )

    cells = sorted(
        zip(battles.model_a, battles.model_b, battles.outcome, battles.count, strict=True)
    )
    # outcome: 0 = B won, 1 = tie, 2 = A won
    assert cells == [(0, 1, 1, 2.0), (0, 1, 2, 2.0), (1, 0, 0, 1.0)]
    # Model 0 took 2 wins + 2 half-points + 1 win (as B in the swapped vote) of 5 games.
    assert empirical_win_rates(battles)[0, 1] == pytest.approx(4 / 5)


def test_bootstrap_resamples_the_same_number_of_votes() -> None:
    rng = np.random.default_rng(0)
    battles = aggregate_battles(*simulate_votes(TRUE_STRENGTHS, 3_000, rng), 5)

    resampled = bootstrap_cell_counts(battles, 50, rng)

    assert resampled.shape == (50, len(battles.count))
    np.testing.assert_array_equal(resampled.sum(axis=1), 3_000)


def test_model_that_never_lost_stays_finite_and_ranks_first() -> None:
    model_a = np.array([0] * 30 + [1] * 20)
    model_b = np.array([1] * 15 + [2] * 15 + [2] * 20)
    choice = np.array([CHOICE_A] * 30 + [CHOICE_A] * 12 + [CHOICE_B] * 8)

    board = bradley_terry_leaderboard(model_a, model_b, choice, 3, bootstrap_rounds=100)

    assert np.all(np.isfinite(board.scores))
    assert board.scores[0] == board.scores.max()
    assert board.ranks[0] == 1


def test_ranks_only_separate_non_overlapping_intervals() -> None:
    lower = np.array([1100.0, 1080.0, 990.0, 900.0])
    upper = np.array([1200.0, 1150.0, 1090.0, 960.0])

    # Model 2 overlaps model 1 but not model 0; model 3 is below everyone.
    assert list(ranks_from_intervals(lower, upper)) == [1, 1, 2, 4]


def test_models_without_votes_are_rejected() -> None:
    with pytest.raises(ValueError, match="without votes"):
        bradley_terry_leaderboard([0, 1], [1, 0], [CHOICE_A, CHOICE_B], 3, bootstrap_rounds=100)
