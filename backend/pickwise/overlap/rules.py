"""How many raters a pair gets: the overlap policy and its stopping rules, as pure functions.

A fixed project gives every pair k slots. An adaptive one gives a pair ``min_raters`` slots,
and each time all of a pair's slots are judged, asks the stopping rule whether the pair is
settled; if not, and the pair has fewer than ``max_raters`` votes, exactly one more slot
opens. The rules (docs/analytics.md, "Adaptive overlap"):

* ``leader_share``: settled when one choice leads (more votes than any other) with at least
  ``stop_votes`` votes and a share of at least ``stop_share`` of the pair's votes. The
  choices are the export's: A, B, tie and both bad each count on their own, so the leading
  choice is the label the majority export gives the pair. Defaults (m = 2, s = 0.75): two
  agreeing votes settle a pair; otherwise the first choice to 3 votes (best of five).
* ``posterior``: every vote weighs by its rater's confusion matrix (Dawid-Skene's estimate,
  shrunk toward PRIOR_ACCURACY), and a pair is settled when the leading choice is also the
  most probable of A / no preference / B and its posterior probability reaches
  ``stop_posterior``. The pair starts with no preference among the three labels. With every
  rater at the prior, the default threshold 0.88 decides exactly like the default
  ``leader_share`` (as long as raters do not mix "tie" and "both bad", which the posterior
  reads as one label).

Strength counts in neither rule: a vote is a vote for its choice (strength is how much
better, not how sure; the export's margin carries it).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pickwise.vocabulary import Choice, OverlapMode, StoppingRule

# Labels of the posterior, in Dawid-Skene's order (analytics.labels): a tie and "both bad" both
# state no preference between the two answers.
PREFER_A, NO_PREFERENCE, PREFER_B = range(3)
N_LABELS = 3
LABEL_OF_CHOICE: dict[str, int] = {
    Choice.A: PREFER_A,
    Choice.TIE: NO_PREFERENCE,
    Choice.BOTH_BAD: NO_PREFERENCE,
    Choice.B: PREFER_B,
}

# A rater without an estimate reports the true label with this probability, and each of the
# two other labels with half the rest. An estimate from n judgments is shrunk toward it as if
# PRIOR_STRENGTH judgments per true label had agreed with the prior.
PRIOR_ACCURACY = 0.7
PRIOR_STRENGTH = 5.0
# Shares are ratios of small integers: 3/4 must pass a 0.75 threshold.
TOLERANCE = 1e-9

Confusion = tuple[float, ...]  # 9 values, row-major: P(reported label | true label)


def prior_confusion(accuracy: float = PRIOR_ACCURACY) -> Confusion:
    other = (1.0 - accuracy) / (N_LABELS - 1)
    return tuple(
        accuracy if true == reported else other
        for true in range(N_LABELS)
        for reported in range(N_LABELS)
    )


PRIOR_CONFUSION = prior_confusion()


# A project's columns that make its overlap policy (raters_per_pair aside: k is also a fixed
# project's own setting).
OVERLAP_SETTINGS = (
    "overlap_mode",
    "overlap_min",
    "overlap_max",
    "overlap_rule",
    "overlap_stop_votes",
    "overlap_stop_share",
    "overlap_stop_posterior",
)


class OverlapSettings(Protocol):
    """What a policy is read from (a project)."""

    raters_per_pair: int
    overlap_mode: str
    overlap_min: int
    overlap_max: int
    overlap_rule: str
    overlap_stop_votes: int
    overlap_stop_share: float
    overlap_stop_posterior: float


@dataclass(frozen=True, slots=True)
class Vote:
    choice: str  # canonical: a, b, tie, both_bad
    confusion: Confusion | None = None  # the rater's weight; None: the prior


@dataclass(frozen=True, slots=True)
class OverlapPolicy:
    mode: OverlapMode
    fixed_k: int  # the project's k: a fixed project's raters per pair, an adaptive one's baseline
    min_raters: int
    max_raters: int
    rule: StoppingRule
    stop_votes: int
    stop_share: float
    stop_posterior: float

    @classmethod
    def of(cls, settings: OverlapSettings) -> "OverlapPolicy":
        return cls(
            mode=OverlapMode(settings.overlap_mode),
            fixed_k=settings.raters_per_pair,
            min_raters=settings.overlap_min,
            max_raters=settings.overlap_max,
            rule=StoppingRule(settings.overlap_rule),
            stop_votes=settings.overlap_stop_votes,
            stop_share=settings.overlap_stop_share,
            stop_posterior=settings.overlap_stop_posterior,
        )

    @property
    def adaptive(self) -> bool:
        return self.mode is OverlapMode.ADAPTIVE

    @property
    def weighs_raters(self) -> bool:
        return self.adaptive and self.rule is StoppingRule.POSTERIOR

    @property
    def initial_slots(self) -> int:
        """The slots a new pair gets."""
        return self.min_raters if self.adaptive else self.fixed_k

    @property
    def most_votes(self) -> int:
        """The most votes a pair can get (without an admin asking for more)."""
        return self.max_raters if self.adaptive else self.fixed_k

    def settings(self) -> dict[str, object]:
        """The policy as the manifest and the API record it."""
        if not self.adaptive:
            return {"mode": self.mode.value, "raters_per_pair": self.fixed_k}
        thresholds: dict[str, object] = (
            {"stop_votes": self.stop_votes, "stop_share": self.stop_share}
            if self.rule is StoppingRule.LEADER_SHARE
            else {
                "stop_posterior": self.stop_posterior,
                "prior_accuracy": PRIOR_ACCURACY,
                "prior_strength": PRIOR_STRENGTH,
            }
        )
        return {
            "mode": self.mode.value,
            "min_raters": self.min_raters,
            "max_raters": self.max_raters,
            "rule": self.rule.value,
            **thresholds,
            "fixed_k_for_comparison": self.fixed_k,
        }

    def describe(self) -> str:
        """The policy in words (the dataset card, the settings page)."""
        if not self.adaptive:
            return f"fixed: {self.fixed_k} rater{'s' if self.fixed_k != 1 else ''} per pair"
        if self.rule is StoppingRule.LEADER_SHARE:
            stop = (
                f"the leading choice has at least {self.stop_votes} votes and at least "
                f"{self.stop_share:.0%} of them"
            )
        else:
            stop = (
                "the leading choice's posterior probability, with raters weighed by their "
                f"estimated accuracy, reaches {self.stop_posterior:g}"
            )
        return (
            f"adaptive: {self.min_raters} to {self.max_raters} raters per pair; another rater "
            f"only until {stop}"
        )


def leading_choice(votes: Sequence[Vote]) -> tuple[str, int] | None:
    """The choice with more votes than any other, and its votes; None without one."""
    counts: dict[str, int] = {}
    for vote in votes:
        counts[vote.choice] = counts.get(vote.choice, 0) + 1
    if not counts:
        return None
    most = max(counts.values())
    leaders = [choice for choice, count in counts.items() if count == most]
    return (leaders[0], most) if len(leaders) == 1 else None


def posterior(votes: Sequence[Vote]) -> tuple[float, float, float]:
    """P(true label | votes) over A / no preference / B, from a uniform start."""
    log_joint = [0.0] * N_LABELS
    for vote in votes:
        confusion = vote.confusion or PRIOR_CONFUSION
        reported = LABEL_OF_CHOICE[vote.choice]
        for true in range(N_LABELS):
            log_joint[true] += math.log(confusion[true * N_LABELS + reported])
    highest = max(log_joint)
    weights = [math.exp(value - highest) for value in log_joint]
    total = sum(weights)
    a, none, b = (weight / total for weight in weights)
    return a, none, b


def settles(policy: OverlapPolicy, votes: Sequence[Vote]) -> bool:
    """Whether these votes settle the pair under the policy's stopping rule."""
    leading = leading_choice(votes)
    if leading is None:
        return False
    choice, count = leading
    if policy.rule is StoppingRule.LEADER_SHARE:
        share = count / len(votes)
        return count >= policy.stop_votes and share + TOLERANCE >= policy.stop_share
    probabilities = posterior(votes)
    label = LABEL_OF_CHOICE[choice]
    return (
        probabilities[label] == max(probabilities)
        and probabilities[label] + TOLERANCE >= policy.stop_posterior
    )


def slots_wanted(
    policy: OverlapPolicy, votes: Sequence[Vote], outstanding: int, floor: int = 0
) -> int:
    """How many slots the pair should have, its judged ones (``votes``) included.

    ``outstanding``: its slots not judged yet (open or leased). ``floor``: votes an admin asked
    for on this pair (0 if none); it raises both the minimum and the maximum.

    An adaptive pair is not decided while a slot is outstanding: it keeps them (up to the
    maximum) and is decided once they are in. A pair never loses a judged slot.
    """
    done = len(votes)
    if not policy.adaptive:
        return max(policy.fixed_k, floor, done)
    low = max(policy.min_raters, floor)
    high = max(policy.max_raters, floor)
    if done + outstanding < low:
        wanted = low
    elif outstanding:
        wanted = min(done + outstanding, high)
    elif done >= high or settles(policy, votes):
        wanted = done
    else:
        wanted = done + 1
    return max(wanted, done)
