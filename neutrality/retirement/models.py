"""The tables of carbon neutrality (art. 19): applications and retirements, auto-approval policies, certificates.

Applications for neutrality are reviewed before their tonnes are retired (经审核后予以注销); the auto-approval
policies are versioned; certificates are signed, and may be revoked; the signing keys are kept."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, in_enum, new_id


class SubjectKind(str, enum.Enum):
    EVENT = "event"
    PRODUCT = "product"
    ORGANISATION_YEAR = "organisation_year"


class RetirementStatus(str, enum.Enum):
    """An application for neutrality: its tonnes wait IN_REVIEW, then are retired or released (art. 19)."""

    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"  # retired, certificate issued (by a reviewer, or at once under an auto-approval policy)
    REJECTED = "rejected"  # the tonnes went back to the same holder's HELD blocks, same serials


class NeutralityPolicy(Base):
    """The regulator's auto-approval policy for neutrality applications, one row per version (append-only):
    the highest version is in force. `max_tonnes` null: switched off, every application is reviewed."""

    __tablename__ = "cer_neutrality_policies"
    __table_args__ = (CheckConstraint("max_tonnes IS NULL OR max_tonnes > 0", name="max_tonnes_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(Integer, nullable=False, unique=True)
    # an application of at most this many tonnes by an organisation in good standing is approved at once
    max_tonnes: Mapped[int | None] = mapped_column(BigInteger)
    note: Mapped[str | None] = mapped_column(Text)
    set_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    set_at: Mapped[datetime] = mapped_column(nullable=False)


class Retirement(Base):
    """An application for carbon neutrality (自愿实施碳中和, art. 19) and, once approved, its retirement
    (注销) of CERs: a public claim. Decided once: pending_review -> approved | rejected."""

    __tablename__ = "cer_retirements"
    __table_args__ = (
        CheckConstraint(in_enum("subject_kind", SubjectKind), name="subject_kind_valid"),
        CheckConstraint(in_enum("status", RetirementStatus), name="status_valid"),
        CheckConstraint("footprint_kg > 0", name="footprint_positive"),
        CheckConstraint("tonnes * 1000 >= footprint_kg", name="covers_footprint"),
        CheckConstraint("period_end >= period_start", name="period_valid"),
        CheckConstraint("(status = 'approved') = (retired_at IS NOT NULL)", name="retired_when_approved"),
        CheckConstraint("(status = 'pending_review') = (decided_at IS NULL)", name="decided_unless_pending"),
        CheckConstraint("status <> 'rejected' OR decision_reason IS NOT NULL", name="rejection_has_reason"),
        Index("ix_cer_retirements_holder", "holder_id", "applied_at"),
        # the reviewers' queue, oldest first
        Index("ix_cer_retirements_pending", "applied_at", "id", postgresql_where=text("status = 'pending_review'")),
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
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    applied_at: Mapped[datetime] = mapped_column(nullable=False)
    retired_at: Mapped[datetime | None] = mapped_column()
    # who decided (null for an auto-approval or before migration 0012), when and why
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # the auto-approval policy version that approved it at once, if any
    policy_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cer_neutrality_policies.id"))


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


class CertificateRevocation(Base):
    """The regulator's revocation of a certificate (e.g. on fraud), with its reason. The certificate's
    signed bytes are never touched: verification reads this row beside them."""

    __tablename__ = "cer_certificate_revocations"

    certificate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cer_certificates.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    revoked_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    revoked_at: Mapped[datetime] = mapped_column(nullable=False)


class SigningKey(Base):
    """Public keys that have signed certificates; kept after rotation so old certificates verify."""

    __tablename__ = "cer_signing_keys"

    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    first_used_at: Mapped[datetime] = mapped_column(nullable=False)
    retired_at: Mapped[datetime | None] = mapped_column()
