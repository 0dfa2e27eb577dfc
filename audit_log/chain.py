"""The hash chain of the audit log, pure (no database): what an entry's hash covers and how.

Each entry's `hash` is the sha256 (hex) of the canonical JSON of the entry, `prev_hash` included:
keys sorted, no spaces, UTF-8, times as ISO 8601 in UTC, ids as strings. The first entry's
`prev_hash` is GENESIS. Changing any field of any entry, deleting one or reordering them changes a
hash or breaks a link; `verify_links` says where. This format is a contract with every entry ever
written (the migration that chained the old rows uses it too): never change it, add a version."""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping

GENESIS = "0" * 64
FORMAT = 1  # hashed with every entry


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, (date, uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"an audit entry cannot hold a {type(value).__name__}")


def _no_floats(value: Any) -> Any:
    """Floats become their text: JSONB may print a float back differently (1e20), which would
    change the canonical form between writing and verifying. Amounts are integers here anyway."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _no_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_floats(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """`value` as plain JSON data, exactly as it will read back from a JSONB column."""
    if value is None:
        return None
    return _no_floats(json.loads(json.dumps(value, default=_default)))


def canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_default).encode()


def entry_fields(*, seq: int, id: uuid.UUID, at: datetime, actor_account_id: uuid.UUID | None,
                 actor_roles: Iterable[str], action: str, subject_type: str, subject_id: uuid.UUID | None,
                 details: Any, before: Any, after: Any, prev_hash: str) -> dict:
    """What an entry's hash covers: every column but the hash itself."""
    return {
        "format": FORMAT, "seq": seq, "id": str(id), "at": at.astimezone(timezone.utc).isoformat(),
        "actor": str(actor_account_id) if actor_account_id else None, "actor_roles": sorted(actor_roles or []),
        "action": action, "subject_type": subject_type, "subject_id": str(subject_id) if subject_id else None,
        "details": details if details is not None else {}, "before": before, "after": after,
        "prev_hash": prev_hash,
    }


def entry_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


def row_hash(row: Any) -> str:
    """The hash an entry (a row or model with the audit_events columns) should carry."""
    return entry_hash(entry_fields(
        seq=row.seq, id=row.id, at=row.at, actor_account_id=row.actor_account_id, actor_roles=row.actor_roles,
        action=row.action, subject_type=row.subject_type, subject_id=row.subject_id, details=row.details,
        before=row.before, after=row.after, prev_hash=row.prev_hash))


@dataclass(frozen=True)
class ChainBreak:
    """The first link that does not hold. problem: `gap` (an entry is missing: `expected` is the seq
    that should come next, `found` the one that came), `link` (prev_hash is not the previous entry's
    hash), `hash` (the entry's content no longer gives its hash: it was changed), `anchor` (the hash
    differs from one recorded outside the database), `truncated` (an anchored entry is gone)."""

    seq: int
    problem: str
    expected: str
    found: str


class Walker:
    """Checks entries one at a time in seq order, so a verifier can stream them page by page."""

    def __init__(self, anchors: Mapping[int, str] | None = None) -> None:
        self.anchors = dict(anchors or {})
        self.next_seq = 1
        self.prev_hash = GENESIS
        self.entries = 0
        self.broken: ChainBreak | None = None

    def feed(self, row: Any) -> bool:
        """Check one entry; False (and `broken` set) at the first break."""
        if row.seq != self.next_seq:
            self.broken = ChainBreak(self.next_seq, "gap", str(self.next_seq), str(row.seq))
        elif row.prev_hash != self.prev_hash:
            self.broken = ChainBreak(row.seq, "link", self.prev_hash, row.prev_hash)
        elif (computed := row_hash(row)) != row.hash:
            self.broken = ChainBreak(row.seq, "hash", computed, row.hash)
        elif row.seq in self.anchors and self.anchors[row.seq] != row.hash:
            self.broken = ChainBreak(row.seq, "anchor", self.anchors[row.seq], row.hash)
        if self.broken is not None:
            return False
        self.entries += 1
        self.next_seq += 1
        self.prev_hash = row.hash
        return True

    def finish(self) -> ChainBreak | None:
        if self.broken is None:
            beyond = sorted(seq for seq in self.anchors if seq >= self.next_seq)
            if beyond:
                self.broken = ChainBreak(self.next_seq, "truncated", f"entries up to seq {beyond[-1]}",
                                         f"the chain ends at seq {self.next_seq - 1}")
        return self.broken
