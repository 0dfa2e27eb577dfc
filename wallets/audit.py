"""Totals and the audit (Measures art. 20-22): issued = outstanding + held + cancelled (注销 after
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


async def ledger_audit(*, session: AsyncSession, limit: int = 100) -> Audit:
    """Recompute every wallet and lot from the journal and compare with their counters."""
    conn = await driver(session)
    journal = totals_from_journal(await conn.fetchrow(_JOURNAL_TOTALS))
    mismatches: list[Mismatch] = []
    wallet_rows = await conn.fetch(
        """
        WITH j AS (
          SELECT wallet_id,
                 sum(CASE kind WHEN 'credit' THEN points WHEN 'hold' THEN -points WHEN 'release' THEN points
                               WHEN 'expire' THEN -points ELSE 0 END) AS available,
                 sum(CASE kind WHEN 'hold' THEN points WHEN 'release' THEN -points WHEN 'cancel' THEN -points
                               ELSE 0 END) AS held,
                 sum(CASE kind WHEN 'credit' THEN points ELSE 0 END) AS issued
          FROM wallet_entries GROUP BY wallet_id)
        SELECT w.account_id, w.available_points, w.held_points, w.lifetime_points,
               coalesce(j.available, 0)::bigint AS j_available, coalesce(j.held, 0)::bigint AS j_held,
               coalesce(j.issued, 0)::bigint AS j_issued
        FROM wallets w LEFT JOIN j ON j.wallet_id = w.account_id
        WHERE w.available_points <> coalesce(j.available, 0) OR w.held_points <> coalesce(j.held, 0)
           OR w.lifetime_points <> coalesce(j.issued, 0)
        LIMIT $1
        """, limit)
    for r in wallet_rows:
        for name, recorded, recomputed in (("available", r["available_points"], r["j_available"]),
                                           ("held", r["held_points"], r["j_held"]),
                                           ("issued", r["lifetime_points"], r["j_issued"])):
            if recorded != recomputed:
                mismatches.append(Mismatch("wallet", str(r["account_id"]), name, recorded, recomputed))
    lot_rows = await conn.fetch(
        """
        WITH j AS (
          SELECT lot_id,
                 sum(CASE kind WHEN 'credit' THEN points WHEN 'hold' THEN -points WHEN 'release' THEN points
                               WHEN 'expire' THEN -points ELSE 0 END) AS remaining,
                 sum(CASE kind WHEN 'hold' THEN points WHEN 'release' THEN -points WHEN 'cancel' THEN -points
                               ELSE 0 END) AS held,
                 sum(CASE kind WHEN 'credit' THEN points ELSE 0 END) AS credited
          FROM wallet_entries GROUP BY lot_id)
        SELECT l.id, l.points_remaining, l.points_held, l.points_credited,
               coalesce(j.remaining, 0)::bigint AS j_remaining, coalesce(j.held, 0)::bigint AS j_held,
               coalesce(j.credited, 0)::bigint AS j_credited
        FROM point_lots l LEFT JOIN j ON j.lot_id = l.id
        WHERE l.points_remaining <> coalesce(j.remaining, 0) OR l.points_held <> coalesce(j.held, 0)
           OR l.points_credited <> coalesce(j.credited, 0)
        LIMIT $1
        """, limit)
    for r in lot_rows:
        for name, recorded, recomputed in (("remaining", r["points_remaining"], r["j_remaining"]),
                                           ("held", r["points_held"], r["j_held"]),
                                           ("credited", r["points_credited"], r["j_credited"])):
            if recorded != recomputed:
                mismatches.append(Mismatch("lot", str(r["id"]), name, recorded, recomputed))
    recorded = await totals(session=session)
    for name in ("issued", "outstanding", "held", "cancelled", "expired"):
        if getattr(recorded, name) != getattr(journal, name):
            mismatches.append(Mismatch("totals", "platform", name, getattr(recorded, name), getattr(journal, name)))
    return Audit(totals=journal, mismatches=mismatches)
