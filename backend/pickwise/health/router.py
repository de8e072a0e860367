"""Operating endpoints: liveness, readiness and Prometheus metrics (no authentication;
the reverse proxy keeps /metrics off the public internet)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from pickwise.core import metrics
from pickwise.core.deps import SessionDep
from pickwise.health import service

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated to the version this code expects",
    responses={503: {"description": "Not ready: the database is down or not migrated."}},
)
async def readyz(session: SessionDep) -> JSONResponse:
    readiness = await service.readiness(session)
    return JSONResponse(
        {"status": "ready" if readiness.ready else "not ready", "detail": readiness.detail},
        status_code=200 if readiness.ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def prometheus_metrics(session: SessionDep) -> Response:
    slots = await service.slots_or_none(session)
    return Response(metrics.render(slots), media_type=metrics.CONTENT_TYPE)
