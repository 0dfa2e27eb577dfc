"""Free text from a client, cleaned one way everywhere: names, subjects, reasons, opinions.

Trimmed and NFC-normalised (so the same words compare and print the same), at most `limit`
characters, and no control characters: they would end up on paper (certificates) or in public
pages. Multi-line text (reasons, opinions) keeps its line breaks and tabs."""

from __future__ import annotations

import unicodedata

from core.errors import Code, DomainError

CONTROL = ("Cc", "Cf", "Cs", "Co")
LINE_BREAKS = frozenset("\n\r\t")


def clean_text(value: str | None, *, field: str, what: str, limit: int, code: Code | str,
               required: bool = True, multiline: bool = False) -> str | None:
    """The cleaned text; blank is refused with `code` when `required`, else None. Too long or with
    control characters is refused with `code` too."""
    cleaned = unicodedata.normalize("NFC", (value or "").strip())
    if not cleaned:
        if required:
            raise DomainError(code, f"Give the {what}.", field=field)
        return None
    if len(cleaned) > limit:
        raise DomainError(code, f"The {what} must be 1 to {limit:,} characters.", field=field)
    if any(unicodedata.category(ch) in CONTROL and not (multiline and ch in LINE_BREAKS) for ch in cleaned):
        raise DomainError(code, f"The {what} must not contain control characters.", field=field)
    return cleaned
