"""The explorer against a plain-Python reference, on generated projects (hypothesis): every
filter and sort selects and orders the pairs the reference does, pages walked forwards and
backwards give each pair once, the count is exact, and a listing holds still while votes
keep arriving."""

from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.review import service
from pickwise.review.schemas import PairFilter
from pickwise.vocabulary import PairSort
from tests.review.helpers import vote
from tests.review.world import (
    CHOICES,
    WORDS,
    Built,
    WorldSpec,
    build,
    expected_ids,
    filters,
    reference,
    resolve,
    worlds,
)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


async def walk(
    session: AsyncSession, built: Built, pairs: PairFilter, sort: PairSort, size: int
) -> tuple[list[int], list[list[int]]]:
    """Every page from the first, following next_cursor; returns the ids and the pages."""
    pages: list[list[int]] = []
    after = None
    while True:
        page = await service.list_pairs(
            session, built.project, pairs, sort, after=after, limit=size
        )
        pages.append([row.pair_id for row in page.items])
        assert len(pages) <= 100, "the pages never end"
        if page.next_cursor is None:
            return [pair_id for ids in pages for pair_id in ids], pages
        after = page.next_cursor


@SETTINGS
@given(spec=worlds(), drawn=filters(), sort=st.sampled_from(list(PairSort)), size=st.integers(1, 4))
async def test_filters_and_sorts_match_the_reference(
    session: AsyncSession, spec: WorldSpec, drawn: PairFilter, sort: PairSort, size: int
) -> None:
    savepoint = await session.begin_nested()
    try:
        built = await build(session, spec)
        pairs = resolve(drawn, built)
        expected = expected_ids(reference(built), pairs, sort)

        seen, pages = await walk(session, built, pairs, sort, size)
        assert seen == expected
        assert all(len(ids) <= size for ids in pages)

        first = await service.list_pairs(session, built.project, pairs, sort, limit=size)
        assert first.count.exact and first.count.value == len(expected)
        for row in first.items:
            facts = next(fact for fact in reference(built) if fact.pair_id == row.pair_id)
            assert set(row.states) == facts.states()
            assert (row.votes, row.judgments, row.majority) == (
                len(facts.counted),
                facts.judgments,
                facts.majority,
            )
            assert row.agreement == facts.agreement

        # Backwards from the last page, following previous_cursor, gives the same pages.
        if len(pages) > 1:
            last = await service.list_pairs(
                session, built.project, pairs, sort, after=None, limit=size
            )
            cursor = last.next_cursor
            while cursor is not None:
                last = await service.list_pairs(
                    session, built.project, pairs, sort, after=cursor, limit=size
                )
                cursor = last.next_cursor
            back = [[row.pair_id for row in last.items]]
            before = last.previous_cursor
            while before is not None:
                page = await service.list_pairs(
                    session, built.project, pairs, sort, before=before, limit=size
                )
                back.append([row.pair_id for row in page.items])
                before = page.previous_cursor
            assert list(reversed(back)) == pages
    finally:
        await savepoint.rollback()


@SETTINGS
@given(
    spec=worlds(),
    drawn=filters(),
    word=st.sampled_from(WORDS),
    cut=st.integers(1, 7),
    sort=st.sampled_from(list(PairSort)),
    common=st.booleans(),
)
async def test_searches_match_the_reference_through_the_indexes_and_pair_by_pair(
    session: AsyncSession,
    spec: WorldSpec,
    drawn: PairFilter,
    word: str,
    cut: int,
    sort: PairSort,
    common: bool,
) -> None:
    """A search goes through the text indexes when its words are rare and tests pair by pair
    when they are common (`common`: a match cap below any estimate); both find what the
    reference does, alone and with other conditions."""
    savepoint = await session.begin_nested()
    cap = -1 if common else service.SEARCH_MATCH_CAP
    try:
        built = await build(session, spec)
        pairs = resolve(drawn, built).model_copy(update={"q": word[:cut]})
        expected = expected_ids(reference(built), pairs, sort)
        with patch.object(service, "SEARCH_MATCH_CAP", cap):
            seen, _ = await walk(session, built, pairs, sort, 3)
        assert seen == expected
    finally:
        await savepoint.rollback()


@SETTINGS
@given(
    spec=worlds(max_pairs=8),
    drawn=filters(),
    sort=st.sampled_from(list(PairSort)),
    size=st.integers(1, 3),
    data=st.data(),
)
async def test_pages_neither_skip_nor_repeat_while_votes_arrive(
    session: AsyncSession,
    spec: WorldSpec,
    drawn: PairFilter,
    sort: PairSort,
    size: int,
    data: st.DataObject,
) -> None:
    """Between pages raters vote (on pairs with a free slot, one vote per rater and pair);
    the listing still gives exactly the pairs, in the order, of the moment it started."""
    savepoint = await session.begin_nested()
    try:
        built = await build(session, spec)
        pairs = resolve(drawn, built)
        expected = expected_ids(reference(built), pairs, sort)
        seen: list[int] = []
        after = None
        while True:
            page = await service.list_pairs(
                session, built.project, pairs, sort, after=after, limit=size
            )
            seen += [row.pair_id for row in page.items]
            await _votes_arrive(session, built, data)
            if page.next_cursor is None:
                break
            after = page.next_cursor
        assert seen == expected
    finally:
        await savepoint.rollback()


async def _votes_arrive(session: AsyncSession, built: Built, data: st.DataObject) -> None:
    for pair, spec in zip(built.pairs, built.spec.pairs, strict=True):
        if spec.gold or not data.draw(st.booleans(), label=f"vote on {pair.id}"):
            continue
        voted = {vote.rater for vote in spec.votes} | built.voted_since.get(pair.id, set())
        free = max(built.spec.k, spec.votes_wanted or 0) - len(voted)
        candidates = [n for n in range(len(built.raters)) if n not in voted]
        if free <= 0 or not candidates:
            continue
        rater = data.draw(st.sampled_from(candidates), label="rater")
        choice = data.draw(st.sampled_from(CHOICES), label="choice")
        await vote(session, pair, built.raters[rater], choice, rationale="refund late")
        built.voted_since.setdefault(pair.id, set()).add(rater)
