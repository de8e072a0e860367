"""A burst of logins queues for the hashing threads without holding database connections:
while their passwords are being checked, at most LOGINS_AT_ONCE of them have one, so the rest
of the app still gets connections from the pool."""

import asyncio
import threading
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import event

from pickwise.core import security
from pickwise.core.db import get_engine, session_factory
from tests.factories import PASSWORD, make_user

BURST = security.LOGINS_AT_ONCE + 4
# How long the held checks wait for the burst to take connections: only a failing app takes
# more than LOGINS_AT_ONCE, so passing never depends on this.
SETTLE_SECONDS = 5


async def test_a_login_burst_holds_at_most_logins_at_once_connections(
    live_app: Any, monkeypatch: Any
) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        emails = [(await make_user(session, password=PASSWORD)).email for _ in range(BURST)]

    pool = get_engine().sync_engine
    checked_out = {"now": 0, "most": 0}

    def on_checkout(*_: object) -> None:
        checked_out["now"] += 1
        checked_out["most"] = max(checked_out["most"], checked_out["now"])

    def on_checkin(*_: object) -> None:
        checked_out["now"] -= 1

    event.listen(pool, "checkout", on_checkout)
    event.listen(pool, "checkin", on_checkin)
    burst_took_all = threading.Event()
    while_held: list[int] = []
    real = security._password_hash

    class HeldHasher:
        """Holds every check until the burst has a connection per login, or for a while."""

        def verify(self, password: str, hashed: str) -> bool:
            burst_took_all.wait(SETTLE_SECONDS)
            while_held.append(checked_out["most"])
            burst_took_all.set()  # Waited once: the others go on at once.
            return real.verify(password, hashed)

    monkeypatch.setattr(security, "_password_hash", HeldHasher())
    try:
        async with AsyncClient(transport=ASGITransport(app=live_app), base_url="http://t") as c:
            logins = [
                asyncio.ensure_future(c.post("/login", data={"email": e, "password": PASSWORD}))
                for e in emails
            ]
            while not all(login.done() for login in logins):
                if checked_out["now"] >= BURST:
                    burst_took_all.set()
                await asyncio.sleep(0.01)
            responses = await asyncio.gather(*logins)
    finally:
        event.remove(pool, "checkout", on_checkout)
        event.remove(pool, "checkin", on_checkin)
    assert [r.status_code for r in responses] == [303] * BURST
    # Read when the first held check went on: no login had finished yet.
    assert while_held[0] <= security.LOGINS_AT_ONCE
