"""Style-controlled Bradley-Terry: model strengths net of length and markdown effects.

Following Chatbot Arena's style control, each vote gets, per style feature, the normalised
difference (a − b) / (a + b) between the two answers, scaled by its root mean square over all
votes; the logistic model is  logit P(A wins) = θ_A − θ_B + Σ_k β_k · z_k.  A model whose
advantage comes only from, say, longer answers keeps that advantage in β and loses it from θ.
Every term changes sign when A and B are swapped, so the fit does not depend on which answer
is called A (see ``normalized_style_differences``).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import (
    BoolArray,
    FloatArray,
    IntArray,
    as_float_array,
    as_int_array,
)
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
    # Log-odds change per root mean square of the feature's normalised difference.
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
    """(a − b) / (a + b) per vote and feature, divided by its root mean square over the votes.

    0 where both answers have none of a feature. Chatbot Arena divides by a + b + 1; without
    the +1 a single list against none is a full ±1, like 100 words against none. A feature
    that never differs stays all zero (its coefficient is then 0).

    Not centred: swapping which answer is called A must flip the sign of every feature and
    change nothing else. Subtracting the mean would break that as soon as A is not a coin
    flip (pickwise's A is the response listed first in the import file), and the mean would
    then act as a hidden "A wins" intercept that the strengths have to absorb. The root mean
    square is the same whichever answer is A. It is also the standard deviation the features
    would have if every vote were counted once each way round, which is what Chatbot Arena's
    standardisation gives when A and B are random.

    With ``weight`` a row stands for that many votes (votes counted per pair): the root mean
    square is then that of the votes, so the result equals the per-vote one row by row.
    Rows of weight 0 count nowhere.
    """
    a = as_float_array(counts_a)
    b = as_float_array(counts_b)
    total = a + b
    ratio = np.zeros_like(total)
    np.divide(a - b, total, out=ratio, where=total > 0)
    if weight is None:
        spread = np.sqrt(np.mean(ratio**2, axis=0))
    else:
        w = as_float_array(weight)
        spread = np.sqrt(np.average(ratio**2, axis=0, weights=w))
    scaled = np.zeros_like(ratio)
    np.divide(ratio, spread, out=scaled, where=spread > 0)
    return scaled


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
    n_features = features.shape[1]
    design = _design(first, second, features, n_models)
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


def _design(first: IntArray, second: IntArray, features: FloatArray, n_models: int) -> Any:
    """The sparse design: +1 in model A's column, −1 in model B's, then the style features.

    Swapping A and B negates the whole row, which is why the fit cannot depend on it."""
    # Imported here: scipy takes seconds to import and the app must start without it.
    from scipy import sparse

    n_rows = len(first)
    rows = np.repeat(np.arange(n_rows), 2)
    columns = np.column_stack([first, second]).ravel()
    signs = np.tile([1.0, -1.0], n_rows)
    model_part = sparse.csr_array((signs, (rows, columns)), shape=(n_rows, n_models))
    return sparse.hstack([model_part, sparse.csr_array(features)], format="csr")


def separable_features(
    model_a: npt.ArrayLike,
    model_b: npt.ArrayLike,
    n_models: int,
    style_features: npt.ArrayLike,
    weight: npt.ArrayLike,
    *,
    tolerance: float = 1e-9,
) -> BoolArray:
    """Which features the votes can tell apart from the models' strengths and from the
    features before them; the others would make the fit singular.

    A feature that never differs is one. So is one that always differs by the same amount
    in favour of the same model (e.g. the same pair judged again and again): any advantage
    it gives could as well be that model's strength. The test is on the votes' Gram matrix
    (models + features, a few hundred columns at most): a feature is kept when the part of
    its column that the kept columns do not explain holds more than ``tolerance`` of its
    weight. Negating a row leaves the Gram matrix unchanged, so whichever answer is A gives
    the same answer here too.
    """
    first = as_int_array(model_a)
    second = as_int_array(model_b)
    features = as_float_array(style_features).reshape(len(first), -1)
    w = as_float_array(weight)
    design = _design(first, second, features, n_models)
    gram = np.asarray((design.T @ design.multiply(w[:, None])).toarray(), dtype=np.float64)
    kept = list(range(n_models))
    separable = np.zeros(features.shape[1], dtype=np.bool_)
    for index in range(features.shape[1]):
        column = n_models + index
        total = gram[column, column]
        if total <= 0:
            continue
        known = gram[np.ix_(kept, kept)]
        cross = gram[kept, column]
        explained = cross @ np.linalg.lstsq(known, cross, rcond=None)[0]
        if total - explained > tolerance * total:
            separable[index] = True
            kept.append(column)
    return separable


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
