"""Posting a hold: the cancellation (注销) of used points (Measures art. 23). When a redemption is
fulfilled, the points its hold set aside are cancelled for good: they leave the lots' held
counters and the wallet, and a cancel entry per lot records it in the journal.

Crash-safe step order, in one transaction: lock the wallet, the hold, then its lots (soonest-
expiring first: wallets/hold.py settle); the lots; the journal; the wallet; the hold's status."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from core.bulk import driver
from core.clock import Clock
from core.errors import DomainError
from wallets.errors import WalletCode
from wallets.hold import journal, settle
from wallets.models import EntryKind, HoldStatus, PointHold


async def post_hold(*, session: AsyncSession, clock: Clock, hold_id: uuid.UUID,
                    wallet_id: uuid.UUID | None = None) -> tuple[PointHold, list[tuple[uuid.UUID, int]]]:
    """Use the held points: they are cancelled (注销) for good. Returns the lots and amounts
    cancelled. Posting twice changes nothing."""
    hold, draws = await settle(session, hold_id, wallet_id)
    drawn = [(d["lot_id"], d["points"]) for d in draws]
    if hold.status == HoldStatus.POSTED.value:
        return hold, drawn
    if hold.status != HoldStatus.PENDING.value:
        raise DomainError(WalletCode.HOLD_SETTLED, f"This hold was already {hold.status}.", "holdId")
    now = clock.now()
    conn = await driver(session)
    lot_ids, amounts = [d[0] for d in drawn], [d[1] for d in drawn]
    await conn.execute(
        "UPDATE point_lots SET points_held = points_held - t.p"
        " FROM unnest($1::uuid[], $2::bigint[]) AS t(l, p) WHERE point_lots.id = t.l", lot_ids, amounts,
    )
    await journal(conn, hold.wallet_id, lot_ids, amounts, EntryKind.CANCEL, now, hold_id=hold_id)
    await conn.execute("UPDATE wallets SET held_points = held_points - $2 WHERE account_id = $1",
                       hold.wallet_id, hold.points)
    hold.status, hold.settled_at = HoldStatus.POSTED.value, now
    await session.flush()
    return hold, drawn
