"""Settling CER purchases under the order's row lock: webhook events, lapsed reservations, refunds, reconciliation.

The webhook finds the order by the metadata's order id, never by the intent id, so a delivery
that overtakes step 3 (neutrality/market/purchases.py) still settles. A delivery whose order is
not visible (yet) is recorded as `deferred` and answered 503, so Stripe redelivers it; localstripe
never redelivers, so the reconcile sweep asks Stripe for the intent's state and settles it. Every
event id handled is recorded in `payment_events` in the transaction of its effect: a duplicate
changes nothing.

Every state change happens under the order's row lock and is guarded by the order's status, so
late, repeated or out-of-order deliveries and the sweeps change nothing twice. Money is never
kept without tonnes: a payment for an order whose reservation lapsed re-reserves from the offer if
it still has the tonnes (then delivers), otherwise the order becomes `paid` (refund due) and is
refunded through Stripe, with an idempotency key, by the webhook right away or the sweep later.

Lock order everywhere: order row -> offer row -> blocks (buying: offer row -> blocks)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import Clock
from neutrality.cers import blocks
from neutrality.cers.models import BlockState, MoveKind
from neutrality.market.models import OfferStatus, OrderStatus, PaymentEvent, PurchaseOrder
from neutrality.market.offers import lock_offer
from neutrality.market.payments import (
    Intent,
    PaymentProviderUnavailable,
    PaymentRefused,
    Payments,
)

log = logging.getLogger("tanpuhui.market")

# how long an event whose order is not visible is retried before it is set aside for a person
UNKNOWN_ORDER_AFTER = timedelta(hours=1)

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
CANCELED = "payment_intent.canceled"

# event outcomes recorded in payment_events
DEFERRED = "deferred"  # the order was not visible: answered 503, reconciled later
UNKNOWN_ORDER = "unknown_order"  # still no order after UNKNOWN_ORDER_AFTER: a person looks
PROCESSING = "processing"


async def cancel_intent_quietly(payments: Payments | None, intent_id: str, order_id: uuid.UUID) -> None:
    """Best effort: cancel an intent nobody should pay any more. If it was paid after all, its
    webhook takes the late-payment path; if the provider is down, nobody holds its secret."""
    if payments is None:
        return
    try:
        await payments.cancel_intent(intent_id, order_id=order_id)
    except PaymentProviderUnavailable:
        log.info("could not cancel a payment intent now", extra={"order_id": str(order_id)})


# --- settlement (all under the order's row lock) ---------------------------------------------------


async def lock_order(session: AsyncSession, order_id: uuid.UUID) -> PurchaseOrder | None:
    """The order's row, locked until commit and read afresh: every settlement step runs under it."""
    return (await session.execute(select(PurchaseOrder).where(PurchaseOrder.id == order_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one_or_none()


async def release_order(session: AsyncSession, clock: Clock, order: PurchaseOrder, status: OrderStatus,
                        reason: str) -> None:
    """The reserved tonnes go back to the seller's held blocks and to the offer."""
    now = clock.now()
    offer = await lock_offer(session, order.offer_id)
    if order.holds_reservation:
        await blocks.move(session=session, clock=clock, kind=MoveKind.RELEASE, holder_id=order.seller_id,
                          from_state=BlockState.RESERVED, to_state=BlockState.HELD, quantity=order.quantity,
                          project_id=order.project_id, vintage=order.vintage, order_id=order.id,
                          reference_kind="order", reference_id=order.id)
        offer.quantity_available += order.quantity
        offer.updated_at = now
        order.holds_reservation = False
    order.status, order.closed_at, order.status_reason = status.value, now, reason
    await session.flush()


async def _deliver(session: AsyncSession, clock: Clock, order: PurchaseOrder, reason: str | None = None) -> None:
    """The reserved tonnes move to the buyer's CER account."""
    now = clock.now()
    await blocks.move(session=session, clock=clock, kind=MoveKind.DELIVER, holder_id=order.seller_id,
                      from_state=BlockState.RESERVED, to_state=BlockState.HELD, to_holder_id=order.buyer_id,
                      quantity=order.quantity, project_id=order.project_id, vintage=order.vintage,
                      order_id=order.id, reference_kind="order", reference_id=order.id)
    order.holds_reservation = False
    order.status, order.closed_at, order.status_reason = OrderStatus.DELIVERED.value, now, reason
    order.paid_at = order.paid_at or now
    await session.flush()


async def _reserve_again(session: AsyncSession, clock: Clock, order: PurchaseOrder) -> bool:
    """For a payment that came after the reservation lapsed: take the tonnes from the offer again
    if it is still on sale and has them (and the seller still holds them)."""
    offer = await lock_offer(session, order.offer_id)
    if offer is None or offer.status != OfferStatus.ACTIVE.value or offer.quantity_available < order.quantity:
        return False
    try:
        async with session.begin_nested():
            await blocks.move(session=session, clock=clock, kind=MoveKind.RESERVE, holder_id=order.seller_id,
                              from_state=BlockState.HELD, to_state=BlockState.RESERVED, quantity=order.quantity,
                              project_id=order.project_id, vintage=order.vintage, reference_kind="order",
                              reference_id=order.id, set_order_id=order.id)
    except blocks.InsufficientTonnes:
        await session.refresh(order)
        await session.refresh(offer)
        return False
    offer.quantity_available -= order.quantity
    offer.updated_at = clock.now()
    order.holds_reservation = True
    await session.flush()
    return True


@dataclass(frozen=True)
class FollowUp:
    """What to ask Stripe once the transaction has committed."""

    refund_order: uuid.UUID | None = None
    cancel_intent: str | None = None
    refund_stray_intent: str | None = None


async def _apply(session: AsyncSession, clock: Clock, order: PurchaseOrder, event_type: str,
                 intent: Intent) -> tuple[str, FollowUp]:
    """One payment event on one locked order; the order's status guards every transition."""
    now = clock.now()
    if order.payment_intent_id is None:
        order.payment_intent_id = intent.id  # the delivery overtook step 3
    elif order.payment_intent_id != intent.id:
        if event_type == SUCCEEDED:
            log.error("a second payment intent of an order was paid; refunding it", extra={"order_id": str(order.id)})
            return "stray_intent_refund", FollowUp(refund_stray_intent=intent.id)
        return "stray_intent", FollowUp()
    status = OrderStatus(order.status)
    if event_type == SUCCEEDED:
        if status not in (OrderStatus.AWAITING_PAYMENT, OrderStatus.EXPIRED, OrderStatus.CANCELED):
            return "no_change", FollowUp()
        # checked before any tonnes move, on time or late: tonnes are delivered only for the
        # order's exact amount; anything else is refunded whole and the buyer buys again
        if intent.amount != order.amount_fen or intent.currency.lower() != order.currency:
            log.error("payment amount differs from the order; refunding", extra={"order_id": str(order.id)})
            if status is OrderStatus.AWAITING_PAYMENT:
                await release_order(session, clock, order, OrderStatus.PAID, "refund due: the amount paid differs")
            else:
                order.status = OrderStatus.PAID.value
                order.status_reason = "refund due: the amount paid differs (paid after the reservation lapsed)"
                await session.flush()
            order.paid_at, order.closed_at = now, None
            return "refund_due", FollowUp(refund_order=order.id)
        if status is OrderStatus.AWAITING_PAYMENT:
            await _deliver(session, clock, order)
            return "delivered", FollowUp()
        if status in (OrderStatus.EXPIRED, OrderStatus.CANCELED):
            order.paid_at = now
            if await _reserve_again(session, clock, order):
                await _deliver(session, clock, order, "paid after the reservation lapsed; the tonnes were reserved again")
                return "delivered_late", FollowUp()
            order.status = OrderStatus.PAID.value
            order.status_reason = "paid after the reservation lapsed and the offer has no tonnes left: refund due"
            order.closed_at = None
            await session.flush()
            return "refund_due", FollowUp(refund_order=order.id)
    # failed or canceled: only an order still waiting for its payment lets its tonnes go
    if status is OrderStatus.AWAITING_PAYMENT:
        if event_type == FAILED:
            reason = f"payment failed ({intent.failure_code})" if intent.failure_code else "payment failed"
            await release_order(session, clock, order, OrderStatus.CANCELED, reason)
            # the buyer starts again with a new purchase; this intent must not be paid later
            return "released", FollowUp(cancel_intent=intent.id)
        await release_order(session, clock, order, OrderStatus.CANCELED, "payment canceled")
        return "released", FollowUp()
    return "no_change", FollowUp()


@dataclass(frozen=True)
class EventResult:
    outcome: str
    retry: bool = False  # answer non-2xx, so that Stripe delivers it again
    order_id: uuid.UUID | None = None


async def _claim_event(session: AsyncSession, clock: Clock, event_id: str, event_type: str, intent: Intent
                       ) -> tuple[str | None, datetime]:
    """Insert the event as ours (a concurrent duplicate waits on its key until we commit), or lock
    the row it already has. Returns (earlier outcome or None, first seen)."""
    now = clock.now()
    inserted = (await session.execute(
        insert(PaymentEvent).values(event_id=event_id, type=event_type, payment_intent_id=intent.id,
                                    order_id=intent.order_id, outcome=PROCESSING, received_at=now)
        .on_conflict_do_nothing().returning(PaymentEvent.event_id))).scalar_one_or_none()
    if inserted is not None:
        return None, now
    row = (await session.execute(select(PaymentEvent.outcome, PaymentEvent.received_at)
                                 .where(PaymentEvent.event_id == event_id).with_for_update())).one()
    return row.outcome, row.received_at


async def _set_outcome(session: AsyncSession, event_id: str, outcome: str, order_id: uuid.UUID | None) -> None:
    await session.execute(PaymentEvent.__table__.update().where(PaymentEvent.event_id == event_id)
                          .values(outcome=outcome, order_id=order_id))


async def handle_payment_event(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                               payments: Payments | None, event_id: str, event_type: str,
                               intent: Intent) -> EventResult:
    """Apply one verified Stripe event, once. Events of other types, or for intents that are not
    our orders', are recorded as ignored."""
    order_id = intent.order_id
    async with session_factory() as session:
        async with session.begin():
            earlier, first_seen = await _claim_event(session, clock, event_id, event_type, intent)
            if earlier is not None and earlier != DEFERRED:
                return EventResult("duplicate", order_id=order_id)
            if event_type not in (SUCCEEDED, FAILED, CANCELED) or order_id is None:
                await _set_outcome(session, event_id, "ignored", order_id)
                return EventResult("ignored")
            order = await lock_order(session, order_id)
            if order is None:
                lost = clock.now() - first_seen >= UNKNOWN_ORDER_AFTER
                await _set_outcome(session, event_id, UNKNOWN_ORDER if lost else DEFERRED, order_id)
                if lost:
                    log.error("payment event for an order that never appeared", extra={"event_id": event_id})
                else:
                    log.warning("payment event before its order is visible; deferred", extra={"event_id": event_id})
                return EventResult(UNKNOWN_ORDER if lost else DEFERRED, retry=not lost, order_id=order_id)
            outcome, follow_up = await _apply(session, clock, order, event_type, intent)
            await _set_outcome(session, event_id, outcome, order_id)
    log.info("payment event", extra={"event_id": event_id, "type": event_type, "outcome": outcome,
                                     "order_id": str(order_id)})
    await _follow_up(session_factory=session_factory, clock=clock, payments=payments, order_id=order_id,
                     follow_up=follow_up)
    return EventResult(outcome, order_id=order_id)


async def _follow_up(*, session_factory, clock: Clock, payments: Payments | None, order_id: uuid.UUID,
                     follow_up: FollowUp) -> None:
    if payments is None:
        return
    if follow_up.cancel_intent:
        await cancel_intent_quietly(payments, follow_up.cancel_intent, order_id)
    if follow_up.refund_stray_intent:
        try:
            await payments.refund(follow_up.refund_stray_intent, order_id=order_id, reason="second payment of an order")
        except (PaymentProviderUnavailable, PaymentRefused):
            log.error("could not refund a second payment of an order", extra={"order_id": str(order_id)})
    if follow_up.refund_order:
        try:
            await settle_refund(session_factory=session_factory, clock=clock, payments=payments, order_id=order_id)
        except (PaymentProviderUnavailable, PaymentRefused):
            log.warning("refund not possible now; the sweep retries it", extra={"order_id": str(order_id)})


async def settle_refund(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock, payments: Payments,
                        order_id: uuid.UUID) -> bool:
    """Refund a paid order that got no tonnes. The order's row stays locked during the call to
    Stripe, so the webhook and the sweep never refund it twice; the refund is found again by the
    order id if a crash came between Stripe's answer and the commit. True if refunded now."""
    async with session_factory() as session:
        async with session.begin():
            order = await lock_order(session, order_id)
            if order is None or order.status != OrderStatus.PAID.value or order.holds_reservation:
                return False
            refund_id = await payments.refund(order.payment_intent_id, order_id=order.id,
                                              reason=order.status_reason or "refund due")
            now = clock.now()
            order.refund_id = refund_id
            order.status, order.closed_at = OrderStatus.REFUNDED.value, now
            order.status_reason = (order.status_reason or "").replace("refund due", "refunded", 1) or "refunded"
    log.info("order refunded", extra={"order_id": str(order_id)})
    return True


# --- sweeps ------------------------------------------------------------------------------------------


async def expire_lapsed_orders(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                               payments: Payments | None = None, batch_size: int = 100) -> int:
    """Release the tonnes of orders not paid within their reservation (SKIP LOCKED batches, so
    sweeps and webhooks never wait on each other), then cancel their intents at Stripe (best
    effort: a payment that still gets through takes the late-payment path)."""
    expired = 0
    while True:
        to_cancel: list[tuple[str, uuid.UUID]] = []
        async with session_factory() as session:
            async with session.begin():
                orders = (await session.scalars(
                    select(PurchaseOrder).where(PurchaseOrder.status == OrderStatus.AWAITING_PAYMENT.value,
                                                PurchaseOrder.reserved_until <= clock.now())
                    .order_by(PurchaseOrder.reserved_until).limit(batch_size)
                    .with_for_update(skip_locked=True).execution_options(populate_existing=True))).all()
                for order in orders:
                    await release_order(session, clock, order, OrderStatus.EXPIRED,
                                        "the reservation lapsed before payment")
                    if order.payment_intent_id:
                        to_cancel.append((order.payment_intent_id, order.id))
        expired += len(orders)
        for intent_id, order_id in to_cancel:
            await cancel_intent_quietly(payments, intent_id, order_id)
        if len(orders) < batch_size:
            if expired:
                log.info("cer reservations lapsed", extra={"count": expired})
            return expired


@dataclass(frozen=True)
class ReconcileReport:
    events_settled: int
    events_unknown: int
    refunds: int


_FROM_STATUS = {"succeeded": SUCCEEDED, "canceled": CANCELED}


async def reconcile_payments(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock,
                             payments: Payments | None, batch_size: int = 100) -> ReconcileReport:
    """What webhooks may have left behind: deferred events (asking Stripe for the intent's state)
    and refunds that are due but did not go through."""
    settled = unknown = refunds = 0
    if payments is None:
        return ReconcileReport(0, 0, 0)
    async with session_factory() as session:
        deferred = (await session.execute(
            select(PaymentEvent.event_id, PaymentEvent.type, PaymentEvent.payment_intent_id, PaymentEvent.received_at)
            .where(PaymentEvent.outcome == DEFERRED).order_by(PaymentEvent.received_at).limit(batch_size))).all()
        due = (await session.scalars(select(PurchaseOrder.id).where(PurchaseOrder.status == OrderStatus.PAID.value)
                                     .order_by(PurchaseOrder.paid_at).limit(batch_size))).all()
    for row in deferred:
        try:
            intent = await payments.retrieve_intent(row.payment_intent_id) if row.payment_intent_id else None
        except PaymentProviderUnavailable:
            break
        except PaymentRefused:
            intent = None
        if intent is None or intent.order_id is None:
            if clock.now() - row.received_at >= UNKNOWN_ORDER_AFTER:
                async with session_factory() as session:
                    async with session.begin():
                        await session.execute(PaymentEvent.__table__.update().where(
                            PaymentEvent.event_id == row.event_id, PaymentEvent.outcome == DEFERRED)
                            .values(outcome=UNKNOWN_ORDER))
                log.error("payment event without a known intent or order", extra={"event_id": row.event_id})
                unknown += 1
            continue
        # the intent's state now is the truth, whatever the deferred event said
        event_type = _FROM_STATUS.get(intent.status)
        if event_type is None and intent.status == "requires_payment_method" and intent.failure_code:
            event_type = FAILED
        if event_type is None:
            continue  # not final yet (processing, being confirmed): ask again next time
        result = await handle_payment_event(session_factory=session_factory, clock=clock, payments=payments,
                                            event_id=row.event_id, event_type=event_type, intent=intent)
        if result.outcome == UNKNOWN_ORDER:
            unknown += 1
        elif result.outcome != DEFERRED:
            settled += 1
    for order_id in due:
        try:
            refunds += await settle_refund(session_factory=session_factory, clock=clock, payments=payments,
                                           order_id=order_id)
        except PaymentProviderUnavailable:
            break
        except PaymentRefused:
            log.error("the payment provider refused a due refund", extra={"order_id": str(order_id)})
    return ReconcileReport(settled, unknown, refunds)

