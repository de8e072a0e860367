"""A pair's slots, made over the psycopg connection: the statement that gives pairs the
slots they lack and places new ones in the queue (what a slot is, and the queue's order, are
described in assignments.repository). No SQLAlchemy here: an import (`pickwise import`) writes
through psycopg alone and starts without loading it (docs/benchmarks.md, "i26d")."""

from dataclasses import dataclass
from typing import Any

import psycopg

from pickwise.core.driver_sql import psycopg_sql
from pickwise.vocabulary import PairOrder, SlotState

# The order key of new pairs: (round, prompt) shuffled, pair id in file order. The draws hash
# what the file says (the prompt's id in it, a pair's place among its prompt's pairs) with the
# seed, so the same file and seed give the same order in any project.
NEW_PAIR_ORDER = f"""
    CASE WHEN CAST(:pair_order AS text) = '{PairOrder.SHUFFLED}' THEN round ELSE 0 END,
    CASE WHEN CAST(:pair_order AS text) = '{PairOrder.SHUFFLED}'
         THEN hashtextextended(external_id, :seed) ELSE 0 END,
    id
"""
# Each prompt's pairs in rounds: its first pair (drawn) in round 1, the next in round 2, ...
ROUNDS = """
    row_number() OVER (
        PARTITION BY prompt_id{partition}
        ORDER BY hashtextextended(external_id || ':' || place, :seed), id
    ) AS round
"""
# A pair's slots: the project's k, or more where an admin asked for more votes on it.
SLOTS_WANTED = "greatest(:k, coalesce(p.votes_wanted, 0))"
# One chain of window functions over the pairs, no join of the pairs to their own ranking: the
# statement runs at the end of an import, before the new rows have statistics, and a planner
# that expects one row would otherwise rank the whole batch again for every pair (minutes).
# Pairs that already have slots (`pos` set) form their own partition and keep their place.
# The slots are written in pair order, not queue order: each one's foreign-key check finds and
# locks its pair, and the batch's summaries count each pair's slots next. In the shuffled
# queue order every check, every (pair_id, slot_no) entry and every count hit a random page
# of the batch's pairs and slots, which once the batch outgrows shared_buffers is a read and
# a dirty write per slot; in pair order they walk pages in order (docs/benchmarks.md, "i29b").
# Their ids are still drawn in queue order (`numbered`, before the sort): writers lock slots
# in id order, and with ids out of queue order concurrent claims and judgments deadlock.
CREATE_SLOTS = f"""
    WITH counted AS (
        SELECT p.id, p.project_id, p.prompt_id, q.external_id, s.n, s.max_no, s.pos,
               s.pos IS NULL AS is_new, {SLOTS_WANTED} AS wanted
        FROM pairs p
        JOIN prompts q ON q.id = p.prompt_id
        CROSS JOIN LATERAL (
            SELECT count(*) AS n, coalesce(max(slot_no), 0) AS max_no, max(queue_pos) AS pos
            FROM pair_slots WHERE pair_id = p.id
        ) s
        WHERE p.project_id = :project_id AND NOT p.is_gold
          AND (CAST(:batch_id AS bigint) IS NULL OR p.batch_id = :batch_id)
          AND (NOT :raised_only OR p.votes_wanted > :k)
          AND s.n < {SLOTS_WANTED}
    ), placed_in_prompt AS (
        SELECT *, row_number() OVER (PARTITION BY prompt_id, is_new ORDER BY id) AS place
        FROM counted
    ), rounds AS (
        SELECT *, {ROUNDS.format(partition=", is_new")}
        FROM placed_in_prompt
    ), placed AS (
        SELECT *, CASE WHEN is_new THEN row_number() OVER (
            PARTITION BY is_new ORDER BY {NEW_PAIR_ORDER}
        ) + (
            SELECT coalesce(max(queue_pos), 0) FROM pair_slots
            WHERE project_id = :project_id AND state <> '{SlotState.DONE}'
        ) ELSE pos END AS new_pos,
        row_number() OVER (ORDER BY is_new, {NEW_PAIR_ORDER}) AS queue_rank
        FROM rounds
    ), numbered AS (
        SELECT nextval((SELECT pg_get_serial_sequence('pair_slots', 'id')::regclass)) AS id,
               c.project_id, c.id AS pair_id, c.max_no + g AS slot_no, c.new_pos
        FROM (SELECT * FROM placed ORDER BY queue_rank OFFSET 0) c
        CROSS JOIN LATERAL generate_series(1, c.wanted - c.n) g
    )
    INSERT INTO pair_slots (id, project_id, pair_id, slot_no, state, queue_pos)
    SELECT id, project_id, pair_id, slot_no, '{SlotState.OPEN}', new_pos
    FROM numbered
    ORDER BY pair_id, slot_no
    """


@dataclass(frozen=True)
class QueueRules:
    """How a project's new pairs are placed in its queue."""

    pair_order: str  # a PairOrder
    seed: int

    @classmethod
    def of(cls, project: Any) -> "QueueRules":
        """`project`: a Project, or a row with its pair_order and pairing_seed."""
        return cls(project.pair_order, project.pairing_seed)


_CREATE_SLOTS = psycopg_sql(CREATE_SLOTS)


async def create_slots(
    driver: psycopg.AsyncConnection[Any],
    project_id: int,
    k: int,
    rules: QueueRules,
    batch_id: int | None = None,
    *,
    raised_only: bool = False,
) -> int:
    """Gives every non-gold pair (of one batch, or of the project; with `raised_only`, of the
    pairs that want more votes than k) the slots it lacks: k, or the votes wanted of it; pairs
    without any are placed at the end of the queue. Returns how many were made."""
    params = {
        "k": k,
        "project_id": project_id,
        "batch_id": batch_id,
        "pair_order": rules.pair_order,
        "seed": rules.seed,
        "raised_only": raised_only,
    }
    async with driver.cursor() as cursor:
        await cursor.execute(_CREATE_SLOTS, params)
        return cursor.rowcount
