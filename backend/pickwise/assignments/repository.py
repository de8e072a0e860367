from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pickwise.assignments.slots_repository import NEW_PAIR_ORDER, ROUNDS, SLOTS_WANTED, QueueRules
from pickwise.assignments.standing import Standing
from pickwise.core.db import DriverSql, run_pipelined, transaction_open
from pickwise.models import Assignment, Judgment, Pair, PairSlot, Prompt, Response
from pickwise.pools.quota import QUOTA_REACHED_SQL
from pickwise.vocabulary import (
    AccountRole,
    AssignmentStatus,
    CanonicalSide,
    PairStatus,
    SlotState,
)


@dataclass(frozen=True)
class PromptText:
    system: str | None
    turns: list[Any]


@dataclass(frozen=True)
class ResponseText:
    id: int
    content: str


@dataclass(frozen=True)
class PairContent:
    """What a rater is shown of a pair: texts only (no model names, no gold status)."""

    pair_id: int
    prompt: PromptText
    response_a: ResponseText
    response_b: ResponseText


_response_a, _response_b = aliased(Response), aliased(Response)
# Built once: this runs on every "next pair".
_PAIR_CONTENT = (
    select(
        Prompt.system,
        Prompt.turns,
        _response_a.id,
        _response_a.content,
        _response_b.id,
        _response_b.content,
    )
    .select_from(Pair)
    .join(Prompt, Prompt.id == Pair.prompt_id)
    .join(_response_a, _response_a.id == Pair.response_a_id)
    .join(_response_b, _response_b.id == Pair.response_b_id)
    .where(Pair.id == bindparam("pair_id"))
)


def content_from_row(pair_id: int, row: Sequence[Any]) -> PairContent:
    """From (system, turns, response A id, its text, response B id, its text)."""
    system, turns, a_id, a_content, b_id, b_content = row
    return PairContent(
        pair_id,
        PromptText(system, turns),
        ResponseText(a_id, a_content),
        ResponseText(b_id, b_content),
    )


async def pair_content(session: AsyncSession, pair_id: int) -> PairContent:
    """The pair's prompt and both responses, in one query."""
    row = (await session.execute(_PAIR_CONTENT, {"pair_id": pair_id})).one()
    return content_from_row(pair_id, row)


def shown_sides(content: PairContent, left_side: str) -> tuple[ResponseText, ResponseText]:
    """(left, right) as the rater sees them, `left_side` being the response shown left."""
    if left_side == CanonicalSide.A:
        return content.response_a, content.response_b
    return content.response_b, content.response_a


async def rater_counts(
    session: AsyncSession, project_id: int, rater_id: int, since: datetime
) -> dict[str, Any]:
    total, today = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Judgment.submitted_at >= since),
            ).where(Judgment.project_id == project_id, Judgment.rater_id == rater_id)
        )
    ).one()
    return {"total": int(total), "today": int(today)}


# --- locks ------------------------------------------------------------------------------
#
# Every writer of pair slots, assignments and judgments takes its row locks in one order, so
# no two of them can wait on each other in a circle (docs/reliability.md, "Lock order"):
#
#   1. the project's gate, an advisory lock: shared by every "next pair", submit, skip, flag,
#      change of a last decision and adaptive-overlap decision; exclusive while a member is
#      removed, an account deactivated, the project closed or its overlap policy changed, so
#      no lease is made or answered in the middle of ending them
#   2. the rater's advisory lock (next pair only: one lease at a time per rater and project)
#   3. the project row (changing k or the overlap policy; review's curation actions and a
#      rater's exclusion)
#   4. pair slots, in id order
#   5. assignments, in id order
#   6. judgments (inserted last)
#   7. the pair row (a flag takes the pair out of the queue; adjudication; curation; an
#      adaptive pair's decision is made holding it, so two submits on one pair decide one
#      after the other)
#   8. the pair's summary (pair_summaries, by trigger after each of the writes above)
#
# An assignment's slot id is fixed when the lease is made and can only become NULL (when k
# is lowered the slot is deleted), so a writer may read it unlocked, lock the slot, and then
# lock the assignment: it finds the same slot id, or none.

# First keys of the two-key advisory locks: the rater's lock uses (rater id, project id) with
# ids >= 0, so a negative first key never meets it.
_PROJECT_GATE = -1
# Locks 1 and 2 for a "next pair" (enter_and_claim): through the project's gate, then one
# next-pair at a time per rater and project (a double click cannot lease two pairs).
_ENTER = DriverSql(
    "SELECT pg_advisory_xact_lock_shared(:gate, :project), pg_advisory_xact_lock(:rater, :project)"
)
_CLOSE_GATE = text("SELECT pg_advisory_xact_lock(:gate, :project)")


def _lock_key(value: int) -> int:
    return value % 2_147_483_647


_PASS_GATE = text("SELECT pg_advisory_xact_lock_shared(:gate, :project)")


async def pass_gate(session: AsyncSession, project_id: int) -> None:
    """Lock 1, shared: for a writer of the project's slots that holds no lock yet."""
    await session.execute(_PASS_GATE, {"gate": _PROJECT_GATE, "project": _lock_key(project_id)})


async def close_gates(session: AsyncSession, project_ids: Sequence[int]) -> None:
    """Lock 1, exclusive, for each project (in id order), until the transaction ends."""
    for project_id in sorted({_lock_key(project_id) for project_id in project_ids}):
        await session.execute(_CLOSE_GATE, {"gate": _PROJECT_GATE, "project": project_id})


_LOCK_SLOTS = text("SELECT id FROM pair_slots WHERE id = ANY(:ids) ORDER BY id FOR UPDATE")
_LOCK_ASSIGNMENTS = text("SELECT id FROM assignments WHERE id = ANY(:ids) ORDER BY id FOR UPDATE")


async def lock_slots(session: AsyncSession, slot_ids: Sequence[int]) -> list[int]:
    """Locks the slots (in id order); returns the ids of those that still exist."""
    if not slot_ids:
        return []
    return list((await session.scalars(_LOCK_SLOTS, {"ids": list(slot_ids)})).all())


async def lock_assignments(session: AsyncSession, assignment_ids: Sequence[int]) -> None:
    if assignment_ids:
        await session.execute(_LOCK_ASSIGNMENTS, {"ids": list(assignment_ids)})


_OPEN_LEASES = text(
    f"""
    SELECT id, slot_id FROM assignments
    WHERE status = '{AssignmentStatus.LEASED}'
      AND (CAST(:project_id AS bigint) IS NULL OR project_id = :project_id)
      AND (CAST(:rater_id AS bigint) IS NULL OR rater_id = :rater_id)
    ORDER BY id
    """
)
_REVOKE = text(
    f"""
    UPDATE assignments SET status = '{AssignmentStatus.REVOKED}', completed_at = :now
    WHERE id = ANY(:ids) AND status = '{AssignmentStatus.LEASED}'
    RETURNING id
    """
)
_FREE_SLOTS = text(
    f"""
    UPDATE pair_slots
    SET state = '{SlotState.OPEN}', assignment_id = NULL, lease_expires_at = NULL
    WHERE id = ANY(:slot_ids) AND state = '{SlotState.LEASED}' AND assignment_id = ANY(:ids)
    """
)


async def release_leases(
    session: AsyncSession,
    now: datetime,
    *,
    project_id: int | None = None,
    rater_id: int | None = None,
) -> int:
    """Ends the open leases of a project, of a rater, or of a rater in a project: each is
    revoked and its slot goes back to the pool. Returns how many were revoked."""
    if project_id is None and rater_id is None:
        raise ValueError("release_leases needs a project, a rater, or both")
    rows = (
        await session.execute(_OPEN_LEASES, {"project_id": project_id, "rater_id": rater_id})
    ).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    slot_ids = sorted({row.slot_id for row in rows if row.slot_id is not None})
    await lock_slots(session, slot_ids)
    await lock_assignments(session, ids)
    revoked = list((await session.scalars(_REVOKE, {"ids": ids, "now": now})).all())
    await free_slots(session, slot_ids, revoked)
    return len(revoked)


async def free_slots(
    session: AsyncSession, slot_ids: Sequence[int], assignment_ids: Sequence[int]
) -> None:
    """The slots (already locked) go back to the pool, those still leased to one of
    `assignment_ids`: a slot another rater took meanwhile stays theirs."""
    if slot_ids and assignment_ids:
        await session.execute(
            _FREE_SLOTS, {"slot_ids": list(slot_ids), "ids": list(assignment_ids)}
        )


# A decision changed within the undo window (judgments.changes): the pair's slots are locked
# (lock 4, in id order) before the assignment. A skip's slot went back to the pool; a skip
# turned into a judgment takes a slot of the pair that is still free (its old one first), and
# a judgment turned into a skip gives its slot back.
_LOCK_PAIR_SLOTS = text("SELECT id FROM pair_slots WHERE pair_id = :pair_id ORDER BY id FOR UPDATE")
_RETAKE_SLOT = text(
    f"""
    WITH slot AS (
        SELECT id, state, assignment_id FROM pair_slots
        WHERE pair_id = :pair_id
          AND (state = '{SlotState.OPEN}'
               OR (state = '{SlotState.LEASED}' AND lease_expires_at <= :now))
        ORDER BY id = :slot_id DESC, slot_no
        LIMIT 1
    ), expired AS (
        UPDATE assignments a SET status = '{AssignmentStatus.EXPIRED}', completed_at = :now
        FROM slot
        WHERE slot.state = '{SlotState.LEASED}' AND a.id = slot.assignment_id
          AND a.status = '{AssignmentStatus.LEASED}'
    )
    UPDATE pair_slots s
    SET state = '{SlotState.LEASED}', assignment_id = :assignment_id, lease_expires_at = :expires
    FROM slot
    WHERE s.id = slot.id
    RETURNING s.id
    """
)
_REOPEN_SLOT = text(
    f"""
    UPDATE pair_slots SET state = '{SlotState.OPEN}', assignment_id = NULL,
                          lease_expires_at = NULL
    WHERE id = :slot_id AND state = '{SlotState.DONE}'
    """
)


async def lock_pair_slots(session: AsyncSession, pair_id: int) -> list[int]:
    """Lock 4 for a change of decision: every slot of the pair, in id order."""
    return list((await session.scalars(_LOCK_PAIR_SLOTS, {"pair_id": pair_id})).all())


async def retake_slot(
    session: AsyncSession,
    *,
    pair_id: int,
    slot_id: int | None,
    assignment_id: int,
    now: datetime,
    expires: datetime,
) -> int | None:
    """Leases a free slot of the pair (locked) to the assignment again: `slot_id` if it is
    free, else another; a lease that ran out on it is closed. None when every slot is taken."""
    params = {
        "pair_id": pair_id,
        "slot_id": slot_id,
        "assignment_id": assignment_id,
        "now": now,
        "expires": expires,
    }
    taken: int | None = await session.scalar(_RETAKE_SLOT, params)
    return taken


async def reopen_slot(session: AsyncSession, slot_id: int) -> None:
    """A done slot (locked) whose judgment was withdrawn goes back to the pool."""
    await session.execute(_REOPEN_SLOT, {"slot_id": slot_id})


# The rater `u`'s standing in the project `p`, and their open lease there: read by
# enter_and_claim, and tested again by the claim that is sent with it (_CLAIM_SLOT).
_MEMBER_OR_ADMIN = f"""
    u.role = '{AccountRole.ADMIN}' OR EXISTS (
        SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = u.id
    )
"""
_HELD_LEASE = f"""
    SELECT a.id, a.slot_id FROM assignments a
    WHERE a.rater_id = :rater_id AND a.project_id = :project_id
      AND a.status = '{AssignmentStatus.LEASED}'
"""
_STANDING_AND_LEASE = DriverSql(
    f"""
    SELECT u.is_active, p.is_archived, {_MEMBER_OR_ADMIN}, lease.id, lease.slot_id
    FROM users u
    JOIN projects p ON p.id = :project_id
    LEFT JOIN LATERAL ({_HELD_LEASE} ORDER BY a.id LIMIT 1) lease ON true
    WHERE u.id = :rater_id
    """
)
# A new lease only for a rater who may rate here and holds none (one-time filters).
_MAY_CLAIM = f"""
    EXISTS (
        SELECT FROM users u JOIN projects p ON p.id = :project_id
        WHERE u.id = :rater_id AND u.is_active AND NOT p.is_archived AND ({_MEMBER_OR_ADMIN})
    )
    AND NOT EXISTS ({_HELD_LEASE})
"""


@dataclass(frozen=True)
class HeldLease:
    """The rater's open lease as read without a lock (locked next: its slot, then itself)."""

    assignment_id: int
    slot_id: int | None


@dataclass(frozen=True)
class ClaimTerms:
    """What a new lease is made with."""

    left_side: str  # the response shown on the left
    now: datetime
    expires: datetime
    # An id taken for it in the rater's answer just committed (judgments.store_judgment), or
    # None to take one now. With one, the lease commits without waiting for the WAL flush:
    # see _CLAIM_SLOT.
    assignment_id: int | None = None


@dataclass(frozen=True)
class Entered:
    """What a "next pair" finds once through the project's gate (enter_project)."""

    standing: Standing  # the rater's standing in the project, as committed now
    held: HeldLease | None  # their open lease there
    # The new lease, when one was asked for and the rater may rate and held none.
    claimed: "ClaimedSlot | None"
    # Whether the transaction was committed with these statements (enter_and_claim's
    # `commit`): its locks are no longer held.
    committed: bool = False


async def enter_and_claim(
    session: AsyncSession,
    project_id: int,
    rater_id: int,
    claim: ClaimTerms | None,
    *,
    commit: bool = False,
) -> Entered:
    """Locks 1 and 2 (enter_project); then the rater's standing and open lease, read after
    the locks, so a removal, deactivation or closing that committed meanwhile is seen; then,
    with `claim`, a new lease (claim_slot), which its own statement makes only if the rater
    may rate and holds none.

    One round trip: the statements go out together (run_pipelined), and each still runs
    after the one before it, with a snapshot of its own, as if sent one by one.

    `commit`: when these are the transaction's first statements, its COMMIT goes out with
    them (run_pipelined), and the locks are gone when this returns (`Entered.committed`).
    Only for a caller that needs nothing more of the transaction when the claim made a
    lease, found no work or was refused, and starts again when the rater held a lease (the
    claim made nothing then).
    """
    ids = {"project_id": project_id, "rater_id": rater_id}
    locks = {"gate": _PROJECT_GATE, "project": _lock_key(project_id), "rater": _lock_key(rater_id)}
    calls = [(_ENTER, locks), (_STANDING_AND_LEASE, ids)]
    if claim is not None:
        calls.append((_CLAIM_SLOT, _claim_params(project_id, rater_id, claim)))
    answers = await run_pipelined(session, calls, commit=commit)
    committed = commit and not await transaction_open(session)
    (row,) = answers[1]
    held = None if row[3] is None else HeldLease(int(row[3]), row[4])
    claimed = _claimed(answers[2][0]) if claim is not None and answers[2] else None
    standing = Standing(bool(row[0]), bool(row[1]), bool(row[2]))
    return Entered(standing, held, claimed, committed)


def lock_slot_of_assignment(rater: str) -> DriverSql:
    """Locks 1 and 4 for a submit, skip or flag, as a statement to send first in a pipeline
    (judgments.repository.lock_slot_and_assignment): through the lease's project gate (shared,
    so a change of the overlap policy waits for it and it for the change), then the lease's
    slot, if it has one (before the assignment itself). `rater`: the SQL of the rater's id.

    The slot id is read without a lock: it is set when the lease is made and can only become
    NULL (k lowered), so the assignment, locked next, shows the same slot or none. The CTE is
    materialized, so the gate is taken when the slot's id is read, before the slot is locked.
    """
    return DriverSql(
        f"""
        WITH lease AS MATERIALIZED (
            SELECT a.slot_id,
                   pg_advisory_xact_lock_shared({_PROJECT_GATE},
                                                CAST(a.project_id % 2147483647 AS integer))
            FROM assignments a WHERE a.id = :assignment_id AND a.rater_id = {rater}
        )
        SELECT s.id FROM pair_slots s
        WHERE s.id = (SELECT slot_id FROM lease)
        FOR UPDATE OF s
        """
    )


# --- a pair's slots and the queue ----------------------------------------------------------
#
# What a pair's slots are, in one place: every non-gold pair has k of them (k = the project's
# raters per pair), numbered from 1 and open when made. Pairs that have none get theirs (a new
# batch, at the end of its import); pairs that have some get the ones they lack, numbered after
# their highest (k raised).
#
# The queue: each slot carries its pair's place, `queue_pos`, and raters are offered slots in
# that order (claim_slot), so a pair's k slots go out one after the other and pairs already
# started are finished before new ones are opened. New pairs are placed after every slot still
# open, so a new batch never jumps ahead of work under way. Among themselves they are placed
#
# - in file order (`pair_order` = file): by pair id, which follows the import file;
# - shuffled (the default): in rounds, one pair of each prompt per round, the prompts of a
#   round in an order drawn from the project's seed, and each prompt's pairs in an order drawn
#   from it too. Consecutive pairs are then of different prompts wherever that is possible,
#   and the same seed gives the same order.
#
# The claim also steps over pairs of the prompt the rater saw last while other work is open
# (see _CHOSEN_SLOT), whatever the order.
#
# The statement that makes slots is in slots_repository (no SQLAlchemy there, for imports);
# slots_service.create_slots runs it in a session's transaction.


_LOCK_QUEUE = text(
    f"""
    SELECT id FROM pair_slots
    WHERE project_id = :project_id AND state <> '{SlotState.DONE}'
    ORDER BY id
    FOR UPDATE
    """
)
# Started pairs (a slot leased or done) keep their order and stay first; the others are placed
# after them by the rules, as new pairs would be.
_REORDER_QUEUE = text(
    f"""
    WITH waiting AS (
        SELECT s.pair_id AS id, p.prompt_id, q.external_id, min(s.queue_pos) AS pos,
               bool_or(s.state = '{SlotState.LEASED}') OR EXISTS (
                   SELECT 1 FROM pair_slots d
                   WHERE d.pair_id = s.pair_id AND d.state = '{SlotState.DONE}'
               ) AS started
        FROM pair_slots s
        JOIN pairs p ON p.id = s.pair_id
        JOIN prompts q ON q.id = p.prompt_id
        WHERE s.project_id = :project_id AND s.state <> '{SlotState.DONE}'
        GROUP BY s.pair_id, p.prompt_id, q.external_id
    ), placed_in_prompt AS (
        SELECT *, row_number() OVER (PARTITION BY prompt_id ORDER BY id) AS place FROM waiting
    ), rounds AS (
        SELECT id, prompt_id, external_id, pos, started,
               {ROUNDS.format(partition=", started")}
        FROM placed_in_prompt
    ), placed AS (
        SELECT id, row_number() OVER (
            ORDER BY started DESC, CASE WHEN started THEN pos END, {NEW_PAIR_ORDER}
        ) AS pos
        FROM rounds
    )
    UPDATE pair_slots s SET queue_pos = placed.pos
    FROM placed
    WHERE s.pair_id = placed.id AND s.state <> '{SlotState.DONE}'
    """
)


async def reorder_queue(session: AsyncSession, project_id: int, rules: QueueRules) -> None:
    """Places the pairs not yet started by new rules (the project row is locked first)."""
    params = {"project_id": project_id, "pair_order": rules.pair_order, "seed": rules.seed}
    await session.execute(_LOCK_QUEUE, params)
    await session.execute(_REORDER_QUEUE, params)


# The slots a lower k no longer needs, per pair: open ones go before leased ones, and a slot
# that holds a judgment is never dropped (the judgment's foreign key forbids it). They are
# locked in id order, like every writer's slot locks; one whose state changed while waiting
# (it became done) is passed over, and the next round ranks the pair again.
_SURPLUS_SLOTS = text(
    f"""
    WITH ranked AS (
        SELECT id, pair_id, row_number() OVER (
            PARTITION BY pair_id
            ORDER BY (state = '{SlotState.DONE}') DESC, (state = '{SlotState.LEASED}') DESC,
                     slot_no
        ) AS rn
        FROM pair_slots WHERE project_id = :project_id
    )
    SELECT s.id FROM pair_slots s
    WHERE s.id IN (
        SELECT r.id FROM ranked r JOIN pairs p ON p.id = r.pair_id
        WHERE r.rn > {SLOTS_WANTED}
    ) AND s.state <> '{SlotState.DONE}'
    ORDER BY s.id
    FOR UPDATE OF s
    """
)
_UNFINISHED_SLOTS = text(
    f"""
    SELECT id FROM pair_slots
    WHERE pair_id = ANY(:pair_ids) AND state <> '{SlotState.DONE}'
    ORDER BY id
    FOR UPDATE
    """
)
_REVOKE_LEASES_OF_SLOTS = text(
    f"""
    UPDATE assignments SET status = '{AssignmentStatus.REVOKED}', completed_at = :now
    WHERE id IN (
        SELECT id FROM assignments
        WHERE slot_id = ANY(:slot_ids) AND status = '{AssignmentStatus.LEASED}'
        ORDER BY id
        FOR UPDATE
    )
    """
)
_DELETE_SLOTS = text("DELETE FROM pair_slots WHERE id = ANY(:slot_ids)")
_LOCK_PROJECT = text("SELECT id FROM projects WHERE id = :project_id FOR NO KEY UPDATE")


async def lock_project(session: AsyncSession, project_id: int) -> None:
    """Lock 3: the project row (one change of k at a time)."""
    await session.execute(_LOCK_PROJECT, {"project_id": project_id})


async def lock_surplus_slots(session: AsyncSession, project_id: int, k: int) -> list[int]:
    """Locks (in id order) the slots beyond the k each pair keeps (or the votes wanted of it,
    if more), and returns their ids."""
    params = {"project_id": project_id, "k": k}
    return list((await session.scalars(_SURPLUS_SLOTS, params)).all())


async def lock_unfinished_slots(session: AsyncSession, pair_ids: Sequence[int]) -> list[int]:
    """Locks (in id order) the slots of these pairs that hold no judgment; returns their ids."""
    rows = await session.scalars(_UNFINISHED_SLOTS, {"pair_ids": list(pair_ids)})
    return list(rows.all())


async def drop_slots(session: AsyncSession, slot_ids: Sequence[int], now: datetime) -> None:
    """Revokes the leases on the slots (locked), then deletes the slots."""
    await session.execute(_REVOKE_LEASES_OF_SLOTS, {"slot_ids": list(slot_ids), "now": now})
    await session.execute(_DELETE_SLOTS, {"slot_ids": list(slot_ids)})


# --- leases -------------------------------------------------------------------------------

# Locking refreshes what the session holds of the rows.
_LOCKED_LEASE = (
    select(Assignment)
    .where(Assignment.id == bindparam("assignment_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_SLOT = (
    select(PairSlot)
    .where(PairSlot.id == bindparam("slot_id"))
    .execution_options(populate_existing=True)
)


async def lock_lease(session: AsyncSession, assignment_id: int) -> Assignment | None:
    """Lock 5: the assignment (its slot is locked first)."""
    return await session.scalar(_LOCKED_LEASE, {"assignment_id": assignment_id})


async def slot(session: AsyncSession, slot_id: int) -> PairSlot | None:
    """The slot as it is now (the caller holds its lock)."""
    return await session.scalar(_SLOT, {"slot_id": slot_id})


async def random_gold_pair(session: AsyncSession, project_id: int, rater_id: int) -> int | None:
    """An active gold pair of the project this rater has not been shown, picked at random."""
    return await session.scalar(
        select(Pair.id)
        .where(
            Pair.project_id == project_id,
            Pair.is_gold,
            Pair.status == PairStatus.ACTIVE,
            ~select(Assignment.id)
            .where(Assignment.pair_id == Pair.id, Assignment.rater_id == rater_id)
            .exists(),
        )
        .order_by(func.random())
        .limit(1)
    )


async def add_lease(
    session: AsyncSession,
    *,
    project_id: int,
    pair_id: int,
    rater_id: int,
    left_side: str,
    now: datetime,
    expires: datetime,
) -> Assignment:
    """A lease without a slot (gold pairs have none)."""
    assignment = Assignment(
        project_id=project_id,
        pair_id=pair_id,
        rater_id=rater_id,
        slot_id=None,
        status=AssignmentStatus.LEASED,
        left_side=left_side,
        is_gold=True,
        shown_at=now,
        lease_expires_at=expires,
    )
    session.add(assignment)
    await session.flush()
    return assignment


# The rater's scan: the available slots of the project in queue order, each tested on its own.
# OFFSET 0 keeps the two tests as per-slot index probes (pairs' primary key; assignments'
# (rater_id, pair_id) index) that the planner cannot turn into joins: with stale statistics it
# used to pick a merge join that walked `pairs` from the table's first row and an anti-join
# that rescanned all of the rater's assignments per slot (48 ms per claim instead of well
# under 1), and a generic plan of the prepared statement behaves the same. {prompt_test} is
# empty or one more condition on the pair `p`. (The rater-loop benchmark runs this very text
# with psycopg for its raw limit.)
_AVAILABLE_SLOTS = f"""
    FROM pair_slots s
    WHERE s.project_id = :project_id
      AND s.state <> '{SlotState.DONE}'
      AND (s.state = '{SlotState.OPEN}' OR s.lease_expires_at <= :now)
      AND EXISTS (
          SELECT 1 FROM pairs p
          WHERE p.id = s.pair_id AND p.status = '{PairStatus.ACTIVE}' {{prompt_test}} OFFSET 0
      )
      AND NOT EXISTS (
          SELECT 1 FROM assignments a
          WHERE a.pair_id = s.pair_id AND a.rater_id = :rater_id
          OFFSET 0
      )
"""
AVAILABLE_SLOTS = _AVAILABLE_SLOTS.format(prompt_test="")
QUEUE_ORDER = "s.project_id, s.queue_pos, s.slot_no"


# The slot a claim takes, as WITH-clause members ending in `slot`: the first available slot
# in queue order that is not of the prompt the rater was shown last, or, when no such slot is
# left, the first available slot at all. So a rater does not get two pairs of one prompt in a
# row while other work is open. The fallback is a one-time filter: it runs only when the
# first walk found nothing. The prompt seen last is one backward probe of the
# (rater_id, project_id, id) index (SEEN_LAST). A slot another rater is taking is skipped
# (SKIP LOCKED).
#
# SEEN_LAST asks for the newest row at or before (rater, project, max id) in that index's
# order, then checks it is the rater's in this project: only that index can give the order,
# so the probe is one descent whatever the statistics say. Written as "rater = … AND
# project = … ORDER BY id DESC", the generic plan of the prepared claim (which the app runs
# after five claims on a connection) walked the primary key backward from the newest
# assignment of any rater and project until it met one of theirs: every assignment made since
# the rater's last one, and the whole table for a rater new to the project (6,000 rows,
# 6.3 ms, on the rater-loop bench's database after 6,000 judgments; docs/benchmarks.md).
SEEN_LAST = """
    SELECT pr.prompt_id
    FROM (
        SELECT a.rater_id, a.project_id, a.pair_id FROM assignments a
        WHERE (a.rater_id, a.project_id, a.id)
              <= (:rater_id, :project_id, CAST(9223372036854775807 AS bigint))
        ORDER BY a.rater_id DESC, a.project_id DESC, a.id DESC
        LIMIT 1
    ) newest
    JOIN pairs pr ON pr.id = newest.pair_id
    WHERE newest.rater_id = :rater_id AND newest.project_id = :project_id
"""


def chosen_slot(guard: str = "") -> str:
    """CHOSEN_SLOT, with `guard` (AND …, a condition without the slot) tested first."""
    return f"""
    seen_last AS ({SEEN_LAST}), other_prompt AS (
        SELECT s.id, s.pair_id, s.state, s.assignment_id
        {
        _AVAILABLE_SLOTS.format(
            prompt_test="AND p.prompt_id IS DISTINCT FROM (SELECT prompt_id FROM seen_last)"
        )
    }
          AND NOT {QUOTA_REACHED_SQL} {guard}
        ORDER BY {QUEUE_ORDER}
        LIMIT 1
        FOR UPDATE OF s SKIP LOCKED
    ), any_prompt AS (
        SELECT s.id, s.pair_id, s.state, s.assignment_id
        {AVAILABLE_SLOTS}
          AND NOT {QUOTA_REACHED_SQL} {guard}
          AND NOT EXISTS (SELECT FROM other_prompt)
        ORDER BY {QUEUE_ORDER}
        LIMIT 1
        FOR UPDATE OF s SKIP LOCKED
    ), slot AS (
        SELECT * FROM other_prompt UNION ALL SELECT * FROM any_prompt
    )
"""


CHOSEN_SLOT = chosen_slot()
_HAS_OPEN_SLOT = text(
    f"""
    SELECT EXISTS (
        SELECT 1 {AVAILABLE_SLOTS}
        ORDER BY {QUEUE_ORDER}
        LIMIT 1
    )
    """
)


async def has_open_slot(
    session: AsyncSession, project_id: int, rater_id: int, now: datetime
) -> bool:
    """Whether a slot of the project is waiting for this rater."""
    params = {"project_id": project_id, "rater_id": rater_id, "now": now}
    return bool(await session.scalar(_HAS_OPEN_SLOT, params))


ASSIGNMENT_ID_SEQUENCE = "assignments_id_seq"

# Claim a slot in one statement: lock the slot to take (CHOSEN_SLOT), close the lease it held
# if that ran out, create the assignment, lease the slot to it and read the pair's texts.
# Returns nothing when no slot is left for this rater, when they came through a rater pool
# and have given their quota, or when they may not rate here or hold a lease already (init
# plans, tested once: enter_and_claim sends it before it knows).
#
# A lease made with an id taken in the answer before it (:assignment_id) commits with
# synchronous_commit off: COMMIT returns without waiting for the WAL flush (a few ms of fsync
# on the rater's wait for the next pair). Postgres may lose such a lease if it crashes within
# the next ~0.6 s (3 x wal_writer_delay); nothing else is at stake. The whole transaction is
# lost alike: the slot is open again (never over k: no judgment came with it), a lease it took
# over is as it was (expired, open to whoever claims it). The rater, whose page shows the pair,
# gets a clear 409 when they answer it (judgments.repository.assignment_was_lost), and nothing
# is stored: the id was taken in a durable transaction (the answer's), so Postgres cannot hand
# it out again after the crash, as it could an id drawn here (a sequence's WAL is flushed by
# the commit of the one who draws it). The answer itself stays fully durable: its COMMIT
# flushes the WAL, and with it any earlier lease.
# docs/reliability.md, "Leases after a crash".
_CLAIM_SLOT = DriverSql(
    f"""
    WITH {chosen_slot(f"AND {_MAY_CLAIM}")}, expired AS (
        UPDATE assignments a SET status = '{AssignmentStatus.EXPIRED}', completed_at = :now
        FROM slot
        WHERE slot.state = '{SlotState.LEASED}' AND a.id = slot.assignment_id
          AND a.status = '{AssignmentStatus.LEASED}'
        RETURNING a.id
    ), created AS (
        INSERT INTO assignments (id, project_id, pair_id, rater_id, slot_id, status, left_side,
                                 is_gold, shown_at, lease_expires_at)
        SELECT coalesce(CAST(:assignment_id AS bigint), nextval('{ASSIGNMENT_ID_SEQUENCE}')),
               :project_id, slot.pair_id, :rater_id, slot.id, '{AssignmentStatus.LEASED}',
               :left_side, false, :now, :expires
        FROM slot
        RETURNING id, pair_id, slot_id
    ), leased AS (
        UPDATE pair_slots s
        SET state = '{SlotState.LEASED}', assignment_id = created.id, lease_expires_at = :expires
        FROM created
        WHERE s.id = created.slot_id
    )
    SELECT created.id, created.pair_id, (SELECT count(*) FROM expired) > 0,
           p.system, p.turns, ra.id, ra.content, rb.id, rb.content,
           CASE WHEN CAST(:assignment_id AS bigint) IS NOT NULL
                THEN set_config('synchronous_commit', 'off', true) END
    FROM created
    JOIN pairs pr ON pr.id = created.pair_id
    JOIN prompts p ON p.id = pr.prompt_id
    JOIN responses ra ON ra.id = pr.response_a_id
    JOIN responses rb ON rb.id = pr.response_b_id
    """
)


@dataclass(frozen=True)
class ClaimedSlot:
    assignment_id: int
    pair_id: int
    # The slot was leased to someone whose lease had run out: that assignment is now expired.
    took_expired_lease: bool
    content: PairContent


async def claim_slot(
    session: AsyncSession, *, project_id: int, rater_id: int, claim: ClaimTerms
) -> ClaimedSlot | None:
    """The first slot waiting for this rater, leased to a new assignment, with the pair's
    texts: one statement. None when no slot is left for them (or their pool quota is met)."""
    row = await _CLAIM_SLOT.first(session, _claim_params(project_id, rater_id, claim))
    return None if row is None else _claimed(row)


def _claim_params(project_id: int, rater_id: int, claim: ClaimTerms) -> dict[str, Any]:
    return {
        "project_id": project_id,
        "rater_id": rater_id,
        "left_side": claim.left_side,
        "now": claim.now,
        "expires": claim.expires,
        "assignment_id": claim.assignment_id,
    }


def _claimed(row: Sequence[Any]) -> ClaimedSlot:
    assignment_id, pair_id, took_expired = row[:3]
    return ClaimedSlot(
        assignment_id, pair_id, bool(took_expired), content_from_row(pair_id, row[3:9])
    )


# --- progress -----------------------------------------------------------------------------

# Every regular pair not removed, counted by (flagged, judged slots, leased slots, open slots):
# progress, and adaptive overlap's cost figures, are made from these few rows.
_SLOT_HISTOGRAM = text(
    f"""
    WITH s AS (
      SELECT pair_id,
             count(*) FILTER (WHERE state = '{SlotState.DONE}') AS done,
             count(*) FILTER (WHERE state = '{SlotState.LEASED}') AS leased,
             count(*) FILTER (WHERE state = '{SlotState.OPEN}') AS open
      FROM pair_slots WHERE project_id = :project_id
      GROUP BY pair_id
    )
    SELECT p.status = '{PairStatus.FLAGGED}', s.done, s.leased, s.open, count(*)
    FROM pairs p
    JOIN s ON s.pair_id = p.id
    WHERE p.project_id = :project_id AND p.status <> '{PairStatus.REMOVED}'
    GROUP BY 1, 2, 3, 4
    """
)


@dataclass(frozen=True)
class SlotCount:
    """How many pairs have this many judged, leased and open slots."""

    flagged: bool
    done: int
    leased: int
    open: int
    pairs: int

    @property
    def outstanding(self) -> int:
        return self.leased + self.open


async def slot_histogram(session: AsyncSession, project_id: int) -> list[SlotCount]:
    rows = await session.execute(_SLOT_HISTOGRAM, {"project_id": project_id})
    return [SlotCount(bool(row[0]), *(int(value) for value in row[1:])) for row in rows]


_JUDGMENTS_NEEDED = text(
    f"""
    SELECT count(*) FROM pair_slots s JOIN pairs p ON p.id = s.pair_id
    WHERE s.project_id = :project_id AND s.state <> '{SlotState.DONE}'
      AND p.status = '{PairStatus.ACTIVE}'
    """
)


def progress_of(histogram: Sequence[SlotCount]) -> dict[str, int]:
    """Pairs done (all slots judged), in progress (some judged or leased), open (none), and
    flagged; the slots not yet judged on pairs in the queue."""
    active = [count for count in histogram if not count.flagged]
    return {
        "pairs_done": sum(c.pairs for c in active if c.outstanding == 0),
        "pairs_in_progress": sum(c.pairs for c in active if c.outstanding and (c.done or c.leased)),
        "pairs_open": sum(c.pairs for c in active if c.done == 0 and c.leased == 0),
        "pairs_flagged": sum(c.pairs for c in histogram if c.flagged),
        "judgments_needed": sum(c.pairs * c.outstanding for c in active),
    }


async def project_progress(session: AsyncSession, project_id: int) -> dict[str, int]:
    return progress_of(await slot_histogram(session, project_id))


async def judgments_needed(session: AsyncSession, project_id: int) -> int:
    """Slots not yet judged on pairs in the queue: cheap, from the partial slot index."""
    needed = await session.scalar(_JUDGMENTS_NEEDED, {"project_id": project_id})
    return int(needed or 0)
