"""Wake-ups for the background loops: one connection per app process LISTENs, and a loop
waits for its channel's notification (or a long fallback pause) instead of polling.

The database sends the notifications: triggers (migration `2026-12-08-1510_background_wakeups`)
NOTIFY when work for a loop is committed, whichever code wrote it. A notification reaches
every listening process; the loops' claims (SKIP LOCKED) keep the work each does its own.

While the listening connection is down (Postgres restarting, a pooler that cannot LISTEN),
notifications are lost: the loops then poll as they used to, the listener reconnects with a
growing pause, and once it listens again it wakes every loop to look for what was missed.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

import psycopg
from psycopg import pq, sql

logger = logging.getLogger(__name__)

WEBHOOKS_CHANNEL = "pickwise_webhooks"
"""Deliveries queued or sent again, batches imported, webhooks added or changed."""
SEARCH_CATCH_UP_CHANNEL = "pickwise_search_catch_up"
"""Batches whose answers an import left without search words."""

# Seen in pg_stat_activity; the lifespan test finds the connection by it.
APPLICATION_NAME = "pickwise-wakeups"
# Reconnecting: first after this many seconds, doubling up to the most.
RECONNECT_FIRST = 1.0
RECONNECT_MOST = 30.0


class Wake:
    """One loop's side of a channel: set when a notification came (or the listener has just
    connected and anything may have been missed)."""

    def __init__(self, listening: Callable[[], bool]) -> None:
        self.event = asyncio.Event()
        self._listening = listening

    @property
    def listening(self) -> bool:
        """Whether notifications arrive now; if not, the loop must poll."""
        return self._listening()


class Listener:
    def __init__(
        self,
        conninfo: str,
        channels: Iterable[str],
        *,
        connect_timeout: int = 10,
        reconnect_first: float = RECONNECT_FIRST,
        reconnect_most: float = RECONNECT_MOST,
    ) -> None:
        self.conninfo = conninfo
        self.connect_timeout = connect_timeout
        self.listening = False
        self._listened = False
        self.reconnect_first = reconnect_first
        self.reconnect_most = reconnect_most
        self._wakes = {channel: Wake(lambda: self.listening) for channel in channels}

    def wake(self, channel: str) -> Wake:
        return self._wakes[channel]

    async def run(self, stopping: asyncio.Event) -> None:
        pause = self.reconnect_first
        while not stopping.is_set():
            self._listened = False
            try:
                await self._listen()
            except (psycopg.Error, OSError) as exc:
                logger.warning(
                    "background wake-ups not listening, polling meanwhile: %s",
                    type(exc).__name__,
                )
            if self._listened:  # A connection that worked for a while: start the pauses over.
                pause = self.reconnect_first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), pause)
            pause = min(pause * 2, self.reconnect_most)

    async def _listen(self) -> None:
        connection = await psycopg.AsyncConnection.connect(
            self.conninfo,
            autocommit=True,
            application_name=APPLICATION_NAME,
            connect_timeout=self.connect_timeout,
            # A peer gone without a word (a network cut) is noticed within about a minute.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        try:
            await listen_on(connection, self._wakes)
            self.listening = self._listened = True
            # Whatever was committed while nobody listened: every loop looks once.
            for wake in self._wakes.values():
                wake.event.set()
            await self._dispatch(connection.pgconn)
        finally:
            self.listening = False
            # Shielded: a cancelled lifespan still closes the connection instead of leaking it.
            await asyncio.shield(connection.close())

    async def _dispatch(self, pgconn: pq.abc.PGconn) -> None:
        """Sets the wake of each channel notified, until the connection fails. Waits on the
        socket itself: psycopg's `notifies()` wakes every 0.1 s to look for an interrupt, ten
        times a second in every app process for nothing."""
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        # Kept: once the connection is lost, libpq closes the socket and forgets its number.
        socket = pgconn.socket
        loop.add_reader(socket, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                pgconn.consume_input()  # Raises OperationalError once the connection is gone.
                while (notification := pgconn.notifies()) is not None:
                    notified = self._wakes.get(notification.relname.decode())
                    if notified is not None:
                        notified.event.set()
        finally:
            loop.remove_reader(socket)


async def listen_on(connection: psycopg.AsyncConnection[object], channels: Iterable[str]) -> None:
    for channel in channels:
        await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
