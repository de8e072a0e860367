"""A `PairFilter` as SQL over a pair summary `s`: the repository's WHERE clauses, built here
so that the listing, its count, bulk actions and exports select exactly the same pairs.

Every vote-derived condition reads the summary's counts; the two that read judgments
themselves (voted by a rater; words in a rationale) only see judgments up to `:as_of`, the
listing's watermark (docs/review.md, "Pages that hold still").
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from pickwise.models.search import (
    prompt_document,
    response_document,
    response_words,
    text_document,
)
from pickwise.review.schemas import PairFilter
from pickwise.vocabulary import PairState, PairStatus

# Agreement is a ratio of small integers: 2/3 must pass "at most 0.6666666666666666".
AGREEMENT_TOLERANCE = 1e-9
# Judgments a pair needs: one per slot. Its queue opened k of them (or the votes an admin
# asked for); in an adaptive project, those its stopping rule has opened so far, so a pair
# with every slot judged is one the rule settled (overlap.progress).
_COMPLETE = "(NOT s.is_gold AND s.judgments > 0 AND s.judgments >= s.slots)"
STATE_SQL: dict[PairState, str] = {
    PairState.WAITING: "(NOT s.is_gold AND s.judgments = 0)",
    PairState.IN_PROGRESS: "(NOT s.is_gold AND s.judgments > 0 AND s.judgments < s.slots)",
    PairState.COMPLETE: _COMPLETE,
    PairState.DISPUTED: f"({_COMPLETE} AND s.votes > 0 AND s.majority IS NULL)",
    PairState.FLAGGED: f"(s.pair_status = '{PairStatus.FLAGGED}')",
    PairState.REMOVED: f"(s.pair_status = '{PairStatus.REMOVED}')",
    PairState.ADJUDICATED: "(s.decision IS NOT NULL)",
    PairState.EXCLUDED: "(s.excluded)",
}
_YES_NO: dict[str, tuple[str, str]] = {
    "tie": ("s.ties > 0", "s.ties = 0"),
    "both_bad": ("s.both_bad > 0", "s.both_bad = 0"),
    "flagged": ("s.open_flags > 0", "s.open_flags = 0"),
    "gold": ("s.is_gold", "NOT s.is_gold"),
    "rationale": ("s.rationales > 0", "s.rationales = 0"),
}
_TSQUERY = "CAST(:tsquery AS tsquery)"
# Pairs whose prompt, either answer, or a rationale (up to the watermark) has the words, tested
# pair by pair (for common words: the listing's first pairs soon fill a page). OFFSET 0 keeps
# each test a probe of the pair's own rows: without it the planner may turn a test into a hash
# of every text holding the words, which for a common word is most of the project.
SEARCH_EXISTS = f"""(
    EXISTS (SELECT 1 FROM prompts p WHERE p.id = s.prompt_id
            AND {prompt_document("p")} @@ {_TSQUERY} OFFSET 0)
    OR EXISTS (SELECT 1 FROM responses r WHERE r.id IN (s.response_a_id, s.response_b_id)
               AND {response_words("r")} @@ {_TSQUERY} OFFSET 0)
    OR EXISTS (SELECT 1 FROM judgments j WHERE j.pair_id = s.pair_id AND j.id <= :as_of
               AND j.rationale IS NOT NULL AND {text_document("j.rationale")} @@ {_TSQUERY}
               OFFSET 0)
)"""
_PAIRS_OF_ANSWER = """
    CROSS JOIN LATERAL (
        SELECT pr.id FROM pairs pr
        WHERE pr.prompt_id = r.prompt_id AND r.id IN (pr.response_a_id, pr.response_b_id)
        OFFSET 0
    ) pr"""
# The same pairs found from the text indexes (with repeats). Each text found leads to its
# pairs by index (LATERAL ... OFFSET 0: never a hash of all the pairs). Prompts and answers
# the search catch-up has not reached (those of a pending batch, past its place) are not in
# the indexes: with :scan_unindexed they are read one by one (they are few; see
# review.service). `p.searchable` lets the planner use the prompts' partial index.
_PAIRS_OF_PROMPT = """
    CROSS JOIN LATERAL (
        SELECT pr.id FROM pairs pr WHERE pr.prompt_id = p.id OFFSET 0
    ) pr"""
SEARCH_FOUND = f"""
SELECT pair_id FROM (
    SELECT pr.id AS pair_id FROM prompts p{_PAIRS_OF_PROMPT}
    WHERE p.project_id = :project_id AND p.searchable AND {prompt_document("p")} @@ {_TSQUERY}
    UNION ALL
    SELECT pr.id FROM batches b
    JOIN prompts p ON p.batch_id = b.id AND p.id > b.search_done_through{_PAIRS_OF_PROMPT}
    WHERE :scan_unindexed AND b.project_id = :project_id AND b.search_pending > 0
      AND NOT p.searchable AND {prompt_document("p")} @@ {_TSQUERY}
    UNION ALL
    SELECT pr.id FROM responses r{_PAIRS_OF_ANSWER}
    WHERE r.project_id = :project_id AND {response_document("r")} @@ {_TSQUERY}
    UNION ALL
    SELECT pr.id FROM batches b
    JOIN prompts p ON p.batch_id = b.id AND p.id > b.search_done_through
    JOIN responses r ON r.prompt_id = p.id{_PAIRS_OF_ANSWER}
    WHERE :scan_unindexed AND b.project_id = :project_id AND b.search_pending > 0
      AND r.search_vector IS NULL AND {text_document("r.content")} @@ {_TSQUERY}
    UNION ALL
    SELECT j.pair_id FROM judgments j
    WHERE j.project_id = :project_id AND j.id <= :as_of AND j.rationale IS NOT NULL
      AND {text_document("j.rationale")} @@ {_TSQUERY}
) m
"""
# At most :cap of them.
SEARCH_MATCHES = f"{SEARCH_FOUND}LIMIT :cap\n"
# websearch_to_tsquery reads "a phrase", -not and or; then each word of 3 or more characters
# matches as a prefix ('refund' finds 'refunds'): every quoted lexeme gets :*, and the short
# ones lose it again (tokens are always 3 or more characters apart, so the second pattern
# never spans two of them).
TSQUERY_OF = r"""
SELECT regexp_replace(
    regexp_replace(websearch_to_tsquery('simple'::regconfig, :q)::text,
                   $$'((?:[^']|'')*)'$$, $$'\1':*$$, 'g'),
    $$'((?:[^']|''){1,2})':\*$$, $$'\1'$$, 'g')
"""


@dataclass(frozen=True)
class Search:
    """How a text search is applied: as the pairs the indexes found (`matches`), or, when
    the words are too common for that, as a test of each pair (`matches` None)."""

    tsquery: str
    matches: list[int] | None
    # Answers imported lately whose words the catch-up has not stored yet, and whether this
    # search read them directly (so it missed nothing) or left them out (too many to read).
    answers_pending: int = 0
    pending_read: bool = True


@dataclass
class Conditions:
    """WHERE clauses over `s` (all must hold) and their parameters."""

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "true"

    def add(self, clause: str, **params: Any) -> None:
        self.clauses.append(clause)
        self.params.update(params)


def filter_conditions(pairs: PairFilter, search: Search | None = None) -> Conditions:
    """The filter's conditions; needs `:as_of` bound by the caller."""
    where = Conditions()
    batches = sorted(set(pairs.batch))
    if len(batches) == 1:
        # Equality, not ANY: then the batch's index also gives the listing's order.
        where.add("s.batch_id = :batch_id", batch_id=batches[0])
    elif batches:
        where.add("s.batch_id = ANY(:batch_ids)", batch_ids=batches)
    if pairs.status:
        states = sorted(set(pairs.status))
        where.add("(" + " OR ".join(STATE_SQL[state] for state in states) + ")")
    if pairs.model is not None and pairs.versus is not None:
        where.add(
            "s.model_low = least(CAST(:model AS text), CAST(:versus AS text)) "
            "AND s.model_high = greatest(CAST(:model AS text), CAST(:versus AS text))",
            model=pairs.model,
            versus=pairs.versus,
        )
    elif pairs.model is not None:
        where.add("(s.model_low = :model OR s.model_high = :model)", model=pairs.model)
    if pairs.agreement_max is not None:
        where.add(
            "s.agreement <= :agreement_max",
            agreement_max=pairs.agreement_max + AGREEMENT_TOLERANCE,
        )
    for name, (yes, no) in _YES_NO.items():
        wanted = getattr(pairs, name)
        if wanted is not None:
            where.add(yes if wanted else no)
    if pairs.rater is not None:
        where.add(
            "EXISTS (SELECT 1 FROM judgments j WHERE j.pair_id = s.pair_id "
            "AND j.rater_id = :rater AND j.id <= :as_of)",
            rater=pairs.rater,
        )
    if _needs_votes(pairs):
        # Implied, and said: the pairs with a vote have an index of their own, so a listing
        # never steps over the pairs still waiting (a whole batch of them) to fill a page.
        where.add("s.judgments > 0")
    if pairs.created_from is not None:
        where.add("s.created_at >= :created_from", created_from=_day_start(pairs.created_from))
    if pairs.created_to is not None:
        after = _day_start(pairs.created_to) + timedelta(days=1)
        where.add("s.created_at < :created_before", created_before=after)
    if search is not None:
        if search.matches is None:
            where.add(SEARCH_EXISTS, tsquery=search.tsquery)
        else:
            where.add("s.pair_id = ANY(:matches)", matches=search.matches)
    return where


# States only a pair with a vote can be in.
_VOTED_STATES = {PairState.IN_PROGRESS, PairState.COMPLETE, PairState.DISPUTED}


def _needs_votes(pairs: PairFilter) -> bool:
    """Whether every pair the filter selects has at least one judgment."""
    return (
        pairs.rater is not None
        or pairs.agreement_max is not None
        or any(getattr(pairs, name) for name in ("tie", "both_bad", "rationale"))
        or bool(pairs.status and set(pairs.status) <= _VOTED_STATES)
    )


def _day_start(day: Any) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
