"""Dawid-Skene: each rater's confusion matrix and each item's true label, estimated jointly.

Model: item u has a hidden true label t_u ~ π; rater r who judges it reports label l with
probability Θ_r[t_u, l], independently of the other raters. EM alternates the posterior over
t_u (E-step) with π and Θ re-estimated from the posterior-weighted counts (M-step). A small
symmetric pseudo-count (a Dirichlet prior) keeps every probability positive, so the method is
MAP-EM and the log posterior it reports never decreases. Gold items may be given their known
label, which then stays fixed and anchors which label is which.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import FloatArray, IntArray, as_float_array, as_int_array
from pickwise.analytics.labels import N_PREFERENCE_LABELS, NO_GOLD


@dataclass(frozen=True)
class DawidSkeneResult:
    item_ids: IntArray  # distinct item ids in increasing order: the rows of item_posterior
    item_posterior: FloatArray  # items × labels, P(true label | all judgments)
    class_prior: FloatArray  # π
    confusion: FloatArray  # raters × true label × reported label
    # Σ_k π_k Θ_r[k, k]: probability the rater reports the true label of a typical item.
    rater_accuracy: FloatArray  # NaN for raters without judgments
    objective_trace: FloatArray  # log posterior after each iteration, non-decreasing
    converged: bool


@dataclass(frozen=True)
class _Judgments:
    rater: IntArray
    item: IntArray  # dense item index
    label: IntArray
    n_raters: int
    n_items: int
    n_labels: int

    @cached_property
    def item_cells(self) -> IntArray:
        """Per (judgment, true label): its cell in a flat items × labels table."""
        return as_int_array(
            ((self.item * self.n_labels)[:, None] + np.arange(self.n_labels)).ravel()
        )

    @cached_property
    def confusion_cells(self) -> IntArray:
        """Per (judgment, true label): its cell in a flat raters × true × reported table."""
        true = (self.rater * self.n_labels)[:, None] + np.arange(self.n_labels)
        return as_int_array((true * self.n_labels + self.label[:, None]).ravel())


def dawid_skene(
    rater: npt.ArrayLike,
    item: npt.ArrayLike,
    label: npt.ArrayLike,
    n_raters: int,
    *,
    known_label: npt.ArrayLike | None = None,
    n_labels: int = N_PREFERENCE_LABELS,
    smoothing: float = 0.01,
    max_iterations: int = 500,
    tolerance: float = 1e-9,
) -> DawidSkeneResult:
    """Fit Dawid-Skene by EM, starting from each item's majority vote.

    ``known_label`` is per judgment: the item's gold label, or NO_GOLD (−1) for ordinary items.
    Stops when the log posterior improves by less than ``tolerance`` (relative).
    """
    item_ids, item_index = np.unique(as_int_array(item), return_inverse=True)
    judgments = _Judgments(
        rater=as_int_array(rater),
        item=as_int_array(item_index.ravel()),
        label=as_int_array(label),
        n_raters=n_raters,
        n_items=len(item_ids),
        n_labels=n_labels,
    )
    known = np.full(judgments.n_items, NO_GOLD, dtype=np.int64)
    if known_label is not None:
        np.maximum.at(known, judgments.item, as_int_array(known_label))
    posterior = _clamp_known(_majority_vote(judgments, smoothing), known)
    trace: list[float] = []
    converged = False
    for _ in range(max_iterations):
        prior, confusion = _maximize(posterior, judgments, smoothing)
        posterior, objective = _expect(prior, confusion, judgments, known, smoothing)
        trace.append(objective)
        if len(trace) > 1 and trace[-1] - trace[-2] <= tolerance * abs(trace[-1]):
            converged = True
            break
    judged = np.bincount(judgments.rater, minlength=n_raters) > 0
    accuracy = np.einsum("k,rkk->r", prior, confusion)
    return DawidSkeneResult(
        item_ids=as_int_array(item_ids),
        item_posterior=posterior,
        class_prior=prior,
        confusion=confusion,
        rater_accuracy=as_float_array(np.where(judged, accuracy, np.nan)),
        objective_trace=as_float_array(trace),
        converged=converged,
    )


def _majority_vote(judgments: _Judgments, smoothing: float) -> FloatArray:
    flat = judgments.item * judgments.n_labels + judgments.label
    counts = np.bincount(flat, minlength=judgments.n_items * judgments.n_labels)
    votes = counts.reshape(judgments.n_items, judgments.n_labels) + smoothing
    return as_float_array(votes / votes.sum(axis=1, keepdims=True))


def _clamp_known(posterior: FloatArray, known: IntArray) -> FloatArray:
    clamped = posterior.copy()
    is_known = known != NO_GOLD
    clamped[is_known] = np.eye(posterior.shape[1])[known[is_known]]
    return clamped


def _maximize(
    posterior: FloatArray, judgments: _Judgments, smoothing: float
) -> tuple[FloatArray, FloatArray]:
    """π and Θ from posterior-weighted counts plus the pseudo-count."""
    n_raters, n_labels = judgments.n_raters, judgments.n_labels
    prior = (posterior.sum(axis=0) + smoothing) / (judgments.n_items + n_labels * smoothing)
    # One weighted count per (judgment, true label), into cells (rater, true, reported).
    weighted_counts = np.bincount(
        judgments.confusion_cells,
        weights=posterior[judgments.item].ravel(),
        minlength=n_raters * n_labels * n_labels,
    )
    counts = weighted_counts.reshape(n_raters, n_labels, n_labels) + smoothing
    confusion = counts / counts.sum(axis=2, keepdims=True)
    return as_float_array(prior), as_float_array(confusion)


def _expect(
    prior: FloatArray,
    confusion: FloatArray,
    judgments: _Judgments,
    known: IntArray,
    smoothing: float,
) -> tuple[FloatArray, float]:
    """Posterior over each item's true label, and the log posterior of (π, Θ)."""
    n_labels = judgments.n_labels
    log_confusion = np.log(confusion)
    per_judgment = log_confusion[judgments.rater, :, judgments.label]  # judgments × true
    log_joint = np.bincount(
        judgments.item_cells,
        weights=per_judgment.ravel(),
        minlength=judgments.n_items * n_labels,
    ).reshape(judgments.n_items, n_labels) + np.log(prior)
    is_known = known != NO_GOLD
    highest = log_joint.max(axis=1, keepdims=True)
    log_evidence = np.log(np.exp(log_joint - highest).sum(axis=1)) + highest[:, 0]
    log_likelihood = log_evidence[~is_known].sum()
    log_likelihood += log_joint[is_known, known[is_known]].sum()
    log_prior = smoothing * (np.log(prior).sum() + log_confusion.sum())
    posterior = _clamp_known(np.exp(log_joint - log_evidence[:, None]), known)
    return as_float_array(posterior), float(log_likelihood + log_prior)
