"""Inter-rater agreement over the preference labels A / tie / B.

All three statistics start from the same table: per item (pair), how many raters gave each
label. Judgments are (rater, item, label) triples with labels from ``labels.preference_labels``.
"""

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pickwise.analytics.arrays import FloatArray, IntArray, as_int_array, safe_share
from pickwise.analytics.labels import N_PREFERENCE_LABELS, PREFER_A, PREFER_B


@dataclass(frozen=True)
class PairwiseAgreement:
    agreeing_pairs: int  # pairs of raters on the same item who gave the same label
    rater_pairs: int
    share: float  # NaN without any pair


@dataclass(frozen=True)
class GroupAgreement:
    with_ties: PairwiseAgreement  # all three labels
    without_ties: PairwiseAgreement  # only raters who preferred A or B
    krippendorff_alpha: float  # nominal; NaN when undefined (one label only, or no pairs)
    judgments: int
    items: int


@dataclass(frozen=True)
class MajorityAgreement:
    agreed: IntArray  # per rater: judgments matching the others' majority label
    eligible: IntArray  # judgments on items where the other raters have a unique majority
    share: FloatArray  # agreed / eligible, NaN without eligible judgments


def label_counts_per_item(item: npt.ArrayLike, label: npt.ArrayLike) -> IntArray:
    """Items × labels matrix: how many raters gave each label to each item that has judgments."""
    _, item_index = np.unique(as_int_array(item), return_inverse=True)
    flat = item_index.ravel() * N_PREFERENCE_LABELS + as_int_array(label)
    n_items = int(item_index.max(initial=-1)) + 1
    counts = np.bincount(flat, minlength=n_items * N_PREFERENCE_LABELS)
    return as_int_array(counts.reshape(n_items, N_PREFERENCE_LABELS))


def pairwise_agreement(counts: IntArray) -> PairwiseAgreement:
    """Share of rater pairs (within an item) that agree, pooled over items.

    An item judged by m raters contributes m(m−1)/2 pairs, of which Σ_label c(c−1)/2 agree.
    """
    per_item = counts.sum(axis=1)
    agreeing = int((counts * (counts - 1) // 2).sum())
    pairs = int((per_item * (per_item - 1) // 2).sum())
    return PairwiseAgreement(agreeing, pairs, float(safe_share(agreeing, pairs)))


def krippendorff_alpha_nominal(counts: IntArray) -> float:
    """Krippendorff's alpha for nominal data from the items × labels count table.

    Coincidences o_ck = Σ_u (n_uc·n_uk − [c = k]·n_uc) / (m_u − 1) over items with m_u ≥ 2
    values; n_c = Σ_k o_ck, n = Σ_c n_c;  α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c·n_k.
    Items with a single judgment carry no information about agreement and are dropped.
    """
    pairable = counts[counts.sum(axis=1) >= 2].astype(np.float64)
    if len(pairable) == 0:
        return float("nan")
    per_item = pairable.sum(axis=1)
    outer = pairable[:, :, None] * pairable[:, None, :]
    outer -= pairable[:, :, None] * np.eye(N_PREFERENCE_LABELS)[None, :, :]
    coincidences = (outer / (per_item - 1)[:, None, None]).sum(axis=0)
    label_totals = coincidences.sum(axis=1)
    total = label_totals.sum()
    off_diagonal = ~np.eye(N_PREFERENCE_LABELS, dtype=bool)
    observed = coincidences[off_diagonal].sum()
    expected = np.outer(label_totals, label_totals)[off_diagonal].sum()
    if expected == 0:
        return float("nan")
    return float(1.0 - (total - 1) * observed / expected)


def group_agreement(item: npt.ArrayLike, label: npt.ArrayLike) -> GroupAgreement:
    """Pairwise agreement with and without ties, and Krippendorff's alpha, for one group."""
    counts = label_counts_per_item(item, label)
    return GroupAgreement(
        with_ties=pairwise_agreement(counts),
        without_ties=pairwise_agreement(counts[:, [PREFER_A, PREFER_B]]),
        krippendorff_alpha=krippendorff_alpha_nominal(counts),
        judgments=int(counts.sum()),
        items=len(counts),
    )


def agreement_by_group(
    group: npt.ArrayLike, item: npt.ArrayLike, label: npt.ArrayLike
) -> dict[Hashable, GroupAgreement]:
    """``group_agreement`` per group (e.g. batch or prompt category), keyed by group value."""
    keys, group_index = np.unique(np.asarray(group), return_inverse=True)
    items = as_int_array(item)
    labels = as_int_array(label)
    result: dict[Hashable, GroupAgreement] = {}
    for position, key in enumerate(keys):
        mask = group_index.ravel() == position
        result[key.item()] = group_agreement(items[mask], labels[mask])
    return result


def agreement_with_majority(
    rater: npt.ArrayLike, item: npt.ArrayLike, label: npt.ArrayLike, n_raters: int
) -> MajorityAgreement:
    """Per rater, how often their label matches the majority label of the other raters.

    A judgment counts only when at least one other rater judged the item and the others'
    most frequent label is unique (a split vote gives no majority to agree with).
    """
    raters = as_int_array(rater)
    labels = as_int_array(label)
    _, item_index = np.unique(as_int_array(item), return_inverse=True)
    counts = label_counts_per_item(item, labels)
    others = counts[item_index.ravel()] - np.eye(N_PREFERENCE_LABELS, dtype=np.int64)[labels]
    top = others.max(axis=1)
    unique_majority = (others == top[:, None]).sum(axis=1) == 1
    eligible = unique_majority & (top > 0)
    agreed = eligible & (others.argmax(axis=1) == labels)
    eligible_count = np.bincount(raters, weights=eligible, minlength=n_raters)
    agreed_count = np.bincount(raters, weights=agreed, minlength=n_raters)
    return MajorityAgreement(
        agreed=as_int_array(agreed_count),
        eligible=as_int_array(eligible_count),
        share=safe_share(agreed_count, eligible_count),
    )
