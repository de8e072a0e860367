"""Curation while raters work, against real commits: asking for more votes keeps exactly the
votes asked for (never more, none left short), and the pair summaries stay equal to a
recount of the votes while a rater is excluded and included again in the middle of it."""

import asyncio
from collections import Counter
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select, text

from pickwise.core.db import get_engine, session_factory
from pickwise.models import Judgment, Pair, PairSlot, Project
from tests.assignments.test_resize_under_load import Tally, deadlocks_so_far, rate
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

RATERS = 12
PAIRS = 40
K = 2
# (votes asked for, which pairs): every pair to 3, then the first ten to 5.
RAISES = (3, 5)

RECOUNT = text(
    """
    SELECT s.pair_id, s.judgments, s.votes, s.votes_a, s.votes_b, s.ties, s.both_bad,
           count(j.id), count(j.id) FILTER (WHERE x.user_id IS NULL)
    FROM pair_summaries s
    LEFT JOIN judgments j ON j.pair_id = s.pair_id
    LEFT JOIN project_rater_exclusions x
           ON x.project_id = j.project_id AND x.user_id = j.rater_id
    WHERE s.project_id = :project_id
    GROUP BY s.pair_id
    """
)


async def curate(
    app: Any,
    headers: dict[str, str],
    project_id: int,
    first_pairs: list[int],
    excluded_rater: int,
    tally: Tally,
) -> None:
    """Raise the votes wanted (twice each, the repeat changing nothing) and toggle one
    rater's exclusion, while the raters work."""
    async with AsyncClient(
        transport=ASGITransport(app=app), base_url="http://test", headers=headers
    ) as client:
        actions = [
            {"action": "request_votes", "votes": RAISES[0], "filter": {}},
            {"action": "request_votes", "votes": RAISES[1], "pair_ids": first_pairs},
        ]
        for step in range(8):
            await asyncio.sleep(0.05)
            body = actions[min(step // 2, 1)]
            answer = await client.post(f"/api/v1/projects/{project_id}/pairs/actions", json=body)
            tally.statuses[answer.status_code] += 1
            if answer.status_code != 200:
                tally.unexpected.append(f"action: {answer.status_code} {answer.text}")
            verb = "exclude" if step % 2 == 0 else "include"
            toggled = await client.post(
                f"/api/v1/projects/{project_id}/members/{excluded_rater}/{verb}"
            )
            if toggled.status_code != 204:
                tally.unexpected.append(f"{verb}: {toggled.status_code} {toggled.text}")


async def test_more_votes_while_raters_work_keeps_exactly_the_votes_asked_for(
    live_app: Any,
) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, raters_per_pair=K)
        pairs = await make_pairs(session, project, PAIRS)
        admin = await make_user(session, role="admin")
        admin_headers = await bearer_headers(session, admin)
        raters, rater_ids = [], []
        for _ in range(RATERS):
            rater = await make_user(session)
            await add_member(session, project, rater)
            raters.append(await bearer_headers(session, rater))
            rater_ids.append(rater.id)
        project_id = project.id
    first_pairs = [pair.id for pair in pairs[:10]]
    deadlocks_before = await deadlocks_so_far()

    tally = Tally()
    await asyncio.gather(
        *(rate(live_app, headers, project_id, tally) for headers in raters),
        curate(live_app, admin_headers, project_id, first_pairs, rater_ids[0], tally),
    )
    # Slots opened after some raters had run out of work: new raters fill them.
    async with session_factory(get_engine())() as session, session.begin():
        project = await session.get(Project, project_id)
        assert project is not None
        finishers = []
        for _ in range(RAISES[1]):
            rater = await make_user(session)
            await add_member(session, project, rater)
            finishers.append(await bearer_headers(session, rater))
    await asyncio.gather(*(rate(live_app, headers, project_id, tally) for headers in finishers))

    assert await deadlocks_so_far() == deadlocks_before, "Postgres detected a deadlock"
    assert tally.unexpected == [], tally.unexpected[:5]
    wanted = {pair.id: RAISES[1] if pair.id in first_pairs else RAISES[0] for pair in pairs}
    async with session_factory(get_engine())() as session:
        stored = (await session.execute(select(Judgment.id, Judgment.pair_id))).all()
        slots = dict(
            (
                await session.execute(
                    select(PairSlot.pair_id, func.count()).group_by(PairSlot.pair_id)
                )
            ).all()
        )
        votes_wanted = dict((await session.execute(select(Pair.id, Pair.votes_wanted))).all())
        recount = (await session.execute(RECOUNT, {"project_id": project_id})).all()
    assert sorted(row.id for row in stored) == sorted(tally.acknowledged), "lost or extra"
    assert Counter(row.pair_id for row in stored) == wanted
    assert slots == wanted
    assert votes_wanted == wanted
    mismatched = [row for row in recount if (row[1], row[2]) != (row[7], row[8])]
    assert mismatched == [], mismatched[:5]
    assert all(row[2] == sum(row[3:7]) for row in recount)
