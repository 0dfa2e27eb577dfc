"""Small helpers every resolver module uses (a mutation runs through resolvers/runner.py)."""

from __future__ import annotations

import uuid

from core.errors import NotFound


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    """An id from a client; a malformed one is simply not found."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(message="Nothing has this id.", field=field) from None


def parse_optional_id(value: str | None) -> uuid.UUID | None:
    """An optional id filter from a client; a malformed one matches nothing."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return uuid.UUID(int=0)
