"""Idempotency keys for mutations that move points, stock or money (and any other that opts in).

The same key with the same input gets the first answer again, success or refusal (as Stripe
does): a key refused OUT_OF_STOCK stays refused after a restock, and the client asks again with a
new key if it still wants to. The record is written in the same transaction as the effect it
guards:
- the first request with a key inserts the record, runs the action and stores its result;
- a concurrent request with the same key blocks on the uncommitted row (PostgreSQL's unique
  check waits for the inserting transaction), then replays the committed answer;
- the same key with a different input is refused with IDEMPOTENCY_KEY_REUSED;
- if the action is refused (a DomainError, raised by the action or by the commit, e.g. the stock
  taken at commit), the transaction rolls back with the record and the refusal is stored in a
  transaction of its own (`idempotent_transaction`); a refusal a retry may cure (NOT_RECORDED)
  and any other failure are not stored, so the client may retry."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Awaitable, Callable, TypeVar

import orjson
from sqlalchemy import String, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import Clock
from core.db import Base
from core.errors import CoreCode, DomainError

MAX_KEY_LENGTH = 200
# Refusals a retry may cure: never stored as a key's answer, so the retry runs afresh.
NOT_RECORDED = frozenset({"IDEMPOTENCY_KEY_REUSED", "RATE_LIMITED", "TOO_MANY_ATTEMPTS",
                          "PAYMENT_PROVIDER_UNAVAILABLE"})

T = TypeVar("T")


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"

    # principal first: records shard with the account that made them
    principal: Mapped[str] = mapped_column(String(80), primary_key=True)
    operation: Mapped[str] = mapped_column(String(80), primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    result: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    # the first answer was a refusal: {"code", "message", "field"}
    refusal: Mapped[dict | None] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class IdempotencyKeyReused(DomainError):
    code = CoreCode.IDEMPOTENCY_KEY_REUSED.value


class ReplayedRefusal(DomainError):
    """A key's first answer, a refusal, given again: the same code, message and field (and the same
    problems, when the refusal named several: core.errors.DomainErrors)."""

    def __init__(self, refusal: dict):
        super().__init__(refusal["code"], refusal["message"], refusal["field"])
        if refusal.get("problems"):
            self.problems = [ReplayedRefusal(problem) for problem in refusal["problems"]]


def _refusal_record(refusal: DomainError) -> dict:
    record = {"code": refusal.code, "message": refusal.message, "field": refusal.field}
    problems = getattr(refusal, "problems", None)
    if problems:
        record["problems"] = [{"code": p.code, "message": p.message, "field": p.field} for p in problems]
    return record


def fingerprint(request: Any) -> str:
    """sha256 of the canonical JSON of the request (sorted keys, no whitespace)."""
    canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(canonical).hexdigest()


def check_key(key: str, field: str = "idempotencyKey") -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise DomainError(
            CoreCode.INVALID, f"The idempotency key must be 1 to {MAX_KEY_LENGTH} characters.", field=field
        )
    return key


async def run_idempotent(
    *,
    session: AsyncSession,
    clock: Clock,
    principal: str,
    operation: str,
    key: str,
    request: Any,
    action: Callable[[], Awaitable[dict]],
) -> tuple[dict, bool]:
    """Run `action` once per (principal, operation, key). Returns (result, replayed); a stored
    refusal is raised again as ReplayedRefusal.

    Must run inside the transaction that `action` writes in; the caller commits (and stores a
    refusal with `record_refusal`: `idempotent_transaction` does both)."""
    key = check_key(key)
    print_ = fingerprint(request)
    inserted = (
        await session.execute(
            insert(IdempotencyRecord)
            .values(
                principal=principal,
                operation=operation,
                key=key,
                fingerprint=print_,
                created_at=clock.now(),
            )
            .on_conflict_do_nothing()
            .returning(IdempotencyRecord.key)
        )
    ).scalar_one_or_none()
    if inserted is None:
        record = (
            await session.execute(
                select(IdempotencyRecord.fingerprint, IdempotencyRecord.result, IdempotencyRecord.refusal).where(
                    IdempotencyRecord.principal == principal,
                    IdempotencyRecord.operation == operation,
                    IdempotencyRecord.key == key,
                )
            )
        ).one()
        if record.fingerprint != print_:
            raise IdempotencyKeyReused(
                message="This idempotency key was already used with a different input.",
                field="idempotencyKey",
            )
        if record.refusal is not None:
            raise ReplayedRefusal(record.refusal)
        return record.result or {}, True
    result = await action()
    await session.execute(
        IdempotencyRecord.__table__.update()
        .where(
            IdempotencyRecord.principal == principal,
            IdempotencyRecord.operation == operation,
            IdempotencyRecord.key == key,
        )
        .values(result=result)
    )
    return result, False


async def record_refusal(
    *, session_factory: async_sessionmaker[AsyncSession], clock: Clock, principal: str, operation: str, key: str,
    request: Any, refusal: DomainError,
) -> bool:
    """Store a refusal as the key's answer, in a transaction of its own (the refused one has rolled
    back). False if the key has an answer already: another request with it answered meanwhile
    (the insert waits for that request's transaction, so its answer is committed by then)."""
    async with session_factory() as session:
        async with session.begin():
            stored = (
                await session.execute(
                    insert(IdempotencyRecord)
                    .values(
                        principal=principal,
                        operation=operation,
                        key=check_key(key),
                        fingerprint=fingerprint(request),
                        refusal=_refusal_record(refusal),
                        created_at=clock.now(),
                    )
                    .on_conflict_do_nothing()
                    .returning(IdempotencyRecord.key)
                )
            ).scalar_one_or_none()
    return stored is not None


async def idempotent_transaction(
    *,
    session_factory: async_sessionmaker[AsyncSession],
    clock: Clock,
    principal: str,
    operation: str,
    key: str,
    request: Any,
    action: Callable[[AsyncSession], Awaitable[dict]],
    answer: Callable[[AsyncSession, dict], Awaitable[T]],
) -> T:
    """The whole convention in one transaction of its own: run `action` once per key (or replay
    its first result), build the answer from the result in the same transaction, commit. A
    refusal, by the action or at commit, is stored as the key's answer and raised; the same key
    and input then get it again (ReplayedRefusal). Nothing is stored for a refusal in NOT_RECORDED
    or for any other failure. No round trip is added to a success."""
    key = check_key(key)
    for _ in range(2):
        try:
            async with session_factory() as session:
                async with session.begin():
                    result, _replayed = await run_idempotent(
                        session=session, clock=clock, principal=principal, operation=operation, key=key,
                        request=request, action=lambda: action(session))
                    value = await answer(session, result)
            return value
        except DomainError as refused:
            if isinstance(refused, ReplayedRefusal) or refused.code in NOT_RECORDED:
                raise
            if await record_refusal(session_factory=session_factory, clock=clock, principal=principal,
                                    operation=operation, key=key, request=request, refusal=refused):
                raise
            last = refused
    # the second round replays the answer recorded meanwhile (records are never deleted), so it
    # returns or raises; this is only reached if the record vanished
    raise last
