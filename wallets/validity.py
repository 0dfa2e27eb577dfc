"""Validity of carbon points (Measures art. 22): points valid at most 10 years.

A lot's validity is the exchange rule's `validity_years`, 1 to 10 (MAX_VALIDITY_YEARS): credits
issued on local day D expire at 00:00 Asia/Shanghai on D's anniversary that many years later,
usable through the day before. 29 February's anniversary is 28 February."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

from core.clock import BUSINESS_TZ
from core.errors import DomainError
from wallets.errors import WalletCode

MAX_VALIDITY_YEARS = 10  # points valid at most 10 years
NOTICE_DAYS = 30  # expiry notices go out this many days before a lot expires


def anniversary(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def lot_expiry(issue_date: date, validity_years: int) -> datetime:
    """Credits issued on local day D expire at 00:00 Asia/Shanghai on D's anniversary
    `validity_years` later: usable through the day before, never longer than 10 years."""
    if not 1 <= validity_years <= MAX_VALIDITY_YEARS:
        raise DomainError(WalletCode.INVALID_VALIDITY, "Validity is 1 to 10 years.", "validityYears")
    local = datetime.combine(anniversary(issue_date, validity_years), time(0, 0), tzinfo=BUSINESS_TZ)
    return local.astimezone(timezone.utc)
