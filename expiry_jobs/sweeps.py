"""The sweeps themselves: plain functions over a session factory and a clock, so the worker,
the CLI and the tests run exactly the same code."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mall import service as mall
from neutrality import market
from core.clock import Clock
# the expiry sweep is the ledger's own job (wallets/jobs.py); re-exported for the schedule
from wallets.jobs import SweepReport, expiry_sweep  # noqa: F401

log = logging.getLogger("tanpuhui.sweeps")


async def redemption_timeout_sweep(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock) -> int:
    """Release the points and stock of redemptions not fulfilled within their reservation."""
    expired = await mall.expire_held_redemptions(session_factory=session_factory, clock=clock)
    if expired:
        log.info("redemptions timed out", extra={"count": expired})
    return expired


async def cer_reservation_sweep(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                                payments=None) -> dict:
    """CER purchases: release reservations not paid in time (and cancel their intents at Stripe),
    settle webhook deliveries that came before their order was visible, retry due refunds."""
    expired = await market.expire_lapsed_orders(session_factory=session_factory, clock=clock, payments=payments)
    report = await market.reconcile_payments(session_factory=session_factory, clock=clock, payments=payments)
    if report.events_settled or report.events_unknown or report.refunds:
        log.info("cer payments reconciled", extra={"events": report.events_settled, "unknown": report.events_unknown,
                                                   "refunds": report.refunds})
    return {"expired": expired, "events_settled": report.events_settled, "events_unknown": report.events_unknown,
            "refunds": report.refunds}
