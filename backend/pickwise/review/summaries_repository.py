"""Writing the explorer's summaries of new pairs. Its own module, apart from the explorer's
reads (review.repository), so an import loads only this: `pickwise import` pays for every
module it loads before it starts (tests/cli/test_startup.py). An import writes through
psycopg alone, without SQLAlchemy, so the batch's summaries are added over psycopg too."""

from typing import Any

import psycopg

from pickwise.core.driver_sql import psycopg_sql


def insert_summaries_sql(where: str, *, with_slots: bool = False) -> str:
    """New pairs' summaries: what never changes, copied from the pair and its answers (the
    `review_pairs_inserted` trigger does the same for the pairs of one statement)."""
    slots = ", (SELECT count(*) FROM pair_slots s WHERE s.pair_id = p.id)" if with_slots else ""
    return f"""
        INSERT INTO pair_summaries (
            pair_id, project_id, batch_id, prompt_id, response_a_id, response_b_id,
            created_at, model_low, model_high, is_gold, pair_status, excluded, votes_wanted
            {", slots" if with_slots else ""})
        SELECT p.id, p.project_id, p.batch_id, p.prompt_id, p.response_a_id, p.response_b_id,
               p.created_at, least(ra.model, rb.model), greatest(ra.model, rb.model),
               p.is_gold, p.status, p.excluded, p.votes_wanted{slots}
        FROM pairs p
        JOIN responses ra ON ra.id = p.response_a_id
        JOIN responses rb ON rb.id = p.response_b_id
        WHERE {where}
        """


# An imported batch's summaries, made once its slots exist (batches.service): written by the
# pairs' trigger, each would be written again by the slots' trigger, which counts its slots,
# and that update cannot be HOT on the full pages a bulk insert leaves, so it would add every
# index entry a second time (docs/benchmarks.md, Import).
_ADD_BATCH_SUMMARIES = psycopg_sql(insert_summaries_sql("p.batch_id = :batch_id", with_slots=True))


async def add_batch_summaries(driver: psycopg.AsyncConnection[Any], batch_id: int) -> None:
    """The summaries of a batch whose pairs were written without them (the transaction had
    `pickwise.summaries_later` on), with their slots counted."""
    await driver.execute(_ADD_BATCH_SUMMARIES, {"batch_id": batch_id})
