"""Buying CERs (art. 18): the tonnes are reserved for an order, then paid through Stripe, in a crash-safe order.

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

What happens next (webhook events, lapsed reservations, refunds) is neutrality/market/settlement.py.

Lock order when buying: offer row -> blocks."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.clock import Clock
from core.errors import CoreCode, DomainError, NotFound
from neutrality.cers import blocks
from neutrality.cers import verification
from neutrality.cers.models import BlockState, MoveKind, Project
from neutrality.errors import MarketCode
from neutrality.market.models import OfferStatus, OrderStatus, PurchaseOrder
from neutrality.market.offers import MAX_TONNES, OfferNotActive, lock_offer
from neutrality.market.payments import PaymentRefused, Payments
from neutrality.market.settlement import cancel_intent_quietly, lock_order, release_order

DEFAULT_RESERVATION_MINUTES = 30
CURRENCY = "cny"


async def reserve_purchase(*, session: AsyncSession, clock: Clock, buyer_id: uuid.UUID, offer_id: uuid.UUID,
                           quantity: int, reservation_minutes: int = DEFAULT_RESERVATION_MINUTES) -> PurchaseOrder:
    """Step 1 of a purchase, in the caller's transaction: the offer gives up `quantity` tonnes, the
    seller's held blocks become RESERVED for the new order, and the order awaits payment."""
    if not 1 <= quantity <= MAX_TONNES:
        raise DomainError(CoreCode.INVALID, "Buy a whole number of tonnes, at least 1.", "quantity")
    offer = await lock_offer(session, offer_id)
    if offer is None:
        raise NotFound(message="No such offer.", field="offerId")
    if offer.status != OfferStatus.ACTIVE.value:
        raise OfferNotActive(message="This offer is no longer on sale.", field="offerId")
    if offer.seller_id == buyer_id:
        raise DomainError(MarketCode.CANNOT_BUY_OWN_OFFER, "You cannot buy from your own offer.", "offerId")
    if quantity < offer.min_purchase:
        raise DomainError(MarketCode.BELOW_MINIMUM, f"This offer sells at least {offer.min_purchase} tonnes at a time.",
                          "quantity")
    if quantity > offer.quantity_available:
        raise DomainError(MarketCode.INSUFFICIENT_TONNES, f"Only {offer.quantity_available} tonnes are left on this offer.",
                          "quantity")
    # art. 32: no sale of a project's tonnes while they are frozen pending review
    await verification.refuse_trade_if_frozen(session, offer.project_id, "offerId")
    now = clock.now()
    order_id = uuid.uuid4()
    try:
        await blocks.move(session=session, clock=clock, kind=MoveKind.RESERVE, holder_id=offer.seller_id,
                          from_state=BlockState.HELD, to_state=BlockState.RESERVED, quantity=quantity,
                          project_id=offer.project_id, vintage=offer.vintage, reference_kind="order",
                          reference_id=order_id, set_order_id=order_id)
    except blocks.InsufficientTonnes:
        # the seller retired or sold tonnes elsewhere since offering (the caller rolls back)
        raise DomainError(MarketCode.INSUFFICIENT_TONNES, "The seller no longer holds enough tonnes for this offer.",
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
                locked = await lock_order(session, order.id)
                if locked is not None and locked.status == OrderStatus.AWAITING_PAYMENT.value:
                    await release_order(session, clock, locked, OrderStatus.CANCELED,
                                        "the payment provider refused to take this payment")
        raise
    async with session_factory() as session:
        async with session.begin():
            locked = await lock_order(session, order.id)
            if locked.payment_intent_id is None:
                locked.payment_intent_id = intent.id
            order = locked
    if order.payment_intent_id != intent.id:
        # a concurrent retry recorded its own intent first (only a provider without idempotency keys
        # creates two): ours is never shown to anyone, so cancel it and serve the recorded one
        await cancel_intent_quietly(payments, intent.id, order.id)
        recorded = await payments.retrieve_intent(order.payment_intent_id)
        return order, recorded.client_secret if recorded.status in PAYABLE else None
    if order.status != OrderStatus.AWAITING_PAYMENT.value:
        await cancel_intent_quietly(payments, intent.id, order.id)  # timed out meanwhile
        return order, None
    return order, intent.client_secret
