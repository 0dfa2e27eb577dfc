"""The wallet row: created on first need, and locked. This is the one place Python locks a
wallet row; credits, releases, posts and the mall take it here.

Lock order everywhere: wallet row first (ascending id when several), then its lots. That is
what keeps credits, holds, releases and sweeps running at once on one wallet from deadlocking
or losing a point. (The plpgsql functions wallet_place_hold and mall_redeem, and the expiry
sweep's statement in wallets/expire.py, take the same order; the plpgsql functions take a single
wallet through wallets/sql/wallet_lock.sql, the SQL twin of lock_wallets for one row.)"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.bulk import driver
from core.clock import Clock
from wallets.credit import Fraction


@dataclass
class WalletState:
    account_id: uuid.UUID
    available_points: int
    held_points: int
    remainder: Fraction


async def ensure_wallets(*, session: AsyncSession, clock: Clock, account_ids: list[uuid.UUID]) -> None:
    """One wallet per individual, created on first need (sign-up or first credit)."""
    if not account_ids:
        return
    conn = await driver(session)
    await conn.execute(
        "INSERT INTO wallets (account_id, available_points, held_points, lifetime_points, lifetime_reduction_mg,"
        " remainder_num, remainder_den, created_at)"
        " SELECT id, 0, 0, 0, 0, 0, 1, $2 FROM unnest($1::uuid[]) AS id ON CONFLICT DO NOTHING",
        sorted(set(account_ids)), clock.now(),
    )


async def lock_wallets(*, session: AsyncSession, account_ids: list[uuid.UUID]) -> dict[uuid.UUID, WalletState]:
    """Lock wallets in ascending id order (no deadlocks between batches) and read their state."""
    conn = await driver(session)
    rows = await conn.fetch(
        "SELECT account_id, available_points, held_points, remainder_num, remainder_den FROM wallets"
        " WHERE account_id = ANY($1::uuid[]) ORDER BY account_id FOR UPDATE",
        sorted(set(account_ids)),
    )
    return {
        r["account_id"]: WalletState(r["account_id"], r["available_points"], r["held_points"],
                                     Fraction(r["remainder_num"], r["remainder_den"]))
        for r in rows
    }

