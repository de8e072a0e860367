from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pickwise.assignments.standing import Standing
from pickwise.models import Assignment, Judgment, Pair, Prompt, Response


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


def shown_sides(content: PairContent, assignment: Assignment) -> tuple[ResponseText, ResponseText]:
    """(left, right) as this rater sees them."""
    if assignment.left_side == "a":
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
#   1. the project's gate, an advisory lock: shared by every "next pair", exclusive while a
#      member is removed, an account deactivated or the project closed, so no lease is made
#      in the middle of ending them
#   2. the rater's advisory lock (next pair only: one lease at a time per rater and project)
#   3. the project row (changing k)
#   4. pair slots, in id order
#   5. assignments, in id order
#   6. judgments (inserted last)
#   7. the pair row (a flag takes the pair out of the queue)
#
# An assignment's slot id is fixed when the lease is made and can only become NULL (when k
# is lowered the slot is deleted), so a writer may read it unlocked, lock the slot, and then
# lock the assignment: it finds the same slot id, or none.

# First keys of the two-key advisory locks: the rater's lock uses (rater id, project id) with
# ids >= 0, so a negative first key never meets it.
_PROJECT_GATE = -1
_ENTER = text(
    "SELECT pg_advisory_xact_lock_shared(:gate, :project), pg_advisory_xact_lock(:rater, :project)"
)
_CLOSE_GATE = text("SELECT pg_advisory_xact_lock(:gate, :project)")


def _lock_key(value: int) -> int:
    return value % 2_147_483_647


async def enter_project(session: AsyncSession, project_id: int, rater_id: int) -> None:
    """Locks 1 and 2 for a "next pair": through the project's gate, then one next-pair at a
    time per rater and project (a double click cannot lease two pairs)."""
    await session.execute(
        _ENTER,
        {"gate": _PROJECT_GATE, "project": _lock_key(project_id), "rater": _lock_key(rater_id)},
    )


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
    """
    SELECT id, slot_id FROM assignments
    WHERE status = 'leased'
      AND (CAST(:project_id AS bigint) IS NULL OR project_id = :project_id)
      AND (CAST(:rater_id AS bigint) IS NULL OR rater_id = :rater_id)
    ORDER BY id
    """
)
_REVOKE = text(
    """
    UPDATE assignments SET status = 'revoked', completed_at = :now
    WHERE id = ANY(:ids) AND status = 'leased'
    RETURNING id
    """
)
_FREE_SLOTS = text(
    """
    UPDATE pair_slots SET state = 'open', assignment_id = NULL, lease_expires_at = NULL
    WHERE id = ANY(:slot_ids) AND state = 'leased' AND assignment_id = ANY(:ids)
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
    if revoked and slot_ids:
        await session.execute(_FREE_SLOTS, {"slot_ids": slot_ids, "ids": revoked})
    return len(revoked)


_STANDING_COLUMNS = """
    u.is_active, p.is_archived,
    u.role = 'admin' OR EXISTS (
        SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = u.id
    )
"""
_STANDING_AND_LEASE = text(
    f"""
    SELECT {_STANDING_COLUMNS}, lease.id, lease.slot_id
    FROM users u
    JOIN projects p ON p.id = :project_id
    LEFT JOIN LATERAL (
        SELECT a.id, a.slot_id FROM assignments a
        WHERE a.rater_id = :rater_id AND a.project_id = :project_id AND a.status = 'leased'
        ORDER BY a.id
        LIMIT 1
    ) lease ON true
    WHERE u.id = :rater_id
    """
)


@dataclass(frozen=True)
class HeldLease:
    """The rater's open lease as read without a lock (locked next: its slot, then itself)."""

    assignment_id: int
    slot_id: int | None


async def standing_and_lease(
    session: AsyncSession, project_id: int, rater_id: int
) -> tuple[Standing, HeldLease | None]:
    """The rater's standing in the project as committed now, and their open lease there.

    One statement, run after the "next pair" locks (enter_project): a removal, deactivation
    or closing that committed meanwhile is seen.
    """
    row = (
        await session.execute(_STANDING_AND_LEASE, {"project_id": project_id, "rater_id": rater_id})
    ).one()
    held = None if row[3] is None else HeldLease(int(row[3]), row[4])
    return Standing(bool(row[0]), bool(row[1]), bool(row[2])), held


_LOCK_SLOT_OF_ASSIGNMENT = text(
    """
    SELECT s.id FROM pair_slots s
    WHERE s.id = (
        SELECT a.slot_id FROM assignments a WHERE a.id = :assignment_id AND a.rater_id = :rater_id
    )
    FOR UPDATE OF s
    """
)


async def lock_slot_of(session: AsyncSession, assignment_id: int, rater_id: int) -> None:
    """Locks the assignment's slot, if it has one (lock 4, before the assignment itself).

    The slot id is read without a lock: it is set when the lease is made and can only become
    NULL (k lowered), so the assignment, locked next, shows the same slot or none.
    """
    await session.execute(
        _LOCK_SLOT_OF_ASSIGNMENT, {"assignment_id": assignment_id, "rater_id": rater_id}
    )
