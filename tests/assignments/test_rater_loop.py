"""The rater loop through the JSON API: leases, expiry, late submits, idempotency, skip, flag."""

from datetime import timedelta

from httpx import AsyncClient, Response
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.core import clock
from pickwise.models import Assignment, Judgment, Pair, PairSlot, Project, User
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user


async def rater_in(session: AsyncSession, project: Project) -> tuple[User, dict[str, str]]:
    rater = await make_user(session)
    await add_member(session, project, rater)
    return rater, await login_headers(session, rater)


async def login_headers(session: AsyncSession, user: User) -> dict[str, str]:
    return await bearer_headers(session, user)


def next_url(project: Project) -> str:
    return f"/api/v1/projects/{project.id}/next"


async def post_choice(
    client: AsyncClient, assignment_id: int, headers: dict[str, str], choice: str = "left"
) -> Response:
    """The rater's choice on the assignment, without `?next`."""
    url = f"/api/v1/assignments/{assignment_id}/judgment"
    return await client.post(url, json={"choice": choice}, headers=headers)


async def judgments_of(session: AsyncSession, pair_id: int) -> list[Judgment]:
    return list(await session.scalars(select(Judgment).where(Judgment.pair_id == pair_id)))


async def test_next_pair_hides_models_and_repeats_while_leased(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 3, models=("secret-model-one", "secret-model-two"))
    _, headers = await rater_in(session, project)
    first = await client.get(next_url(project), headers=headers)
    assert first.status_code == 200
    assert "secret-model" not in first.text
    body = first.json()
    assert {body["left"]["side"], body["right"]["side"]} == {"left", "right"}
    assert body["turns"][-1]["role"] == "user"
    again = await client.get(next_url(project), headers=headers)
    assert again.json()["assignment_id"] == body["assignment_id"]


async def test_left_side_is_random_per_assignment_and_stored(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 30)
    _, headers = await rater_in(session, project)
    for _ in range(30):
        body = (await client.get(next_url(project), headers=headers)).json()
        response = await client.post(
            f"/api/v1/assignments/{body['assignment_id']}/judgment",
            json={"choice": "left"},
            headers=headers,
        )
        assert response.status_code == 201
    rows = (await session.execute(select(Judgment.left_side, Judgment.choice))).all()
    sides = {left for left, _ in rows}
    assert sides == {"a", "b"}
    # "left" was chosen every time, so the stored canonical choice follows the shown side.
    assert all(left == choice for left, choice in rows)


async def test_rater_never_gets_same_pair_twice_and_sees_no_work_page(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=3)
    await make_pairs(session, project, 2)
    _, headers = await rater_in(session, project)
    seen = []
    for _ in range(2):
        body = (await client.get(next_url(project), headers=headers)).json()
        seen.append(body["pair_id"])
        await client.post(
            f"/api/v1/assignments/{body['assignment_id']}/judgment",
            json={"choice": "tie"},
            headers=headers,
        )
    assert len(set(seen)) == 2
    done = await client.get(next_url(project), headers=headers)
    assert done.status_code == 200
    assert done.json()["assignment_id"] is None


async def test_pairs_already_started_are_finished_first(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=2)
    await make_pairs(session, project, 5)
    _, first_headers = await rater_in(session, project)
    _, second_headers = await rater_in(session, project)
    first = (await client.get(next_url(project), headers=first_headers)).json()
    second = (await client.get(next_url(project), headers=second_headers)).json()
    assert second["pair_id"] == first["pair_id"]


async def test_expired_lease_is_reclaimed_and_late_submit_gets_409(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=1, lease_seconds=60)
    await make_pairs(session, project, 1)
    _, slow = await rater_in(session, project)
    _, fast = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=slow)).json()
    # While the lease runs, nobody else gets the pair.
    assert (await client.get(next_url(project), headers=fast)).json()["assignment_id"] is None
    clock.advance(timedelta(seconds=61))
    taken = (await client.get(next_url(project), headers=fast)).json()
    assert taken["pair_id"] == leased["pair_id"]
    late = await client.post(
        f"/api/v1/assignments/{leased['assignment_id']}/judgment",
        json={"choice": "left"},
        headers=slow,
    )
    assert late.status_code == 409
    assert "another rater took it" in late.json()["detail"]
    ok = await client.post(
        f"/api/v1/assignments/{taken['assignment_id']}/judgment",
        json={"choice": "right"},
        headers=fast,
    )
    assert ok.status_code == 201
    assert len(await judgments_of(session, leased["pair_id"])) == 1
    expired = await session.get(Assignment, leased["assignment_id"])
    assert expired is not None and expired.status == "expired"


async def test_rater_whose_lease_was_taken_over_gets_the_next_pair(
    client: AsyncClient, session: AsyncSession
) -> None:
    """The lost lease is closed and a new one made in the same "next pair": the claim (which
    makes nothing for a rater still holding a lease) sees the old one closed."""
    project = await make_project(session, raters_per_pair=1, lease_seconds=60)
    pairs = await make_pairs(session, project, 2)
    _, slow = await rater_in(session, project)
    _, fast = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=slow)).json()
    clock.advance(timedelta(seconds=61))
    taken = (await client.get(next_url(project), headers=fast)).json()
    assert taken["pair_id"] == leased["pair_id"]
    fresh = (await client.get(next_url(project), headers=slow)).json()
    assert fresh["assignment_id"] not in (None, leased["assignment_id"])
    assert {fresh["pair_id"], taken["pair_id"]} == {pair.id for pair in pairs}
    lost = await session.get(Assignment, leased["assignment_id"])
    assert lost is not None and lost.status == "expired"


async def test_a_lease_whose_slot_was_freed_is_closed_and_a_new_one_made(
    session: AsyncSession,
) -> None:
    """A lease whose slot no longer holds it (here freed behind its back) is found lost by
    the next "next pair", closed, and a new lease made in the same call: the claim, which
    makes nothing for a rater who still holds a lease, must see the old one closed."""
    project = await make_project(session, raters_per_pair=1)
    await make_pairs(session, project, 2)
    rater, _ = await rater_in(session, project)
    first = await next_lease(session, project, rater)
    assert first is not None
    await session.execute(
        update(PairSlot)
        .where(PairSlot.assignment_id == first.assignment_id)
        .values(state="open", assignment_id=None, lease_expires_at=None)
    )
    second = await next_lease(session, project, rater)
    assert second is not None and second.assignment_id != first.assignment_id
    lost = await session.get(Assignment, first.assignment_id)
    assert lost is not None and lost.status == "expired"


async def test_late_submit_is_accepted_when_nobody_took_the_slot(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, lease_seconds=60)
    await make_pairs(session, project, 1)
    _, headers = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=headers)).json()
    clock.advance(timedelta(minutes=5))
    response = await client.post(
        f"/api/v1/assignments/{leased['assignment_id']}/judgment",
        json={"choice": "left"},
        headers=headers,
    )
    assert response.status_code == 201


async def test_same_rater_gets_own_expired_lease_back(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, lease_seconds=60)
    await make_pairs(session, project, 2)
    _, headers = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=headers)).json()
    clock.advance(timedelta(seconds=120))
    again = (await client.get(next_url(project), headers=headers)).json()
    assert again["assignment_id"] == leased["assignment_id"]
    assert again["lease_expires_at"] > leased["lease_expires_at"]


async def test_idempotent_replay_returns_first_answer(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 1)
    _, headers = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=headers)).json()
    url = f"/api/v1/assignments/{leased['assignment_id']}/judgment"
    keyed = {**headers, "Idempotency-Key": "k-123"}
    first = await client.post(url, json={"choice": "left"}, headers=keyed)
    replay = await client.post(url, json={"choice": "left"}, headers=keyed)
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    assert len(await judgments_of(session, leased["pair_id"])) == 1
    different = await client.post(url, json={"choice": "right"}, headers=keyed)
    assert different.status_code == 422
    assert "different request body" in different.json()["detail"]
    # Without the key, a second submit is a conflict, not a second judgment.
    unkeyed = await client.post(url, json={"choice": "left"}, headers=headers)
    assert unkeyed.status_code == 409
    assert len(await judgments_of(session, leased["pair_id"])) == 1


async def test_lowering_k_mid_project(client: AsyncClient, session: AsyncSession) -> None:
    admin = await make_user(session, role="admin")
    project = await make_project(session, raters_per_pair=3)
    pairs = await make_pairs(session, project, 2)
    raters = [await rater_in(session, project) for _ in range(3)]
    # Pair 1 gets one judgment and one open lease held by rater 2.
    for _, headers in raters[:1]:
        leased = (await client.get(next_url(project), headers=headers)).json()
        await client.post(
            f"/api/v1/assignments/{leased['assignment_id']}/judgment",
            json={"choice": "left"},
            headers=headers,
        )
    held = (await client.get(next_url(project), headers=raters[1][1])).json()
    # The pair already started is finished first (which pair is first in the shuffled queue
    # depends on the ids the test's pairs get).
    assert held["pair_id"] == leased["pair_id"]
    admin_headers = await login_headers(session, admin)
    patched = await client.patch(
        f"/api/v1/projects/{project.id}", json={"raters_per_pair": 1}, headers=admin_headers
    )
    assert patched.status_code == 200, patched.text
    late = await client.post(
        f"/api/v1/assignments/{held['assignment_id']}/judgment",
        json={"choice": "left"},
        headers=raters[1][1],
    )
    assert late.status_code == 409
    assert "no longer needs" in late.json()["detail"]
    # Everyone drains what is left; no pair ends with more than k = 1 judgments.
    for _, headers in raters:
        while True:
            body = (await client.get(next_url(project), headers=headers)).json()
            if body["assignment_id"] is None:
                break
            await client.post(
                f"/api/v1/assignments/{body['assignment_id']}/judgment",
                json={"choice": "right"},
                headers=headers,
            )
    for pair in pairs:
        assert len(await judgments_of(session, pair.id)) == 1
    slots = await session.scalar(
        select(func.count()).select_from(PairSlot).where(PairSlot.project_id == project.id)
    )
    assert slots == 2


async def test_raising_k_adds_slots(client: AsyncClient, session: AsyncSession) -> None:
    admin = await make_user(session, role="admin")
    project = await make_project(session, raters_per_pair=1)
    await make_pairs(session, project, 3)
    response = await client.patch(
        f"/api/v1/projects/{project.id}",
        json={"raters_per_pair": 4},
        headers=await login_headers(session, admin),
    )
    assert response.status_code == 200
    slots = await session.scalar(
        select(func.count()).select_from(PairSlot).where(PairSlot.project_id == project.id)
    )
    assert slots == 12


async def test_skip_releases_slot_and_never_comes_back(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 1)
    _, skipper = await rater_in(session, project)
    _, other = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=skipper)).json()
    skipped = await client.post(
        f"/api/v1/assignments/{leased['assignment_id']}/skip",
        json={"reason": "needs_expertise"},
        headers=skipper,
    )
    assert skipped.status_code == 200
    assert skipped.json()["status"] == "skipped"
    assert (await client.get(next_url(project), headers=skipper)).json()["assignment_id"] is None
    assert (await client.get(next_url(project), headers=other)).json()["pair_id"] == leased[
        "pair_id"
    ]
    bad = await client.post(
        f"/api/v1/assignments/{leased['assignment_id']}/skip",
        json={"reason": "bored"},
        headers=skipper,
    )
    assert bad.status_code == 422
    assert "reason" in bad.json()["detail"]


async def test_flag_takes_pair_out_of_queue_until_admin_restores(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 1)
    _, flagger = await rater_in(session, project)
    _, other = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=flagger)).json()
    flagged = await client.post(
        f"/api/v1/assignments/{leased['assignment_id']}/flag",
        json={"reason": "personal_data", "note": "contains a phone number"},
        headers=flagger,
    )
    assert flagged.status_code == 200
    pair = await session.get(Pair, leased["pair_id"])
    assert pair is not None and pair.status == "flagged"
    assert (await client.get(next_url(project), headers=other)).json()["assignment_id"] is None
    from pickwise.judgments.service import resolve_flags

    await resolve_flags(session, project, pair.id, "restored")
    assert (await client.get(next_url(project), headers=other)).json()["pair_id"] == pair.id


async def test_judgment_validated_against_project_settings(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(
        session,
        allow_tie=False,
        strength_scale=["slightly", "clearly", "much"],
        rationale_mode="required",
        criteria=["honesty"],
    )
    await make_pairs(session, project, 1)
    _, headers = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=headers)).json()
    url = f"/api/v1/assignments/{leased['assignment_id']}/judgment"
    cases = [
        ({"choice": "tie", "rationale": "x"}, "ties"),
        ({"choice": "left", "rationale": "x"}, "strength: required"),
        ({"choice": "left", "strength": 3, "rationale": "x"}, "between 0 and 2"),
        ({"choice": "left", "strength": 1}, "rationale: required"),
        (
            {"choice": "left", "strength": 1, "rationale": "x", "criteria": {"speed": "left"}},
            "unknown criteria",
        ),
        ({"choice": "sideways"}, "choice"),
    ]
    for body, expected in cases:
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 422, body
        assert expected in response.json()["detail"], (body, response.json())
    good = await client.post(
        url,
        json={
            "choice": "right",
            "strength": 2,
            "rationale": "clearer",
            "criteria": {"honesty": "tie"},
        },
        headers=headers,
    )
    assert good.status_code == 201, good.text
    stored = (await judgments_of(session, leased["pair_id"]))[0]
    assert stored.strength == 2 and stored.criteria == {"honesty": "tie"}


async def test_gold_pairs_are_mixed_in_for_every_rater(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=2, gold_rate=0.5)
    pairs = await make_pairs(session, project, 12, gold=2)
    gold_ids = {pair.id for pair in pairs if pair.is_gold}
    for _ in range(2):
        _, headers = await rater_in(session, project)
        order = []
        while True:
            body = (await client.get(next_url(project), headers=headers)).json()
            if body["assignment_id"] is None:
                break
            assert "gold" not in str(body).lower()
            order.append(body["pair_id"])
            await client.post(
                f"/api/v1/assignments/{body['assignment_id']}/judgment",
                json={"choice": "left"},
                headers=headers,
            )
        # Both gold pairs came mixed in among the regular ones, not after them.
        assert gold_ids <= set(order[:-1])
    gold_votes = await session.scalar(
        select(func.count()).select_from(Judgment).where(Judgment.is_gold)
    )
    regular = await session.scalar(
        select(func.count()).select_from(Judgment).where(~Judgment.is_gold)
    )
    assert (gold_votes, regular) == (4, 20)


async def test_rater_of_another_project_gets_404(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    other_project = await make_project(session)
    await make_pairs(session, project, 1)
    _, outsider = await rater_in(session, other_project)
    response = await client.get(next_url(project), headers=outsider)
    assert response.status_code == 404


async def test_submit_stores_judgment_slot_and_assignment_together(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=1)
    await make_pairs(session, project, 2)
    rater, headers = await rater_in(session, project)
    shown = (await client.get(next_url(project), headers=headers)).json()
    url = f"/api/v1/assignments/{shown['assignment_id']}/judgment"
    stored = await client.post(url, json={"choice": "right"}, headers=headers)
    assert stored.status_code == 201, stored.text
    answer = stored.json()

    judgment = await session.scalar(
        select(Judgment)
        .where(Judgment.id == answer["judgment_id"])
        .execution_options(populate_existing=True)
    )
    assignment = await session.scalar(
        select(Assignment)
        .where(Assignment.id == shown["assignment_id"])
        .execution_options(populate_existing=True)
    )
    assert judgment is not None and assignment is not None
    slot = await session.scalar(
        select(PairSlot)
        .where(PairSlot.id == assignment.slot_id)
        .execution_options(populate_existing=True)
    )
    assert slot is not None
    assert (judgment.pair_id, judgment.rater_id, judgment.slot_id) == (
        shown["pair_id"],
        rater.id,
        slot.id,
    )
    assert judgment.choice == ("b" if assignment.left_side == "a" else "a")
    assert answer["choice"] == judgment.choice and answer["pair_id"] == judgment.pair_id
    assert (assignment.status, slot.state, slot.lease_expires_at) == ("submitted", "done", None)
    assert slot.assignment_id == assignment.id

    # A second submit of the same assignment stores nothing more.
    again = await client.post(url, json={"choice": "left"}, headers=headers)
    assert again.status_code == 409
    assert "already submitted" in again.json()["detail"]
    assert len(await judgments_of(session, shown["pair_id"])) == 1


async def test_claim_closes_the_expired_lease_it_takes_over(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=1, lease_seconds=60)
    await make_pairs(session, project, 1)
    _, slow = await rater_in(session, project)
    fast_rater, fast = await rater_in(session, project)
    leased = (await client.get(next_url(project), headers=slow)).json()
    clock.advance(timedelta(seconds=61))
    taken = (await client.get(next_url(project), headers=fast)).json()
    assert taken["pair_id"] == leased["pair_id"]

    old = await session.get(Assignment, leased["assignment_id"], populate_existing=True)
    new = await session.get(Assignment, taken["assignment_id"], populate_existing=True)
    assert old is not None and new is not None
    assert (old.status, new.status, new.rater_id) == ("expired", "leased", fast_rater.id)
    slot = await session.scalar(
        select(PairSlot).where(PairSlot.id == new.slot_id).execution_options(populate_existing=True)
    )
    assert slot is not None and old.slot_id == slot.id
    assert (slot.state, slot.assignment_id) == ("leased", new.id)
    assert slot.lease_expires_at == new.lease_expires_at
