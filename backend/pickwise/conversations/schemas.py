from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pickwise.assignments.schemas import Message
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models.conversations import MAX_TURN_CAP
from pickwise.vocabulary import ConversationStatus, OpenerSource, ReplyStatus, ShownSide

MAX_MESSAGE_CHARS = 50_000
Side = Literal["left", "right"]


class ConversationSettingsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"endpoint_ids": [1, 2], "turn_cap": 4, "opener_source": "both"}]
        },
    )

    endpoint_ids: list[int] = Field(
        min_length=2,
        max_length=50,
        description="Chat endpoints of this project; each turn gets replies from two of them.",
    )
    system_prompt: str | None = Field(None, max_length=MAX_MESSAGE_CHARS)
    turn_cap: int = Field(5, ge=1, le=MAX_TURN_CAP, description="Turns before a conversation ends.")
    opener_source: OpenerSource = Field(
        OpenerSource.OWN,
        description="First messages: written by the rater (own), imported openers, or both.",
    )
    temperature: float | None = Field(None, ge=0, le=2, description="Overrides the endpoints'.")
    top_p: float | None = Field(None, gt=0, le=1, description="Overrides the endpoints'.")
    max_tokens_per_reply: int | None = Field(None, ge=1, le=100_000)
    replies_per_rater_per_day: int | None = Field(
        None, ge=2, description="Replies (retries included) one rater may start per UTC day."
    )


class ConversationSettingsRead(ConversationSettingsIn):
    model_config = ConfigDict(from_attributes=True)

    project_id: int
    updated_at: datetime


class StartIn(BaseModel):
    """Either the first message, or `use_opener` for one of the imported openers."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"message": "Help me plan a trip."}]}
    )

    message: str | None = Field(None, max_length=MAX_MESSAGE_CHARS)
    use_opener: bool = False


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    parent_turn_id: int | None = Field(
        None,
        description="The turn this message answers (the last one); a message sent from a "
        "stale page is refused instead of landing after a turn the rater has not seen.",
    )


class VoteIn(JudgmentIn):
    """A choice as on the pair page, and which reply to go on from after a tie or 'both bad'
    (left when not given); after a left/right choice the conversation goes on from it."""

    continue_with: Side | None = None


class EditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class ReplyRead(BaseModel):
    """One side of a turn, as the rater sees it (model names are never included)."""

    side: ShownSide
    status: ReplyStatus
    attempt: int
    content: str
    problem: str | None = Field(None, description="Why the reply failed, in plain words.")
    can_retry: bool


class VoteRead(BaseModel):
    choice: Literal["left", "right", "tie", "both_bad"]
    strength: int | None
    rationale: str | None
    criteria: dict[str, str]


class TurnRead(BaseModel):
    id: int
    depth: int
    user_content: str
    created_at: datetime
    left: ReplyRead
    right: ReplyRead
    can_vote: bool
    vote: VoteRead | None
    continue_side: Side | None
    edited_reply: str | None = Field(None, description="The rater's edit of the reply kept.")


class ConversationRead(BaseModel):
    id: int
    project_id: int
    status: ConversationStatus
    turn_cap: int
    system_prompt: str | None
    prefix: list[Message]
    turns: list[TurnRead]
    can_send: bool = Field(description="True when the next message may be sent.")
    created_at: datetime


class ConversationListItem(BaseModel):
    id: int
    status: ConversationStatus
    turns: int
    first_message: str
    last_activity_at: datetime


class EndpointUsage(BaseModel):
    endpoint_id: int | None
    endpoint_name: str
    model: str
    requests: int
    replies: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    replies_without_usage: int = Field(description="Replies whose server reported no tokens.")
    requests_today: int
    tokens_today: int


class StopPoint(BaseModel):
    """Conversations whose last turn is this one, by where they stand: ended by the rater,
    at the cap, or still open (waiting for replies, for the vote, or for the next message;
    an open conversation nobody touches any more is where its rater left it)."""

    turn: int
    ended_by_rater: int
    reached_cap: int
    open_waiting_for_replies: int
    open_before_voting: int
    open_after_voting: int


class ConversationStats(BaseModel):
    conversations: int
    active: int
    ended: int
    complete: int
    judged_turns: int
    turns_per_conversation: dict[int, int] = Field(
        description="Judged turns → conversations with that many."
    )
    stops: list[StopPoint]
