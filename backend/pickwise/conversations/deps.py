"""Who asks, found in a short transaction of its own: routes that wait on a model take no
request-long session (`SessionDep`), so they hold no connection while the model writes."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.auth.deps import ApiTokenHeader, Principal, principal_of
from pickwise.core.deps import UnitsDep
from pickwise.core.errors import NotAuthenticated


async def caller(request: Request, session: AsyncSession) -> Principal:
    """Who asks, in the caller's transaction (the event stream finds its caller and the
    turn's replies in one)."""
    principal = await principal_of(request, session)
    if principal is None:
        raise NotAuthenticated()
    return principal


async def principal_in_unit(
    request: Request, units: UnitsDep, _documented: ApiTokenHeader
) -> Principal:
    async with units() as session:
        return await caller(request, session)


UnitPrincipal = Annotated[Principal, Depends(principal_in_unit)]
