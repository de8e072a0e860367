"""What the preferences teach: which answer properties predict the choice.

Logistic regression of "chose A" (1) vs "chose B" (0) on differences between the answers,
ties and both-bad left out:  logit P(A) = Σ_k w_k · (f_k(A) − f_k(B)).  There is no
intercept: relabelling A as B flips every difference and the outcome, and the model should not
depend on which answer happens to be called A. Where the answer is shown is a feature like any
other (+1 when A was on the left, −1 when B was), so its weight is the position effect.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import BoolArray, FloatArray, as_bool_array, as_float_array
from pickwise.analytics.text_features import FEATURE_NAMES, text_features_of

# length: log2 of the ratio of word counts (+1 each), so a weight is per doubling of length.
# The others: presence in A minus presence in B (−1, 0 or +1), so a weight is the log-odds
# bonus for having the property when the other answer does not.
PREFERENCE_FEATURES = (
    "length",
    "lists",
    "headings",
    "code_blocks",
    "hedging",
    "refusal",
    "apology",
    "agreement",
    "questions_back",
    "left_position",
)
_PRESENCE_SOURCE = {
    "lists": "list_items",
    "headings": "headings",
    "code_blocks": "code_blocks",
    "hedging": "hedging",
    "refusal": "refusal",
    "apology": "apology",
    "agreement": "agreement",
    "questions_back": "questions_back",
}
# Keeps a weight finite if a feature separates the choices perfectly; negligible otherwise.
_RIDGE = 1e-6


@dataclass(frozen=True)
class FeatureWeight:
    name: str
    weight: float  # log-odds; NaN when the feature never differed between the two answers
    lower: float  # Wald interval from the Hessian (inverse Fisher information)
    upper: float


@dataclass(frozen=True)
class PreferenceModelReport:
    weights: list[FeatureWeight]
    held_out_accuracy: float  # k-fold cross-validated share of choices predicted right
    baseline_accuracy: float  # always predicting the training folds' more common choice
    judgments: int
    folds: int


# What each design column is computed from, per answer (see answer_properties).
_PROPERTY_SOURCES = ("words", *(_PRESENCE_SOURCE[name] for name in PREFERENCE_FEATURES[1:-1]))
_PROPERTY_COLUMNS = [FEATURE_NAMES.index(source) for source in _PROPERTY_SOURCES]


def answer_properties(texts: Sequence[str], prompts: Sequence[str | None]) -> FloatArray:
    """The text features the design uses (answers × ``_PROPERTY_SOURCES``), each answer with
    its prompt.

    They depend on the answer and its prompt only, so a caller with many votes on the same
    answers computes them once per answer and builds the rows with ``design_rows``.
    """
    return as_float_array(text_features_of(texts, prompts)[:, _PROPERTY_COLUMNS])


def design_rows(
    properties_a: npt.ArrayLike, properties_b: npt.ArrayLike, a_shown_left: npt.ArrayLike
) -> FloatArray:
    """Design rows (votes × PREFERENCE_FEATURES) from both answers' ``answer_properties``."""
    a = as_float_array(properties_a).reshape(-1, len(_PROPERTY_SOURCES))
    b = as_float_array(properties_b).reshape(-1, len(_PROPERTY_SOURCES))
    length = np.log2((a[:, :1] + 1) / (b[:, :1] + 1))
    presence = (a[:, 1:] > 0).astype(np.float64) - (b[:, 1:] > 0).astype(np.float64)
    position = np.where(as_bool_array(a_shown_left), 1.0, -1.0)[:, None]
    return as_float_array(np.hstack([length, presence, position]))


def fit_preference_model(
    differences: npt.ArrayLike,
    chose_a: npt.ArrayLike,
    feature_names: Sequence[str] = PREFERENCE_FEATURES,
    *,
    folds: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
) -> PreferenceModelReport:
    """Weights with Wald intervals on all data, and k-fold held-out accuracy.

    Folds come from a permutation seeded with ``seed``, so the report is reproducible.
    """
    # Imported here: scipy takes seconds to import and the app must start without it.
    from pickwise.analytics.logistic import fit_logistic

    design = as_float_array(differences)
    outcome = as_bool_array(chose_a)
    varies = np.any(design != 0, axis=0)
    fit = fit_logistic(design[:, varies], outcome, ridge=_RIDGE)
    lower, upper = fit.intervals(confidence)
    weights = np.full((3, len(feature_names)), np.nan)
    weights[:, varies] = [fit.coefficients, lower, upper]
    accuracy, baseline = _cross_validated_accuracy(
        design[:, varies], outcome, folds, seed, fit.coefficients
    )
    return PreferenceModelReport(
        weights=[
            FeatureWeight(name, float(w), float(lo), float(hi))
            for name, w, lo, hi in zip(feature_names, *weights, strict=True)
        ],
        held_out_accuracy=accuracy,
        baseline_accuracy=baseline,
        judgments=len(outcome),
        folds=folds,
    )


def _cross_validated_accuracy(
    design: FloatArray, outcome: BoolArray, folds: int, seed: int, start: FloatArray
) -> tuple[float, float]:
    """Held-out accuracy over ``folds``; each fold's fit starts from ``start`` (the fit on
    all data, close to every fold's own optimum, which does not depend on the start)."""
    # Imported here: scipy takes seconds to import and the app must start without it.
    from scipy import special

    from pickwise.analytics.logistic import fit_logistic

    if len(outcome) < folds or folds < 2:
        return float("nan"), float("nan")
    order = np.random.default_rng(seed).permutation(len(outcome))
    correct = 0
    baseline_correct = 0
    for held_out in np.array_split(order, folds):
        training = np.setdiff1d(order, held_out)
        fit = fit_logistic(design[training], outcome[training], ridge=_RIDGE, initial=start)
        predicted_a = special.expit(design[held_out] @ fit.coefficients) > 0.5
        correct += int(np.sum(predicted_a == outcome[held_out]))
        majority_is_a = outcome[training].mean() >= 0.5
        baseline_correct += int(np.sum(outcome[held_out] == majority_is_a))
    return correct / len(outcome), baseline_correct / len(outcome)
