"""Certified emission reductions (核证减排量, CER, art. 14-19) and carbon neutrality.

A CER is one tonne CO2e with a serial number. Issuance creates a serial block; every later act
(reserve for a purchase, deliver, release, retire, cancel) ends the blocks it touches and creates
new ones, split exactly, and records a `cer_moves` journal row naming the serial range. So any
tonne can be traced from issuance to retirement, and nothing is ever edited away: a block row
only gains its `ended_at`/`ended_by_move_id` once.

Conservation, per project and vintage: issued = held + reserved + retired + cancelled, where the
right side sums the live (not ended) blocks by state."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Identity, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, new_id


def _in(column: str, enum_cls: type[enum.Enum]) -> str:
    return f"{column} IN ({', '.join(repr(m.value) for m in enum_cls)})"


class ProjectStatus(str, enum.Enum):
    DRAFT = "draft"  # being written by its owner
    NOTICE = "notice"  # published for public notice (公示), pledge taken
    DECLARED = "declared"  # declared after >= 7 working days of notice (art. 16)
    VERIFIED = "verified"  # a verifier's report is attached
    FILED = "filed"  # filed (备案) by the regulator; CERs may be issued
    REJECTED = "rejected"


class BlockState(str, enum.Enum):
    HELD = "held"  # in the holder's CER account, free to offer, sell or retire
    RESERVED = "reserved"  # held by the seller but promised to a purchase order awaiting payment
    RETIRED = "retired"  # claimed for a beneficiary (注销 for carbon neutrality); final
    CANCELLED = "cancelled"  # removed by the regulator without a claim; final


class MoveKind(str, enum.Enum):
    ISSUE = "issue"
    RESERVE = "reserve"
    RELEASE = "release"
    DELIVER = "deliver"
    RETIRE = "retire"
    CANCEL = "cancel"


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


class SubjectKind(str, enum.Enum):
    EVENT = "event"
    PRODUCT = "product"
    ORGANISATION_YEAR = "organisation_year"


class Project(Base):
    """A reduction project (art. 15-17), its public notice and its pledge."""

    __tablename__ = "cer_projects"
    __table_args__ = (
        CheckConstraint(_in("status", ProjectStatus), name="status_valid"),
        CheckConstraint("expected_tonnes_per_year > 0", name="expected_positive"),
        Index("ix_cer_projects_owner", "owner_id", "created_at"),
        Index("ix_cer_projects_status", "status", "code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # short public code used in serial numbers, e.g. P000012; from a sequence, never reused
    code: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    methodology_code: Mapped[str] = mapped_column(String(40), nullable=False)
    location: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    expected_tonnes_per_year: Mapped[int] = mapped_column(BigInteger, nullable=False)
    benefit_sharing: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    # the pledge (art. 16): not registered in CCER, green electricity trading or green certificates
    pledge_text: Mapped[str | None] = mapped_column(Text)
    pledged_at: Mapped[datetime | None] = mapped_column()
    notice_started_at: Mapped[datetime | None] = mapped_column()
    # first Asia/Shanghai date on which the declaration may be submitted (7 working days passed)
    notice_ends_on: Mapped[date | None] = mapped_column(Date)
    declared_at: Mapped[datetime | None] = mapped_column()
    filed_at: Mapped[datetime | None] = mapped_column()
    filed_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)


class VerifierReport(Base):
    __tablename__ = "cer_verifier_reports"
    __table_args__ = (
        CheckConstraint("verified_tonnes > 0", name="verified_positive"),
        CheckConstraint("vintage BETWEEN 2000 AND 2100", name="vintage_sane"),
        Index("ix_cer_verifier_reports_project", "project_id", "submitted_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    verifier_name: Mapped[str] = mapped_column(String(200), nullable=False)
    report_reference: Mapped[str] = mapped_column(String(500), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    verified_tonnes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # tonnes of this report already issued; issuance never exceeds what was verified
    issued_tonnes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    submitted_at: Mapped[datetime] = mapped_column(nullable=False)


class Issuance(Base):
    """CERs issued to a project owner's account (art. 17): one serial block."""

    __tablename__ = "cer_issuances"
    __table_args__ = (
        CheckConstraint("last_serial >= first_serial AND first_serial >= 1", name="range_valid"),
        UniqueConstraint("project_id", "vintage", "first_serial", name="serial_start"),
        Index("ix_cer_issuances_project", "project_id", "vintage"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    verifier_report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_verifier_reports.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    first_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    issued_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(nullable=False)


class SerialCounter(Base):
    """The next serial number per project and vintage; locked while issuing, so serials never repeat."""

    __tablename__ = "cer_serial_counters"

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), primary_key=True)
    vintage: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_serial: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)


class Move(Base):
    """The journal: one row per act on one serial range. Never updated or deleted."""

    __tablename__ = "cer_moves"
    __table_args__ = (
        CheckConstraint(_in("kind", MoveKind), name="kind_valid"),
        CheckConstraint("last_serial >= first_serial", name="range_valid"),
        Index("ix_cer_moves_serials", "project_id", "vintage", "first_serial"),
        Index("ix_cer_moves_to", "to_holder_id", "at"),
        Index("ix_cer_moves_from", "from_holder_id", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # commit-independent order of the journal, for tracing a tonne act by act
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    first_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    from_holder_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    to_holder_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    from_state: Mapped[str | None] = mapped_column(String(10))
    to_state: Mapped[str] = mapped_column(String(10), nullable=False)
    # what caused it: an issuance, order, retirement or cancellation id
    reference_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    reference_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)


class Block(Base):
    """A contiguous serial range in one state with one holder. Live while `ended_at` is null."""

    __tablename__ = "cer_blocks"
    __table_args__ = (
        CheckConstraint(_in("state", BlockState), name="state_valid"),
        CheckConstraint("last_serial >= first_serial", name="range_valid"),
        CheckConstraint("(state = 'reserved') = (order_id IS NOT NULL)", name="reserved_names_order"),
        # the holder's free tonnes, soonest serial first
        Index("ix_cer_blocks_holder_live", "holder_id", "project_id", "vintage", "first_serial",
              postgresql_where=text("ended_at IS NULL")),
        Index("ix_cer_blocks_serials", "project_id", "vintage", "first_serial"),
        Index("ix_cer_blocks_order_live", "order_id", postgresql_where=text("ended_at IS NULL AND order_id IS NOT NULL")),
        # a retirement's serials, for verifying its certificate against the live blocks (migration 0005)
        Index("ix_cer_blocks_retirement", "retirement_id", postgresql_where=text("retirement_id IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    first_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    state: Mapped[str] = mapped_column(String(10), nullable=False)
    order_id: Mapped[uuid.UUID | None] = mapped_column()
    retirement_id: Mapped[uuid.UUID | None] = mapped_column()
    cancellation_id: Mapped[uuid.UUID | None] = mapped_column()
    created_by_move_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_moves.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column()
    ended_by_move_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cer_moves.id"))

    @property
    def quantity(self) -> int:
        return self.last_serial - self.first_serial + 1


class Offer(Base):
    """Tonnes of one project and vintage offered for sale at a price per tonne in fen (CNY)."""

    __tablename__ = "cer_offers"
    __table_args__ = (
        CheckConstraint(_in("status", OfferStatus), name="status_valid"),
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
        CheckConstraint(_in("status", OrderStatus), name="status_valid"),
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


class Retirement(Base):
    """Retirement (注销) of CERs for carbon neutrality (自愿实施碳中和, art. 19): a public claim."""

    __tablename__ = "cer_retirements"
    __table_args__ = (
        CheckConstraint(_in("subject_kind", SubjectKind), name="subject_kind_valid"),
        CheckConstraint("footprint_kg > 0", name="footprint_positive"),
        CheckConstraint("tonnes * 1000 >= footprint_kg", name="covers_footprint"),
        CheckConstraint("period_end >= period_start", name="period_valid"),
        Index("ix_cer_retirements_holder", "holder_id", "retired_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    beneficiary_name: Mapped[str] = mapped_column(String(200), nullable=False)
    subject_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    subject: Mapped[str] = mapped_column(String(300), nullable=False)
    # kilograms so that a footprint such as 12.345 t stays exact
    footprint_kg: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tonnes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    retired_at: Mapped[datetime] = mapped_column(nullable=False)


class Certificate(Base):
    """Carbon-neutral certificate (碳中和证明): the canonical JSON, signed with Ed25519."""

    __tablename__ = "cer_certificates"
    # the holder's certificates, newest first (migration 0005)
    __table_args__ = (Index("ix_cer_certificates_holder", "holder_id", "issued_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    verification_code: Mapped[str] = mapped_column(String(20), nullable=False, unique=True)
    retirement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_retirements.id"), nullable=False, unique=True)
    holder_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    # exactly the bytes that were signed
    canonical: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    signature: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    key_id: Mapped[str] = mapped_column(String(40), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(nullable=False)


class SigningKey(Base):
    """Public keys that have signed certificates; kept after rotation so old certificates verify."""

    __tablename__ = "cer_signing_keys"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    first_used_at: Mapped[datetime] = mapped_column(nullable=False)
    retired_at: Mapped[datetime | None] = mapped_column()


class CerCancellation(Base):
    """A regulator's cancellation of CERs (e.g. a fraudulent issuance): no claim, a stated reason."""

    __tablename__ = "cer_cancellations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_projects.id"), nullable=False)
    vintage: Mapped[int] = mapped_column(Integer, nullable=False)
    first_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_serial: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    cancelled_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    cancelled_at: Mapped[datetime] = mapped_column(nullable=False)
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
