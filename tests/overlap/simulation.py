"""Seeded crowds with a known truth, rated under fixed and adaptive overlap: votes per pair and
how often the exported majority label is right (docs/analytics.md, "Adaptive overlap").

The crowd: raters whose accuracies are spread evenly over 0.55-0.95, plus 10% random raters
(A or B at 50/50). Every pair has a true winner, A or B; a rater picks it with their accuracy
and the other answer otherwise (no ties). Each pair meets raters in a random order without
repeats, the same for every policy, and a rater's vote on a pair is drawn once: policies
differ only in how many of the pair's raters they ask (common random numbers, so their
differences are not noise). Alongside, each rater answers gold pairs on one vote in ten, as
a project with gold_rate 0.1 has them do.

The rules, the weights and the label are the app's own: `overlap.rules.slots_wanted` asks
for votes one at a time, `overlap.weights.vote_weights` over `dawid_skene` (gold items
fixed, as the analytics fit it) gives the rater weights, recomputed every `refresh_every`
votes (the analytics are computed when someone looks), and the export's
`aggregate_pair` (majority) gives the label; a pair it drops counts as wrong.

`python -m tests.overlap.simulation` prints the table that docs/analytics.md quotes.
"""

from dataclasses import dataclass, field

import numpy as np

from pickwise.analytics.dawid_skene import dawid_skene
from pickwise.analytics.labels import NO_GOLD, PREFER_A, PREFER_B
from pickwise.batches.parsing.records import Message
from pickwise.exports.dataset.aggregation import AggregationOptions, aggregate_pair
from pickwise.exports.dataset.records import PairVotes, PromptRecord
from pickwise.overlap.rules import OverlapPolicy, Vote, slots_wanted
from pickwise.overlap.weights import vote_weights
from pickwise.vocabulary import Choice, OverlapMode, StoppingRule, TurnRole

LABEL_OF = {Choice.A: PREFER_A, Choice.B: PREFER_B}
PROMPT = PromptRecord(1, "p", None, (Message(TurnRole.USER, "Which is better?"),))


@dataclass(frozen=True)
class Crowd:
    raters: int = 40
    random_share: float = 0.1
    lowest_accuracy: float = 0.55
    highest_accuracy: float = 0.95
    pairs: int = 1500
    gold_share: float = 0.1  # gold votes per regular vote
    refresh_every: int = 300  # regular votes between two computations of the weights

    def accuracies(self) -> np.ndarray:
        random_raters = round(self.raters * self.random_share)
        spread = np.linspace(
            self.lowest_accuracy, self.highest_accuracy, self.raters - random_raters
        )
        return np.concatenate([spread, np.full(random_raters, 0.5)])


@dataclass(frozen=True)
class World:
    """What the crowd would answer: per pair, its truth, its raters in order, their votes."""

    truth: np.ndarray  # pairs: Choice.A or Choice.B
    order: np.ndarray  # pairs × 5: rater indices, distinct per pair
    votes: np.ndarray  # pairs × 5: each of those raters' choice
    accuracy: np.ndarray  # raters


def world(crowd: Crowd, seed: int, most: int = 5) -> World:
    rng = np.random.default_rng(seed)
    accuracy = crowd.accuracies()
    truth = rng.choice(np.array([Choice.A, Choice.B], dtype=object), crowd.pairs)
    order = np.array([rng.permutation(crowd.raters)[:most] for _ in range(crowd.pairs)])
    right = rng.random((crowd.pairs, most)) < accuracy[order]
    other = np.where(truth == Choice.A, Choice.B, Choice.A)
    votes = np.where(right, truth[:, None], other[:, None])
    return World(truth, order, votes, accuracy)


@dataclass
class Outcome:
    votes: int = 0
    right: int = 0
    pairs: int = 0
    split_at_two: int = 0  # pairs whose first two votes differ
    votes_per_pair: dict[int, int] = field(default_factory=dict)
    labels: list[str | None] = field(default_factory=list)

    @property
    def votes_per_pair_mean(self) -> float:
        return self.votes / self.pairs

    @property
    def accuracy(self) -> float:
        return self.right / self.pairs


class Weights:
    """The analytics' rater weights as the project would hold them: recomputed from the votes
    and gold answers so far, every `refresh_every` regular votes."""

    def __init__(self, crowd: Crowd, accuracy: np.ndarray, seed: int) -> None:
        self.crowd, self.accuracy = crowd, accuracy
        self.rng = np.random.default_rng(seed + 1)
        self.rater: list[int] = []
        self.item: list[int] = []
        self.label: list[int] = []
        self.known: list[int] = []
        self.since = 0
        self.gold_items = 0
        self.current: list[tuple[float, ...] | None] = [None] * crowd.raters

    def record(self, pair: int, rater: int, choice: str) -> None:
        self._add(pair, rater, LABEL_OF[choice], NO_GOLD)
        if self.rng.random() < self.crowd.gold_share:
            truth = PREFER_A if self.rng.random() < 0.5 else PREFER_B
            right = self.rng.random() < self.accuracy[rater]
            self.gold_items += 1
            answer = truth if right else PREFER_A + PREFER_B - truth
            self._add(-self.gold_items, rater, answer, truth)
        self.since += 1
        if self.since >= self.crowd.refresh_every:
            self.refresh()

    def _add(self, item: int, rater: int, label: int, known: int) -> None:
        self.rater.append(rater)
        self.item.append(item)
        self.label.append(label)
        self.known.append(known)

    def refresh(self) -> None:
        self.since = 0
        fit = dawid_skene(
            self.rater, self.item, self.label, self.crowd.raters, known_label=self.known
        )
        weights = vote_weights(self.rater, self.item, self.label, fit, self.crowd.raters)
        self.current = [tuple(float(value) for value in row) for row in weights.confusion]


def majority_label(choices: list[str]) -> str | None:
    pair = PairVotes(
        pair_id=1,
        prompt=PROMPT,
        response_a="A",
        response_b="B",
        model_a="x",
        model_b="y",
        judgment_ids=tuple(range(1, len(choices) + 1)),
        choices=tuple(Choice(choice) for choice in choices),
        strengths=(None,) * len(choices),
        strength_scale=(),
    )
    outcome = aggregate_pair(pair, AggregationOptions())
    return outcome.kept[0].winner if outcome.kept else None


def run(policy: OverlapPolicy, crowd: Crowd, seed: int) -> Outcome:
    the_world = world(crowd, seed)
    weights = Weights(crowd, the_world.accuracy, seed) if policy.weighs_raters else None
    outcome = Outcome()
    for pair in range(crowd.pairs):
        taken: list[Vote] = []
        while len(taken) < slots_wanted(policy, taken, 0):
            position = len(taken)
            rater, choice = int(the_world.order[pair, position]), the_world.votes[pair, position]
            confusion = weights.current[rater] if weights is not None else None
            taken.append(Vote(choice, confusion))
            if weights is not None:
                weights.record(pair, rater, choice)
        choices = [vote.choice for vote in taken]
        label = majority_label(choices)
        outcome.labels.append(label)
        outcome.pairs += 1
        outcome.votes += len(taken)
        outcome.right += label == the_world.truth[pair]
        outcome.split_at_two += the_world.votes[pair, 0] != the_world.votes[pair, 1]
        outcome.votes_per_pair[len(taken)] = outcome.votes_per_pair.get(len(taken), 0) + 1
    return outcome


def fixed(k: int) -> OverlapPolicy:
    return OverlapPolicy(OverlapMode.FIXED, k, 2, 5, StoppingRule.LEADER_SHARE, 2, 0.75, 0.88)


def adaptive(
    rule: StoppingRule = StoppingRule.LEADER_SHARE,
    *,
    stop_share: float = 0.75,
    stop_posterior: float = 0.88,
) -> OverlapPolicy:
    return OverlapPolicy(OverlapMode.ADAPTIVE, 3, 2, 5, rule, 2, stop_share, stop_posterior)


POLICIES = {
    "fixed k = 3": fixed(3),
    "fixed k = 5": fixed(5),
    "adaptive 2..5, votes (m 2, s 0.75: default)": adaptive(),
    "adaptive 2..5, votes (m 2, s 0.6)": adaptive(stop_share=0.6),
    "adaptive 2..5, weighted (0.88: default)": adaptive(StoppingRule.POSTERIOR),
    "adaptive 2..5, weighted (0.8)": adaptive(StoppingRule.POSTERIOR, stop_posterior=0.8),
    "adaptive 2..5, weighted (0.92)": adaptive(StoppingRule.POSTERIOR, stop_posterior=0.92),
}
SEEDS = (1, 2, 3, 4, 5, 6)


def pooled(policy: OverlapPolicy, crowd: Crowd, seeds: tuple[int, ...] = SEEDS) -> Outcome:
    total = Outcome()
    for seed in seeds:
        one = run(policy, crowd, seed)
        total.votes += one.votes
        total.right += one.right
        total.pairs += one.pairs
        total.split_at_two += one.split_at_two
        total.labels += one.labels
        for votes, pairs in one.votes_per_pair.items():
            total.votes_per_pair[votes] = total.votes_per_pair.get(votes, 0) + pairs
    return total


def main() -> None:
    crowd = Crowd()
    results = {name: pooled(policy, crowd) for name, policy in POLICIES.items()}
    three, five = results["fixed k = 3"], results["fixed k = 5"]
    print(f"{crowd}, seeds {SEEDS}: {three.pairs} pairs per policy\n")
    print("| policy | votes per pair | vs k = 3 | vs k = 5 | accuracy | votes per pair, by count |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, outcome in results.items():
        shares = ", ".join(
            f"{votes}: {pairs / outcome.pairs:.0%}"
            for votes, pairs in sorted(outcome.votes_per_pair.items())
        )
        print(
            f"| {name} | {outcome.votes_per_pair_mean:.2f} "
            f"| {outcome.votes / three.votes - 1:+.0%} | {outcome.votes / five.votes:.0%} "
            f"| {outcome.accuracy:.3f} | {shares} |"
        )
    print(f"\nfirst two votes differ on {three.split_at_two / three.pairs:.1%} of the pairs")


if __name__ == "__main__":
    main()
