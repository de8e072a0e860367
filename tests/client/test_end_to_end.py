"""End to end: `pickwise serve` as a subprocess on loopback, the client over real HTTP, and the
server's background worker delivering signed webhooks to a receiver on loopback."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from pickwise.auth import service as auth_service
from pickwise.client import Client
from pickwise.core.db import get_engine, session_factory
from tests.client.test_client import rows
from tests.factories import make_user
from tests.webhooks.receiver import Received, receiver

PICKWISE = str(Path(sys.executable).with_name("pickwise"))


@contextmanager
def served(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [PICKWISE, "serve", "--no-migrate", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "ENVIRONMENT": "test"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "server.log").read_text()[-5000:])
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def scenario(
    url: str, token: str, hook_url: str, received: Received, tmp_path: Path
) -> dict[str, Any]:
    with Client(url, token) as pw:
        project = pw.create_project("end-to-end", "End to end", raters_per_pair=2)
        made = httpx.post(
            f"{url}/api/v1/projects/{project.id}/webhooks",
            json={"url": hook_url, "events": ["batch.imported"]},
            headers={"Authorization": f"Bearer {token}"},
        )
        made.raise_for_status()
        with received.lock:
            received.secret = made.json()["secret"]
        summaries = pw.add_prompts(project, rows(12), batch_rows=5)
        progress = pw.progress("end-to-end")
        export = pw.download_export(project, path=tmp_path / "trl.jsonl", format="trl")
        return {
            "batch_ids": sorted(s.batch_id for s in summaries),
            "progress": progress,
            "export": export,
        }


async def test_client_and_webhooks_against_a_real_server(live_app: Any, tmp_path: Path) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        admin = await make_user(session, role="admin")
        token, _ = await auth_service.create_api_token(session, admin, "e2e")
    with receiver() as (hook_url, received), served(tmp_path) as url:
        result = await asyncio.to_thread(scenario, url, token, hook_url, received, tmp_path)
        assert await asyncio.to_thread(received.wait_for_events, 3, 20)
    assert result["progress"].pairs_open == 12 and result["progress"].judgments_needed == 24
    assert result["export"].exists()
    assert received.bad_signatures == 0
    assert sorted(e["data"]["batch"]["id"] for e in received.events) == result["batch_ids"]
    assert {e["event"] for e in received.events} == {"batch.imported"}
