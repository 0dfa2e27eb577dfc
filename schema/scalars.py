"""Scalars beyond GraphQL's built-ins."""

from __future__ import annotations

from typing import NewType

import strawberry

# GraphQL's Int is 32-bit; platform totals of points and grams outgrow it.
Long = strawberry.scalar(
    NewType("Long", int),
    name="Long",
    description="A 64-bit integer, sent as a JSON number (exact up to 2^53).",
    serialize=int,
    parse_value=lambda value: _parse_long(value),
)


def _parse_long(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("Long must be an integer")
    number = int(value)
    if abs(number) >= 2**63:
        raise ValueError("Long out of range")
    return number
