"""The queries of adaptive overlap: a pair's slots and votes, the slots a decision adds or
drops, the rater weights, and the counts progress is made of.

Lock order (assignments.repository): a decision runs with the pair row locked (lock 7), after
whatever slot and assignment locks its caller holds; a caller that holds none locks the
pair's slots first, in id order (lock 4).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import repository as assignments_repository
from pickwise.core.db import DriverSql, driver_connection
from pickwise.models import RaterWeight
from pickwise.overlap.rules import TOLERANCE, OverlapPolicy, Vote
from pickwise.vocabulary import PairStatus, SlotState


@dataclass(frozen=True)
class PairState:
    """A pair's slots as the decision sees them: the votes on its judged slots (in judgment
    order), and the slots still open or leased."""

    pair_id: int
    status: str
    votes: tuple[Vote, ...]
    open_slots: tuple[int, ...]  # ids, highest slot number first (dropped first)
    leased_slots: tuple[int, ...]  # ids, highest slot number first
    last_slot_no: int
    queue_pos: int  # the pair's place in the queue (assignments.repository): new slots share it
    votes_wanted: int  # votes an admin asked for on the pair (review), 0 if none

    @property
    def outstanding(self) -> int:
        return len(self.open_slots) + len(self.leased_slots)

    @property
    def slots(self) -> int:
        return len(self.votes) + self.outstanding


# One row per slot of the pair, with the vote on it and the rater's weight (gold pairs have no
# slots, so they have no state).
_SLOTS_OF_PAIRS = """
    SELECT s.pair_id, p.status, s.id, s.slot_no, s.state, j.id, j.choice, w.confusion,
           s.queue_pos, coalesce(p.votes_wanted, 0)
    FROM pair_slots s
    JOIN pairs p ON p.id = s.pair_id
    LEFT JOIN judgments j ON j.slot_id = s.id
    LEFT JOIN rater_weights w ON w.project_id = j.project_id AND w.rater_id = j.rater_id
    WHERE {where}
    ORDER BY s.pair_id, s.slot_no DESC
"""
# Sent through the driver: it runs on every vote of an adaptive project, and SQLAlchemy's
# handling of a statement costs about three times its execution here (0.23 against 0.07 ms
# of the app's CPU, measured).
_PAIR_STATE = _SLOTS_OF_PAIRS.format(where="s.pair_id = %(pair_id)s")
# The pairs a change of policy applies to: those with a slot not judged yet.
_OPEN_PAIR_STATES = text(
    _SLOTS_OF_PAIRS.format(
        where=f"""s.project_id = :project_id AND p.status <> '{PairStatus.REMOVED}'
        AND s.pair_id IN (
            SELECT pair_id FROM pair_slots
            WHERE project_id = :project_id AND state <> '{SlotState.DONE}'
        )"""
    )
)


def _states(rows: Iterable[Sequence[Any]]) -> list[PairState]:
    """The rows of _SLOTS_OF_PAIRS (grouped by pair), one state per pair."""
    states: list[PairState] = []
    current: list[Sequence[Any]] = []
    for row in rows:
        if current and current[0][0] != row[0]:
            states.append(_state(current))
            current = []
        current.append(row)
    if current:
        states.append(_state(current))
    return states


def _state(rows: Sequence[Sequence[Any]]) -> PairState:
    votes: list[tuple[int, Vote]] = []
    open_slots: list[int] = []
    leased_slots: list[int] = []
    for _, _, slot_id, _, state, judgment_id, choice, confusion, _, _ in rows:
        if state == SlotState.DONE:
            weight = None if confusion is None else tuple(confusion)
            votes.append((judgment_id, Vote(choice, weight)))
        elif state == SlotState.OPEN:
            open_slots.append(slot_id)
        else:
            leased_slots.append(slot_id)
    votes.sort(key=lambda numbered: numbered[0])
    return PairState(
        pair_id=rows[0][0],
        status=rows[0][1],
        votes=tuple(vote for _, vote in votes),
        open_slots=tuple(open_slots),
        leased_slots=tuple(leased_slots),
        last_slot_no=rows[0][3],
        queue_pos=max(row[8] for row in rows),
        votes_wanted=rows[0][9],
    )


async def pair_state(session: AsyncSession, pair_id: int) -> PairState | None:
    """The pair's slots and votes as committed now (the caller holds the pair row); None for a
    pair without slots (gold)."""
    driver = await driver_connection(session)
    async with driver.cursor() as cursor:
        await cursor.execute(_PAIR_STATE, {"pair_id": pair_id})
        states = _states(await cursor.fetchall())
    return states[0] if states else None


async def open_pair_states(session: AsyncSession, project_id: int) -> list[PairState]:
    """Every pair of the project with a slot not judged yet (the removed ones aside)."""
    rows = await session.execute(_OPEN_PAIR_STATES, {"project_id": project_id})
    return _states(rows.all())


_LOCK_PAIR = text("SELECT id FROM pairs WHERE id = :pair_id FOR NO KEY UPDATE")


async def lock_pair_and_slots(session: AsyncSession, pair_id: int) -> None:
    """Lock 4, then lock 7: every slot of the pair in id order, then the pair row (FOR NO KEY
    UPDATE: a claim inserting an assignment for the pair is not held up)."""
    await assignments_repository.lock_pair_slots(session, pair_id)
    await session.execute(_LOCK_PAIR, {"pair_id": pair_id})


_ADD_SLOT = f"""
    INSERT INTO pair_slots (project_id, pair_id, slot_no, state, queue_pos)
    VALUES (%(project_id)s, %(pair_id)s, %(slot_no)s, '{SlotState.OPEN}', %(queue_pos)s)
"""


async def add_slot(session: AsyncSession, project_id: int, state: PairState) -> None:
    """One more slot on the pair, numbered after its last (a vote's decision; the driver's
    statement, as for pair_state)."""
    driver = await driver_connection(session)
    params = {
        "project_id": project_id,
        "pair_id": state.pair_id,
        "slot_no": state.last_slot_no + 1,
        "queue_pos": state.queue_pos,
    }
    async with driver.cursor() as cursor:
        await cursor.execute(_ADD_SLOT, params)


# A vote's decision under the counted rule (leader_share), made by Postgres in one statement
# that rules.slots_wanted would have made in Python: read the pair's slots and votes, count
# the votes per choice, open the slots the rule wants. The submit sends it in the round trip
# that stores the vote, right after the store (judgments.repository.store_judgment's `then`):
# the store has locked the pair row by then (lock 7), and this statement, the next one in
# the pipeline, reads with a snapshot of its own taken after that lock, so it sees every
# other vote on the pair that got the lock first, exactly as after_vote's read does. It
# decides only when the assignment's judgment is in (in this transaction: a refused store
# stored nothing, and then holds no pair lock either). Same outcome as after_vote on every
# state (tests/overlap/test_decision_statement.py compares them); the posterior rule, which
# weighs votes, stays in Python (after_vote).
_DECIDE_BY_COUNTS = DriverSql(
    f"""
    WITH slots AS (
        SELECT s.slot_no, s.state, s.queue_pos, j.choice, coalesce(p.votes_wanted, 0) AS floor
        FROM pair_slots s
        JOIN pairs p ON p.id = s.pair_id AND p.status <> '{PairStatus.REMOVED}'
        LEFT JOIN judgments j ON j.slot_id = s.id
        WHERE s.pair_id = :pair_id
          AND EXISTS (SELECT FROM judgments WHERE assignment_id = :assignment_id)
    ), choices AS (
        SELECT count(*) AS votes FROM slots
        WHERE state = '{SlotState.DONE}' GROUP BY choice
    ), pair AS (
        SELECT count(*) FILTER (WHERE state = '{SlotState.DONE}') AS done,
               count(*) FILTER (WHERE state = '{SlotState.LEASED}') AS leased,
               count(*) AS slots, max(slot_no) AS last_slot_no, max(queue_pos) AS queue_pos,
               greatest(CAST(:min_raters AS integer), max(floor)) AS low,
               greatest(CAST(:max_raters AS integer), max(floor)) AS high
        FROM slots
        HAVING count(*) > 0  -- none: a gold or removed pair, or no vote stored
    ), leader AS (
        -- the leading choice's votes, when one choice has more than every other
        SELECT max(votes) AS votes
        FROM choices
        HAVING count(*) FILTER (WHERE votes = (SELECT max(votes) FROM choices)) = 1
    ), decided AS (
        SELECT pair.*, greatest(pair.done, CASE
            WHEN done + leased < low THEN low
            WHEN leased > 0 THEN least(done + leased, high)
            WHEN done >= high OR coalesce(
                leader.votes >= :stop_votes
                AND CAST(leader.votes AS float8) / done + :tolerance
                    >= CAST(:stop_share AS float8),
                false
            ) THEN done
            ELSE done + 1
        END) - slots AS missing
        FROM pair LEFT JOIN leader ON true
    ), opened AS (
        INSERT INTO pair_slots (project_id, pair_id, slot_no, state, queue_pos)
        SELECT :project_id, :pair_id, decided.last_slot_no + n, '{SlotState.OPEN}',
               decided.queue_pos
        FROM decided CROSS JOIN LATERAL generate_series(1, decided.missing) AS n
        RETURNING 1
    )
    SELECT count(*) FROM opened
    """
)


def decision_by_counts(
    policy: OverlapPolicy, project_id: int, pair_id: int, assignment_id: int
) -> tuple[DriverSql, dict[str, Any]]:
    """The statement (and its parameters) that decides a vote on the pair under the counted
    rule once the assignment's judgment is in; its one row is how many slots it opened."""
    return _DECIDE_BY_COUNTS, {
        "project_id": project_id,
        "pair_id": pair_id,
        "assignment_id": assignment_id,
        "min_raters": policy.min_raters,
        "max_raters": policy.max_raters,
        "stop_votes": policy.stop_votes,
        "stop_share": policy.stop_share,
        "tolerance": TOLERANCE,
    }


_ADD_SLOTS = text(
    f"""
    INSERT INTO pair_slots (project_id, pair_id, slot_no, state, queue_pos)
    SELECT :project_id, pair.id, pair.last_slot_no + n, '{SlotState.OPEN}', pair.queue_pos
    FROM unnest(CAST(:pair_ids AS bigint[]), CAST(:last_slot_nos AS integer[]),
                CAST(:counts AS integer[]), CAST(:queue_pos AS bigint[]))
         AS pair(id, last_slot_no, count, queue_pos)
    CROSS JOIN LATERAL generate_series(1, pair.count) AS n
    """
)


async def add_slots(
    session: AsyncSession, project_id: int, additions: Sequence[tuple[PairState, int]]
) -> None:
    """Opens ``count`` new slots on each pair, numbered after its last one."""
    if not additions:
        return
    await session.execute(
        _ADD_SLOTS,
        {
            "project_id": project_id,
            "pair_ids": [state.pair_id for state, _ in additions],
            "last_slot_nos": [state.last_slot_no for state, _ in additions],
            "counts": [count for _, count in additions],
            "queue_pos": [state.queue_pos for state, _ in additions],
        },
    )


# Raters left out of a newer computation lose their row; a computation that finished after a
# newer one (two dashboards at once) changes nothing that one wrote.
_DELETE_OLDER_WEIGHTS = text(
    """
    DELETE FROM rater_weights
    WHERE project_id = :project_id AND computed_at < :computed_at
      AND NOT (rater_id = ANY(:rater_ids))
    """
)


@dataclass(frozen=True)
class RaterWeightRow:
    rater_id: int
    confusion: Sequence[float]  # 9 values
    judgments: int


async def replace_weights(
    session: AsyncSession, project_id: int, rows: Sequence[RaterWeightRow], computed_at: datetime
) -> None:
    """The project's rater weights become ``rows`` (raters not in them weigh as the prior),
    unless a computation newer than ``computed_at`` has already stored its own."""
    params = {
        "project_id": project_id,
        "computed_at": computed_at,
        "rater_ids": [row.rater_id for row in rows],
    }
    await session.execute(_DELETE_OLDER_WEIGHTS, params)
    if not rows:
        return
    statement = insert(RaterWeight)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[RaterWeight.project_id, RaterWeight.rater_id],
            set_={
                "confusion": statement.excluded.confusion,
                "judgments": statement.excluded.judgments,
                "computed_at": statement.excluded.computed_at,
            },
            where=RaterWeight.computed_at <= statement.excluded.computed_at,
        ),
        [
            {
                "project_id": project_id,
                "rater_id": row.rater_id,
                "confusion": [float(value) for value in row.confusion],
                "judgments": row.judgments,
                "computed_at": computed_at,
            }
            for row in rows
        ],
    )
