"""What the explorer is asked (a filter, a sort, a cursor) and what it answers."""

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pickwise.vocabulary import (
    CanonicalSide,
    CurationAction,
    Decision,
    FlagResolution,
    PairState,
)

MAX_TEXT = 500


class PairFilter(BaseModel):
    """Which pairs: every condition given must hold (statuses: any of them). The same filter
    selects the explorer's rows, a bulk action's pairs and an export's pairs.

    Empty values ("" from a form's "any" choice) count as not given.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    batch: list[int] = Field(default_factory=list, description="Only these batches.")
    status: list[PairState] = Field(default_factory=list, description="Any of these states.")
    model: str | None = Field(None, max_length=MAX_TEXT, description="A model on either side.")
    versus: str | None = Field(
        None, max_length=MAX_TEXT, description="With `model`: the pair of these two models."
    )
    agreement_max: float | None = Field(
        None, ge=0, le=1, description="Agreement at or below this (pairs with votes only)."
    )
    tie: bool | None = Field(None, description="Has a tie vote (true) or none (false).")
    both_bad: bool | None = Field(None, description="Has a both-bad vote, or none.")
    flagged: bool | None = Field(None, description="Has an open flag, or none.")
    gold: bool | None = Field(None, description="Is a gold pair, or not.")
    rationale: bool | None = Field(None, description="Has a vote with a rationale, or none.")
    rater: int | None = Field(None, ge=1, description="Voted on by this user id.")
    created_from: date | None = Field(None, description="Created on or after this day (UTC).")
    created_to: date | None = Field(None, description="Created on or before this day (UTC).")
    q: str | None = Field(
        None,
        max_length=MAX_TEXT,
        description='Words in the prompt, an answer or a rationale ("a phrase", -not, or).',
    )

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in value if item != ""]
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("model", "versus", "q")
    @classmethod
    def _stripped(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @field_validator("versus")
    @classmethod
    def _versus_needs_a_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("model") is None:
            raise ValueError("give the first model too (model)")
        return value

    @field_validator("created_to")
    @classmethod
    def _after_the_first_day(cls, value: date | None, info: ValidationInfo) -> date | None:
        first = info.data.get("created_from")
        if value is not None and first is not None and first > value:
            raise ValueError("the last day comes before the first (created_from)")
        return value

    def as_params(self) -> list[tuple[str, str]]:
        """The filter as query parameters (only what is set), for links and forms."""
        params: list[tuple[str, str]] = []
        for name, value in self.model_dump(exclude_defaults=True, mode="json").items():
            values = value if isinstance(value, list) else [value]
            params += [(name, _param(item)) for item in values]
        return params

    def as_record(self) -> dict[str, Any]:
        """What a manifest records: the set conditions, in JSON."""
        return self.model_dump(exclude_defaults=True, mode="json")

    @property
    def is_empty(self) -> bool:
        return not self.as_params()


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class MatchCount(BaseModel):
    value: int
    exact: bool = Field(
        description="False: more than the exact-count bound matched (or counting took too "
        "long), and `value` is Postgres's estimate."
    )


class VoteCounts(BaseModel):
    """A pair's votes as counted (docs/review.md: votes of excluded raters do not count)."""

    judgments: int = Field(description="Every judgment, each of which filled a slot.")
    votes_wanted: int = Field(
        description="Judgments the pair needs: one per slot its overlap rule opened (k, or more "
        "if raised; in an adaptive project, as many as the stopping rule asked for so far)."
    )
    votes: int = Field(description="Votes that count: raters not excluded.")
    votes_a: int
    votes_b: int
    ties: int
    both_bad: int
    majority: str | None = Field(description="The most common choice, if it is unique.")
    agreement: float | None = Field(description="Share of the votes behind the most common.")
    rationales: int


class PairRow(VoteCounts):
    pair_id: int
    batch_id: int
    batch_filename: str
    created_at: datetime
    prompt_excerpt: str
    model_a: str
    model_b: str
    status: PairState | None = Field(
        description="The state that matters most (docs/review.md); none for a gold pair "
        "in no other state."
    )
    states: list[PairState]
    is_gold: bool
    open_flags: int
    decision: Decision | None
    excluded: bool
    median_seconds: float | None = Field(description="Median time per counted vote.")


class SearchCoverage(BaseModel):
    """What a text search could read: answers imported in the last minutes may still be
    waiting for their words (docs/review.md, "Search")."""

    answers_pending: int = Field(
        description="Answers of this project imported lately whose words are not in the "
        "search index yet, nor their prompts' (0: every answer and prompt is searchable)."
    )
    pending_read: bool = Field(
        description="True when this search read those answers directly, so it missed "
        "nothing; false when they were too many and it left them out."
    )


class PairPage(BaseModel):
    items: list[PairRow]
    count: MatchCount
    search: SearchCoverage | None = Field(
        None, description="Present when the filter has a text search (`q`)."
    )
    next_cursor: str | None = Field(description="Pass as `after` for the next page.")
    previous_cursor: str | None = Field(description="Pass as `before` for the page before.")
    as_of_judgment: int = Field(
        description="Votes up to this judgment id are counted on every page of this listing, "
        "so votes arriving meanwhile neither move pairs between pages nor change them."
    )


class AdjudicationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"decision": "a", "note": "B invents a citation."}]},
    )

    decision: Decision
    note: str = Field("", max_length=5_000)


class AdjudicationRead(BaseModel):
    id: int
    pair_id: int
    decision: Decision
    note: str
    decided_by: str | None
    decided_at: datetime
    replaces_id: int | None
    replaced_decision: Decision | None
    is_current: bool
    withdrawn_at: datetime | None
    withdrawn_by: str | None


class ActionIn(BaseModel):
    """One action on the pairs a filter selects, or on the pairs listed in `pair_ids`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"action": "request_votes", "votes": 5, "filter": {"status": ["disputed"]}},
                {"action": "make_gold", "answer": "a", "pair_ids": [12]},
            ]
        },
    )

    action: CurationAction
    filter: PairFilter | None = None
    pair_ids: list[int] | None = Field(None, max_length=1000, validate_default=True)
    votes: int | None = Field(
        None,
        ge=1,
        le=100,
        validate_default=True,
        description="request_votes: the votes each pair should get.",
    )
    answer: CanonicalSide | None = Field(
        None, validate_default=True, description="make_gold: the right answer."
    )
    resolution: FlagResolution | None = Field(
        None, validate_default=True, description="resolve_flags: back in the queue, or removed."
    )

    @field_validator("pair_ids")
    @classmethod
    def _filter_or_pairs(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if (info.data.get("filter") is None) == (value is None):
            raise ValueError("give either a filter or pair_ids")
        return value

    @field_validator("votes", "answer", "resolution")
    @classmethod
    def _needed_by_the_action(cls, value: Any, info: ValidationInfo) -> Any:
        action = info.data.get("action")
        if value is None and action is not None and _NEEDS.get(action) == info.field_name:
            raise ValueError(f"required for {action.value}")
        return value


_NEEDS = {
    CurationAction.REQUEST_VOTES: "votes",
    CurationAction.MAKE_GOLD: "answer",
    CurationAction.RESOLVE_FLAGS: "resolution",
}


class ActionResult(BaseModel):
    action: CurationAction
    selected: int = Field(description="Pairs the filter or list selected.")
    changed: int = Field(description="Pairs this request changed (0 when repeated).")
    detail: str


# --- one pair -----------------------------------------------------------------------------


class RaterRef(BaseModel):
    user_id: int
    pseudonym: str
    display_name: str | None = Field(description="Only when the accounts are revealed.")
    email: str | None = Field(description="Only when the accounts are revealed.")
    excluded: bool = Field(description="Excluded from this project's exports and statistics.")


class CriterionRead(BaseModel):
    name: str
    choice: Literal["a", "b", "tie"]
    as_shown: Literal["left", "right", "tie"]


class VoteRead(BaseModel):
    judgment_id: int
    rater: RaterRef
    counted: bool = Field(description="False for a rater excluded from the project.")
    shown_left: Literal["a", "b"] = Field(description="The response shown on the left.")
    choice: Literal["a", "b", "tie", "both_bad"] = Field(description="Canonical A / B.")
    as_shown: Literal["left", "right", "tie", "both_bad"] = Field(
        description="The choice in the rater's words: the side it was shown on."
    )
    strength: int | None
    strength_label: str | None
    criteria: list[CriterionRead]
    rationale: str | None
    seconds: float = Field(description="From the pair being shown to the vote.")
    shown_at: datetime
    submitted_at: datetime
    is_gold: bool
    gold_correct: bool | None = Field(description="On a gold pair: did it pick the answer?")


class SkipRead(BaseModel):
    rater: RaterRef
    reason: str | None
    reason_label: str
    at: datetime | None


class ChangeRead(BaseModel):
    """A choice or skip a rater replaced within the project's undo window (the pair's votes
    above hold what they replaced it with)."""

    rater: RaterRef
    kind: Literal["judgment", "skip"]
    choice: Literal["a", "b", "tie", "both_bad"] | None = Field(description="Canonical A / B.")
    as_shown: Literal["left", "right", "tie", "both_bad"] | None
    strength_label: str | None
    skip_reason_label: str | None
    decided_at: datetime
    replaced_at: datetime


class PairFlagRead(BaseModel):
    rater: RaterRef
    reason: str
    note: str
    created_at: datetime
    resolution: str | None
    resolved_at: datetime | None


class SlotRead(BaseModel):
    slot_no: int
    state: Literal["open", "leased", "done"]
    lease_expires_at: datetime | None
    rater_pseudonym: str | None = Field(description="Who holds (leased) or filled (done) it.")


class LeaseRead(BaseModel):
    rater: RaterRef
    shown_left: Literal["a", "b"]
    shown_at: datetime
    lease_expires_at: datetime
    is_gold: bool


class TurnRead(BaseModel):
    role: str
    content: str


class ResponseRead(BaseModel):
    id: int
    external_id: str
    model: str
    content: str


class PairDetailRead(VoteCounts):
    pair_id: int
    project_id: int
    batch_id: int
    batch_filename: str
    created_at: datetime
    prompt_external_id: str
    system: str | None
    turns: list[TurnRead]
    response_a: ResponseRead
    response_b: ResponseRead
    is_gold: bool
    gold_answer: Literal["a", "b"] | None
    pair_status: str
    excluded: bool
    states: list[PairState]
    decision: AdjudicationRead | None = Field(description="The current decision, if any.")
    votes_list: list[VoteRead] = Field(description="Every vote, in the order submitted.")
    skips: list[SkipRead]
    changes: list[ChangeRead] = Field(
        description="Choices and skips raters replaced within the undo window, oldest first."
    )
    flags: list[PairFlagRead]
    slots: list[SlotRead]
    leases: list[LeaseRead] = Field(description="Raters holding the pair right now.")
    adjudications: list[AdjudicationRead] = Field(description="Every decision, oldest first.")
