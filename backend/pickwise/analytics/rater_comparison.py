"""Each rater against the other raters of the same pairs: is this rater worse than the others?

Every test here has the same shape. Each judgment gets a score (the share of the pair's other
judgments with the same label; right or wrong on a gold pair; picked the longer answer or
not). The null hypothesis is that the rater is exchangeable with the pair's other raters:
given the judgments the pair received, the rater's is any one of them with equal chance. Per
pair that gives the expected score and its variance exactly, and pairs are independent, so
the rater's total is set against the summed expectation with a normal approximation. The
pair's own difficulty is inside the expectation, so the test means "differs from the others"
on easy and hard tasks alike; no threshold on accuracy is involved.

``reference`` says which raters stand for "the others" (by default everyone). A rater outside
it is compared with the reference raters of each pair plus their own judgment; a rater inside
it with the reference raters of the pair. ``flags.assess_raters`` leaves raters already
flagged out of the reference, so a crowd with many bad raters does not lower the bar.
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import (
    BoolArray,
    FloatArray,
    IntArray,
    as_bool_array,
    as_float_array,
    as_int_array,
    safe_share,
)
from pickwise.analytics.labels import (
    CHOICE_A,
    CHOICE_B,
    N_PREFERENCE_LABELS,
    NO_GOLD,
    is_decisive,
    preference_labels,
)
from pickwise.analytics.rater_judgments import RaterJudgments


@dataclass(frozen=True)
class OthersComparison:
    """One test, per rater."""

    judgments: IntArray  # judgments on pairs with at least one other comparable judgment
    observed: FloatArray  # the rater's mean score; NaN without such judgments
    expected: FloatArray  # the mean a rater like the others would get on the same pairs
    z: FloatArray  # (total − expected total) / standard deviation; NaN if that is 0
    p_value: FloatArray  # one-sided (lower) or two-sided, as the test says


@dataclass(frozen=True)
class Comparisons:
    reference: BoolArray  # per rater: their judgments stand for "the others"
    # Share of the other raters of the same pair who gave the same label (A / tie / B).
    agreement: OthersComparison
    # Gold judgments right (1) or wrong (0); ties on gold pairs are wrong.
    gold: OthersComparison
    # A-or-B choices of the longer answer, on pairs whose answers differ in length.
    longer_picks: OthersComparison


def compare_with_others(
    judgments: RaterJudgments, n_raters: int, reference: npt.ArrayLike | None = None
) -> Comparisons:
    """Agreement and gold accuracy (one-sided: only worse counts against a rater) and the
    share of longer picks (two-sided) of every rater against the ``reference`` raters."""
    in_reference = (
        np.ones(n_raters, dtype=np.bool_) if reference is None else as_bool_array(reference)
    )
    is_gold = judgments.gold_choice != NO_GOLD
    return Comparisons(
        reference=in_reference,
        agreement=agreement_with_others(
            judgments.rater,
            judgments.item,
            preference_labels(judgments.choice),
            n_raters,
            reference=in_reference,
        ),
        gold=property_versus_others(
            judgments.rater,
            judgments.item,
            judgments.choice == judgments.gold_choice,
            is_gold,
            n_raters,
            two_sided=False,
            reference=in_reference,
        ),
        longer_picks=property_versus_others(
            judgments.rater,
            judgments.item,
            picked_longer(judgments.choice, judgments.a_longer),
            is_decisive(judgments.choice) & (judgments.a_longer != 0),
            n_raters,
            two_sided=True,
            reference=in_reference,
        ),
    )


def agreement_with_others(
    rater: npt.ArrayLike,
    item: npt.ArrayLike,
    label: npt.ArrayLike,
    n_raters: int,
    *,
    reference: npt.ArrayLike | None = None,
) -> OthersComparison:
    """Per judgment, the share of the pair's other judgments with the same label (one-sided:
    agreeing less is what counts against a rater).

    For a pair with label counts n_c of m judgments, a label drawn from them at random scores
    (n_c − 1)/(m − 1) with probability n_c/m: that gives the expectation and variance.
    """
    raters = as_int_array(rater)
    labels = as_int_array(label)
    item_index = _dense(item)
    own = _outside(raters, reference, n_raters)
    counts = np.zeros((int(item_index.max(initial=-1)) + 1, N_PREFERENCE_LABELS))
    np.add.at(counts, (item_index[~own], labels[~own]), 1.0)
    label_score, mean, variance, step = _agreement_moments(counts)
    score = label_score[item_index, labels]
    mean, variance, step = mean[item_index], variance[item_index], step[item_index]
    if own.any():
        # A rater outside the reference: the pair's reference labels plus their own.
        own_counts = counts[item_index[own]]
        own_counts[np.arange(len(own_counts)), labels[own]] += 1.0
        own_score, mean[own], variance[own], step[own] = _agreement_moments(own_counts)
        score[own] = own_score[np.arange(len(own_counts)), labels[own]]
    return _compare(raters, score, mean, variance, step, n_raters, two_sided=False)


def _agreement_moments(
    counts: FloatArray,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """For rows of label counts: each label's score, the mean and variance of the score of a
    label drawn at random (NaN variance below two judgments), and the score's step."""
    total = counts.sum(axis=1)
    others = np.maximum(total - 1, 1)
    label_score = np.maximum(counts - 1, 0) / others[:, None]
    share = counts / np.maximum(total, 1)[:, None]
    mean = (share * label_score).sum(axis=1)
    variance = np.maximum((share * label_score**2).sum(axis=1) - mean**2, 0.0)
    variance[total < 2] = np.nan
    return (
        as_float_array(label_score),
        as_float_array(mean),
        as_float_array(variance),
        as_float_array(1 / others),
    )


def property_versus_others(
    rater: npt.ArrayLike,
    item: npt.ArrayLike,
    has_property: npt.ArrayLike,
    eligible: npt.ArrayLike,
    n_raters: int,
    *,
    two_sided: bool,
    reference: npt.ArrayLike | None = None,
) -> OthersComparison:
    """How often a rater's eligible judgments have a yes/no property (right on a gold pair,
    picked the longer answer), against a rater like the others on the same pairs.

    Per pair with k of m eligible judgments having it, a judgment drawn at random has it with
    probability k/m (variance k/m · (1 − k/m)): the Mantel-Haenszel comparison of this rater
    with the others, pair by pair.
    """
    raters = as_int_array(rater)
    counted = as_bool_array(eligible)
    value = as_float_array(as_bool_array(has_property) & counted)
    item_index = _dense(item)
    own = _outside(raters, reference, n_raters) & counted
    shared = counted & ~own
    n_items = int(item_index.max(initial=-1)) + 1
    eligible_per_item = np.bincount(item_index[shared], minlength=n_items).astype(np.float64)
    having = np.bincount(item_index[shared], weights=value[shared], minlength=n_items)
    total = eligible_per_item[item_index] + own
    share = safe_share(having[item_index] + value * own, total)
    variance = share * (1 - share)
    variance[(total < 2) | ~counted] = np.nan
    return _compare(
        raters,
        value,
        as_float_array(np.nan_to_num(share)),
        as_float_array(variance),
        np.ones(len(raters)),
        n_raters,
        two_sided=two_sided,
    )


def picked_longer(choice_codes: npt.ArrayLike, a_longer: npt.ArrayLike) -> BoolArray:
    """Whether each judgment chose the longer answer (meaningful for A-or-B choices on pairs
    whose answers differ in length)."""
    codes = as_int_array(choice_codes)
    longer = as_int_array(a_longer)
    return as_bool_array(
        ((codes == CHOICE_A) & (longer > 0)) | ((codes == CHOICE_B) & (longer < 0))
    )


def _dense(item: npt.ArrayLike) -> IntArray:
    _, item_index = np.unique(as_int_array(item), return_inverse=True)
    return as_int_array(item_index.ravel())


def _outside(raters: IntArray, reference: npt.ArrayLike | None, n_raters: int) -> BoolArray:
    """Per judgment: its rater is not one of the reference raters."""
    if reference is None:
        return np.zeros(len(raters), dtype=np.bool_)
    in_reference = as_bool_array(reference)
    assert len(in_reference) == n_raters
    return as_bool_array(~in_reference[raters])


def _compare(
    rater: IntArray,
    score: FloatArray,
    expected: FloatArray,
    variance: FloatArray,
    step: FloatArray,
    n_raters: int,
    *,
    two_sided: bool,
) -> OthersComparison:
    """Per-judgment scores with their expectation and variance under exchangeability, summed
    per rater. Judgments with ``variance`` NaN (nothing to compare with) count nowhere.

    A score moves in steps (``step``: 1 for yes/no, 1/(m − 1) for agreement with m − 1
    others); the total is pulled half a mean step towards its expectation before the normal
    approximation (a continuity correction), which keeps the test from flagging more often
    than its level when a rater has few judgments or the scores are skewed (easy gold pairs).
    """
    # Imported here: scipy takes seconds to import and the app must start without it.
    from scipy import stats

    counted = ~np.isnan(variance)
    raters = rater[counted]
    judgments = np.bincount(raters, minlength=n_raters)
    total = np.bincount(raters, weights=score[counted], minlength=n_raters)
    expected_total = np.bincount(raters, weights=expected[counted], minlength=n_raters)
    spread = np.sqrt(np.bincount(raters, weights=variance[counted], minlength=n_raters))
    half_step = 0.5 * safe_share(
        np.bincount(raters, weights=step[counted], minlength=n_raters), judgments
    )
    deviation = total - expected_total
    corrected = np.sign(deviation) * np.maximum(np.abs(deviation) - np.nan_to_num(half_step), 0)
    z = safe_share(corrected, spread)
    p_value = 2 * stats.norm.sf(np.abs(z)) if two_sided else stats.norm.cdf(z)
    return OthersComparison(
        judgments=as_int_array(judgments),
        observed=safe_share(total, judgments),
        expected=safe_share(expected_total, judgments),
        z=z,
        p_value=np.minimum(as_float_array(p_value), 1.0),
    )
