"""What adaptive overlap promises about a pair's votes, checked on the votes a run stored.

A pair's votes, in judgment id order, must be exactly what the rule lets through: the rule
said "more" at every count from the minimum up to one below the last, and "settled" (or the
maximum was reached) at the last. A vote that opened after a decision always has a higher
id than the votes that decision saw (its slot did not exist before), so the order is sound.
"""

from collections.abc import Iterable, Mapping, Sequence

from pickwise.overlap.rules import OverlapPolicy, Vote, settles


def rule_problems(
    policy: OverlapPolicy,
    votes_by_pair: Mapping[int, Sequence[Vote]],
    *,
    open_pairs: Iterable[int] = (),
) -> list[str]:
    """Every pair whose votes break the rule. ``open_pairs``: pairs that still have a slot
    not judged (their last count is not final)."""
    still_open = set(open_pairs)
    problems = []
    for pair_id, votes in votes_by_pair.items():
        for count in range(policy.min_raters, len(votes)):
            if count >= policy.max_raters or settles(policy, votes[:count]):
                problems.append(
                    f"pair {pair_id}: {len(votes)} votes, but {count} settled it "
                    f"({[vote.choice for vote in votes]})"
                )
                break
        final = len(votes)
        if pair_id in still_open:
            continue
        if final < policy.min_raters:
            problems.append(f"pair {pair_id}: left with {final} votes, below the minimum")
        elif final < policy.max_raters and not settles(policy, votes):
            problems.append(
                f"pair {pair_id}: left with {final} unsettled votes "
                f"({[vote.choice for vote in votes]})"
            )
    return problems
