"""Browser tests: the real app under uvicorn, committed data, headless Chromium.

The server is a subprocess on a free loopback port against the test database; the data it
serves is committed through a separate engine, and every table is emptied afterwards (as
`live_app` does).
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from pickwise.assignments.slots_service import create_slots
from pickwise.models import Batch, Pair, Project, Prompt, Response, User
from tests.browser.clocked_app import CLOCK_FILE_VARIABLE
from tests.factories import PASSWORD, add_member, make_project, make_user
from tests.tables import empty_all_tables

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "docs" / "screenshots"


def screenshot_path(tmp_path: Path, name: str) -> str:
    """docs/screenshots/<name> when PICKWISE_SCREENSHOTS=1; otherwise a throwaway file, so a
    test run does not rewrite a tracked image (which side is left is random)."""
    if os.environ.get("PICKWISE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return str(SCREENSHOTS / name)
    return str(tmp_path / name)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 30.0
CLOCKED_APP = "tests.browser.clocked_app:create_app"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(
    database_url: str, log_path: Path, factory: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    port = _free_port()
    environment = {**os.environ, "DATABASE_URL": database_url, "ENVIRONMENT": "test", **(env or {})}
    environment.pop("READ_DATABASE_URL", None)
    command = [sys.executable, "-m", "uvicorn", factory, "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(process, base_url, log_path)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of pickwise served by uvicorn in a subprocess (one per test module: starting
    it takes seconds)."""
    log_path = tmp_path_factory.mktemp("live-server") / "server.log"
    yield from _serve(database_url, log_path, "pickwise.app:create_app")


@dataclass(frozen=True)
class ClockedServer:
    base_url: str
    clock_file: Path

    def set_time(self, moment: datetime | None) -> None:
        """The server's clock from its next request: stopped at `moment`, or real (None)."""
        self.clock_file.write_text(moment.isoformat() if moment else "")


@pytest.fixture(scope="module")
def clocked_server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClockedServer]:
    """Like live_server, with a clock the test stops and moves (tests/browser/clocked_app.py)."""
    folder = tmp_path_factory.mktemp("clocked-server")
    clock_file = folder / "clock"
    clock_file.write_text("")
    env = {CLOCK_FILE_VARIABLE: str(clock_file)}
    for base_url in _serve(database_url, folder / "server.log", CLOCKED_APP, env):
        yield ClockedServer(base_url, clock_file)


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the server did not start:\n{log_path.read_text()}")


@pytest.fixture
async def committed_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine whose writes the server sees; every table is emptied afterwards."""
    engine = create_async_engine(database_url)
    try:
        yield engine
    finally:
        await empty_all_tables(engine)
        await engine.dispose()


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    assert CHROMIUM.exists(), "install Chromium first: apt-get install -y chromium"
    return CHROMIUM


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@dataclass(frozen=True)
class RatingSetup:
    rater_id: int
    email: str
    project_id: int


SYSTEM_PROMPT = "You are a patient programming tutor. Keep answers short."
CONVERSATIONS = [
    (
        "How do I reverse a list in Python?",
        "Use slicing:\n\n```python\nnumbers = [1, 2, 3]\nreversed_numbers = numbers[::-1]\n"
        "```\n\nThis makes a **new** list; `numbers.reverse()` changes the list in place.",
        "You're absolutely right to ask! There are a few ways:\n\n"
        "1. `reversed(numbers)` gives an iterator\n2. `numbers[::-1]` gives a new list\n"
        "3. `numbers.reverse()` reverses in place\n\nI think slicing is probably the "
        "most common.",
    ),
    (
        "What is the capital of Australia?",
        "Canberra.",
        "The capital of Australia is **Canberra**, not Sydney as many people assume. "
        "It was chosen in 1908 as a compromise between Sydney and Melbourne.",
    ),
    (
        "Compare tuples and lists in one table.",
        "| | list | tuple |\n|---|---|---|\n| mutable | yes | no |\n| syntax | `[1, 2]` | "
        "`(1, 2)` |",
        "Lists can change after you create them; tuples cannot. Use a tuple for a fixed "
        "record and a list for a collection that grows.",
    ),
    (
        "Say hello in French.",
        "Bonjour !",
        "<script>alert('hi')</script> Salut !",
    ),
]


LONG_ANSWER = "\n\n".join(
    f"Step {number}: read the error message again, then change one thing and run it once more."
    for number in range(1, 41)
)


async def seed_rating_project(
    engine: AsyncEngine,
    conversations: list[tuple[str, str, str]] | None = None,
    **settings: object,
) -> RatingSetup:
    """A rater (who logs in with PASSWORD) and a project with one pair per conversation."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        rater: User = await make_user(session, password=PASSWORD)
        rater.display_name = "Ada"
        project: Project = await make_project(session, **settings)
        project.name = "Helpfulness, round 1"
        await add_member(session, project, rater)
        batch = Batch(
            project_id=project.id, filename="browser.jsonl", sha256="0" * 64, source="cli"
        )
        session.add(batch)
        await session.flush()
        for number, (question, first, second) in enumerate(conversations or CONVERSATIONS):
            prompt = Prompt(
                project_id=project.id,
                batch_id=batch.id,
                external_id=f"q{number}",
                system=SYSTEM_PROMPT,
                turns=[{"role": "user", "content": question}],
                content_hash="0" * 64,
            )
            session.add(prompt)
            await session.flush()
            responses = [
                Response(
                    project_id=project.id,
                    prompt_id=prompt.id,
                    external_id=str(side),
                    model=f"hidden-model-{side}",
                    content=content,
                )
                for side, content in enumerate((first, second))
            ]
            session.add_all(responses)
            await session.flush()
            session.add(
                Pair(
                    project_id=project.id,
                    prompt_id=prompt.id,
                    batch_id=batch.id,
                    response_a_id=responses[0].id,
                    response_b_id=responses[1].id,
                )
            )
        await session.flush()
        await create_slots(session, project, batch.id)
        await session.commit()
        return RatingSetup(rater.id, rater.email, project.id)
