"""The supervision audit log (art. 30-31): every act of the regulator and of reviewers (experts,
verification bodies, neutrality reviewers), append-only and hash-chained.

Recording. `record_audit_event(session, clock, actor=..., action="<noun>.<verb>", subject_type=...,
subject_id=..., before={...}, after={...}, **details)` notes the entry in the caller's session. When
the transaction commits, a session hook (before_commit) takes the chain's transaction-level advisory
lock (core.locks, CHAIN_LOCK), reads the head of the chain and writes the transaction's entries with
the next `seq`s, the actors' active roles, `prev_hash` = the previous hash and their own `hash`
(audit_log.chain). The lock is held to the commit, so seq order is commit order and the numbers
have no gaps; a transaction that rolls back (or a savepoint that does, for what was recorded in it)
writes nothing and takes no number.

The rule: the audit entry is the LAST database step of its transaction. Callers record it after the
act (it describes the final state); the hook makes the chain's part of it last whatever the caller
does after, so a transaction never holds the chain lock while it waits for another lock (no
deadlock with another audited transaction, however the two took their other locks). Lock order:
whatever the act takes, then CHAIN_LOCK at commit, nothing after it. Crash safety: the entries
commit with the act or not at all. The entries are not readable inside their own transaction.

Tampering. The table refuses UPDATE, DELETE and TRUNCATE by trigger (migration 0024). A superuser
can drop the trigger; `verify_chain` then finds the first changed, deleted or reordered entry,
unless the whole chain after it was recomputed as well. Against that the operator records the head
(seq and hash, printed by `tanpuhui audit-verify` and `auditChainStatus`) outside the database,
e.g. daily in the regulator's paper register; `tanpuhui audit-verify --anchor SEQ:HASH` then
proves nothing up to that entry was rewritten or cut off since."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from audit_log.chain import GENESIS, ChainBreak, Walker, plain, row_hash
from audit_log.models import AuditEvent
from core.clock import Clock
from core.keyset import Page, keyset_page
from core.locks import lock_name_in_hook

CHAIN_LOCK = "audit_log:chain"
VERIFY_PAGE = 1000
_PENDING = "audit_log.pending"  # session.info key: [(entry, savepoint it was recorded in or None)]

# The actor's active roles, read by table name: the audit log imports no domain package.
_ACTOR_ROLES = text("SELECT coalesce(array_agg(role ORDER BY role), '{}') FROM account_roles "
                    "WHERE account_id = :actor AND status = 'active'")
_HEAD = text("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")


def record_audit_event(session: AsyncSession, clock: Clock, *, actor: uuid.UUID | None, action: str,
                       subject_type: str, subject_id: uuid.UUID | None, before: dict | None = None,
                       after: dict | None = None, **details) -> None:
    """Who did what to whom, with the public facts it changed (statuses, versions, tonnes, codes;
    never names, emails or phones). Written, chained, when the transaction commits."""
    sync: Session = getattr(session, "sync_session", session)
    entry = AuditEvent(id=uuid.uuid4(), actor_account_id=actor, action=action, subject_type=subject_type,
                       subject_id=subject_id, details=plain(details), before=plain(before), after=plain(after),
                       at=clock.now())
    sync.info.setdefault(_PENDING, []).append((entry, sync.get_nested_transaction()))


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release: its entries go with the outer commit
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    connection = session.connection()
    lock_name_in_hook(connection, CHAIN_LOCK)
    head = connection.execute(_HEAD).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS)
    roles: dict[uuid.UUID | None, list[str]] = {None: []}
    for entry, _ in pending:
        if entry.actor_account_id not in roles:
            roles[entry.actor_account_id] = list(
                connection.execute(_ACTOR_ROLES, {"actor": entry.actor_account_id}).scalar())
        seq += 1
        entry.seq, entry.actor_roles, entry.prev_hash = seq, roles[entry.actor_account_id], prev_hash
        entry.hash = prev_hash = row_hash(entry)
        session.add(entry)
    # the commit flushes them next, under the lock


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if not pending:
        return
    if previous_transaction.nested:
        session.info[_PENDING] = [(e, t) for e, t in pending if not _within(t, previous_transaction)]
    else:
        session.info.pop(_PENDING, None)


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    """A transaction that ended without commit (closed, rolled back) leaves no entry behind."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


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
