"""A project's public notice (公示): 7 working days of notice (art. 16), on China's official working-day calendar.

A project published for notice may be declared from the day after its 7th full working day of
notice, counted from the day after publication (Asia/Shanghai dates); `notice_end` computes that
day and `notice_of` gives it for a project.

The State Council publishes each year's holidays and make-up working days (调休) in the December
before; the `chinesecalendar` package carries them. For a year it does not cover yet we count
Monday to Friday less the fixed-date statutory holidays and call the answer provisional, so a
front-end can show it as such; the date is recomputed whenever a declaration is checked, so an
updated package takes effect at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import chinese_calendar

from core.clock import business_date
from neutrality.cers.models import Project

NOTICE_WORKING_DAYS = 7
# statutory holidays on fixed solar dates (全国年节及纪念日放假办法, 2025 revision); the lunar ones
# (Spring Festival, Dragon Boat, Mid-autumn) and Qingming need the published calendar
FIXED_HOLIDAYS = {(1, 1), (5, 1), (5, 2), (10, 1), (10, 2), (10, 3)}


def is_official(day: date) -> bool:
    """Whether the official calendar covers this day's year."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def is_working_day(day: date) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        # provisional: the year's holidays are not published yet
        return day.weekday() < 5 and (day.month, day.day) not in FIXED_HOLIDAYS


@dataclass(frozen=True)
class NoticeEnd:
    last_notice_day: date  # the last of the working days of notice
    declare_from: date  # the first date on which the declaration may be submitted
    provisional: bool  # some day in the count was outside the official calendar


def notice_end(published_on: date, working_days: int = NOTICE_WORKING_DAYS) -> NoticeEnd:
    """Notice published on `published_on` (Asia/Shanghai) runs for `working_days` full working days,
    counted from the next day; the declaration may be submitted from the day after the last."""
    day, counted, provisional = published_on, 0, False
    while counted < working_days:
        day += timedelta(days=1)
        provisional = provisional or not is_official(day)
        if is_working_day(day):
            counted += 1
    return NoticeEnd(last_notice_day=day, declare_from=day + timedelta(days=1), provisional=provisional)


def notice_of(project: Project) -> NoticeEnd | None:
    """When the project's notice ends, recomputed from today's calendar data."""
    if project.notice_started_at is None:
        return None
    return notice_end(business_date(project.notice_started_at))
