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
    # an API key's scopes (accounts.models.ApiKeyScope values); None for a person's sign-in
    scopes: frozenset[str] | None = None

    def may(self, scope: str) -> bool:
        """Whether this caller may do what `scope` covers: a signed-in person always (their
        roles decide), an API key only with the scope."""
        return self.scopes is None or scope in self.scopes

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def key(self) -> str:
        """Stable string used for rate limits and idempotency records."""
        return f"acct:{self.account_id}"
