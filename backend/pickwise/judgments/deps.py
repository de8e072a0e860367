"""Who answers a leased pair (a choice, a skip or a flag), found with the lease's locks when
that saves a round trip, in the answer's first unit of work."""

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from pickwise.auth.deps import INVALID_API_TOKEN, bearer_token, rater_in_open_unit
from pickwise.core.db import OpenUnit, Units, open_unit
from pickwise.core.deps import UnitsDep
from pickwise.core.errors import NotAuthenticated
from pickwise.judgments import idempotency
from pickwise.judgments.schemas import FlagIn, JudgmentIn, SkipIn
from pickwise.judgments.service import LeaseLocks, api_rater_and_locks, api_rater_claim_and_locks
from pickwise.models import User

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Answerer:
    # The answer's first unit of work (the route ends it with `done`), and the units it goes
    # on in afterwards (the next lease).
    unit: OpenUnit
    units: Units
    rater: User
    # The answer's locks, taken with who asks; None: the answer takes them itself.
    locks: LeaseLocks | None
    # Whether the request's Idempotency-Key was claimed with them (None: not claimed yet).
    claimed: bool | None = None
    # The request's fingerprint the key was claimed with, so the route need not make it again.
    fingerprint: str | None = None


AnswererOf = Callable[[Request, Units], AsyncIterator[Answerer]]


def _answerer_of(body_model: type[BaseModel]) -> AnswererOf:
    """The dependency that opens the answer's first unit of work and finds who answers with
    a `body_model` body in it.

    One dependency, not the unit's, who asks and the units each declared by the route: FastAPI
    solves every declared dependency and its sub-dependencies on every request, cached or not
    (~25 µs each on this machine; the answer routes had eight, now two: this and `get_units`).
    The routes declare the API token in their OpenAPI operation (`API_TOKEN_SECURITY`) rather
    than as a dependency FastAPI would call for it (docs/benchmarks.md, "i33b")."""

    async def answerer(request: Request, units: UnitsDep) -> AsyncIterator[Answerer]:
        # An error before the route's `done` rolls the unit back, as for `SessionDep`.
        async with open_unit(units) as unit:
            yield await _who_answers(request, unit, units, body_model)

    return answerer


async def _who_answers(
    request: Request, unit: OpenUnit, units: Units, body_model: type[BaseModel]
) -> Answerer:
    """Who asks, found in the route's first unit of work, as `rater_in_open_unit` finds them.

    With an API token, the token's lookup and the lease's locks go out in one round trip:
    the locks are taken for the user the token names, so a token that names nobody locks
    nothing and gets the same 401. With an Idempotency-Key too, the key is claimed in that
    round trip before the locks, and they are taken only if the claim took effect: a
    replay waits on the key for its first request and then locks nothing, and a token
    that names nobody claims nothing, so the key stays free for its owner. The key's
    claim needs the body's fingerprint: a body the route will refuse (422), or a key
    `run_once` will, goes the long way, so errors come in the same order. A login cookie
    goes through its CSRF check first.
    """
    token = bearer_token(request)
    assignment_id = request.path_params.get("assignment_id", "")
    if token is None or not (assignment_id.isascii() and assignment_id.isdigit()):
        return Answerer(unit, units, await rater_in_open_unit(request, unit), None)
    key = request.headers.get(IDEMPOTENCY_KEY_HEADER)
    if key is None:
        rater, locks = await api_rater_and_locks(unit.session, token, int(assignment_id))
        if rater is None:
            raise NotAuthenticated(INVALID_API_TOKEN)
        return Answerer(unit, units, rater, locks)
    fingerprint = await _fingerprint(request, body_model)
    if fingerprint is None or not idempotency.valid_key(key):
        return Answerer(unit, units, await rater_in_open_unit(request, unit), None)
    rater, claim = await api_rater_claim_and_locks(
        unit.session, token, key, fingerprint, int(assignment_id)
    )
    if rater is None:
        raise NotAuthenticated(INVALID_API_TOKEN)
    return Answerer(unit, units, rater, claim.locks, claim.claimed, fingerprint)


async def _fingerprint(request: Request, body_model: type[BaseModel]) -> str | None:
    """The request's fingerprint (idempotency.request_fingerprint) as the route will make it
    of its body; None when the body is not a valid `body_model`."""
    try:
        body = body_model.model_validate_json(await request.body())
    except ValidationError:
        return None
    return idempotency.request_fingerprint(request.url.path, body)


# scope="function": the unit commits (or rolls back) before the response is sent.
JudgmentAnswerer = Annotated[Answerer, Depends(_answerer_of(JudgmentIn), scope="function")]
SkipAnswerer = Annotated[Answerer, Depends(_answerer_of(SkipIn), scope="function")]
FlagAnswerer = Annotated[Answerer, Depends(_answerer_of(FlagIn), scope="function")]
