"""The CER market's scheduled job: the reservation sweep (lapsed reservations released, payments reconciled).

A plain function over a session factory, a clock and the payment provider, so the worker, the CLI
and the tests run exactly the same code. Step order: release the lapsed reservations first (each
batch commits on its own, then cancels its intents at Stripe), then settle the deferred webhook
events and retry the due refunds (neutrality/market/settlement.py)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import Clock
from neutrality.market import settlement

log = logging.getLogger("tanpuhui.sweeps")


async def cer_reservation_sweep(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                                payments=None) -> dict:
    """CER purchases: release reservations not paid in time (and cancel their intents at Stripe),
    settle webhook deliveries that came before their order was visible, retry due refunds."""
    expired = await settlement.expire_lapsed_orders(session_factory=session_factory, clock=clock, payments=payments)
    report = await settlement.reconcile_payments(session_factory=session_factory, clock=clock, payments=payments)
    if report.events_settled or report.events_unknown or report.refunds:
        log.info("cer payments reconciled", extra={"events": report.events_settled, "unknown": report.events_unknown,
                                                   "refunds": report.refunds})
    return {"expired": expired, "events_settled": report.events_settled, "events_unknown": report.events_unknown,
            "refunds": report.refunds}
