"""Project analytics as JSON, for admins. Methods: docs/analytics.md; which votes count where:
the docstring of ``analytics.service``; how answers are kept and when they are recomputed:
``analytics.snapshots``."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from pickwise.analytics import recipes, service, snapshots
from pickwise.analytics.repository import read_only_connection
from pickwise.analytics.snapshot_schemas import (
    AgreementSnapshot,
    LeaderboardSnapshot,
    PreferencesSnapshot,
    ProgressSnapshot,
    RatersSnapshot,
    SnapshotInfo,
    TimelineSnapshot,
)
from pickwise.core.db import get_read_engine
from pickwise.core.deps import SessionDep
from pickwise.models import Project
from pickwise.projects.deps import AdminProject

router = APIRouter(prefix="/api/v1/projects/{project_id}/analytics", tags=["analytics"])


async def analytics_connection() -> AsyncIterator[AsyncConnection]:
    """A read-only connection (to the replica if one is configured), one snapshot per request."""
    async with read_only_connection(get_read_engine()) as connection:
        yield connection


# Declared after AdminProject in every route, so a non-admin is refused before any read.
AnalyticsConnection = Annotated[AsyncConnection, Depends(analytics_connection)]


async def _answer(
    connection: AsyncConnection,
    session: SessionDep,
    project: Project,
    recipe: snapshots.Recipe,
    section: str | None,
) -> Response:
    """The stored JSON as it is, plus "snapshot": not parsed and validated again."""
    served = await snapshots.serve(connection, session, project, recipe, section=section)
    assert served is not None
    return Response(served.with_info(), media_type="application/json")


@router.get("/progress", response_model=ProgressSnapshot, summary="Pairs done, judgments so far")
async def progress(
    project: AdminProject, connection: AnalyticsConnection, session: SessionDep
) -> Response:
    return await _answer(connection, session, project, recipes.REPORT, "progress")


@router.get("/timeline", response_model=TimelineSnapshot, summary="Judgments per day (UTC)")
async def timeline(
    project: AdminProject, connection: AnalyticsConnection, session: SessionDep
) -> Response:
    return await _answer(connection, session, project, recipes.REPORT, "timeline")


@router.get(
    "/raters",
    response_model=RatersSnapshot,
    summary="Rater quality: gold accuracy, agreement, position bias, pace, Dawid-Skene, flags",
)
async def raters(
    project: AdminProject, connection: AnalyticsConnection, session: SessionDep
) -> Response:
    return await _answer(connection, session, project, recipes.REPORT, "raters")


@router.get(
    "/agreement",
    response_model=AgreementSnapshot,
    summary="Agreement with and without ties and Krippendorff's alpha, per project/batch/rater",
)
async def agreement(
    project: AdminProject, connection: AnalyticsConnection, session: SessionDep
) -> Response:
    return await _answer(connection, session, project, recipes.REPORT, "agreement")


@router.get(
    "/leaderboard",
    response_model=LeaderboardSnapshot,
    summary="Bradley-Terry leaderboard with bootstrap intervals, win rates and style control",
)
async def leaderboard(
    project: AdminProject,
    connection: AnalyticsConnection,
    session: SessionDep,
    bootstrap_rounds: Annotated[
        int, Query(ge=100, le=2000, description="Bootstrap rounds for the intervals.")
    ] = service.BOOTSTRAP_ROUNDS,
    seed: Annotated[int, Query(description="Seed of the bootstrap.")] = 0,
) -> Response:
    recipe, section = recipes.leaderboard(bootstrap_rounds, seed)
    return await _answer(connection, session, project, recipe, section)


@router.get(
    "/preferences",
    response_model=PreferencesSnapshot,
    summary="What the preferences teach: feature weights and held-out accuracy",
)
async def preferences(
    project: AdminProject,
    connection: AnalyticsConnection,
    session: SessionDep,
    batch_id: Annotated[int | None, Query(description="Only votes on this batch.")] = None,
    rater_id: Annotated[
        int | None, Query(description="Only this rater's votes (even if excluded).")
    ] = None,
) -> Response:
    recipe, section = recipes.preferences(batch_id, rater_id)
    return await _answer(connection, session, project, recipe, section)


@router.post(
    "/refresh",
    response_model=SnapshotInfo,
    status_code=200,
    responses={202: {"description": "A big project: recomputing in the background."}},
    summary="Recompute the analytics now",
)
async def refresh(
    project: AdminProject, connection: AnalyticsConnection, session: SessionDep
) -> Response:
    """Small projects are recomputed in the request (200, the new snapshot's info); big ones
    in the background (202): reads answer from the old snapshot until the new one is in."""
    info = await snapshots.refresh(connection, session, project, recipes.REPORT)
    if info is None:
        return JSONResponse({"refreshing": True}, status_code=202)
    return Response(info.model_dump_json(), media_type="application/json")
