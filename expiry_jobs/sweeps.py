"""The sweeps themselves: plain functions over a session factory and a clock, so the worker,
the CLI and the tests run exactly the same code."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from accounts import ledger
from mall import service as mall
from core.clock import Clock
# the CER reservation sweep is the market's own job (neutrality/market/jobs.py); re-exported for the schedule
from neutrality.market.jobs import cer_reservation_sweep  # noqa: F401

log = logging.getLogger("tanpuhui.sweeps")


@dataclass(frozen=True)
class SweepReport:
    run_id: str
    as_of: datetime
    lots_expired: int
    points_expired: int
    notices_issued: int


async def expiry_sweep(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                       as_of: datetime | None = None, batch_size: int = 5000) -> SweepReport:
    """Expire every lot due as of `as_of` (default now), then notify lots expiring within 30 days
    of that same time (`tanpuhui expire --as-of T` catches up as of T, notices included)."""
    moment = as_of or clock.now()
    run = await ledger.expire_due(session_factory=session_factory, clock=clock, as_of=moment, batch_size=batch_size)
    async with session_factory() as session:
        async with session.begin():
            notices = await ledger.issue_expiry_notices(session=session, clock=clock, as_of=moment)
    log.info("expiry sweep", extra={"run_id": str(run.id), "lots": run.lots_expired, "points": run.points_expired,
                                    "notices": notices})
    return SweepReport(run_id=str(run.id), as_of=moment, lots_expired=run.lots_expired,
                       points_expired=run.points_expired, notices_issued=notices)


async def redemption_timeout_sweep(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock) -> int:
    """Release the points and stock of redemptions not fulfilled within their reservation."""
    expired = await mall.expire_held_redemptions(session_factory=session_factory, clock=clock)
    if expired:
        log.info("redemptions timed out", extra={"count": expired})
    return expired

