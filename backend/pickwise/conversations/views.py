"""A conversation as read back: the path of turns the rater sees, each with its current reply on
either side, its vote and edit; and the same as the API's schemas."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.schemas import Message
from pickwise.conversations import repository
from pickwise.conversations.schemas import ConversationRead, ReplyRead, TurnRead, VoteRead
from pickwise.models import Conversation, ConversationReply, ConversationTurn, Judgment
from pickwise.vocabulary import ConversationStatus, ReplyFailure, ReplyStatus, ShownSide


def reply_state(reply: ConversationReply, now: datetime) -> tuple[ReplyStatus, ReplyFailure | None]:
    """A reply still 'generating' past its deadline was abandoned (its server stopped)."""
    if reply.status == ReplyStatus.GENERATING and reply.deadline_at < now:
        return ReplyStatus.FAILED, ReplyFailure.INTERRUPTED
    failure = ReplyFailure(reply.failure) if reply.failure else None
    return ReplyStatus(reply.status), failure


@dataclass
class TurnView:
    turn: ConversationTurn
    left: ConversationReply
    right: ConversationReply
    judgment: Judgment | None
    edit: str | None

    def reply(self, side: str) -> ConversationReply:
        return self.left if side == ShownSide.LEFT else self.right

    @property
    def judged(self) -> bool:
        return self.turn.judged_at is not None

    def both_complete(self, now: datetime) -> bool:
        return all(reply_state(r, now)[0] == ReplyStatus.COMPLETE for r in (self.left, self.right))

    @property
    def kept_text(self) -> str:
        """What the conversation goes on from: the rater's edit, or the reply they kept."""
        assert self.turn.continue_side is not None, "only judged turns are kept"
        return self.edit or self.reply(self.turn.continue_side).content

    def shown_choice(self) -> str | None:
        if self.judgment is None:
            return None
        return to_shown(self.judgment.choice, self.judgment.left_side)


@dataclass
class ConversationView:
    conversation: Conversation
    turns: list[TurnView]

    @property
    def head(self) -> TurnView | None:
        return self.turns[-1] if self.turns else None

    def turn(self, turn_id: int) -> TurnView | None:
        return next((view for view in self.turns if view.turn.id == turn_id), None)

    @property
    def active(self) -> bool:
        return self.conversation.status == ConversationStatus.ACTIVE

    @property
    def can_send(self) -> bool:
        head = self.head
        return (
            self.active
            and len(self.turns) < self.conversation.turn_cap
            and (head is None or head.judged)
        )


def to_shown(canonical: str, left_side: str) -> str:
    """'a'/'b' of the pair → 'left'/'right' as the rater saw it (tie etc. unchanged)."""
    if canonical not in ("a", "b"):
        return canonical
    return "left" if canonical == left_side else "right"


def _path(turns: list[ConversationTurn]) -> list[ConversationTurn]:
    """From the first turn down the first branch of each (the only one, for now)."""
    children: dict[int | None, ConversationTurn] = {}
    for turn in turns:
        children.setdefault(turn.parent_turn_id, turn)
    path: list[ConversationTurn] = []
    node = children.get(None)
    while node is not None:
        path.append(node)
        node = children.get(node.id)
    return path


async def load(session: AsyncSession, conversation: Conversation) -> ConversationView:
    return of_rows(conversation, await repository.conversation_rows(session, conversation.id))


def of_rows(conversation: Conversation, rows: repository.ConversationRows) -> ConversationView:
    path, replies, edits, judgments = _path(rows.turns), rows.replies, rows.edits, rows.judgments
    views = [
        TurnView(
            turn=turn,
            left=replies[(turn.id, ShownSide.LEFT)],
            right=replies[(turn.id, ShownSide.RIGHT)],
            judgment=judgments.get(turn.pair_id) if turn.pair_id is not None else None,
            edit=edits.get(turn.id),
        )
        for turn in path
    ]
    return ConversationView(conversation, views)


def reply_read(reply: ConversationReply, judged: bool, now: datetime) -> ReplyRead:
    status, failure = reply_state(reply, now)
    return ReplyRead(
        side=ShownSide(reply.side),
        status=status,
        attempt=reply.attempt,
        content=reply.content if status == ReplyStatus.COMPLETE else "",
        problem=failure.label if failure else None,
        can_retry=status == ReplyStatus.FAILED and not judged,
    )


def turn_read(view: TurnView, now: datetime) -> TurnRead:
    judgment = view.judgment
    vote = None
    if judgment is not None:
        vote = VoteRead(
            choice=to_shown(judgment.choice, judgment.left_side),
            strength=judgment.strength,
            rationale=judgment.rationale,
            criteria={
                name: to_shown(side, judgment.left_side) for name, side in judgment.criteria.items()
            },
        )
    return TurnRead(
        id=view.turn.id,
        depth=view.turn.depth,
        user_content=view.turn.user_content,
        created_at=view.turn.created_at,
        left=reply_read(view.left, view.judged, now),
        right=reply_read(view.right, view.judged, now),
        can_vote=not view.judged and view.both_complete(now),
        vote=vote,
        continue_side=view.turn.continue_side,
        edited_reply=view.edit,
    )


def conversation_read(view: ConversationView, now: datetime) -> ConversationRead:
    conversation = view.conversation
    return ConversationRead(
        id=conversation.id,
        project_id=conversation.project_id,
        status=ConversationStatus(conversation.status),
        turn_cap=conversation.turn_cap,
        system_prompt=conversation.system_prompt,
        prefix=[Message(**turn) for turn in conversation.prefix],
        turns=[turn_read(turn, now) for turn in view.turns],
        can_send=view.can_send,
        created_at=conversation.created_at,
    )
