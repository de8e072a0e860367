"""A judged turn becomes an ordinary pair: a prompt whose turns are the conversation before
the rater's reply choice, the two replies as responses (model = the endpoint's name), a pair
with one slot, and the rater's judgment through the rater loop's own `submit`.

So every export format, the leaderboard, agreement and the rater's own summary read turn
votes like any other vote. The pair is born with its single slot leased to the author and
judged in the same transaction: no other rater's queue can ever see it, and the project's
CHECK (one rater per pair, no gold) keeps any later slot from being added.
"""

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.batches.parsing.records import Message, ParsedResponse, compute_content_hash
from pickwise.conversations import repository
from pickwise.conversations.schemas import VoteIn
from pickwise.conversations.views import TurnView
from pickwise.core.clock import utcnow
from pickwise.core.db import generation_unit_of_work
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import ConversationReply, Judgment, Project, User


def turn_external_id(conversation_id: int, turn_id: int) -> str:
    """The prompt id of a judged turn; exports split every turn of a conversation together by
    its `conversation:<id>` part (exports/splits.py)."""
    return f"conversation:{conversation_id}:turn:{turn_id}"


def _canonical(turn: TurnView) -> list[ConversationReply]:
    """Response A is the reply of the endpoint made first, whichever side it was shown on:
    the same two endpoints always pair up in the same order, as one import file would."""
    return sorted(
        (turn.left, turn.right),
        key=lambda reply: (reply.endpoint_id is None, reply.endpoint_id or 0, reply.side),
    )


def _response_metadata(reply: ConversationReply) -> dict[str, Any]:
    return {
        "endpoint": reply.endpoint_name,
        "model": reply.model,
        "served_model": reply.served_model,
        "sampling": reply.sampling,
        "latency_ms": reply.latency_ms,
        "first_token_ms": reply.first_token_ms,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "finish_reason": reply.finish_reason,
        "attempt": reply.attempt,
    }


async def record_vote(
    session: AsyncSession,
    project: Project,
    turn: TurnView,
    rater: User,
    body: VoteIn,
    now: datetime | None = None,
) -> Judgment:
    """Writes the turn's pair and the rater's judgment of it; returns the judgment."""
    now = now or utcnow()
    replies = _canonical(turn)
    context = turn.turn.context
    system = context[0]["content"] if context[0]["role"] == "system" else None
    turns = [dict(message) for message in context if message["role"] != "system"]
    names = [reply.endpoint_name for reply in replies]
    if names[0] == names[1]:  # an endpoint renamed between the two: ids must differ
        names[1] += "#2"
    metadata = {
        "conversation_id": turn.turn.conversation_id,
        "turn_id": turn.turn.id,
        "depth": turn.turn.depth,
    }
    stored_responses = [
        ParsedResponse(name, reply.endpoint_name, reply.content, _response_metadata(reply))
        for name, reply in zip(names, replies, strict=True)
    ]
    content_hash = compute_content_hash(
        system=system,
        turns=tuple(Message(m["role"], m["content"]) for m in turns),
        metadata=metadata,
        responses=tuple(stored_responses),
        gold_winner=None,
        explicit_pairs=((names[0], names[1]),),
    )
    batch_id = await repository.conversation_batch(session, project.id)
    finished = [reply.finished_at for reply in replies if reply.finished_at is not None]
    # Shown when the second reply was complete: the vote was possible from then on.
    shown_at = max(finished) if len(finished) == 2 else now
    async with session.begin_nested():
        assignment_id = await repository.record_pair(
            session,
            project=project,
            batch_id=batch_id,
            rater_id=rater.id,
            prompt={
                "external_id": turn_external_id(turn.turn.conversation_id, turn.turn.id),
                "system": system,
                "turns": turns,
                "content_hash": content_hash,
                "metadata": metadata,
            },
            responses=stored_responses,
            left_response=replies.index(turn.left),
            shown_at=min(shown_at, now),
            now=now,
        )
        judgment = JudgmentIn(**body.model_dump(exclude={"continue_with"}))
        stored = await judgments.submit(session, assignment_id, rater, judgment, now)
    return await repository.judgment(session, stored.judgment_id)


async def count_judged_turn(project_id: int) -> None:
    """One more judged turn in the counters of the project's conversation batch, in a
    transaction of its own once the vote is committed: the row is shared by all of the
    project's raters, and votes holding its lock until they commit would queue on it. (A
    process that stops in between leaves the counter one short; the pairs are all there.)
    It is bookkeeping: it goes through the generation pool, not the requests' pool."""
    async with generation_unit_of_work() as session:
        await repository.count_in_batch(session, project_id)
