"""Which version of the Measures governs (art. 33), and a successor taking over.

The 2022 Measures are in force from 2022-08-18 for five years: through 2027-08-17 (Asia/Shanghai
days). The migration seeds them with the sha256 of their text; the regulator enters a successor
(`enter_version`) when one is published. On a day d the governing version is the one with the latest
`effective_from <= d`, unless its own `effective_until` has passed: then none governs ("lapsed").
Versions are append-only, so what governed any past day never changes.

What a successor changes and what it does not:
- Points already credited keep their lot's expiry (wallets/validity.py computes it once, at credit,
  and lots are never rewritten): a successor cannot shorten or lengthen them, and the expiry sweep
  reads only the lot.
- It may set a shorter longest validity for points credited while it governs; an exchange rule
  (reductions/service.create_exchange_rule) is held to the version governing on its first day.
- A lapse is shown (`measuresInForce.lapsed`, and `lapsesWithoutSuccessor` ahead of time), not
  enforced by stopping reports: the platform keeps its published rules until the regulator enters
  what replaces them, and the regulator sees the warning from 90 days ahead.

Lock order: entering a version takes the named lock `measures_versions` (core/locks.py) first, so
two entries are numbered and ordered one after the other; the audit event is its last step."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.service import record_audit_event
from core.clock import Clock, business_date
from core.errors import DomainError
from core.locks import lock_name
from core.text import clean_text
from measures.errors import MeasuresCode
from measures.models import MeasuresVersion

WARN_DAYS = 90  # the regulator is warned this many days before the rules lapse without a successor
MAX_POINT_VALIDITY_YEARS = 10
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class MeasuresOnDay:
    """The rules on one day: the governing version (None when lapsed or before the first), the next
    version entered after it, and how long the governing one has left."""

    day: date
    governing: MeasuresVersion | None
    successor: MeasuresVersion | None
    lapsed: bool

    @property
    def days_left(self) -> int | None:
        """Days the governing version still governs, this day included (None: open-ended or none)."""
        if self.governing is None or self.governing.effective_until is None:
            return None
        last = self.governing.effective_until
        if self.successor is not None and self.successor.effective_from <= last:
            last = self.successor.effective_from - timedelta(days=1)
        return (last - self.day).days + 1

    @property
    def lapses_without_successor(self) -> bool:
        """The governing version ends within WARN_DAYS and no version follows on the next day."""
        if self.governing is None or self.governing.effective_until is None:
            return False
        end = self.governing.effective_until
        if self.successor is not None and self.successor.effective_from <= end + timedelta(days=1):
            return False
        return (end - self.day).days < WARN_DAYS


async def versions(*, session: AsyncSession) -> list[MeasuresVersion]:
    """Every version, oldest first."""
    return list((await session.scalars(select(MeasuresVersion).order_by(MeasuresVersion.version))).all())


def _on_day(rows: list[MeasuresVersion], day: date) -> MeasuresOnDay:
    started = [v for v in rows if v.effective_from <= day]
    latest = max(started, key=lambda v: v.effective_from, default=None)
    later = [v for v in rows if v.effective_from > day]
    successor = min(later, key=lambda v: v.effective_from, default=None)
    lapsed = latest is not None and latest.effective_until is not None and day > latest.effective_until
    return MeasuresOnDay(day=day, governing=None if lapsed else latest, successor=successor, lapsed=lapsed)


async def measures_on(*, session: AsyncSession, clock: Clock, day: date | None = None) -> MeasuresOnDay:
    """The rules governing `day` (today in Asia/Shanghai when None)."""
    return _on_day(await versions(session=session), day or business_date(clock.now()))


async def max_point_validity_years(*, session: AsyncSession, day: date) -> int:
    """The longest validity of points credited on `day`: the governing version's, else (lapsed or
    before the first) the latest version's that started by then, else 10 (art. 22)."""
    rows = await versions(session=session)
    on_day = _on_day(rows, day)
    if on_day.governing is not None:
        return on_day.governing.max_point_validity_years
    started = [v for v in rows if v.effective_from <= day]
    return max(started, key=lambda v: v.effective_from).max_point_validity_years if started \
        else MAX_POINT_VALIDITY_YEARS


async def enter_version(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, title: str,
                        source_reference: str, effective_from: date, effective_until: date | None,
                        max_point_validity_years: int, text_sha256: str, note: str | None = None) -> MeasuresVersion:
    """Enter a successor version of the Measures as published; it governs from `effective_from`."""
    title = clean_text(title, field="title", what="title", limit=200, code=MeasuresCode.INVALID_VERSION)
    source = clean_text(source_reference, field="sourceReference", what="source reference", limit=200,
                        code=MeasuresCode.INVALID_VERSION)
    note = clean_text(note, field="note", what="note", limit=2000, code=MeasuresCode.INVALID_VERSION,
                      required=False, multiline=True)
    digest = (text_sha256 or "").strip().lower()
    if not SHA256.fullmatch(digest):
        raise DomainError(MeasuresCode.INVALID_VERSION, "textSha256 is the 64 hex digits of the official text's sha256.",
                          "textSha256")
    if not 1 <= max_point_validity_years <= MAX_POINT_VALIDITY_YEARS:
        raise DomainError(MeasuresCode.VALIDITY_OUT_OF_RANGE, "Points are valid 1 to 10 years.",
                          "maxPointValidityYears")
    if effective_until is not None and effective_until < effective_from:
        raise DomainError(MeasuresCode.INVALID_VERSION, "The version cannot end before it starts.", "effectiveUntil")
    today = business_date(clock.now())
    if effective_from <= today:
        raise DomainError(MeasuresCode.EFFECTIVE_IN_PAST,
                          f"A version takes over from tomorrow at the earliest ({today + timedelta(days=1)}).",
                          "effectiveFrom")
    await lock_name(session, "measures_versions")
    rows = await versions(session=session)
    latest = max(rows, key=lambda v: v.effective_from, default=None)
    if latest is not None and effective_from <= latest.effective_from:
        raise DomainError(MeasuresCode.EFFECTIVE_IN_PAST,
                          f"A successor starts after the latest version entered (from {latest.effective_from}).",
                          "effectiveFrom")
    before = _on_day(rows, effective_from).governing
    row = MeasuresVersion(version=max((v.version for v in rows), default=0) + 1, title=title, source_reference=source,
                          effective_from=effective_from, effective_until=effective_until,
                          max_point_validity_years=max_point_validity_years, text_sha256=digest,
                          entered_by=regulator_id, entered_at=clock.now(), note=note)
    session.add(row)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="measures.version_entered",
                       subject_type="measures_version", subject_id=row.id,
                       before={"governingFrom": str(effective_from),
                               "version": before.version if before is not None else None},
                       after={"version": row.version, "effectiveFrom": str(effective_from),
                              "effectiveUntil": str(effective_until) if effective_until else None,
                              "maxPointValidityYears": max_point_validity_years, "textSha256": digest})
    return row
