"""Reading wallets (Measures art. 20-22): the owner's summary, lots, points expiring soon,
journal and expiry notices, and an operator's notices for its own users. Reads change nothing.

The long lists (lots, the journal, an operator's notices) are keyset pages (core.keyset) of at
most 100 items; no read drops rows silently."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.models import Entrustment
from core.bulk import driver, read_driver
from core.clock import Clock, business_date
from core.errors import CoreCode, DomainError
from core.keyset import Page, PageItem, check_page_size, decode_cursor, encode_cursor, keyset_page
from wallets.credit import Fraction
from wallets.models import ExpiryNotice, PointLot, WalletEntry


@dataclass(frozen=True)
class WalletSummary:
    account_id: uuid.UUID
    balance: int  # usable now
    held: int
    awaiting_expiry: int  # past expiry, not yet swept: not usable
    lifetime_points: int
    lifetime_reduction_mg: int  # credited: what points were earned for
    remainder: Fraction
    lifetime_reported_reduction_mg: int = 0  # all reported CO2e avoided, capped reductions included


_SUMMARY_SQL = (
    "SELECT w.available_points, w.held_points, w.lifetime_points, w.lifetime_reduction_mg,"
    " w.lifetime_reported_reduction_mg, w.remainder_num,"
    " w.remainder_den, (SELECT coalesce(sum(l.points_remaining), 0) FROM point_lots l WHERE l.wallet_id = w.account_id"
    " AND l.points_remaining > 0 AND l.expires_at <= $2) AS stale FROM wallets w WHERE w.account_id = $1")


async def wallet_summary(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID) -> WalletSummary:
    """One statement: the wallet's counters and its past-expiry points read in one snapshot.
    Straight through asyncpg: the consumer app's hottest read."""
    wallet = await (await read_driver(session)).fetchrow(_SUMMARY_SQL, account_id, clock.now())
    if wallet is None:
        return WalletSummary(account_id, 0, 0, 0, 0, 0, Fraction(0, 1))
    return WalletSummary(account_id, wallet["available_points"] - wallet["stale"], wallet["held_points"],
                         wallet["stale"], wallet["lifetime_points"], wallet["lifetime_reduction_mg"],
                         Fraction(wallet["remainder_num"], wallet["remainder_den"]),
                         wallet["lifetime_reported_reduction_mg"])


@dataclass(frozen=True)
class LotRow:
    id: uuid.UUID
    issue_date: date
    expires_at: datetime
    points_credited: int
    points_remaining: int
    points_held: int
    reduction_mg: int


_LOT_COLUMNS = "id, issue_date, expires_at, points_credited, points_remaining, points_held, reduction_mg"


async def list_lots(*, session: AsyncSession, account_id: uuid.UUID, first: int | None, after: str | None,
                    descending: bool = False, usable_only: bool = False, clock: Clock | None = None) -> Page:
    """A keyset page of the wallet's lots by (expires_at, id), through asyncpg (hot read)."""
    size = check_page_size(first)
    args: list = [account_id]
    where = ["wallet_id = $1"]
    if usable_only and clock is not None:
        args.append(clock.now())
        where.append(f"points_remaining > 0 AND expires_at > ${len(args)}")
    if after is not None:
        expires_at, lot_id = decode_cursor(after, 2, [PointLot.expires_at, PointLot.id])
        args += [expires_at, lot_id]
        where.append(f"(expires_at, id) {'<' if descending else '>'} (${len(args) - 1}, ${len(args)})")
    direction = "DESC" if descending else "ASC"
    rows = await (await read_driver(session)).fetch(
        f"SELECT {_LOT_COLUMNS} FROM point_lots WHERE {' AND '.join(where)}"
        f" ORDER BY expires_at {direction}, id {direction} LIMIT {size + 1}", *args)
    items = [PageItem(cursor=encode_cursor([r["expires_at"], r["id"]]), node=LotRow(*r.values()))
             for r in rows[:size]]
    return Page(items=items, has_next_page=len(rows) > size, has_previous_page=after is not None)


@dataclass(frozen=True)
class ExpiringDay:
    expires_on: date  # the local day the points expire at 00:00; usable through the day before
    points: int
    lots: int


async def expiring_soon(*, session: AsyncSession, clock: Clock, account_id: uuid.UUID, within_days: int) -> list[ExpiringDay]:
    if not 1 <= within_days <= 3660:
        raise DomainError(CoreCode.INVALID, "withinDays is 1 to 3660.", "withinDays")
    now = clock.now()
    rows = await session.execute(
        select(PointLot.expires_at, PointLot.points_remaining).where(
            PointLot.wallet_id == account_id, PointLot.points_remaining > 0, PointLot.expires_at > now,
            PointLot.expires_at <= now + timedelta(days=within_days)).order_by(PointLot.expires_at)
    )
    days: dict[date, ExpiringDay] = {}
    for expires_at, points in rows:
        day = business_date(expires_at)
        current = days.get(day)
        days[day] = ExpiringDay(day, (current.points if current else 0) + points, (current.lots if current else 0) + 1)
    return list(days.values())


async def history(*, session: AsyncSession, account_id: uuid.UUID, first: int | None, after: str | None,
                  kinds: list[str] | None = None) -> Page:
    stmt = select(WalletEntry).where(WalletEntry.wallet_id == account_id)
    if kinds:
        stmt = stmt.where(WalletEntry.kind.in_(kinds))
    return await keyset_page(session, stmt, keys=[WalletEntry.at, WalletEntry.id], first=first, after=after,
                             descending=True)


async def notices_for(*, session: AsyncSession, account_id: uuid.UUID) -> list[ExpiryNotice]:
    rows = await session.execute(
        select(ExpiryNotice).where(ExpiryNotice.wallet_id == account_id).order_by(ExpiryNotice.expires_at))
    return list(rows.scalars())


@dataclass(frozen=True)
class OperatorNotice:
    external_user_id: str  # the operator's own id for the person (its active entrustment)
    points: int
    expires_at: datetime
    noticed_at: datetime


async def operator_expiry_notices(*, session: AsyncSession, operator_id: uuid.UUID, first: int | None,
                                  after: str | None) -> Page[OperatorNotice]:
    """A keyset page, by (expires_at, lot), of the expiry notices of lots this operator's reports
    earned, for people who entrust it now, named by the operator's own user ids (art. 21)."""
    stmt = (
        select(Entrustment.external_user_id, ExpiryNotice.points, ExpiryNotice.expires_at, ExpiryNotice.created_at,
               ExpiryNotice.lot_id)
        .join(PointLot, PointLot.id == ExpiryNotice.lot_id)
        .join(Entrustment, (Entrustment.individual_account_id == PointLot.wallet_id)
              & (Entrustment.operator_account_id == operator_id) & (Entrustment.status == "active"))
        .where(PointLot.operator_account_id == operator_id))
    return await keyset_page(
        session, stmt, keys=[ExpiryNotice.expires_at, ExpiryNotice.lot_id], first=first, after=after,
        node=lambda r: OperatorNotice(r.external_user_id, r.points, r.expires_at, r.created_at))


async def lot_expiries(*, session: AsyncSession, lot_ids: list[uuid.UUID]) -> dict[uuid.UUID, datetime]:
    """Lot id -> its expiry, for answering a report seen before with the lot it was credited to."""
    rows = await (await driver(session)).fetch(
        "SELECT id, expires_at FROM point_lots WHERE id = ANY($1::uuid[])", list(lot_ids))
    return {r["id"]: r["expires_at"] for r in rows}
