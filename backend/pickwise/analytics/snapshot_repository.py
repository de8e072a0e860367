"""Analytics snapshots in and out of Postgres, and the fingerprint of what analytics read.

The fingerprint (``Inputs``) is a handful of small reads: judgments newer than a floor a
little below the newest one the snapshot counted (a judgment that committed late, with a
lower id, still lands above it), the members with their exclusions, the pairs out of the
queue, the last batch, k, the quality rules and the overlap settings. Each is served by an
index, so checking a snapshot costs about a millisecond however many votes the project holds.
"""

import dataclasses
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pickwise.analytics.repository import fetch_all
from pickwise.models import AnalyticsSnapshot
from pickwise.vocabulary import PairStatus

# A judgment counted as "since the snapshot" if its id is above the newest counted one minus
# this: ids are drawn before the transaction commits, so one that was still in flight when
# the snapshot was read may commit later with a lower id than the newest it saw.
LATE_COMMIT_WINDOW = 10_000


@dataclass(frozen=True)
class Inputs:
    """Fingerprint of a project's analytics inputs; equal fingerprints, equal analytics."""

    judgment_floor: int
    judgments_above_floor: int
    members: str  # md5 of (user, member, excluded) of members and excluded raters
    out_of_queue: str  # md5 of (pair, status) for flagged and removed pairs
    last_batch: int
    raters_per_pair: int
    quality_rules: str  # md5
    overlap: str  # md5 of the overlap settings (progress reports on them)
    # The newest choice or skip a rater replaced (judgments.changes): a change edits or
    # removes a judgment without adding one above the floor.
    last_change: int = 0

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_NEWEST_JUDGMENT = "SELECT coalesce(max(id), 0) FROM judgments WHERE project_id = %(project_id)s"
_INPUTS = f"""
    SELECT
      (SELECT count(*) FROM judgments j
       WHERE j.project_id = p.id AND j.id > %(floor)s),
      (SELECT md5(coalesce(string_agg(r.user_id::text || ':' || r.member::text || ':'
                                      || r.excluded::text, ',' ORDER BY r.user_id), ''))
       FROM (SELECT user_id, m.user_id IS NOT NULL AS member, x.user_id IS NOT NULL AS excluded
             FROM (SELECT user_id FROM project_members WHERE project_id = p.id) m
             FULL JOIN (SELECT user_id FROM project_rater_exclusions WHERE project_id = p.id) x
             USING (user_id)) r),
      (SELECT md5(coalesce(string_agg(q.id::text || ':' || q.status, ',' ORDER BY q.id), ''))
       FROM pairs q WHERE q.project_id = p.id AND q.status <> '{PairStatus.ACTIVE}'),
      (SELECT coalesce(max(b.id), 0) FROM batches b WHERE b.project_id = p.id),
      p.raters_per_pair,
      md5(p.quality_rules::text),
      md5(concat_ws(',', p.overlap_mode, p.overlap_min, p.overlap_max, p.overlap_rule,
                    p.overlap_stop_votes, p.overlap_stop_share, p.overlap_stop_posterior)),
      (SELECT coalesce(max(r.id), 0) FROM replaced_decisions r WHERE r.project_id = p.id)
    FROM projects p WHERE p.id = %(project_id)s
"""


async def inputs(connection: AsyncConnection, project_id: int, floor: int) -> Inputs:
    """The fingerprint now, counting judgments above ``floor``."""
    row = (await fetch_all(connection, _INPUTS, {"project_id": project_id, "floor": floor}))[0]
    return Inputs(
        floor, int(row[0]), row[1], row[2], int(row[3]), int(row[4]), row[5], row[6], int(row[7])
    )


async def inputs_to_compute(connection: AsyncConnection, project_id: int) -> Inputs:
    """The fingerprint a new snapshot is stored with (read in the snapshot it is computed
    from): its floor sits LATE_COMMIT_WINDOW below the newest judgment."""
    newest = (await fetch_all(connection, _NEWEST_JUDGMENT, {"project_id": project_id}))[0][0]
    return await inputs(connection, project_id, max(0, int(newest) - LATE_COMMIT_WINDOW))


_JUDGMENTS_UP_TO = """
    SELECT count(*) FROM (
        SELECT 1 FROM judgments WHERE project_id = %(project_id)s LIMIT %(limit)s
    ) AS first_ones
"""


async def judgments_up_to(connection: AsyncConnection, project_id: int, limit: int) -> int:
    """The project's judgments, counted only up to ``limit`` (cheap for a big project)."""
    rows = await fetch_all(connection, _JUDGMENTS_UP_TO, {"project_id": project_id, "limit": limit})
    return int(rows[0][0])


async def judgments_total(connection: AsyncConnection, project_id: int) -> int:
    rows = await fetch_all(
        connection,
        "SELECT count(*) FROM judgments WHERE project_id = %(project_id)s",
        {"project_id": project_id},
    )
    return int(rows[0][0])


@dataclass(frozen=True)
class Stored:
    """A stored snapshot: its JSON (all of it, or one section), as Postgres wrote it."""

    json: str
    watermark: dict[str, Any]
    computed_at: datetime
    compute_seconds: float
    judgments: int


_LOAD = """
    SELECT {data}, watermark, computed_at, compute_seconds, judgments
    FROM analytics_snapshots WHERE project_id = %(project_id)s AND key = %(key)s
"""


async def load(
    connection: AsyncConnection, project_id: int, key: str, section: str | None = None
) -> Stored | None:
    """The snapshot, or one top-level section of it, as JSON text (never parsed here)."""
    data = "data::text" if section is None else "(data -> %(section)s)::text"
    rows = await fetch_all(
        connection,
        _LOAD.format(data=data),
        {"project_id": project_id, "key": key, "section": section},
    )
    if not rows or rows[0][0] is None:
        return None
    json, watermark, computed_at, compute_seconds, judgments = rows[0]
    return Stored(json, watermark, computed_at, float(compute_seconds), int(judgments))


async def store(
    session: AsyncSession,
    project_id: int,
    key: str,
    *,
    data: dict[str, Any],
    watermark: dict[str, Any],
    computed_at: datetime,
    compute_seconds: float,
    judgments: int,
) -> None:
    """Insert or replace; a snapshot computed from older data never replaces a newer one."""
    values = {
        "data": data,
        "watermark": watermark,
        "computed_at": computed_at,
        "compute_seconds": compute_seconds,
        "judgments": judgments,
    }
    statement = insert(AnalyticsSnapshot).values(project_id=project_id, key=key, **values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[AnalyticsSnapshot.project_id, AnalyticsSnapshot.key],
            set_=values,
            where=AnalyticsSnapshot.computed_at <= statement.excluded.computed_at,
        )
    )


# First key of the two-key advisory lock a snapshot's computation holds; the rater loop's
# locks use -1 and ids >= 0 (assignments.repository).
_SNAPSHOT_LOCK = -2
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:namespace, :key)")


async def try_lock(session: AsyncSession, project_id: int, key: str) -> bool:
    """Whether this transaction now computes the snapshot; False if another one is."""
    # crc32 of the key, folded into int4 with the project: a collision only makes two
    # snapshots of one project take turns.
    lock_key = (zlib.crc32(key.encode()) ^ project_id) % 2_147_483_647
    return bool(await session.scalar(_TRY_LOCK, {"namespace": _SNAPSHOT_LOCK, "key": lock_key}))
