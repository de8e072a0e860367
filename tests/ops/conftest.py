"""Helpers for tests that run the app as real server processes on loopback ports."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.conftest import ROOT
from tests.tables import empty_all_tables

BIN = Path(sys.executable).parent
STARTUP_SECONDS = 40


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(overrides)
    return env


def start(
    command: list[str], port: int, log: Path, env: dict[str, str], cwd: Path = ROOT
) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: Server, path: str = "/readyz") -> None:
    """Poll until the server answers 200 (a deadline only guards against a hang)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"server exited early:\n{server.output()}")
        try:
            if httpx.get(server.url + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server not ready in {STARTUP_SECONDS}s:\n{server.output()}")


def stop(server: Server) -> int:
    """SIGTERM, like an orchestrator; returns the exit code."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    return server.process.returncode


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test started; all are stopped afterwards."""
    started: list[Server] = []
    yield started
    for server in started:
        stop(server)


@pytest.fixture
async def committed(database_url: str) -> AsyncIterator[None]:
    """For tests that commit through real servers: every table is emptied afterwards."""
    yield
    from pickwise.core.db import get_engine

    engine = get_engine()
    await empty_all_tables(engine)
    await engine.dispose()


@pytest.fixture
async def database_down(app) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    """The app's sessions point at a port where no Postgres listens (refused at once)."""
    from pickwise.core.db import get_session, get_units

    engine = create_async_engine(
        "postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 2}
    )

    @asynccontextmanager
    async def unreachable_unit() -> AsyncIterator[AsyncSession]:
        async with AsyncSession(engine) as session:
            yield session

    async def unreachable() -> AsyncIterator[AsyncSession]:
        async with unreachable_unit() as session:
            yield session

    app.dependency_overrides[get_session] = unreachable
    app.dependency_overrides[get_units] = lambda: unreachable_unit
    yield
    await engine.dispose()
