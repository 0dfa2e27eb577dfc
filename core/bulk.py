"""The asyncpg connection under a SQLAlchemy session, for set-based hot paths.

Statements sent here run in the session's own transaction. Use it where one statement over
arrays (`unnest`) replaces thousands of row-at-a-time ORM writes: issuance, expiry sweeps."""

from __future__ import annotations

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession


async def driver(session: AsyncSession) -> asyncpg.Connection:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]
