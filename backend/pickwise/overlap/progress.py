"""What overlap costs so far and is expected to cost: votes spent, pairs settled early or at the
maximum, votes still needed, votes saved against the project's fixed k.

A settled pair is a regular pair in the queue whose slots are all judged: in an adaptive
project the decision runs in the transaction that judges the last slot, so such a pair is
one the rule settled (or that reached the maximum).

Votes still needed are an estimate: an open pair that will hold n votes once its current
slots are judged is expected to end with the mean votes of the settled pairs that reached
at least n (n itself while no settled pair did). In a fixed project that is exactly its
slots still open.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from pickwise.overlap.rules import OverlapPolicy


@dataclass(frozen=True)
class PairCount:
    """How many pairs have ``done`` judged slots and ``outstanding`` slots not judged yet."""

    done: int
    outstanding: int
    pairs: int
    in_queue: bool = True  # False: flagged (out of the queue until an admin decides)


@dataclass(frozen=True)
class OverlapCost:
    votes_spent: int  # judged slots of regular pairs (in the queue or flagged)
    pairs_settled: int
    pairs_settled_early: int  # settled with fewer votes than the maximum
    pairs_at_max: int
    open_slots: int  # slots not judged yet on pairs in the queue
    votes_still_needed: float  # estimate, open slots included
    votes_saved: int  # on settled pairs: k per pair minus the votes they took
    votes_saved_projected: float  # k per pair in the queue minus votes spent and still needed
    votes_per_pair: dict[int, int]  # settled pairs by their votes


def overlap_cost(policy: OverlapPolicy, counts: Sequence[PairCount]) -> OverlapCost:
    queued = [count for count in counts if count.in_queue]
    settled = [count for count in queued if count.outstanding == 0]
    per_pair: dict[int, int] = {}
    for count in settled:
        per_pair[count.done] = per_pair.get(count.done, 0) + count.pairs
    needed = sum(
        count.pairs * (_expected_votes(per_pair, count.done + count.outstanding) - count.done)
        for count in queued
        if count.outstanding
    )
    k = policy.fixed_k
    votes_in_queue = sum(count.done * count.pairs for count in queued)
    return OverlapCost(
        votes_spent=sum(count.done * count.pairs for count in counts),
        pairs_settled=sum(count.pairs for count in settled),
        pairs_settled_early=sum(c.pairs for c in settled if c.done < policy.most_votes),
        pairs_at_max=sum(c.pairs for c in settled if c.done >= policy.most_votes),
        open_slots=sum(count.outstanding * count.pairs for count in queued),
        votes_still_needed=needed,
        votes_saved=sum((k - count.done) * count.pairs for count in settled),
        votes_saved_projected=k * sum(c.pairs for c in queued) - votes_in_queue - needed,
        votes_per_pair=dict(sorted(per_pair.items())),
    )


def _expected_votes(settled_per_pair: dict[int, int], at_least: int) -> float:
    """Mean votes of the settled pairs with at least ``at_least`` votes (or ``at_least``)."""
    reached = {votes: pairs for votes, pairs in settled_per_pair.items() if votes >= at_least}
    pairs = sum(reached.values())
    if not pairs:
        return float(at_least)
    return sum(votes * count for votes, count in reached.items()) / pairs
