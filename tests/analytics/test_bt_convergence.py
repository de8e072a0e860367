"""The batched Newton fit stops when the strengths stop moving, not at its iteration cap."""

from typing import Any

import numpy as np
import pytest

from pickwise.analytics import bradley_terry
from tests.analytics.choice_codes import encode_choices


class Steps:
    count = 0


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    """Counts the Newton steps (one line search each) of every fit in the test."""
    counted = Steps()
    line_search = bradley_terry._line_search

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted.count += 1
        return line_search(*args, **kwargs)

    monkeypatch.setattr(bradley_terry, "_line_search", counting)
    return counted


def test_bootstrap_fit_converges_in_a_few_newton_steps(steps: Steps) -> None:
    rng = np.random.default_rng(1)
    n_models, n_votes = 20, 10_000
    truth = rng.normal(0, 1, n_models)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    chose_a = rng.random(n_votes) < 1 / (1 + np.exp(-(truth[a] - truth[b])))
    battles = bradley_terry.aggregate_battles(
        a, b, encode_choices(np.where(chose_a, "a", "b")), n_models
    )
    cells = bradley_terry.bootstrap_cell_counts(battles, 200, rng)
    strengths = bradley_terry.fit_bradley_terry_batch(battles, cells)
    # Before the fix the add-a-constant direction never met the tolerance: 100 steps.
    assert steps.count < 20
    assert np.abs(strengths.mean(axis=1)).max() < 1e-12
    one = bradley_terry.fit_bradley_terry(battles)
    assert np.corrcoef(one, truth)[0, 1] > 0.95


def _sparse_votes(
    n_models: int, n_votes: int, rng: np.random.Generator
) -> bradley_terry.BattleCounts:
    """Few votes per model: many models won (or lost) all their games, as in a young arena."""
    truth = rng.normal(0, 1, n_models)
    a = rng.integers(0, n_models, n_votes)
    b = (a + rng.integers(1, n_models, n_votes)) % n_models
    chose_a = rng.random(n_votes) < 1 / (1 + np.exp(-(truth[a] - truth[b])))
    return bradley_terry.aggregate_battles(
        a, b, encode_choices(np.where(chose_a, "a", "b")), n_models
    )


def test_bootstrap_of_many_models_with_few_votes_converges_before_the_cap(
    steps: Steps,
) -> None:
    # 120 models, 360 votes: the case that took 54 s. Strengths of models that never lost
    # run far out; the fit must still stop on convergence, not at its 100-step cap.
    battles = _sparse_votes(120, 360, np.random.default_rng(0))
    one = bradley_terry.fit_bradley_terry(battles)
    cells = bradley_terry.bootstrap_cell_counts(battles, 200, np.random.default_rng(1))
    steps.count = 0
    warm = bradley_terry.fit_bradley_terry_batch(battles, cells, initial=one)
    assert steps.count < 60
    cold = bradley_terry.fit_bradley_terry_batch(battles, cells)
    # The optimum does not depend on where the search starts.
    np.testing.assert_allclose(warm, cold, atol=1e-6)
    assert np.all(np.isfinite(warm))


def test_batched_rounds_equal_fits_one_by_one() -> None:
    battles = _sparse_votes(60, 3_000, np.random.default_rng(2))
    cells = bradley_terry.bootstrap_cell_counts(battles, 7, np.random.default_rng(3))

    batched = bradley_terry.fit_bradley_terry_batch(battles, cells)

    for row, round_counts in enumerate(cells):
        alone = bradley_terry.fit_bradley_terry_batch(battles, round_counts[None, :])[0]
        np.testing.assert_allclose(batched[row], alone, atol=1e-8)


def test_fit_matches_a_general_solver_on_many_models() -> None:
    # The same penalised likelihood handed to L-BFGS on the per-cell design (no pair logic).
    from pickwise.analytics.logistic import fit_logistic

    battles = _sparse_votes(150, 20_000, np.random.default_rng(4))
    design = np.zeros((len(battles.count), battles.n_models))
    design[np.arange(len(design)), battles.model_a] = 1.0
    design[np.arange(len(design)), battles.model_b] = -1.0
    reference = fit_logistic(
        design,
        bradley_terry.POINTS_FOR_A[battles.outcome],
        weight=battles.count,
        ridge=bradley_terry.IDENTIFYING_RIDGE,
    ).coefficients

    strengths = bradley_terry.fit_bradley_terry(battles)

    np.testing.assert_allclose(strengths, reference - reference.mean(), atol=1e-6)
