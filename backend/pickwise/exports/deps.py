from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncConnection

from pickwise.core.db import get_read_engine


async def read_connection() -> AsyncIterator[AsyncConnection]:
    """One transaction on the read database (the replica if one is configured), held until
    the response has been sent: a streamed download reads from it while its body goes out."""
    async with get_read_engine().connect() as connection, connection.begin():
        yield connection


# Declared after AdminProject in every route, so a non-admin is refused before any read.
ReadConnection = Annotated[AsyncConnection, Depends(read_connection)]
