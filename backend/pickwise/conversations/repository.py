"""Queries of live conversations: settings, turns and replies, budgets, and the pair a vote
becomes."""

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import (
    Assignment,
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
    PairSlot,
    Project,
    Prompt,
    Response,
)

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


async def conversation_endpoints(
    session: AsyncSession, project_id: int
) -> list[GenerationEndpoint]:
    """The project's conversation endpoints that are switched on."""
    rows = await session.scalars(
        select(GenerationEndpoint)
        .join(ConversationEndpoint, ConversationEndpoint.endpoint_id == GenerationEndpoint.id)
        .where(ConversationEndpoint.project_id == project_id, GenerationEndpoint.is_active)
        .order_by(GenerationEndpoint.id)
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


async def get_conversation(
    session: AsyncSession, conversation_id: int, *, lock: bool = False
) -> Conversation | None:
    statement = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(statement)


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


async def turns(session: AsyncSession, conversation_id: int) -> list[ConversationTurn]:
    rows = await session.scalars(
        select(ConversationTurn)
        .where(ConversationTurn.conversation_id == conversation_id)
        .order_by(ConversationTurn.depth, ConversationTurn.branch, ConversationTurn.id)
    )
    return list(rows)


async def turn_by_client_key(
    session: AsyncSession, conversation_id: int, key: str
) -> ConversationTurn | None:
    return await session.scalar(
        select(ConversationTurn).where(
            ConversationTurn.conversation_id == conversation_id,
            ConversationTurn.client_key == key,
        )
    )


async def current_replies(
    session: AsyncSession, turn_ids: Sequence[int]
) -> dict[tuple[int, str], ConversationReply]:
    """The latest attempt of each side of these turns (a turn has a handful at most)."""
    if not turn_ids:
        return {}
    rows = await session.scalars(
        select(ConversationReply)
        .where(ConversationReply.turn_id.in_(turn_ids))
        .order_by(ConversationReply.attempt)
        .execution_options(populate_existing=True)
    )
    return {(reply.turn_id, reply.side): reply for reply in rows}


async def latest_edits(session: AsyncSession, turn_ids: Sequence[int]) -> dict[int, str]:
    if not turn_ids:
        return {}
    rows = await session.execute(
        select(ConversationEdit.turn_id, ConversationEdit.content)
        .where(ConversationEdit.turn_id.in_(turn_ids))
        .order_by(ConversationEdit.id)
    )
    return {turn_id: content for turn_id, content in rows}


async def judgments_of(session: AsyncSession, pair_ids: Sequence[int]) -> dict[int, Judgment]:
    if not pair_ids:
        return {}
    rows = await session.scalars(select(Judgment).where(Judgment.pair_id.in_(pair_ids)))
    return {judgment.pair_id: judgment for judgment in rows}


async def add_edit(session: AsyncSession, turn_id: int, content: str) -> None:
    session.add(ConversationEdit(turn_id=turn_id, content=content))
    await session.flush()


# --- budget ------------------------------------------------------------------------------

# Counts the replies up front, in the transaction that creates them: two tabs cannot both
# take the last two replies of the day (the row is updated under its lock).
_RESERVE = text(
    """
    INSERT INTO conversation_rater_days AS d (project_id, rater_id, day, replies)
    VALUES (:project_id, :rater_id, :day, :n)
    ON CONFLICT (project_id, rater_id, day) DO UPDATE SET replies = d.replies + :n
    WHERE CAST(:limit AS integer) IS NULL OR d.replies + :n <= CAST(:limit AS integer)
    RETURNING replies
    """
)


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


async def finish_reply(session: AsyncSession, reply_id: int, values: dict[str, Any]) -> None:
    """Stores how a generation ended; a reply already finished is left as it is."""
    await session.execute(
        update(ConversationReply)
        .where(ConversationReply.id == reply_id, ConversationReply.status == "generating")
        .values(**values)
    )


async def request_stop(session: AsyncSession, turn_id: int) -> list[int]:
    rows = await session.scalars(
        update(ConversationReply)
        .where(ConversationReply.turn_id == turn_id, ConversationReply.status == "generating")
        .values(stop_requested=True)
        .returning(ConversationReply.id)
    )
    return list(rows)


async def stop_requested(session: AsyncSession, reply_ids: Sequence[int]) -> list[int]:
    rows = await session.scalars(
        select(ConversationReply.id).where(
            ConversationReply.id.in_(reply_ids), ConversationReply.stop_requested
        )
    )
    return list(rows)


async def reply_states(
    session: AsyncSession, reply_ids: Sequence[int]
) -> dict[int, ConversationReply]:
    rows = await session.scalars(
        select(ConversationReply)
        .where(ConversationReply.id.in_(reply_ids))
        .execution_options(populate_existing=True)
    )
    return {reply.id: reply for reply in rows}


# --- the pair a vote becomes -----------------------------------------------------------


async def conversation_batch(session: AsyncSession, project_id: int) -> int:
    """The project's batch for judged turns, made on the first vote (once, whoever races)."""
    await session.execute(
        insert(Batch)
        .values(
            project_id=project_id,
            filename=CONVERSATION_BATCH_NAME,
            sha256="0" * 64,
            size_bytes=0,
            source="conversation",
        )
        .on_conflict_do_nothing(
            index_elements=[Batch.project_id], index_where=text("source = 'conversation'")
        )
    )
    batch_id = await session.scalar(
        select(Batch.id).where(Batch.project_id == project_id, Batch.source == "conversation")
    )
    assert batch_id is not None
    return batch_id


async def record_pair(
    session: AsyncSession,
    *,
    project: Project,
    batch_id: int,
    rater_id: int,
    prompt: dict[str, Any],
    responses: Sequence[dict[str, Any]],
    left_response: int,
    shown_at: datetime,
    now: datetime,
) -> int:
    """Writes the prompt, its two responses (canonical order: as given), the pair, its one
    slot leased to a new assignment of the rater; returns the assignment's id, ready for
    `judgments.service.submit`. `left_response` is the index of the response shown left."""
    stored_prompt = Prompt(project_id=project.id, batch_id=batch_id, **prompt)
    session.add(stored_prompt)
    await session.flush()
    stored = [
        Response(project_id=project.id, prompt_id=stored_prompt.id, **response)
        for response in responses
    ]
    for response in stored:
        session.add(response)
        await session.flush()  # one at a time: ids in canonical order
    pair = Pair(
        project_id=project.id,
        prompt_id=stored_prompt.id,
        batch_id=batch_id,
        response_a_id=stored[0].id,
        response_b_id=stored[1].id,
    )
    session.add(pair)
    await session.flush()
    expires = now + timedelta(seconds=project.lease_seconds)
    slot = PairSlot(
        project_id=project.id,
        pair_id=pair.id,
        slot_no=1,
        state="leased",
        lease_expires_at=expires,
    )
    session.add(slot)
    await session.flush()
    assignment = Assignment(
        project_id=project.id,
        pair_id=pair.id,
        rater_id=rater_id,
        slot_id=slot.id,
        status="leased",
        left_side="a" if left_response == 0 else "b",
        is_gold=False,
        shown_at=shown_at,
        lease_expires_at=expires,
    )
    session.add(assignment)
    await session.flush()
    slot.assignment_id = assignment.id
    await session.flush()
    return assignment.id


async def count_in_batch(session: AsyncSession, batch_id: int) -> None:
    """One more prompt, two responses and a pair in the conversation batch's counters (last in
    the vote's transaction: the row is shared by the project's raters)."""
    await session.execute(
        update(Batch)
        .where(Batch.id == batch_id)
        .values(
            prompts_new=Batch.prompts_new + 1,
            responses_new=Batch.responses_new + 2,
            pairs_new=Batch.pairs_new + 1,
        )
    )
