"""GraphQL types of the supervision audit log (art. 30-31): its entries and the chain's status."""

from __future__ import annotations

from datetime import datetime

import orjson
import strawberry

from audit_log.chain import ChainBreak
from audit_log.models import AuditEvent
from audit_log.service import ChainStatus


def _json(value) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@strawberry.type(description="One entry of the audit log: an act of the regulator or of a reviewer (expert, "
                             "verification body, neutrality reviewer), with the public facts before and after.")
class AuditEntry:
    seq: int = strawberry.field(description="1, 2, 3... in commit order, without gaps.")
    id: strawberry.ID
    at: datetime
    actor_id: strawberry.ID | None = strawberry.field(description="Null for the system (bootstrap, scheduled jobs).")
    actor_roles: list[str] = strawberry.field(description="The actor's active roles when they acted (empty for "
                                                          "entries written before the chain existed).")
    action: str = strawberry.field(description="<noun>.<verb>, e.g. cer_project.filed, review.decided.")
    subject_type: str
    subject_id: strawberry.ID | None
    details: str = strawberry.field(description="Other facts of the act, as JSON.")
    before: str | None = strawberry.field(description="The public facts before the act, as JSON (null: none).")
    after: str | None = strawberry.field(description="The public facts after the act, as JSON (null: none).")
    prev_hash: str = strawberry.field(description="The hash of the entry before (64 zeros for the first).")
    hash: str = strawberry.field(description="sha256 (hex) of the canonical JSON of this entry, prevHash included.")

    @classmethod
    def from_row(cls, row: AuditEvent) -> "AuditEntry":
        return cls(seq=row.seq, id=strawberry.ID(str(row.id)), at=row.at,
                   actor_id=strawberry.ID(str(row.actor_account_id)) if row.actor_account_id else None,
                   actor_roles=list(row.actor_roles), action=row.action, subject_type=row.subject_type,
                   subject_id=strawberry.ID(str(row.subject_id)) if row.subject_id else None,
                   details=_json(row.details) or "{}", before=_json(row.before), after=_json(row.after),
                   prev_hash=row.prev_hash, hash=row.hash)


@strawberry.type(description="The first link of the chain that does not hold. problem: gap (an entry is missing; "
                             "expected and found are seqs), link (prevHash is not the previous entry's hash), hash "
                             "(the entry was changed: expected is the hash its content gives).")
class AuditChainBreak:
    seq: int
    problem: str
    expected: str
    found: str

    @classmethod
    def from_break(cls, found: ChainBreak) -> "AuditChainBreak":
        return cls(seq=found.seq, problem=found.problem, expected=found.expected, found=found.found)


@strawberry.type(description="The audit chain verified entry by entry from seq 1. Record headSeq and headHash "
                             "outside the database: a later check against them shows nothing before was rewritten.")
class AuditChainStatus:
    intact: bool
    entries: int = strawberry.field(description="Entries checked and sound, from seq 1.")
    head_seq: int = strawberry.field(description="The last sound entry (0 when the log is empty).")
    head_hash: str
    first_break: AuditChainBreak | None

    @classmethod
    def from_status(cls, status: ChainStatus) -> "AuditChainStatus":
        return cls(intact=status.intact, entries=status.entries, head_seq=status.head_seq,
                   head_hash=status.head_hash,
                   first_break=AuditChainBreak.from_break(status.first_break) if status.first_break else None)
