"""An import's writes, over the psycopg connection: the project it imports into, its batch
row, ids taken from the sequences up front, rows sent with COPY.

No SQLAlchemy and no ORM models here: `pickwise import` writes through psycopg alone, so the
command starts without loading either (~0.25 CPU s of its start-up; docs/benchmarks.md,
"i26d"). Imports from the app run the same statements on the psycopg connection under their
session, in its transaction.
"""

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row

from pickwise.overlap.rules import OVERLAP_SETTINGS

Driver = psycopg.AsyncConnection[Any]

# What an import reads of its project: its pairing, queue and overlap settings (the names of
# overlap.rules.OverlapSettings), so a row read here stands for the ORM object.
IMPORT_TARGET_COLUMNS = (
    "id",
    "kind",
    "pairing_strategy",
    "pairs_per_prompt",
    "pairing_seed",
    "pair_order",
    "raters_per_pair",
    *OVERLAP_SETTINGS,
)


@asynccontextmanager
async def savepoint(driver: Driver) -> AsyncIterator[None]:
    """A savepoint in the caller's transaction, released at the end, rolled back to on error.

    psycopg's transaction() on a connection where nothing ran yet would begin and commit a
    transaction of its own; the caller's (a session's, which commits in one place) is begun
    first, as any statement begins it."""
    if driver.info.transaction_status == TransactionStatus.IDLE:
        await driver.execute("SELECT 1")
    async with driver.transaction():
        yield


async def project_by_slug(driver: Driver, slug: str) -> Any | None:
    """The project's import settings (a named tuple of IMPORT_TARGET_COLUMNS), or None."""
    async with driver.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(
            f"SELECT {', '.join(IMPORT_TARGET_COLUMNS)} FROM projects WHERE slug = %s", [slug]
        )
        return await cursor.fetchone()


async def add_batch(
    driver: Driver, *, project_id: int, filename: str, source: str, created_by_id: int | None
) -> int:
    """A new batch row, its digest and counts filled in at the end of the import; its id."""
    async with driver.cursor() as cursor:
        await cursor.execute(
            "INSERT INTO batches (project_id, filename, sha256, size_bytes, source, "
            "created_by_id, prompts_new, prompts_unchanged, responses_new, pairs_new) "
            "VALUES (%s, %s, '', 0, %s, %s, 0, 0, 0, 0) RETURNING id",
            [project_id, filename, source, created_by_id],
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def record_batch(
    driver: Driver,
    batch_id: int,
    *,
    sha256: str,
    size_bytes: int,
    prompts_new: int,
    prompts_unchanged: int,
    responses_new: int,
    pairs_new: int,
) -> None:
    """The batch's digest and what it added; its new answers wait for the search catch-up."""
    await driver.execute(
        "UPDATE batches SET sha256 = %s, size_bytes = %s, prompts_new = %s, "
        "prompts_unchanged = %s, responses_new = %s, pairs_new = %s, search_pending = %s "
        "WHERE id = %s",
        [
            sha256,
            size_bytes,
            prompts_new,
            prompts_unchanged,
            responses_new,
            pairs_new,
            responses_new,
            batch_id,
        ],
    )


async def delete_batch(driver: Driver, batch_id: int) -> None:
    await driver.execute("DELETE FROM batches WHERE id = %s", [batch_id])


async def reserve_ids(driver: Driver, counts: dict[str, int]) -> dict[str, list[int]]:
    """`counts[table]` new ids from each table's sequence, in one round trip, increasing.

    Each table's ids come back as one array value, not as a row per id. They need not be
    consecutive (other sessions draw from the same sequences), only unused. They are handed
    out in increasing order because the order is a rule: a prompt's responses get ids in the
    order the file lists them, and a pair's A is the response with the smaller id.
    """
    tables = [table for table, count in counts.items() if count]
    ids: dict[str, list[int]] = {table: [] for table in counts}
    if not tables:
        return ids
    async with driver.cursor() as cursor:
        await cursor.execute(reserve_ids_sql(tables), [counts[table] for table in tables])
        row = await cursor.fetchone()
    assert row is not None
    for table, values in zip(tables, row, strict=True):
        ids[table] = sorted(values)
    return ids


def reserve_ids_sql(tables: Sequence[str]) -> str:
    """One array of new ids per table, each table's count a parameter.

    Each table's sequence is looked up once, in a subquery kept apart by `OFFSET 0`: without
    it Postgres pulls the subquery up into the join and calls `pg_get_serial_sequence` (a
    catalog lookup and a name parse) for every id, ~8x the cost of `nextval` itself — 60-130
    ms of Postgres per 2,000-task chunk, against 5-12 ms (docs/benchmarks.md, "i28d")."""
    columns = ", ".join(
        f"(SELECT array_agg(nextval(s.seq)) FROM "
        f"(SELECT pg_get_serial_sequence('{table}', 'id')::regclass AS seq OFFSET 0) AS s, "
        "generate_series(1, %s))"
        for table in tables
    )
    return f"SELECT {columns}"


async def existing_hashes(
    driver: Driver, project_id: int, external_ids: Sequence[str]
) -> dict[str, str]:
    async with driver.cursor() as cursor:
        await cursor.execute(
            "SELECT external_id, content_hash FROM prompts "
            "WHERE project_id = %s AND external_id = ANY(%s)",
            [project_id, list(external_ids)],
        )
        return dict(await cursor.fetchall())


async def copy_rows(
    driver: Driver, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    if not rows:
        return
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


async def plan_checks_afresh(driver: Driver) -> None:
    """Drop the query plans this connection keeps, the foreign-key checks' among them.

    Postgres plans a foreign-key check once per connection and keeps the plan. One planned
    while a project had a few prompts (a small import earlier on a pooled connection) walks
    all the project's prompts for every answer and pair a later import writes: a 10k-task
    import after a 20-line one took 10x as long. Replanned at the import's first check, with
    its first chunk of prompts written, the check finds a prompt by its (id, project_id)
    index, as on a new connection (docs/benchmarks.md, "i24b"). A first chunk of a few
    hundred prompts can still be planned the slow way; that import is small itself."""
    await driver.execute("DISCARD PLANS")


async def refresh_outgrown_statistics(driver: Driver, written: Mapping[str, int]) -> list[str]:
    """ANALYZE each of `written`'s tables (name: rows this transaction wrote into it) that its
    statistics say holds fewer rows than were just written, and return their names.

    The statements at a batch's end (its slots, its summaries) join what the batch wrote. With
    statistics taken while a table was nearly empty (after a project was deleted, or on a test
    database), the planner believes each side has a row or two and walks a whole index for
    every pair: 2,100 pairs read 2.25 million prompt index entries, and 100k would read
    billions. ANALYZE counts this transaction's own rows, so the plan fits what is there.
    Never-analyzed tables (reltuples -1) are estimated from their size and are left alone."""
    wrote = {table: rows for table, rows in written.items() if rows > 0}
    if not wrote:
        return []
    cursor = await driver.execute(
        "SELECT relname::text, reltuples FROM pg_class WHERE oid = ANY(%s::text[]::regclass[])",
        [list(wrote)],
    )
    outgrown = sorted(name for name, tuples in await cursor.fetchall() if 0 <= tuples < wrote[name])
    if outgrown:
        await driver.execute(
            sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, outgrown)))
        )
    return outgrown


async def leave_search_for_later(driver: Driver, later: bool) -> None:
    """For the rest of the transaction: responses written get no search words (the search
    catch-up makes them after the commit), or, with `later` False, get them as they are
    written (the `responses_search_words` trigger, which reads this setting)."""
    await _set_local(driver, "pickwise.search_later", later)


async def leave_summaries_for_later(driver: Driver, later: bool) -> None:
    """For the rest of the transaction: pairs written get no explorer summary (the import
    adds its batch's summaries itself, review.summaries_repository.add_batch_summaries), or,
    with `later` False, get one as they are written (the `review_pairs_inserted` trigger)."""
    await _set_local(driver, "pickwise.summaries_later", later)


async def _set_local(driver: Driver, setting: str, on: bool) -> None:
    await driver.execute("SELECT set_config(%s, %s, true)", [setting, "on" if on else "off"])


# For an integer beyond 64 bits, which orjson refuses. Values come from a parsed file, so they
# hold no cycles to look for.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def as_json(value: Any) -> str:
    """Compact JSON text of a jsonb value. orjson writes it at a fifth of the stdlib's CPU
    (four values a task: ~9 µs of the reader's). Its floats may read otherwise (0.00001 for
    1e-05), which jsonb stores as the same number."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _ENCODER.encode(value)
