"""The pairs explorer: a filtered, sorted page of pairs, counted, with text search.

Rules (docs/review.md):
* keyset pagination only; a listing counts votes up to its first page's last judgment
  (`as_of`), so its pages hold still while raters keep voting;
* the match count is exact up to COUNT_EXACT_UP_TO pairs, when counting fits in
  COUNT_BUDGET_MS; otherwise it is Postgres's estimate, and says so; when that estimate is
  COUNT_NOT_TRIED_ABOVE times the bound or more, no count is tried;
* a search goes through the text indexes when its words are rare (Postgres expects at most
  SEARCH_MATCH_CAP matching pairs), and tests pair by pair, in the listing's order, when they
  are common: around 3 % of the pairs of a big project, both cost the same;
* answers imported lately may not be in the index yet (the search catch-up,
  batches.search_catchup, is still making their words): a search says how many, and reads
  them directly when they are at most SCAN_UNINDEXED_UP_TO, so it misses none; above that it
  leaves them out, and says so. A pair-by-pair test always reads them.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.errors import Conflict, InvalidInput, NotFound
from pickwise.models import Project
from pickwise.projects import repository as projects_repository
from pickwise.review import repository
from pickwise.review.cursor import Cursor
from pickwise.review.repository import Reader, Summary
from pickwise.review.schemas import MatchCount, PairFilter, PairPage, PairRow, SearchCoverage
from pickwise.review.sql_filters import Conditions, Search, filter_conditions
from pickwise.vocabulary import Decision, PairSort, PairState

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
COUNT_EXACT_UP_TO = 10_000
COUNT_BUDGET_MS = 30
# No exact count is tried when Postgres expects this many times the bound to match.
COUNT_NOT_TRIED_ABOVE = 3
SEARCH_MATCH_CAP = 30_000
# Answers not indexed yet that a search reads one by one (about 30 µs each).
SCAN_UNINDEXED_UP_TO = 20_000
EXCERPT_CHARS = 240
# Shown first when a pair is in several states.
STATE_ORDER = (
    PairState.EXCLUDED,
    PairState.REMOVED,
    PairState.FLAGGED,
    PairState.ADJUDICATED,
    PairState.DISPUTED,
    PairState.COMPLETE,
    PairState.IN_PROGRESS,
    PairState.WAITING,
)
_QUERY_CANCELED = "57014"


def votes_wanted(summary: Summary, k: int) -> int:
    """One per slot (as the overlap rule opened them); a gold pair has none, and shows k or
    the votes an admin asked for."""
    return max(k, summary.votes_wanted or 0) if summary.is_gold else summary.slots


def vote_counts(summary: Summary, k: int) -> dict[str, Any]:
    """The fields of `VoteCounts`, from a summary."""
    return {
        "judgments": summary.judgments,
        "votes_wanted": votes_wanted(summary, k),
        "votes": summary.votes,
        "votes_a": summary.votes_a,
        "votes_b": summary.votes_b,
        "ties": summary.ties,
        "both_bad": summary.both_bad,
        "majority": summary.majority,
        "agreement": summary.agreement,
        "rationales": summary.rationales,
    }


def states_of(summary: Summary, k: int) -> list[PairState]:
    """The states a pair is in, most important first (the SQL of `sql_filters.STATE_SQL`)."""
    states = []
    if summary.excluded:
        states.append(PairState.EXCLUDED)
    if summary.pair_status == "removed":
        states.append(PairState.REMOVED)
    if summary.pair_status == "flagged":
        states.append(PairState.FLAGGED)
    if summary.decision is not None:
        states.append(PairState.ADJUDICATED)
    if not summary.is_gold:
        if summary.judgments == 0:
            states.append(PairState.WAITING)
        elif summary.judgments >= summary.slots:
            if summary.votes > 0 and summary.majority is None:
                states.append(PairState.DISPUTED)
            states.append(PairState.COMPLETE)
        else:
            states.append(PairState.IN_PROGRESS)
    return states


@dataclass(frozen=True)
class Selection:
    """A filter made ready for SQL in one project: its conditions and their parameters."""

    where: Conditions
    params: dict[str, Any]
    as_of: int
    search: Search | None = None


# Judgment ids stop well below this: a selection made with it counts every vote.
EVERY_VOTE = 2**63 - 1


async def select_pairs(
    session: Reader,
    project: Project,
    pairs: PairFilter,
    as_of: int | None = None,
    *,
    whole: bool = False,
) -> Selection:
    """The filter's conditions, counting the votes up to `as_of` (default: all of them).

    `whole`: the caller acts on every pair selected (an export, a curation action), so a
    text search that would leave out answers not searchable yet is refused, not run on part
    of the pairs; a listing shows the same search with a note instead."""
    await repository.explorer_settings(session)
    as_of = await repository.watermark(session, project.id) if as_of is None else as_of
    search = None
    if pairs.q:
        search = await _search(session, project.id, pairs.q, as_of)
        if whole and not search.pending_read:
            raise Conflict(
                f"{search.answers_pending:,} answers imported in the last minutes and their "
                "prompts are not searchable yet, so this text search would leave their pairs "
                "out; try again "
                "when the pairs explorer no longer says so (a few minutes), or select without "
                "text",
                field="q",
            )
    params = {"as_of": as_of}
    return Selection(filter_conditions(pairs, search), params, as_of, search)


async def _search(session: Reader, project_id: int, words: str, as_of: int) -> Search:
    query = await repository.tsquery(session, words)
    pending = await repository.answers_not_searchable(session, project_id)
    if not query:
        return Search(query, [], pending)  # no word to look for: nothing matches
    read = pending <= SCAN_UNINDEXED_UP_TO
    # Nothing waiting: the statement leaves out the reading (planned away), so it plans and
    # estimates exactly as with the index alone.
    scan = read and pending > 0
    cap = SEARCH_MATCH_CAP + 1
    # Common words are not looked up one by one: the indexes' statistics say so first.
    estimate = await repository.search_estimate(
        session, project_id, query, as_of, scan_unindexed=scan
    )
    if estimate >= cap:
        return Search(query, None, pending)
    found = await repository.search_matches(
        session, project_id, query, as_of, cap, scan_unindexed=scan
    )
    if len(found) > SEARCH_MATCH_CAP:
        return Search(query, None, pending)
    return Search(query, sorted(set(found)), pending, read)


def _cursor(after: str | None, before: str | None, sort: PairSort) -> tuple[Cursor | None, bool]:
    if after and before:
        raise InvalidInput("give either after or before, not both", field="before")
    if after:
        return Cursor.decode(after, sort, "after"), False
    if before:
        return Cursor.decode(before, sort, "before"), True
    return None, False


async def list_pairs(
    session: AsyncSession,
    project: Project,
    pairs: PairFilter,
    sort: PairSort = PairSort.NEWEST,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = PAGE_SIZE,
) -> PairPage:
    cursor, backwards = _cursor(after, before, sort)
    if pairs.rater is not None:
        await require_rater(session, project, pairs.rater)
    selection = await select_pairs(
        session, project, pairs, None if cursor is None else cursor.as_of
    )
    found = await repository.page(
        session,
        project.id,
        selection.where,
        sort,
        cursor=cursor,
        backwards=backwards,
        limit=limit + 1,
        params=selection.params,
    )
    more = len(found) > limit
    rows = found[:limit]
    if backwards:
        rows.reverse()
    # Backwards, the page we came from follows; forwards, the one we came from precedes.
    has_next = (not backwards and more) or (backwards and bool(rows))
    has_previous = (backwards and more) or (not backwards and cursor is not None and bool(rows))
    as_of = selection.as_of
    return PairPage(
        items=await _rows(session, project, rows, as_of),
        count=await count_pairs(session, project, selection),
        search=_coverage(selection.search),
        next_cursor=Cursor(sort, rows[-1].key(sort), rows[-1].pair_id, as_of).encode()
        if has_next
        else None,
        previous_cursor=Cursor(sort, rows[0].key(sort), rows[0].pair_id, as_of).encode()
        if has_previous
        else None,
        as_of_judgment=as_of,
    )


def _coverage(search: Search | None) -> SearchCoverage | None:
    if search is None:
        return None
    return SearchCoverage(answers_pending=search.answers_pending, pending_read=search.pending_read)


async def require_rater(session: AsyncSession, project: Project, user_id: int) -> None:
    """A rater's votes are looked at only in a project they belong or belonged to (a former
    member's votes stay, and can still be excluded): any other user id (another project's
    rater, an admin, no user at all) gets the same 404."""
    if not await projects_repository.is_rater(session, project.id, user_id):
        raise NotFound(f"user {user_id} is neither a member nor a rater of this project")


async def summary_as_of(
    session: AsyncSession, project: Project, pair_id: int, as_of: int
) -> Summary | None:
    """One pair's summary as a listing with this watermark shows it."""
    where = Conditions()
    where.add("s.pair_id = :pair_id", pair_id=pair_id)
    params = {"as_of": as_of}
    rows = await repository.page(
        session,
        project.id,
        where,
        PairSort.NEWEST,
        cursor=None,
        backwards=False,
        limit=1,
        params=params,
    )
    return rows[0] if rows else None


async def neighbours(
    session: AsyncSession,
    project: Project,
    pairs: PairFilter,
    sort: PairSort,
    summary: Summary,
    as_of: int,
) -> tuple[int | None, int | None]:
    """The pairs before and after this one in the listing (for previous / next)."""
    selection = await select_pairs(session, project, pairs, as_of)
    here = Cursor(sort, summary.key(sort), summary.pair_id, as_of)
    found = []
    for backwards in (True, False):
        rows = await repository.page(
            session,
            project.id,
            selection.where,
            sort,
            cursor=here,
            backwards=backwards,
            limit=1,
            params=selection.params,
        )
        found.append(rows[0].pair_id if rows else None)
    return found[0], found[1]


async def count_pairs(session: AsyncSession, project: Project, selection: Selection) -> MatchCount:
    guess = await repository.estimate(session, project.id, selection.where, selection.params)
    # Far beyond the bound, counting up to it would mostly spend its budget to say so.
    if guess > COUNT_NOT_TRIED_ABOVE * COUNT_EXACT_UP_TO:
        return MatchCount(value=guess, exact=False)
    counted = await _count_within_budget(session, project, selection)
    if counted is not None and counted <= COUNT_EXACT_UP_TO:
        return MatchCount(value=counted, exact=True)
    if counted is not None:
        guess = max(guess, COUNT_EXACT_UP_TO + 1)
    return MatchCount(value=guess, exact=False)


async def _count_within_budget(
    session: AsyncSession, project: Project, selection: Selection
) -> int | None:
    """Counted up to one past the bound, or None when that takes longer than the budget."""
    previous = await session.scalar(text("SELECT current_setting('statement_timeout')"))
    try:
        async with session.begin_nested():
            await _set_timeout(session, f"{COUNT_BUDGET_MS}ms")
            counted = await repository.count_up_to(
                session, project.id, selection.where, COUNT_EXACT_UP_TO + 1, selection.params
            )
            await _set_timeout(session, str(previous))
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) != _QUERY_CANCELED:
            raise
        return None
    return counted


async def _set_timeout(session: AsyncSession, value: str) -> None:
    # For this transaction only; a rolled-back savepoint undoes it as well.
    await session.execute(
        text("SELECT set_config('statement_timeout', :value, true)"), {"value": value}
    )


async def _rows(
    session: AsyncSession, project: Project, summaries: list[Summary], as_of: int
) -> list[PairRow]:
    texts = await repository.row_texts(
        session, [row.pair_id for row in summaries], as_of, EXCERPT_CHARS
    )
    k = project.raters_per_pair
    rows = []
    for summary in summaries:
        shown = texts[summary.pair_id]
        states = states_of(summary, k)
        rows.append(
            PairRow(
                **vote_counts(summary, k),
                pair_id=summary.pair_id,
                batch_id=summary.batch_id,
                batch_filename=shown.batch_filename,
                created_at=summary.created_at,
                prompt_excerpt=excerpt(shown.prompt_excerpt),
                model_a=shown.model_a,
                model_b=shown.model_b,
                status=states[0] if states else None,
                states=states,
                is_gold=summary.is_gold,
                open_flags=summary.open_flags,
                decision=Decision(summary.decision) if summary.decision else None,
                excluded=summary.excluded,
                median_seconds=shown.median_seconds,
            )
        )
    return rows


def excerpt(value: str) -> str:
    return value if len(value) <= EXCERPT_CHARS else value[:EXCERPT_CHARS].rstrip() + "…"


async def export_condition(
    connection: Reader, project: Project, pairs: PairFilter, prefix: str
) -> tuple[str, dict[str, Any]]:
    """The filter as a condition on a pair summary `s` for a query sent through psycopg
    (the exports' COPY), counting every vote."""
    selection = await select_pairs(connection, project, pairs, as_of=EVERY_VOTE, whole=True)
    return repository.driver_condition(selection.where, selection.params, prefix)
