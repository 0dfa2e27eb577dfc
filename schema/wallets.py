"""GraphQL types of carbon-point wallets, lots, journal entries and ledger totals."""

from __future__ import annotations

import enum
from datetime import date, datetime, timedelta

import strawberry

from core.clock import business_date
from wallets import audit
from wallets.models import EntryKind as DomainEntryKind
from wallets.models import PointLot, WalletEntry
from schema.scenarios import ScenarioRef

EntryKind = strawberry.enum(DomainEntryKind, name="WalletEntryKind",
                            description="credit, hold, release, cancel (注销 after use) or expire.")


@strawberry.enum(description="Order of lots by expiry.")
class LotOrder(enum.Enum):
    EXPIRY_ASC = "asc"
    EXPIRY_DESC = "desc"


@strawberry.type(name="PointLot", description="Points issued to the wallet on one day through one app, with one expiry.")
class PointLotType:
    id: strawberry.ID
    issue_date: date
    expires_at: datetime = strawberry.field(description="00:00 Asia/Shanghai on the anniversary; usable until then.")
    last_usable_day: date
    points_credited: int
    points_remaining: int
    points_held: int
    reduction_grams: int

    @classmethod
    def from_row(cls, row: PointLot) -> "PointLotType":
        return cls(id=strawberry.ID(str(row.id)), issue_date=row.issue_date, expires_at=row.expires_at,
                   last_usable_day=business_date(row.expires_at) - timedelta(days=1),
                   points_credited=row.points_credited, points_remaining=row.points_remaining,
                   points_held=row.points_held, reduction_grams=row.reduction_mg // 1000)



@strawberry.type(name="WalletEntry", description="One journal entry. History is append-only: nothing here ever changes.")
class WalletEntryType:
    id: strawberry.ID
    kind: EntryKind
    points: int
    at: datetime
    lot_id: strawberry.ID
    reduction_grams: int
    scenario: ScenarioRef | None = strawberry.field(
        default=None, description="A credit's scenario (art. 25-27): where the reported behaviour happened, if named.")

    @classmethod
    def from_row(cls, row: WalletEntry, scenarios: dict | None = None) -> "WalletEntryType":
        named = (scenarios or {}).get(row.report_id) if row.report_id else None
        return cls(id=strawberry.ID(str(row.id)), kind=DomainEntryKind(row.kind), points=row.points, at=row.at,
                   lot_id=strawberry.ID(str(row.lot_id)), reduction_grams=row.reduction_mg // 1000,
                   scenario=ScenarioRef.from_name(named) if named else None)



@strawberry.type(description="Points that expire on one day.")
class ExpiringDay:
    expires_on: date = strawberry.field(description="The points expire at 00:00 of this day (Asia/Shanghai).")
    points: int
    lots: int


@strawberry.type(name="ExpiryNotice", description="Notice that a lot's points expire within 30 days.")
class ExpiryNoticeType:
    lot_id: strawberry.ID
    points: int
    expires_at: datetime
    noticed_at: datetime



@strawberry.type(description="Ledger totals. issued = outstanding + held + cancelled + expired.")
class PointTotals:
    issued: int
    outstanding: int
    held: int
    cancelled: int
    expired: int
    reconciles: bool

    @classmethod
    def from_totals(cls, totals: audit.Totals) -> "PointTotals":
        return cls(issued=totals.issued, outstanding=totals.outstanding, held=totals.held,
                   cancelled=totals.cancelled, expired=totals.expired, reconciles=totals.reconciles)


@strawberry.type
class OperatorPointTotals:
    operator_id: strawberry.ID
    operator_name: str
    totals: PointTotals


@strawberry.type(description="A counter that differs from what the journal says.")
class LedgerMismatch:
    subject: str
    id: str
    field: str
    recorded: int
    recomputed: int


@strawberry.type(description="Every wallet and lot recomputed from the journal.")
class LedgerAudit:
    ok: bool
    totals: PointTotals
    mismatches: list[LedgerMismatch]
