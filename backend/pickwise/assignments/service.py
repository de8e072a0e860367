"""Handing out pairs: leases on capacity slots, taken with row locks that others skip.

Each non-gold pair has k slots (k = the project's raters per pair). "Next pair" locks one
available slot with FOR UPDATE SKIP LOCKED, so concurrent raters never wait on each other
and never take the same slot. Slots are walked in queue order (assignments.repository, "the
queue"): pairs already started are finished before new ones are opened, new ones open in the
project's pair order, and a rater is not given two pairs of one prompt in a row while other
work is open. An expired lease is simply an available slot; the query that takes it marks the
old assignment expired, so no sweeper process is needed.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import repository
from pickwise.assignments.repository import PairContent, pair_content
from pickwise.assignments.schemas import NoWorkLeft
from pickwise.assignments.slots_service import create_slots, queue_rules
from pickwise.assignments.standing import ensure_may_rate
from pickwise.core.clock import utcnow
from pickwise.core.json_body import json_datetime
from pickwise.core.metrics import LEASES_EXPIRED, LEASES_GRANTED
from pickwise.models import Assignment, Project, User
from pickwise.pools.quota import quota_reached
from pickwise.vocabulary import AssignmentStatus, CanonicalSide, ShownSide, SlotState

# Which side shows on the left and when a gold pair is mixed in; seedable for tests.
chance = random.Random()


@dataclass(frozen=True)
class Lease:
    """A pair leased to a rater, and what the rater is shown of it."""

    assignment_id: int
    pair_id: int
    left_side: CanonicalSide  # the response shown on the left
    is_gold: bool
    expires_at: datetime
    content: PairContent

    @classmethod
    def of(cls, assignment: Assignment, content: PairContent) -> "Lease":
        return cls(
            assignment.id,
            assignment.pair_id,
            CanonicalSide(assignment.left_side),
            assignment.is_gold,
            assignment.lease_expires_at,
            content,
        )


def shown(lease: Lease) -> dict[str, Any]:
    """What the rater is shown of a lease, the texts in the lease's left/right order: a
    `NextPair`'s JSON, built straight from the values (core.json_body)."""
    content = lease.content
    left, right = repository.shown_sides(content, lease.left_side)
    return {
        "assignment_id": lease.assignment_id,
        "pair_id": lease.pair_id,
        "lease_expires_at": json_datetime(lease.expires_at),
        "system": content.prompt.system,
        "turns": [
            {"role": turn["role"], "content": turn["content"]} for turn in content.prompt.turns
        ],
        "left": {"side": ShownSide.LEFT.value, "content": left.content},
        "right": {"side": ShownSide.RIGHT.value, "content": right.content},
    }


_NO_WORK_LEFT = NoWorkLeft().model_dump(mode="json")


def no_work_left() -> dict[str, Any]:
    """A `NoWorkLeft`'s JSON, in place of a lease."""
    return dict(_NO_WORK_LEFT)


async def reorder_queue(session: AsyncSession, project: Project) -> None:
    """After the pair order (or the seed) changed: the pairs not yet started are placed again;
    started ones stay first. Lock order: the project row, then the slots in id order."""
    await repository.lock_project(session, project.id)
    await repository.reorder_queue(session, project.id, queue_rules(project))


# Each round drops what the last one could not; a round finds nothing left unless raters
# finished judging, meanwhile, slots it meant to drop.
RESIZE_ROUNDS = 10


async def resize_slots(
    session: AsyncSession, project: Project, now: datetime | None = None
) -> None:
    """After k changed: add slots, or drop the ones no longer needed (a pair keeps the votes
    an admin asked for beyond k).

    Lock order (assignments.repository): the project row (one resize at a time), the surplus
    slots in id order, then the assignments leasing them, which are revoked: their raters get
    a clear 409 on submit. Only then are the slots deleted (the foreign key clears the
    assignments' slot ids, rows this transaction already holds).
    """
    now = now or utcnow()
    await repository.lock_project(session, project.id)
    for _ in range(RESIZE_ROUNDS):
        surplus = await repository.lock_surplus_slots(session, project.id, project.raters_per_pair)
        if not surplus:
            break
        await repository.drop_slots(session, surplus, now)
    await create_slots(session, project)


async def drop_unfinished_slots(
    session: AsyncSession, pair_ids: Sequence[int], now: datetime | None = None
) -> int:
    """The slots of these pairs that hold no judgment go (a pair made gold needs none); a
    lease on one is revoked first, as when k is lowered. The caller holds the project row
    (lock order: assignments.repository). Returns how many slots went."""
    slot_ids = await repository.lock_unfinished_slots(session, pair_ids)
    if slot_ids:
        await repository.drop_slots(session, slot_ids, now or utcnow())
    return len(slot_ids)


async def _current_lease(
    session: AsyncSession, project: Project, current: repository.HeldLease, now: datetime
) -> Assignment | None:
    """The rater's lease, continued, or None if it is lost (and then marked so). Locks its
    slot, then itself, in the order every writer uses (assignments.repository)."""
    slot_ids = await repository.lock_slots(
        session, [] if current.slot_id is None else [current.slot_id]
    )
    held = await repository.lock_lease(session, current.assignment_id)
    if held is None or held.status != AssignmentStatus.LEASED:
        # Submitted, skipped or revoked by another request meanwhile.
        return None
    if held.is_gold:
        if held.lease_expires_at <= now:
            held.lease_expires_at = now + timedelta(seconds=project.lease_seconds)
        return held
    slot = None
    if held.slot_id is not None and held.slot_id in slot_ids:
        slot = await repository.slot(session, held.slot_id)
    if slot is None or slot.assignment_id != held.id or slot.state != SlotState.LEASED:
        # The slot went to someone else after expiry, or k was lowered.
        held.status = AssignmentStatus.EXPIRED if slot is not None else AssignmentStatus.REVOKED
        held.completed_at = now
        return None
    if held.lease_expires_at <= now:
        # Expired but nobody took it: the same rater simply continues.
        held.lease_expires_at = slot.lease_expires_at = now + timedelta(
            seconds=project.lease_seconds
        )
    return held


def _side_shown_left() -> CanonicalSide:
    return chance.choice((CanonicalSide.A, CanonicalSide.B))


async def _take_gold(
    session: AsyncSession, project: Project, rater: User, now: datetime
) -> Lease | None:
    pair_id = await repository.random_gold_pair(session, project.id, rater.id)
    if pair_id is None:
        return None
    assignment = await repository.add_lease(
        session,
        project_id=project.id,
        pair_id=pair_id,
        rater_id=rater.id,
        left_side=_side_shown_left(),
        now=now,
        expires=now + timedelta(seconds=project.lease_seconds),
    )
    LEASES_GRANTED.inc()
    return Lease.of(assignment, await pair_content(session, pair_id))


def _lease_of_claim(claimed: repository.ClaimedSlot, claim: repository.ClaimTerms) -> Lease:
    if claimed.took_expired_lease:
        LEASES_EXPIRED.inc()
    LEASES_GRANTED.inc()
    return Lease(
        claimed.assignment_id,
        claimed.pair_id,
        CanonicalSide(claim.left_side),
        False,
        claim.expires,
        claimed.content,
    )


def _claim_terms(
    project: Project, now: datetime, assignment_id: int | None = None
) -> repository.ClaimTerms:
    expires = now + timedelta(seconds=project.lease_seconds)
    return repository.ClaimTerms(_side_shown_left(), now, expires, assignment_id)


async def _take_slot(
    session: AsyncSession, project: Project, rater: User, now: datetime
) -> Lease | None:
    claim = _claim_terms(project, now)
    # A lease found lost was just closed in the session: the claim, which makes nothing for
    # a rater who holds a lease, must see that.
    await session.flush()
    claimed = await repository.claim_slot(
        session, project_id=project.id, rater_id=rater.id, claim=claim
    )
    return None if claimed is None else _lease_of_claim(claimed, claim)


async def next_lease(
    session: AsyncSession,
    project: Project,
    rater: User,
    now: datetime | None = None,
    *,
    new: bool = True,
    reserved_id: int | None = None,
) -> Lease | None:
    """The rater's current lease, or a new one, with the pair's texts; None when no work is
    left for them (or, with ``new=False``, when they hold no lease: none is made). Study
    participants (rater pools) stop at their quota; nobody else has one. ``reserved_id``:
    an assignment id taken in the rater's answer just committed, for a new regular lease
    (which then commits without waiting for the WAL flush: assignments.repository)."""
    now = now or utcnow()
    wants_gold = new and project.gold_rate > 0 and chance.random() < project.gold_rate
    # The usual case, a regular pair, is claimed in the round trip that takes the locks and
    # reads the standing; the claim makes nothing if the rater may not rate or holds a lease.
    claim = _claim_terms(project, now, reserved_id) if new and not wants_gold else None
    # After an answer (`reserved_id`) the rater holds no lease, but in a race (a second
    # tab), so the usual claim's COMMIT goes out with it: one round trip fewer per judgment.
    # A refusal or no work left has nothing to keep. A held lease (the claim made nothing)
    # needs its locks while it is continued: all is done again in a transaction of its own.
    commit = claim is not None and reserved_id is not None
    entered = await repository.enter_and_claim(session, project.id, rater.id, claim, commit=commit)
    if entered.committed and entered.held is not None:
        entered = await repository.enter_and_claim(session, project.id, rater.id, claim)
    # Read after the locks: a removal, deactivation or closing that committed meanwhile (and
    # released this rater's leases) is seen here, so no lease follows it.
    ensure_may_rate(entered.standing)
    current = entered.held
    held = None if current is None else await _current_lease(session, project, current, now)
    if held is not None:
        return Lease.of(held, await pair_content(session, held.pair_id))
    if not new:
        return None
    if claim is not None and current is None:
        return None if entered.claimed is None else _lease_of_claim(entered.claimed, claim)
    if wants_gold:
        if await quota_reached(session, project, rater):
            return None
        # Gold pairs check real work, so they are only mixed in while real work remains.
        if await repository.has_open_slot(session, project.id, rater.id, now):
            gold = await _take_gold(session, project, rater, now)
            if gold is not None:
                return gold
    # The claim itself checks the quota: one statement fewer on the hot path.
    return await _take_slot(session, project, rater, now)


async def end_leases(
    session: AsyncSession,
    project_ids: Sequence[int],
    *,
    rater_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """After a member was removed, an account deactivated or a project closed (in this
    transaction): their open leases end now and the slots go back to the pool.

    The projects' gates stay closed until the transaction commits, so a "next pair" that was
    under way finishes first (and its lease is ended here), and one that comes later sees the
    change and makes no lease. Returns how many leases ended.
    """
    now = now or utcnow()
    await repository.close_gates(session, project_ids)
    return sum(
        [
            await repository.release_leases(session, now, project_id=project_id, rater_id=rater_id)
            for project_id in sorted(set(project_ids))
        ]
    )
