"""A turn's replies as server-sent events, for the page's script and for API clients.

    event: text    data: {"side": "left", "text": "..."}        a piece of a reply
    event: reply   data: {"side": "left", "status": "complete", "content": "...", ...}
    event: done    data: {"can_vote": true}

A reply written in this process streams piece by piece (from the first piece, whenever the
stream is opened: a reload picks up where the page was); one written by another worker is
read from the database until it is done and arrives whole. Replies already finished arrive
at once. The stream holds no database connection while it waits.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from pickwise.conversations import repository, views
from pickwise.conversations.generation import Generator
from pickwise.core.clock import utcnow
from pickwise.core.db import Units
from pickwise.models import ConversationReply
from pickwise.vocabulary import ReplyStatus

POLL_SECONDS = 0.5
FLUSH_SECONDS = 0.05
# A comment line now and then keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
Render = Callable[[str], str]


@dataclass(frozen=True)
class _Piece:
    side: str
    text: str | None  # None: this side is done
    final: ConversationReply | None = None  # at the end: the reply as stored, when known


def _texts(batch: list[_Piece]) -> list[_Piece]:
    """The batch per side: its text joined into one piece, then its end if the side ended.
    Only the order within a side matters to a reader."""
    texts: dict[str, list[str]] = {}
    ends: dict[str, _Piece] = {}
    for piece in batch:
        texts.setdefault(piece.side, [])
        if piece.text is None:
            ends[piece.side] = piece
        else:
            texts[piece.side].append(piece.text)
    merged: list[_Piece] = []
    for side, parts in texts.items():
        if parts:
            merged.append(_Piece(side, "".join(parts)))
        if side in ends:
            merged.append(ends[side])
    return merged


def event(name: str, data: object) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode()


async def _follow(
    generator: Generator, reply: ConversationReply, out: asyncio.Queue[_Piece]
) -> None:
    job = generator.job(reply.id)
    if job is None:
        await _poll(generator, reply.id)
        out.put_nowait(_Piece(reply.side, None))
        return
    text, listener = job.listen()
    try:
        if text:
            out.put_nowait(_Piece(reply.side, text))
        while (piece := await listener.get()) is not None:
            out.put_nowait(_Piece(reply.side, piece))
    finally:
        job.unlisten(listener)
    # Written here: the job says what it stored, so the row need not be read back.
    if job.final is not None:
        for name, value in job.final.items():
            setattr(reply, name, value)
    out.put_nowait(_Piece(reply.side, None, reply if job.final is not None else None))


async def _poll(generator: Generator, reply_id: int) -> None:
    """Written by another worker (or stored just now): wait until the row says it is done."""
    while True:
        async with generator.units() as session:
            state = (await repository.reply_states(session, [reply_id]))[reply_id]
        if views.reply_state(state, utcnow())[0] != ReplyStatus.GENERATING:
            return
        await asyncio.sleep(POLL_SECONDS)


def reply_event(reply: ConversationReply, render: Render | None) -> bytes:
    read = views.reply_read(reply, judged=False, now=utcnow())
    data = read.model_dump(mode="json")
    if render is not None:
        data["html"] = render(read.content) if read.content else ""
    return event("reply", data)


async def turn_events(
    generator: Generator,
    units: Units,
    replies: Sequence[ConversationReply],
    render: Render | None = None,
) -> AsyncIterator[bytes]:
    """The events of a turn whose current replies (one per side) are `replies`."""
    now = utcnow()
    pieces: asyncio.Queue[_Piece] = asyncio.Queue()
    followers = []
    finals = {}
    for reply in replies:
        if views.reply_state(reply, now)[0] == ReplyStatus.GENERATING:
            followers.append(asyncio.create_task(_follow(generator, reply, pieces)))
        else:
            finals[reply.side] = reply
    try:
        for reply in finals.values():
            yield reply_event(reply, render)
        waiting = {reply.side: reply.id for reply in replies if reply.side not in finals}
        while waiting:
            try:
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    batch = [await pieces.get()]
            except TimeoutError:
                yield b": still writing\n\n"
                continue
            # Pieces that came meanwhile go out together: fewer, larger events under load.
            while not pieces.empty():
                batch.append(pieces.get_nowait())
            for piece in _texts(batch):
                if piece.text is not None:
                    yield event("text", {"side": piece.side, "text": piece.text})
                    continue
                reply_id = waiting.pop(piece.side)
                stored = piece.final
                if stored is None:
                    async with units() as session:
                        stored = (await repository.reply_states(session, [reply_id]))[reply_id]
                finals[piece.side] = stored
                yield reply_event(stored, render)
            if waiting and any(piece.text is not None for piece in batch):
                # Text that comes meanwhile goes out together: a few events a second per
                # stream instead of one per token (the first piece is never held back).
                await asyncio.sleep(FLUSH_SECONDS)
        now = utcnow()
        can_vote = all(
            views.reply_state(r, now)[0] == ReplyStatus.COMPLETE for r in finals.values()
        )
        yield event("done", {"can_vote": can_vote and len(finals) == 2})
    finally:
        for follower in followers:
            follower.cancel()
