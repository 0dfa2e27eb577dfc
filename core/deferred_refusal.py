"""A refusal the database makes at commit, turned into the domain error it stands for.

A deferred constraint trigger checks a rule when the transaction commits (the mall's stock:
mall/sql/mall_reserve_stock_at_commit.sql). When it refuses, it raises SQLSTATE TPH01 with the
error code as its message, the human message as its detail and the input field as its hint; the
commit fails and everything rolls back. `deferred_refusal` is the engine's handle_error hook
(server/db.py installs it) that raises that DomainError instead, so callers see e.g. OUT_OF_STOCK
whether the refusal came before or at commit, and an idempotency key records it as its answer."""

from __future__ import annotations

from sqlalchemy.engine import ExceptionContext

from core.errors import DomainError

# SQLSTATE of a refusal a database check makes at commit (a deferred constraint trigger): its
# message is the error code, its detail the message, its hint the input field
DEFERRED_REFUSAL = "TPH01"


def deferred_refusal(context: ExceptionContext) -> DomainError | None:
    """A commit the database refused for a domain reason raises that domain error instead, so
    callers see e.g. OUT_OF_STOCK whether it was found before or at commit."""
    error = context.original_exception
    if getattr(error, "sqlstate", None) != DEFERRED_REFUSAL:
        return None
    cause = getattr(error, "__cause__", None) or error
    return DomainError(str(getattr(cause, "message", "") or "INVALID"), getattr(cause, "detail", "") or "",
                       getattr(cause, "hint", None))
