"""Adaptive overlap's decisions, made inside the transaction that changes what they depend on
(a vote stored or changed, more votes asked for, the policy changed): no sweeper.

When exactly one more slot opens, and why the decision is race-free:

* A submit on an adaptive pair locks the pair row once its judgment is in (lock 7, after its
  slot and assignment), then reads the pair's slots. Two submits on one pair decide one after
  the other: the second reads after the first committed, so exactly one of them sees every
  slot judged, and only that one asks the rule. Under the counted rule the read, the rule and
  the new slot are one statement that Postgres runs right after the store, in the store's
  round trip (decision_with_vote); under the posterior rule, after_vote does it in Python.
* The rule is asked only when no slot of the pair is leased: a vote in flight is waited for
  (an expired lease too, until it is taken over or submitted late). A skip gives the slot back
  and decides nothing; the next rater's vote on it does.
* A change of policy closes the project's gate (lock 1, exclusive): no lease is made and no
  vote stored meanwhile, and every pair with a slot not judged yet is decided again under the
  new policy. Settled pairs keep their votes.

Gold pairs have no slots and are never decided: every rater may see them, as before.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import repository as assignments_repository
from pickwise.core.clock import utcnow
from pickwise.core.db import DriverSql
from pickwise.models import Project
from pickwise.overlap import repository
from pickwise.overlap.progress import OverlapCost, PairCount, overlap_cost
from pickwise.overlap.repository import PairState, RaterWeightRow
from pickwise.overlap.rules import OverlapPolicy, slots_wanted
from pickwise.vocabulary import PairStatus, StoppingRule


def policy_of(project: Project) -> OverlapPolicy:
    return OverlapPolicy.of(project)


def decision_with_vote(
    project: Project, pair_id: int, assignment_id: int
) -> tuple[DriverSql, dict[str, Any]] | None:
    """Under the counted rule (leader_share), the decision of the assignment's vote on an
    adaptive project's pair as a statement for the submit to send in the round trip that
    stores the vote, after it (judgments.repository.store_judgment's `then`): Postgres reads
    the pair, asks the rule and opens the slot it wants, as after_vote would, without a round
    trip of its own (repository.decision_by_counts). None under the posterior rule: the
    submit then calls after_vote once the vote is in."""
    policy = policy_of(project)
    if policy.rule is not StoppingRule.LEADER_SHARE:
        return None
    return repository.decision_by_counts(policy, project.id, pair_id, assignment_id)


async def after_vote(session: AsyncSession, project: Project, pair_id: int) -> int:
    """Once a vote is stored on a pair of an adaptive project, with the pair row locked (the
    submit's store_judgment(lock_pair=True)): one more slot if the rule wants more. Returns
    how many slots opened (0 or 1)."""
    state = await repository.pair_state(session, pair_id)
    if state is None or state.status == PairStatus.REMOVED:
        return 0
    wanted = slots_wanted(
        policy_of(project), state.votes, len(state.leased_slots), state.votes_wanted
    )
    missing = wanted - state.slots
    if missing == 1:  # the rule's "one more" (the usual case: a statement of its own)
        await repository.add_slot(session, project.id, state)
    elif missing > 1:  # below the minimum (a pair of an earlier policy)
        await repository.add_slots(session, project.id, [(state, missing)])
    return max(missing, 0)


async def reconsider_pair(
    session: AsyncSession, project: Project, pair_id: int, *, floor: int = 0
) -> int:
    """Runs the rule again on one pair whose votes changed outside a submit (a rater changed
    or withdrew a vote: judgments.changes) or that should get more votes (``floor``, and the
    pair's own `votes_wanted`, set by the review's "request votes": the votes the pair gets
    at least; they raise the maximum too). Opens the slots the rule wants, or drops open
    slots it no longer wants; a leased slot is left to its rater. Returns the change in the
    pair's slots (+ opened, − dropped).

    Locks: the project's gate (shared), the pair's slots in id order, then the pair row. The
    caller may already hold the gate and the pair's slots (taken in that order), but no slot
    of another pair.
    """
    await assignments_repository.pass_gate(session, project.id)
    await repository.lock_pair_and_slots(session, pair_id)
    state = await repository.pair_state(session, pair_id)
    if state is None or state.status == PairStatus.REMOVED:
        return 0
    floor = max(floor, state.votes_wanted)
    wanted = slots_wanted(policy_of(project), state.votes, len(state.leased_slots), floor)
    if wanted > state.slots:
        await repository.add_slots(session, project.id, [(state, wanted - state.slots)])
    elif wanted < state.slots:
        droppable = state.open_slots[: state.slots - wanted]
        await assignments_repository.drop_slots(session, droppable, utcnow())
        return -len(droppable)
    return wanted - state.slots


async def apply_policy(session: AsyncSession, project: Project, now: datetime | None = None) -> int:
    """After the project's overlap settings changed (in this transaction): every pair with a
    slot not judged yet gets the slots the new policy wants; settled pairs keep theirs.

    Locks: the project's gate (exclusive: no lease is made or answered until this commits),
    the project row, then the slots to drop in id order and the leases on them (revoked, as
    when k is lowered: a lease beyond the new maximum). Returns how many slots changed.
    """
    now = now or utcnow()
    await assignments_repository.close_gates(session, [project.id])
    await assignments_repository.lock_project(session, project.id)
    policy = policy_of(project)
    additions: list[tuple[PairState, int]] = []
    surplus: list[int] = []
    for state in await repository.open_pair_states(session, project.id):
        wanted = slots_wanted(policy, state.votes, len(state.leased_slots), state.votes_wanted)
        if wanted > state.slots:
            additions.append((state, wanted - state.slots))
        elif wanted < state.slots:
            surplus += (state.open_slots + state.leased_slots)[: state.slots - wanted]
    if surplus:
        locked = await assignments_repository.lock_slots(session, sorted(surplus))
        await assignments_repository.drop_slots(session, locked, now)
    await repository.add_slots(session, project.id, additions)
    return len(surplus) + sum(count for _, count in additions)


async def store_weights(
    session: AsyncSession, project_id: int, rows: Sequence[RaterWeightRow], computed_at: datetime
) -> None:
    """The rater weights the posterior rule reads, as just computed by the analytics."""
    await repository.replace_weights(session, project_id, rows, computed_at)


def cost(project: Project, histogram: Sequence[assignments_repository.SlotCount]) -> OverlapCost:
    """Votes spent and still needed, pairs settled early or at the maximum, votes saved."""
    counts = [
        PairCount(count.done, count.outstanding, count.pairs, in_queue=not count.flagged)
        for count in histogram
    ]
    return overlap_cost(policy_of(project), counts)
