"""The sweeps themselves: plain functions over a session factory and a clock, so the worker,
the CLI and the tests run exactly the same code."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mall import service as mall
from core.clock import Clock
# the ledger's and the market's own jobs (wallets/jobs.py, neutrality/market/jobs.py), re-exported for the schedule
from neutrality.market.jobs import cer_reservation_sweep  # noqa: F401
from wallets.jobs import SweepReport, expiry_sweep  # noqa: F401

log = logging.getLogger("tanpuhui.sweeps")


async def redemption_timeout_sweep(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock) -> int:
    """Release the points and stock of redemptions not fulfilled within their reservation."""
    expired = await mall.expire_held_redemptions(session_factory=session_factory, clock=clock)
    if expired:
        log.info("redemptions timed out", extra={"count": expired})
    return expired

