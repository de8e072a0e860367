"""Exports read from Postgres: the CLI folder, the streamed API download, and the filters."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

from pickwise.assignments.service import chance
from pickwise.core.db import get_engine, session_factory
from pickwise.models.webhooks import Webhook, WebhookDelivery
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

PICKWISE = str(Path(sys.executable).with_name("pickwise"))


async def seed(app: Any) -> dict[str, Any]:
    """8 regular pairs rated by 3 raters (rater 3 always picks the other side), 1 gold pair."""
    chance.seed(1)
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(
            session, raters_per_pair=3, strength_scale=["a bit", "a lot"], gold_rate=0.5
        )
        await make_pairs(session, project, 9, gold=1)
        admin = await make_user(session, role="admin")
        admin_headers = await bearer_headers(session, admin)
        raters = []
        for _ in range(3):
            rater = await make_user(session)
            await add_member(session, project, rater)
            raters.append((rater, await bearer_headers(session, rater)))
        info = {"project": project, "admin": admin_headers, "raters": raters}
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        for number, (_, headers) in enumerate(raters):
            while True:
                body = (
                    await client.get(f"/api/v1/projects/{project.id}/next", headers=headers)
                ).json()
                if body["assignment_id"] is None:
                    break
                shown_left_is_a = body["left"]["content"].startswith("Answer 0")
                wants_a = number < 2
                side = "left" if shown_left_is_a == wants_a else "right"
                response = await client.post(
                    f"/api/v1/assignments/{body['assignment_id']}/judgment",
                    json={"choice": side, "strength": 1},
                    headers=headers,
                )
                assert response.status_code == 201
    return info


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PICKWISE, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=120
    )


async def test_cli_export_folder_is_reproducible(live_app: Any, tmp_path: Path) -> None:
    info = await seed(live_app)
    slug = info["project"].slug
    async with session_factory(get_engine())() as session, session.begin():
        session.add(
            Webhook(
                project_id=info["project"].id,
                url="http://127.0.0.1:9/hook",
                secret="s" * 32,
                events=["export.ready"],
            )
        )
    first = await asyncio.to_thread(
        run_cli, "export", slug, "--format", "trl", "--out", str(tmp_path / "one")
    )
    assert first.returncode == 0, first.stdout + first.stderr
    second = await asyncio.to_thread(
        run_cli, "export", slug, "--format", "trl", "--out", str(tmp_path / "two")
    )
    assert second.returncode == 0, second.stderr
    (folder_one,) = (tmp_path / "one").iterdir()
    (folder_two,) = (tmp_path / "two").iterdir()
    assert folder_one.name.startswith(f"{slug}-") and folder_one.name.endswith("-trl")
    for name in ("train.jsonl", "test.jsonl"):
        assert (folder_one / name).read_bytes() == (folder_two / name).read_bytes()
    manifest = json.loads((folder_one / "manifest.json").read_text())
    rows = [
        json.loads(line)
        for name in ("train.jsonl", "test.jsonl")
        for line in (folder_one / name).read_text().splitlines()
    ]
    # 8 regular pairs, each 2 votes for "Answer 0" against 1: all kept; the gold pair is not.
    assert len(rows) == 8
    assert all(row["chosen"].startswith("Answer 0") for row in rows)
    assert all(set(row) == {"prompt", "chosen", "rejected", "margin"} for row in rows)
    # margin = strength (2 of 2) x agreement (2 of 3).
    assert {row["margin"] for row in rows} == {round(2 / 3, 6)}
    assert "pickwise export" in manifest["command"]
    assert (folder_one / "README.md").read_text().startswith("---\n")
    # Each export queued an export.ready webhook carrying its manifest.
    async with session_factory(get_engine())() as session:
        payloads = list(
            await session.scalars(
                select(WebhookDelivery.payload).where(WebhookDelivery.event == "export.ready")
            )
        )
    assert len(payloads) == 2
    assert all("manifest" in str(payload) for payload in payloads)


async def test_api_stream_matches_filters(live_app: Any) -> None:
    info = await seed(live_app)
    project, admin = info["project"], info["admin"]
    url = f"/api/v1/projects/{project.id}/export"
    async with AsyncClient(transport=ASGITransport(app=live_app), base_url="http://t") as client:
        votes = await client.get(url, params={"format": "votes"}, headers=admin)
        assert votes.status_code == 200
        assert votes.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in votes.text.splitlines()]
        assert len(lines) == 24
        assert all("@" not in line["rater"] for line in lines)
        with_gold = await client.get(
            url, params={"format": "votes", "include_gold": "true"}, headers=admin
        )
        assert len(with_gold.text.splitlines()) == 27
        # Excluding the contrarian rater makes every pair unanimous.
        contrarian = info["raters"][2][0]
        excluded = await client.post(
            f"/api/v1/projects/{project.id}/members/{contrarian.id}/exclude", headers=admin
        )
        assert excluded.status_code == 204
        unanimous = await client.get(
            url, params={"format": "trl", "aggregation": "unanimous"}, headers=admin
        )
        assert len(unanimous.text.splitlines()) == 8
        preview = await client.get(
            f"{url}/preview",
            params={"format": "trl", "aggregation": "unanimous", "include_excluded": "true"},
            headers=admin,
        )
        body = preview.json()
        assert body["kept"] == 0 and body["dropped"] == {"not_unanimous": 8}
        rater_headers = info["raters"][0][1]
        assert (await client.get(url, headers=rater_headers)).status_code == 403


async def test_admin_page_previews_and_downloads_zip(
    live_app: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    import io
    import re
    import zipfile

    from pickwise.core.config import get_settings
    from tests.factories import PASSWORD

    info = await seed(live_app)
    project = info["project"]
    async with session_factory(get_engine())() as session, session.begin():
        admin = await make_user(session, role="admin", password=PASSWORD)
        email = admin.email
    monkeypatch.setattr(get_settings(), "exports_dir", tmp_path)
    async with AsyncClient(transport=ASGITransport(app=live_app), base_url="http://t") as client:
        await client.post("/login", data={"email": email, "password": PASSWORD})
        page = await client.get(f"/admin/projects/{project.id}/export")
        assert page.status_code == 200
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match is not None
        form = {"csrf_token": match.group(1), "format": "trl", "aggregation": "unanimous"}
        preview = await client.post(
            f"/admin/projects/{project.id}/export", data={**form, "action": "preview"}
        )
        assert preview.status_code == 200
        assert "0 pairs" in preview.text and "not_unanimous" in preview.text
        # Each reason, format and way from votes to rows is said in words.
        assert "The votes differ (you asked for unanimous pairs only)." in preview.text
        assert "Hugging Face TRL (DPOTrainer, RewardTrainer" in preview.text
        for words in ("Anthropic HH-RLHF", "KTOTrainer", "OpenAI preference fine-tuning"):
            assert words in page.text
        assert "One row per pair, only where every vote picked the same answer." in page.text
        download = await client.post(
            f"/admin/projects/{project.id}/export",
            data={**form, "aggregation": "majority", "action": "export"},
        )
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
        assert {name.split("/")[-1] for name in names} >= {
            "train.jsonl",
            "test.jsonl",
            "README.md",
            "manifest.json",
        }
        forged = await client.post(f"/admin/projects/{project.id}/export", data={"format": "trl"})
        assert forged.status_code == 403
