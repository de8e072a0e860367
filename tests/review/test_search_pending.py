"""A search while the catch-up has not made an import's answers searchable yet never misses
them silently: it reads them directly when they are few, and says how many; when they are too
many it leaves them out and says that, on the page and in the API; once they are caught up,
the index finds them and nothing is said."""

import io
import json

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches.search_catchup import catch_up
from pickwise.batches.service import import_stream
from pickwise.core.errors import Conflict
from pickwise.models import Pair, Project
from pickwise.models.search import prompt_document, response_document
from pickwise.review import repository, service
from pickwise.review.actions_service import run_action
from pickwise.review.schemas import ActionIn, PairFilter
from pickwise.review.sql_filters import SEARCH_EXISTS, SEARCH_FOUND
from pickwise.vocabulary import CurationAction, PairSort
from tests.batches.test_search_catchup import savepoints
from tests.factories import make_pairs, make_project
from tests.web.test_admin_pages import admin_client


async def import_answers(session: AsyncSession, project: Project) -> None:
    lines = [
        {
            "id": f"p{index}",
            # Only the third prompt has "quokka"; only the first pair's answer "okapi".
            "prompt": "Where does the quokka live?" if index == 2 else f"Question {index}?",
            "response_a": "a plain answer" if index else "the okapi sleeps standing",
            "response_b": f"another plain answer {index}",
            "model_a": "m1",
            "model_b": "m2",
        }
        for index in range(4)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    await import_stream(
        session, project, io.BytesIO(data), filename="b.jsonl", source="cli", user=None
    )


async def found(session: AsyncSession, project: Project, words: str) -> tuple[int, object]:
    page = await service.list_pairs(session, project, PairFilter(q=words), PairSort.NEWEST)
    return len(page.items), page.search


@pytest.mark.parametrize("words", ["okapi", '"okapi sleeps"', "okapi -zebra"])
async def test_answers_not_indexed_yet_are_read_directly_and_counted(
    session: AsyncSession, words: str
) -> None:
    project = await make_project(session)
    await import_answers(session, project)
    count, search = await found(session, project, words)
    assert count == 1
    assert search is not None
    assert (search.answers_pending, search.pending_read) == (8, True)  # type: ignore[attr-defined]
    await catch_up(savepoints(session))
    count, search = await found(session, project, words)
    assert count == 1
    assert (search.answers_pending, search.pending_read) == (0, True)  # type: ignore[attr-defined]


async def test_too_many_answers_not_indexed_are_left_out_and_the_page_says_so(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SCAN_UNINDEXED_UP_TO", 5)
    project = await make_project(session)
    await import_answers(session, project)
    count, search = await found(session, project, "okapi")
    assert count == 0
    assert (search.answers_pending, search.pending_read) == (8, False)  # type: ignore[attr-defined]
    await admin_client(client, session)
    path = f"/admin/projects/{project.id}/pairs"
    body = (await client.get(path, params={"q": "okapi"})).text
    assert (
        "<strong>8</strong> answers imported in the last minutes and their prompts are not "
        "searchable yet"
    ) in body
    # Without a search there is nothing to say.
    assert "not searchable yet" not in (await client.get(path)).text
    await catch_up(savepoints(session))
    body = (await client.get(path, params={"q": "okapi"})).text
    assert "not searchable yet" not in body and "still being indexed" not in body
    assert "<strong>1</strong> pair match" in body


async def test_the_page_says_when_a_search_read_answers_not_indexed_yet(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    await import_answers(session, project)
    await admin_client(client, session)
    body = (await client.get(f"/admin/projects/{project.id}/pairs", params={"q": "okapi"})).text
    assert (
        "<strong>8</strong> answers imported in the last minutes are, with their prompts, "
        "still being indexed"
    ) in body
    assert "<strong>1</strong> pair match" in body


async def test_the_pair_by_pair_test_reads_answers_not_indexed_yet(session: AsyncSession) -> None:
    """The way common words go (each pair of the listing tested): it reads the stored words,
    or the answer itself when the catch-up has not stored them."""
    project = await make_project(session)
    await import_answers(session, project)
    query = await repository.tsquery(session, '"okapi sleeps"')
    tested = await session.scalars(
        text(f"SELECT pair_id FROM pair_summaries s WHERE project_id = :p AND {SEARCH_EXISTS}"),
        {"p": project.id, "tsquery": query, "as_of": 0},
    )
    assert len(list(tested)) == 1


async def test_with_nothing_waiting_a_search_plans_as_with_the_index_alone(
    session: AsyncSession,
) -> None:
    """The reading of answers not indexed yet is planned away when none wait, so it adds
    nothing to the estimate a search goes by (nor to its time)."""
    project = await make_project(session)
    await make_pairs(session, project, 3)
    query = await repository.tsquery(session, "zebra")
    params = {"project_id": project.id, "tsquery": query, "as_of": 0, "scan_unindexed": False}
    plan = "\n".join(await session.scalars(text(f"EXPLAIN {SEARCH_FOUND}"), params))
    assert "batches" not in plan
    params["scan_unindexed"] = True
    plan = "\n".join(await session.scalars(text(f"EXPLAIN {SEARCH_FOUND}"), params))
    assert "batches" in plan


async def test_a_search_finds_answers_through_their_partial_index(session: AsyncSession) -> None:
    """`ix_responses_search` leaves out answers without words (NULL until the catch-up):
    a search's test of the answers' words must still let the planner use it."""
    project = await make_project(session)
    await make_pairs(session, project, 3)
    query = await repository.tsquery(session, "zebra")
    # A test project is small enough to read whole; ask what the plan is when it is not.
    await session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        await session.scalars(
            text(
                f"EXPLAIN SELECT r.id FROM responses r "
                f"WHERE {response_document('r')} @@ CAST(:tsquery AS tsquery)"
            ),
            {"tsquery": query},
        )
    )
    assert "ix_responses_search" in plan


async def test_an_export_or_action_by_text_is_refused_while_answers_would_be_left_out(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing may show a search that left answers out (and says so); an export or a
    curation action takes every pair it selects, so it is refused instead of run on part."""
    monkeypatch.setattr(service, "SCAN_UNINDEXED_UP_TO", 5)
    project = await make_project(session)
    await import_answers(session, project)
    by_text = PairFilter(q="okapi")
    exclude = ActionIn(action=CurationAction.EXCLUDE, filter=by_text)
    with pytest.raises(Conflict) as refused:
        await service.export_condition(session, project, by_text, "pairs_")
    assert refused.value.field == "q"
    assert (
        "8 answers imported in the last minutes and their prompts are not searchable yet"
    ) in refused.value.message
    with pytest.raises(Conflict):
        await run_action(session, project, exclude)
    excluded = await session.scalar(
        select(func.count()).select_from(Pair).where(Pair.project_id == project.id, Pair.excluded)
    )
    assert excluded == 0
    # Without text nothing is refused; once caught up, the same text selects its one pair.
    await service.export_condition(session, project, PairFilter(), "pairs_")
    await catch_up(savepoints(session))
    await service.export_condition(session, project, by_text, "pairs_")
    assert (await run_action(session, project, exclude)).changed == 1


async def prompts_searchable(session: AsyncSession, project: Project) -> list[bool]:
    rows = await session.scalars(
        text("SELECT searchable FROM prompts WHERE project_id = :p ORDER BY id"), {"p": project.id}
    )
    return list(rows)


@pytest.mark.parametrize("words", ["quokka", '"quokka live"', "quokka -zebra"])
async def test_prompts_not_indexed_yet_are_read_directly_then_found_by_their_index(
    session: AsyncSession, words: str
) -> None:
    """An import leaves its prompts' words to the catch-up as it does its answers' (the
    prompts are written not searchable, so `ix_prompts_search` skips them); a search reads
    them directly meanwhile, and the catch-up puts them in the index."""
    project = await make_project(session)
    await import_answers(session, project)
    assert await prompts_searchable(session, project) == [False] * 4
    count, search = await found(session, project, words)
    assert count == 1
    assert (search.answers_pending, search.pending_read) == (8, True)  # type: ignore[attr-defined]
    await catch_up(savepoints(session))
    assert await prompts_searchable(session, project) == [True] * 4
    count, search = await found(session, project, words)
    assert count == 1
    assert (search.answers_pending, search.pending_read) == (0, True)  # type: ignore[attr-defined]


async def test_too_many_prompts_not_indexed_are_left_out_and_found_once_caught_up(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "SCAN_UNINDEXED_UP_TO", 5)
    project = await make_project(session)
    await import_answers(session, project)
    count, search = await found(session, project, "quokka")
    assert count == 0
    assert (search.answers_pending, search.pending_read) == (8, False)  # type: ignore[attr-defined]
    await catch_up(savepoints(session))
    count, search = await found(session, project, "quokka")
    assert count == 1
    assert (search.answers_pending, search.pending_read) == (0, True)  # type: ignore[attr-defined]


async def test_prompts_written_otherwise_are_searchable_at_once(session: AsyncSession) -> None:
    """Only an import defers a prompt's words: any other writer gets the column's default."""
    project = await make_project(session)
    await make_pairs(session, project, 2)
    assert await prompts_searchable(session, project) == [True] * 2


async def test_a_search_finds_prompts_through_their_partial_index(session: AsyncSession) -> None:
    """`ix_prompts_search` leaves out prompts not searchable yet: the search's test of a
    prompt's words (SEARCH_FOUND's first part) must say `p.searchable` for the planner to
    use it."""
    project = await make_project(session)
    await make_pairs(session, project, 3)
    query = await repository.tsquery(session, "zebra")
    words = f"{prompt_document('p')} @@ CAST(:tsquery AS tsquery)"
    assert f"p.searchable AND {words}" in SEARCH_FOUND.split("UNION ALL")[0]
    # A test project is small enough to read whole; ask what the plan is when it is not.
    await session.execute(text("SET LOCAL enable_seqscan = off"))

    async def plan(where: str) -> str:
        statement = text(f"EXPLAIN SELECT p.id FROM prompts p WHERE {where}")
        return "\n".join(await session.scalars(statement, {"tsquery": query}))

    assert "ix_prompts_search" in await plan(f"p.searchable AND {words}")
    assert "ix_prompts_search" not in await plan(words)
