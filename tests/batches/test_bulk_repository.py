"""The import's own statements over the psycopg connection (batches.bulk_repository)."""

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches import bulk_repository
from pickwise.core.db import driver_connection

TABLES = ("prompts", "responses", "pairs")


async def test_reserved_ids_come_from_each_tables_sequence_increasing(
    session: AsyncSession,
) -> None:
    driver = await driver_connection(session)
    first = await bulk_repository.reserve_ids(driver, {"prompts": 3, "responses": 0, "pairs": 5})
    second = await bulk_repository.reserve_ids(driver, {"prompts": 2, "responses": 4, "pairs": 1})
    assert [len(first[t]) for t in TABLES] == [3, 0, 5]
    assert [len(second[t]) for t in TABLES] == [2, 4, 1]
    for table in TABLES:
        both = first[table] + second[table]
        assert both == sorted(both) and len(set(both)) == len(both)
        async with driver.cursor() as cursor:
            await cursor.execute(
                "SELECT last_value FROM " + f"{table}_id_seq"  # the sequence the ids came from
            )
            row = await cursor.fetchone()
        assert row is not None
        if both:
            assert both[-1] == row[0]


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


async def test_each_tables_sequence_is_looked_up_once_not_once_an_id(
    session: AsyncSession,
) -> None:
    """`pg_get_serial_sequence` is a catalog lookup: computed in the id series' own row, it
    cost ~8x what `nextval` does (docs/benchmarks.md, "i28d"). Its own one-row node, which
    the series then reads, is what makes it once a table."""
    driver = await driver_connection(session)
    async with driver.cursor() as cursor:
        await cursor.execute(
            "EXPLAIN (VERBOSE, FORMAT JSON) " + bulk_repository.reserve_ids_sql(TABLES),
            [10, 20, 10],
        )
        row = await cursor.fetchone()
    assert row is not None
    nodes = _nodes(row[0][0]["Plan"])
    for table in TABLES:
        lookup = f"pg_get_serial_sequence('{table}'::text, 'id'::text)"
        computed_once = [
            node
            for node in nodes
            if node["Node Type"] == "Result"
            and "Plans" not in node
            and node["Plan Rows"] == 1
            and any(lookup in output for output in node.get("Output", []))
        ]
        assert computed_once, f"{table}: the sequence is looked up for every id"


async def test_json_values_reach_jsonb_as_the_file_gave_them(session: AsyncSession) -> None:
    """orjson writes them, the stdlib where orjson cannot (an integer beyond 64 bits); floats
    may be spelt otherwise, never stored as another number."""
    driver = await driver_connection(session)
    values: list[Any] = [
        {"t": 0.5, "small": 1e-05, "large": 1e300, "é": "😀\n\u2028", "n": [None, True, -3]},
        {"big": 2**70, "neg": -(2**64)},
        [{"role": "user", "content": "Q?"}],
        {},
    ]
    for value in values:
        async with driver.cursor() as cursor:
            await cursor.execute(
                "SELECT %s::jsonb = %s::jsonb",
                [bulk_repository.as_json(value), json.dumps(value)],
            )
            row = await cursor.fetchone()
        assert row == (True,), value
