"""A new turn in one statement: the day's reply budget, the conversation (new, or its last
activity), the turn and its two 'generating' replies.

It sits on the path from the rater's message to the model's first token, where every
statement is a round trip the worker waits for; written by the ORM it was four (the
reservation, then the conversation, the turn and the replies, each needing the id before
it). The budget comes first: when the day's replies are used up, nothing else is written.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.conversations.repository import RESERVE_SQL, as_json

_NEW_CONVERSATION = """
    INSERT INTO conversations (project_id, rater_id, opener_prompt_id, system_prompt, prefix,
                               turn_cap, status, start_key, created_at, last_activity_at)
    SELECT :project_id, :rater_id, CAST(:opener_prompt_id AS bigint),
           CAST(:system_prompt AS text), CAST(:prefix AS jsonb), :turn_cap, 'active',
           CAST(:start_key AS text), :now, :now
    FROM budget
    RETURNING id
"""
_GOES_ON = """
    UPDATE conversations SET last_activity_at = :now
    WHERE id = :conversation_id AND EXISTS (SELECT FROM budget)
    RETURNING id
"""
_TURN_AND_REPLIES = """
    WITH budget AS ({reserve}), conversation AS ({conversation}), turn AS (
        INSERT INTO conversation_turns (conversation_id, parent_turn_id, depth, branch,
                                        user_content, context, client_key, left_endpoint_id,
                                        right_endpoint_id, created_at)
        SELECT id, CAST(:parent_turn_id AS bigint), :depth, 0, :user_content,
               CAST(:context AS jsonb), CAST(:client_key AS text), :left_endpoint_id,
               :right_endpoint_id, :now
        FROM conversation
        RETURNING id
    ), replies AS (
        INSERT INTO conversation_replies (turn_id, side, attempt, endpoint_id, endpoint_name,
                                          model, sampling, status, content, requests,
                                          stop_requested, started_at, deadline_at)
        SELECT turn.id, r.side, 1, r.endpoint_id, r.endpoint_name, r.model,
               CAST(r.sampling AS jsonb), 'generating', '', 0, false, :now, :deadline
        FROM turn, (VALUES
            ('left', CAST(:left_endpoint_id AS bigint), CAST(:left_name AS text),
             CAST(:left_model AS text), CAST(:left_sampling AS text)),
            ('right', CAST(:right_endpoint_id AS bigint), CAST(:right_name AS text),
             CAST(:right_model AS text), CAST(:right_sampling AS text))
        ) AS r (side, endpoint_id, endpoint_name, model, sampling)
        RETURNING id, side
    )
    SELECT (SELECT id FROM conversation), (SELECT id FROM turn),
           (SELECT id FROM replies WHERE side = 'left'),
           (SELECT id FROM replies WHERE side = 'right')
"""
_START = text(_TURN_AND_REPLIES.format(reserve=RESERVE_SQL, conversation=_NEW_CONVERSATION))
_SEND = text(_TURN_AND_REPLIES.format(reserve=RESERVE_SQL, conversation=_GOES_ON))


@dataclass(frozen=True)
class Budget:
    project_id: int
    rater_id: int
    day: date
    limit: int | None  # replies a day; None: no limit


@dataclass(frozen=True)
class NewReply:
    endpoint_id: int
    endpoint_name: str
    model: str
    sampling: dict[str, Any]


@dataclass(frozen=True)
class NewTurn:
    parent_turn_id: int | None
    depth: int
    user_content: str
    context: list[Any]
    client_key: str | None
    left: NewReply
    right: NewReply
    deadline: datetime
    now: datetime


@dataclass(frozen=True)
class Written:
    conversation_id: int
    turn_id: int
    left_reply_id: int
    right_reply_id: int


def _turn_values(budget: Budget, turn: NewTurn) -> dict[str, Any]:
    values: dict[str, Any] = {
        "project_id": budget.project_id,
        "rater_id": budget.rater_id,
        "day": budget.day,
        "n": 2,
        "limit": budget.limit,
        "parent_turn_id": turn.parent_turn_id,
        "depth": turn.depth,
        "user_content": turn.user_content,
        "context": as_json(turn.context),
        "client_key": turn.client_key,
        "deadline": turn.deadline,
        "now": turn.now,
    }
    for side, reply in (("left", turn.left), ("right", turn.right)):
        values[f"{side}_endpoint_id"] = reply.endpoint_id
        values[f"{side}_name"] = reply.endpoint_name
        values[f"{side}_model"] = reply.model
        values[f"{side}_sampling"] = as_json(reply.sampling)
    return values


async def _write(session: AsyncSession, statement: Any, values: dict[str, Any]) -> Written | None:
    limit = values["limit"]
    if limit is not None and values["n"] > limit:
        return None
    row = (await session.execute(statement, values)).one()
    if row[0] is None:
        return None  # the day's replies are used up: nothing was written
    return Written(*(int(value) for value in row))


async def start_conversation(
    session: AsyncSession,
    budget: Budget,
    turn: NewTurn,
    *,
    opener_prompt_id: int | None,
    system_prompt: str | None,
    prefix: list[Any],
    turn_cap: int,
    start_key: str | None,
) -> Written | None:
    """A new conversation with its first turn, or None (nothing written) over the budget."""
    values = _turn_values(budget, turn)
    values.update(
        opener_prompt_id=opener_prompt_id,
        system_prompt=system_prompt,
        prefix=as_json(prefix),
        turn_cap=turn_cap,
        start_key=start_key,
    )
    return await _write(session, _START, values)


async def add_turn(
    session: AsyncSession, budget: Budget, conversation_id: int, turn: NewTurn
) -> Written | None:
    """The conversation's next turn, or None (nothing written) over the budget."""
    values = _turn_values(budget, turn)
    values["conversation_id"] = conversation_id
    return await _write(session, _SEND, values)
