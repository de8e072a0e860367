"""What the explorer is asked (a filter, a sort, a cursor) and what it answers."""

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pickwise.models.review import Decision

MAX_TEXT = 500


class PairState(StrEnum):
    """What a pair's status filter can ask for; a pair may be in several (complete and
    disputed and adjudicated, say). docs/review.md defines each."""

    WAITING = "waiting"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    DISPUTED = "disputed"
    FLAGGED = "flagged"
    REMOVED = "removed"
    ADJUDICATED = "adjudicated"
    EXCLUDED = "excluded"

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]


_STATE_LABELS = {
    PairState.WAITING: "waiting",
    PairState.IN_PROGRESS: "in progress",
    PairState.COMPLETE: "complete",
    PairState.DISPUTED: "disputed",
    PairState.FLAGGED: "flagged",
    PairState.REMOVED: "removed",
    PairState.ADJUDICATED: "adjudicated",
    PairState.EXCLUDED: "excluded",
}


class Sort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    AGREEMENT_LOW = "agreement_low"
    AGREEMENT_HIGH = "agreement_high"
    VOTES_MOST = "votes_most"
    VOTES_FEWEST = "votes_fewest"

    @property
    def label(self) -> str:
        return _SORT_LABELS[self]


_SORT_LABELS = {
    Sort.NEWEST: "Newest first",
    Sort.OLDEST: "Oldest first",
    Sort.AGREEMENT_LOW: "Lowest agreement first",
    Sort.AGREEMENT_HIGH: "Highest agreement first",
    Sort.VOTES_MOST: "Most votes first",
    Sort.VOTES_FEWEST: "Fewest votes first",
}


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

    @model_validator(mode="after")
    def _consistent(self) -> "PairFilter":
        if self.versus is not None and self.model is None:
            raise ValueError("versus: give the first model too (model)")
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_to: the last day comes before the first")
        return self

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


class PairRow(BaseModel):
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
    judgments: int = Field(description="Every judgment, each of which filled a slot.")
    votes_wanted: int = Field(description="Judgments the pair needs (k, or more if raised).")
    votes: int = Field(description="Votes that count: raters not excluded.")
    votes_a: int
    votes_b: int
    ties: int
    both_bad: int
    majority: str | None = Field(description="The most common choice, if it is unique.")
    agreement: float | None = Field(description="Share of the votes behind the most common.")
    rationales: int
    open_flags: int
    decision: Decision | None
    excluded: bool
    median_seconds: float | None = Field(description="Median time per counted vote.")


class PairPage(BaseModel):
    items: list[PairRow]
    count: MatchCount
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


class ActionName(StrEnum):
    EXCLUDE = "exclude"
    INCLUDE = "include"
    REQUEST_VOTES = "request_votes"
    MAKE_GOLD = "make_gold"
    RESOLVE_FLAGS = "resolve_flags"

    @property
    def label(self) -> str:
        return _ACTION_LABELS[self]


_ACTION_LABELS = {
    ActionName.EXCLUDE: "Exclude from exports",
    ActionName.INCLUDE: "Include in exports again",
    ActionName.REQUEST_VOTES: "Request more votes",
    ActionName.MAKE_GOLD: "Make gold",
    ActionName.RESOLVE_FLAGS: "Resolve flags",
}


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

    action: ActionName
    filter: PairFilter | None = None
    pair_ids: list[int] | None = Field(None, max_length=1000)
    votes: int | None = Field(
        None, ge=1, le=100, description="request_votes: the votes each pair should get."
    )
    answer: Literal["a", "b"] | None = Field(None, description="make_gold: the right answer.")
    resolution: Literal["restored", "removed"] | None = Field(
        None, description="resolve_flags: back in the queue, or removed."
    )

    @model_validator(mode="after")
    def _complete(self) -> "ActionIn":
        if (self.filter is None) == (self.pair_ids is None):
            raise ValueError("filter: give either a filter or pair_ids")
        needed = {
            ActionName.REQUEST_VOTES: ("votes", self.votes),
            ActionName.MAKE_GOLD: ("answer", self.answer),
            ActionName.RESOLVE_FLAGS: ("resolution", self.resolution),
        }.get(self.action)
        if needed is not None and needed[1] is None:
            raise ValueError(f"{needed[0]}: required for {self.action.value}")
        return self


class ActionResult(BaseModel):
    action: ActionName
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


class PairDetailRead(BaseModel):
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
    judgments: int
    votes_wanted: int
    votes: int
    votes_a: int
    votes_b: int
    ties: int
    both_bad: int
    majority: str | None
    agreement: float | None
    decision: AdjudicationRead | None = Field(description="The current decision, if any.")
    votes_list: list[VoteRead] = Field(description="Every vote, in the order submitted.")
    skips: list[SkipRead]
    flags: list[PairFlagRead]
    slots: list[SlotRead]
    leases: list[LeaseRead] = Field(description="Raters holding the pair right now.")
    adjudications: list[AdjudicationRead] = Field(description="Every decision, oldest first.")
