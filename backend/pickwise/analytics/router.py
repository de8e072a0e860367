"""Project analytics as JSON, for admins. Methods: docs/analytics.md; which votes count where:
the docstring of ``analytics.service``."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncConnection

from pickwise.analytics import service
from pickwise.analytics.repository import read_only_connection
from pickwise.analytics.schemas import (
    AgreementRead,
    LeaderboardRead,
    PreferencesRead,
    ProgressRead,
    RatersRead,
    TimelineRead,
)
from pickwise.core.db import get_read_engine
from pickwise.projects.deps import AdminProject

router = APIRouter(prefix="/api/v1/projects/{project_id}/analytics", tags=["analytics"])


async def analytics_connection() -> AsyncIterator[AsyncConnection]:
    """A read-only connection (to the replica if one is configured), one snapshot per request."""
    async with read_only_connection(get_read_engine()) as connection:
        yield connection


# Declared after AdminProject in every route, so a non-admin is refused before any read.
AnalyticsConnection = Annotated[AsyncConnection, Depends(analytics_connection)]


@router.get("/progress", response_model=ProgressRead, summary="Pairs done, judgments so far")
async def progress(project: AdminProject, connection: AnalyticsConnection) -> ProgressRead:
    return await service.progress(connection, project.id)


@router.get("/timeline", response_model=TimelineRead, summary="Judgments per day (UTC)")
async def timeline(project: AdminProject, connection: AnalyticsConnection) -> TimelineRead:
    return await service.timeline(connection, project.id)


@router.get(
    "/raters",
    response_model=RatersRead,
    summary="Rater quality: gold accuracy, agreement, position bias, pace, Dawid-Skene, flags",
)
async def raters(project: AdminProject, connection: AnalyticsConnection) -> RatersRead:
    return await service.raters(connection, project)


@router.get(
    "/agreement",
    response_model=AgreementRead,
    summary="Agreement with and without ties and Krippendorff's alpha, per project/batch/rater",
)
async def agreement(project: AdminProject, connection: AnalyticsConnection) -> AgreementRead:
    return await service.agreement(connection, project.id)


@router.get(
    "/leaderboard",
    response_model=LeaderboardRead,
    summary="Bradley-Terry leaderboard with bootstrap intervals, win rates and style control",
)
async def leaderboard(
    project: AdminProject,
    connection: AnalyticsConnection,
    bootstrap_rounds: Annotated[
        int, Query(ge=100, le=2000, description="Bootstrap rounds for the intervals.")
    ] = service.BOOTSTRAP_ROUNDS,
    seed: Annotated[int, Query(description="Seed of the bootstrap.")] = 0,
) -> LeaderboardRead:
    return await service.leaderboard(
        connection, project.id, bootstrap_rounds=bootstrap_rounds, seed=seed
    )


@router.get(
    "/preferences",
    response_model=PreferencesRead,
    summary="What the preferences teach: feature weights and held-out accuracy",
)
async def preferences(
    project: AdminProject,
    connection: AnalyticsConnection,
    batch_id: Annotated[int | None, Query(description="Only votes on this batch.")] = None,
    rater_id: Annotated[
        int | None, Query(description="Only this rater's votes (even if excluded).")
    ] = None,
) -> PreferencesRead:
    return await service.preferences(connection, project.id, batch_id=batch_id, rater_id=rater_id)
