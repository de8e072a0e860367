"""How much each rater's vote weighs in the posterior rule, from the analytics' Dawid-Skene fit.

A rater's confusion matrix P(reported label | true label) is counted as Dawid-Skene counts it
(each judgment adds its item's posterior over the true labels to the row of the label the
rater reported; gold items have their known label), plus PRIOR_STRENGTH judgments per true
label that follow the prior (rules.PRIOR_CONFUSION), and normalised per true label. A rater
with few judgments stays close to the prior; one with many gets their own estimate.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import FloatArray, IntArray, as_float_array, as_int_array
from pickwise.analytics.dawid_skene import DawidSkeneResult
from pickwise.overlap.rules import N_LABELS, PRIOR_CONFUSION, PRIOR_STRENGTH


@dataclass(frozen=True)
class VoteWeights:
    confusion: FloatArray  # raters × 9, row-major P(reported | true) over A / none / B
    judgments: IntArray  # per rater: how many judgments the estimate rests on


def vote_weights(
    rater: npt.ArrayLike,
    item: npt.ArrayLike,
    label: npt.ArrayLike,
    fit: DawidSkeneResult,
    n_raters: int,
    *,
    prior_strength: float = PRIOR_STRENGTH,
) -> VoteWeights:
    """Every rater's shrunk confusion matrix; ``rater``, ``item`` and ``label`` are the
    judgments ``fit`` was computed from (labels.PREFER_A / NO_PREFERENCE / PREFER_B)."""
    raters, labels = as_int_array(rater), as_int_array(label)
    rows = np.searchsorted(fit.item_ids, as_int_array(item))
    posterior = fit.item_posterior[rows]  # judgments × true label
    cells = (raters * N_LABELS)[:, None] + np.arange(N_LABELS)  # (rater, true) per column
    flat = (cells * N_LABELS + labels[:, None]).ravel()
    counts = np.bincount(
        flat, weights=posterior.ravel(), minlength=n_raters * N_LABELS * N_LABELS
    ).reshape(n_raters, N_LABELS, N_LABELS)
    prior = np.asarray(PRIOR_CONFUSION).reshape(N_LABELS, N_LABELS)
    shrunk = counts + prior_strength * prior
    shrunk /= shrunk.sum(axis=2, keepdims=True)
    return VoteWeights(
        confusion=as_float_array(shrunk.reshape(n_raters, N_LABELS * N_LABELS)),
        judgments=as_int_array(np.bincount(raters, minlength=n_raters)),
    )
