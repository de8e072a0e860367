"""Queries of live conversations: settings, turns and replies, budgets, and the pair a vote
becomes."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth.repository import API_TOKEN_HOLDER, LIVE_API_TOKEN, user_of_api_token_with
from pickwise.batches.parsing.records import ParsedResponse
from pickwise.core.db import (
    DriverSql,
    adopt,
    column_count,
    column_index,
    columns_of,
    run_pipelined,
)
from pickwise.models import (
    Batch,
    Conversation,
    ConversationEdit,
    ConversationEndpoint,
    ConversationRaterDay,
    ConversationReply,
    ConversationSettings,
    ConversationTurn,
    GenerationEndpoint,
    Judgment,
    Pair,
    Project,
    ProjectMember,
    Prompt,
    User,
)
from pickwise.vocabulary import AccountRole

CONVERSATION_BATCH_NAME = "live conversations"


# --- settings ----------------------------------------------------------------------------


async def get_settings(session: AsyncSession, project_id: int) -> ConversationSettings | None:
    return await session.get(ConversationSettings, project_id)


async def endpoint_ids(session: AsyncSession, project_id: int) -> list[int]:
    rows = await session.scalars(
        select(ConversationEndpoint.endpoint_id)
        .where(ConversationEndpoint.project_id == project_id)
        .order_by(ConversationEndpoint.endpoint_id)
    )
    return list(rows)


async def replace_endpoints(session: AsyncSession, project_id: int, ids: Sequence[int]) -> None:
    await session.execute(
        delete(ConversationEndpoint).where(ConversationEndpoint.project_id == project_id)
    )
    session.add_all(ConversationEndpoint(project_id=project_id, endpoint_id=i) for i in ids)
    await session.flush()


async def project_endpoints(
    session: AsyncSession, project_id: int, ids: Sequence[int]
) -> list[GenerationEndpoint]:
    rows = await session.scalars(
        select(GenerationEndpoint).where(
            GenerationEndpoint.project_id == project_id, GenerationEndpoint.id.in_(ids)
        )
    )
    return list(rows)


async def endpoints_by_id(
    session: AsyncSession, ids: Sequence[int]
) -> dict[int, GenerationEndpoint]:
    rows = await session.scalars(select(GenerationEndpoint).where(GenerationEndpoint.id.in_(ids)))
    return {endpoint.id: endpoint for endpoint in rows}


async def has_imported_pairs(session: AsyncSession, project_id: int) -> bool:
    found = await session.scalar(
        select(
            select(Pair.id)
            .join(Batch, Batch.id == Pair.batch_id)
            .where(Pair.project_id == project_id, Batch.source != "conversation")
            .exists()
        )
    )
    return bool(found)


# --- conversations ---------------------------------------------------------------------


async def lock_rater(session: AsyncSession, project_id: int, rater_id: int) -> None:
    """One start at a time per rater and project (two tabs cannot take one opener twice)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:a, :b)"),
        {"a": rater_id % 2_147_483_647, "b": project_id % 2_147_483_647},
    )


async def by_start_key(session: AsyncSession, rater_id: int, key: str) -> Conversation | None:
    return await session.scalar(
        select(Conversation).where(Conversation.rater_id == rater_id, Conversation.start_key == key)
    )


# Imported openers are the project's prompts outside the conversation batch. The least used
# one this rater has not had yet; ties by id, so openers are dealt in import order.
_PICK_OPENER = text(
    """
    SELECT p.id FROM prompts p
    JOIN batches b ON b.id = p.batch_id
    WHERE p.project_id = :project_id AND b.source <> 'conversation'
      AND NOT EXISTS (
          SELECT 1 FROM conversations c
          WHERE c.rater_id = :rater_id AND c.opener_prompt_id = p.id
      )
    ORDER BY (SELECT count(*) FROM conversations c WHERE c.opener_prompt_id = p.id), p.id
    LIMIT 1
    """
)


async def pick_opener(session: AsyncSession, project_id: int, rater_id: int) -> Prompt | None:
    prompt_id = await session.scalar(_PICK_OPENER, {"project_id": project_id, "rater_id": rater_id})
    return None if prompt_id is None else await session.get(Prompt, prompt_id)


async def count_openers(session: AsyncSession, project_id: int) -> int:
    total = await session.scalar(
        select(func.count())
        .select_from(Prompt)
        .join(Batch, Batch.id == Prompt.batch_id)
        .where(Prompt.project_id == project_id, Batch.source != "conversation")
    )
    return int(total or 0)


# Built once, like the rater loop's statements: these run on every turn.
def _may_rate(project_id: Any) -> Any:
    """The caller (rater_id, or an admin: is_admin) may rate the project."""
    member = select(ProjectMember.user_id).where(
        ProjectMember.project_id == project_id,
        ProjectMember.user_id == bindparam("rater_id"),
    )
    return bindparam("is_admin") | member.exists()


def _owned_conversation_sql(rater_id: str, is_admin: str) -> str:
    return f"""
    SELECT {columns_of(Conversation, "c")}, {columns_of(Project, "p")},
           {columns_of(ConversationSettings, "s")}
    FROM conversations c
    JOIN projects p ON p.id = c.project_id
    JOIN conversation_settings s ON s.project_id = c.project_id
    WHERE c.id = :conversation_id AND c.rater_id = {rater_id}
      AND ({is_admin} OR EXISTS (
          SELECT FROM project_members m
          WHERE m.project_id = c.project_id AND m.user_id = {rater_id}))
"""


# The rater's conversation with its project and settings, in a project they may still rate.
# Straight on psycopg (DriverSql): a vote, a message, an edit each start with it.
_OWNED_CONVERSATION_SQL = _owned_conversation_sql(":rater_id", ":is_admin")
_OWNED_CONVERSATION = DriverSql(_OWNED_CONVERSATION_SQL)
_LOCKED_OWNED_CONVERSATION = DriverSql(_OWNED_CONVERSATION_SQL + " FOR UPDATE OF c")
# The same, locked, for whom an API token names: sent in the round trip of the token's lookup.
_LOCKED_CONVERSATION_OF_TOKEN_HOLDER = DriverSql(
    _owned_conversation_sql(
        API_TOKEN_HOLDER,
        f"COALESCE((SELECT u.role = '{AccountRole.ADMIN}' {LIVE_API_TOKEN}), false)",
    )
    + " FOR UPDATE OF c"
)
# With the project's conversation endpoints that are switched on (one row each, or one row
# of NULLs): a new conversation reads all it needs in one statement.
_RATER_PROJECT = (
    select(Project, ConversationSettings, GenerationEndpoint)
    .outerjoin(ConversationSettings, ConversationSettings.project_id == Project.id)
    .outerjoin(ConversationEndpoint, ConversationEndpoint.project_id == Project.id)
    .outerjoin(
        GenerationEndpoint,
        (GenerationEndpoint.id == ConversationEndpoint.endpoint_id) & GenerationEndpoint.is_active,
    )
    .where(Project.id == bindparam("project_id"), _may_rate(Project.id))
    .order_by(GenerationEndpoint.id)
)


Owned = tuple[Conversation, Project, ConversationSettings]


def _owned_params(conversation_id: int, rater_id: int, is_admin: bool) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "rater_id": rater_id, "is_admin": is_admin}


def _adopt_owned(session: AsyncSession, rows: list[tuple[Any, ...]]) -> Owned | None:
    if not rows:
        return None
    row = rows[0]
    ends = (column_count(Conversation), column_count(Conversation) + column_count(Project))
    return (
        adopt(session, Conversation, row[: ends[0]]),
        adopt(session, Project, row[ends[0] : ends[1]]),
        adopt(session, ConversationSettings, row[ends[1] :]),
    )


async def owned_conversation(
    session: AsyncSession, conversation_id: int, rater_id: int, is_admin: bool, *, lock: bool
) -> Owned | None:
    statement = _LOCKED_OWNED_CONVERSATION if lock else _OWNED_CONVERSATION
    rows = await statement.rows(session, _owned_params(conversation_id, rater_id, is_admin))
    return _adopt_owned(session, rows)


@dataclass(frozen=True)
class RaterProject:
    project: Project
    settings: ConversationSettings | None
    endpoints: list[GenerationEndpoint]  # its conversation endpoints switched on, by id


async def rater_project(
    session: AsyncSession, project_id: int, rater_id: int, is_admin: bool
) -> RaterProject | None:
    """The project, its conversation settings (if any) and endpoints, when the caller may
    rate it."""
    params = {"project_id": project_id, "rater_id": rater_id, "is_admin": is_admin}
    rows = (await session.execute(_RATER_PROJECT, params)).all()
    if not rows:
        return None
    endpoints = [row[2] for row in rows if row[2] is not None]
    return RaterProject(rows[0][0], rows[0][1], endpoints)


# The last turn of a conversation, with the text the conversation goes on from after it:
# the latest edit, else the reply kept. All a new message needs.
_HEAD = DriverSql(
    f"""
    SELECT {columns_of(ConversationTurn, "t")},
           coalesce(
               (SELECT e.content FROM conversation_edits e WHERE e.turn_id = t.id
                ORDER BY e.id DESC LIMIT 1),
               (SELECT r.content FROM conversation_replies r
                WHERE r.turn_id = t.id AND r.side = t.continue_side AND r.status = 'complete'
                ORDER BY r.attempt DESC LIMIT 1))
    FROM conversation_turns t
    WHERE t.conversation_id = :conversation_id AND t.branch = 0
    ORDER BY t.depth DESC
    LIMIT 1
    """
)
_TURN_OF_KEY = DriverSql(
    f"""
    SELECT {columns_of(ConversationTurn, "t")} FROM conversation_turns t
    WHERE t.conversation_id = :conversation_id AND t.client_key = :client_key
    """
)
# The switched-on conversation endpoints of the conversation's project.
_ENDPOINTS_OF_CONVERSATION = DriverSql(
    f"""
    SELECT {columns_of(GenerationEndpoint, "e")}
    FROM conversation_endpoints ce JOIN generation_endpoints e ON e.id = ce.endpoint_id
    WHERE ce.project_id = (SELECT project_id FROM conversations WHERE id = :conversation_id)
      AND e.is_active
    ORDER BY e.id
    """
)


@dataclass(frozen=True)
class Head:
    turn: ConversationTurn
    kept: str | None  # what the conversation goes on from (None until the turn is judged)


def _head(session: AsyncSession, rows: list[tuple[Any, ...]]) -> Head | None:
    if not rows:
        return None
    return Head(adopt(session, ConversationTurn, rows[0][:-1]), rows[0][-1])


async def head_turn(session: AsyncSession, conversation_id: int) -> Head | None:
    """The conversation's last turn."""
    return _head(session, await _HEAD.rows(session, {"conversation_id": conversation_id}))


@dataclass(frozen=True)
class MessageContext:
    """What a new message needs, for the rater's own conversation."""

    conversation: Conversation
    settings: ConversationSettings
    keyed: ConversationTurn | None  # the turn an earlier message with this key made
    head: Head | None
    endpoints: list[GenerationEndpoint]  # the project's, switched on, by id
    rows: "ConversationRows"  # the conversation as it is, for the answer


def _message_calls(
    owned: tuple[DriverSql, dict[str, Any]], conversation_id: int, key: str | None
) -> list[tuple[DriverSql, dict[str, Any]]]:
    params = {"conversation_id": conversation_id, "client_key": key}
    return [
        owned,
        (_TURN_OF_KEY, params),
        (_HEAD, params),
        (_ENDPOINTS_OF_CONVERSATION, params),
        (_CONVERSATION_ROWS, {"conversation_id": conversation_id}),
    ]


async def message_context(
    session: AsyncSession, conversation_id: int, rater_id: int, is_admin: bool, key: str | None
) -> MessageContext | None:
    """The rater's conversation (locked), the turn of the message's key, the last turn, the
    project's endpoints and the conversation's rows (its answer is made from them and the
    turn it writes: no read after the write), in one round trip (`run_pipelined`: the others
    are read after the lock is taken, and not looked at when the conversation is not the
    rater's)."""
    owned = (_LOCKED_OWNED_CONVERSATION, _owned_params(conversation_id, rater_id, is_admin))
    answers = await run_pipelined(session, _message_calls(owned, conversation_id, key))
    return _message_context(session, answers)


async def message_context_of_token(
    session: AsyncSession, token_hash: str, now: datetime, conversation_id: int, key: str | None
) -> tuple[User | None, MessageContext | None]:
    """Who an API token names and `message_context` for them, in one round trip (the
    transaction's BEGIN included). (None, None) when the token names nobody."""
    owned = (_LOCKED_CONVERSATION_OF_TOKEN_HOLDER, {"conversation_id": conversation_id})
    user, answers = await user_of_api_token_with(
        session, token_hash, now, _message_calls(owned, conversation_id, key)
    )
    return user, (None if user is None else _message_context(session, answers))


def _message_context(
    session: AsyncSession, answers: list[list[tuple[Any, ...]]]
) -> MessageContext | None:
    owned, keyed, head, endpoints, rows = answers
    found = _adopt_owned(session, owned)
    if found is None:
        return None
    conversation, _, settings = found
    return MessageContext(
        conversation,
        settings,
        adopt(session, ConversationTurn, keyed[0]) if keyed else None,
        _head(session, head),
        [adopt(session, GenerationEndpoint, row) for row in endpoints],
        _adopt_rows(session, rows),
    )


async def list_conversations(
    session: AsyncSession, project_id: int, rater_id: int, limit: int = 50
) -> list[tuple[Conversation, int, str | None]]:
    """The rater's conversations, latest first, with their judged turns and first message."""
    judged = (
        select(func.count())
        .where(
            ConversationTurn.conversation_id == Conversation.id,
            ConversationTurn.judged_at.is_not(None),
        )
        .scalar_subquery()
    )
    first = (
        select(ConversationTurn.user_content)
        .where(
            ConversationTurn.conversation_id == Conversation.id,
            ConversationTurn.parent_turn_id.is_(None),
        )
        .limit(1)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(Conversation, judged, first)
        .where(Conversation.project_id == project_id, Conversation.rater_id == rater_id)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    return [(row[0], int(row[1]), row[2]) for row in rows]


# A conversation as a page shows it, in one statement (it was four: turns, replies, edits,
# judgments; a vote and a message each read it): a row per reply attempt with its turn, the
# turn's judgment and its latest edit. Replies are refreshed (a reply ends in another
# transaction while the request holds the row).
_CONVERSATION_ROWS = DriverSql(
    f"""
    SELECT {columns_of(ConversationTurn, "t")}, {columns_of(ConversationReply, "r")},
           {columns_of(Judgment, "j")},
           (SELECT e.content FROM conversation_edits e WHERE e.turn_id = t.id
            ORDER BY e.id DESC LIMIT 1)
    FROM conversation_turns t
    JOIN conversation_replies r ON r.turn_id = t.id
    LEFT JOIN judgments j ON j.pair_id = t.pair_id
    WHERE t.conversation_id = :conversation_id
    ORDER BY t.depth, t.branch, t.id, r.attempt
    """
)


@dataclass(frozen=True)
class ConversationRows:
    turns: list[ConversationTurn]  # by depth, branch, id
    replies: dict[tuple[int, str], ConversationReply]  # the latest attempt per (turn, side)
    judgments: dict[int, Judgment]  # by pair id
    edits: dict[int, str]  # the latest edit per turn


_TURN_ID = column_index(ConversationTurn, "id")
_JUDGMENT_ID = column_index(Judgment, "id")


def _adopt_rows(session: AsyncSession, rows: list[tuple[Any, ...]]) -> ConversationRows:
    found = ConversationRows([], {}, {}, {})
    ends = (
        column_count(ConversationTurn),
        column_count(ConversationTurn) + column_count(ConversationReply),
        column_count(ConversationTurn) + column_count(ConversationReply) + column_count(Judgment),
    )
    turn: ConversationTurn | None = None
    for row in rows:
        turn_values = row[: ends[0]]
        if turn is None or turn.id != turn_values[_TURN_ID]:
            turn = adopt(session, ConversationTurn, turn_values)
            found.turns.append(turn)
        reply = adopt(session, ConversationReply, row[ends[0] : ends[1]])
        found.replies[(turn.id, reply.side)] = reply
        if row[ends[1] + _JUDGMENT_ID] is not None:
            judgment = adopt(session, Judgment, row[ends[1] : ends[2]])
            found.judgments[judgment.pair_id] = judgment
        if row[ends[2]] is not None:
            found.edits[turn.id] = row[ends[2]]
    return found


async def conversation_rows(session: AsyncSession, conversation_id: int) -> ConversationRows:
    """The conversation's turns, replies, judgments and latest edits, as stored now."""
    rows = await _CONVERSATION_ROWS.rows(session, {"conversation_id": conversation_id})
    return _adopt_rows(session, rows)


async def owned_conversation_and_rows(
    session: AsyncSession, conversation_id: int, rater_id: int, is_admin: bool, *, lock: bool
) -> tuple[Owned, ConversationRows] | None:
    """`owned_conversation` and `conversation_rows` in one round trip (`run_pipelined`): the
    rows are read after the lock is taken, as if sent one after the other, and not looked at
    when the conversation is not the rater's."""
    owned_statement = _LOCKED_OWNED_CONVERSATION if lock else _OWNED_CONVERSATION
    owned, rows = await run_pipelined(
        session,
        [
            (owned_statement, _owned_params(conversation_id, rater_id, is_admin)),
            (_CONVERSATION_ROWS, {"conversation_id": conversation_id}),
        ],
    )
    found = _adopt_owned(session, owned)
    return None if found is None else (found, _adopt_rows(session, rows))


# The current replies of one turn of the rater's own conversation, in a project they may
# still rate (a member, or an admin): what the event stream needs, in one query.
_TURN_REPLIES_SQL = """
    WITH asker AS ({asker})
    SELECT {replies}
    FROM asker
    JOIN conversations c ON c.id = :conversation_id AND c.rater_id = asker.id
    JOIN conversation_turns ct ON ct.id = :turn_id AND ct.conversation_id = c.id
    JOIN conversation_replies r ON r.turn_id = ct.id
    WHERE asker.is_admin OR EXISTS (
        SELECT FROM project_members m WHERE m.project_id = c.project_id AND m.user_id = asker.id)
    ORDER BY r.attempt
"""
_TURN_REPLIES = DriverSql(
    _TURN_REPLIES_SQL.format(
        asker="SELECT CAST(:rater_id AS bigint) AS id, CAST(:is_admin AS boolean) AS is_admin",
        replies=columns_of(ConversationReply, "r"),
    )
)
# Who an API token names, as the asker: sent in the round trip of the token's lookup.
_TURN_REPLIES_OF_TOKEN_HOLDER = DriverSql(
    _TURN_REPLIES_SQL.format(
        asker=f"SELECT u.id, u.role = '{AccountRole.ADMIN}' AS is_admin {LIVE_API_TOKEN}",
        replies=columns_of(ConversationReply, "r"),
    )
)


def _current_replies(session: AsyncSession, rows: list[tuple[Any, ...]]) -> list[ConversationReply]:
    replies = (adopt(session, ConversationReply, row) for row in rows)
    return list({reply.side: reply for reply in replies}.values())


async def turn_replies(
    session: AsyncSession, conversation_id: int, turn_id: int, rater_id: int, is_admin: bool
) -> list[ConversationReply]:
    """The turn's current reply on each side (none if the turn is not the rater's)."""
    params = {
        "turn_id": turn_id,
        "conversation_id": conversation_id,
        "rater_id": rater_id,
        "is_admin": is_admin,
    }
    return _current_replies(session, await _TURN_REPLIES.rows(session, params))


async def turn_replies_of_token(
    session: AsyncSession, token_hash: str, now: datetime, conversation_id: int, turn_id: int
) -> tuple[User | None, list[ConversationReply]]:
    """Who an API token names and `turn_replies` for them, in one round trip (the
    transaction's BEGIN included). (None, []) when the token names nobody."""
    params = {"turn_id": turn_id, "conversation_id": conversation_id}
    user, answers = await user_of_api_token_with(
        session, token_hash, now, [(_TURN_REPLIES_OF_TOKEN_HOLDER, params)]
    )
    return user, ([] if user is None else _current_replies(session, answers[0]))


async def add_edit(session: AsyncSession, turn_id: int, content: str) -> None:
    session.add(ConversationEdit(turn_id=turn_id, content=content))
    await session.flush()


# --- budget ------------------------------------------------------------------------------

# Counts the replies up front, in the transaction that creates them: two tabs cannot both
# take the last two replies of the day (the row is updated under its lock).
# (A new turn reserves in the statement that writes it: turn_repository.py.)
RESERVE_SQL = """
    INSERT INTO conversation_rater_days AS d (project_id, rater_id, day, replies)
    VALUES (:project_id, :rater_id, :day, :n)
    ON CONFLICT (project_id, rater_id, day) DO UPDATE SET replies = d.replies + :n
    WHERE CAST(:limit AS integer) IS NULL OR d.replies + :n <= CAST(:limit AS integer)
    RETURNING replies
"""
_RESERVE = text(RESERVE_SQL)


async def reserve_replies(
    session: AsyncSession, project_id: int, rater_id: int, day: date, n: int, limit: int | None
) -> bool:
    if limit is not None and n > limit:
        return False
    taken = await session.scalar(
        _RESERVE,
        {"project_id": project_id, "rater_id": rater_id, "day": day, "n": n, "limit": limit},
    )
    return taken is not None


async def replies_today(session: AsyncSession, project_id: int, rater_id: int, day: date) -> int:
    found = await session.scalar(
        select(ConversationRaterDay.replies).where(
            ConversationRaterDay.project_id == project_id,
            ConversationRaterDay.rater_id == rater_id,
            ConversationRaterDay.day == day,
        )
    )
    return int(found or 0)


# --- replies -----------------------------------------------------------------------------

# How a generation ended. Every outcome sets every column (unset ones to their empty value),
# so one statement serves them all; a reply already finished is left as it is.
_FINISH_REPLY = text(
    """
    UPDATE conversation_replies
    SET status = :status, content = :content, finish_reason = :finish_reason,
        served_model = :served_model, failure = :failure, problem = :problem,
        prompt_tokens = :prompt_tokens, completion_tokens = :completion_tokens,
        requests = :requests, first_token_ms = :first_token_ms, latency_ms = :latency_ms,
        finished_at = :finished_at
    WHERE id = :reply_id AND status = 'generating'
    """
)
FINISH_DEFAULTS: dict[str, Any] = {
    "content": "",
    "finish_reason": None,
    "served_model": None,
    "failure": None,
    "problem": None,
    "prompt_tokens": None,
    "completion_tokens": None,
    "requests": 1,
    "first_token_ms": None,
    "latency_ms": None,
}


async def finish_replies(
    session: AsyncSession, outcomes: Sequence[tuple[int, dict[str, Any]]]
) -> None:
    """Sets the outcomes of these replies (reply id, values), sent together (one round trip
    with psycopg's pipeline)."""
    await session.execute(
        _FINISH_REPLY,
        [{**FINISH_DEFAULTS, **values, "reply_id": reply_id} for reply_id, values in outcomes],
    )


_REQUEST_STOP = (
    update(ConversationReply)
    .where(
        ConversationReply.turn_id == bindparam("the_turn"),
        ConversationReply.status == "generating",
    )
    .values(stop_requested=True)
    .returning(ConversationReply.id)
)
_STOP_REQUESTED = select(ConversationReply.id).where(
    ConversationReply.id.in_(bindparam("reply_ids", expanding=True)),
    ConversationReply.stop_requested,
)
_REPLY_STATES = (
    select(ConversationReply)
    .where(ConversationReply.id.in_(bindparam("reply_ids", expanding=True)))
    .execution_options(populate_existing=True)
)


async def request_stop(session: AsyncSession, turn_id: int) -> list[int]:
    return list(await session.scalars(_REQUEST_STOP, {"the_turn": turn_id}))


async def stop_requested(session: AsyncSession, reply_ids: Sequence[int]) -> list[int]:
    return list(await session.scalars(_STOP_REQUESTED, {"reply_ids": list(reply_ids)}))


async def reply_states(
    session: AsyncSession, reply_ids: Sequence[int]
) -> dict[int, ConversationReply]:
    rows = await session.scalars(_REPLY_STATES, {"reply_ids": list(reply_ids)})
    return {reply.id: reply for reply in rows}


# --- the pair a vote becomes -----------------------------------------------------------

_MAKE_BATCH = text(
    f"""
    INSERT INTO batches (project_id, filename, sha256, size_bytes, source, prompts_new,
                         prompts_unchanged, responses_new, pairs_new)
    VALUES (:project_id, '{CONVERSATION_BATCH_NAME}', repeat('0', 64), 0, 'conversation',
            0, 0, 0, 0)
    ON CONFLICT (project_id) WHERE source = 'conversation' DO NOTHING
    """
)


async def make_conversation_batch(session: AsyncSession, project_id: int) -> None:
    """The project's batch for judged turns, made on the first vote (once, whoever races)."""
    await session.execute(_MAKE_BATCH, {"project_id": project_id})


# One statement: ids first (so each row can name the others, and response A's id is below
# B's as the pairs table requires), then the prompt, both responses, the pair, its single
# slot leased to the new assignment (never queued, so its place is just the pair's id), the
# assignment, and the turn and its conversation as the vote leaves them. Foreign keys are
# checked at the statement's end, when every row is there. Without the project's batch for
# judged turns (its first vote) nothing is written and no row comes back.
_RECORD_PAIR = DriverSql(
    """
    WITH batch AS (
        SELECT id FROM batches WHERE project_id = :project_id AND source = 'conversation'
    ), response_ids AS (
        SELECT nextval(pg_get_serial_sequence('responses', 'id')) AS v
        FROM generate_series(1, 2)
        WHERE EXISTS (SELECT FROM batch)
    ), ids AS (
        SELECT nextval(pg_get_serial_sequence('prompts', 'id')) AS prompt_id,
               min(v) AS a_id, max(v) AS b_id,
               nextval(pg_get_serial_sequence('pairs', 'id')) AS pair_id,
               nextval(pg_get_serial_sequence('pair_slots', 'id')) AS slot_id,
               nextval(pg_get_serial_sequence('assignments', 'id')) AS assignment_id,
               (SELECT id FROM batch) AS batch_id
        FROM response_ids
        HAVING count(*) = 2
    ), prompt AS (
        INSERT INTO prompts (id, project_id, batch_id, external_id, system, turns,
                             content_hash, metadata)
        SELECT prompt_id, :project_id, batch_id, :external_id, :system,
               CAST(:turns AS jsonb), :content_hash, CAST(:prompt_metadata AS jsonb)
        FROM ids
    ), responses AS (
        INSERT INTO responses (id, project_id, prompt_id, external_id, model, content, metadata)
        SELECT a_id, :project_id, prompt_id, :a_external_id, :a_model, :a_content,
               CAST(:a_metadata AS jsonb) FROM ids
        UNION ALL
        SELECT b_id, :project_id, prompt_id, :b_external_id, :b_model, :b_content,
               CAST(:b_metadata AS jsonb) FROM ids
    ), pair AS (
        INSERT INTO pairs (id, project_id, prompt_id, batch_id, response_a_id, response_b_id,
                           is_gold, status)
        SELECT pair_id, :project_id, prompt_id, batch_id, a_id, b_id, false, 'active' FROM ids
    ), slot AS (
        INSERT INTO pair_slots (id, project_id, pair_id, slot_no, state, assignment_id,
                                lease_expires_at, queue_pos)
        SELECT slot_id, :project_id, pair_id, 1, 'leased', assignment_id, :expires, pair_id
        FROM ids
    ), assignment AS (
        INSERT INTO assignments (id, project_id, pair_id, rater_id, slot_id, status, left_side,
                                 is_gold, shown_at, lease_expires_at)
        SELECT assignment_id, :project_id, pair_id, :rater_id, slot_id, 'leased', :left_side,
               false, :shown_at, :expires FROM ids
    ), turn AS (
        UPDATE conversation_turns
        SET pair_id = ids.pair_id, continue_side = :continue_side, judged_at = :now
        FROM ids
        WHERE conversation_turns.id = :turn_id
    ), conversation AS (
        UPDATE conversations
        SET last_activity_at = :now, status = :status,
            ended_at = CAST(:ended_at AS timestamptz)
        FROM ids
        WHERE conversations.id = :conversation_id
    )
    SELECT assignment_id, pair_id, slot_id FROM ids
    """
)


@dataclass(frozen=True)
class JudgedTurn:
    """How the vote leaves the turn and its conversation."""

    turn_id: int
    continue_side: str
    conversation_id: int
    status: str
    ended_at: datetime | None


@dataclass(frozen=True)
class RecordedPair:
    assignment_id: int
    pair_id: int
    slot_id: int


async def record_pair(
    session: AsyncSession,
    *,
    project: Project,
    rater_id: int,
    prompt: dict[str, Any],
    responses: Sequence[ParsedResponse],
    left_response: int,
    shown_at: datetime,
    judged: JudgedTurn,
    now: datetime,
) -> RecordedPair:
    """Writes the prompt, its two responses (in canonical order), the pair and its one slot,
    leased to a new assignment of the rater, ready for the judgment
    (`judgments.repository.store_judgment`), and the turn and its conversation as `judged`
    says, in one round trip (two on the project's first vote, which makes its batch).
    `left_response` is the index of the response shown left."""
    first, second = responses
    params = {
        "project_id": project.id,
        "external_id": prompt["external_id"],
        "system": prompt["system"],
        "turns": as_json(prompt["turns"]),
        "content_hash": prompt["content_hash"],
        "prompt_metadata": as_json(prompt["metadata"]),
        **{
            f"{side}_{field}": value
            for side, response in (("a", first), ("b", second))
            for field, value in (
                ("external_id", response.external_id),
                ("model", response.model),
                ("content", response.content),
                ("metadata", as_json(response.metadata)),
            )
        },
        "rater_id": rater_id,
        "left_side": "a" if left_response == 0 else "b",
        "shown_at": shown_at,
        "expires": now + timedelta(seconds=project.lease_seconds),
        "turn_id": judged.turn_id,
        "continue_side": judged.continue_side,
        "conversation_id": judged.conversation_id,
        "status": judged.status,
        "ended_at": judged.ended_at,
        "now": now,
    }
    row = await _RECORD_PAIR.first(session, params)
    if row is None:
        await make_conversation_batch(session, project.id)
        row = await _RECORD_PAIR.one(session, params)
    return RecordedPair(*(int(value) for value in row))


_COUNT_IN_BATCH = text(
    """
    UPDATE batches SET prompts_new = prompts_new + :n, responses_new = responses_new + 2 * :n,
                       pairs_new = pairs_new + :n
    WHERE project_id = :project_id AND source = 'conversation'
    """
)


async def count_in_batches(session: AsyncSession, judged: Mapping[int, int]) -> None:
    """`judged[project_id]` more prompts, twice as many responses and as many pairs in the
    counters of each project's conversation batch (one statement for all)."""
    await session.execute(
        _COUNT_IN_BATCH, [{"project_id": key, "n": n} for key, n in sorted(judged.items())]
    )


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
