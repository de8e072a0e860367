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
from collections.abc import AsyncIterator, Callable, Sequence

import orjson

from pickwise.conversations import repository, views
from pickwise.conversations.generation import Feed, Generator, ReplyJob
from pickwise.core.clock import utcnow
from pickwise.core.db import Units
from pickwise.models import ConversationReply
from pickwise.vocabulary import ReplyStatus

POLL_SECONDS = 0.5
# Once text flows, a stream writes at most this often (a side's first piece and its end go
# out at once), less often while the process has many replies in flight
# (`generation.widened`): docs/conversations.md, "Why text goes out about four times a
# second".
FLUSH_SECONDS = 0.25
# A comment line now and then keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
Render = Callable[[str], str]


def _merged(batch: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """The batch per side: its text joined into one piece, then its end (None) if the side
    ended. Only the order within a side matters to a reader."""
    texts: dict[str, list[str]] = {}
    ended: set[str] = set()
    for side, text in batch:
        parts = texts.setdefault(side, [])
        if text is None:
            ended.add(side)
        else:
            parts.append(text)
    merged: list[tuple[str, str | None]] = []
    for side, parts in texts.items():
        if parts:
            merged.append((side, "".join(parts)))
        if side in ended:
            merged.append((side, None))
    return merged


def event(name: str, data: object) -> bytes:
    # orjson writes compact UTF-8 (no ASCII escapes), as the page and clients read it, at a
    # fraction of json.dumps's cost: a stream sends up to 8 of these a second.
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _poll(generator: Generator, reply: ConversationReply, feed: Feed) -> None:
    """Written by another worker (or stored just now): wait until the row says it is done."""
    while True:
        async with generator.units() as session:
            state = (await repository.reply_states(session, [reply.id]))[reply.id]
        if views.reply_state(state, utcnow())[0] != ReplyStatus.GENERATING:
            feed.put(reply.side, None)
            return
        await asyncio.sleep(POLL_SECONDS)


def reply_event(reply: ConversationReply, render: Render | None) -> bytes:
    read = views.reply_read(reply, judged=False, now=utcnow())
    data = read.model_dump(mode="json")
    if render is not None:
        data["html"] = render(read.content) if read.content else ""
    return event("reply", data)


def _stored(job: ReplyJob | None, reply: ConversationReply) -> ConversationReply | None:
    """The reply as stored when it ended here (the job says what it stored, so the row need
    not be read back), or None when it must be read."""
    if job is None or job.final is None:
        return None
    for name, value in job.final.items():
        setattr(reply, name, value)
    return reply


async def turn_events(
    generator: Generator,
    units: Units,
    replies: Sequence[ConversationReply],
    render: Render | None = None,
) -> AsyncIterator[bytes]:
    """The events of a turn whose current replies (one per side) are `replies`."""
    now = utcnow()
    feed = Feed()
    jobs: dict[str, ReplyJob] = {}
    pollers = []
    finals = {}
    waiting = {}
    for reply in replies:
        if views.reply_state(reply, now)[0] != ReplyStatus.GENERATING:
            finals[reply.side] = reply
            continue
        waiting[reply.side] = reply
        job = generator.job(reply.id)
        if job is None:
            pollers.append(asyncio.create_task(_poll(generator, reply, feed)))
        else:
            jobs[reply.side] = job
            job.listen(feed, reply.side)
    try:
        for reply in finals.values():
            yield reply_event(reply, render)
        while waiting:
            if feed.items:
                # Text came during the pause (the usual case while a reply streams): no
                # keep-alive timer to arm and cancel.
                batch = await feed.take()
            else:
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        batch = await feed.take()
                except TimeoutError:
                    yield b": still writing\n\n"
                    continue
            texts = False
            # The batch's events go out in one write: each write passes every middleware's
            # `send` and the server's, for each of a hundred streams four times a second.
            written: list[bytes] = []
            for side, text in _merged(batch):
                if text is not None:
                    texts = True
                    written.append(event("text", {"side": side, "text": text}))
                    continue
                reply = waiting.pop(side)
                stored = _stored(jobs.get(side), reply)
                if stored is None:
                    async with units() as session:
                        stored = (await repository.reply_states(session, [reply.id]))[reply.id]
                finals[side] = stored
                written.append(reply_event(stored, render))
            if written:
                yield b"".join(written)
            if waiting and texts:
                # Text that comes meanwhile goes out together: a few events a second per
                # stream instead of one per token. A side's first piece and its end are
                # never held back (they cut the pause short).
                await feed.pause(generator.window(FLUSH_SECONDS))
        now = utcnow()
        can_vote = all(
            views.reply_state(r, now)[0] == ReplyStatus.COMPLETE for r in finals.values()
        )
        yield event("done", {"can_vote": can_vote and len(finals) == 2})
    finally:
        for job in jobs.values():
            job.unlisten(feed)
        for poller in pollers:
            poller.cancel()
