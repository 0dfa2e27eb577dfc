"""Expiry (Measures art. 22): lots past their validity (wallets/validity.py: at most 10 years)
leave the wallets, with an expire entry per lot and an expiry run as the cancellation record;
lots about to expire get one notice each, NOTICE_DAYS before.

Lock order: the sweep locks wallet rows (ascending id, skipping those another transaction holds)
before their lots, like every other ledger write. Crash-safe step order: the run is recorded
first, each batch commits on its own (lots, journal, wallets and the run's totals together), the
run is finished last; a rerun finds exactly what is still due."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.bulk import driver
from core.clock import Clock
from wallets.models import ExpiryRun
from wallets.validity import NOTICE_DAYS


_SWEEP_BATCH = """
WITH candidates AS (
    SELECT DISTINCT wallet_id FROM (
        SELECT wallet_id FROM point_lots WHERE points_remaining > 0 AND expires_at <= $1
        ORDER BY expires_at LIMIT $2) c
), wallet_locks AS (
    SELECT account_id FROM wallets WHERE account_id IN (SELECT wallet_id FROM candidates)
    ORDER BY account_id FOR UPDATE SKIP LOCKED
), due AS (
    SELECT l.id, l.wallet_id, l.points_remaining AS pts FROM point_lots l
    WHERE l.wallet_id IN (SELECT account_id FROM wallet_locks) AND l.points_remaining > 0 AND l.expires_at <= $1
    FOR UPDATE OF l
), emptied AS (
    UPDATE point_lots l SET points_remaining = 0 FROM due WHERE l.id = due.id
    RETURNING l.id, l.wallet_id, due.pts
), journal AS (
    INSERT INTO wallet_entries (id, wallet_id, lot_id, kind, points, reduction_mg, at, expiry_run_id)
    SELECT gen_random_uuid(), wallet_id, id, 'expire', pts, 0, $3, $4 FROM emptied
), balances AS (
    UPDATE wallets w SET available_points = w.available_points - s.pts
    FROM (SELECT wallet_id, sum(pts) AS pts FROM emptied GROUP BY wallet_id) s WHERE w.account_id = s.wallet_id
)
SELECT count(*) AS lots, coalesce(sum(pts), 0)::bigint AS points FROM emptied
"""


async def expire_due(
    *, session_factory: async_sessionmaker[AsyncSession], clock: Clock, as_of: datetime, batch_size: int = 5000,
) -> ExpiryRun:
    """Expire every lot past its expiry as of `as_of`: an expire entry per lot, the cancellation
    record (expiry run) with the totals. Each batch commits on its own, so a crash loses at most
    the batch in flight, and a rerun finds exactly what is still due. Wallets locked by another
    worker or a hold in progress are skipped and picked up by the next sweep."""
    run_id = uuid.uuid4()
    async with session_factory() as session:
        async with session.begin():
            session.add(ExpiryRun(id=run_id, as_of=as_of, started_at=clock.now()))
    total_lots = total_points = 0
    while True:
        async with session_factory() as session:
            async with session.begin():
                conn = await driver(session)
                row = await conn.fetchrow(_SWEEP_BATCH, as_of, batch_size, clock.now(), run_id)
                if row["lots"]:
                    await conn.execute(
                        "UPDATE expiry_runs SET lots_expired = lots_expired + $2, points_expired = points_expired + $3"
                        " WHERE id = $1", run_id, row["lots"], row["points"])
        total_lots += row["lots"]
        total_points += row["points"]
        if row["lots"] == 0:
            break
    async with session_factory() as session:
        async with session.begin():
            run = await session.get(ExpiryRun, run_id)
            run.finished_at = clock.now()
    return run


async def issue_expiry_notices(*, session: AsyncSession, clock: Clock, within_days: int = NOTICE_DAYS,
                               as_of: datetime | None = None) -> int:
    """One notice per lot whose usable points expire within `within_days` of `as_of` (default
    now), as the sweep that expired lots as of that time sees them; noticed at the clock's now."""
    now = clock.now()
    moment = as_of or now
    conn = await driver(session)
    status = await conn.execute(
        "INSERT INTO expiry_notices (lot_id, wallet_id, points, expires_at, created_at)"
        " SELECT id, wallet_id, points_remaining, expires_at, $3 FROM point_lots"
        " WHERE points_remaining > 0 AND expires_at > $2 AND expires_at <= $1"
        " ON CONFLICT (lot_id) DO NOTHING",
        moment + timedelta(days=within_days), moment, now,
    )
    return int(status.split()[-1])
