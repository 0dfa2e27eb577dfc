"""Named locks held until the transaction ends (PostgreSQL advisory locks), for rules that span
rows no single row lock covers: e.g. "this holder's free tonnes" while an offer or retirement
checks and takes them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_name(session: AsyncSession, name: str) -> None:
    """Wait for, then hold until commit or rollback, the lock called `name` (hashed to 64 bits)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"), {"name": name})
