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

from pickwise.analytics.arrays import FloatArray, as_float_array, as_int_array
from pickwise.analytics.bradley_terry import (
    IDENTIFYING_RIDGE,
    POINTS_FOR_A,
    counted_battles,
    elo_scores,
    fit_bradley_terry,
    outcomes_of_choices,
)
from pickwise.analytics.text_features import (
    MARKDOWN_STYLE_FEATURES,
    markdown_style_counts,
    text_features,
)

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
    """Per-answer style counts (answers × features), as ``text_features`` defines them.

    The markdown style features come from the batched ``markdown_style_counts``; any other
    feature from ``text_features`` itself.
    """
    if set(feature_names) <= set(MARKDOWN_STYLE_FEATURES):
        columns = [MARKDOWN_STYLE_FEATURES.index(name) for name in feature_names]
        return as_float_array(markdown_style_counts(texts)[:, columns])
    rows = [text_features(text, None) for text in texts]
    return as_float_array([[row[name] for name in feature_names] for row in rows])


def normalized_style_differences(
    counts_a: npt.ArrayLike, counts_b: npt.ArrayLike, weight: npt.ArrayLike | None = None
) -> FloatArray:
    """(a − b) / (a + b) per vote and feature, standardised to mean 0 and variance 1.

    0 where both answers have none of a feature. Chatbot Arena divides by a + b + 1; without
    the +1 a single list against none is a full ±1, like 100 words against none. A feature
    that never differs stays all zero (its coefficient is then 0).

    With ``weight`` a row stands for that many votes (votes counted per pair): mean and
    variance are then those of the votes, so the result equals the per-vote one row by row.
    Rows of weight 0 count nowhere.
    """
    a = as_float_array(counts_a)
    b = as_float_array(counts_b)
    total = a + b
    ratio = np.zeros_like(total)
    np.divide(a - b, total, out=ratio, where=total > 0)
    if weight is None:
        mean = ratio.mean(axis=0)
        spread = ratio.std(axis=0)
        counted = ratio
    else:
        w = as_float_array(weight)
        mean = np.average(ratio, axis=0, weights=w)
        spread = np.sqrt(np.average((ratio - mean) ** 2, axis=0, weights=w))
        counted = ratio[w > 0]
    # Constant means max == min. The float std of identical values can be ~1e-17 instead of
    # 0, and dividing by it would turn a constant into a column of ±1 (a spurious intercept).
    varies = counted.max(axis=0, initial=-np.inf) > counted.min(axis=0, initial=np.inf)
    standardized = np.zeros_like(ratio)
    np.divide(ratio - mean, spread, out=standardized, where=varies)
    return standardized


@dataclass(frozen=True)
class StyleFit:
    strengths: FloatArray  # natural log-odds units, mean zero
    style_coefficients: FloatArray
    coefficient_lower: FloatArray
    coefficient_upper: FloatArray
    converged: bool


def outcome_counts_of_choices(choice_codes: npt.ArrayLike) -> FloatArray:
    """One row per vote with a 1 in the column of its outcome (bradley_terry.OUTCOME_*)."""
    outcomes = outcomes_of_choices(choice_codes)
    counts = np.zeros((len(outcomes), len(POINTS_FOR_A)))
    counts[np.arange(len(outcomes)), outcomes] = 1.0
    return counts


def fit_style_controlled(
    model_a: npt.ArrayLike,
    model_b: npt.ArrayLike,
    choice_codes: npt.ArrayLike,
    n_models: int,
    style_features: npt.ArrayLike,
    *,
    confidence: float = 0.95,
) -> StyleFit:
    """Fit θ and β on per-vote style features (votes × features, already standardised)."""
    return fit_style_controlled_counts(
        model_a,
        model_b,
        outcome_counts_of_choices(choice_codes),
        n_models,
        style_features,
        confidence=confidence,
    )


def fit_style_controlled_counts(
    model_a: npt.ArrayLike,
    model_b: npt.ArrayLike,
    outcome_counts: npt.ArrayLike,
    n_models: int,
    style_features: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    initial_strengths: npt.ArrayLike | None = None,
) -> StyleFit:
    """The same fit with votes counted per row: ``outcome_counts`` (rows × 3) holds how many
    votes of each outcome share the row's models and features (e.g. the votes on one pair).

    The log-likelihood is linear in the target, so a row of n votes that gives A w points in
    total is one row of weight n and soft target w / n: the same loss, gradient and Hessian as
    n rows of one vote each, at a fraction of the rows. The design is sparse — two model
    entries per row plus the features — so memory stays linear in the number of rows.
    ``initial_strengths`` (e.g. the plain Bradley-Terry fit) only shortens the search.
    """
    # Imported here: scipy takes seconds to import and the app must start without it.
    from scipy import sparse

    from pickwise.analytics.logistic import fit_logistic

    first = as_int_array(model_a)
    second = as_int_array(model_b)
    counts = as_float_array(outcome_counts).reshape(len(first), len(POINTS_FOR_A))
    features = as_float_array(style_features).reshape(len(first), -1)
    weight = counts.sum(axis=1)
    voted = weight > 0
    first, second, counts, features, weight = (
        first[voted],
        second[voted],
        counts[voted],
        features[voted],
        weight[voted],
    )
    n_rows, n_features = features.shape
    rows = np.repeat(np.arange(n_rows), 2)
    columns = np.column_stack([first, second]).ravel()
    signs = np.tile([1.0, -1.0], n_rows)
    model_part = sparse.csr_array((signs, (rows, columns)), shape=(n_rows, n_models))
    design = sparse.hstack([model_part, sparse.csr_array(features)], format="csr")
    target = (counts @ POINTS_FOR_A) / weight
    # Only the strengths need the identifying penalty; the style coefficients are identified.
    ridge = np.concatenate([np.full(n_models, IDENTIFYING_RIDGE), np.zeros(n_features)])
    initial = np.zeros(n_models + n_features)
    if initial_strengths is not None:
        initial[:n_models] = as_float_array(initial_strengths)
    fit = fit_logistic(design, target, weight=weight, ridge=ridge, initial=initial)
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
    return style_controlled_leaderboard_counts(
        model_a,
        model_b,
        outcome_counts_of_choices(choice_codes),
        n_models,
        counts_a,
        counts_b,
        feature_names=feature_names,
        anchor_model=anchor_model,
        confidence=confidence,
    )


def style_controlled_leaderboard_counts(
    model_a: npt.ArrayLike,
    model_b: npt.ArrayLike,
    outcome_counts: npt.ArrayLike,
    n_models: int,
    counts_a: npt.ArrayLike,
    counts_b: npt.ArrayLike,
    *,
    feature_names: Sequence[str] = STYLE_FEATURES,
    anchor_model: int | None = None,
    confidence: float = 0.95,
) -> StyleControlledLeaderboard:
    """``style_controlled_leaderboard`` on votes counted per row (see
    ``fit_style_controlled_counts``); equal to it on the votes the rows stand for."""
    outcomes = as_float_array(outcome_counts)
    weight = outcomes.sum(axis=1)
    features = normalized_style_differences(counts_a, counts_b, weight)
    plain = fit_bradley_terry(counted_battles(model_a, model_b, outcomes, n_models))
    # Style moves the strengths only a little: starting from the plain ones saves iterations.
    fit = fit_style_controlled_counts(
        model_a,
        model_b,
        outcomes,
        n_models,
        features,
        confidence=confidence,
        initial_strengths=plain,
    )
    return StyleControlledLeaderboard(
        feature_names=tuple(feature_names),
        style_coefficients=fit.style_coefficients,
        coefficient_lower=fit.coefficient_lower,
        coefficient_upper=fit.coefficient_upper,
        scores_with_style_control=elo_scores(fit.strengths, anchor_model),
        scores_without_style_control=elo_scores(plain, anchor_model),
        converged=fit.converged,
    )
