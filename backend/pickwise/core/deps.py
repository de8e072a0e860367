"""The database session as FastAPI dependencies. Apart from `core.db` so that what does not
serve HTTP (the CLI, workers) does not import FastAPI (~0.3 s of start-up)."""

from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import Units, get_session, get_units

# scope="function": the commit finishes before the response is sent, so an acknowledged
# judgment is always durable.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

# For requests that must hold no transaction while they wait (live conversations): each
# `async with units() as session:` is one short transaction, committed at its end.
UnitsDep = Annotated[Units, Depends(get_units)]
