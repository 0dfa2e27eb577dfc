"""Releasing a hold (Measures art. 22-23): a redemption withdrawn, declined or timed out gives its
held points back to the very lots they came from, with their original expiry.

Crash-safe step order, in one transaction: lock the wallet, the hold, then its lots (soonest-
expiring first: wallets/hold.py settle); return the points to the lots; journal the release;
expire at once what a lot lost to its expiry meanwhile, journalled; then the wallet's counters and
the hold's status."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from core.bulk import driver
from core.clock import Clock
from core.errors import DomainError
from wallets.errors import WalletCode
from wallets.hold import journal, settle
from wallets.models import EntryKind, HoldStatus, PointHold


async def release_hold(*, session: AsyncSession, clock: Clock, hold_id: uuid.UUID,
                       wallet_id: uuid.UUID | None = None) -> PointHold:
    """Give held points back to the very lots they came from, with their original expiry. Points
    of a lot that expired meanwhile are expired at once. Releasing twice changes nothing."""
    hold, draws = await settle(session, hold_id, wallet_id)
    if hold.status == HoldStatus.VOIDED.value:
        return hold
    if hold.status != HoldStatus.PENDING.value:
        raise DomainError(WalletCode.HOLD_SETTLED, f"This hold was already {hold.status}.", "holdId")
    now = clock.now()
    conn = await driver(session)
    lot_ids, amounts = [d["lot_id"] for d in draws], [d["points"] for d in draws]
    expired = [(d["lot_id"], d["points"]) for d in draws if d["expires_at"] <= now]
    await conn.execute(
        "UPDATE point_lots SET points_held = points_held - t.p, points_remaining = points_remaining + t.p"
        " FROM unnest($1::uuid[], $2::bigint[]) AS t(l, p) WHERE point_lots.id = t.l", lot_ids, amounts,
    )
    await journal(conn, hold.wallet_id, lot_ids, amounts, EntryKind.RELEASE, now, hold_id=hold_id)
    expired_points = sum(p for _, p in expired)
    if expired:
        await conn.execute(
            "UPDATE point_lots SET points_remaining = points_remaining - t.p"
            " FROM unnest($1::uuid[], $2::bigint[]) AS t(l, p) WHERE point_lots.id = t.l",
            [e[0] for e in expired], [e[1] for e in expired],
        )
        await journal(conn, hold.wallet_id, [e[0] for e in expired], [e[1] for e in expired], EntryKind.EXPIRE,
                      now, hold_id=hold_id)
    await conn.execute(
        "UPDATE wallets SET held_points = held_points - $2, available_points = available_points + $2 - $3"
        " WHERE account_id = $1", hold.wallet_id, hold.points, expired_points,
    )
    hold.status, hold.settled_at = HoldStatus.VOIDED.value, now
    await session.flush()
    return hold
