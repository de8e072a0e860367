"""The app for browser tests that stop and move the server's clock without sleeping: before
each request it sets pickwise's clock (core.clock) from a file the test writes (an ISO time,
or nothing for the real time)."""

import os
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request, Response
from starlette.middleware.base import RequestResponseEndpoint

from pickwise.app import create_app as create_pickwise_app
from pickwise.core import clock

CLOCK_FILE_VARIABLE = "PICKWISE_TEST_CLOCK_FILE"


def _follow(clock_file: Path) -> None:
    written = clock_file.read_text().strip()
    clock.reset()
    if written:
        clock.freeze()
        clock.advance(datetime.fromisoformat(written) - clock.utcnow())


def create_app() -> FastAPI:
    app = create_pickwise_app()
    clock_file = Path(os.environ[CLOCK_FILE_VARIABLE])

    @app.middleware("http")
    async def follow_the_test_clock(
        request: Request, call_next: RequestResponseEndpoint
    ) -> Response:
        _follow(clock_file)
        return await call_next(request)

    return app
