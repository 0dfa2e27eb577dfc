"""Crediting points (Measures art. 20-21): credits go into day lots, one lot per wallet, issue
date, expiry and reporting operator, so every point stays attributable to its operator.

Operators cannot debit (art. 22): crediting is the only thing an operator's reports do to a
wallet. Points leave a wallet only by its owner's hold (wallets/hold.py, for a mall redemption),
that hold's cancellation (注销) after use (wallets/post.py) and expiry (wallets/expire.py); there
is no debit and no transfer between wallets (art. 22-23).

Lock order: the caller locks the wallets first (wallets.lock.lock_wallets, ascending id), then
apply_credits writes their lots."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from math import gcd

from sqlalchemy.ext.asyncio import AsyncSession

from core.bulk import driver
from core.clock import Clock


@dataclass(frozen=True)
class Fraction:
    """A non-negative fraction of a point, kept exact (no floats)."""

    num: int
    den: int

    def plus(self, num: int, den: int) -> "Fraction":
        n, d = self.num * den + num * self.den, self.den * den
        g = gcd(n, d) or 1
        return Fraction(n // g, d // g)

    def split(self) -> tuple[int, "Fraction"]:
        whole, rest = divmod(self.num, self.den)
        return whole, Fraction(rest, self.den if rest else 1)


@dataclass(frozen=True)
class Credit:
    wallet_id: uuid.UUID
    points: int
    reduction_mg: int
    issue_date: date
    expires_at: datetime
    report_row_id: uuid.UUID
    rule_id: uuid.UUID
    operator_id: uuid.UUID


async def apply_credits(
    *, session: AsyncSession, clock: Clock, credits: list[Credit], remainders: dict[uuid.UUID, Fraction],
    reduction_without_points: dict[uuid.UUID, int] | None = None,
    uncredited_reduction: dict[uuid.UUID, int] | None = None,
) -> dict[uuid.UUID, uuid.UUID]:
    """Write credits set-based: upsert the day lots, append one credit entry per report, update
    the wallets (balance, lifetime totals, carried remainder). Wallets must be locked by the
    caller (lock_wallets). Returns report row id -> lot id.

    A credit of 0 points (a fraction carried over) still records its reduction on the wallet.
    Two lifetime reductions: credited (what the points were earned for, with those fractions) and
    reported (all the CO2e the reports avoided: credited plus `uncredited_reduction`, the part
    over a daily cap)."""
    now = clock.now()
    conn = await driver(session)
    lot_totals: dict[tuple, list[int]] = {}
    for c in credits:
        if c.points <= 0:
            continue
        key = (c.wallet_id, c.issue_date, c.expires_at, c.operator_id)
        totals = lot_totals.setdefault(key, [0, 0])
        totals[0] += c.points
        totals[1] += c.reduction_mg
    lot_ids: dict[tuple, uuid.UUID] = {}
    if lot_totals:
        keys = sorted(lot_totals)
        rows = await conn.fetch(
            "INSERT INTO point_lots AS l (id, wallet_id, issue_date, expires_at, operator_account_id, points_credited,"
            " points_remaining, points_held, reduction_mg, created_at)"
            " SELECT gen_random_uuid(), w, d, e, o, p, p, 0, r, $7"
            " FROM unnest($1::uuid[], $2::date[], $3::timestamptz[], $4::uuid[], $5::bigint[], $6::bigint[])"
            " AS t(w, d, e, o, p, r)"
            " ON CONFLICT (wallet_id, issue_date, expires_at, operator_account_id) DO UPDATE SET"
            " points_credited = l.points_credited + EXCLUDED.points_credited,"
            " points_remaining = l.points_remaining + EXCLUDED.points_remaining,"
            " reduction_mg = l.reduction_mg + EXCLUDED.reduction_mg"
            " RETURNING id, wallet_id, issue_date, expires_at, operator_account_id",
            [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys],
            [lot_totals[k][0] for k in keys], [lot_totals[k][1] for k in keys], now,
        )
        lot_ids = {(r["wallet_id"], r["issue_date"], r["expires_at"], r["operator_account_id"]): r["id"] for r in rows}

    by_report: dict[uuid.UUID, uuid.UUID] = {}
    entries = []
    for c in credits:
        if c.points <= 0:
            continue
        lot_id = lot_ids[(c.wallet_id, c.issue_date, c.expires_at, c.operator_id)]
        by_report[c.report_row_id] = lot_id
        entries.append((c.wallet_id, lot_id, c.points, c.reduction_mg, c.report_row_id, c.rule_id))
    if entries:
        columns = list(zip(*entries))
        await conn.execute(
            "INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at, report_id, rule_id)"
            " SELECT gen_random_uuid(), w, l, 'credit', p, r, $7, rep, rul"
            " FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::uuid[], $6::uuid[])"
            " AS t(w, l, p, r, rep, rul)",
            list(columns[0]), list(columns[1]), list(columns[2]), list(columns[3]), list(columns[4]),
            list(columns[5]), now,
        )

    # per wallet: points, credited mg, uncredited mg
    wallet_points: dict[uuid.UUID, list[int]] = {w: [0, 0, 0] for w in remainders}
    for c in credits:
        totals = wallet_points.setdefault(c.wallet_id, [0, 0, 0])
        totals[0] += c.points
        totals[1] += c.reduction_mg
    for wallet_id, mg in (reduction_without_points or {}).items():
        wallet_points.setdefault(wallet_id, [0, 0, 0])[1] += mg
    for wallet_id, mg in (uncredited_reduction or {}).items():
        wallet_points.setdefault(wallet_id, [0, 0, 0])[2] += mg
    if wallet_points:
        ids = sorted(wallet_points)
        await conn.execute(
            "UPDATE wallets SET available_points = available_points + t.p, lifetime_points = lifetime_points + t.p,"
            " lifetime_reduction_mg = lifetime_reduction_mg + t.r,"
            " lifetime_reported_reduction_mg = lifetime_reported_reduction_mg + t.r + t.u,"
            " remainder_num = t.n, remainder_den = t.d"
            " FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])"
            " AS t(w, p, r, n, d, u)"
            " WHERE wallets.account_id = t.w",
            ids, [wallet_points[i][0] for i in ids], [wallet_points[i][1] for i in ids],
            [remainders[i].num for i in ids], [remainders[i].den for i in ids], [wallet_points[i][2] for i in ids],
        )
    return by_report
