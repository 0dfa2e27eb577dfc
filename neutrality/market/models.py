"""The CER market's tables: offers, purchase orders, and the Stripe webhook events handled."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, in_enum, new_id


class OfferStatus(str, enum.Enum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class OrderStatus(str, enum.Enum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    DELIVERED = "delivered"
    CANCELED = "canceled"  # payment failed or was cancelled
    EXPIRED = "expired"  # the reservation lapsed before payment
    REFUNDED = "refunded"  # paid after lapse with no tonnes left: refunded through Stripe



class Offer(Base):
    """Tonnes of one project and vintage offered for sale at a price per tonne in fen (CNY)."""

    __tablename__ = "cer_offers"
    __table_args__ = (
        CheckConstraint(in_enum("status", OfferStatus), name="status_valid"),
        CheckConstraint("price_per_tonne_fen > 0", name="price_positive"),
        CheckConstraint("quantity_offered > 0", name="offered_positive"),
        CheckConstraint("quantity_available >= 0 AND quantity_available <= quantity_offered", name="available_in_range"),
        Index("ix_cer_offers_browse", "status", "price_per_tonne_fen", "id"),
        Index("ix_cer_offers_seller", "seller_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    price_per_tonne_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quantity_offered: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # not yet reserved or sold; reservations take from it and releases give back
    quantity_available: Mapped[int] = mapped_column(BigInteger, nullable=False)
    min_purchase: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)


class PurchaseOrder(Base):
    __tablename__ = "cer_orders"
    __table_args__ = (
        CheckConstraint(in_enum("status", OrderStatus), name="status_valid"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount_fen = quantity * unit_price_fen", name="amount_exact"),
        Index("ix_cer_orders_buyer", "buyer_id", "created_at"),
        Index("ix_cer_orders_seller", "seller_id", "created_at"),
        Index("ix_cer_orders_awaiting", "reserved_until", postgresql_where=text("status = 'awaiting_payment'")),
        # paid but not delivered: a refund is due (the reconcile sweep retries it)
        Index("ix_cer_orders_refund_due", "paid_at", postgresql_where=text("status = 'paid'")),
        UniqueConstraint("payment_intent_id", name="payment_intent"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    buyer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_offers.id"), nullable=False)
    seller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    quantity: Mapped[int] = mapped_column(BigInteger, nullable=False)
    unit_price_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount_fen: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False, default="cny")
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    payment_intent_id: Mapped[str | None] = mapped_column(String(100))
    refund_id: Mapped[str | None] = mapped_column(String(100))
    reserved_until: Mapped[datetime] = mapped_column(nullable=False)
    # true while the tonnes are reserved for this order (false after release, lapse or delivery)
    holds_reservation: Mapped[bool] = mapped_column(nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    paid_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    status_reason: Mapped[str | None] = mapped_column(Text)


class PaymentEvent(Base):
    """Every Stripe webhook event we handled, by its id: a redelivery changes nothing twice."""

    __tablename__ = "payment_events"
    __table_args__ = (
        # events whose order was not visible yet: the reconcile sweep looks at these
        Index("ix_payment_events_deferred", "received_at", postgresql_where=text("outcome = 'deferred'")),
    )

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    payment_intent_id: Mapped[str | None] = mapped_column(String(100))
    order_id: Mapped[uuid.UUID | None] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(40), nullable=False)
    received_at: Mapped[datetime] = mapped_column(nullable=False)


