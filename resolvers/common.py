"""Small helpers every resolver module uses."""

from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError, NotFound
from core.idempotency import idempotent_transaction
from schema.context import Context
from schema.errors import domain_errors

P = TypeVar("P")


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """An id from a client; a malformed one is simply not found."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(message="Nothing has this id.", field=field) from None


def parse_optional_id(value: str | None) -> uuid.UUID | None:
    """An optional id filter from a client; a malformed one matches nothing."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return uuid.UUID(int=0)


async def mutation(payload: type[P], error: type, action: Callable[[], Awaitable[P]]) -> P:
    """Run a mutation body; an expected (domain) failure becomes the payload's typed error.
    The body's transaction has rolled back by then, so a failure changes nothing."""
    try:
        return await action()
    except DomainError as exc:
        return payload(errors=domain_errors(error, exc))  # type: ignore[call-arg]


async def idempotent(
    context: Context, *, operation: str, key: str, request: Any,
    action: Callable[[AsyncSession], Awaitable[dict]], answer: Callable[[AsyncSession, dict], Awaitable[P]],
    anonymous_scope: str | None = None,
) -> P:
    """The idempotency-key convention, in a transaction of its own: same key + same input replays
    the first answer, success or refusal; same key + other input fails (core/idempotency.py).
    `action(session)` does the work and returns ids; `answer(session, result)` builds the payload
    from them (the first time and on every replay). Records are the caller's own; anonymous
    callers' records are scoped by `anonymous_scope` (a keyed hash of who they say they are)."""
    if context.principal is not None:
        principal = context.principal.key
    else:
        principal = f"anonymous:{anonymous_scope}" if anonymous_scope else "anonymous"
    return await idempotent_transaction(session_factory=context.services.session_factory, clock=context.clock,
                                        principal=principal, operation=operation, key=key, request=request,
                                        action=action, answer=answer)
