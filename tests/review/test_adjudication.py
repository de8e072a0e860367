"""Adjudication over the API: a decision, the same again (nothing changes), another one
(replacing it, with the trail), and a withdrawal; and what the explorer makes of it."""

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Adjudication
from tests.factories import bearer_headers, make_pairs, make_project, make_user
from tests.review.helpers import vote


async def test_decide_repeat_replace_withdraw(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=2)
    pair, other = await make_pairs(session, project, 2)
    raters = [await make_user(session) for _ in range(2)]
    await vote(session, pair, raters[0], "a")
    await vote(session, pair, raters[1], "b")
    admin = await make_user(session, role="admin")
    admin.display_name = "Judge Judy"
    headers = await bearer_headers(session, admin)
    url = f"/api/v1/projects/{project.id}/pairs/{pair.id}"

    listing = await client.get(
        f"/api/v1/projects/{project.id}/pairs", params={"status": "disputed"}, headers=headers
    )
    assert [row["pair_id"] for row in listing.json()["items"]] == [pair.id]

    first = await client.put(
        f"{url}/adjudication", json={"decision": "a", "note": " B is wrong. "}, headers=headers
    )
    assert first.status_code == 201, first.text
    assert first.json()["decided_by"] == "Judge Judy" and first.json()["note"] == "B is wrong."
    again = await client.put(
        f"{url}/adjudication", json={"decision": "a", "note": "B is wrong."}, headers=headers
    )
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    rows = await session.scalar(select(func.count()).where(Adjudication.pair_id == pair.id))
    assert rows == 1

    second = await client.put(
        f"{url}/adjudication", json={"decision": "drop", "note": "Both off-topic."}, headers=headers
    )
    assert second.status_code == 201
    assert second.json()["replaces_id"] == first.json()["id"]
    assert second.json()["replaced_decision"] == "a"
    adjudicated = await client.get(
        f"/api/v1/projects/{project.id}/pairs", params={"status": "adjudicated"}, headers=headers
    )
    assert [row["decision"] for row in adjudicated.json()["items"]] == ["drop"]

    withdrawn = await client.delete(f"{url}/adjudication", headers=headers)
    assert withdrawn.status_code == 204
    assert (await client.delete(f"{url}/adjudication", headers=headers)).status_code == 204
    detail = (await client.get(url, headers=headers)).json()
    assert detail["decision"] is None
    trail = [
        (row["decision"], row["is_current"], row["withdrawn_by"]) for row in detail["adjudications"]
    ]
    assert trail == [("a", False, None), ("drop", False, "Judge Judy")]
    adjudicated = await client.get(
        f"/api/v1/projects/{project.id}/pairs", params={"status": "adjudicated"}, headers=headers
    )
    assert adjudicated.json()["items"] == []

    # Another project's pair is not this project's: 404, and nothing stored.
    elsewhere = await make_project(session)
    missing = await client.put(
        f"/api/v1/projects/{elsewhere.id}/pairs/{other.id}/adjudication",
        json={"decision": "b"},
        headers=headers,
    )
    assert missing.status_code == 404
    bad = await client.put(f"{url}/adjudication", json={"decision": "left"}, headers=headers)
    assert bad.status_code == 422


async def test_pair_detail_reads_each_vote_as_the_rater_gave_it(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(
        session, raters_per_pair=2, strength_scale=["slightly", "much"], criteria=["honesty"]
    )
    (pair,) = await make_pairs(session, project, 1)
    first, second = await make_user(session), await make_user(session)
    # Shown B on the left and picked it: "left" in their words, B in canonical terms.
    await vote(
        session, pair, first, "b", left_side="b", strength=1, criteria={"honesty": "a"}, seconds=7
    )
    await vote(session, pair, second, "tie", left_side="a", rationale="Same facts.")
    admin = await make_user(session, role="admin")
    headers = await bearer_headers(session, admin)
    url = f"/api/v1/projects/{project.id}/pairs/{pair.id}"
    detail = (await client.get(url, headers=headers)).json()
    one, two = detail["votes_list"]
    assert (one["shown_left"], one["as_shown"], one["choice"]) == ("b", "left", "b")
    assert (one["strength"], one["strength_label"], one["seconds"]) == (1, "much", 7.0)
    assert one["criteria"] == [{"name": "honesty", "choice": "a", "as_shown": "right"}]
    assert (two["as_shown"], two["rationale"]) == ("tie", "Same facts.")
    assert one["rater"]["display_name"] is None and one["rater"]["email"] is None
    revealed = (await client.get(url, params={"reveal": "true"}, headers=headers)).json()
    assert revealed["votes_list"][0]["rater"]["email"] == first.email
    assert [slot["state"] for slot in detail["slots"]] == ["done", "done"]
