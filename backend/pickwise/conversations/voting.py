"""A judged turn becomes an ordinary pair: a prompt whose turns are the conversation before
the rater's reply choice, the two replies as responses (model = the endpoint's name), a pair
with one slot, and the rater's judgment through the rater loop's own statement
(`judgments.repository.store_judgment`).

So every export format, the leaderboard, agreement and the rater's own summary read turn
votes like any other vote. The pair is born with its single slot leased to the author and
judged in the same transaction: no other rater's queue can ever see it, and the project's
CHECK (one rater per pair, no gold) keeps any later slot from being added.
"""

from collections import Counter
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.standing import Standing, ensure_may_rate
from pickwise.batches.parsing.records import Message, ParsedResponse, compute_content_hash
from pickwise.conversations import repository
from pickwise.conversations.schemas import VoteIn
from pickwise.conversations.views import TurnView
from pickwise.core.clock import utcnow
from pickwise.core.db import as_written, generation_unit_of_work
from pickwise.core.metrics import JUDGMENTS_STORED
from pickwise.core.together import WrittenTogether
from pickwise.judgments import repository as judgments_repository
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import Conversation, ConversationReply, Judgment, Project, User
from pickwise.vocabulary import CanonicalSide


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
    conversation: Conversation,
    turn: TurnView,
    rater: User,
    body: VoteIn,
    judged: repository.JudgedTurn,
    now: datetime | None = None,
) -> Judgment:
    """Writes the turn's pair and the rater's judgment of it, and the turn and its
    conversation as `judged` says; returns the judgment.

    Two round trips: the pair's rows with the turn's and conversation's changes, then the
    judgment (the rater loop's own statement). The pair is new and leased to this rater in
    this transaction, so the lease's checks (`judgments.service.submit`) have nothing to
    find, except the project's standing, checked before anything is written."""
    now = now or utcnow()
    ensure_may_rate(Standing(rater.is_active, project.is_archived, member_or_admin=True))
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
    finished = [reply.finished_at for reply in replies if reply.finished_at is not None]
    # Shown when the second reply was complete: the vote was possible from then on.
    shown_at = min(max(finished) if len(finished) == 2 else now, now)
    left_response = replies.index(turn.left)
    recorded = await repository.record_pair(
        session,
        project=project,
        rater_id=rater.id,
        prompt={
            "external_id": turn_external_id(turn.turn.conversation_id, turn.turn.id),
            "system": system,
            "turns": turns,
            "content_hash": content_hash,
            "metadata": metadata,
        },
        responses=stored_responses,
        left_response=left_response,
        shown_at=shown_at,
        judged=judged,
        now=now,
    )
    new = judgments.new_judgment(
        JudgmentIn(**body.model_dump(exclude={"continue_with"})),
        project_id=project.id,
        pair_id=recorded.pair_id,
        assignment_id=recorded.assignment_id,
        rater_id=rater.id,
        slot_id=recorded.slot_id,
        is_gold=False,
        left_side=CanonicalSide.A if left_response == 0 else CanonicalSide.B,
        shown_at=shown_at,
        submitted_at=now,
    )
    stored = await judgments_repository.store_judgment(session, new, now)
    # The slot and the pair were made just now, in this transaction: there is nothing to
    # conflict with. Not a refusal to answer with (and keep the pair for): a bug.
    if not stored.slot_was_ours or stored.judgment_id is None:
        raise RuntimeError(f"the judgment of turn {turn.turn.id} was not stored")
    JUDGMENTS_STORED.inc()
    as_written(
        turn.turn, pair_id=recorded.pair_id, continue_side=judged.continue_side, judged_at=now
    )
    as_written(conversation, last_activity_at=now, status=judged.status, ended_at=judged.ended_at)
    # Not added to the session: the answer reads it, nothing writes it.
    return Judgment(id=stored.judgment_id, **asdict(new))


async def _count(project_ids: list[int]) -> None:
    async with generation_unit_of_work() as session:
        await repository.count_in_batches(session, Counter(project_ids))


# Judged turns go into the counters of their project's conversation batch after their vote
# is committed, in a transaction of their own: the row is shared by all of the project's
# raters, and votes holding its lock until they commit would queue on it. (A process that
# stops in between leaves the counters short; the pairs are all there.) Votes come in
# bursts: their counts are written together. It is bookkeeping: it goes through the
# generation pool, not the requests' pool.
_judged_turns = WrittenTogether(_count)


async def count_judged_turn(project_id: int) -> None:
    """One more judged turn in the counters of the project's conversation batch, once the
    vote is committed (a background task of the vote's answer)."""
    await _judged_turns.put(project_id)
