"""Who asks, found in a short transaction of its own: routes that wait on a model take no
request-long session (`SessionDep`), so they hold no connection while the model writes."""

from typing import Annotated

from fastapi import Depends, Request

from pickwise.auth.deps import Principal, principal_in
from pickwise.core.db import UnitsDep


async def principal_in_unit(request: Request, units: UnitsDep) -> Principal:
    async with units() as session:
        return await principal_in(request, session)


UnitPrincipal = Annotated[Principal, Depends(principal_in_unit)]
