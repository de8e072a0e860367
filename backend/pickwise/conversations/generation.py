"""Replies being written in this process. Each runs as its own task, outside any transaction;
its outcome is stored in a short transaction of its own when it ends, whether or not anyone
is still watching (a reload or a closed tab does not lose it).

Pages and API clients follow a reply through `ReplyJob.listen` (text as it comes) when it is
written in this process, or by reading its row until it is done when another worker writes
it. "Stop" reaches a reply here at once, and one written by another worker within about a
second: every process with replies in flight checks their stop flags once a second (one
query for all of them).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Iterable
from typing import Any

import aiohttp

from pickwise.conversations import repository
from pickwise.conversations.service import ReplyTask
from pickwise.core.clock import utcnow
from pickwise.core.config import get_settings
from pickwise.core.db import Units, generation_unit_of_work
from pickwise.core.errors import PickwiseError
from pickwise.core.outbound import outbound_session, private_allowed
from pickwise.core.together import WrittenTogether
from pickwise.generation.stream import StreamedReply, StreamFailed, StreamLimits, stream_reply
from pickwise.vocabulary import ReplyFailure, ReplyStatus

logger = logging.getLogger(__name__)

STOP_CHECK_SECONDS = 1.0
# A reply's connection is read at most this often once its text flows (generation/stream.py):
# with hundreds of replies streaming, a read per token was most of a worker's work. The
# event streams send text about as often (streaming.FLUSH_SECONDS); why 0.25 s:
# docs/conversations.md, "Why text goes out about four times a second".
READ_PACE_SECONDS = 0.25
# Past this many replies in flight in the process, the window widens in proportion (reads
# and writes per second stay at what this many cost), up to MAX_WINDOW_SECONDS: the worker's
# wake-ups for streaming stop growing with the conversations it carries, and the raters of
# other projects on it wait behind fewer of them. Why: docs/conversations.md, "Why text goes
# out about four times a second".
WINDOW_REPLIES = 100
MAX_WINDOW_SECONDS = 1.0
# Turns of the event loop a request that asks for replies lets their requests go out
# before it builds its answer (`Generator.launch`).
REQUEST_TURNS = 2
STORE_ATTEMPTS = 5
STORE_RETRY_SECONDS = 0.5


class Busy(PickwiseError):
    status_code = 503

    def __init__(self) -> None:
        super().__init__("The server is writing too many replies right now; try again shortly.")


def widened(seconds: float, in_flight: int) -> float:
    """A window of `seconds` at `in_flight` replies: as is up to WINDOW_REPLIES, then wider
    in proportion, up to MAX_WINDOW_SECONDS (never below `seconds`)."""
    if in_flight <= WINDOW_REPLIES:
        return seconds
    return max(seconds, min(seconds * in_flight / WINDOW_REPLIES, MAX_WINDOW_SECONDS))


def _wake(pause: "asyncio.Future[None]") -> None:
    if not pause.done():
        pause.set_result(None)


class Feed:
    """What one listener (an event stream) gets from the replies it follows: pieces of text by
    side as they come and each side's end (text None), gathered until it takes them.

    A piece costs a list append; the listener wakes once per batch, not once per piece (a
    queue and a task per reply cost a wake-up per token, for every token of every reply).
    Between batches the listener may `pause`; a side's first piece or its end cuts the pause
    short, so coalescing the middle of a reply never holds back what a rater waits for (the
    other side's first words, the vote)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str | None]] = []
        self._ready = asyncio.Event()
        self._begun: set[str] = set()
        self._pause: asyncio.Future[None] | None = None

    def put(self, side: str, text: str | None) -> None:
        self.items.append((side, text))
        self._ready.set()
        if text is None or side not in self._begun:
            self._begun.add(side)
            if self._pause is not None:
                _wake(self._pause)

    async def take(self) -> list[tuple[str, str | None]]:
        """What came since the last call, waiting until something has."""
        if not self.items:
            await self._ready.wait()
        self._ready.clear()
        items, self.items = self.items, []
        return items

    async def pause(self, seconds: float) -> None:
        """Waits `seconds`, or until a side's first piece or end comes, whichever is first."""
        loop = asyncio.get_running_loop()
        self._pause = loop.create_future()
        timer = loop.call_later(seconds, _wake, self._pause)
        try:
            await self._pause
        finally:
            timer.cancel()
            self._pause = None


class ReplyJob:
    """One reply being written: its text so far, and who is listening."""

    def __init__(self, task: ReplyTask) -> None:
        self.task = task
        self.started = time.monotonic()
        self.parts: list[str] = []
        self.finished = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None
        self.reading: asyncio.Task[dict[str, Any]] | None = None
        # The values stored when it ended, for listeners (None if they could not be stored).
        self.final: dict[str, Any] | None = None
        self._listeners: dict[Feed, str] = {}

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add_text(self, piece: str) -> None:
        self.parts.append(piece)
        for feed, side in self._listeners.items():
            feed.put(side, piece)

    def listen(self, feed: Feed, side: str) -> None:
        """Sends `feed` the text so far as `side`, then what follows, then None at the end."""
        text = self.text
        if text:
            feed.put(side, text)
        if self.finished.is_set():
            feed.put(side, None)
        else:
            self._listeners[feed] = side

    def unlisten(self, feed: Feed) -> None:
        self._listeners.pop(feed, None)

    def close(self) -> None:
        self.finished.set()
        for feed, side in self._listeners.items():
            feed.put(side, None)
        self._listeners.clear()

    def stop(self) -> None:
        if self.reading is not None:
            self.reading.cancel()


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _complete(reply: StreamedReply) -> dict[str, Any]:
    return {
        "status": ReplyStatus.COMPLETE,
        "content": reply.content,
        "finish_reason": reply.finish_reason,
        "served_model": reply.served_model,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "requests": reply.requests,
        "first_token_ms": _ms(reply.first_token_seconds),
        "latency_ms": _ms(reply.seconds),
    }


def _failed(failure: ReplyFailure, problem: str, requests: int) -> dict[str, Any]:
    return {
        "status": ReplyStatus.FAILED,
        "failure": failure,
        "problem": problem,
        "requests": requests,
    }


class Generator:
    """The replies this process is writing."""

    def __init__(self, units: Units = generation_unit_of_work) -> None:
        self.units = units
        self.jobs: dict[int, ReplyJob] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._sessions: dict[tuple[int, bool], aiohttp.ClientSession] = {}
        # Outcomes are stored together (the replies of a turn, and of conversations moving
        # in step, end together).
        self._outcomes = WrittenTogether(self._write_outcomes)

    def check_room(self, replies: int) -> None:
        """Refuses (503) work that would pass the process's limit of replies in flight."""
        if len(self.jobs) + replies > get_settings().conversation_replies_in_flight:
            raise Busy()

    def window(self, seconds: float) -> float:
        """`seconds` widened for the replies this process has in flight now."""
        return widened(seconds, len(self.jobs))

    def job(self, reply_id: int) -> ReplyJob | None:
        return self.jobs.get(reply_id)

    def start(self, tasks: Iterable[ReplyTask]) -> list[ReplyJob]:
        """Starts the replies (call after their rows are committed)."""
        return self._run(self._send(tasks))

    async def launch(
        self, tasks: Iterable[ReplyTask], committing: Awaitable[None] | None = None
    ) -> list[ReplyJob]:
        """`start`, returning once the replies' requests are on their way: what the caller
        does next (build and send its answer) no longer comes before them, so the model's
        first token comes that much sooner.

        With `committing` (the COMMIT of the transaction that wrote the replies' rows), the
        requests go out first and travel while it is written: nothing a model sends is kept,
        shown or stored before the commit is through, and a commit that fails cancels the
        requests (it raises here) with nothing of theirs stored. The rows decided everything
        a request depends on (the budget, a repeated request) before the COMMIT was sent.

        The reading tasks run on the loop's next turns: on the first, each goes up to its
        wait for the answer (on a pooled connection, with the request written; aiohttp
        writes the body in a task of its own, the turn after). A request that has to open
        a connection goes on connecting meanwhile: nobody waits for that here."""
        sent = self._send(tasks)
        if committing is not None:
            try:
                await committing
            except BaseException:
                self._abandon(sent)
                raise
        started = self._run(sent)
        if started:
            for _ in range(REQUEST_TURNS):
                await asyncio.sleep(0)
        return started

    def _send(self, tasks: Iterable[ReplyTask]) -> list[ReplyJob]:
        """Jobs for the replies not already in hand, each reading its model in a task of its
        own (so "stop" cancels the reading only, never the storing of what came). Made
        before the job's runner, the request goes out on the loop's next turn."""
        sent = []
        for task in tasks:
            if task.reply_id in self.jobs:
                continue
            job = ReplyJob(task)
            self.jobs[task.reply_id] = job
            job.reading = asyncio.create_task(self._read(task, job), name=f"read-{task.reply_id}")
            sent.append(job)
        return sent

    def _run(self, jobs: list[ReplyJob]) -> list[ReplyJob]:
        """Each job's runner, which stores its outcome when the reading ends."""
        for job in jobs:
            job.runner = asyncio.create_task(self._finish(job), name=f"reply-{job.task.reply_id}")
        if self.jobs and (self._watcher is None or self._watcher.done()):
            self._watcher = asyncio.create_task(self._watch_stops(), name="reply-stop-watch")
        return jobs

    def _abandon(self, jobs: list[ReplyJob]) -> None:
        """Jobs whose rows were never committed: their requests cancelled, nothing stored."""
        for job in jobs:
            job.stop()
            self.jobs.pop(job.task.reply_id, None)
            job.close()

    def stop(self, reply_ids: Iterable[int]) -> None:
        for reply_id in reply_ids:
            job = self.jobs.get(reply_id)
            if job is not None:
                job.stop()

    async def wait_for_turn(self, turn_id: int) -> None:
        """Until the turn's replies written in this process are stored."""
        waits = [job.finished.wait() for job in self.jobs.values() if job.task.turn_id == turn_id]
        if waits:
            await asyncio.gather(*waits)

    def _http(self) -> aiohttp.ClientSession:
        # One session (and its connection pool) per event loop and outbound rule: connections
        # to an endpoint are reused, and a test that changes the rule gets a new session.
        key = (id(asyncio.get_running_loop()), private_allowed())
        session = self._sessions.get(key)
        if session is None or session.closed:
            limit = get_settings().conversation_replies_in_flight
            session = outbound_session(connections=limit)
            self._sessions[key] = session
        return session

    async def close(self) -> None:
        """Closes this event loop's sessions (when the app stops)."""
        loop = id(asyncio.get_running_loop())
        for key in [key for key in self._sessions if key[0] == loop]:
            await self._sessions.pop(key).close()

    async def _finish(self, job: ReplyJob) -> None:
        reading = job.reading
        assert reading is not None, "`start` makes the reading task first"
        try:
            await asyncio.wait([reading])
        except asyncio.CancelledError:
            reading.cancel()  # The process is stopping: the deadline marks it interrupted.
            raise
        values = self._stopped(job) if reading.cancelled() else reading.result()
        values["finished_at"] = utcnow()
        try:
            if await self._store(job.task.reply_id, values):
                job.final = {**repository.FINISH_DEFAULTS, **values}
        finally:
            del self.jobs[job.task.reply_id]
            job.close()

    async def _store(self, reply_id: int, values: dict[str, Any]) -> bool:
        """Stores the outcome, trying again after a failure: when a burst of requests holds
        every pooled connection the wait for one times out, and the reply (in memory only)
        would be lost. Storing twice is harmless: only a reply still generating is set.
        Tried again, an outcome goes alone (another's fault cannot keep failing it)."""
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                if attempt == 1:
                    await self._outcomes.put((reply_id, values))
                else:
                    async with self.units() as session:
                        await repository.finish_replies(session, [(reply_id, values)])
                return True
            except Exception:
                if attempt == STORE_ATTEMPTS:
                    logger.exception("the outcome of reply %s could not be stored", reply_id)
                    return False
                logger.warning(
                    "storing the outcome of reply %s failed (attempt %d); trying again",
                    reply_id,
                    attempt,
                    exc_info=True,
                )
                await asyncio.sleep(STORE_RETRY_SECONDS * attempt)
        raise AssertionError("the loop returns")

    async def _write_outcomes(self, outcomes: list[tuple[int, dict[str, Any]]]) -> None:
        async with self.units() as session:
            await repository.finish_replies(session, outcomes)

    async def _read(self, task: ReplyTask, job: ReplyJob) -> dict[str, Any]:
        try:
            remaining = max((task.deadline - utcnow()).total_seconds(), 0.0)
            async with asyncio.timeout(remaining):
                reply = await stream_reply(
                    self._http(),
                    task.endpoint,
                    task.messages,
                    job.add_text,
                    # Set as the reply starts: the replies in flight change slowly
                    # against a reply's length.
                    limits=StreamLimits(pace_seconds=self.window(READ_PACE_SECONDS)),
                )
            return _complete(reply)
        except TimeoutError:
            seconds = get_settings().conversation_reply_seconds
            return _failed(ReplyFailure.TIMEOUT, f"not finished within {seconds:g} s", 1)
        except StreamFailed as failed:
            return _failed(failed.failure, failed.detail, failed.requests)
        except Exception as exc:  # a bug must not leave the reply spinning forever
            logger.exception("reply %s failed", task.reply_id)
            return _failed(ReplyFailure.ERROR, f"{type(exc).__name__}: {exc}", 1)

    @staticmethod
    def _stopped(job: ReplyJob) -> dict[str, Any]:
        """Stopped by the rater: what came so far is the reply (if anything came)."""
        text = job.text
        if not text.strip():
            return _failed(ReplyFailure.STOPPED, "stopped by the rater before any text", 1)
        return {
            "status": ReplyStatus.COMPLETE,
            "content": text,
            "finish_reason": "stopped",
            "requests": 1,
            "latency_ms": _ms(time.monotonic() - job.started),
        }

    async def _watch_stops(self) -> None:
        while self.jobs:
            await asyncio.sleep(STOP_CHECK_SECONDS)
            reply_ids = list(self.jobs)
            if not reply_ids:
                break
            try:
                async with self.units() as session:
                    stopped = await repository.stop_requested(session, reply_ids)
            except Exception as exc:
                logger.warning("could not check stop requests: %s", type(exc).__name__)
                continue
            self.stop(stopped)


generator = Generator()
"""This process's generator."""
