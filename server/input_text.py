"""Every string a client sends is checked once, here, before any resolver sees it.

The GraphQL endpoint passes the variables and the document's string literals through `clean`:
- refused: NUL and the other control characters but tab, line feed and carriage return
  (PostgreSQL cannot store NUL in text, and a NUL used to surface as INTERNAL_SERVER_ERROR);
  unpaired surrogates (not Unicode text; no driver can encode them); the bidirectional
  embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069), which make a name
  or a voucher code display as something other than what it is; and text made only of
  invisible format characters (zero-width spaces and joiners, word joiners, BOMs), which makes
  a name that looks empty;
- normalised: to Unicode NFC, so that "é" typed as one code point or as e + combining accent
  is one string in a unique index, a comparison and a password.

A refusal is a BAD_USER_INPUT error naming where the string was (`$input.displayName`), and the
request runs nothing. Domain validators keep the rules that depend on the field (lengths, formats)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_BIDI_CONTROL = re.compile(r"[\u202a-\u202e\u2066-\u2069]")


class BadText(ValueError):
    def __init__(self, where: str, reason: str):
        super().__init__(f"{where} {reason}.")
        self.where, self.reason = where, reason


def _invisible_only(value: str) -> bool:
    """Has format characters (category Cf) and nothing visible besides whitespace."""
    seen_format = False
    for char in value:
        if unicodedata.category(char) == "Cf":
            seen_format = True
        elif not char.isspace():
            return False
    return seen_format


def clean(value: str, where: str) -> str:
    """The NFC form of `value`, or BadText saying what is wrong with it."""
    if value.isascii():  # the common case: only the control characters can be wrong
        if _CONTROL.search(value):
            raise BadText(where, "contains a control character (such as NUL)")
        return value
    if _CONTROL.search(value):
        raise BadText(where, "contains a control character (such as NUL)")
    if _SURROGATE.search(value):
        raise BadText(where, "contains an unpaired surrogate (not Unicode text)")
    if _BIDI_CONTROL.search(value):
        raise BadText(where, "contains a bidirectional override or isolate control")
    if _invisible_only(value):
        raise BadText(where, "has only invisible characters")
    return unicodedata.normalize("NFC", value)


def clean_values(value: Any, where: str) -> Any:
    """The same JSON value with every string (and object key) cleaned."""
    if isinstance(value, str):
        return clean(value, where)
    if isinstance(value, dict):
        return {clean(key, f"{where} (a key)"): clean_values(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [clean_values(item, f"{where}.{index}") for index, item in enumerate(value)]
    return value
