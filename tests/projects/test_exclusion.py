"""A rater's exclusion is a fact about the rater in the project, not about their membership:
removing an excluded rater does not bring their votes back, and a former member's votes can
still be excluded (docs/review.md, "Excluding a rater")."""

import json

from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import PairSummary
from tests.analytics_service.helpers import Setup, crowd_project
from tests.analytics_service.test_dashboard import browser_login, csrf_of, dashboard_url
from tests.factories import make_project, make_user

# The simulated crowd: 180 votes on regular pairs, 36 of them the left clicker's.
ALL_VOTES = 180
WITHOUT_CLICKER = 180 - 36


def member_url(setup: Setup, user_id: int, action: str = "") -> str:
    return f"/api/v1/projects/{setup.project_id}/members/{user_id}{action}"


async def members(client: AsyncClient, setup: Setup) -> dict[int, bool]:
    """The project's member list: whether each member is excluded, by user id."""
    url = f"/api/v1/projects/{setup.project_id}/members"
    listed = (await client.get(url, headers=setup.admin_headers)).json()
    return {member["user_id"]: member["excluded"] for member in listed}


async def counted_votes(client: AsyncClient, session: AsyncSession, setup: Setup) -> dict[str, int]:
    """The clicker's votes as every reader of the exclusion sees them."""
    admin = setup.admin_headers
    export = await client.get(
        f"/api/v1/projects/{setup.project_id}/export", params={"format": "votes"}, headers=admin
    )
    assert export.status_code == 200
    board = (await client.get(setup.url("leaderboard"), headers=admin)).json()
    agreement = (await client.get(setup.url("agreement"), headers=admin)).json()
    summaries = await session.scalar(
        select(func.sum(PairSummary.votes)).where(
            PairSummary.project_id == setup.project_id, ~PairSummary.is_gold
        )
    )
    return {
        "export": len([json.loads(line) for line in export.text.splitlines()]),
        "leaderboard": board["votes"],
        "agreement": agreement["project"]["judgments"],
        "review": int(summaries or 0),
        "left_out": board["excluded_raters_left_out"],
    }


def every_reader(votes: int, left_out: int) -> dict[str, int]:
    return {
        "export": votes,
        "leaderboard": votes,
        "agreement": votes,
        "review": votes,
        "left_out": left_out,
    }


async def test_removing_an_excluded_rater_keeps_their_votes_out(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    clicker = setup.left_clicker_id
    admin = setup.admin_headers
    assert await counted_votes(client, session, setup) == every_reader(ALL_VOTES, 0)
    excluded = await client.post(member_url(setup, clicker, "/exclude"), headers=admin)
    assert excluded.status_code == 204
    assert await counted_votes(client, session, setup) == every_reader(WITHOUT_CLICKER, 1)

    removed = await client.delete(member_url(setup, clicker), headers=admin)
    assert removed.status_code == 204
    assert await counted_votes(client, session, setup) == every_reader(WITHOUT_CLICKER, 1)

    # Added back, they are still excluded, and the member list says so.
    added = await client.post(
        f"/api/v1/projects/{setup.project_id}/members", json={"user_id": clicker}, headers=admin
    )
    assert added.status_code == 204
    assert (await members(client, setup))[clicker] is True
    assert await counted_votes(client, session, setup) == every_reader(WITHOUT_CLICKER, 1)


async def test_a_former_member_can_be_excluded_and_included_again(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    clicker = setup.left_clicker_id
    admin = setup.admin_headers
    assert (await client.delete(member_url(setup, clicker), headers=admin)).status_code == 204
    # Computed (and cached) before the exclusion: the exclusion alone must make it stale.
    assert await counted_votes(client, session, setup) == every_reader(ALL_VOTES, 0)

    excluded = await client.post(member_url(setup, clicker, "/exclude"), headers=admin)
    assert excluded.status_code == 204
    assert await counted_votes(client, session, setup) == every_reader(WITHOUT_CLICKER, 1)
    raters = (await client.get(setup.url("raters"), headers=admin)).json()["raters"]
    row = next(r for r in raters if r["user_id"] == clicker)
    assert (row["member"], row["excluded"]) == (False, True)
    assert clicker not in await members(client, setup)

    included = await client.post(member_url(setup, clicker, "/include"), headers=admin)
    assert included.status_code == 204
    assert await counted_votes(client, session, setup) == every_reader(ALL_VOTES, 0)


async def test_dashboard_excludes_a_former_member(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    clicker = setup.left_clicker_id
    name = setup.crowd.left_clicker.display_name
    assert (
        await client.delete(member_url(setup, clicker), headers=setup.admin_headers)
    ).status_code == 204
    admin = await make_user(session, role="admin")
    await browser_login(client, session, admin)
    page = (await client.get(dashboard_url(setup.project_id))).text
    action = f"{dashboard_url(setup.project_id)}/raters/{clicker}/exclusion"
    assert f'action="{action}"' in page
    assert "no longer a member" in page

    response = await client.post(action, data={"excluded": "true", "csrf_token": csrf_of(page)})
    assert response.status_code == 303
    assert await counted_votes(client, session, setup) == every_reader(WITHOUT_CLICKER, 1)
    page = (await client.get(dashboard_url(setup.project_id))).text
    assert f'aria-label="Include {name}"' in page

    # The rater's audit page (the explorer) offers the same switch.
    audit = f"/admin/projects/{setup.project_id}/raters/{clicker}"
    page = (await client.get(audit)).text
    assert "Include their votes again" in page and "no longer a member" in page
    back = await client.post(
        f"{audit}/exclusion", data={"excluded": "false", "csrf_token": csrf_of(page)}
    )
    assert back.status_code == 303
    assert await counted_votes(client, session, setup) == every_reader(ALL_VOTES, 0)


async def test_a_user_who_never_rated_here_cannot_be_excluded(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    # Plain ids: a refused request rolls the test session back and expires loaded objects.
    stranger = (await make_user(session)).id
    other = (await make_project(session)).id
    await session.commit()
    for project_id in (setup.project_id, other):
        url = f"/api/v1/projects/{project_id}/members/{stranger}/exclude"
        response = await client.post(url, headers=setup.admin_headers)
        assert response.status_code == 404
        assert response.json()["error"] == "NotFound"
    # Nor a rater of this project in another one.
    url = f"/api/v1/projects/{other}/members/{setup.left_clicker_id}/exclude"
    assert (await client.post(url, headers=setup.admin_headers)).status_code == 404
    admin = await make_user(session, role="admin")
    await browser_login(client, session, admin)
    page = (await client.get(dashboard_url(setup.project_id))).text
    form = await client.post(
        f"{dashboard_url(setup.project_id)}/raters/{stranger}/exclusion",
        data={"excluded": "true", "csrf_token": csrf_of(page)},
    )
    assert form.status_code == 404


async def test_the_explorer_offers_former_members_as_voters(
    client: AsyncClient, session: AsyncSession
) -> None:
    """The explorer's "Voted by" list keeps a removed rater: their votes are still in the
    project, and filtering by them is how an admin reviews those votes before excluding."""
    setup = await crowd_project(client, session)
    clicker = setup.left_clicker_id
    name = setup.crowd.left_clicker.display_name
    other = setup.good_rater_ids[0]
    assert (
        await client.delete(member_url(setup, clicker), headers=setup.admin_headers)
    ).status_code == 204
    stranger = (await make_user(session)).id
    admin = await make_user(session, role="admin")
    await browser_login(client, session, admin)
    page = (await client.get(f"/admin/projects/{setup.project_id}/pairs")).text
    option = f'<option value="{clicker}" >'
    assert option in page
    listed = page.split(option, 1)[1].split("</option>", 1)[0]
    assert name in listed and "no longer a member" in listed
    assert f'<option value="{stranger}"' not in page
    # A current member is offered without the note.
    current = page.split(f'<option value="{other}" >', 1)[1].split("</option>", 1)[0]
    assert "no longer a member" not in current
