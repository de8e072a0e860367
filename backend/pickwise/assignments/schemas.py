from datetime import datetime

from pydantic import BaseModel

from pickwise.vocabulary import ShownSide, TurnRole


class Message(BaseModel):
    role: TurnRole
    content: str


class ShownResponse(BaseModel):
    side: ShownSide
    content: str


class NextPair(BaseModel):
    """What a rater sees. Model names are never included."""

    assignment_id: int
    pair_id: int
    lease_expires_at: datetime
    system: str | None
    turns: list[Message]
    left: ShownResponse
    right: ShownResponse


class NoWorkLeft(BaseModel):
    assignment_id: None = None
    detail: str = "No pairs are waiting for you in this project."
