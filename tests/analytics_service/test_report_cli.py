"""`pickwise report` against the test database, on votes cast through the JSON rater API
(committed for real, since the CLI opens its own connections; `live_app` empties the tables
afterwards)."""

import asyncio
import json
from typing import Any

from httpx import ASGITransport, AsyncClient
from typer.testing import CliRunner

from pickwise.assignments.service import chance
from pickwise.cli.main import app as cli
from pickwise.core.db import get_engine, session_factory
from tests.analytics_service.builders import Answer, make_model_pairs
from tests.factories import add_member, bearer_headers, make_project, make_user


async def seed(app: Any) -> str:
    """10 pairs north vs south and 2 gold pairs; two raters prefer north, one always picks
    the left answer."""
    chance.seed(5)
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, raters_per_pair=3, gold_rate=0.3)
        slug = project.slug
        answers = [
            (Answer("north", f"North: answer {n}."), Answer("south", f"South: reply {n}, longer."))
            for n in range(12)
        ]
        await make_model_pairs(session, project, answers, gold=2)
        raters = []
        for number in range(3):
            rater = await make_user(session)
            rater.display_name = f"Rater {'ABC'[number]}"
            await add_member(session, project, rater)
            raters.append(await bearer_headers(session, rater))
        project_id = project.id
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        for number, headers in enumerate(raters):
            while True:
                body = (
                    await client.get(f"/api/v1/projects/{project_id}/next", headers=headers)
                ).json()
                if body["assignment_id"] is None:
                    break
                north_left = body["left"]["content"].startswith("North")
                side = "left" if number == 2 or north_left else "right"
                response = await client.post(
                    f"/api/v1/assignments/{body['assignment_id']}/judgment",
                    json={"choice": side},
                    headers=headers,
                )
                assert response.status_code == 201, response.text
    # The CLI runs its own event loop in another thread: no pooled connection may cross over.
    await get_engine().dispose()
    return slug


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "220"})


async def test_report_prints_every_section(live_app: Any) -> None:
    slug = await seed(live_app)
    result = await asyncio.to_thread(invoke, "report", slug)
    assert result.exit_code == 0, result.output
    out = result.output
    for heading in (
        "Progress",
        "Raters",
        "Agreement",
        "Model leaderboard",
        "What the preferences teach",
    ):
        assert heading in out
    assert "Rater A" in out and "Rater C" in out
    assert "@example.org" not in out
    assert "north" in out and "south" in out
    assert "Held-out accuracy" in out

    raw = await asyncio.to_thread(invoke, "report", slug, "--json")
    assert raw.exit_code == 0, raw.output
    report = json.loads(raw.output)
    assert report["progress"]["pairs_done"] == 10
    assert report["progress"]["judgments"] == 30
    board = report["leaderboard"]
    assert [row["model"] for row in board["models"]] == ["north", "south"]
    assert board["votes"] == 30
    clicker = next(r for r in report["raters"]["raters"] if r["display_name"] == "Rater C")
    assert clicker["left_share"] == 1.0
    # Each flag's evidence (its test and numbers) is printed under the table.
    assert clicker["flags"], clicker
    for flag in clicker["flags"]:
        assert f"Rater C: {flag['label']}: {flag['detail']}" in " ".join(out.split())
    assert report["agreement"]["ready"] is True
    assert report["preferences"]["judgments"] == 30
    # North is always the shorter answer by the same ratio: nothing for style control to use.
    assert board["models"][0]["score_style_controlled"] is None
    assert all(c["coefficient"] is None for c in board["style_coefficients"])

    missing = await asyncio.to_thread(invoke, "report", "no-such-project")
    assert missing.exit_code == 1
    assert "no such project" in missing.output
