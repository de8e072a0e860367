"""Analytics computed once per change of what they read, kept in Postgres, served from there.

A read compares the stored snapshot's fingerprint of its inputs with the project's now
(``snapshot_repository.Inputs``):

* equal: the snapshot is the answer;
* different, and the project small (at most INLINE_MAX_JUDGMENTS judgments): computed again
  in the request, well under a second, stored, and answered fresh;
* different, and the project big: the stored snapshot is answered at once, saying when it
  was computed and how many votes came since, and a recomputation starts in the background
  (stale-while-revalidate). Per snapshot, one computation runs at a time across all workers:
  it holds a Postgres advisory lock, and a worker that cannot take it leaves the work to the
  one that has it.

A project's first read computes in the request (the API), or (the dashboard of a big
project) starts the computation and shows a page that reloads until it is done. ``refresh``
recomputes on demand. Background work is an asyncio task of the worker that noticed, with
its own connections; nothing else runs between requests.
"""

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pickwise import __version__
from pickwise.analytics import snapshot_repository as repository
from pickwise.analytics.repository import read_only_connection
from pickwise.analytics.snapshot_schemas import SnapshotInfo
from pickwise.core.clock import utcnow
from pickwise.core.db import get_engine, get_read_engine, session_factory
from pickwise.models import Project

logger = logging.getLogger(__name__)

# Up to this many judgments a project's analytics take well under a second to compute, so a
# read that finds them out of date computes them in the request and answers fresh.
INLINE_MAX_JUDGMENTS = 20_000
# Bumped when a computation changes without its answer's shape changing: every stored
# snapshot is then out of date.
COMPUTATION_VERSION = 1

Compute = Callable[[AsyncConnection, Project], Awaitable[BaseModel]]
Keep = Callable[[AsyncSession, Project, BaseModel, datetime], Awaitable[None]]


@dataclass(frozen=True)
class Recipe:
    """What a snapshot holds and how it is computed. ``key`` names it within the project;
    ``keep``, if given, stores what else the rest of the app reads from a fresh computation
    (the report's rater weights), in the same transaction as the snapshot."""

    key: str
    schema: type[BaseModel]
    compute: Compute
    keep: Keep | None = None

    @property
    def version(self) -> str:
        return _version_of(self.schema)


@cache
def _version_of(schema: type[BaseModel]) -> str:
    """The code's version and the answer's shape: a snapshot from other code is out of date."""
    shape = json.dumps(schema.model_json_schema(), sort_keys=True).encode()
    return f"{__version__}/{COMPUTATION_VERSION}/{hashlib.sha256(shape).hexdigest()[:16]}"


@dataclass(frozen=True)
class Served:
    json: str  # the snapshot (or one section of it) as computed
    info: SnapshotInfo

    def with_info(self) -> str:
        """The JSON object with a "snapshot" member added, without parsing it again."""
        body = self.json.strip()
        assert body.startswith("{") and body.endswith("}")
        rest = body[1:].strip()
        separator = "" if rest == "}" else ","
        return f'{{"snapshot": {self.info.model_dump_json()}{separator}{rest}'


def _watermark(recipe: Recipe, inputs: repository.Inputs) -> dict[str, Any]:
    return {"version": recipe.version, **inputs.as_json()}


async def serve(
    connection: AsyncConnection,
    session: AsyncSession,
    project: Project,
    recipe: Recipe,
    *,
    section: str | None = None,
    first_in_background: bool = False,
) -> Served | None:
    """The snapshot (or its ``section``), fresh or as described in the module docstring.

    None only with ``first_in_background``: nothing was computed yet for a big project, and
    the computation has started.
    """
    stored = await repository.load(connection, project.id, recipe.key, section)
    if stored is not None:
        floor = int(stored.watermark.get("judgment_floor", 0))
        now = await repository.inputs(connection, project.id, floor)
        if stored.watermark == _watermark(recipe, now):
            return Served(stored.json, _info(stored, votes_since=0, fresh=True, refreshing=False))
        counted = int(stored.watermark.get("judgments_above_floor", 0))
        votes_since = max(0, now.judgments_above_floor - counted)
        if stored.judgments + votes_since > INLINE_MAX_JUDGMENTS:
            refreshing = start_refresh(project.id, recipe)
            return Served(stored.json, _info(stored, votes_since, False, refreshing))
    elif first_in_background and await _big(connection, project.id):
        start_refresh(project.id, recipe)
        return None
    computed = await compute_and_store(connection, session, project, recipe)
    data = computed.data if section is None else computed.data[section]
    return Served(json.dumps(data), computed.info)


async def refresh(
    connection: AsyncConnection, session: AsyncSession, project: Project, recipe: Recipe
) -> SnapshotInfo | None:
    """Recompute now: in the request for a small project (returns the new snapshot's info),
    in the background for a big one (returns None)."""
    if await _big(connection, project.id):
        start_refresh(project.id, recipe)
        return None
    return (await compute_and_store(connection, session, project, recipe)).info


async def _big(connection: AsyncConnection, project_id: int) -> bool:
    limit = INLINE_MAX_JUDGMENTS + 1
    return await repository.judgments_up_to(connection, project_id, limit) >= limit


def _info(
    stored: repository.Stored, votes_since: int, fresh: bool, refreshing: bool
) -> SnapshotInfo:
    return SnapshotInfo(
        computed_at=stored.computed_at,
        compute_seconds=stored.compute_seconds,
        votes_since=votes_since,
        fresh=fresh,
        refreshing=refreshing,
    )


@dataclass(frozen=True)
class _Computed:
    data: dict[str, Any]
    info: SnapshotInfo


async def compute_and_store(
    connection: AsyncConnection, session: AsyncSession, project: Project, recipe: Recipe
) -> _Computed:
    """Computes from ``connection``'s snapshot of the data and stores through ``session``
    (the primary), where it is committed with the rest of the transaction."""
    computed_at = utcnow()
    started = time.perf_counter()
    inputs = await repository.inputs_to_compute(connection, project.id)
    result = await recipe.compute(connection, project)
    judgments = await repository.judgments_total(connection, project.id)
    seconds = time.perf_counter() - started
    data = result.model_dump(mode="json")
    await repository.store(
        session,
        project.id,
        recipe.key,
        data=data,
        watermark=_watermark(recipe, inputs),
        computed_at=computed_at,
        compute_seconds=seconds,
        judgments=judgments,
    )
    if recipe.keep is not None:
        await recipe.keep(session, project, result, computed_at)
    info = SnapshotInfo(
        computed_at=computed_at,
        compute_seconds=seconds,
        votes_since=0,
        fresh=True,
        refreshing=False,
    )
    return _Computed(data, info)


# --- in the background ------------------------------------------------------------------

# Strong references: the event loop keeps only weak ones to its tasks.
_tasks: dict[tuple[int, str], asyncio.Task[None]] = {}


def start_refresh(project_id: int, recipe: Recipe) -> bool:
    """Starts recomputing in this worker unless it already is; always True (a computation is
    under way here or, if another worker holds the lock, there)."""
    key = (project_id, recipe.key)
    if key not in _tasks:
        task = asyncio.get_running_loop().create_task(_refresh(project_id, recipe))
        _tasks[key] = task
        task.add_done_callback(lambda _: _tasks.pop(key, None))
    return True


async def _refresh(project_id: int, recipe: Recipe) -> None:
    try:
        async with session_factory(get_engine())() as session:
            if not await repository.try_lock(session, project_id, recipe.key):
                return  # another worker is computing it
            project = await session.get(Project, project_id)
            if project is None:
                return
            async with read_only_connection(get_read_engine()) as connection:
                await compute_and_store(connection, session, project, recipe)
            await session.commit()
    except Exception:
        # The next read finds the snapshot still out of date and tries again.
        logger.exception("analytics of project %s (%s) not recomputed", project_id, recipe.key)


async def settle() -> None:
    """Waits for this worker's background computations (tests; a clean shutdown)."""
    while _tasks:
        await asyncio.gather(*list(_tasks.values()), return_exceptions=True)
