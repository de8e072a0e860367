"""Who answers a leased pair (a choice, a skip or a flag), found with the lease's locks when
that saves a round trip."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from pickwise.auth.deps import (
    INVALID_API_TOKEN,
    ApiTokenHeader,
    bearer_token,
    rater_in_open_unit,
)
from pickwise.core.deps import OpenUnitDep
from pickwise.core.errors import NotAuthenticated
from pickwise.judgments.service import LeaseLocks, api_rater_and_locks
from pickwise.models import User

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Answerer:
    rater: User
    # The answer's locks, taken with who asks; None: the answer takes them itself.
    locks: LeaseLocks | None


async def answerer(request: Request, unit: OpenUnitDep, _documented: ApiTokenHeader) -> Answerer:
    """Who asks, found in the route's first unit of work, as `rater_in_open_unit` finds them.

    With an API token and no Idempotency-Key (the API's usual answer), the token's lookup and
    the lease's locks go out in one round trip: the locks are taken for the user the token
    names, so a token that names nobody locks nothing and gets the same 401. With a key, the
    key is taken before any lock (a replay waits there for its first request), so the
    answer takes its locks itself; a login cookie goes through its CSRF check first.
    """
    token = bearer_token(request)
    assignment_id = request.path_params.get("assignment_id", "")
    keyed = IDEMPOTENCY_KEY_HEADER in request.headers
    if token is None or keyed or not (assignment_id.isascii() and assignment_id.isdigit()):
        return Answerer(await rater_in_open_unit(request, unit, _documented), None)
    rater, locks = await api_rater_and_locks(unit.session, token, int(assignment_id))
    if rater is None:
        raise NotAuthenticated(INVALID_API_TOKEN)
    return Answerer(rater, locks)


AnswererDep = Annotated[Answerer, Depends(answerer)]
