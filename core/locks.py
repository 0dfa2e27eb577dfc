"""Named locks held until the transaction ends (PostgreSQL advisory locks), for rules that span
rows no single row lock covers: e.g. "this holder's free tonnes" while an offer or retirement
checks and takes them."""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncSession


_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")


async def lock_name(session: AsyncSession, name: str) -> None:
    """Wait for, then hold until commit or rollback, the lock called `name` (hashed to 64 bits)."""
    await session.execute(_LOCK, {"name": name})


def lock_name_in_hook(connection: Connection, name: str) -> None:
    """The same lock taken from synchronous code inside a session event (before_commit, before_flush),
    which SQLAlchemy's asyncio layer runs in its greenlet: `connection` is the session's own."""
    connection.execute(_LOCK, {"name": name})
