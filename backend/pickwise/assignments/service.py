"""Handing out pairs: leases on capacity slots, taken with row locks that others skip.

Each non-gold pair has k slots (k = the project's raters per pair). "Next pair" locks one
available slot with FOR UPDATE SKIP LOCKED, so concurrent raters never wait on each other
and never take the same slot. Slots are walked in pair order: pairs already started are
finished before new ones are opened. An expired lease is simply an available slot; the
query that takes it marks the old assignment expired, so no sweeper process is needed.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from pickwise.assignments import repository
from pickwise.assignments.repository import PairContent, content_from_row, pair_content
from pickwise.assignments.standing import ensure_may_rate
from pickwise.core.clock import utcnow
from pickwise.core.metrics import LEASES_EXPIRED, LEASES_GRANTED
from pickwise.models import Assignment, Pair, PairSlot, Project, User
from pickwise.pools.quota import QUOTA_REACHED_SQL, quota_reached

# Which side shows on the left and when a gold pair is mixed in; seedable for tests.
chance = random.Random()


@dataclass(frozen=True)
class Lease:
    """A leased pair and what the rater is shown of it."""

    assignment: Assignment
    content: PairContent


# A pair's slots: the project's k, or more where an admin asked for more votes on it.
_SLOTS_WANTED = "greatest(:k, coalesce(p.votes_wanted, 0))"
_CREATE_SLOTS = text(
    f"""
    INSERT INTO pair_slots (project_id, pair_id, slot_no, state)
    SELECT p.project_id, p.id, s.max_no + g, 'open'
    FROM pairs p
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, coalesce(max(slot_no), 0) AS max_no
        FROM pair_slots WHERE pair_id = p.id
    ) s
    CROSS JOIN LATERAL generate_series(1, {_SLOTS_WANTED} - s.n) g
    WHERE p.project_id = :project_id AND NOT p.is_gold
      AND (CAST(:batch_id AS bigint) IS NULL OR p.batch_id = :batch_id)
      AND (NOT :raised_only OR p.votes_wanted > :k)
    """
)


async def create_slots(
    session: AsyncSession,
    project: Project,
    batch_id: int | None = None,
    *,
    raised_only: bool = False,
) -> int:
    """Give every non-gold pair (of one batch, or of the project; with ``raised_only``, of
    the pairs that want more votes than k) the slots it lacks: k, or its votes wanted."""
    params = {
        "k": project.raters_per_pair,
        "project_id": project.id,
        "batch_id": batch_id,
        "raised_only": raised_only,
    }
    result = await session.execute(_CREATE_SLOTS, params)
    return int(result.rowcount)  # type: ignore[attr-defined]


# The slots a lower k no longer needs, per pair: open ones go before leased ones, and a slot
# that holds a judgment is never dropped (the judgment's foreign key forbids it). They are
# locked in id order, like every writer's slot locks; one whose state changed while waiting
# (it became done) is passed over, and the next round ranks the pair again.
_SURPLUS_SLOTS = text(
    f"""
    WITH ranked AS (
        SELECT s.id, s.pair_id, row_number() OVER (
            PARTITION BY s.pair_id
            ORDER BY (s.state = 'done') DESC, (s.state = 'leased') DESC, s.slot_no
        ) AS rn
        FROM pair_slots s WHERE s.project_id = :project_id
    )
    SELECT s.id FROM pair_slots s
    WHERE s.id IN (
        SELECT r.id FROM ranked r JOIN pairs p ON p.id = r.pair_id
        WHERE r.rn > {_SLOTS_WANTED}
    ) AND s.state <> 'done'
    ORDER BY s.id
    FOR UPDATE OF s
    """
)
_REVOKE_LEASES_OF_SLOTS = text(
    """
    UPDATE assignments SET status = 'revoked', completed_at = :now
    WHERE id IN (
        SELECT id FROM assignments
        WHERE slot_id = ANY(:slot_ids) AND status = 'leased'
        ORDER BY id
        FOR UPDATE
    )
    """
)
_DELETE_SLOTS = text("DELETE FROM pair_slots WHERE id = ANY(:slot_ids)")
_LOCK_PROJECT = text("SELECT id FROM projects WHERE id = :project_id FOR NO KEY UPDATE")
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
    params = {"project_id": project.id, "k": project.raters_per_pair}
    await session.execute(_LOCK_PROJECT, params)
    for _ in range(RESIZE_ROUNDS):
        surplus = list((await session.scalars(_SURPLUS_SLOTS, params)).all())
        if not surplus:
            break
        await session.execute(_REVOKE_LEASES_OF_SLOTS, {"slot_ids": surplus, "now": now})
        await session.execute(_DELETE_SLOTS, {"slot_ids": surplus})
    await create_slots(session, project)


_UNFINISHED_SLOTS = text(
    """
    SELECT id FROM pair_slots
    WHERE pair_id = ANY(:pair_ids) AND state <> 'done'
    ORDER BY id
    FOR UPDATE
    """
)


async def drop_unfinished_slots(
    session: AsyncSession, pair_ids: Sequence[int], now: datetime | None = None
) -> int:
    """The slots of these pairs that hold no judgment go (a pair made gold needs none); a
    lease on one is revoked first, as when k is lowered. The caller holds the project row
    (lock order: assignments.repository). Returns how many slots went."""
    slot_ids = list((await session.scalars(_UNFINISHED_SLOTS, {"pair_ids": list(pair_ids)})).all())
    if slot_ids:
        await session.execute(
            _REVOKE_LEASES_OF_SLOTS, {"slot_ids": slot_ids, "now": now or utcnow()}
        )
        await session.execute(_DELETE_SLOTS, {"slot_ids": slot_ids})
    return len(slot_ids)


# The lock refreshes what the session holds.
_LOCKED_LEASE = (
    select(Assignment)
    .where(Assignment.id == bindparam("assignment_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCKED_SLOT = (
    select(PairSlot)
    .where(PairSlot.id == bindparam("slot_id"))
    .execution_options(populate_existing=True)
)


async def _current_lease(
    session: AsyncSession, project: Project, current: repository.HeldLease, now: datetime
) -> Assignment | None:
    """The rater's lease, continued, or None if it is lost (and then marked so). Locks its
    slot, then itself, in the order every writer uses (assignments.repository)."""
    slot_ids = await repository.lock_slots(
        session, [] if current.slot_id is None else [current.slot_id]
    )
    held = await session.scalar(_LOCKED_LEASE, {"assignment_id": current.assignment_id})
    if held is None or held.status != "leased":
        # Submitted, skipped or revoked by another request meanwhile.
        return None
    if held.is_gold:
        if held.lease_expires_at <= now:
            held.lease_expires_at = now + timedelta(seconds=project.lease_seconds)
        return held
    slot = None
    if held.slot_id is not None and held.slot_id in slot_ids:
        slot = await session.scalar(_LOCKED_SLOT, {"slot_id": held.slot_id})
    if slot is None or slot.assignment_id != held.id or slot.state != "leased":
        # The slot went to someone else after expiry, or k was lowered.
        held.status = "expired" if slot is not None else "revoked"
        held.completed_at = now
        return None
    if held.lease_expires_at <= now:
        # Expired but nobody took it: the same rater simply continues.
        held.lease_expires_at = slot.lease_expires_at = now + timedelta(
            seconds=project.lease_seconds
        )
    return held


async def _take_gold(
    session: AsyncSession, project: Project, rater: User, now: datetime
) -> Assignment | None:
    pair_id = await session.scalar(
        select(Pair.id)
        .where(
            Pair.project_id == project.id,
            Pair.is_gold,
            Pair.status == "active",
            ~select(Assignment.id)
            .where(Assignment.pair_id == Pair.id, Assignment.rater_id == rater.id)
            .exists(),
        )
        .order_by(func.random())
        .limit(1)
    )
    if pair_id is None:
        return None
    return await _new_assignment(session, project, rater, pair_id, None, now, is_gold=True)


# The rater's scan: the available slots of the project in index order (pair, slot), each
# tested on its own. OFFSET 0 keeps the two tests as per-slot index probes (pairs' primary key;
# assignments' (rater_id, pair_id) index) that the planner cannot turn into joins: with stale
# statistics it used to pick a merge join that walked `pairs` from the table's first row and an
# anti-join that rescanned all of the rater's assignments per slot (48 ms per claim instead of
# well under 1), and a generic plan of the prepared statement behaves the same.
_AVAILABLE_SLOTS = """
    FROM pair_slots s
    WHERE s.project_id = :project_id
      AND s.state <> 'done'
      AND (s.state = 'open' OR s.lease_expires_at <= :now)
      AND EXISTS (
          SELECT 1 FROM pairs p WHERE p.id = s.pair_id AND p.status = 'active' OFFSET 0
      )
      AND NOT EXISTS (
          SELECT 1 FROM assignments a
          WHERE a.pair_id = s.pair_id AND a.rater_id = :rater_id
          OFFSET 0
      )
"""


_HAS_REGULAR_WORK = text(
    f"""
    SELECT EXISTS (
        SELECT 1 {_AVAILABLE_SLOTS}
        ORDER BY s.project_id, s.pair_id, s.slot_no
        LIMIT 1
    )
    """
)


async def _has_regular_work(
    session: AsyncSession, project: Project, rater: User, now: datetime
) -> bool:
    found = await session.scalar(
        _HAS_REGULAR_WORK, {"project_id": project.id, "rater_id": rater.id, "now": now}
    )
    return bool(found)


# Claim a slot in one statement: lock the first available slot (skipping slots other raters
# are taking), close the lease it held if that ran out, create the assignment, lease the slot
# to it and read the pair's texts. Returns nothing when no slot is left for this rater, or when
# they came through a rater pool and have given their quota (an init plan, tested once).
_CLAIM_SLOT = text(
    f"""
    WITH slot AS (
        SELECT s.id, s.pair_id, s.state, s.assignment_id
        {_AVAILABLE_SLOTS}
          AND NOT {QUOTA_REACHED_SQL}
        ORDER BY s.project_id, s.pair_id, s.slot_no
        LIMIT 1
        FOR UPDATE OF s SKIP LOCKED
    ), expired AS (
        UPDATE assignments a SET status = 'expired', completed_at = :now
        FROM slot
        WHERE slot.state = 'leased' AND a.id = slot.assignment_id AND a.status = 'leased'
        RETURNING a.id
    ), created AS (
        INSERT INTO assignments (project_id, pair_id, rater_id, slot_id, status, left_side,
                                 is_gold, shown_at, lease_expires_at)
        SELECT :project_id, slot.pair_id, :rater_id, slot.id, 'leased', :left_side,
               false, :now, :expires
        FROM slot
        RETURNING id, pair_id, slot_id
    ), leased AS (
        UPDATE pair_slots s
        SET state = 'leased', assignment_id = created.id, lease_expires_at = :expires
        FROM created
        WHERE s.id = created.slot_id
    )
    SELECT created.id, created.pair_id, created.slot_id, (SELECT count(*) FROM expired),
           p.system, p.turns, ra.id, ra.content, rb.id, rb.content
    FROM created
    JOIN pairs pr ON pr.id = created.pair_id
    JOIN prompts p ON p.id = pr.prompt_id
    JOIN responses ra ON ra.id = pr.response_a_id
    JOIN responses rb ON rb.id = pr.response_b_id
    """
)


async def _take_slot(
    session: AsyncSession, project: Project, rater: User, now: datetime
) -> Lease | None:
    left_side = chance.choice("ab")
    expires = now + timedelta(seconds=project.lease_seconds)
    row = (
        await session.execute(
            _CLAIM_SLOT,
            {
                "project_id": project.id,
                "rater_id": rater.id,
                "now": now,
                "expires": expires,
                "left_side": left_side,
            },
        )
    ).first()
    if row is None:
        return None
    assignment_id, pair_id, slot_id, expired = row[:4]
    if expired:
        LEASES_EXPIRED.inc()
    LEASES_GRANTED.inc()
    assignment = Assignment(
        id=assignment_id,
        project_id=project.id,
        pair_id=pair_id,
        rater_id=rater.id,
        slot_id=slot_id,
        status="leased",
        left_side=left_side,
        is_gold=False,
        shown_at=now,
        lease_expires_at=expires,
        completed_at=None,
        skip_reason=None,
    )
    # The row exists already: the session takes this object as loaded from it, so changes to
    # it are saved as updates and nothing is read back.
    make_transient_to_detached(assignment)
    session.add(assignment)
    return Lease(assignment, content_from_row(pair_id, row[4:]))


async def _new_assignment(
    session: AsyncSession,
    project: Project,
    rater: User,
    pair_id: int,
    slot_id: int | None,
    now: datetime,
    *,
    is_gold: bool = False,
) -> Assignment:
    assignment = Assignment(
        project_id=project.id,
        pair_id=pair_id,
        rater_id=rater.id,
        slot_id=slot_id,
        status="leased",
        left_side=chance.choice("ab"),
        is_gold=is_gold,
        shown_at=now,
        lease_expires_at=now + timedelta(seconds=project.lease_seconds),
    )
    session.add(assignment)
    await session.flush()
    LEASES_GRANTED.inc()
    return assignment


async def next_lease(
    session: AsyncSession,
    project: Project,
    rater: User,
    now: datetime | None = None,
    *,
    new: bool = True,
) -> Lease | None:
    """The rater's current lease, or a new one, with the pair's texts; None when no work is
    left for them (or, with ``new=False``, when they hold no lease: none is made). Study
    participants (rater pools) stop at their quota; nobody else has one."""
    now = now or utcnow()
    await repository.enter_project(session, project.id, rater.id)
    # After the locks: a removal, deactivation or closing that committed meanwhile (and
    # released this rater's leases) is seen here, so no lease follows it.
    standing, current = await repository.standing_and_lease(session, project.id, rater.id)
    ensure_may_rate(standing)
    held = None if current is None else await _current_lease(session, project, current, now)
    if held is not None:
        return Lease(held, await pair_content(session, held.pair_id))
    if not new:
        return None
    wants_gold = project.gold_rate > 0 and chance.random() < project.gold_rate
    if wants_gold:
        if await quota_reached(session, project, rater):
            return None
        # Gold pairs check real work, so they are only mixed in while real work remains.
        if await _has_regular_work(session, project, rater, now):
            gold = await _take_gold(session, project, rater, now)
            if gold is not None:
                return Lease(gold, await pair_content(session, gold.pair_id))
    # The claim itself checks the quota: one statement fewer on the hot path.
    return await _take_slot(session, project, rater, now)


async def next_assignment(
    session: AsyncSession, project: Project, rater: User, now: datetime | None = None
) -> Assignment | None:
    """`next_lease` for callers that need only the assignment (scripts, tests)."""
    lease = await next_lease(session, project, rater, now)
    return None if lease is None else lease.assignment


async def project_progress(session: AsyncSession, project_id: int) -> dict[str, int]:
    """Pairs done (all slots judged), in progress (some), open (none), and flagged."""
    row = (
        await session.execute(
            text(
                """
                WITH s AS (
                  SELECT pair_id,
                         count(*) AS total,
                         count(*) FILTER (WHERE state = 'done') AS done,
                         count(*) FILTER (WHERE state = 'leased') AS leased
                  FROM pair_slots WHERE project_id = :project_id
                  GROUP BY pair_id
                )
                SELECT
                  count(*) FILTER (WHERE p.status = 'active' AND s.done = s.total),
                  count(*) FILTER (WHERE p.status = 'active' AND s.done < s.total
                                   AND (s.done > 0 OR s.leased > 0)),
                  count(*) FILTER (WHERE p.status = 'active' AND s.done = 0 AND s.leased = 0),
                  count(*) FILTER (WHERE p.status = 'flagged'),
                  coalesce(sum(s.total - s.done) FILTER (WHERE p.status = 'active'), 0)
                FROM pairs p
                JOIN s ON s.pair_id = p.id
                WHERE p.project_id = :project_id
                """
            ),
            {"project_id": project_id},
        )
    ).one()
    return {
        "pairs_done": row[0],
        "pairs_in_progress": row[1],
        "pairs_open": row[2],
        "pairs_flagged": row[3],
        "judgments_needed": int(row[4]),
    }


async def judgments_needed(session: AsyncSession, project_id: int) -> int:
    """Slots not yet judged on pairs in the queue: cheap, from the partial slot index."""
    needed = await session.scalar(
        text(
            """
            SELECT count(*) FROM pair_slots s JOIN pairs p ON p.id = s.pair_id
            WHERE s.project_id = :project_id AND s.state <> 'done' AND p.status = 'active'
            """
        ),
        {"project_id": project_id},
    )
    return int(needed or 0)


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
