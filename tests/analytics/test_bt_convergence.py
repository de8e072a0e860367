"""The batched Newton fit stops when the strengths stop moving, not at its iteration cap."""

from typing import Any

import numpy as np
import pytest

from pickwise.analytics import bradley_terry
from tests.analytics.choice_codes import encode_choices


def test_bootstrap_fit_converges_in_a_few_newton_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = 0
    backtrack = bradley_terry._backtrack

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal steps
        steps += 1
        return backtrack(*args, **kwargs)

    monkeypatch.setattr(bradley_terry, "_backtrack", counted)
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
    assert steps < 20
    assert np.abs(strengths.mean(axis=1)).max() < 1e-12
    one = bradley_terry.fit_bradley_terry(battles)
    assert np.corrcoef(one, truth)[0, 1] > 0.95
