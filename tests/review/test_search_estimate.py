"""How a text search chooses its way: the estimate it goes by is Postgres's row estimate for
the whole match query, read from the plan's top node whatever shape the plan takes, and
answers searched by phrase match through the stored words of each answer."""

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Response
from pickwise.review import repository, service
from pickwise.review.schemas import PairFilter
from pickwise.review.sql_filters import SEARCH_EXISTS, SEARCH_FOUND
from pickwise.vocabulary import PairSort
from tests.factories import make_pairs, make_project


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        # No child under the top node: the old reading (the node under a Limit) had none.
        ("SELECT 1 FROM pairs WHERE false", 0),
        ("SELECT 1", 1),
        # LIMIT NULL is planned away: the top node is then the union itself.
        ("SELECT * FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) x LIMIT NULL", 3),
        ("SELECT * FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) x LIMIT 2", 2),
    ],
)
async def test_planned_rows_reads_the_top_node_of_any_plan(
    session: AsyncSession, statement: str, expected: int
) -> None:
    assert await repository.planned_rows(session, statement, {}) == expected


async def test_the_search_estimate_is_the_whole_match_querys(session: AsyncSession) -> None:
    project = await make_project(session)
    pairs = await make_pairs(session, project, 40)
    await session.execute(
        update(Response)
        .where(Response.project_id == project.id)
        .values(content="the zebra crossing is closed")
    )
    await session.execute(text("ANALYZE responses"))
    query = await repository.tsquery(session, "zebra")
    found = await repository.search_matches(
        session, project.id, query, 0, 10_000, scan_unindexed=True
    )
    assert sorted(set(found)) == sorted(pair.id for pair in pairs)
    estimate = await repository.search_estimate(session, project.id, query, 0, scan_unindexed=True)
    params = {"project_id": project.id, "tsquery": query, "as_of": 0, "scan_unindexed": True}
    whole = await repository.planned_rows(session, SEARCH_FOUND, params)
    assert estimate == whole > 0


async def test_a_phrase_matches_words_in_order_only(session: AsyncSession) -> None:
    project = await make_project(session)
    near, apart = await make_pairs(session, project, 2)
    for pair, words in ((near, "red zebra crossing"), (apart, "zebra and red crossing")):
        await session.execute(
            update(Response).where(Response.id == pair.response_a_id).values(content=words)
        )
    pairs = PairFilter(q='"red zebra"')
    selection = await service.select_pairs(session, project, pairs)
    page = await repository.page(
        session,
        project.id,
        selection.where,
        PairSort.NEWEST,
        cursor=None,
        backwards=False,
        limit=10,
        params=selection.params,
    )
    assert [row.pair_id for row in page] == [near.id]


async def test_phrases_and_negations_find_the_same_pairs_either_way(
    session: AsyncSession,
) -> None:
    """Through the indexes (a rare phrase) and pair by pair (the test every pair of a listing
    gets when the words are common), the same pairs match."""
    project = await make_project(session)
    pairs = await make_pairs(session, project, 4)
    texts = ("red zebra crossing", "zebra and red crossing", "a red zebra", "nothing here")
    for pair, words in zip(pairs, texts, strict=True):
        await session.execute(
            update(Response).where(Response.id == pair.response_a_id).values(content=words)
        )
    for words, expected in (
        ('"red zebra"', {pairs[0].id, pairs[2].id}),
        ('zebra -"red zebra"', {pairs[1].id}),
        ('"zebra crossing" or nothing', {pairs[0].id, pairs[3].id}),
    ):
        query = await repository.tsquery(session, words)
        found = set(
            await repository.search_matches(session, project.id, query, 0, 100, scan_unindexed=True)
        )
        assert found == expected, words
        tested = await session.scalars(
            text(f"SELECT pair_id FROM pair_summaries s WHERE project_id = :p AND {SEARCH_EXISTS}"),
            {"p": project.id, "tsquery": query, "as_of": 0},
        )
        assert set(tested) == expected, words
