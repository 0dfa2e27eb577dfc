"""GraphQL types of the Measures' own period (art. 33): the versions of the rules and which governs."""

from __future__ import annotations

from datetime import date

import strawberry

from core.errors import CoreCode
from measures.errors import MeasuresCode
from measures.models import MeasuresVersion as VersionRow
from measures.service import MeasuresOnDay
from schema.errors import MutationError, error_codes


@strawberry.type(description="A version of the Measures (《深圳市碳普惠管理办法》) as published. Both ends of the period "
                             "are Asia/Shanghai days and included.")
class MeasuresVersion:
    version: int
    title: str
    source_reference: str
    effective_from: date
    effective_until: date | None = strawberry.field(description="Null: until a successor takes over.")
    max_point_validity_years: int = strawberry.field(
        description="The longest validity of points credited while this version governs; points already "
                    "credited keep their own expiry whatever a later version says.")
    text_sha256: str = strawberry.field(description="sha256 of the official text, to check a copy against.")

    @classmethod
    def from_row(cls, row: VersionRow) -> "MeasuresVersion":
        return cls(version=row.version, title=row.title, source_reference=row.source_reference,
                   effective_from=row.effective_from, effective_until=row.effective_until,
                   max_point_validity_years=row.max_point_validity_years, text_sha256=row.text_sha256)


@strawberry.type(description="The rules on one day (art. 33).")
class MeasuresInForce:
    day: date
    governing: MeasuresVersion | None = strawberry.field(
        description="The version that governs the day; null when the rules lapsed with no successor entered.")
    successor: MeasuresVersion | None = strawberry.field(description="The next version entered, if any.")
    lapsed: bool = strawberry.field(description="The last version's period is over and none follows.")
    days_left: int | None = strawberry.field(description="Days the governing version still governs, this one "
                                                         "included; null when open-ended.")
    lapses_without_successor: bool = strawberry.field(
        description="The governing version ends within 90 days and no version follows it on the next day.")

    @classmethod
    def from_day(cls, on: MeasuresOnDay) -> "MeasuresInForce":
        wrap = lambda row: MeasuresVersion.from_row(row) if row is not None else None  # noqa: E731
        return cls(day=on.day, governing=wrap(on.governing), successor=wrap(on.successor), lapsed=on.lapsed,
                   days_left=on.days_left, lapses_without_successor=on.lapses_without_successor)


@strawberry.input(description="A successor version of the Measures as published. It governs from effectiveFrom "
                              "(tomorrow at the earliest, after the latest version entered).")
class EnterMeasuresVersionInput:
    title: str
    source_reference: str = strawberry.field(description="Who published it and its document number (文号).")
    effective_from: date
    effective_until: date | None = None
    max_point_validity_years: int = 10
    text_sha256: str
    note: str | None = None
    idempotency_key: str


EnterMeasuresVersionErrorCode = error_codes(
    "EnterMeasuresVersionErrorCode", CoreCode.IDEMPOTENCY_KEY_REUSED, MeasuresCode.INVALID_VERSION, MeasuresCode.EFFECTIVE_IN_PAST,
    MeasuresCode.VALIDITY_OUT_OF_RANGE)


@strawberry.type
class EnterMeasuresVersionError(MutationError):
    code: EnterMeasuresVersionErrorCode


@strawberry.type
class EnterMeasuresVersionPayload:
    version: MeasuresVersion | None = None
    errors: list[EnterMeasuresVersionError] = strawberry.field(default_factory=list)
