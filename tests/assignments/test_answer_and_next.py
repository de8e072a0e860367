"""`?next=true`: a choice, skip or flag answered together with the rater's next pair."""

from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments import repository as assignments_repository
from pickwise.assignments.service import next_lease
from pickwise.core.db import get_engine, session_factory
from pickwise.judgments.schemas import JudgmentIn
from pickwise.judgments.service import submit
from pickwise.models import Assignment, IdempotencyKey, Judgment, Pair, PairSlot, Project, User
from pickwise.vocabulary import ShownChoice
from tests.assignments.test_rater_loop import next_url, post_choice, rater_in
from tests.conftest import Wire
from tests.factories import make_pairs, make_project


def answer_url(assignment_id: int, action: str = "judgment") -> str:
    return f"/api/v1/assignments/{assignment_id}/{action}?next=true"


async def first_lease(
    client: AsyncClient, session: AsyncSession, pairs: int, **settings: Any
) -> tuple[Project, dict[str, str], dict[str, Any]]:
    """A project of `pairs` pairs, a rater's headers, and the pair leased to them first."""
    project = await make_project(session, **settings)
    await make_pairs(session, project, pairs)
    _, headers = await rater_in(session, project)
    first = (await client.get(next_url(project), headers=headers)).json()
    return project, headers, first


async def judgment_count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Judgment)) or 0


async def test_judgment_comes_back_with_the_next_lease(
    client: AsyncClient, session: AsyncSession
) -> None:
    project, headers, first = await first_lease(client, session, 3)
    response = await client.post(
        answer_url(first["assignment_id"]), json={"choice": "left"}, headers=headers
    )
    assert response.status_code == 201
    body = response.json()
    assert body["assignment_id"] == first["assignment_id"]
    assert body["choice"] in ("a", "b")
    assert "next_error" not in body
    following = body["next"]
    assert following["assignment_id"] not in (None, first["assignment_id"])
    assert following["pair_id"] != first["pair_id"]
    assert {following["left"]["side"], following["right"]["side"]} == {"left", "right"}
    # The lease is real: the rater holds it, and GET …/next hands out the same one.
    again = (await client.get(next_url(project), headers=headers)).json()
    assert again["assignment_id"] == following["assignment_id"]
    lease = await session.get(Assignment, following["assignment_id"])
    assert lease is not None and lease.status == "leased"
    assert await judgment_count(session) == 1


async def test_without_the_option_the_answer_is_as_before(
    client: AsyncClient, session: AsyncSession
) -> None:
    _project, headers, first = await first_lease(client, session, 2)
    response = await client.post(
        f"/api/v1/assignments/{first['assignment_id']}/judgment",
        json={"choice": "left"},
        headers=headers,
    )
    assert response.status_code == 201
    assert "next" not in response.json()
    assert await session.scalar(select(func.count()).select_from(Assignment)) == 1


@pytest.mark.parametrize(
    ("action", "payload", "status"),
    [("skip", {"reason": "cant_judge"}, "skipped"), ("flag", {"reason": "other"}, "flagged")],
)
async def test_skip_and_flag_come_back_with_the_next_lease(
    client: AsyncClient, session: AsyncSession, action: str, payload: dict[str, Any], status: str
) -> None:
    _project, headers, first = await first_lease(client, session, 2)
    response = await client.post(
        answer_url(first["assignment_id"], action), json=payload, headers=headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == status
    assert body["next"]["assignment_id"] is not None
    assert body["next"]["pair_id"] != first["pair_id"]


async def test_last_pair_answered_says_no_work_left(
    client: AsyncClient, session: AsyncSession
) -> None:
    _project, headers, first = await first_lease(client, session, 1)
    body = (
        await client.post(
            answer_url(first["assignment_id"]), json={"choice": "tie"}, headers=headers
        )
    ).json()
    assert body["judgment_id"] is not None
    assert body["next"]["assignment_id"] is None
    assert "No pairs" in body["next"]["detail"]


async def test_a_refused_answer_leases_nothing(client: AsyncClient, session: AsyncSession) -> None:
    _project, headers, first = await first_lease(client, session, 2, allow_tie=False)
    keyed = {**headers, "Idempotency-Key": "refused"}
    response = await client.post(
        answer_url(first["assignment_id"]), json={"choice": "tie"}, headers=keyed
    )
    assert response.status_code == 422
    assert "next" not in response.json()
    assert await session.scalar(select(func.count()).select_from(Assignment)) == 1


async def test_a_failed_lease_keeps_the_judgment_and_a_replay_gets_one_lease(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim fails inside Postgres after the judgment committed: the judgment stays, the
    answer says so, and replays with the same key return it with the lease the rater then
    holds — the same one each time."""
    _project, headers, first = await first_lease(client, session, 3)
    keyed = {**headers, "Idempotency-Key": "judge-once"}
    enter_and_claim = assignments_repository.enter_and_claim

    async def failing_claim(claim_session: AsyncSession, *_: Any) -> None:
        await claim_session.execute(text("SELECT 1 / 0"))

    monkeypatch.setattr(assignments_repository, "enter_and_claim", failing_claim)
    failed = await client.post(
        answer_url(first["assignment_id"]), json={"choice": "right"}, headers=keyed
    )
    assert failed.status_code == 201
    stored = failed.json()
    assert stored["next"] is None
    assert stored["next_error"]["status"] == 503
    assert "stored" in stored["next_error"]["detail"]
    assert await judgment_count(session) == 1
    pair = await session.get(Pair, first["pair_id"])
    assert pair is not None
    # Nothing of the failed claim is left: the rater holds no lease.
    leased = select(func.count()).where(Assignment.status == "leased")
    assert await session.scalar(leased) == 0

    monkeypatch.setattr(assignments_repository, "enter_and_claim", enter_and_claim)
    replies = [
        await client.post(
            answer_url(first["assignment_id"]), json={"choice": "right"}, headers=keyed
        )
        for _ in range(2)
    ]
    for reply in replies:
        assert reply.status_code == 201
        body = reply.json()
        assert body["judgment_id"] == stored["judgment_id"]
        assert body["submitted_at"] == stored["submitted_at"]
    leases = [reply.json()["next"]["assignment_id"] for reply in replies]
    assert leases[0] is not None and leases[0] == leases[1]
    assert await judgment_count(session) == 1
    assert await session.scalar(leased) == 1


async def a_choice_whose_lease_is_refused(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> tuple[Project, Response]:
    """A choice with `?next=true` whose next lease is refused (403: no longer a member)."""
    from pickwise.assignments import service as assignments_service
    from pickwise.core.errors import Forbidden

    project, headers, first = await first_lease(client, session, 2)

    async def refused(*_: Any, **__: Any) -> None:
        raise Forbidden("You are no longer a member of this project.")

    monkeypatch.setattr(assignments_service, "next_lease", refused)
    response = await client.post(
        answer_url(first["assignment_id"]), json={"choice": "left"}, headers=headers
    )
    return project, response


async def test_a_refused_lease_is_named_and_the_judgment_stays(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal of the lease itself (here: the rater reached a quota) comes back as
    `next_error` with the status GET …/next would have had."""
    project, response = await a_choice_whose_lease_is_refused(client, session, monkeypatch)
    assert response.status_code == 201
    body = response.json()
    assert body["next"] is None
    assert body["next_error"] == {
        "status": 403,
        "project_id": project.id,
        "error": "Forbidden",
        "detail": "You are no longer a member of this project.",
    }
    assert await judgment_count(session) == 1


async def show_synchronous_commit(session: AsyncSession) -> str:
    return str(await session.scalar(text("SHOW synchronous_commit")))


async def test_only_a_lease_on_an_id_taken_by_the_answer_skips_the_wal_flush(
    session: AsyncSession,
) -> None:
    """The lease after a stored choice uses the id the choice's (durable) transaction took,
    and only such a lease commits without waiting for the WAL flush; any other lease (GET
    …/next, the rating page) waits for it as before."""
    project = await make_project(session)
    await make_pairs(session, project, 3)
    rater, _ = await rater_in(session, project)
    assert await show_synchronous_commit(session) == "on"
    first = await next_lease(session, project, rater)
    assert first is not None
    assert await show_synchronous_commit(session) == "on"
    body = JudgmentIn(choice=ShownChoice.LEFT)
    stored = await submit(session, first.assignment_id, rater, body, reserve_next=True)
    reserved = stored.next_assignment_id
    assert reserved is not None and reserved > first.assignment_id
    assert await show_synchronous_commit(session) == "on"  # the answer stays durable
    following = await next_lease(session, project, rater, reserved_id=reserved)
    assert following is not None and following.assignment_id == reserved
    assert await show_synchronous_commit(session) == "off"


async def test_a_lease_lost_in_a_crash_is_refused_clearly_and_its_slot_is_free(
    client: AsyncClient, session: AsyncSession
) -> None:
    """What a Postgres crash can undo of a lease committed without the WAL flush: the whole
    transaction (no assignment, the slot open again). The rater's answer to it is refused
    with a 409 and stores nothing; the slot goes to the next claim, and the id is never
    handed out again (it was taken in the answer's durable transaction)."""
    project, headers, first = await first_lease(client, session, 2, raters_per_pair=1)
    answered = await client.post(
        answer_url(first["assignment_id"]), json={"choice": "left"}, headers=headers
    )
    lost = answered.json()["next"]
    assert lost["assignment_id"] is not None
    # The crash: the lease's transaction is gone, as if never committed.
    await session.execute(
        update(PairSlot)
        .where(PairSlot.assignment_id == lost["assignment_id"])
        .values(state="open", assignment_id=None, lease_expires_at=None)
    )
    await session.execute(delete(Assignment).where(Assignment.id == lost["assignment_id"]))
    late = await post_choice(client, lost["assignment_id"], headers)
    assert late.status_code == 409  # as for any lease lost: the client asks for the next pair
    assert "lease was lost" in late.json()["detail"]
    # An id never handed out is still simply unknown.
    unknown = await post_choice(client, lost["assignment_id"] + 1_000_000, headers)
    assert unknown.status_code == 404
    assert await judgment_count(session) == 1
    again = (await client.get(next_url(project), headers=headers)).json()
    assert again["pair_id"] == lost["pair_id"]
    assert again["assignment_id"] > lost["assignment_id"]
    done = await post_choice(client, again["assignment_id"], headers)
    assert done.status_code == 201
    judged = select(func.count()).where(Judgment.pair_id == lost["pair_id"])
    assert await session.scalar(judged) == 1  # k = 1: never over k


async def test_a_choice_with_the_next_pair_waits_on_postgres_three_times(
    client: AsyncClient, session: AsyncSession, round_trips: list[str]
) -> None:
    # Who asks (the token) with the slot's and the assignment's locks; the choice stored;
    # the next lease's locks, standing and claim. (A real request sends each transaction's
    # BEGIN with its first round trip and adds its COMMIT: five, counted on the wire below.)
    _, headers, first = await first_lease(client, session, 3)
    round_trips.clear()
    response = await client.post(
        answer_url(first["assignment_id"]), json={"choice": "left"}, headers=headers
    )
    assert response.status_code == 201 and response.json()["next"]["assignment_id"]
    assert len(round_trips) == 3, "\n=====\n".join(round_trips)
    assert "api_tokens" in round_trips[0] and "FOR UPDATE OF s" in round_trips[0]


async def test_with_an_idempotency_key_the_key_is_taken_before_any_lock(
    client: AsyncClient, session: AsyncSession, round_trips: list[str]
) -> None:
    # A replay waits on its first request's key, so it must hold no lock of the lease then:
    # the key is claimed first, in the round trip of who asks and the locks, which are taken
    # only if the claim took effect. Then the choice stored with the key's answer (one
    # statement), and the next lease: three waits, as without a key.
    _, headers, first = await first_lease(client, session, 3)
    round_trips.clear()
    keyed = {**headers, "Idempotency-Key": "choice-1"}
    url = answer_url(first["assignment_id"])
    response = await client.post(url, json={"choice": "left"}, headers=keyed)
    assert response.status_code == 201
    assert len(round_trips) == 3, "\n=====\n".join(round_trips)
    statements = round_trips[0].split("\n---\n")
    assert "api_tokens" in statements[0]
    assert "INSERT INTO idempotency_keys" in statements[1]
    assert "FOR UPDATE OF s" in statements[2] and "idempotency_keys" in statements[2]
    again = await client.post(url, json={"choice": "left"}, headers=keyed)
    assert again.json() == response.json()
    assert await judgment_count(session) == 1


@pytest.mark.parametrize("action", ["judgment", "skip", "flag"])
async def test_a_keyed_answer_claims_its_key_with_who_asks_and_the_locks(
    client: AsyncClient, session: AsyncSession, round_trips: list[str], action: str
) -> None:
    bodies = {"judgment": {"choice": "left"}, "skip": {"reason": "cant_judge"}}
    body = bodies.get(action, {"reason": "other"})
    _, headers, first = await first_lease(client, session, 3)
    round_trips.clear()
    keyed = {**headers, "Idempotency-Key": f"{action}-1"}
    url = f"/api/v1/assignments/{first['assignment_id']}/{action}"
    response = await client.post(url, json=body, headers=keyed)
    assert response.status_code < 300, response.text
    first_trip = round_trips[0]
    assert "api_tokens" in first_trip and "INSERT INTO idempotency_keys" in first_trip
    assert "FOR UPDATE OF a" in first_trip
    claims = [trip for trip in round_trips if "INSERT INTO idempotency_keys" in trip]
    assert claims == [first_trip]
    replayed = await client.post(url, json=body, headers=keyed)
    assert (replayed.status_code, replayed.json()) == (response.status_code, response.json())


async def set_active(session: AsyncSession, assignment_id: int, active: bool) -> None:
    """Deactivates (or activates again) the account of the assignment's rater."""
    rater_id = await session.scalar(
        select(Assignment.rater_id).where(Assignment.id == assignment_id)
    )
    assert rater_id is not None
    await session.execute(update(User).where(User.id == rater_id).values(is_active=active))


async def test_a_keyed_answer_with_a_token_that_names_nobody_claims_nothing(
    client: AsyncClient, session: AsyncSession
) -> None:
    # The token's lookup, the key's claim and the locks go out together: a token that names
    # nobody must leave the key free for its owner and the lease unanswered.
    _, headers, first = await first_lease(client, session, 3)
    await set_active(session, first["assignment_id"], False)
    url = answer_url(first["assignment_id"])
    keyed = {**headers, "Idempotency-Key": "choice-1"}
    refused = await client.post(url, json={"choice": "left"}, headers=keyed)
    assert refused.status_code == 401
    forged = {"Authorization": "Bearer not-a-token", "Idempotency-Key": "choice-1"}
    assert (await client.post(url, json={"choice": "left"}, headers=forged)).status_code == 401
    assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 0
    await set_active(session, first["assignment_id"], True)
    answered = await client.post(url, json={"choice": "left"}, headers=keyed)
    assert answered.status_code == 201, answered.text
    assert await judgment_count(session) == 1


async def test_a_deactivated_raters_token_answers_nothing(
    client: AsyncClient, session: AsyncSession
) -> None:
    _, headers, first = await first_lease(client, session, 3)
    await set_active(session, first["assignment_id"], False)
    response = await client.post(
        answer_url(first["assignment_id"]), json={"choice": "left"}, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "The API token is invalid, expired or revoked."
    assert await judgment_count(session) == 0


async def committed_project_and_rater() -> tuple[Project, dict[str, str]]:
    """A project with 3 pairs and a rater's API headers, committed (for the live app's real
    transactions)."""
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session)
        await make_pairs(session, project, 3)
        _, headers = await rater_in(session, project)
    return project, headers


@pytest.mark.parametrize("keyed", [False, True])
async def test_a_choice_with_the_next_pair_is_four_round_trips_begin_and_commit_included(
    live_app: Any, wire: Wire, keyed: bool
) -> None:
    # Counted on the wire (libpq's trace), with real transactions. The answer: BEGIN with who
    # asks (the token), the key's claim when there is one, and the slot's and the
    # assignment's locks, one round trip; the choice stored (with the key's answer); COMMIT.
    # The next lease: BEGIN with the locks, standing and claim, and its COMMIT, one round
    # trip. psycopg's own BEGIN would be a round trip of its own in each, and the lease's
    # COMMIT was one too (seven in all, then five).
    project, headers = await committed_project_and_rater()
    key = {"Idempotency-Key": "choice-1"} if keyed else {}
    transport = ASGITransport(app=live_app)
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        first = (await c.get(next_url(project))).json()
        url = answer_url(first["assignment_id"])
        wire.clear()
        response = await c.post(url, json={"choice": "left"}, headers=key)
        assert response.status_code == 201 and response.json()["next"]["assignment_id"]
        trips = wire.round_trips()
        if keyed:  # replayed: the same answer
            again = await c.post(url, json={"choice": "left"}, headers=key)
            assert again.json() == response.json()
    assert len(trips) == 4, wire.described()
    answer_locks, store, answer_commit, lease = trips
    assert answer_locks[0] == "BEGIN" and "api_tokens" in answer_locks[1]
    if keyed:
        assert answer_locks.pop(2).startswith("INSERT INTO idempotency_keys")
    assert "FOR UPDATE OF s" in answer_locks[2] and "FOR UPDATE OF a" in answer_locks[3]
    assert store == [store[0]] and store[0].startswith("WITH slot AS")
    # BEGIN, the gate's locks, standing, claim, COMMIT
    assert lease[0] == "BEGIN" and len(lease) == 5 and lease[-1] == "COMMIT"
    assert answer_commit == ["COMMIT"]


async def test_after_an_answer_a_lease_taken_meanwhile_is_continued_under_its_locks(
    live_app: Any, wire: Wire
) -> None:
    """The lease after an answer commits with its claim, in one round trip. When the rater
    took a lease meanwhile (another tab), that claim makes nothing and the lease is continued
    in a transaction of its own that takes the locks again: one lease, never two."""
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session)
        await make_pairs(session, project, 3)
        rater, _ = await rater_in(session, project)
    async with session_factory(get_engine())() as session, session.begin():
        held = await next_lease(session, project, rater)
        reserved = await session.scalar(text("SELECT nextval('assignments_id_seq')"))
    assert held is not None
    wire.clear()
    async with session_factory(get_engine())() as session, session.begin():
        again = await next_lease(session, project, rater, reserved_id=reserved)
    trips = wire.round_trips()
    assert again is not None and again.assignment_id == held.assignment_id
    claim_and_commit, locks_again = trips[0], trips[1]
    assert claim_and_commit[-1] == "COMMIT" and "FOR UPDATE OF s" in claim_and_commit[-2]
    assert locks_again[0] == "BEGIN" and "pg_advisory_xact_lock" in locks_again[1]
    async with session_factory(get_engine())() as session:
        leased = select(func.count()).where(
            Assignment.rater_id == rater.id, Assignment.status == "leased"
        )
        assert await session.scalar(leased) == 1
        assert await session.get(Assignment, reserved) is None


@pytest.mark.parametrize("keyed", [False, True])
async def test_a_choice_with_the_next_pair_takes_one_connection_from_the_pool(
    live_app: Any, checkouts: list[None], keyed: bool
) -> None:
    """The answer commits (durably: another connection reads the judgment) and the next lease
    runs in a transaction of its own on the same session and connection
    (`OpenUnit.done_then`): one checkout a judgment, not one per unit of work, and the
    connection is back in the pool once the response is out."""
    project, headers = await committed_project_and_rater()
    key = {"Idempotency-Key": "choice-1"} if keyed else {}
    transport = ASGITransport(app=live_app)
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        first = (await c.get(next_url(project))).json()
        checkouts.clear()
        response = await c.post(
            answer_url(first["assignment_id"]), json={"choice": "left"}, headers=key
        )
    assert response.status_code == 201, response.text
    assert response.json()["next"]["assignment_id"] not in (None, first["assignment_id"])
    assert len(checkouts) == 1
    assert get_engine().sync_engine.pool.checkedout() == 0
    async with session_factory(get_engine())() as session:
        assert await judgment_count(session) == 1
        leased = select(func.count()).where(Assignment.status == "leased")
        assert await session.scalar(leased) == 1


async def test_a_failed_lease_on_the_answers_connection_keeps_the_committed_judgment(
    live_app: Any, checkouts: list[None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With real transactions: the claim fails after the answer committed on the same
    connection; only the lease's transaction is rolled back, the judgment stays, the answer
    says so, and the connection goes back to the pool usable."""
    project, headers = await committed_project_and_rater()

    async def failing_claim(claim_session: AsyncSession, *_: Any, **__: Any) -> None:
        await claim_session.execute(text("SELECT 1 / 0"))

    transport = ASGITransport(app=live_app)
    async with AsyncClient(transport=transport, base_url="http://test", headers=headers) as c:
        first = (await c.get(next_url(project))).json()
        monkeypatch.setattr(assignments_repository, "enter_and_claim", failing_claim)
        checkouts.clear()
        failed = await c.post(answer_url(first["assignment_id"]), json={"choice": "right"})
        monkeypatch.undo()
        assert failed.status_code == 201, failed.text
        assert failed.json()["next"] is None
        assert failed.json()["next_error"]["status"] == 503
        assert len(checkouts) == 1
        assert get_engine().sync_engine.pool.checkedout() == 0
        # The next request gets a lease (the connection that failed a claim is fine).
        again = (await c.get(next_url(project))).json()
        assert again["assignment_id"] not in (None, first["assignment_id"])
    async with session_factory(get_engine())() as session:
        assert await judgment_count(session) == 1
        leased = select(func.count()).where(Assignment.status == "leased")
        assert await session.scalar(leased) == 1
