"""The supervision audit log (art. 30-31): every act of the regulator and of reviewers (experts,
verification bodies, neutrality reviewers), append-only and hash-chained.

Recording. `record_audit_event(session, clock, actor=..., action="<noun>.<verb>", subject_type=...,
subject_id=..., before={...}, after={...}, **details)` adds the entry to the caller's transaction.
When the session flushes it, a flush hook takes the chain's transaction-level advisory lock
(core.locks, CHAIN_LOCK), reads the head of the chain, and gives the entry the next `seq`, the
actor's active roles, `prev_hash` = the head's hash and its own `hash` (audit_log.chain). The lock
is held until commit, so seq order is commit order and the numbers have no gaps: a transaction that
rolls back gave none away.

The rule for callers: record the event as the LAST database step of the transaction. From the
moment the entry is flushed every other audited transaction waits for this one to commit; a caller
that went on to wait for a row lock held by one of those would deadlock with it. Writes to rows the
transaction already holds (the idempotency record of the mutation) are fine after it.

Crash safety: the entry commits with the act or not at all. Lock order: whatever the act takes,
then CHAIN_LOCK, nothing after it.

Tampering. The table refuses UPDATE, DELETE and TRUNCATE by trigger (migration 0017). A superuser
can drop the trigger; `verify_chain` then finds the first changed, deleted or reordered entry,
unless the whole chain after it was recomputed as well. Against that the operator records the head
(seq and hash, printed by `tanpuhui audit-verify` and `auditChainStatus`) outside the database,
e.g. daily in the regulator's paper register; `tanpuhui audit-verify --anchor SEQ:HASH` then
proves nothing up to that entry was rewritten or cut off since."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from audit_log.chain import GENESIS, ChainBreak, Walker, plain, row_hash
from audit_log.models import AuditEvent
from core.clock import Clock
from core.keyset import Page, keyset_page
from core.locks import lock_name_in_flush

CHAIN_LOCK = "audit_log:chain"
VERIFY_PAGE = 1000
_order = itertools.count()  # the order of record_audit_event calls, for several entries in one flush

# The actor's active roles, read by table name: the audit log imports no domain package.
_ACTOR_ROLES = text("SELECT coalesce(array_agg(role ORDER BY role), '{}') FROM account_roles "
                    "WHERE account_id = :actor AND status = 'active'")
_HEAD = text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")


def record_audit_event(session: AsyncSession, clock: Clock, *, actor: uuid.UUID | None, action: str,
                       subject_type: str, subject_id: uuid.UUID | None, before: dict | None = None,
                       after: dict | None = None, **details) -> None:
    """Who did what to whom, with the public facts it changed (statuses, versions, tonnes, codes;
    never names, emails or phones). Call it as the last database step of the transaction."""
    entry = AuditEvent(id=uuid.uuid4(), actor_account_id=actor, action=action, subject_type=subject_type,
                       subject_id=subject_id, details=plain(details), before=plain(before), after=plain(after),
                       at=clock.now())
    entry._audit_order = next(_order)
    session.add(entry)


@event.listens_for(Session, "before_flush")
def _chain_new_entries(session: Session, flush_context, instances) -> None:
    entries = sorted((o for o in session.new if isinstance(o, AuditEvent)),
                     key=lambda o: getattr(o, "_audit_order", -1))
    if not entries:
        return
    connection = session.connection()
    lock_name_in_flush(connection, CHAIN_LOCK)
    head = connection.execute(_HEAD).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    roles: dict[uuid.UUID | None, list[str]] = {None: []}
    for entry in entries:
        if entry.actor_account_id not in roles:
            roles[entry.actor_account_id] = list(
                connection.execute(_ACTOR_ROLES, {"actor": entry.actor_account_id}).scalar())
        seq += 1
        entry.id = entry.id or uuid.uuid4()
        entry.details = entry.details if entry.details is not None else {}
        entry.seq, entry.actor_roles, entry.prev_hash = seq, roles[entry.actor_account_id], prev_hash
        entry.hash = prev_hash = row_hash(entry)


# --- verification --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainStatus:
    intact: bool
    entries: int  # entries checked and sound, from seq 1
    head_seq: int  # the last sound entry (0 when none)
    head_hash: str
    first_break: ChainBreak | None


async def verify_chain(*, session: AsyncSession, anchors: dict[int, str] | None = None,
                       page_size: int = VERIFY_PAGE) -> ChainStatus:
    """Walk the whole chain in seq order, `page_size` entries at a time (plain rows, never the whole
    table in memory), and report the first link that does not hold. `anchors`: {seq: hash} recorded
    outside the database earlier; each must still be there with that hash."""
    table = AuditEvent.__table__
    walker = Walker(anchors)
    after = 0
    while walker.broken is None:
        rows = (await session.execute(
            select(table).where(table.c.seq > after).order_by(table.c.seq).limit(page_size))).all()
        for row in rows:
            if not walker.feed(row):
                break
        if len(rows) < page_size:
            break
        after = rows[-1].seq
    broken = walker.finish()
    return ChainStatus(intact=broken is None, entries=walker.entries, head_seq=walker.next_seq - 1,
                       head_hash=walker.prev_hash, first_break=broken)


# --- reading -------------------------------------------------------------------------------------


async def entries(*, session: AsyncSession, first: int | None, after: str | None, action: str | None = None,
                  actor_id: uuid.UUID | None = None, subject_type: str | None = None,
                  subject_id: uuid.UUID | None = None, since: datetime | None = None,
                  until: datetime | None = None) -> Page:
    """The log, newest first, filtered; keyset-paginated on seq (at most 100 a page)."""
    stmt = select(AuditEvent)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_account_id == actor_id)
    if subject_type is not None:
        stmt = stmt.where(AuditEvent.subject_type == subject_type)
    if subject_id is not None:
        stmt = stmt.where(AuditEvent.subject_id == subject_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.at < until)
    return await keyset_page(session, stmt, keys=[AuditEvent.seq], first=first, after=after, descending=True)
