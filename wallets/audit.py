"""Totals and the audit (Measures art. 20-23): issued = outstanding + held + cancelled (注销 after
use) + expired, for the platform and per reporting operator, and the audit that recomputes every
wallet's and lot's counters from the append-only journal and reports any difference. Reads only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from core.bulk import driver


@dataclass(frozen=True)
class Totals:
    issued: int
    outstanding: int
    held: int
    cancelled: int
    expired: int

    @property
    def reconciles(self) -> bool:
        return self.issued == self.outstanding + self.held + self.cancelled + self.expired


# the journal's sums by kind: the one place they are written (platform totals, per operator, audit)
_JOURNAL_SUMS = """
       coalesce(sum(e.points) FILTER (WHERE e.kind = 'credit'), 0)::bigint AS credit,
       coalesce(sum(e.points) FILTER (WHERE e.kind = 'hold'), 0)::bigint AS hold,
       coalesce(sum(e.points) FILTER (WHERE e.kind = 'release'), 0)::bigint AS release,
       coalesce(sum(e.points) FILTER (WHERE e.kind = 'cancel'), 0)::bigint AS cancel,
       coalesce(sum(e.points) FILTER (WHERE e.kind = 'expire'), 0)::bigint AS expire"""

_JOURNAL_TOTALS = f"SELECT {_JOURNAL_SUMS} FROM wallet_entries e"

_JOURNAL_TOTALS_BY_OPERATOR = (
    f"SELECT l.operator_account_id AS operator, {_JOURNAL_SUMS}"
    " FROM wallet_entries e JOIN point_lots l ON l.id = e.lot_id GROUP BY 1 ORDER BY 1")


def totals_from_journal(row) -> Totals:
    held = row["hold"] - row["release"] - row["cancel"]
    outstanding = row["credit"] - row["hold"] + row["release"] - row["expire"]
    return Totals(issued=row["credit"], outstanding=outstanding, held=held, cancelled=row["cancel"],
                  expired=row["expire"])


async def totals(*, session: AsyncSession) -> Totals:
    """Platform totals from the wallets' counters (cheap), cancelled and expired from the journal."""
    conn = await driver(session)
    journal = await conn.fetchrow(_JOURNAL_TOTALS)
    wallets = await conn.fetchrow(
        "SELECT coalesce(sum(available_points), 0)::bigint AS available, coalesce(sum(held_points), 0)::bigint AS held,"
        " coalesce(sum(lifetime_points), 0)::bigint AS issued FROM wallets")
    return Totals(issued=wallets["issued"], outstanding=wallets["available"], held=wallets["held"],
                  cancelled=journal["cancel"], expired=journal["expire"])



async def totals_by_operator(*, session: AsyncSession) -> list[tuple[uuid.UUID, Totals]]:
    """issued = outstanding + held + cancelled + expired, per reporting operator, from the journal."""
    rows = await (await driver(session)).fetch(_JOURNAL_TOTALS_BY_OPERATOR)
    return [(r["operator"], totals_from_journal(r)) for r in rows]


@dataclass(frozen=True)
class Mismatch:
    subject: str  # "wallet" | "lot" | "totals"
    id: str
    field: str
    recorded: int
    recomputed: int


@dataclass(frozen=True)
class Audit:
    totals: Totals
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.totals.reconciles


# what the journal recomputes, per subject: its table and key, the journal's column naming it, and
# its counters (field, column) in the order of _JOURNAL_EFFECT: usable, held, credited
_RECOMPUTED = (
    ("wallet", "wallets", "account_id", "wallet_id",
     (("available", "available_points"), ("held", "held_points"), ("issued", "lifetime_points"))),
    ("lot", "point_lots", "id", "lot_id",
     (("remaining", "points_remaining"), ("held", "points_held"), ("credited", "points_credited"))),
)
_JOURNAL_EFFECT = (
    "sum(CASE kind WHEN 'credit' THEN points WHEN 'hold' THEN -points WHEN 'release' THEN points"
    " WHEN 'expire' THEN -points ELSE 0 END)",
    "sum(CASE kind WHEN 'hold' THEN points WHEN 'release' THEN -points WHEN 'cancel' THEN -points ELSE 0 END)",
    "sum(CASE kind WHEN 'credit' THEN points ELSE 0 END)",
)


def _mismatches_sql(table: str, key: str, journal_key: str, counters: tuple) -> str:
    """The subject's rows whose counters differ from the journal's, each counter recorded and recomputed."""
    effects = ", ".join(f"{effect} AS j{i}" for i, effect in enumerate(_JOURNAL_EFFECT))
    columns = ", ".join(f"t.{column} AS recorded{i}, coalesce(j.j{i}, 0)::bigint AS recomputed{i}"
                        for i, (_, column) in enumerate(counters))
    differs = " OR ".join(f"t.{column} <> coalesce(j.j{i}, 0)" for i, (_, column) in enumerate(counters))
    return (f"WITH j AS (SELECT {journal_key} AS k, {effects} FROM wallet_entries GROUP BY {journal_key})"
            f" SELECT t.{key} AS id, {columns} FROM {table} t LEFT JOIN j ON j.k = t.{key} WHERE {differs} LIMIT $1")


_MISMATCHES = [(subject, _mismatches_sql(table, key, journal_key, counters), [name for name, _ in counters])
               for subject, table, key, journal_key, counters in _RECOMPUTED]


async def ledger_audit(*, session: AsyncSession, limit: int = 100) -> Audit:
    """Recompute every wallet and lot from the journal and compare with their counters."""
    conn = await driver(session)
    journal = totals_from_journal(await conn.fetchrow(_JOURNAL_TOTALS))
    mismatches: list[Mismatch] = []
    for subject, sql, names in _MISMATCHES:
        for r in await conn.fetch(sql, limit):
            for i, name in enumerate(names):
                if r[f"recorded{i}"] != r[f"recomputed{i}"]:
                    mismatches.append(Mismatch(subject, str(r["id"]), name, r[f"recorded{i}"], r[f"recomputed{i}"]))
    recorded = await totals(session=session)
    for name in ("issued", "outstanding", "held", "cancelled", "expired"):
        if getattr(recorded, name) != getattr(journal, name):
            mismatches.append(Mismatch("totals", "platform", name, getattr(recorded, name), getattr(journal, name)))
    return Audit(totals=journal, mismatches=mismatches)
