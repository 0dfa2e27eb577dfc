"""The points mall (art. 23-24): merchants' listings, stock movements, redemptions and vouchers,
and the cancellation records (注销) of the points used."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, new_id


class ListingKind(str, enum.Enum):
    GOODS = "goods"
    SERVICE = "service"


class ListingStatus(str, enum.Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class Channel(str, enum.Enum):
    PLATFORM = "platform"  # the platform mall (统一管理平台商城)
    APP = "app"  # an app operator's own mall


class MovementKind(str, enum.Enum):
    RESTOCK = "restock"
    RESERVE = "reserve"
    RELEASE = "release"
    SELL = "sell"


class RedemptionStatus(str, enum.Enum):
    HELD = "held"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"  # by the person
    DECLINED = "declined"  # by the merchant
    EXPIRED = "expired"  # the reservation timed out
    RELEASED = "released"  # by the platform: the merchant or the app mall was suspended or revoked (art. 31-32)


class Listing(Base):
    __tablename__ = "listings"
    __table_args__ = (
        CheckConstraint("price_points > 0", name="price_positive"),
        CheckConstraint("stock_available IS NULL OR stock_available >= 0", name="stock_not_negative"),
        CheckConstraint("per_person_limit IS NULL OR per_person_limit > 0", name="limit_positive"),
        CheckConstraint("(channel = 'app') = (app_operator_id IS NOT NULL)", name="app_channel_names_operator"),
        CheckConstraint("status IN ('draft', 'active', 'paused', 'archived')", name="status_valid"),
        CheckConstraint("kind IN ('goods', 'service')", name="kind_valid"),
        Index("ix_listings_browse_newest", "status", "published_at", "id"),
        Index("ix_listings_browse_price", "status", "price_points", "id"),
        Index("ix_listings_merchant", "merchant_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    merchant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    category: Mapped[str] = mapped_column(String(60), nullable=False)
    image_urls: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, default=list)
    price_points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # null: unlimited (a service); otherwise units not reserved or sold, changed only with a movement
    stock_available: Mapped[int | None] = mapped_column(BigInteger)
    per_person_limit: Mapped[int | None] = mapped_column(Integer)
    available_from: Mapped[datetime | None] = mapped_column()
    available_until: Mapped[datetime | None] = mapped_column()
    channel: Mapped[str] = mapped_column(String(8), nullable=False)
    app_operator_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(8), nullable=False)
    # bumped on every edit, so a redemption can insist on the terms the person saw
    revision: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)
    published_at: Mapped[datetime | None] = mapped_column()
    # off sale while now < suspended_until: the suspension in force of its merchant or, in an app
    # mall, of the app operator (supervision/standing.py keeps it; 'infinity' never comes here:
    # a revocation archives the listing instead)
    suspended_until: Mapped[datetime | None] = mapped_column()


class StockMovement(Base):
    """Append-only: listings.stock_available is the running sum of these."""

    __tablename__ = "stock_movements"
    __table_args__ = (
        Index("ix_stock_movements_listing", "listing_id", "at"),
        CheckConstraint("kind IN ('restock', 'reserve', 'release', 'sell')", name="kind_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    # signed change of stock_available (restock +, reserve -, release +, sell 0: reserved -> sold)
    delta: Mapped[int] = mapped_column(BigInteger, nullable=False)
    quantity: Mapped[int] = mapped_column(BigInteger, nullable=False)
    redemption_id: Mapped[uuid.UUID | None] = mapped_column()
    at: Mapped[datetime] = mapped_column(nullable=False)


class Redemption(Base):
    """A person's order of a listing, paid for by a hold on their points until fulfilled."""

    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_wallet", "wallet_id", "created_at"),
        Index("ix_redemptions_merchant", "merchant_id", "created_at"),
        Index("ix_redemptions_held_until", "held_until", postgresql_where=text("status = 'held'")),
        Index("ix_redemptions_person_listing", "wallet_id", "listing_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("status IN ('held', 'fulfilled', 'cancelled', 'declined', 'expired', 'released')",
                        name="status_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    wallet_id: Mapped[uuid.UUID] = mapped_column(nullable=False)  # the person: never changes
    listing_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("listings.id"), nullable=False)
    merchant_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    channel: Mapped[str] = mapped_column(String(8), nullable=False)
    app_operator_id: Mapped[uuid.UUID | None] = mapped_column()
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price_points: Mapped[int] = mapped_column(BigInteger, nullable=False)  # as ordered
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hold_id: Mapped[uuid.UUID] = mapped_column(nullable=False, unique=True)
    # shown only to the owner; the merchant types it in when the owner presents it
    voucher_code: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    held_until: Mapped[datetime] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    settled_at: Mapped[datetime | None] = mapped_column()
    settled_reason: Mapped[str | None] = mapped_column(Text)


class PointCancellation(Base):
    """The record of points cancelled (注销) after use in a mall (art. 23). Never undone."""

    __tablename__ = "point_cancellations"
    __table_args__ = (
        Index("ix_point_cancellations_day", "business_day", "channel"),
        Index("ix_point_cancellations_merchant", "merchant_id", "business_day"),
        Index("ix_point_cancellations_operator", "app_operator_id", "business_day"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    redemption_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("redemptions.id"), nullable=False, unique=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    merchant_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    channel: Mapped[str] = mapped_column(String(8), nullable=False)
    app_operator_id: Mapped[uuid.UUID | None] = mapped_column()
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # [{"lot_id": ..., "points": ...}]: the lots the points came from
    lots: Mapped[list] = mapped_column(JSONB, nullable=False)
    business_day: Mapped[date] = mapped_column(Date, nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
