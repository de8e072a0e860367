import krippendorff
import numpy as np
import numpy.typing as npt
import pytest

from pickwise.analytics.agreement import (
    agreement_by_group,
    agreement_with_majority,
    group_agreement,
)
from pickwise.analytics.arrays import FloatArray, as_int_array
from pickwise.analytics.labels import NO_PREFERENCE, PREFER_A, PREFER_B

A, T, B = PREFER_A, NO_PREFERENCE, PREFER_B

# item 1: A A B    item 2: A T T A    item 3: B (alone)    item 4: T B
SMALL_ITEMS = [1, 1, 1, 2, 2, 2, 2, 3, 4, 4]
SMALL_LABELS = [A, A, B, A, T, T, A, B, T, B]


def reliability_data(
    rater: npt.ArrayLike, item: npt.ArrayLike, label: npt.ArrayLike, n_raters: int
) -> FloatArray:
    """Raters × items matrix of labels with NaN where a rater did not judge an item.

    The input format of the ``krippendorff`` package; columns follow sorted item ids.
    """
    _, item_index = np.unique(as_int_array(item), return_inverse=True)
    matrix = np.full((n_raters, int(item_index.max(initial=-1)) + 1), np.nan)
    matrix[as_int_array(rater), item_index.ravel()] = as_int_array(label)
    return matrix


def test_pairwise_agreement_on_a_hand_worked_example() -> None:
    result = group_agreement(SMALL_ITEMS, SMALL_LABELS)

    # With ties: item 1 has 3 pairs (1 agrees), item 2 has 6 (A-A and T-T agree), item 4
    # has 1 (disagrees): 3 of 10.
    assert (result.with_ties.agreeing_pairs, result.with_ties.rater_pairs) == (3, 10)
    assert result.with_ties.share == pytest.approx(0.3)
    # Without ties: item 1 as before (1 of 3), item 2 keeps A A (1 of 1), item 4 keeps only
    # B (no pair): 2 of 4.
    assert (result.without_ties.agreeing_pairs, result.without_ties.rater_pairs) == (2, 4)
    assert result.without_ties.share == pytest.approx(0.5)
    assert (result.judgments, result.items) == (10, 4)


def test_alpha_on_the_hand_worked_example() -> None:
    # Coincidences: o_AA = 1 + 2/3, o_TT = 2/3, o_AB = 1, o_AT = 4/3, o_TB = 1 (each also
    # mirrored); n_A = 4, n_T = 3, n_B = 2, n = 9.
    # α = 1 − (n − 1)·Σ_{c≠k} o_ck / Σ_{c≠k} n_c·n_k = 1 − 8·(20/3) / 52 = −1/39.
    assert group_agreement(SMALL_ITEMS, SMALL_LABELS).krippendorff_alpha == pytest.approx(-1 / 39)


@pytest.mark.parametrize("seed", range(8))
def test_alpha_equals_the_krippendorff_package_with_missing_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_raters, n_items = rng.integers(3, 12), rng.integers(10, 80)
    # Raters who lean towards the item's "true" label, so alpha is not always near zero.
    truth = rng.integers(0, 3, n_items)
    noisy = rng.integers(0, 3, (n_raters, n_items))
    matrix = np.where(rng.random((n_raters, n_items)) < 0.6, truth, noisy).astype(float)
    matrix[rng.random((n_raters, n_items)) < rng.uniform(0.2, 0.7)] = np.nan
    raters, items = np.nonzero(~np.isnan(matrix))
    labels = matrix[raters, items].astype(int)
    item_ids = items * 7 + 100  # arbitrary, non-dense ids

    ours = group_agreement(item_ids, labels).krippendorff_alpha
    rebuilt = reliability_data(raters, item_ids, labels, int(n_raters))
    judged = ~np.all(np.isnan(matrix), axis=0)

    expected = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert ours == pytest.approx(expected, abs=1e-9)
    np.testing.assert_array_equal(rebuilt, matrix[:, judged])
    from_rebuilt = krippendorff.alpha(reliability_data=rebuilt, level_of_measurement="nominal")
    assert from_rebuilt == pytest.approx(expected, abs=1e-9)


def test_alpha_is_nan_when_only_one_label_was_used() -> None:
    assert np.isnan(group_agreement([1, 1, 2, 2], [A, A, A, A]).krippendorff_alpha)


def test_agreement_with_the_majority_of_the_other_raters() -> None:
    # item 10: A A B   item 11: B B B   item 12: T A A   item 13: A (alone)
    raters = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    items = [10, 10, 10, 11, 11, 11, 12, 12, 12, 13]
    labels = [A, A, B, B, B, B, T, A, A, A]

    result = agreement_with_majority(raters, items, labels, n_raters=4)

    # Rater 0: item 10 others split A/B (no majority), 11 agrees, 12 others say A (disagrees),
    # 13 has no others. Rater 1: only item 11 has a unique majority of others (12 is split
    # T/A). Rater 2: item 10 others say A (disagrees), 11 agrees, 12 is split.
    assert list(result.agreed) == [1, 1, 1, 0]
    assert list(result.eligible) == [2, 1, 2, 0]
    np.testing.assert_allclose(result.share, [0.5, 1.0, 0.5, np.nan])


def test_agreement_by_group_splits_the_judgments() -> None:
    groups = ["x"] * 4 + ["y"] * 4
    items = [1, 1, 2, 2, 3, 3, 4, 4]
    labels = [A, A, B, B, A, B, A, T]

    result = agreement_by_group(groups, items, labels)

    assert result["x"].with_ties.share == pytest.approx(1.0)
    assert result["y"].with_ties.share == pytest.approx(0.0)
    assert result["y"].without_ties.rater_pairs == 1
