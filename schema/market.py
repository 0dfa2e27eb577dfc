"""GraphQL types of the CER market: offers, purchase orders and their payment through Stripe."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from core.errors import CoreCode
from neutrality.cers.models import Project
from neutrality.errors import MarketCode, RegistryCode
from neutrality.market import models
from neutrality.market.payments import PaymentMode
from schema.errors import MutationError, error_codes
from schema.scalars import Long

CerOfferStatus = strawberry.enum(models.OfferStatus, name="CerOfferStatus")
CerOrderStatus = strawberry.enum(
    models.OrderStatus, name="CerOrderStatus",
    description="awaiting_payment -> delivered, or canceled (payment failed or canceled), expired (the reservation "
                "lapsed), paid (money arrived after the reservation lapsed and no tonnes were left: refund due) -> "
                "refunded.")
CerPaymentMode = strawberry.enum(
    PaymentMode, name="CerPaymentMode",
    description="LIVE: real money through Stripe. TEST: Stripe's test mode, no money moves. TEST_EMULATOR: the "
                "embedded default's local Stripe emulator (localstripe), no money moves.")


@strawberry.enum
class CerOfferSort(enum.Enum):
    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    NEWEST = "newest"


@strawberry.type(description="The project an offer or order is for (public registry facts).")
class CerOfferProject:
    id: strawberry.ID
    code: str
    title: str
    methodology_code: str
    location: str

    @classmethod
    def from_row(cls, row: Project) -> "CerOfferProject":
        return cls(id=strawberry.ID(str(row.id)), code=row.code, title=row.title,
                   methodology_code=row.methodology_code, location=row.location)


@strawberry.type(description="Tonnes of one project and vintage on sale at a price per tonne in fen (CNY). "
                             "Sellers are not named.")
class CerOffer:
    id: strawberry.ID
    project: CerOfferProject | None
    vintage: int
    price_per_tonne_fen: Long
    quantity_offered: Long
    quantity_available: Long = strawberry.field(description="Not yet reserved or sold.")
    min_purchase: Long
    status: CerOfferStatus
    created_at: datetime
    mine: bool = strawberry.field(description="True when the caller is the seller.")

    @classmethod
    def from_row(cls, row: models.Offer, project: Project | None, viewer=None) -> "CerOffer":
        return cls(id=strawberry.ID(str(row.id)), project=CerOfferProject.from_row(project) if project else None,
                   vintage=row.vintage, price_per_tonne_fen=row.price_per_tonne_fen,
                   quantity_offered=row.quantity_offered, quantity_available=row.quantity_available,
                   min_purchase=row.min_purchase, status=models.OfferStatus(row.status), created_at=row.created_at,
                   mine=viewer is not None and row.seller_id == viewer)


@strawberry.type(description="A purchase of CERs as its buyer sees it.")
class CerPurchaseOrder:
    id: strawberry.ID
    offer_id: strawberry.ID
    project: CerOfferProject | None
    vintage: int
    quantity: Long
    unit_price_fen: Long
    amount_fen: Long
    currency: str
    status: CerOrderStatus
    status_reason: str | None
    reserved_until: datetime = strawberry.field(description="Pay before this, or the reservation lapses.")
    payment_intent_id: str | None = strawberry.field(description="Stripe's PaymentIntent id.")
    refund_id: str | None
    created_at: datetime
    paid_at: datetime | None
    closed_at: datetime | None
    delivered_serials: list[str] = strawberry.field(
        description="Serial ranges delivered to the buyer's CER account (SZCER-<project>-<vintage>-<first>-<last>).")

    @classmethod
    def from_row(cls, row: models.PurchaseOrder, project: Project | None,
                 serials: list[str] | None = None) -> "CerPurchaseOrder":
        return cls(id=strawberry.ID(str(row.id)), offer_id=strawberry.ID(str(row.offer_id)),
                   project=CerOfferProject.from_row(project) if project else None, vintage=row.vintage,
                   quantity=row.quantity, unit_price_fen=row.unit_price_fen, amount_fen=row.amount_fen,
                   currency=row.currency.upper(), status=models.OrderStatus(row.status),
                   status_reason=row.status_reason, reserved_until=row.reserved_until,
                   payment_intent_id=row.payment_intent_id, refund_id=row.refund_id, created_at=row.created_at,
                   paid_at=row.paid_at, closed_at=row.closed_at, delivered_serials=list(serials or []))


@strawberry.type(description="A sale from one of the seller's offers: no buyer, no contact data.")
class CerSellerOrder:
    id: strawberry.ID
    offer_id: strawberry.ID
    project: CerOfferProject | None
    vintage: int
    quantity: Long
    unit_price_fen: Long
    amount_fen: Long
    currency: str
    status: CerOrderStatus
    created_at: datetime
    paid_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def from_row(cls, row: models.PurchaseOrder, project: Project | None) -> "CerSellerOrder":
        return cls(id=strawberry.ID(str(row.id)), offer_id=strawberry.ID(str(row.offer_id)),
                   project=CerOfferProject.from_row(project) if project else None, vintage=row.vintage,
                   quantity=row.quantity, unit_price_fen=row.unit_price_fen, amount_fen=row.amount_fen,
                   currency=row.currency.upper(), status=models.OrderStatus(row.status), created_at=row.created_at,
                   paid_at=row.paid_at, closed_at=row.closed_at)


@strawberry.type(description="How CER purchases are paid on this deployment.")
class CerMarketInfo:
    payment_mode: CerPaymentMode | None = strawberry.field(
        description="null: no payment provider is configured (purchases answer PAYMENT_PROVIDER_UNAVAILABLE).")
    test_mode: bool = strawberry.field(description="True unless payments are LIVE: no real money moves.")
    currency: str
    reservation_minutes: int = strawberry.field(description="How long bought tonnes stay reserved awaiting payment.")


# --- inputs ------------------------------------------------------------------------------------------


@strawberry.input
class CerOfferFilter:
    project_id: strawberry.ID | None = None
    vintage: int | None = None
    max_price_per_tonne_fen: Long | None = None


@strawberry.input
class CreateCerOfferInput:
    project_id: strawberry.ID
    vintage: int
    quantity: Long = strawberry.field(description="Whole tonnes you hold and have not offered yet.")
    price_per_tonne_fen: Long
    idempotency_key: str
    min_purchase: Long = 1


@strawberry.input
class WithdrawCerOfferInput:
    id: strawberry.ID


@strawberry.input
class BuyCersInput:
    offer_id: strawberry.ID
    quantity: Long = strawberry.field(description="Whole tonnes, at least the offer's minimum purchase.")
    idempotency_key: str = strawberry.field(
        description="Retry with the same key (say after PAYMENT_PROVIDER_UNAVAILABLE): the same order comes back.")


# --- payloads ----------------------------------------------------------------------------------------

CreateCerOfferErrorCode = error_codes(
    "CreateCerOfferErrorCode", MarketCode.INVALID_PRICE, MarketCode.INSUFFICIENT_TONNES,
    CoreCode.IDEMPOTENCY_KEY_REUSED, RegistryCode.PROJECT_FROZEN)


@strawberry.type
class CreateCerOfferError(MutationError):
    code: CreateCerOfferErrorCode


@strawberry.type
class CreateCerOfferPayload:
    offer: CerOffer | None = None
    errors: list[CreateCerOfferError] = strawberry.field(default_factory=list)


WithdrawCerOfferErrorCode = error_codes("WithdrawCerOfferErrorCode", MarketCode.OFFER_NOT_ACTIVE)


@strawberry.type
class WithdrawCerOfferError(MutationError):
    code: WithdrawCerOfferErrorCode


@strawberry.type
class WithdrawCerOfferPayload:
    offer: CerOffer | None = None
    errors: list[WithdrawCerOfferError] = strawberry.field(default_factory=list)


BuyCersErrorCode = error_codes(
    "BuyCersErrorCode", MarketCode.OFFER_NOT_ACTIVE, MarketCode.BELOW_MINIMUM, MarketCode.INSUFFICIENT_TONNES,
    MarketCode.CANNOT_BUY_OWN_OFFER, MarketCode.PAYMENT_PROVIDER_UNAVAILABLE, MarketCode.PAYMENT_REFUSED,
    CoreCode.IDEMPOTENCY_KEY_REUSED, RegistryCode.PROJECT_FROZEN)


@strawberry.type
class BuyCersError(MutationError):
    code: BuyCersErrorCode


@strawberry.type(description="The order, and what the front-end needs to confirm the payment with Stripe.js.")
class BuyCersPayload:
    order: CerPurchaseOrder | None = strawberry.field(
        default=None, description="Also present with PAYMENT_PROVIDER_UNAVAILABLE (reserved; retry with the same key) "
                                  "and PAYMENT_REFUSED (canceled, tonnes released).")
    client_secret: str | None = strawberry.field(
        default=None, description="The PaymentIntent's client secret, only for the buyer, only while the order awaits "
                                  "payment. Never stored by the platform.")
    payment_mode: CerPaymentMode | None = None
    errors: list[BuyCersError] = strawberry.field(default_factory=list)
