"""The tables of scenarios (碳普惠场景, art. 25-28): applications, their documents and journal, marks,
the marks' status history and the per-year mark counter.

A scenario is the place or institution an approved organisation (the operating body, 运营主体)
applies for (art. 27); the application is the scenario: under review, then granted (it gets a mark)
or refused. A mark (标识) is numbered `SZCS-<year>-<4 digits>` from a per-year counter, valid from
its grant until `valid_until`; its status history (scenario_mark_events) says what it was at any
moment, so a report of behaviour is judged by the mark's status at the behaviour's time. Expiry is
no stored status: a mark past `valid_until` is expired, computed from the clock."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (BigInteger, CheckConstraint, ForeignKey, Identity, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, in_enum, new_id


class ScenarioKind(str, enum.Enum):
    """What kind of place or institution offers and records the behaviour (art. 25)."""

    MALL = "mall"  # 商场 (a business premises)
    PARK = "park"  # 公园 (a public place)
    METRO_LINE = "metro_line"  # 地铁线路
    BUS_ROUTE = "bus_route"  # 公交线路
    CAMPUS = "campus"  # 校园
    OFFICE = "office"  # 办公楼宇
    COMMUNITY = "community"  # 社区
    PUBLIC_INSTITUTION = "public_institution"  # 公共机构
    OTHER = "other"


class District(str, enum.Enum):
    """Shenzhen's administrative districts (and the two functional areas the city lists with them);
    CITYWIDE for a scenario spanning several (a metro line)."""

    FUTIAN = "futian"  # 福田区
    LUOHU = "luohu"  # 罗湖区
    YANTIAN = "yantian"  # 盐田区
    NANSHAN = "nanshan"  # 南山区
    BAOAN = "baoan"  # 宝安区
    LONGGANG = "longgang"  # 龙岗区
    LONGHUA = "longhua"  # 龙华区
    PINGSHAN = "pingshan"  # 坪山区
    GUANGMING = "guangming"  # 光明区
    DAPENG = "dapeng"  # 大鹏新区
    SHENSHAN = "shenshan"  # 深汕特别合作区
    CITYWIDE = "citywide"  # 跨区 (several districts)


class ScenarioStatus(str, enum.Enum):
    """UNDER_REVIEW from submission (drawn scenario experts evaluate it), then GRANTED (a mark) or REFUSED."""

    UNDER_REVIEW = "under_review"
    GRANTED = "granted"
    REFUSED = "refused"


class MarkStatus(str, enum.Enum):
    """A mark's stored status; EXPIRED is never stored, it is read from the clock (past valid_until)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"  # final
    EXPIRED = "expired"


STORED_MARK_STATUSES = (MarkStatus.ACTIVE, MarkStatus.SUSPENDED, MarkStatus.WITHDRAWN)


class Scenario(Base):
    """An application to create a scenario (art. 27), and the scenario once granted."""

    __tablename__ = "scenarios"
    __table_args__ = (
        CheckConstraint(in_enum("status", ScenarioStatus), name="status_valid"),
        CheckConstraint(in_enum("kind", ScenarioKind), name="kind_valid"),
        CheckConstraint(in_enum("district", District), name="district_valid"),
        CheckConstraint("cardinality(methodology_codes) BETWEEN 1 AND 20", name="behaviours_listed"),
        Index("ix_scenarios_applicant", "applicant_id", "submitted_at", "id"),
        Index("ix_scenarios_status", "status", "submitted_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    applicant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    address: Mapped[str] = mapped_column(String(300), nullable=False)
    district: Mapped[str] = mapped_column(String(16), nullable=False)
    # the behaviours recorded there: codes of methodologies in force when it applied
    methodology_codes: Mapped[list[str]] = mapped_column(ARRAY(String(40)), nullable=False)
    # the art. 28 pledge accepted: its version and the sha256 of its text
    pledge_version: Mapped[str] = mapped_column(String(20), nullable=False)
    pledge_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    review_id: Mapped[uuid.UUID | None] = mapped_column()
    submitted_at: Mapped[datetime] = mapped_column(nullable=False)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)


class ScenarioDocument(Base):
    """A document of an application, its bytes next to their sha256 (as methodology documents are:
    the record of what the experts evaluated commits with the application; capped in size)."""

    __tablename__ = "scenario_documents"
    __table_args__ = (
        UniqueConstraint("scenario_id", "file_name", name="uq_scenario_documents_scenario_name"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    scenario_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenarios.id"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    file_name: Mapped[str] = mapped_column(String(200), nullable=False)
    media_type: Mapped[str] = mapped_column(String(100), nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class ScenarioEvent(Base):
    """The journal of a scenario: submitted, granted, refused, suspended, reinstated, withdrawn."""

    __tablename__ = "scenario_events"
    __table_args__ = (Index("ix_scenario_events_scenario", "scenario_id", "seq"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    scenario_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenarios.id"), nullable=False)
    event: Mapped[str] = mapped_column(String(20), nullable=False)
    actor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    note: Mapped[str | None] = mapped_column(Text)


class ScenarioMark(Base):
    """The mark (标识) of a granted scenario: one per scenario, numbered per year of grant."""

    __tablename__ = "scenario_marks"
    __table_args__ = (
        UniqueConstraint("scenario_id", name="uq_scenario_marks_scenario_id"),
        UniqueConstraint("number", name="uq_scenario_marks_number"),
        UniqueConstraint("year", "sequence", name="uq_scenario_marks_year_sequence"),
        CheckConstraint("status IN ('active', 'suspended', 'withdrawn')", name="status_valid"),
        CheckConstraint("valid_until > granted_at", name="validity_positive"),
        CheckConstraint("sequence BETWEEN 1 AND 9999", name="sequence_range"),
        Index("ix_scenario_marks_granted", "granted_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    scenario_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenarios.id"), nullable=False)
    number: Mapped[str] = mapped_column(String(16), nullable=False)
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    granted_at: Mapped[datetime] = mapped_column(nullable=False)
    valid_until: Mapped[datetime] = mapped_column(nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    status_reason: Mapped[str | None] = mapped_column(Text)
    status_changed_at: Mapped[datetime] = mapped_column(nullable=False)


class ScenarioMarkEvent(Base):
    """A mark's status from `at` on (granted active, suspended, reinstated active, withdrawn):
    the status at a moment is that of the last event at or before it."""

    __tablename__ = "scenario_mark_events"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'withdrawn')", name="status_valid"),
        Index("ix_scenario_mark_events_mark", "mark_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False, unique=True)
    mark_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("scenario_marks.id"), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    actor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)


class ScenarioMarkCounter(Base):
    """The last mark sequence of a year (Asia/Shanghai year of the grant). A grant takes the next one
    with one upsert, whose row lock lasts until commit: parallel grants get consecutive numbers."""

    __tablename__ = "scenario_mark_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_sequence: Mapped[int] = mapped_column(Integer, nullable=False)
