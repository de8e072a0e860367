"""Simulated crowds with known good and bad raters, for the rater-flag tests.

Good raters report a pair's true label (A, B or tie) with probability ``good_accuracy`` and
one of the two other labels otherwise; the task's difficulty is that accuracy. Bad raters:

* random: A or B at random, whatever the answers say;
* always_left: the answer shown on the left;
* always_longer: the longer answer.

Every pair is judged by ``raters_per_pair`` different raters: each round shuffles the raters
into groups, one pair per group, so every rater judges one pair per round. The longer answer
is the better one on ``longer_wins`` of the pairs with a winner, so length tells something
about quality (good raters pick the longer answer more often than half the time) and an
always-longer rater is right more often than a random one. Everyone takes the same time per
judgment: the statistics, not the speed rule, must find the bad raters.
"""

from dataclasses import dataclass

import numpy as np

from pickwise.analytics.labels import CHOICE_A, CHOICE_B, CHOICE_TIE, NO_GOLD
from pickwise.analytics.rater_judgments import RaterJudgments

BAD_KINDS = ("random", "always_left", "always_longer")


@dataclass(frozen=True)
class Crowd:
    good_accuracy: float
    n_good: int = 30
    bad_per_kind: int = 5
    judgments_per_rater: int = 100
    raters_per_pair: int = 5
    gold_share: float = 0.1
    true_tie_share: float = 0.1
    longer_wins: float = 0.65
    # Good raters differ: each one's accuracy is drawn from good_accuracy ± good_spread.
    good_spread: float = 0.0

    @property
    def kinds(self) -> np.ndarray:
        return np.array(
            ["good"] * self.n_good + [kind for kind in BAD_KINDS for _ in range(self.bad_per_kind)]
        )

    def simulate(self, seed: int) -> RaterJudgments:
        return self.simulate_with_truth(seed)[0]

    def simulate_with_truth(self, seed: int) -> tuple[RaterJudgments, np.ndarray]:
        """The judgments, and each judgment's true label (A, B or tie) as a choice code."""
        rng = np.random.default_rng(seed)
        kinds = self.kinds
        n_raters = len(kinds)
        groups = n_raters // self.raters_per_pair
        seated = groups * self.raters_per_pair
        # Each round seats a random `seated` of the raters in groups; one pair per group.
        rater = np.concatenate(
            [rng.permutation(n_raters)[:seated] for _ in range(self.judgments_per_rater)]
        )
        item = np.arange(len(rater)) // self.raters_per_pair
        n_items = int(item[-1]) + 1

        is_gold = rng.random(n_items) < self.gold_share
        winner = rng.integers(0, 2, n_items)  # CHOICE_A or CHOICE_B
        truth = np.where(rng.random(n_items) < self.true_tie_share, CHOICE_TIE, winner)
        truth[is_gold] = winner[is_gold]  # gold pairs have a clear winner
        # +1: A is longer. The winner is the longer answer on `longer_wins` of the pairs.
        winner_longer = rng.random(n_items) < self.longer_wins
        a_longer = np.where((winner == CHOICE_A) == winner_longer, 1, -1)
        true_choice = truth[item]
        a_left = rng.random(len(item)) < 0.5
        rater_kind = kinds[rater]

        labels = np.array([CHOICE_A, CHOICE_B, CHOICE_TIE])
        wrong = labels[(true_choice + rng.integers(1, 3, len(item))) % 3]
        accuracy = self.good_accuracy + rng.uniform(-1, 1, n_raters) * self.good_spread
        right = rng.random(len(item)) < accuracy[rater]
        choice = np.where(right, true_choice, wrong)
        coin = rng.integers(0, 2, len(item))
        choice = np.where(rater_kind == "random", coin, choice)
        left_pick = np.where(a_left, CHOICE_A, CHOICE_B)
        choice = np.where(rater_kind == "always_left", left_pick, choice)
        longer_pick = np.where(a_longer[item] > 0, CHOICE_A, CHOICE_B)
        choice = np.where(rater_kind == "always_longer", longer_pick, choice)

        judgments = RaterJudgments(
            rater=rater,
            item=item,
            choice=choice,
            a_shown_left=a_left,
            seconds=rng.lognormal(np.log(25.0), 0.6, len(item)),
            gold_choice=np.where(is_gold[item], true_choice, NO_GOLD),
            a_longer=a_longer[item],
        )
        return judgments, true_choice
