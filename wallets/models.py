"""Carbon-point wallets and their ledger (art. 20-23).

- A wallet belongs to one individual; its id is the individual's account id.
- A lot holds the points one app operator's reports earned a wallet on one business day
  (Asia/Shanghai), with one expiry: however many reports arrive, a wallet gets at most one lot
  per issue date and reporting operator (so every point stays attributable to its operator).
- Every change is an append-only journal entry: credit, hold, release, cancel (after use),
  expire. The wallet's and lots' counters are caches of the journal; `ledger_audit` recomputes
  them and reports any difference.
- No entry moves points between wallets: there is no transfer, by design (art. 23)."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, new_id


class EntryKind(str, enum.Enum):
    CREDIT = "credit"
    HOLD = "hold"
    RELEASE = "release"
    CANCEL = "cancel"  # 注销 after use: held points consumed for good
    EXPIRE = "expire"


class HoldStatus(str, enum.Enum):
    PENDING = "pending"
    POSTED = "posted"  # used: the points were cancelled
    VOIDED = "voided"  # released back to the lots they came from


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("available_points >= 0", name="available_not_negative"),
        CheckConstraint("held_points >= 0", name="held_not_negative"),
        CheckConstraint("remainder_num >= 0 AND remainder_den > 0 AND remainder_num < remainder_den",
                        name="remainder_is_a_fraction"),
    )

    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    available_points: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    held_points: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    lifetime_points: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # CO2e of the reports points were credited for (fractions carried included)...
    lifetime_reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    # ...and of every report credited, with the part over a daily cap that earned no points
    lifetime_reported_reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0,
                                                                server_default=text("0"))
    # the fraction of a point not yet credited, exactly: remainder_num / remainder_den
    remainder_num: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    remainder_den: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class PointLot(Base):
    __tablename__ = "point_lots"
    __table_args__ = (
        Index("uq_point_lots_wallet_day", "wallet_id", "issue_date", "expires_at", "operator_account_id",
              unique=True),
        Index("ix_point_lots_wallet_expiry", "wallet_id", "expires_at"),
        # the expiry sweep reads only lots that still hold points
        Index("ix_point_lots_due", "expires_at", postgresql_where=text("points_remaining > 0")),
        CheckConstraint("points_remaining >= 0", name="remaining_not_negative"),
        CheckConstraint("points_held >= 0", name="held_not_negative"),
        CheckConstraint("points_remaining + points_held <= points_credited", name="within_credited"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    wallet_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    issue_date: Mapped[date] = mapped_column(Date, nullable=False)
    # 00:00 Asia/Shanghai on the anniversary of issue_date, validity years later
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    # the app operator whose reports earned these points (art. 21)
    operator_account_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    points_credited: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    points_remaining: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    points_held: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class WalletEntry(Base):
    """The journal. Immutable: never updated, never deleted."""

    __tablename__ = "wallet_entries"
    __table_args__ = (
        Index("ix_wallet_entries_wallet_at", "wallet_id", "at", "id"),
        Index("ix_wallet_entries_lot", "lot_id"),
        CheckConstraint("points >= 0", name="points_not_negative"),
        CheckConstraint("kind IN ('credit', 'hold', 'release', 'cancel', 'expire')", name="kind_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    wallet_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    lot_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    at: Mapped[datetime] = mapped_column(nullable=False)
    report_id: Mapped[uuid.UUID | None] = mapped_column()  # credit: the behaviour report
    rule_id: Mapped[uuid.UUID | None] = mapped_column()  # credit: the exchange rule applied
    hold_id: Mapped[uuid.UUID | None] = mapped_column()  # hold, release, cancel
    expiry_run_id: Mapped[uuid.UUID | None] = mapped_column()  # expire by a sweep


class PointHold(Base):
    """Points set aside for a purchase: pending -> posted (used, cancelled) | voided (released).
    The id is chosen by the caller, so a retried hold is recognised."""

    __tablename__ = "point_holds"
    __table_args__ = (
        Index("ix_point_holds_wallet", "wallet_id", "created_at"),
        CheckConstraint("points > 0", name="points_positive"),
        CheckConstraint("status IN ('pending', 'posted', 'voided')", name="status_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False)
    reference: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    settled_at: Mapped[datetime | None] = mapped_column()


class HoldDraw(Base):
    """Which lots a hold drew from, and how much: a release returns exactly these."""

    __tablename__ = "hold_draws"

    hold_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("point_holds.id"), primary_key=True)
    lot_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ExpiryRun(Base):
    """The cancellation record of one expiry sweep: what it expired, as of when."""

    __tablename__ = "expiry_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    as_of: Mapped[datetime] = mapped_column(nullable=False)
    started_at: Mapped[datetime] = mapped_column(nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column()
    lots_expired: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    points_expired: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


class ExpiryNotice(Base):
    """One notice per lot, 30 days before it expires."""

    __tablename__ = "expiry_notices"
    __table_args__ = (Index("ix_expiry_notices_wallet", "wallet_id", "expires_at"),)

    lot_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    points: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
