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

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth.repository import LIVE_API_TOKEN
from pickwise.conversations.repository import RESERVE_SQL, RaterProject, as_json
from pickwise.core.db import DriverSql, adopt, column_count, columns_of, run_pipelined
from pickwise.models import ConversationSettings, GenerationEndpoint, Project, User

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
    WITH {guard}budget AS ({reserve}), conversation AS ({conversation}), turn AS (
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
# Straight on the psycopg connection: SQLAlchemy's execution of a text() statement costs
# ~0.2 ms of CPU more (core.db.DriverSql), on the path to the first token.
_START = DriverSql(
    _TURN_AND_REPLIES.format(guard="", reserve=RESERVE_SQL, conversation=_NEW_CONVERSATION)
)
_SEND = DriverSql(_TURN_AND_REPLIES.format(guard="", reserve=RESERVE_SQL, conversation=_GOES_ON))


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


async def _write(
    session: AsyncSession, statement: DriverSql, values: dict[str, Any]
) -> Written | None:
    limit = values["limit"]
    if limit is not None and values["n"] > limit:
        return None
    row = await statement.one(session, values)
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


# --- who starts, and in which project: one round trip ---------------------------------------

_ASKER = "SELECT {columns} " + LIVE_API_TOKEN
# The project (if the token's user may rate it) with its conversation settings and its
# switched-on conversation endpoints: one row per endpoint, or one with NULLs.
_ASKER_AND_PROJECT = """
    FROM asker, projects p
    LEFT JOIN conversation_settings s ON s.project_id = p.id
    LEFT JOIN conversation_endpoints ce ON ce.project_id = p.id
    LEFT JOIN generation_endpoints e ON e.id = ce.endpoint_id AND e.is_active
    WHERE p.id = :project_id
      AND (asker.role = 'admin' OR EXISTS (
          SELECT FROM project_members m WHERE m.project_id = p.id AND m.user_id = asker.id))
"""
# Everything a start reads of who asks and the project, as one text: every column of the
# project, its settings and its switched-on endpoints, and who asks (their id and role, the
# token live and the user active, the membership, all in `_ASKER_AND_PROJECT`). Equal texts,
# equal starts: a start planned from an earlier lookup's rows holds while this is unchanged.
_STATE_ROW = "row(asker.id, asker.role)::text || row(p.*)::text || row(s.*)::text || row(e.*)::text"
_PROJECT_OF_ASKER = """
    WITH asker AS ({asker})
    SELECT {project}, {settings}, {endpoint},
           md5(string_agg({state}, '|') OVER (
               ORDER BY e.id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))
    {where}
    ORDER BY e.id
"""
_ASKER_ID_AND_ROLE = _ASKER.format(columns="u.id, u.role")
_FIND_ASKER = DriverSql(_ASKER.format(columns=columns_of(User, "u")))
_FIND_PROJECT = DriverSql(
    _PROJECT_OF_ASKER.format(
        asker=_ASKER_ID_AND_ROLE,
        project=columns_of(Project, "p"),
        settings=columns_of(ConversationSettings, "s"),
        endpoint=columns_of(GenerationEndpoint, "e"),
        state=_STATE_ROW,
        where=_ASKER_AND_PROJECT,
    )
)
# The same text computed again inside the turn's statement: one row when it is still
# `:state`, none otherwise (and then the budget, so nothing, is written).
_UNCHANGED = f"""
    asker AS ({_ASKER_ID_AND_ROLE}), unchanged AS (
        SELECT FROM (
            SELECT md5(string_agg({_STATE_ROW}, '|' ORDER BY e.id)) AS state
            {_ASKER_AND_PROJECT}
        ) now_ WHERE now_.state = :state
    ),"""
_RESERVE_IF_UNCHANGED = """
    INSERT INTO conversation_rater_days AS d (project_id, rater_id, day, replies)
    SELECT CAST(:project_id AS bigint), CAST(:rater_id AS bigint), CAST(:day AS date),
           CAST(:n AS integer)
    FROM unchanged
    ON CONFLICT (project_id, rater_id, day) DO UPDATE SET replies = d.replies + :n
    WHERE CAST(:limit AS integer) IS NULL OR d.replies + :n <= CAST(:limit AS integer)
    RETURNING replies
"""
_START_IF_UNCHANGED = DriverSql(
    _TURN_AND_REPLIES.format(
        guard=_UNCHANGED, reserve=_RESERVE_IF_UNCHANGED, conversation=_NEW_CONVERSATION
    )
)


@dataclass(frozen=True)
class PlannedStart:
    """A first turn planned from an earlier lookup's rows (`Starter.state`), to be written
    in the lookup's round trip if what it read is unchanged."""

    state: str
    budget: Budget
    turn: NewTurn
    system_prompt: str | None
    turn_cap: int


@dataclass(frozen=True)
class Starter:
    """Who starts a conversation with an API token, and the project when they may rate it."""

    user: User | None  # None: no active user has this token
    project: RaterProject | None
    state: str | None = None  # what the start read, as one text (`_STATE_ROW`)
    written: Written | None = None  # the planned start, written: it still held


async def starter(
    session: AsyncSession,
    token_hash: str,
    now: datetime,
    project_id: int,
    planned: PlannedStart | None = None,
) -> Starter:
    """Who asks and the project, in the unit's first round trip (its BEGIN included): the
    statements go out together (`run_pipelined`). With a start `planned` from an earlier
    lookup, its turn goes in the same round trip, written only if what that lookup read is
    unchanged (`written`; otherwise nothing is written and the caller starts as usual)."""
    params = {"token_hash": token_hash, "now": now, "project_id": project_id}
    calls = [(_FIND_ASKER, params), (_FIND_PROJECT, params)]
    if planned is not None:
        values = _turn_values(planned.budget, planned.turn)
        values.update(
            params,
            state=planned.state,
            opener_prompt_id=None,
            system_prompt=planned.system_prompt,
            prefix=as_json([]),
            turn_cap=planned.turn_cap,
            start_key=None,
        )
        calls.append((_START_IF_UNCHANGED, values))
    users, rows, *turns = await run_pipelined(session, calls)
    written = None
    if turns and turns[0][0][0] is not None:
        written = Written(*(int(value) for value in turns[0][0]))
    if not users:
        return Starter(None, None, written=written)
    user = adopt(session, User, users[0])
    if written is not None:
        # The planned start holds: the project's rows are not used (nor made ORM objects).
        return Starter(user, None, written=written)
    if not rows:
        return Starter(user, None)
    ends = (column_count(Project), column_count(Project) + column_count(ConversationSettings))
    first = rows[0]
    project = adopt(session, Project, first[: ends[0]])
    settings_values = first[ends[0] : ends[1]]
    settings = (
        None
        if settings_values[0] is None
        else adopt(session, ConversationSettings, settings_values)
    )
    endpoints = [
        adopt(session, GenerationEndpoint, row[ends[1] : -1])
        for row in rows
        if row[ends[1]] is not None
    ]
    return Starter(user, RaterProject(project, settings, endpoints), str(first[-1]), written)
