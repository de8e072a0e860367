"""Bulk writes for imports: ids taken from the sequences up front, rows sent with COPY."""

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Batch, Prompt


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver


async def next_ids(session: AsyncSession, table: str, count: int) -> list[int]:
    if count == 0:
        return []
    result = await session.execute(
        text(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
            "FROM generate_series(1, :count)"
        ),
        {"count": count},
    )
    return [int(value) for value in result.scalars()]


async def existing_hashes(
    session: AsyncSession, project_id: int, external_ids: Sequence[str]
) -> dict[str, str]:
    result = await session.execute(
        select(Prompt.external_id, Prompt.content_hash).where(
            Prompt.project_id == project_id, Prompt.external_id.in_(external_ids)
        )
    )
    return {external_id: content_hash for external_id, content_hash in result}


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
