"""Rater weights: Dawid-Skene's confusion matrices shrunk toward the prior, kept in
rater_weights whenever the analytics are computed, read by the posterior rule."""

from datetime import timedelta

import numpy as np
import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.analytics.dawid_skene import dawid_skene
from pickwise.analytics.flags import assess_raters
from pickwise.analytics.labels import NO_GOLD, PREFER_A, PREFER_B, preference_labels
from pickwise.core.clock import utcnow
from pickwise.models import RaterWeight
from pickwise.overlap.repository import RaterWeightRow, replace_weights
from pickwise.overlap.rules import PRIOR_CONFUSION
from pickwise.overlap.weights import vote_weights
from tests.analytics_service.helpers import crowd_project, rater_judgments, user_ids, votes_of
from tests.factories import make_project


def fit_on(raters: list[int], items: list[int], labels: list[int], known: list[int], n: int):  # type: ignore[no-untyped-def]
    fit = dawid_skene(raters, items, labels, n, known_label=known)
    return vote_weights(raters, items, labels, fit, n)


def test_a_rater_without_judgments_weighs_as_the_prior() -> None:
    weights = fit_on([0, 0], [1, 2], [PREFER_A, PREFER_B], [NO_GOLD, NO_GOLD], 2)
    assert weights.confusion[1] == pytest.approx(PRIOR_CONFUSION)
    assert list(weights.judgments) == [2, 0]


def test_gold_answers_count_with_the_prior_s_five_judgments_per_label() -> None:
    """On gold items the truth is known, so the counts are plain: a rater right on all n_A
    items of truth A gets P(A | A) = (n_A + 5 x 0.7) / (n_A + 5)."""
    rng = np.random.default_rng(3)
    truth = rng.choice([PREFER_A, PREFER_B], 40)
    swapped = [PREFER_B if label == PREFER_A else PREFER_A for label in truth]
    raters = [0] * 40 + [1] * 4 + [2] * 40
    items = [*range(40), *range(4), *range(40)]
    labels = [*truth, *truth[:4], *swapped]
    known = [*truth, *truth[:4], *truth]  # every item is gold
    sharp, newcomer, swapper = fit_on(raters, items, labels, known, 3).confusion

    def shrunk(right: int, of: int, prior: float = PRIOR_CONFUSION[0]) -> float:
        return (right + 5 * prior) / (of + 5)

    n_a = int((truth == PREFER_A).sum())
    n_b = 40 - n_a
    assert sharp[0] == pytest.approx(shrunk(n_a, n_a))
    assert sharp[8] == pytest.approx(shrunk(n_b, n_b))
    assert sharp[4] == pytest.approx(PRIOR_CONFUSION[4])  # no item without a preference
    first_a = int((truth[:4] == PREFER_A).sum())
    assert newcomer[0] == pytest.approx(shrunk(first_a, first_a))
    assert newcomer[0] < sharp[0]
    # Always the other answer: P(B | A) is high, so its B votes count for A.
    assert swapper[2] == pytest.approx(shrunk(n_a, n_a, PRIOR_CONFUSION[2]))
    assert swapper[6] == pytest.approx(shrunk(n_b, n_b, PRIOR_CONFUSION[6]))
    for matrix in (sharp, newcomer, swapper):
        assert matrix.reshape(3, 3).sum(axis=1) == pytest.approx(np.ones(3))


async def test_computing_the_analytics_keeps_the_weights(
    client: AsyncClient, session: AsyncSession
) -> None:
    setup = await crowd_project(client, session)
    body = (await client.get(setup.url("raters"), headers=setup.admin_headers)).json()
    stored = {
        row.rater_id: row
        for row in await session.scalars(
            select(RaterWeight).where(RaterWeight.project_id == setup.project_id)
        )
    }
    reported = {row["user_id"]: row for row in body["raters"]}
    assert set(stored) == set(reported)
    ids = await user_ids(session, setup.project_id)
    judgments = rater_judgments(await votes_of(session, setup.project_id), ids)
    quality = assess_raters(judgments, len(ids)).quality
    expected = vote_weights(
        judgments.rater,
        judgments.item,
        preference_labels(judgments.choice),
        quality.dawid_skene,
        len(ids),
    )
    for index, user_id in enumerate(ids):
        assert stored[user_id].confusion == pytest.approx(list(expected.confusion[index]))
        assert reported[user_id]["vote_confusion"] == pytest.approx(stored[user_id].confusion)
        assert stored[user_id].judgments == reported[user_id]["judgments"]
    # The left clicker's votes weigh less than any good rater's.
    clicker = reported[setup.left_clicker_id]["vote_accuracy"]
    assert all(clicker < reported[good]["vote_accuracy"] for good in setup.good_rater_ids)


async def test_an_older_computation_never_overwrites_a_newer_one(session: AsyncSession) -> None:
    from tests.factories import make_user

    project = await make_project(session)
    rater, other = await make_user(session), await make_user(session)
    now = utcnow()
    newer = [RaterWeightRow(rater.id, [0.9, 0.05, 0.05, 0.05, 0.9, 0.05, 0.05, 0.05, 0.9], 50)]
    await replace_weights(session, project.id, newer, now)
    older = [
        RaterWeightRow(rater.id, list(PRIOR_CONFUSION), 10),
        RaterWeightRow(other.id, list(PRIOR_CONFUSION), 10),
    ]
    await replace_weights(session, project.id, older, now - timedelta(seconds=5))
    rows = {
        row.rater_id: row
        for row in await session.scalars(
            select(RaterWeight).where(RaterWeight.project_id == project.id)
        )
    }
    assert rows[rater.id].judgments == 50
    # A rater only the older one knew gets a row (nothing newer said otherwise).
    assert rows[other.id].judgments == 10
    await replace_weights(session, project.id, [], now + timedelta(seconds=5))
    assert not list(
        await session.scalars(select(RaterWeight).where(RaterWeight.project_id == project.id))
    )
