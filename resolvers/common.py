"""Small helpers every resolver module uses."""

from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError, NotFound
from core.idempotency import run_idempotent
from schema.context import Context
from schema.errors import domain_errors

P = TypeVar("P")


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """An id from a client; a malformed one is simply not found."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(message="Nothing has this id.", field=field) from None


async def mutation(payload: type[P], error: type, action: Callable[[], Awaitable[P]]) -> P:
    """Run a mutation body; an expected (domain) failure becomes the payload's typed error.
    The body's transaction has rolled back by then, so a failure changes nothing."""
    try:
        return await action()
    except DomainError as exc:
        return payload(errors=domain_errors(error, exc))  # type: ignore[call-arg]


async def idempotent(
    context: Context, session: AsyncSession, *, operation: str, key: str, request: Any,
    action: Callable[[], Awaitable[dict]],
) -> tuple[dict, bool]:
    """The idempotency-key convention: same key + same input replays; same key + other input fails."""
    principal = context.principal.key if context.principal else "anonymous"
    return await run_idempotent(session=session, clock=context.clock, principal=principal,
                                operation=operation, key=key, request=request, action=action)
