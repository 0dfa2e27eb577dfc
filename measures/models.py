"""Versions of the Measures (《深圳市碳普惠管理办法》, art. 33: in force from 2022-08-18 for five years).

Append-only: each row is one version of the rules as the regulator entered it (the 2022 Measures
are seeded by the migration). Nothing is edited; a successor is a new row."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, new_id


class MeasuresVersion(Base):
    __tablename__ = "measures_versions"
    __table_args__ = (
        UniqueConstraint("version", name="uq_measures_versions_version"),
        UniqueConstraint("effective_from", name="uq_measures_versions_effective_from"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("effective_until IS NULL OR effective_until >= effective_from", name="period_ordered"),
        CheckConstraint("max_point_validity_years BETWEEN 1 AND 10", name="validity_in_range"),
        CheckConstraint("text_sha256 ~ '^[0-9a-f]{64}$'", name="text_sha256_hex"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    source_reference: Mapped[str] = mapped_column(String(200), nullable=False)  # who published it, where (文号 when known)
    effective_from: Mapped[date] = mapped_column(Date, nullable=False)  # Asia/Shanghai days, both ends included
    effective_until: Mapped[date | None] = mapped_column(Date)  # None: until a successor takes over
    # the longest validity of points credited while this version governs (art. 22 of the 2022 Measures: 10)
    max_point_validity_years: Mapped[int] = mapped_column(Integer, nullable=False)
    text_sha256: Mapped[str] = mapped_column(String(64), nullable=False)  # of the official text as published
    entered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))  # None: seeded by the migration
    entered_at: Mapped[datetime] = mapped_column(nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
