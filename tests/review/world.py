"""Generated projects to review, written to the database and described in plain Python.

`worlds()` draws a project (k, raters, one of them excluded before or after voting) and its
pairs (batch, day, models, gold, status, exclusion, votes wanted, flags, a decision, texts
and votes). `build` writes it through the ORM, so the database's triggers keep the pair
summaries; `Reference` answers the explorer's questions from the drawn description alone.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.slots_service import create_slots
from pickwise.models import (
    Adjudication,
    Batch,
    Pair,
    PairFlag,
    Project,
    ProjectMember,
    ProjectRaterExclusion,
    User,
)
from pickwise.review.schemas import PairFilter
from pickwise.vocabulary import PairSort, PairState
from tests.factories import exclude, make_pair, make_project, make_user
from tests.review.helpers import vote

MODELS = ("alpha", "beta", "gamma")
# Words the texts are made of: some share beginnings, so prefix search has work to do.
WORDS = ("refund", "refunds", "refuse", "policy", "polite", "cat", "catalog", "ox", "oxen", "zeta")
CHOICES = ("a", "b", "tie", "both_bad")
DAY_ZERO = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RATERS = 4
EXCLUDED_RATER = 3


@dataclass(frozen=True)
class VoteSpec:
    rater: int
    choice: str
    rationale: str | None


@dataclass(frozen=True)
class PairSpec:
    batch: int
    day: int
    model_a: str
    model_b: str
    gold: bool
    status: str
    excluded: bool
    votes_wanted: int | None
    open_flags: int
    decision: str | None
    prompt: str
    answer_a: str
    answer_b: str
    votes: tuple[VoteSpec, ...]


@dataclass(frozen=True)
class WorldSpec:
    k: int
    exclude_rater: bool
    exclude_after_votes: bool
    pairs: tuple[PairSpec, ...]


def _text(draw: st.DrawFn) -> str:
    return " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4)))


@st.composite
def pair_specs(draw: st.DrawFn, k: int) -> PairSpec:
    gold = draw(st.integers(0, 4)) == 0
    votes_wanted = None if gold else draw(st.none() | st.integers(1, k + 2))
    capacity = 2 if gold else max(k, votes_wanted or 0)
    raters = draw(st.lists(st.integers(0, RATERS - 1), unique=True, max_size=capacity))
    votes = tuple(
        VoteSpec(
            rater,
            draw(st.sampled_from(CHOICES)),
            _text(draw) if draw(st.booleans()) else None,
        )
        for rater in raters
    )
    return PairSpec(
        batch=draw(st.integers(0, 1)),
        day=draw(st.integers(0, 2)),
        model_a=draw(st.sampled_from(MODELS)),
        model_b=draw(st.sampled_from(MODELS)),
        gold=gold,
        status=draw(st.sampled_from(("active", "active", "active", "flagged", "removed"))),
        excluded=draw(st.integers(0, 4)) == 0,
        votes_wanted=votes_wanted,
        open_flags=draw(st.integers(0, 4)) // 3,
        decision=draw(st.none() | st.sampled_from(("a", "b", "tie", "both_bad", "drop"))),
        prompt=_text(draw),
        answer_a=_text(draw),
        answer_b=_text(draw),
        votes=votes,
    )


@st.composite
def worlds(draw: st.DrawFn, min_pairs: int = 3, max_pairs: int = 10) -> WorldSpec:
    k = draw(st.integers(1, 3))
    return WorldSpec(
        k=k,
        exclude_rater=draw(st.booleans()),
        exclude_after_votes=draw(st.booleans()),
        pairs=tuple(draw(st.lists(pair_specs(k), min_size=min_pairs, max_size=max_pairs))),
    )


FILTER_FIELDS = (
    "batch",
    "status",
    "model",
    "agreement_max",
    "tie",
    "both_bad",
    "flagged",
    "gold",
    "rationale",
    "rater",
    "created",
    "q",
)


@st.composite
def filters(draw: st.DrawFn) -> PairFilter:
    """One to three conditions (so that each one often decides alone); batches and the
    rater as indexes (see `resolve`)."""
    chosen = draw(st.lists(st.sampled_from(FILTER_FIELDS), min_size=1, max_size=3, unique=True))
    data: dict[str, object] = {}
    for name in chosen:
        match name:
            case "batch":
                data["batch"] = draw(st.lists(st.integers(0, 1), min_size=1, max_size=2))
            case "status":
                states = st.sampled_from(list(PairState))
                data["status"] = draw(st.lists(states, min_size=1, max_size=3))
            case "model":
                data["model"] = draw(st.sampled_from(MODELS))
                if draw(st.booleans()):
                    data["versus"] = draw(st.sampled_from(MODELS))
            case "agreement_max":
                shares = (0.0, 0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.0)
                data["agreement_max"] = draw(st.sampled_from(shares))
            case "rater":
                data["rater"] = draw(st.integers(1, RATERS))
            case "created":
                first, last = sorted(draw(st.lists(st.integers(0, 2), min_size=2, max_size=2)))
                if draw(st.booleans()):
                    data["created_from"] = day(first)
                if draw(st.booleans()):
                    data["created_to"] = day(last)
            case "q":
                word = draw(st.sampled_from(WORDS))
                data["q"] = word[: draw(st.integers(1, len(word)))]
            case _:
                data[name] = draw(st.booleans())
    return PairFilter.model_validate(data)


def resolve(pairs: PairFilter, built: "Built") -> PairFilter:
    """The drawn filter with real ids: batch indexes to batch ids, rater 1.. to a rater."""
    update: dict[str, object] = {"batch": [built.batch_ids[n] for n in pairs.batch]}
    if pairs.rater is not None:
        update["rater"] = built.raters[pairs.rater - 1].id
    return pairs.model_copy(update=update)


@dataclass
class Built:
    project: Project
    raters: list[User]
    batch_ids: list[int]
    pairs: list[Pair]
    spec: WorldSpec
    # Raters (by index) who voted on a pair after it was built.
    voted_since: dict[int, set[int]] = field(default_factory=dict)


async def build(session: AsyncSession, spec: WorldSpec) -> Built:
    project = await make_project(session, raters_per_pair=spec.k)
    raters = [await make_user(session) for _ in range(RATERS)]
    members = [ProjectMember(project_id=project.id, user_id=rater.id) for rater in raters]
    session.add_all(members)
    if spec.exclude_rater and not spec.exclude_after_votes:
        session.add(ProjectRaterExclusion(project_id=project.id, user_id=raters[EXCLUDED_RATER].id))
    batches = [
        Batch(project_id=project.id, filename=f"b{n}.jsonl", sha256="0" * 64, source="cli")
        for n in range(2)
    ]
    session.add_all(batches)
    await session.flush()
    pairs = []
    for number, pair_spec in enumerate(spec.pairs):
        pairs.append(await _pair(session, project, batches[pair_spec.batch], number, pair_spec))
    await create_slots(session, project)
    for pair, pair_spec in zip(pairs, spec.pairs, strict=True):
        for vote_spec in pair_spec.votes:
            await vote(
                session,
                pair,
                raters[vote_spec.rater],
                vote_spec.choice,
                rationale=vote_spec.rationale,
            )
        await _curate(session, project, pair, pair_spec, raters[0])
    if spec.exclude_rater and spec.exclude_after_votes:
        await exclude(session, project, raters[EXCLUDED_RATER])
    return Built(project, raters, [batch.id for batch in batches], pairs, spec)


async def _pair(
    session: AsyncSession, project: Project, batch: Batch, number: int, spec: PairSpec
) -> Pair:
    return await make_pair(
        session,
        project,
        batch.id,
        external_id=f"w{number}",
        question=spec.prompt,
        answers=((spec.model_a, spec.answer_a), (spec.model_b, spec.answer_b)),
        response_ids=("a", "b"),
        gold=spec.gold,
        votes_wanted=spec.votes_wanted,
        created_at=DAY_ZERO + timedelta(days=spec.day, minutes=number),
    )


async def _curate(
    session: AsyncSession, project: Project, pair: Pair, spec: PairSpec, admin: User
) -> None:
    pair.status, pair.excluded = spec.status, spec.excluded
    for _ in range(spec.open_flags):
        session.add(
            PairFlag(project_id=project.id, pair_id=pair.id, rater_id=admin.id, reason="other")
        )
    # A resolved flag besides, which never counts as open.
    session.add(
        PairFlag(
            project_id=project.id,
            pair_id=pair.id,
            rater_id=admin.id,
            reason="harmful",
            resolution="restored",
            resolved_at=DAY_ZERO,
        )
    )
    if spec.decision is not None:
        session.add(
            Adjudication(
                project_id=project.id,
                pair_id=pair.id,
                decision=spec.decision,
                note="",
                decided_by_id=admin.id,
                decided_at=DAY_ZERO,
            )
        )
    await session.flush()


# --- the reference ---------------------------------------------------------------------


@dataclass
class PairFacts:
    pair_id: int
    spec: PairSpec
    batch_id: int
    created_at: datetime
    k: int
    votes: list[tuple[int, VoteSpec]] = field(default_factory=list)  # (rater id, vote)
    excluded_rater_id: int | None = None

    @property
    def judgments(self) -> int:
        return len(self.votes)

    @property
    def counted(self) -> list[VoteSpec]:
        return [vote for rater_id, vote in self.votes if rater_id != self.excluded_rater_id]

    def count(self, choice: str) -> int:
        return sum(1 for vote in self.counted if vote.choice == choice)

    @property
    def agreement(self) -> float | None:
        counted = self.counted
        if not counted:
            return None
        return max(self.count(choice) for choice in CHOICES) / len(counted)

    @property
    def majority(self) -> str | None:
        counts = {choice: self.count(choice) for choice in CHOICES}
        best = max(counts.values())
        leaders = [choice for choice, count in counts.items() if count == best]
        return leaders[0] if len(self.counted) and len(leaders) == 1 else None

    @property
    def wanted(self) -> int:
        return max(self.k, self.spec.votes_wanted or 0)

    def states(self) -> set[PairState]:
        states = set()
        if not self.spec.gold:
            if self.judgments == 0:
                states.add(PairState.WAITING)
            elif self.judgments < self.wanted:
                states.add(PairState.IN_PROGRESS)
            else:
                states.add(PairState.COMPLETE)
                if self.counted and self.majority is None:
                    states.add(PairState.DISPUTED)
        if self.spec.status == "flagged":
            states.add(PairState.FLAGGED)
        if self.spec.status == "removed":
            states.add(PairState.REMOVED)
        if self.spec.decision is not None:
            states.add(PairState.ADJUDICATED)
        if self.spec.excluded:
            states.add(PairState.EXCLUDED)
        return states

    def texts(self) -> list[str]:
        rationales = [vote.rationale for _, vote in self.votes if vote.rationale]
        return [self.spec.prompt, self.spec.answer_a, self.spec.answer_b, *rationales]

    def matches(self, pairs: PairFilter) -> bool:
        spec = self.spec
        checks = [
            not pairs.batch or self.batch_id in pairs.batch,
            not pairs.status or bool(self.states() & set(pairs.status)),
            pairs.model is None
            or (
                sorted((spec.model_a, spec.model_b)) == sorted((pairs.model, pairs.versus))
                if pairs.versus is not None
                else pairs.model in (spec.model_a, spec.model_b)
            ),
            pairs.agreement_max is None
            or (self.agreement is not None and self.agreement <= pairs.agreement_max + 1e-9),
            _yes_no(pairs.tie, self.count("tie") > 0),
            _yes_no(pairs.both_bad, self.count("both_bad") > 0),
            _yes_no(pairs.flagged, spec.open_flags > 0),
            _yes_no(pairs.gold, spec.gold),
            _yes_no(pairs.rationale, any(vote.rationale for vote in self.counted)),
            pairs.rater is None or any(rater_id == pairs.rater for rater_id, _ in self.votes),
            pairs.created_from is None or self.created_at.date() >= pairs.created_from,
            pairs.created_to is None or self.created_at.date() <= pairs.created_to,
            pairs.q is None or any(_has_word(text, pairs.q) for text in self.texts()),
        ]
        return all(checks)

    def sort_key(self, sort: PairSort) -> tuple[object, ...]:
        agreement = self.agreement
        match sort:
            case PairSort.NEWEST | PairSort.OLDEST:
                return (self.created_at, self.pair_id)
            case PairSort.AGREEMENT_LOW:
                return (2.0 if agreement is None else agreement, self.pair_id)
            case PairSort.AGREEMENT_HIGH:
                return (1.0 if agreement is None else -agreement, self.pair_id)
            case PairSort.VOTES_MOST | PairSort.VOTES_FEWEST:
                return (len(self.counted), self.pair_id)


def _yes_no(wanted: bool | None, actual: bool) -> bool:
    return wanted is None or wanted == actual


def _has_word(text: str, query: str) -> bool:
    """Every word of the text against a one-word query: words of 3 or more characters match
    as a prefix, shorter ones whole."""
    return any(
        word.startswith(query) if len(query) >= 3 else word == query for word in text.split()
    )


def reference(built: Built) -> list[PairFacts]:
    excluded = built.raters[EXCLUDED_RATER].id if built.spec.exclude_rater else None
    facts = []
    for pair, spec in zip(built.pairs, built.spec.pairs, strict=True):
        pair_facts = PairFacts(
            pair.id, spec, pair.batch_id, pair.created_at, built.spec.k, excluded_rater_id=excluded
        )
        pair_facts.votes = [(built.raters[vote.rater].id, vote) for vote in spec.votes]
        facts.append(pair_facts)
    return facts


def expected_ids(facts: list[PairFacts], pairs: PairFilter, sort: PairSort) -> list[int]:
    """The pairs the filter selects, in the sort's order."""
    chosen = [fact for fact in facts if fact.matches(pairs)]
    descending = sort in (PairSort.NEWEST, PairSort.VOTES_MOST)
    chosen.sort(key=lambda fact: fact.sort_key(sort), reverse=descending)
    return [fact.pair_id for fact in chosen]


def day(offset: int) -> date:
    return (DAY_ZERO + timedelta(days=offset)).date()
