"""Who is calling: the authenticated account, the roles it holds now, and how it signed in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    account_id: uuid.UUID
    kind: str
    roles: frozenset[str]
    # "password" for a person or organisation signed in with a token; "api_key" for a machine
    via: str
    family_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def key(self) -> str:
        """Stable string used for rate limits and idempotency records."""
        return f"acct:{self.account_id}"
