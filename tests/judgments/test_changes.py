"""Changing the last choice or skip over the API: in place for a choice, withdrawn into a
skip, a skip made a choice again; the history kept; a 409 once the window has passed or
another pair was decided; replays by Idempotency-Key."""

import json
from datetime import timedelta
from typing import Any

from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core import clock
from pickwise.models import (
    Assignment,
    Judgment,
    Pair,
    PairSlot,
    ProjectMember,
    ReplacedDecision,
    User,
)
from pickwise.models import Response as Answer
from tests.factories import bearer_headers, make_pairs, make_project, make_user
from tests.web.test_admin_pages import admin_client


async def rater_in(session: AsyncSession, project_id: int) -> tuple[User, dict[str, str]]:
    rater = await make_user(session)
    session.add(ProjectMember(project_id=project_id, user_id=rater.id))
    await session.flush()
    return rater, await bearer_headers(session, rater)


async def lease(client: AsyncClient, project: int, headers: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = (
        await client.get(f"/api/v1/projects/{project}/next", headers=headers)
    ).json()
    return body


async def judge(
    client: AsyncClient, project: int, headers: dict[str, str], **choice: Any
) -> dict[str, Any]:
    pair = await lease(client, project, headers)
    response = await client.post(
        f"/api/v1/assignments/{pair['assignment_id']}/judgment", json=choice, headers=headers
    )
    assert response.status_code == 201, response.text
    return {**pair, **response.json()}


async def skip(client: AsyncClient, project: int, headers: dict[str, str]) -> dict[str, Any]:
    pair = await lease(client, project, headers)
    response = await client.post(
        f"/api/v1/assignments/{pair['assignment_id']}/skip",
        json={"reason": "cant_judge"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return pair


async def change(
    client: AsyncClient,
    assignment_id: int,
    headers: dict[str, str],
    to: str = "judgment",
    key: str | None = None,
    **body: Any,
) -> Response:
    extra = {"Idempotency-Key": key} if key else {}
    return await client.put(
        f"/api/v1/assignments/{assignment_id}/{to}", json=body, headers={**headers, **extra}
    )


async def judgments_on(session: AsyncSession, pair_id: int) -> list[Judgment]:
    statement = select(Judgment).where(Judgment.pair_id == pair_id).order_by(Judgment.id)
    return list(await session.scalars(statement.execution_options(populate_existing=True)))


async def history(session: AsyncSession, pair_id: int) -> list[ReplacedDecision]:
    statement = select(ReplacedDecision).where(ReplacedDecision.pair_id == pair_id)
    return list(await session.scalars(statement.order_by(ReplacedDecision.id)))


async def slot_state(session: AsyncSession, pair_id: int) -> list[str]:
    statement = (
        select(PairSlot.state)
        .where(PairSlot.pair_id == pair_id)
        .order_by(PairSlot.slot_no)
        .execution_options(populate_existing=True)
    )
    return list(await session.scalars(statement))


async def test_a_choice_is_changed_in_place_and_the_old_one_kept(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, strength_scale=["a bit", "a lot"], criteria=["tone"])
    project_id = project.id
    await make_pairs(session, project, 3)
    _, headers = await rater_in(session, project_id)
    first = await judge(client, project_id, headers, choice="left", strength=0)
    await lease(client, project_id, headers)  # the next pair is on the rater's screen meanwhile

    changed = await change(
        client,
        first["assignment_id"],
        headers,
        choice="right",
        strength=1,
        rationale="The other is right after all.",
        criteria={"tone": "right"},
    )

    assert changed.status_code == 200, changed.text
    assert changed.json()["judgment_id"] == first["judgment_id"]
    (judgment,) = await judgments_on(session, first["pair_id"])
    right = "b" if judgment.left_side == "a" else "a"
    assert (judgment.choice, judgment.strength, judgment.criteria) == (right, 1, {"tone": right})
    assert judgment.rationale == "The other is right after all."
    (old,) = await history(session, first["pair_id"])
    assert (old.kind, old.choice, old.strength) == ("judgment", judgment.left_side, 0)
    # The slot never left the rater: still done, nobody else is given the pair.
    assert await slot_state(session, first["pair_id"]) == ["done"]


async def test_a_change_is_replayed_by_its_key(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session)
    project_id = project.id
    await make_pairs(session, project, 2)
    _, headers = await rater_in(session, project_id)
    first = await judge(client, project_id, headers, choice="left")
    once = await change(client, first["assignment_id"], headers, key="k1", choice="tie")
    again = await change(client, first["assignment_id"], headers, key="k1", choice="tie")
    assert once.status_code == again.status_code == 200
    assert once.json() == again.json()
    assert len(await history(session, first["pair_id"])) == 1
    other_body = await change(client, first["assignment_id"], headers, key="k1", choice="right")
    assert other_body.status_code == 422
    # A key used to submit cannot replay as a change.
    pair = await lease(client, project_id, headers)
    url = f"/api/v1/assignments/{pair['assignment_id']}/judgment"
    key = {**headers, "Idempotency-Key": "k2"}
    assert (await client.post(url, json={"choice": "left"}, headers=key)).status_code == 201
    put = await client.put(url, json={"choice": "left"}, headers=key)
    assert put.status_code == 422


async def test_after_the_window_a_change_is_a_clear_409(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, undo_seconds=120)
    project_id = project.id
    await make_pairs(session, project, 2)
    _, headers = await rater_in(session, project_id)
    clock.freeze()
    first = await judge(client, project_id, headers, choice="left")
    clock.advance(timedelta(seconds=119))
    assert (await change(client, first["assignment_id"], headers, choice="tie")).status_code == 200
    # The window runs from the last change.
    clock.advance(timedelta(seconds=120))
    late = await change(client, first["assignment_id"], headers, choice="right")
    assert late.status_code == 409
    assert late.json()["error"] == "ChangeWindowClosed"
    assert "can be changed for 2 minutes after it is made" in late.json()["detail"]
    (judgment,) = await judgments_on(session, first["pair_id"])
    assert judgment.choice == "tie"
    last = await client.get(f"/api/v1/projects/{project_id}/last-decision", headers=headers)
    assert last.json()["assignment_id"] is None


async def test_only_the_last_decision_and_never_a_flag(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    project_id = project.id
    await make_pairs(session, project, 4)
    _, headers = await rater_in(session, project_id)
    first = await judge(client, project_id, headers, choice="left")
    second = await judge(client, project_id, headers, choice="left")
    refused = await change(client, first["assignment_id"], headers, choice="right")
    assert refused.status_code == 409 and "decided on another pair" in refused.json()["detail"]
    assert (await change(client, second["assignment_id"], headers, choice="tie")).status_code == 200
    flagged = await lease(client, project_id, headers)
    await client.post(
        f"/api/v1/assignments/{flagged['assignment_id']}/flag",
        json={"reason": "harmful"},
        headers=headers,
    )
    no = await change(client, flagged["assignment_id"], headers, choice="tie")
    assert no.status_code == 409 and "flag" in no.json()["detail"]
    # A pair still leased is not a decision yet; another rater's assignment is not found.
    _, other_headers = await rater_in(session, project_id)
    mine = await lease(client, project_id, other_headers)
    assert (
        await change(client, mine["assignment_id"], other_headers, choice="tie")
    ).status_code == 409
    assert (await change(client, mine["assignment_id"], headers, choice="tie")).status_code == 404


async def test_withdrawing_a_choice_gives_the_pair_to_another_rater(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=1)
    project_id = project.id
    await make_pairs(session, project, 1)
    _, headers = await rater_in(session, project_id)
    first = await judge(client, project_id, headers, choice="left", rationale="Shorter.")
    withdrawn = await change(
        client, first["assignment_id"], headers, to="skip", reason="cant_judge"
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "skipped"
    assert await judgments_on(session, first["pair_id"]) == []
    (old,) = await history(session, first["pair_id"])
    assert (old.kind, old.rationale) == ("judgment", "Shorter.")
    assert await slot_state(session, first["pair_id"]) == ["open"]
    _, other_headers = await rater_in(session, project_id)
    taken = await judge(client, project_id, other_headers, choice="right")
    assert taken["pair_id"] == first["pair_id"]
    assert len(await judgments_on(session, first["pair_id"])) == 1


async def test_a_skip_becomes_a_choice_while_its_slot_is_free(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=1)
    project_id = project.id
    await make_pairs(session, project, 2)
    _, headers = await rater_in(session, project_id)
    skipped = await skip(client, project_id, headers)
    changed = await change(client, skipped["assignment_id"], headers, choice="left")
    assert changed.status_code == 200
    assert [j.rater_id for j in await judgments_on(session, skipped["pair_id"])] != []
    (old,) = await history(session, skipped["pair_id"])
    assert (old.kind, old.skip_reason) == ("skip", "cant_judge")
    assert await slot_state(session, skipped["pair_id"]) == ["done"]

    # Once another rater has the pair's only slot, the skip stands: a 409, nothing written.
    second = await skip(client, project_id, headers)
    _, other_headers = await rater_in(session, project_id)
    theirs = await lease(client, project_id, other_headers)
    assert theirs["pair_id"] == second["pair_id"]
    refused = await change(client, second["assignment_id"], headers, choice="left")
    assert refused.status_code == 409 and "taken this pair" in refused.json()["detail"]
    assert len(await history(session, second["pair_id"])) == 0
    status = await session.scalar(
        select(Assignment.status)
        .where(Assignment.id == second["assignment_id"])
        .execution_options(populate_existing=True)
    )
    assert status == "skipped"


async def test_a_skip_takes_back_a_slot_whose_lease_ran_out(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=1, lease_seconds=60)
    project_id = project.id
    await make_pairs(session, project, 1)
    _, headers = await rater_in(session, project_id)
    skipped = await skip(client, project_id, headers)
    _, other_headers = await rater_in(session, project_id)
    theirs = await lease(client, project_id, other_headers)
    clock.freeze()
    clock.advance(timedelta(seconds=61))
    changed = await change(client, skipped["assignment_id"], headers, choice="tie")
    assert changed.status_code == 200
    late = await client.post(
        f"/api/v1/assignments/{theirs['assignment_id']}/judgment",
        json={"choice": "left"},
        headers=other_headers,
    )
    assert late.status_code == 409
    assert len(await judgments_on(session, skipped["pair_id"])) == 1


async def test_last_decision_says_what_may_be_changed_and_until_when(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, strength_scale=["a bit", "a lot"], criteria=["tone"])
    project_id = project.id
    await make_pairs(session, project, 2)
    _, headers = await rater_in(session, project_id)
    url = f"/api/v1/projects/{project_id}/last-decision"
    assert (await client.get(url, headers=headers)).json()["assignment_id"] is None
    clock.freeze()
    first = await judge(
        client, project_id, headers, choice="right", strength=1, criteria={"tone": "left"}
    )
    body = (await client.get(url, headers=headers)).json()
    assert body["assignment_id"] == first["assignment_id"]
    assert (body["kind"], body["choice"], body["strength"]) == ("judgment", "right", 1)
    assert body["criteria"] == {"tone": "left"}
    assert body["changeable_until"].startswith(
        (clock.utcnow() + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%S")
    )


async def test_no_undo_when_the_project_says_so(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session, undo_seconds=0)
    project_id = project.id
    await make_pairs(session, project, 1)
    _, headers = await rater_in(session, project_id)
    first = await judge(client, project_id, headers, choice="left")
    refused = await change(client, first["assignment_id"], headers, choice="tie")
    assert refused.status_code == 409 and "does not let raters change" in refused.json()["detail"]


async def test_a_missed_check_pair_whose_answer_was_shown_stays(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, gold_rate=1.0, gold_feedback=True)
    project_id = project.id
    await make_pairs(session, project, 2, gold=1)
    _, headers = await rater_in(session, project_id)
    gold = await lease(client, project_id, headers)
    # Response A wins the gold pair: pick the other one.
    row = await session.scalar(select(Assignment).where(Assignment.id == gold["assignment_id"]))
    assert row is not None and row.is_gold
    wrong = "right" if row.left_side == "a" else "left"
    answer = await client.post(
        f"/api/v1/assignments/{gold['assignment_id']}/judgment",
        json={"choice": wrong},
        headers=headers,
    )
    assert answer.json()["gold_feedback"]
    refused = await change(client, gold["assignment_id"], headers, choice="left")
    assert refused.status_code == 409 and "check pair" in refused.json()["detail"]


async def test_admins_see_a_pairs_replaced_choices(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    project_id = project.id
    await make_pairs(session, project, 1)
    rater, headers = await rater_in(session, project_id)
    rater_id = rater.id
    admin_headers = await bearer_headers(session, await make_user(session, role="admin"))
    first = await judge(client, project_id, headers, choice="left")
    await change(client, first["assignment_id"], headers, choice="tie")
    await change(client, first["assignment_id"], headers, to="skip", reason="needs_expertise")
    url = f"/api/v1/projects/{project_id}/pairs/{first['pair_id']}/history"
    assert (await client.get(url, headers=headers)).status_code == 403
    body = (await client.get(url, headers=admin_headers)).json()
    assert body["pair_id"] == first["pair_id"]
    kinds = [(r["kind"], r["choice"], r["rater_id"]) for r in body["replaced"]]
    left = (await history(session, first["pair_id"]))[0].left_side
    assert kinds == [("judgment", left, rater_id), ("judgment", "tie", rater_id)]
    missing = f"/api/v1/projects/{project_id}/pairs/999999/history"
    assert (await client.get(missing, headers=admin_headers)).status_code == 404
    # The choice was withdrawn: exports read no judgment for the pair.
    assert await session.scalar(select(func.count()).select_from(Judgment)) == 0


async def test_the_admins_pair_view_shows_what_raters_changed(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, strength_scale=["a bit", "a lot"])
    project_id = project.id
    await make_pairs(session, project, 1)
    _, headers = await rater_in(session, project_id)
    first = await judge(client, project_id, headers, choice="left", strength=1)
    await change(client, first["assignment_id"], headers, choice="right", strength=0)
    admin_headers = await bearer_headers(session, await make_user(session, role="admin"))
    pair_url = f"/api/v1/projects/{project_id}/pairs/{first['pair_id']}"

    detail = (await client.get(pair_url, headers=admin_headers)).json()

    (changed,) = detail["changes"]
    (old,) = await history(session, first["pair_id"])
    assert (changed["kind"], changed["as_shown"], changed["strength_label"]) == (
        "judgment",
        "left",
        "a lot",
    )
    assert changed["choice"] == old.left_side
    (vote,) = detail["votes_list"]
    assert (vote["as_shown"], vote["strength_label"]) == ("right", "a bit")
    await admin_client(client, session)
    page = await client.get(f"/admin/projects/{project_id}/pairs/{first['pair_id']}")
    assert page.status_code == 200
    assert "Changed by raters" in page.text and "had chosen <strong>left</strong>" in page.text


async def test_exports_read_the_changed_choice(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session)
    project_id = project.id
    await make_pairs(session, project, 2)
    _, headers = await rater_in(session, project_id)
    admin_headers = await bearer_headers(session, await make_user(session, role="admin"))
    first = await judge(client, project_id, headers, choice="left")
    pair = await session.get(Pair, first["pair_id"])
    assert pair is not None
    judgment = (await judgments_on(session, first["pair_id"]))[0]
    a, b = pair.response_a_id, pair.response_b_id
    left_id, right_id = (a, b) if judgment.left_side == "a" else (b, a)
    left, right = await session.get(Answer, left_id), await session.get(Answer, right_id)
    assert left is not None and right is not None
    left_text, right_text = left.content, right.content

    async def chosen() -> list[str]:
        export = await client.get(f"/api/v1/projects/{project_id}/export", headers=admin_headers)
        assert export.status_code == 200, export.text
        rows = [json.loads(line) for line in export.text.splitlines()]
        return [row["chosen"] for row in rows]

    assert await chosen() == [left_text]
    changed = await change(client, first["assignment_id"], headers, choice="right")
    assert changed.status_code == 200, changed.text
    # The pair's one row now prefers the other answer; the replaced choice is not counted.
    assert await chosen() == [right_text]
