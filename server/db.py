"""The database handle: one async engine and session factory per process."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.errors import DomainError

# SQLSTATE of a refusal a database check makes at commit (a deferred constraint trigger): its
# message is the error code, its detail the message, its hint the input field
DEFERRED_REFUSAL = "TPH01"


def _deferred_refusal(context: ExceptionContext) -> DomainError | None:
    """A commit the database refused for a domain reason raises that domain error instead, so
    callers see e.g. OUT_OF_STOCK whether it was found before or at commit."""
    error = context.original_exception
    if getattr(error, "sqlstate", None) != DEFERRED_REFUSAL:
        return None
    cause = getattr(error, "__cause__", None) or error
    return DomainError(str(getattr(cause, "message", "") or "INVALID"), getattr(cause, "detail", "") or "",
                       getattr(cause, "hint", None))


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
    event.listen(engine.sync_engine, "handle_error", _deferred_refusal)
    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
