"""GraphQL types of the points mall."""

from __future__ import annotations

import enum
from datetime import date, datetime

import strawberry

from core.errors import CoreCode
from mall import models
from mall.errors import MallCode
from schema.errors import MutationError, error_codes
from schema.scalars import Long
from wallets.errors import WalletCode

ListingKind = strawberry.enum(models.ListingKind, name="ListingKind")
ListingStatus = strawberry.enum(models.ListingStatus, name="ListingStatus")
Channel = strawberry.enum(models.Channel, name="MallChannel", description="The platform mall or an app operator's mall.")
RedemptionStatus = strawberry.enum(models.RedemptionStatus, name="RedemptionStatus")


@strawberry.enum
class ListingSort(enum.Enum):
    NEWEST = "newest"
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"


@strawberry.type(description="Goods or a service priced in points. Points are never money.")
class Listing:
    id: strawberry.ID
    merchant_id: strawberry.ID
    kind: ListingKind
    title: str
    description: str
    category: str
    image_urls: list[str]
    price_points: Long
    stock_available: Long | None = strawberry.field(description="null: unlimited. May lag a few seconds on cached pages.")
    per_person_limit: int | None
    available_from: datetime | None
    available_until: datetime | None
    channel: Channel
    app_operator_id: strawberry.ID | None
    status: ListingStatus
    revision: int = strawberry.field(description="Changes with every edit; pass it to redeem to insist on these terms.")
    published_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Listing) -> "Listing":
        return cls.from_dict(listing_dict(row))

    @classmethod
    def from_dict(cls, d: dict) -> "Listing":
        def when(value):
            return datetime.fromisoformat(value) if value else None

        return cls(id=strawberry.ID(d["id"]), merchant_id=strawberry.ID(d["merchant_id"]),
                   kind=models.ListingKind(d["kind"]), title=d["title"], description=d["description"],
                   category=d["category"], image_urls=d["image_urls"], price_points=d["price_points"],
                   stock_available=d["stock_available"], per_person_limit=d["per_person_limit"],
                   available_from=when(d["available_from"]), available_until=when(d["available_until"]),
                   channel=models.Channel(d["channel"]),
                   app_operator_id=strawberry.ID(d["app_operator_id"]) if d["app_operator_id"] else None,
                   status=models.ListingStatus(d["status"]), revision=d["revision"],
                   published_at=when(d["published_at"]))


def listing_dict(row: models.Listing) -> dict:
    """A listing as plain JSON-able data (what the catalog cache stores)."""
    def iso(value):
        return value.isoformat() if value else None

    return {"id": str(row.id), "merchant_id": str(row.merchant_id), "kind": row.kind, "title": row.title,
            "description": row.description, "category": row.category, "image_urls": list(row.image_urls or []),
            "price_points": row.price_points, "stock_available": row.stock_available,
            "per_person_limit": row.per_person_limit, "available_from": iso(row.available_from),
            "available_until": iso(row.available_until), "channel": row.channel,
            "app_operator_id": str(row.app_operator_id) if row.app_operator_id else None, "status": row.status,
            "revision": row.revision, "published_at": iso(row.published_at)}


@strawberry.type(description="A redemption as its owner sees it, with the voucher code. Nobody else sees the code.")
class Redemption:
    id: strawberry.ID
    listing_id: strawberry.ID
    title: str
    quantity: int
    unit_price_points: Long
    points: Long
    status: RedemptionStatus
    voucher_code: str = strawberry.field(description="Show it to the merchant. It cannot be given or sold: it is bound to you.")
    held_until: datetime
    created_at: datetime
    settled_at: datetime | None
    settled_reason: str | None = strawberry.field(
        description="Why it ended, if not fulfilled: the merchant's reason for a decline, or the platform's notice "
                    "when it RELEASED the points because the merchant or app mall was suspended or revoked.")

    @classmethod
    def from_row(cls, row: models.Redemption) -> "Redemption":
        return cls(id=strawberry.ID(str(row.id)), listing_id=strawberry.ID(str(row.listing_id)), title=row.title,
                   quantity=row.quantity, unit_price_points=row.unit_price_points, points=row.points,
                   status=models.RedemptionStatus(row.status), voucher_code=row.voucher_code,
                   held_until=row.held_until, created_at=row.created_at, settled_at=row.settled_at,
                   settled_reason=row.settled_reason)


@strawberry.type(description="A redemption as the merchant sees it: no person, no contact data.")
class MerchantRedemption:
    id: strawberry.ID
    listing_id: strawberry.ID
    title: str
    quantity: int
    points: Long
    status: RedemptionStatus
    held_until: datetime
    created_at: datetime
    settled_at: datetime | None
    settled_reason: str | None

    @classmethod
    def from_row(cls, row: models.Redemption) -> "MerchantRedemption":
        return cls(id=strawberry.ID(str(row.id)), listing_id=strawberry.ID(str(row.listing_id)), title=row.title,
                   quantity=row.quantity, points=row.points, status=models.RedemptionStatus(row.status),
                   held_until=row.held_until, created_at=row.created_at, settled_at=row.settled_at,
                   settled_reason=row.settled_reason)


@strawberry.type(description="Points cancelled (注销) after use, for one day, channel, app and merchant.")
class CancelledPoints:
    day: date
    channel: Channel
    app_operator_id: strawberry.ID | None
    merchant_id: strawberry.ID
    redemptions: int
    points: Long


@strawberry.type(description="The cancellation record of one fulfilled redemption.")
class PointCancellation:
    id: strawberry.ID
    points: Long
    channel: Channel
    lots: list["CancelledLot"]
    at: datetime


@strawberry.type
class CancelledLot:
    lot_id: strawberry.ID
    points: Long


# --- inputs ------------------------------------------------------------------------------------


@strawberry.input
class MallFilter:
    channel: Channel | None = None
    app_operator_id: strawberry.ID | None = None
    category: str | None = None
    merchant_id: strawberry.ID | None = None
    min_price: Long | None = None
    max_price: Long | None = None
    text: str | None = None


@strawberry.input
class CreateListingInput:
    kind: ListingKind
    title: str
    category: str
    price_points: Long
    channel: Channel
    description: str = ""
    image_urls: list[str] = strawberry.field(default_factory=list)
    stock: Long | None = strawberry.field(default=None, description="null: unlimited (services only).")
    per_person_limit: int | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None
    app_operator_id: strawberry.ID | None = strawberry.field(default=None, description="For the APP channel: whose app mall.")


@strawberry.input
class UpdateListingInput:
    id: strawberry.ID
    title: str | None = None
    description: str | None = None
    category: str | None = None
    image_urls: list[str] | None = None
    price_points: Long | None = None
    per_person_limit: int | None = None
    available_from: datetime | None = None
    available_until: datetime | None = None


@strawberry.input
class SetListingStatusInput:
    id: strawberry.ID
    status: ListingStatus


@strawberry.input
class RestockListingInput:
    id: strawberry.ID
    quantity: Long
    idempotency_key: str


@strawberry.input
class RedeemInput:
    listing_id: strawberry.ID
    quantity: int = 1
    idempotency_key: str
    expected_price_points: Long | None = strawberry.field(
        default=None, description="The unit price in points the person agreed to; refused with PRICE_CHANGED if "
                                  "the listing's price is another now. State it, or expectedRevision, or both "
                                  "(neither: PRICE_REQUIRED).")
    expected_revision: int | None = strawberry.field(default=None, description="Refuse with LISTING_CHANGED if the listing changed since.")


@strawberry.input
class CancelRedemptionInput:
    id: strawberry.ID


@strawberry.input
class DeclineRedemptionInput:
    id: strawberry.ID
    reason: str


@strawberry.input
class FulfilRedemptionInput:
    code: str


# --- payloads ----------------------------------------------------------------------------------

ListingErrorCode = error_codes(
    "ListingErrorCode", MallCode.INVALID_PRICE, MallCode.INVALID_STOCK, MallCode.UNKNOWN_APP_OPERATOR,
    MallCode.LISTING_ARCHIVED, MallCode.INVALID_TRANSITION, CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class ListingError(MutationError):
    code: ListingErrorCode


@strawberry.type
class ListingPayload:
    listing: Listing | None = None
    errors: list[ListingError] = strawberry.field(default_factory=list)


RedeemErrorCode = error_codes(
    "RedeemErrorCode", WalletCode.INSUFFICIENT_POINTS, MallCode.OUT_OF_STOCK, MallCode.LIMIT_REACHED,
    MallCode.NOT_AVAILABLE, MallCode.LISTING_CHANGED, MallCode.PRICE_CHANGED, MallCode.PRICE_REQUIRED,
    CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class RedeemError(MutationError):
    code: RedeemErrorCode


@strawberry.type
class RedeemPayload:
    redemption: Redemption | None = None
    errors: list[RedeemError] = strawberry.field(default_factory=list)


CancelRedemptionErrorCode = error_codes("CancelRedemptionErrorCode", MallCode.NOT_HELD, WalletCode.HOLD_SETTLED)


@strawberry.type
class CancelRedemptionError(MutationError):
    code: CancelRedemptionErrorCode


@strawberry.type
class CancelRedemptionPayload:
    redemption: Redemption | None = None
    errors: list[CancelRedemptionError] = strawberry.field(default_factory=list)


DeclineRedemptionErrorCode = error_codes(
    "DeclineRedemptionErrorCode", MallCode.NOT_HELD, MallCode.REASON_REQUIRED, WalletCode.HOLD_SETTLED)


@strawberry.type
class DeclineRedemptionError(MutationError):
    code: DeclineRedemptionErrorCode


@strawberry.type
class DeclineRedemptionPayload:
    redemption: MerchantRedemption | None = None
    errors: list[DeclineRedemptionError] = strawberry.field(default_factory=list)


FulfilRedemptionErrorCode = error_codes(
    "FulfilRedemptionErrorCode", MallCode.UNKNOWN_CODE, MallCode.NOT_HELD, MallCode.RESERVATION_EXPIRED,
    WalletCode.HOLD_SETTLED, MallCode.NOT_AVAILABLE)


@strawberry.type
class FulfilRedemptionError(MutationError):
    code: FulfilRedemptionErrorCode


@strawberry.type
class FulfilRedemptionPayload:
    redemption: MerchantRedemption | None = None
    cancellation: PointCancellation | None = None
    errors: list[FulfilRedemptionError] = strawberry.field(default_factory=list)
