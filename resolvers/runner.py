"""The one way a mutation runs.

Every mutation resolver is `run_mutation(ctx, Payload, action, ...)`; who may call it stays declared
next to the field (schema.permissions.Allow). In this one place:
1. `guard` (optional): in-body checks around the work, an async context manager made fresh per call
   (a sign-up quota, the sign-in throttle, a payment provider being configured). What it raises
   before yielding refuses the mutation; it sees the work's refusal on its way out.
2. the transaction: `action(session)` does the work and returns what the answer is built from;
   `answer(session, result)` builds the value in the same transaction (without `answer`, the value
   is the action's result). With `idempotency`, the transaction is the idempotency-key convention
   (core/idempotency.idempotent_transaction): the same key and input replay the first answer,
   success or refusal; `answer` is then required, as the action returns a JSON-able dict of ids.
   A transaction failing with one of `retry_on` is run afresh, up to `attempts` times in all.
3. after commit (optional): `then(value)` does what must wait for the commit (cache invalidation,
   revoking tokens in Redis, calling the payment provider) and returns the payload; without it
   the value is the payload.
4. an expected failure (core.errors.DomainError) anywhere above becomes the payload's typed error
   (schema/errors.py: its code must be in the mutation's enum). The transaction has rolled back by
   then, so a refusal changes nothing."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import DomainError
from core.idempotency import idempotent_transaction
from schema.context import Context
from schema.errors import domain_errors, error_type

P = TypeVar("P")


@dataclass(frozen=True)
class Idempotency:
    """The idempotency key of one call: records are the caller's own; anonymous callers' records
    are scoped by `anonymous_scope` (a keyed hash of who they say they are). `request` is what the
    key's fingerprint covers (core/idempotency.fingerprint)."""

    operation: str
    key: str
    request: Any
    anonymous_scope: str | None = None

    def principal(self, ctx: Context) -> str:
        if ctx.principal is not None:
            return ctx.principal.key
        return f"anonymous:{self.anonymous_scope}" if self.anonymous_scope else "anonymous"


async def run_mutation(
    ctx: Context, payload: type[P], action: Callable[[AsyncSession], Awaitable[Any]], *,
    answer: Callable[[AsyncSession, Any], Awaitable[Any]] | None = None,
    idempotency: Idempotency | Callable[[], Idempotency] | None = None,
    then: Callable[[Any], Awaitable[P]] | None = None,
    guard: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
    retry_on: tuple[type[Exception], ...] = (), attempts: int = 1,
) -> P:
    """Run one mutation (see the module docstring). `idempotency` may be a function making it,
    called inside the runner: a malformed id in its request is then the payload's NOT_FOUND."""
    try:
        async with guard() if guard is not None else nullcontext():
            for attempt in range(attempts):
                try:
                    value = await _transaction(ctx, action, answer,
                                               idempotency() if callable(idempotency) else idempotency)
                    break
                except retry_on:
                    if attempt == attempts - 1:
                        raise
            return await then(value) if then is not None else value
    except DomainError as refused:
        return payload(errors=domain_errors(error_type(payload), refused))  # type: ignore[call-arg]


async def _transaction(ctx: Context, action, answer, idempotency: Idempotency | None) -> Any:
    if idempotency is not None:
        return await idempotent_transaction(
            session_factory=ctx.services.session_factory, clock=ctx.clock, principal=idempotency.principal(ctx),
            operation=idempotency.operation, key=idempotency.key, request=idempotency.request,
            action=action, answer=answer)
    async with ctx.transaction() as session:
        result = await action(session)
        return await answer(session, result) if answer is not None else result
