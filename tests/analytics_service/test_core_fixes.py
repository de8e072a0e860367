"""Regressions for two bugs in the statistics core found while wiring it to the database.
(They belong with tests/analytics; kept here because this change owns only this folder.)"""

import numpy as np
import pytest

from pickwise.analytics.style_control import (
    normalized_style_differences,
    separable_features,
    style_counts,
)
from pickwise.analytics.text_features import text_features


# A hang guard, not a speed check: the quadratic patterns took minutes on this input, the
# linear ones milliseconds (the cost is measured in bench/analytics).
@pytest.mark.timeout(60)
def test_text_features_finish_on_long_runs() -> None:
    """An answer with no sentence end, or a long run without letters, used to take seconds
    (quadratic backtracking in the question and word patterns)."""
    long_sentence = "word " * 20_000 + "is this a question?"
    rule = "-" * 400_000
    features = text_features(long_sentence + "\n" + rule, None)
    assert features["words"] == 20_004
    assert features["questions_back"] == 1


def test_a_style_ratio_that_never_changes_is_not_controlled_for() -> None:
    """30 identical ratios have a float std of ~3e-17, not 0; dividing by it used to turn
    the feature into a constant column of -1. Now the ratio is scaled, not centred, and a
    constant ratio on one pair of models is left out of the fit: it cannot be told apart
    from the models' strengths."""
    counts_a = style_counts(["North: answer."] * 30)
    counts_b = style_counts(["South: a longer reply."] * 30)
    features = normalized_style_differences(counts_a, counts_b)
    np.testing.assert_allclose(features[:, 0], -1.0)
    kept = separable_features(np.zeros(30, int), np.ones(30, int), 2, features, np.ones(30))
    assert not kept.any()
