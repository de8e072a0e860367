import numpy as np
import pytest

from pickwise.analytics.dawid_skene import dawid_skene
from pickwise.analytics.labels import NO_GOLD


def simulate_crowd(
    confusions: np.ndarray, n_items: int, raters_per_item: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each item gets ``raters_per_item`` distinct raters who report from their confusion row."""
    rng = np.random.default_rng(seed)
    n_raters = len(confusions)
    truth = rng.choice(3, n_items, p=[0.45, 0.1, 0.45])
    raters = np.concatenate([rng.permutation(n_raters)[:raters_per_item] for _ in range(n_items)])
    items = np.repeat(np.arange(n_items), raters_per_item)
    cumulative = confusions[raters, truth[items]].cumsum(axis=1)
    labels = (rng.random(len(items))[:, None] > cumulative).sum(axis=1)
    return raters, items, labels, truth


def symmetric_confusion(accuracy: float) -> np.ndarray:
    off = (1 - accuracy) / 2
    return np.full((3, 3), off) + np.eye(3) * (accuracy - off)


def test_recovers_rater_accuracies_and_beats_majority_vote() -> None:
    accuracies = np.tile([0.95, 0.85, 0.7, 0.55, 0.4], 6)
    confusions = np.stack([symmetric_confusion(a) for a in accuracies])
    raters, items, labels, truth = simulate_crowd(confusions, 3_000, 5, seed=1)

    result = dawid_skene(raters, items, labels, len(accuracies))

    assert result.converged
    errors = np.abs(result.rater_accuracy - accuracies)
    print(f"Dawid-Skene accuracy error: mean {errors.mean():.3f}, max {errors.max():.3f}")
    assert errors.mean() < 0.03 and errors.max() < 0.08
    np.testing.assert_allclose(result.class_prior, [0.45, 0.1, 0.45], atol=0.03)
    inferred = result.item_posterior.argmax(axis=1)
    counts = np.zeros((3_000, 3))
    np.add.at(counts, (items, labels), 1)
    majority = counts.argmax(axis=1)
    assert np.mean(inferred == truth) > np.mean(majority == truth) + 0.02


def test_log_posterior_never_decreases() -> None:
    accuracies = np.tile([0.9, 0.6, 0.45], 5)
    confusions = np.stack([symmetric_confusion(a) for a in accuracies])
    raters, items, labels, _ = simulate_crowd(confusions, 400, 3, seed=2)

    trace = dawid_skene(raters, items, labels, len(accuracies)).objective_trace

    assert len(trace) > 3
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:]))


def test_learns_a_rater_who_swaps_a_and_b() -> None:
    swapper = np.array([[0.0, 0.05, 0.95], [0.1, 0.8, 0.1], [0.95, 0.05, 0.0]])
    confusions = np.stack([symmetric_confusion(0.8)] * 8 + [swapper] * 4)
    raters, items, labels, truth = simulate_crowd(confusions, 1_500, 4, seed=3)

    result = dawid_skene(raters, items, labels, len(confusions))

    assert result.rater_accuracy[8:].max() < 0.2
    # The swapper's reports are informative once flipped: nearly every item is recovered.
    assert np.mean(result.item_posterior.argmax(axis=1) == truth) > 0.9
    assert result.confusion[8, 0, 2] > 0.85


def test_gold_items_keep_their_known_label() -> None:
    raters = np.array([0, 1, 2, 0, 1, 2])
    items = np.array([5, 5, 5, 6, 6, 6])
    labels = np.array([2, 2, 2, 0, 0, 1])
    known = np.array([0, 0, 0, NO_GOLD, NO_GOLD, NO_GOLD])  # item 5's gold label is 0

    result = dawid_skene(raters, items, labels, n_raters=4, known_label=known)

    assert list(result.item_ids) == [5, 6]
    np.testing.assert_array_equal(result.item_posterior[0], [1.0, 0.0, 0.0])
    assert np.isnan(result.rater_accuracy[3])  # no judgments


def test_unanimous_perfect_raters_are_fully_accurate() -> None:
    raters = np.tile(np.arange(3), 30)
    items = np.repeat(np.arange(30), 3)
    labels = np.repeat(np.arange(30) % 3, 3)

    result = dawid_skene(raters, items, labels, n_raters=3)

    np.testing.assert_allclose(result.rater_accuracy, 1.0, atol=0.01)
    np.testing.assert_array_equal(result.item_posterior.argmax(axis=1), np.arange(30) % 3)
    assert result.item_posterior.max(axis=1).min() == pytest.approx(1.0, abs=1e-3)
