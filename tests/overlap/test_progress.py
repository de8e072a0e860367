"""Cost and progress: votes spent, pairs settled early or at the maximum, votes still needed,
votes saved against the fixed k; from the pure figures to the API and the dashboard."""

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.overlap.progress import PairCount, overlap_cost
from pickwise.overlap.rules import OverlapPolicy
from pickwise.vocabulary import OverlapMode, StoppingRule
from tests.analytics_service.test_dashboard import browser_login
from tests.factories import bearer_headers, make_pairs, make_project, make_user
from tests.overlap.crowd import Crowd

ADAPTIVE = OverlapPolicy(OverlapMode.ADAPTIVE, 3, 2, 5, StoppingRule.LEADER_SHARE, 2, 0.75, 0.88)
FIXED = OverlapPolicy(OverlapMode.FIXED, 3, 2, 5, StoppingRule.LEADER_SHARE, 2, 0.75, 0.88)


def test_a_fixed_project_needs_exactly_its_open_slots() -> None:
    cost = overlap_cost(FIXED, [PairCount(3, 0, 10), PairCount(1, 2, 4), PairCount(0, 3, 6)])
    assert cost.votes_still_needed == 4 * 2 + 6 * 3 == cost.open_slots
    assert cost.votes_saved == 0 and cost.votes_saved_projected == 0
    assert (cost.pairs_settled, cost.pairs_settled_early, cost.pairs_at_max) == (10, 0, 10)
    assert cost.votes_spent == 30 + 4


def test_an_adaptive_estimate_follows_the_settled_pairs() -> None:
    counts = [
        PairCount(2, 0, 6),  # settled at 2
        PairCount(3, 0, 2),
        PairCount(5, 0, 2),  # went to the maximum
        PairCount(0, 2, 10),  # not started: expected like all settled pairs
        PairCount(3, 1, 1),  # will hold 4: expected like the settled ones with >= 4 (5)
        PairCount(1, 1, 3, in_queue=False),  # flagged: votes spent, nothing else
    ]
    cost = overlap_cost(ADAPTIVE, counts)
    mean_all = (2 * 6 + 3 * 2 + 5 * 2) / 10
    assert cost.votes_still_needed == pytest.approx(10 * mean_all + (5 - 3))
    assert cost.open_slots == 10 * 2 + 1
    assert (cost.pairs_settled, cost.pairs_settled_early, cost.pairs_at_max) == (10, 8, 2)
    assert cost.votes_per_pair == {2: 6, 3: 2, 5: 2}
    assert cost.votes_spent == 12 + 6 + 10 + 3 + 3
    assert cost.votes_saved == 6 * 1 + 0 - 2 * 2
    assert cost.votes_saved_projected == pytest.approx(
        3 * 21 - (12 + 6 + 10 + 3) - cost.votes_still_needed
    )


def test_before_any_pair_settles_only_open_slots_are_counted() -> None:
    cost = overlap_cost(ADAPTIVE, [PairCount(1, 1, 5), PairCount(0, 2, 5)])
    assert cost.votes_still_needed == 5 * 1 + 5 * 2


async def test_progress_api_and_dashboard_show_the_cost(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, raters_per_pair=3, overlap_mode="adaptive")
    await make_pairs(session, project, 3)
    crowd = Crowd(client, session, project)
    raters = await crowd.join(3)
    # Pair 1: a, a (settled at 2). Pair 2: a, b, then one more is needed. Pair 3: untouched.
    for rater, choices in zip(raters[:2], (("a", "a"), ("a", "b")), strict=True):
        for choice in choices:
            await crowd.vote(rater, choice)
    admin = await make_user(session, role="admin")
    headers = await bearer_headers(session, admin)
    body = (
        await client.get(f"/api/v1/projects/{project.id}/analytics/progress", headers=headers)
    ).json()
    overlap = body["overlap"]
    assert overlap["policy"]["mode"] == "adaptive" and overlap["policy"]["max_raters"] == 5
    assert overlap["votes_spent"] == 4
    assert (overlap["pairs_settled"], overlap["pairs_settled_early"]) == (1, 1)
    assert overlap["pairs_at_max"] == 0
    # Pair 2 will hold 3 votes and pair 3 two; no settled pair reached 3, one reached 2.
    assert overlap["votes_still_needed"] == 1 + 2
    assert overlap["votes_saved"] == 1
    assert overlap["votes_saved_projected"] == 3 * 3 - 4 - 3
    assert overlap["votes_per_pair"] == [{"votes": 2, "pairs": 1}]
    assert body["judgments_needed"] == 3
    await browser_login(client, session, admin)
    page = (await client.get(f"/admin/projects/{project.id}/dashboard")).text
    assert "Raters per pair and cost" in page and "Settled early" in page
    assert "adaptive: 2 to 5 raters per pair" in page
