"""A project's public notice (公示): 7 working days of notice (art. 16), on China's official working-day calendar.

A project published for notice may be declared from the day after its 7th full working day of
notice, counted from the day after publication (Asia/Shanghai dates); `notice_end` computes that
day on a `WorkingCalendar` and `notices_of` gives it for projects.

The State Council publishes each year's holidays and make-up working days (调休) in the December
before. A year's calendar comes from the `chinesecalendar` package when it covers the year, else
from the schedule the regulator entered (`enter_schedule`; append-only, the latest version of the
year counts), else it is provisional: Monday to Friday less the fixed-date statutory holidays. A
count that touched a provisional year says so (a front-end shows it as such), and a declaration
on it is refused until the year's schedule exists (neutrality/cers/projects.declare_project). The
date is recomputed whenever it is shown or a declaration is checked, so an entered schedule or an
updated package takes effect at once.

`notice_end` and `WorkingCalendar` are pure: the async functions load the entered schedules of
the years involved and pass them in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterable, Mapping

import chinese_calendar
from chinese_calendar import constants as package_data
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from accounts.service import record_audit_event
from core.clock import Clock, business_date
from core.errors import CoreCode, DomainError
from core.locks import lock_name
from neutrality.cers.models import Project, WorkingDaySchedule

NOTICE_WORKING_DAYS = 7
# statutory holidays on fixed solar dates (全国年节及纪念日放假办法, 2025 revision); the lunar ones
# (Spring Festival, Dragon Boat, Mid-autumn) and Qingming need the published calendar
FIXED_HOLIDAYS = {(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)}
PACKAGE_YEARS = range(min(package_data.holidays).year, max(package_data.holidays).year + 1)
# a year's breaks: 13 statutory days plus the weekends inside and around them; more is no schedule
MAX_HOLIDAYS = 60
MAX_MAKEUP_DAYS = 20
MAX_SOURCE = 500


@dataclass(frozen=True)
class Schedule:
    """One year's official schedule as entered: every day off of its breaks, and the weekend days
    worked instead (调休)."""

    year: int
    holidays: frozenset[date]
    makeup_workdays: frozenset[date]


@dataclass(frozen=True)
class WorkingCalendar:
    """Which days are working days: the package's years, then the entered schedules, else provisional."""

    entered: Mapping[int, Schedule] = field(default_factory=dict)

    def source(self, year: int) -> str | None:
        """'package', 'entered', or None for a provisional year."""
        if year in PACKAGE_YEARS:
            return "package"
        return "entered" if year in self.entered else None

    def is_official(self, day: date) -> bool:
        return self.source(day.year) is not None

    def is_working_day(self, day: date) -> bool:
        source = self.source(day.year)
        if source == "package":
            return chinese_calendar.is_workday(day)
        if source == "entered":
            schedule = self.entered[day.year]
            if day in schedule.makeup_workdays:
                return True
            return day.weekday() < 5 and day not in schedule.holidays
        # provisional: the year's holidays are not published yet
        return day.weekday() < 5 and (day.month, day.day) not in FIXED_HOLIDAYS


PACKAGE_ONLY = WorkingCalendar()


@dataclass(frozen=True)
class NoticeEnd:
    last_notice_day: date  # the last of the working days of notice
    declare_from: date  # the first date on which the declaration may be submitted
    provisional_years: tuple[int, ...] = ()  # years of the count with no official calendar

    @property
    def provisional(self) -> bool:
        """Some day in the count was outside the official calendar."""
        return bool(self.provisional_years)


def notice_end(published_on: date, working_days: int = NOTICE_WORKING_DAYS,
               calendar: WorkingCalendar = PACKAGE_ONLY) -> NoticeEnd:
    """Notice published on `published_on` (Asia/Shanghai) runs for `working_days` full working days,
    counted from the next day; the declaration may be submitted from the day after the last."""
    day, counted, provisional = published_on, 0, set()
    while counted < working_days:
        day += timedelta(days=1)
        if not calendar.is_official(day):
            provisional.add(day.year)
        if calendar.is_working_day(day):
            counted += 1
    return NoticeEnd(last_notice_day=day, declare_from=day + timedelta(days=1),
                     provisional_years=tuple(sorted(provisional)))


def _years_of_count(published_on: date) -> set[int]:
    # 7 working days never span more than a few weeks: the year of publication and the next
    return {published_on.year, published_on.year + 1}


async def load_calendar(*, session: AsyncSession, years: Iterable[int]) -> WorkingCalendar:
    """The calendar with the latest entered schedule of each of `years` the package does not cover."""
    wanted = sorted({y for y in years if y not in PACKAGE_YEARS})
    if not wanted:
        return PACKAGE_ONLY
    latest = (select(WorkingDaySchedule.year, func.max(WorkingDaySchedule.version).label("version"))
              .where(WorkingDaySchedule.year.in_(wanted)).group_by(WorkingDaySchedule.year).subquery())
    rows = (await session.scalars(select(WorkingDaySchedule).join(
        latest, (WorkingDaySchedule.year == latest.c.year) & (WorkingDaySchedule.version == latest.c.version)))).all()
    return WorkingCalendar(entered={r.year: Schedule(year=r.year, holidays=frozenset(r.holidays),
                                                     makeup_workdays=frozenset(r.makeup_workdays))
                                    for r in rows})


async def notice_for(*, session: AsyncSession, published_on: date) -> NoticeEnd:
    """When a notice published on this Shanghai date ends, on today's calendar data."""
    calendar = await load_calendar(session=session, years=_years_of_count(published_on))
    return notice_end(published_on, calendar=calendar)


async def notices_of(*, session: AsyncSession, projects: list[Project]) -> dict[uuid.UUID, NoticeEnd | None]:
    """When each project's notice ends (None before publication), recomputed from today's calendar data."""
    started = {p.id: business_date(p.notice_started_at) for p in projects if p.notice_started_at is not None}
    calendar = await load_calendar(session=session, years={y for d in started.values() for y in _years_of_count(d)})
    return {p.id: notice_end(started[p.id], calendar=calendar) if p.id in started else None for p in projects}


# --- the regulator's entry of a year's schedule -------------------------------------------------


def _check_schedule(year: int, holidays: list[date], makeup_workdays: list[date]) -> None:
    if not 2000 <= year <= 2100:
        raise DomainError(CoreCode.INVALID, "The year is 2000 to 2100.", "year")
    if year in PACKAGE_YEARS:
        raise DomainError(CoreCode.INVALID, f"The official calendar of {year} is already known from the "
                                            "chinesecalendar package.", "year")
    for name, days, most in (("holidays", holidays, MAX_HOLIDAYS), ("makeUpWorkdays", makeup_workdays,
                                                                    MAX_MAKEUP_DAYS)):
        if len(days) > most:
            raise DomainError(CoreCode.INVALID, f"A year has at most {most} such days.", name)
        if len(set(days)) != len(days):
            raise DomainError(CoreCode.INVALID, "A date is given twice.", name)
        outside = sorted(d for d in days if d.year != year)
        if outside:
            raise DomainError(CoreCode.INVALID, f"{outside[0].isoformat()} is not in {year}.", name)
    both = sorted(set(holidays) & set(makeup_workdays))
    if both:
        raise DomainError(CoreCode.INVALID, f"{both[0].isoformat()} is both a holiday and a make-up working day.",
                          "makeUpWorkdays")
    weekdays = sorted(d for d in makeup_workdays if d.weekday() < 5)
    if weekdays:
        raise DomainError(CoreCode.INVALID, f"{weekdays[0].isoformat()} is a weekday: make-up working days are "
                                            "Saturdays or Sundays.", "makeUpWorkdays")
    missing = sorted(d for d in (date(year, m, dd) for m, dd in FIXED_HOLIDAYS) if d not in holidays)
    if missing:
        raise DomainError(CoreCode.INVALID, f"{missing[0].isoformat()} is a statutory holiday: list every day "
                                            "off of the year's breaks.", "holidays")


async def enter_schedule(*, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, year: int,
                         holidays: list[date], makeup_workdays: list[date],
                         source_reference: str) -> WorkingDaySchedule:
    """Enter a year's official schedule as the State Council published it; a later entry for the
    same year is a correction, a new version that replaces it (nothing is edited)."""
    _check_schedule(year, holidays, makeup_workdays)
    source = (source_reference or "").strip()
    if not source:
        raise DomainError(CoreCode.INVALID, "Name the State Council notice the schedule comes from.",
                          "sourceReference")
    if len(source) > MAX_SOURCE:
        raise DomainError(CoreCode.INVALID, f"The source reference has at most {MAX_SOURCE} characters.",
                          "sourceReference")
    # one writer per year at a time: the version numbers stay dense and unique
    await lock_name(session, f"working-day-schedule:{year}")
    latest = await session.scalar(select(func.max(WorkingDaySchedule.version)).where(WorkingDaySchedule.year == year))
    row = WorkingDaySchedule(id=uuid.uuid4(), year=year, version=(latest or 0) + 1, holidays=sorted(holidays),
                             makeup_workdays=sorted(makeup_workdays), source_reference=source,
                             entered_by=regulator_id, entered_at=clock.now())
    session.add(row)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="working_day_schedule.entered",
                       subject_type="working_day_schedule", subject_id=row.id,
                       before={"year": year, "version": latest} if latest else None,
                       after={"year": year, "version": row.version, "holidays": len(row.holidays),
                              "makeup_workdays": len(row.makeup_workdays)})
    return row


@dataclass(frozen=True)
class CalendarYear:
    year: int
    source: str | None  # 'package', 'entered', None: provisional
    schedule: WorkingDaySchedule | None  # the entered version that counts, if any


async def calendar_years(*, session: AsyncSession, clock: Clock) -> list[CalendarYear]:
    """Every year known (the package's and those entered) and, up to next year, those still provisional."""
    rows = (await session.scalars(select(WorkingDaySchedule).order_by(WorkingDaySchedule.year,
                                                                     WorkingDaySchedule.version))).all()
    latest = {r.year: r for r in rows}  # the highest version last
    next_year = business_date(clock.now()).year + 1
    years = sorted({*PACKAGE_YEARS, *latest, *range(PACKAGE_YEARS.stop, next_year + 1)})
    return [CalendarYear(year=y, source="package" if y in PACKAGE_YEARS else ("entered" if y in latest else None),
                         schedule=latest.get(y) if y not in PACKAGE_YEARS else None)
            for y in years]
