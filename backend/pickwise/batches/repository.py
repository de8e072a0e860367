"""Bulk writes for imports: ids taken from the sequences up front, rows sent with COPY."""

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import driver_connection
from pickwise.models import Batch


async def reserve_ids(session: AsyncSession, counts: dict[str, int]) -> dict[str, list[int]]:
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
    columns = ", ".join(
        f"(SELECT array_agg(nextval(s.seq)) FROM generate_series(1, %s), "
        f"(SELECT pg_get_serial_sequence('{table}', 'id')::regclass AS seq) AS s)"
        for table in tables
    )
    driver = await driver_connection(session)
    async with driver.cursor() as cursor:
        await cursor.execute(f"SELECT {columns}", [counts[table] for table in tables])
        row = await cursor.fetchone()
    assert row is not None
    for table, values in zip(tables, row, strict=True):
        ids[table] = sorted(values)
    return ids


async def existing_hashes(
    session: AsyncSession, project_id: int, external_ids: Sequence[str]
) -> dict[str, str]:
    driver = await driver_connection(session)
    async with driver.cursor() as cursor:
        await cursor.execute(
            "SELECT external_id, content_hash FROM prompts "
            "WHERE project_id = %s AND external_id = ANY(%s)",
            [project_id, list(external_ids)],
        )
        return dict(await cursor.fetchall())


async def copy_rows(
    session: AsyncSession, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    if not rows:
        return
    driver = await driver_connection(session)
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    async with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


async def list_batches(session: AsyncSession, project_id: int) -> list[Batch]:
    result = await session.execute(
        select(Batch).where(Batch.project_id == project_id).order_by(Batch.id.desc())
    )
    return list(result.scalars())
