"""Simulated raters over real HTTP, and a ledger of every answer they saw.

A rater asks for the next pair and submits a judgment, as the API docs tell clients to: on a
timeout, a cut connection or a 503 it retries with the same Idempotency-Key. Some requests get
a very short client timeout (the client closes the connection mid-request); some submits are
tried once that way and then given up, as an impatient user would. The ledger records what
the client knows: which submits were acknowledged (a 201 it saw), given up or refused.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from tests.reliability.population import Rater


@dataclass(frozen=True)
class Faults:
    # Share of requests sent with a very short client timeout (seconds, drawn from the range).
    short_timeout_rate: float = 0.0
    short_timeout: tuple[float, float] = (0.001, 0.05)
    # Share of submits tried once with a very short timeout and then given up.
    give_up_rate: float = 0.0
    # Lost attempts (timeouts, cut connections) before a client gives up on a request.
    max_lost_attempts: int = 8
    # A request that takes longer than this is a hang, not an injected fault.
    timeout: float = 30.0
    backoff: tuple[float, float] = (0.05, 0.3)


@dataclass(frozen=True)
class Submission:
    rater_id: int
    assignment_id: int
    key: str
    outcome: Literal["acknowledged", "given_up", "refused"]
    judgment_id: int | None = None
    # Attempts before the last: lost (timeout, cut connection) or answered 503.
    retries: int = 0


class Lost(Exception):
    """The attempt got no answer: a timeout or a cut connection."""


class Vanish(Exception):
    """The rater walks away for good."""


@dataclass
class Ledger:
    submissions: list[Submission] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    # Answers that break a guarantee: 5xx other than a proper 503, 4xx the client did not cause.
    unexpected: list[str] = field(default_factory=list)
    short_timeouts: int = 0
    # Timeouts with the normal (long) timeout: the server hung.
    hangs: int = 0
    cut_connections: int = 0
    retries: int = 0
    unavailable_seconds: list[float] = field(default_factory=list)
    slowest_answer: float = 0.0
    vanished: list[int] = field(default_factory=list)
    # Why each rater stopped: "done", "gave up", "deadline", "vanished".
    stops: Counter[str] = field(default_factory=Counter)
    # Raters who stopped before the work was done; they may still hold a lease.
    walked_away: set[int] = field(default_factory=set)

    def of(self, outcome: str) -> list[Submission]:
        return [s for s in self.submissions if s.outcome == outcome]

    @property
    def acknowledged(self) -> int:
        return len(self.of("acknowledged"))


class SimulatedRater:
    def __init__(
        self,
        client: httpx.AsyncClient,
        rater: Rater,
        project_id: int,
        faults: Faults,
        ledger: Ledger,
        *,
        seed: int,
        deadline: float,
        until_done: asyncio.Event | None = None,
        vanish_when_cut: asyncio.Event | None = None,
    ) -> None:
        self.client = client
        self.rater = rater
        self.project_id = project_id
        self.faults = faults
        self.ledger = ledger
        self.chance = random.Random(seed)
        self.deadline = deadline
        # If given: keep asking for work (expired leases come back) until it is set.
        self.until_done = until_done
        # While set: a cut connection makes this rater walk away (its worker died).
        self.vanish_when_cut = vanish_when_cut

    async def run(self) -> None:
        try:
            reason = await self.work()
        except Vanish:
            self.ledger.vanished.append(self.rater.id)
            reason = "vanished"
        self.ledger.stops[reason] += 1
        if reason != "done":
            self.ledger.walked_away.add(self.rater.id)

    async def work(self) -> str:
        while time.monotonic() < self.deadline:
            if self.until_done is not None and self.until_done.is_set():
                return "done"
            pair = await self.next_pair()
            if pair is None:
                return "gave up"
            if pair["assignment_id"] is None:
                if self.until_done is None:
                    return "done"
                await asyncio.sleep(0.5)
                continue
            await self.submit(pair["assignment_id"])
        return "deadline"

    async def next_pair(self) -> dict[str, Any] | None:
        """The leased pair (or the no-work answer); None if the client gave up."""
        path = f"/api/v1/projects/{self.project_id}/next"
        lost = 0
        while time.monotonic() < self.deadline:
            try:
                response = await self.send("GET", path, self.pick_timeout())
            except Lost:
                lost += 1
                if lost >= self.faults.max_lost_attempts:
                    return None
                await self.back_off()
                continue
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            if response.status_code != 503:
                return None
            await self.back_off()
        return None

    async def submit(self, assignment_id: int) -> None:
        key = uuid.uuid4().hex
        body = {"choice": self.chance.choice(("left", "right", "tie"))}
        impatient = self.chance.random() < self.faults.give_up_rate
        path = f"/api/v1/assignments/{assignment_id}/judgment"
        lost = unavailable = 0

        def record(outcome: Any, judgment_id: int | None = None) -> None:
            self.ledger.submissions.append(
                Submission(
                    self.rater.id, assignment_id, key, outcome, judgment_id, lost + unavailable
                )
            )

        while time.monotonic() < self.deadline:
            timeout = self.short_timeout() if impatient else self.pick_timeout()
            try:
                response = await self.send(
                    "POST", path, timeout, json=body, headers={"Idempotency-Key": key}
                )
            except Lost:
                lost += 1
                if impatient or lost >= self.faults.max_lost_attempts:
                    record("given_up")
                    return
                await self.back_off()
                continue
            except Vanish:
                record("given_up")
                raise
            if response.status_code == 201:
                answer = response.json()
                if answer["assignment_id"] != assignment_id:
                    self.ledger.unexpected.append(f"201 for another assignment: {answer}")
                record("acknowledged", answer["judgment_id"])
                return
            if response.status_code == 409:
                # Stored by an earlier submit the client gave up on, or the lease ran out.
                record("refused")
                return
            if response.status_code != 503:
                self.ledger.unexpected.append(f"submit {response.status_code}: {response.text}")
                record("refused")
                return
            unavailable += 1
            await self.back_off()
        record("given_up")

    async def send(
        self, method: str, path: str, client_timeout: float, **kwargs: Any
    ) -> httpx.Response:
        started = time.monotonic()
        try:
            response = await self.client.request(method, path, timeout=client_timeout, **kwargs)
        except httpx.TimeoutException as exc:
            if client_timeout < self.faults.timeout:
                self.ledger.short_timeouts += 1
            else:
                self.ledger.hangs += 1
            self.ledger.retries += 1
            raise Lost from exc
        except httpx.TransportError as exc:
            self.ledger.cut_connections += 1
            self.ledger.retries += 1
            if self.vanish_when_cut is not None and self.vanish_when_cut.is_set():
                raise Vanish from exc
            raise Lost from exc
        self.ledger.statuses[response.status_code] += 1
        self.ledger.slowest_answer = max(self.ledger.slowest_answer, time.monotonic() - started)
        if response.status_code == 503:
            self.ledger.unavailable_seconds.append(time.monotonic() - started)
            # The deliberate 503s: the database is unreachable, the worker sheds load, or the
            # request lost a race (deadlock or serialization failure) and was undone.
            if response.headers.get("retry-after") is None or (
                response.json().get("error")
                not in ("DatabaseUnavailable", "Overloaded", "TransientConflict")
            ):
                self.ledger.unexpected.append(f"503 without Retry-After: {response.text}")
            self.ledger.retries += 1
        elif response.status_code >= 500 or response.status_code in (400, 401, 404, 422):
            self.ledger.unexpected.append(
                f"{method} {path}: {response.status_code} {response.text}"
            )
        return response

    def pick_timeout(self) -> float:
        if self.chance.random() < self.faults.short_timeout_rate:
            return self.short_timeout()
        return self.faults.timeout

    def short_timeout(self) -> float:
        return self.chance.uniform(*self.faults.short_timeout)

    async def back_off(self) -> None:
        await asyncio.sleep(self.chance.uniform(*self.faults.backoff))


async def run_raters(
    base_url: str,
    raters: list[Rater],
    project_id: int,
    faults: Faults,
    ledger: Ledger,
    *,
    seed: int,
    seconds: float,
    until_done: asyncio.Event | None = None,
    vanish_when_cut: asyncio.Event | None = None,
) -> None:
    """Each rater on a client (connection pool) of its own, until done or `seconds` pass."""
    deadline = time.monotonic() + seconds

    async def one(index: int, rater: Rater) -> None:
        headers = {"Authorization": f"Bearer {rater.token}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
            await SimulatedRater(
                client,
                rater,
                project_id,
                faults,
                ledger,
                seed=seed * 100_003 + index,
                deadline=deadline,
                until_done=until_done,
                vanish_when_cut=vanish_when_cut,
            ).run()

    await asyncio.gather(*(one(i, rater) for i, rater in enumerate(raters)))
