"""Flags on a simulated crowd: good raters (accuracy 0.9 and 0.7) and bad ones (accuracy 0.5,
random clickers, always-left clickers), 100 judgments each, 5 raters per pair, 10% gold pairs.

Every rater takes the same time per judgment, so the statistics, not the speed rule, must
find the bad raters.
"""

import numpy as np
import pytest

from pickwise.analytics.flags import rater_flags
from pickwise.analytics.labels import CHOICE_A, CHOICE_B, CHOICE_TIE, NO_GOLD
from pickwise.analytics.rater_quality import RaterJudgments, RaterQuality, rater_quality

KINDS = ("accuracy_0.9", "accuracy_0.7", "accuracy_0.5", "random", "always_left")
GOOD_KINDS = {"accuracy_0.9", "accuracy_0.7"}
ACCURACY = {"accuracy_0.9": 0.9, "accuracy_0.7": 0.7, "accuracy_0.5": 0.5}
RATERS_PER_KIND = 40
JUDGMENTS_PER_RATER = 100
RATERS_PER_PAIR = 5
GOLD_SHARE = 0.1
TRUE_TIE_SHARE = 0.1


def simulate_crowd(seed: int) -> tuple[np.ndarray, RaterJudgments]:
    rng = np.random.default_rng(seed)
    kinds = np.repeat(KINDS, RATERS_PER_KIND)
    n_raters = len(kinds)
    pairs_per_round = n_raters // RATERS_PER_PAIR
    # Each round shuffles the raters into groups of five, one pair per group: every rater
    # gets one pair per round and no rater sees a pair twice.
    rater = np.concatenate([rng.permutation(n_raters) for _ in range(JUDGMENTS_PER_RATER)])
    item = np.arange(len(rater)) // RATERS_PER_PAIR
    n_items = item[-1] + 1
    assert n_items == JUDGMENTS_PER_RATER * pairs_per_round

    is_gold = rng.random(n_items) < GOLD_SHARE
    truth = np.where(rng.random(n_items) < TRUE_TIE_SHARE, CHOICE_TIE, rng.integers(0, 2, n_items))
    truth[is_gold] = rng.integers(0, 2, is_gold.sum())  # gold pairs have a clear winner
    true_choice = truth[item]
    a_left = rng.random(len(item)) < 0.5
    rater_kind = kinds[rater]

    labels = np.array([CHOICE_A, CHOICE_B, CHOICE_TIE])
    position_in_labels = np.searchsorted(labels, true_choice)  # CHOICE_* are 0, 1, 2
    wrong = labels[(position_in_labels + rng.integers(1, 3, len(item))) % 3]
    accuracy = np.array([ACCURACY.get(kind, 0.0) for kind in rater_kind])
    choice = np.where(rng.random(len(item)) < accuracy, true_choice, wrong)
    choice = np.where(rater_kind == "random", rng.choice(labels, len(item)), choice)
    choice = np.where(rater_kind == "always_left", np.where(a_left, CHOICE_A, CHOICE_B), choice)

    judgments = RaterJudgments(
        rater=rater,
        item=item,
        choice=choice,
        a_shown_left=a_left,
        seconds=rng.lognormal(np.log(25.0), 0.6, len(item)),
        gold_choice=np.where(is_gold[item], true_choice, NO_GOLD),
    )
    return kinds, judgments


@pytest.fixture(scope="module")
def crowd() -> tuple[np.ndarray, RaterQuality]:
    kinds, judgments = simulate_crowd(seed=2024)
    return kinds, rater_quality(judgments, len(kinds))


def test_flags_catch_bad_raters_and_spare_good_ones(crowd: tuple[np.ndarray, RaterQuality]) -> None:
    kinds, quality = crowd
    flagged = np.array([bool(reasons) for reasons in rater_flags(quality)])
    good = np.isin(kinds, list(GOOD_KINDS))

    caught = flagged[~good].mean()
    false_flags = flagged[good].mean()
    per_kind = {kind: flagged[kinds == kind].mean() for kind in KINDS}
    print(f"caught {caught:.3f} of bad raters, false flags {false_flags:.3f}; {per_kind}")

    assert caught >= 0.9
    assert false_flags <= 0.05
    assert per_kind["random"] == 1.0 and per_kind["always_left"] == 1.0


def test_always_left_clickers_are_flagged_for_position_bias(
    crowd: tuple[np.ndarray, RaterQuality],
) -> None:
    kinds, quality = crowd
    reasons = rater_flags(quality)

    for index in np.flatnonzero(kinds == "always_left"):
        assert "position_bias" in {reason.code for reason in reasons[index]}
        assert quality.position.left_share[index] == 1.0


def test_dawid_skene_accuracy_tracks_the_simulated_accuracy(
    crowd: tuple[np.ndarray, RaterQuality],
) -> None:
    kinds, quality = crowd
    for kind, accuracy in ACCURACY.items():
        estimated = quality.dawid_skene_accuracy[kinds == kind].mean()
        assert estimated == pytest.approx(accuracy, abs=0.03)
    # A random clicker over three labels is right a third of the time.
    assert quality.dawid_skene_accuracy[kinds == "random"].mean() == pytest.approx(1 / 3, abs=0.04)


def test_per_rater_measures_have_plausible_values(crowd: tuple[np.ndarray, RaterQuality]) -> None:
    kinds, quality = crowd
    assert np.all(quality.pace.judgments == JUDGMENTS_PER_RATER)
    assert quality.pace.median_seconds.mean() == pytest.approx(25.0, rel=0.1)
    # Random clickers tie a third of the time, left-clickers never.
    assert quality.tie_rate[kinds == "random"].mean() == pytest.approx(1 / 3, abs=0.03)
    assert np.all(quality.tie_rate[kinds == "always_left"] == 0.0)
    gold_90 = quality.gold.accuracy[kinds == "accuracy_0.9"]
    assert np.nanmean(gold_90) == pytest.approx(0.9, abs=0.05)
    majority = quality.majority.share
    assert np.nanmean(majority[kinds == "accuracy_0.9"]) > np.nanmean(majority[kinds == "random"])
