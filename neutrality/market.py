"""The CER market (art. 18): offers, purchases paid through Stripe, and their settlement.

A CER holder offers whole tonnes of one project and vintage at a price per tonne in fen. A buyer
(an organisation or an individual, art. 19) buys N tonnes: the tonnes are reserved for the order,
a Stripe PaymentIntent is created, and the signed `payment_intent.succeeded` webhook delivers the
tonnes to the buyer's CER account. Failure, cancellation or a lapsed reservation releases them.

Order of the Stripe call and the database transaction (nothing is lost if the process dies
between any two steps):
1. One transaction reserves: locks the offer, takes the tonnes off it, moves them from the
   seller's held blocks to RESERVED blocks naming the order, inserts the order
   (awaiting_payment, reserved_until), and records the buyer's idempotency key. It commits
   before Stripe is called, so no network call is made while the offer row is locked.
2. The PaymentIntent is created with the order id in its metadata and an idempotency key derived
   from the order id; a crash before this step leaves a reservation without a payment, which the
   time-out sweep releases; a retry (same idempotency key from the buyer) creates the intent now,
   and a retry after a crash during this step gets the same intent back from Stripe.
3. The intent id is written on the order (only if none is there yet) and the client secret goes to
   the buyer, who alone sees it; it is never stored.
The webhook finds the order by the metadata's order id, never by the intent id, so a delivery
that overtakes step 3 still settles. A delivery whose order is not visible (yet) is recorded as
`deferred` and answered 503, so Stripe redelivers it; localstripe never redelivers, so the
reconcile sweep asks Stripe for the intent's state and settles it. Every event id handled is
recorded in `payment_events` in the transaction of its effect: a duplicate changes nothing.

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

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import Clock
from core.errors import DomainError, NotFound
from core.keyset import Page, keyset_page
from core.locks import lock_name
from neutrality import blocks
from neutrality.models import (
    Block,
    BlockState,
    Move,
    MoveKind,
    Offer,
    OfferStatus,
    OrderStatus,
    PaymentEvent,
    Project,
    ProjectStatus,
    PurchaseOrder,
)
from neutrality.payments import (
    Intent,
    PaymentProviderUnavailable,
    PaymentRefused,
    Payments,
)

log = logging.getLogger("tanpuhui.market")

DEFAULT_RESERVATION_MINUTES = 30
MAX_PRICE_PER_TONNE_FEN = 100_000_000  # 1,000,000 yuan a tonne
MAX_TONNES = 10_000_000
CURRENCY = "cny"
# how long an event whose order is not visible is retried before it is set aside for a person
UNKNOWN_ORDER_AFTER = timedelta(hours=1)

SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"
CANCELED = "payment_intent.canceled"

# event outcomes recorded in payment_events
DEFERRED = "deferred"  # the order was not visible: answered 503, reconciled later
UNKNOWN_ORDER = "unknown_order"  # still no order after UNKNOWN_ORDER_AFTER: a person looks
PROCESSING = "processing"


class OfferNotActive(DomainError):
    code = "OFFER_NOT_ACTIVE"


# --- offers ------------------------------------------------------------------------------------------


async def lock_free_tonnes(session: AsyncSession, holder_id: uuid.UUID, project_id: uuid.UUID, vintage: int) -> None:
    """Offering and retiring a holder's free tonnes of one project and vintage take turns."""
    await lock_name(session, f"cer-offer:{holder_id}:{project_id}:{vintage}")


async def free_tonnes(*, session: AsyncSession, holder_id: uuid.UUID, project_id: uuid.UUID, vintage: int) -> int:
    """Held tonnes of one project and vintage not yet promised to an active offer of the holder."""
    size = Block.last_serial - Block.first_serial + 1
    held = await session.scalar(select(func.coalesce(func.sum(size), 0)).where(
        Block.holder_id == holder_id, Block.project_id == project_id, Block.vintage == vintage,
        Block.state == BlockState.HELD.value, Block.ended_at.is_(None)))
    offered = await session.scalar(select(func.coalesce(func.sum(Offer.quantity_available), 0)).where(
        Offer.seller_id == holder_id, Offer.project_id == project_id, Offer.vintage == vintage,
        Offer.status == OfferStatus.ACTIVE.value))
    return int(held) - int(offered)


async def create_offer(*, session: AsyncSession, clock: Clock, seller_id: uuid.UUID, project_id: uuid.UUID,
                       vintage: int, quantity: int, price_per_tonne_fen: int, min_purchase: int = 1) -> Offer:
    """Offer whole tonnes the seller holds and has not offered yet, at a price per tonne in fen."""
    if not 1 <= quantity <= MAX_TONNES:
        raise DomainError("INVALID", f"Offer 1 to {MAX_TONNES:,} whole tonnes.", "quantity")
    if not 1 <= price_per_tonne_fen <= MAX_PRICE_PER_TONNE_FEN:
        raise DomainError("INVALID_PRICE", "The price per tonne is 1 fen to 1,000,000 yuan, in fen.",
                          "pricePerTonneFen")
    if not 1 <= min_purchase <= quantity:
        raise DomainError("INVALID", "The minimum purchase is 1 tonne up to the quantity offered.", "minPurchase")
    project = await session.get(Project, project_id)
    if project is None or project.status != ProjectStatus.FILED.value:
        raise NotFound(message="No filed project has this id.", field="projectId")
    # one offer (or retirement) at a time per seller, project and vintage: the check below stays true
    await lock_free_tonnes(session, seller_id, project_id, vintage)
    free = await free_tonnes(session=session, holder_id=seller_id, project_id=project_id, vintage=vintage)
    if quantity > free:
        raise DomainError("INSUFFICIENT_TONNES",
                          f"You hold {max(free, 0)} tonnes of this project and vintage that are not on offer yet.",
                          "quantity")
    now = clock.now()
    offer = Offer(seller_id=seller_id, project_id=project_id, vintage=vintage, price_per_tonne_fen=price_per_tonne_fen,
                  quantity_offered=quantity, quantity_available=quantity, min_purchase=min_purchase,
                  status=OfferStatus.ACTIVE.value, created_at=now, updated_at=now)
    session.add(offer)
    await session.flush()
    return offer


async def _lock_offer(session: AsyncSession, offer_id: uuid.UUID) -> Offer | None:
    return (await session.execute(select(Offer).where(Offer.id == offer_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one_or_none()


async def withdraw_offer(*, session: AsyncSession, clock: Clock, seller_id: uuid.UUID, offer_id: uuid.UUID) -> Offer:
    """Take an offer off the market. Orders already reserved still settle (or are released)."""
    offer = await _lock_offer(session, offer_id)
    if offer is None or offer.seller_id != seller_id:
        raise NotFound(message="No offer of yours has this id.", field="id")
    if offer.status != OfferStatus.ACTIVE.value:
        raise OfferNotActive(message="This offer is already withdrawn.", field="id")
    offer.status = OfferStatus.WITHDRAWN.value
    offer.updated_at = clock.now()
    await session.flush()
    return offer


@dataclass(frozen=True)
class OfferFilter:
    project_id: uuid.UUID | None = None
    vintage: int | None = None
    max_price_per_tonne_fen: int | None = None
    sort: str = "price_asc"  # price_asc | price_desc | newest


async def browse_offers(*, session: AsyncSession, filters: OfferFilter, first: int | None, after: str | None) -> Page:
    """Active offers with at least their minimum purchase left, in keyset pages."""
    stmt = select(Offer).where(Offer.status == OfferStatus.ACTIVE.value,
                               Offer.quantity_available >= Offer.min_purchase)
    if filters.project_id is not None:
        stmt = stmt.where(Offer.project_id == filters.project_id)
    if filters.vintage is not None:
        stmt = stmt.where(Offer.vintage == filters.vintage)
    if filters.max_price_per_tonne_fen is not None:
        stmt = stmt.where(Offer.price_per_tonne_fen <= filters.max_price_per_tonne_fen)
    if filters.sort == "newest":
        return await keyset_page(session, stmt, keys=[Offer.created_at, Offer.id], first=first, after=after,
                                 descending=True)
    return await keyset_page(session, stmt, keys=[Offer.price_per_tonne_fen, Offer.id], first=first, after=after,
                             descending=filters.sort == "price_desc")


async def get_offer(*, session: AsyncSession, offer_id: uuid.UUID, viewer_id: uuid.UUID | None = None) -> Offer:
    """An active offer (anyone), or any offer of the viewer's own."""
    offer = await session.get(Offer, offer_id)
    if offer is None or (offer.status != OfferStatus.ACTIVE.value and offer.seller_id != viewer_id):
        raise NotFound(message="No such offer.", field="id")
    return offer


async def seller_offers(*, session: AsyncSession, seller_id: uuid.UUID, status: str | None, first: int | None,
                        after: str | None) -> Page:
    stmt = select(Offer).where(Offer.seller_id == seller_id)
    if status:
        stmt = stmt.where(Offer.status == status)
    return await keyset_page(session, stmt, keys=[Offer.created_at, Offer.id], first=first, after=after,
                             descending=True)


async def projects_by_id(*, session: AsyncSession, ids) -> dict[uuid.UUID, Project]:
    ids = list(set(ids))
    if not ids:
        return {}
    return {p.id: p for p in (await session.scalars(select(Project).where(Project.id.in_(ids)))).all()}


# --- buying ------------------------------------------------------------------------------------------


async def reserve_purchase(*, session: AsyncSession, clock: Clock, buyer_id: uuid.UUID, offer_id: uuid.UUID,
                           quantity: int, reservation_minutes: int = DEFAULT_RESERVATION_MINUTES) -> PurchaseOrder:
    """Step 1 of a purchase, in the caller's transaction: the offer gives up `quantity` tonnes, the
    seller's held blocks become RESERVED for the new order, and the order awaits payment."""
    if not 1 <= quantity <= MAX_TONNES:
        raise DomainError("INVALID", "Buy a whole number of tonnes, at least 1.", "quantity")
    offer = await _lock_offer(session, offer_id)
    if offer is None:
        raise NotFound(message="No such offer.", field="offerId")
    if offer.status != OfferStatus.ACTIVE.value:
        raise OfferNotActive(message="This offer is no longer on sale.", field="offerId")
    if offer.seller_id == buyer_id:
        raise DomainError("CANNOT_BUY_OWN_OFFER", "You cannot buy from your own offer.", "offerId")
    if quantity < offer.min_purchase:
        raise DomainError("BELOW_MINIMUM", f"This offer sells at least {offer.min_purchase} tonnes at a time.",
                          "quantity")
    if quantity > offer.quantity_available:
        raise DomainError("INSUFFICIENT_TONNES", f"Only {offer.quantity_available} tonnes are left on this offer.",
                          "quantity")
    now = clock.now()
    order_id = uuid.uuid4()
    try:
        await blocks.move(session=session, clock=clock, kind=MoveKind.RESERVE, holder_id=offer.seller_id,
                          from_state=BlockState.HELD, to_state=BlockState.RESERVED, quantity=quantity,
                          project_id=offer.project_id, vintage=offer.vintage, reference_kind="order",
                          reference_id=order_id, set_order_id=order_id)
    except blocks.InsufficientTonnes:
        # the seller retired or sold tonnes elsewhere since offering (the caller rolls back)
        raise DomainError("INSUFFICIENT_TONNES", "The seller no longer holds enough tonnes for this offer.",
                          "quantity") from None
    offer.quantity_available -= quantity
    offer.updated_at = now
    order = PurchaseOrder(
        id=order_id, buyer_id=buyer_id, offer_id=offer.id, seller_id=offer.seller_id, project_id=offer.project_id,
        vintage=offer.vintage, quantity=quantity, unit_price_fen=offer.price_per_tonne_fen,
        amount_fen=quantity * offer.price_per_tonne_fen, currency=CURRENCY,
        status=OrderStatus.AWAITING_PAYMENT.value, reserved_until=now + timedelta(minutes=reservation_minutes),
        holds_reservation=True, created_at=now)
    session.add(order)
    await session.flush()
    return order


PAYABLE = {"requires_payment_method", "requires_confirmation", "requires_action"}


async def ensure_payment(*, session_factory: async_sessionmaker[AsyncSession], clock: Clock, payments: Payments,
                         order_id: uuid.UUID, buyer_id: uuid.UUID) -> tuple[PurchaseOrder, str | None]:
    """Steps 2 and 3: the order's PaymentIntent (created once) and its client secret, for the buyer.
    Safe to call again (a replayed purchase): an existing intent is fetched, not created. No
    secret once the order is settled or the intent cannot be paid any more."""
    async with session_factory() as session:
        order = await session.get(PurchaseOrder, order_id)
    if order is None or order.buyer_id != buyer_id:
        raise NotFound(message="No order of yours has this id.", field="id")
    if order.status != OrderStatus.AWAITING_PAYMENT.value:
        return order, None
    if order.payment_intent_id:
        intent = await payments.retrieve_intent(order.payment_intent_id)
        return order, intent.client_secret if intent.status in PAYABLE else None
    async with session_factory() as session:
        project = await session.get(Project, order.project_id)
    description = f"{order.quantity} t CER {project.code if project else ''} vintage {order.vintage}".replace("  ", " ")
    try:
        intent = await payments.create_intent(order_id=order.id, amount_fen=order.amount_fen, currency=order.currency,
                                              description=description)
    except PaymentRefused:
        # refused for good (say the amount is below what the provider accepts): let the tonnes go
        async with session_factory() as session:
            async with session.begin():
                locked = await _lock_order(session, order.id)
                if locked is not None and locked.status == OrderStatus.AWAITING_PAYMENT.value:
                    await _release(session, clock, locked, OrderStatus.CANCELED,
                                   "the payment provider refused to take this payment")
        raise
    async with session_factory() as session:
        async with session.begin():
            locked = await _lock_order(session, order.id)
            if locked.payment_intent_id is None:
                locked.payment_intent_id = intent.id
            order = locked
    if order.payment_intent_id != intent.id:
        # a concurrent retry recorded its own intent first (only a provider without idempotency keys
        # creates two): ours is never shown to anyone, so cancel it and serve the recorded one
        await _cancel_quietly(payments, intent.id, order.id)
        recorded = await payments.retrieve_intent(order.payment_intent_id)
        return order, recorded.client_secret if recorded.status in PAYABLE else None
    if order.status != OrderStatus.AWAITING_PAYMENT.value:
        await _cancel_quietly(payments, intent.id, order.id)  # timed out meanwhile
        return order, None
    return order, intent.client_secret


async def _cancel_quietly(payments: Payments | None, intent_id: str, order_id: uuid.UUID) -> None:
    """Best effort: cancel an intent nobody should pay any more. If it was paid after all, its
    webhook takes the late-payment path; if the provider is down, nobody holds its secret."""
    if payments is None:
        return
    try:
        await payments.cancel_intent(intent_id, order_id=order_id)
    except PaymentProviderUnavailable:
        log.info("could not cancel a payment intent now", extra={"order_id": str(order_id)})


# --- settlement (all under the order's row lock) ---------------------------------------------------


async def _lock_order(session: AsyncSession, order_id: uuid.UUID) -> PurchaseOrder | None:
    return (await session.execute(select(PurchaseOrder).where(PurchaseOrder.id == order_id).with_for_update()
                                  .execution_options(populate_existing=True))).scalar_one_or_none()


async def _release(session: AsyncSession, clock: Clock, order: PurchaseOrder, status: OrderStatus, reason: str) -> None:
    """The reserved tonnes go back to the seller's held blocks and to the offer."""
    now = clock.now()
    offer = await _lock_offer(session, order.offer_id)
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
    offer = await _lock_offer(session, order.offer_id)
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
                await _release(session, clock, order, OrderStatus.PAID, "refund due: the amount paid differs")
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
            await _release(session, clock, order, OrderStatus.CANCELED, reason)
            # the buyer starts again with a new purchase; this intent must not be paid later
            return "released", FollowUp(cancel_intent=intent.id)
        await _release(session, clock, order, OrderStatus.CANCELED, "payment canceled")
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
            order = await _lock_order(session, order_id)
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
        await _cancel_quietly(payments, follow_up.cancel_intent, order_id)
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
            order = await _lock_order(session, order_id)
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
                    await _release(session, clock, order, OrderStatus.EXPIRED, "the reservation lapsed before payment")
                    if order.payment_intent_id:
                        to_cancel.append((order.payment_intent_id, order.id))
        expired += len(orders)
        for intent_id, order_id in to_cancel:
            await _cancel_quietly(payments, intent_id, order_id)
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


# --- reading orders ------------------------------------------------------------------------------


async def get_order(*, session: AsyncSession, order_id: uuid.UUID, buyer_id: uuid.UUID | None = None,
                    seller_id: uuid.UUID | None = None) -> PurchaseOrder:
    order = await session.get(PurchaseOrder, order_id)
    if order is None or (buyer_id is not None and order.buyer_id != buyer_id) or (
            seller_id is not None and order.seller_id != seller_id):
        raise NotFound(message="No such order.", field="id")
    return order


async def buyer_orders(*, session: AsyncSession, buyer_id: uuid.UUID, status: str | None, first: int | None,
                       after: str | None) -> Page:
    stmt = select(PurchaseOrder).where(PurchaseOrder.buyer_id == buyer_id)
    if status:
        stmt = stmt.where(PurchaseOrder.status == status)
    return await keyset_page(session, stmt, keys=[PurchaseOrder.created_at, PurchaseOrder.id], first=first,
                             after=after, descending=True)


async def seller_orders(*, session: AsyncSession, seller_id: uuid.UUID, status: str | None, first: int | None,
                        after: str | None) -> Page:
    stmt = select(PurchaseOrder).where(PurchaseOrder.seller_id == seller_id)
    if status:
        stmt = stmt.where(PurchaseOrder.status == status)
    return await keyset_page(session, stmt, keys=[PurchaseOrder.created_at, PurchaseOrder.id], first=first,
                             after=after, descending=True)


async def delivered_serials(*, session: AsyncSession, order_ids) -> dict[uuid.UUID, list[str]]:
    """The serial ranges each order delivered to its buyer, as `SZCER-...` labels."""
    ids = list(set(order_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(Move.reference_id, Project.code, Move.vintage, Move.first_serial, Move.last_serial)
        .join(Project, Project.id == Move.project_id)
        .where(Move.kind == MoveKind.DELIVER.value, Move.reference_kind == "order", Move.reference_id.in_(ids))
        .order_by(Move.seq))
    found: dict[uuid.UUID, list[str]] = {}
    for order_id, code, vintage, first, last in rows:
        found.setdefault(order_id, []).append(blocks.serial_label(code, vintage, first, last))
    return found
