"""The asyncpg connection under a SQLAlchemy session, for set-based hot paths.

Statements sent here run in the session's own transaction. Use it where one statement over
arrays (`unnest`) replaces thousands of row-at-a-time ORM writes: issuance, expiry sweeps."""

from __future__ import annotations

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession


async def driver(session: AsyncSession) -> asyncpg.Connection:
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    apg: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    if not apg.is_in_transaction():
        # SQLAlchemy sends BEGIN lazily with its first statement; without this, statements sent
        # straight to asyncpg would autocommit one by one and row locks would not hold.
        await connection.exec_driver_sql("SELECT 1")
    return apg


async def read_driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection for reads only: no transaction is forced, so on an autocommit
    session each statement is one round trip with its own snapshot."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]
