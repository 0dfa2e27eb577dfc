"""Holds (Measures art. 22): the owner's points set aside for a mall redemption, drawn from the
soonest-expiring usable lots first; a hold is then posted (its points cancelled, 注销, after use:
wallets/post.py) or released to the very lots it drew from (wallets/release.py).

The draw rule has one implementation, the plpgsql function wallet_place_hold (wallets/sql/wallet_place_hold.sql),
which mall_redeem also runs; place_hold here calls it. Lock order: wallet row first, then its lots
soonest-expiring first (wallets/lock.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.bulk import driver
from core.clock import Clock
from core.errors import CoreCode, DomainError, NotFound
from wallets.errors import WalletCode
from wallets.lock import lock_wallets
from wallets.models import EntryKind, PointHold


class InsufficientPoints(DomainError):
    code = WalletCode.INSUFFICIENT_POINTS.value


async def place_hold(
    *, session: AsyncSession, clock: Clock, wallet_id: uuid.UUID, hold_id: uuid.UUID, points: int,
    reference: str,
) -> PointHold:
    """Set `points` aside, drawn from the soonest-expiring usable lots first. The hold id is the
    caller's: placing the same hold again returns it; another hold under that id is refused."""
    if points <= 0:
        raise DomainError(CoreCode.INVALID, "A hold is for a positive number of points.", "points")
    conn = await driver(session)
    # the steps run inside PostgreSQL (wallets/sql/wallet_place_hold.sql), one round trip
    outcome = await conn.fetchrow("SELECT code, usable FROM wallet_place_hold($1, $2, $3, $4, $5)",
                                  wallet_id, hold_id, points, reference, clock.now())
    if outcome["code"] == "no_wallet":
        raise InsufficientPoints(message="This wallet has no points.", field="points")
    if outcome["code"] == "conflict":
        raise DomainError(WalletCode.HOLD_ID_CONFLICT, "This hold id is already used for another hold.", "holdId")
    if outcome["code"] == "insufficient":
        raise InsufficientPoints(message=insufficient_message(outcome["usable"], points), field="points")
    return await session.get(PointHold, hold_id)


def insufficient_message(usable: int, needed: int) -> str:
    return f"The wallet has {usable} usable points; {needed} are needed."


async def journal(conn, wallet_id: uuid.UUID, lot_ids: list, amounts: list, kind: EntryKind, at: datetime,
                  *, hold_id: uuid.UUID | None = None, expiry_run_id: uuid.UUID | None = None) -> None:
    """Append one journal entry per lot and amount."""
    await conn.execute(
        "INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at, hold_id, expiry_run_id)"
        " SELECT gen_random_uuid(), $1, l, $2, p, 0, $3, $4, $5 FROM unnest($6::uuid[], $7::bigint[]) AS t(l, p)",
        wallet_id, kind.value, at, hold_id, expiry_run_id, lot_ids, amounts,
    )


async def settle(session: AsyncSession, hold_id: uuid.UUID, wallet_id: uuid.UUID | None) -> tuple[PointHold, list]:
    """The first steps of a release or a post: lock the wallet, then the hold, then the lots it
    drew from (soonest-expiring first). Returns the hold and its draws."""
    hold = await session.get(PointHold, hold_id)
    if hold is None or (wallet_id is not None and hold.wallet_id != wallet_id):
        raise NotFound(message="No such hold.", field="holdId")
    await lock_wallets(session=session, account_ids=[hold.wallet_id])
    await session.refresh(hold, with_for_update=True)
    conn = await driver(session)
    draws = await conn.fetch(
        "SELECT d.lot_id, d.points, l.expires_at FROM hold_draws d JOIN point_lots l ON l.id = d.lot_id"
        " WHERE d.hold_id = $1 ORDER BY l.expires_at, d.lot_id FOR UPDATE OF l", hold_id,
    )
    return hold, list(draws)

