"""Style-controlled Bradley-Terry: model strengths net of length and markdown effects.

Following Chatbot Arena's style control, each vote gets, per style feature, the normalised
difference (a − b) / (a + b) between the two answers, standardised over all votes; the
logistic model is  logit P(A wins) = θ_A − θ_B + Σ_k β_k · z_k.  A model whose advantage
comes only from, say, longer answers keeps that advantage in β and loses it from θ.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from pickwise.analytics.arrays import FloatArray, as_float_array, as_int_array
from pickwise.analytics.bradley_terry import (
    IDENTIFYING_RIDGE,
    POINTS_FOR_A,
    aggregate_battles,
    elo_scores,
    fit_bradley_terry,
    outcomes_of_choices,
)
from pickwise.analytics.logistic import fit_logistic
from pickwise.analytics.text_features import text_features

# Same elements as Chatbot Arena's style control; "words" stands in for tokens (no tokenizer).
STYLE_FEATURES = ("words", "headings", "list_items", "bold")


@dataclass(frozen=True)
class StyleControlledLeaderboard:
    feature_names: tuple[str, ...]
    # Log-odds change per standard deviation of the feature's normalised difference.
    style_coefficients: FloatArray
    coefficient_lower: FloatArray  # Wald interval from the Hessian
    coefficient_upper: FloatArray
    scores_with_style_control: FloatArray  # Elo-like scale, anchored as in bradley_terry
    scores_without_style_control: FloatArray
    converged: bool


def style_counts(texts: Sequence[str], feature_names: Sequence[str] = STYLE_FEATURES) -> FloatArray:
    """Per-answer style counts (answers × features) from ``text_features``."""
    rows = [text_features(text, None) for text in texts]
    return as_float_array([[row[name] for name in feature_names] for row in rows])


def normalized_style_differences(counts_a: npt.ArrayLike, counts_b: npt.ArrayLike) -> FloatArray:
    """(a − b) / (a + b) per vote and feature, standardised to mean 0 and variance 1.

    0 where both answers have none of a feature. Chatbot Arena divides by a + b + 1; without
    the +1 a single list against none is a full ±1, like 100 words against none. A feature
    that never differs stays all zero (its coefficient is then 0).
    """
    a = as_float_array(counts_a)
    b = as_float_array(counts_b)
    total = a + b
    ratio = np.zeros_like(total)
    np.divide(a - b, total, out=ratio, where=total > 0)
    spread = ratio.std(axis=0)
    # Constant means max == min. The float std of identical values can be ~1e-17 instead of
    # 0, and dividing by it would turn a constant into a column of ±1 (a spurious intercept).
    varies = ratio.max(axis=0, initial=-np.inf) > ratio.min(axis=0, initial=np.inf)
    standardized = np.zeros_like(ratio)
    np.divide(ratio - ratio.mean(axis=0), spread, out=standardized, where=varies)
    return standardized


@dataclass(frozen=True)
class StyleFit:
    strengths: FloatArray  # natural log-odds units, mean zero
    style_coefficients: FloatArray
    coefficient_lower: FloatArray
    coefficient_upper: FloatArray
    converged: bool


def fit_style_controlled(
    model_a: npt.ArrayLike,
    model_b: npt.ArrayLike,
    choice_codes: npt.ArrayLike,
    n_models: int,
    style_features: npt.ArrayLike,
    *,
    confidence: float = 0.95,
) -> StyleFit:
    """Fit θ and β on per-vote style features (votes × features, already standardised).

    The design is sparse — two model entries per vote plus the features — so memory stays
    linear in the number of votes, and the loss and gradient are single matrix products.
    """
    first = as_int_array(model_a)
    second = as_int_array(model_b)
    features = as_float_array(style_features).reshape(len(first), -1)
    n_votes, n_features = features.shape
    rows = np.repeat(np.arange(n_votes), 2)
    columns = np.column_stack([first, second]).ravel()
    signs = np.tile([1.0, -1.0], n_votes)
    model_part = sparse.csr_array((signs, (rows, columns)), shape=(n_votes, n_models))
    design = sparse.hstack([model_part, sparse.csr_array(features)], format="csr")
    target = POINTS_FOR_A[outcomes_of_choices(choice_codes)]
    # Only the strengths need the identifying penalty; the style coefficients are identified.
    ridge = np.concatenate([np.full(n_models, IDENTIFYING_RIDGE), np.zeros(n_features)])
    fit = fit_logistic(design, target, ridge=ridge)
    lower, upper = fit.intervals(confidence)
    return StyleFit(
        strengths=fit.coefficients[:n_models],
        style_coefficients=fit.coefficients[n_models:],
        coefficient_lower=lower[n_models:],
        coefficient_upper=upper[n_models:],
        converged=fit.converged,
    )


def style_controlled_leaderboard(
    model_a: npt.ArrayLike,
    model_b: npt.ArrayLike,
    choice_codes: npt.ArrayLike,
    n_models: int,
    counts_a: npt.ArrayLike,
    counts_b: npt.ArrayLike,
    *,
    feature_names: Sequence[str] = STYLE_FEATURES,
    anchor_model: int | None = None,
    confidence: float = 0.95,
) -> StyleControlledLeaderboard:
    """Scores with and without style control, and the style coefficients with intervals.

    ``counts_a`` / ``counts_b`` are votes × features raw counts (e.g. from ``style_counts``)
    of the answers of model A and model B in each vote.
    """
    features = normalized_style_differences(counts_a, counts_b)
    fit = fit_style_controlled(
        model_a, model_b, choice_codes, n_models, features, confidence=confidence
    )
    plain = fit_bradley_terry(aggregate_battles(model_a, model_b, choice_codes, n_models))
    return StyleControlledLeaderboard(
        feature_names=tuple(feature_names),
        style_coefficients=fit.style_coefficients,
        coefficient_lower=fit.coefficient_lower,
        coefficient_upper=fit.coefficient_upper,
        scores_with_style_control=elo_scores(fit.strengths, anchor_model),
        scores_without_style_control=elo_scores(plain, anchor_model),
        converged=fit.converged,
    )
