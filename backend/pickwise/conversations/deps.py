"""Who asks, found in a short transaction of its own: routes that wait on a model take no
request-long session (`SessionDep`), so they hold no connection while the model writes."""

from typing import Annotated

from fastapi import Depends, Request

from pickwise.auth.deps import Principal, get_principal
from pickwise.core.db import UnitsDep
from pickwise.core.errors import NotAuthenticated


async def principal_in_unit(request: Request, units: UnitsDep) -> Principal:
    async with units() as session:
        principal = await get_principal(request, session)
    if principal is None:
        raise NotAuthenticated()
    return principal


UnitPrincipal = Annotated[Principal, Depends(principal_in_unit)]
