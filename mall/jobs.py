"""The mall's scheduled job: redemptions not fulfilled within their reservation time out.

A plain function over a session factory and a clock, so the worker, the CLI and the tests run the
same code. Each timed-out redemption is its own transaction (mall.service.expire_held_redemptions):
its stock goes back and its hold is released to the very lots it drew from (wallets/release.py)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import Clock
from mall.service import expire_held_redemptions

log = logging.getLogger("tanpuhui.sweeps")


async def redemption_timeout_sweep(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock) -> int:
    """Release the points and stock of redemptions not fulfilled within their reservation."""
    expired = await expire_held_redemptions(session_factory=session_factory, clock=clock)
    if expired:
        log.info("redemptions timed out", extra={"count": expired})
    return expired
