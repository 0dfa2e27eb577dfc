"""The database handle: one async engine and session factory per process."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.deferred_refusal import deferred_refusal


def create_engine(url: str, pool_size: int = 20) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        # a statement's parameters are people's data: never in an exception's text or a log line
        hide_parameters=True,
        # asyncpg's own prepared-statement cache; fine behind a session-mode pooler
        connect_args={"server_settings": {"application_name": "tanpuhui", "timezone": "UTC"}},
    )
    # a refusal at commit (SQLSTATE TPH01) raises its DomainError
    event.listen(engine.sync_engine, "handle_error", deferred_refusal)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
