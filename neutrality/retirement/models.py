"""The tables of carbon neutrality (art. 19): retirements of CERs, their signed certificates, the signing keys."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, in_enum, new_id


class SubjectKind(str, enum.Enum):
    EVENT = "event"
    PRODUCT = "product"
    ORGANISATION_YEAR = "organisation_year"


class Retirement(Base):
    """Retirement (注销) of CERs for carbon neutrality (自愿实施碳中和, art. 19): a public claim."""

    __tablename__ = "cer_retirements"
    __table_args__ = (
        CheckConstraint(in_enum("subject_kind", SubjectKind), name="subject_kind_valid"),
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
