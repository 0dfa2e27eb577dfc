"""Input normalisation for accounts: what we accept as an email, a phone, a password, an ID number."""

from __future__ import annotations

import re

from accounts.errors import AccountCode
from core.errors import CoreCode, DomainError

_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 128


def email(value: str | None, field: str = "email") -> str | None:
    if value is None or value.strip() == "":
        return None
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise DomainError(AccountCode.INVALID_EMAIL, "That is not a valid email address.", field)
    return value


def phone(value: str | None, field: str = "phone") -> str | None:
    if value is None or value.strip() == "":
        return None
    compact = re.sub(r"[\s\-()]", "", value)
    if not _PHONE.match(compact):
        raise DomainError(AccountCode.INVALID_PHONE, "A phone number has 6 to 15 digits, optionally after +.", field)
    # mainland mobile numbers written without a country code
    if not compact.startswith("+"):
        compact = "+86" + compact if len(compact) == 11 and compact.startswith("1") else "+" + compact
    return compact


def password(value: str, field: str = "password") -> str:
    if len(value) < MIN_PASSWORD or len(value) > MAX_PASSWORD:
        raise DomainError(
            AccountCode.WEAK_PASSWORD, f"A password has {MIN_PASSWORD} to {MAX_PASSWORD} characters.", field
        )
    if value.strip() == "" or len(set(value)) < 4:
        raise DomainError(AccountCode.WEAK_PASSWORD, "That password is too easy to guess.", field)
    return value


def display_name(value: str, field: str = "displayName") -> str:
    value = " ".join(value.split())
    if not value or len(value) > 200:
        raise DomainError(CoreCode.INVALID, "A name has 1 to 200 characters.", field)
    return value


def text(value: str | None, limit: int, field: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise DomainError(CoreCode.INVALID, f"At most {limit} characters.", field)
    return value or None


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def national_id(value: str | None, field: str = "nationalId") -> str | None:
    """A mainland resident identity number (GB 11643-1999, 18 characters with checksum)."""
    if value is None or value.strip() == "":
        return None
    value = value.strip().upper()
    if not re.fullmatch(r"[0-9]{17}[0-9X]", value):
        raise DomainError(AccountCode.INVALID_NATIONAL_ID, "An identity number has 18 characters.", field)
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS))
    if _ID_CHECK[total % 11] != value[17]:
        raise DomainError(AccountCode.INVALID_NATIONAL_ID, "The identity number's check digit is wrong.", field)
    return value
