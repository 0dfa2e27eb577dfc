"""Domain errors: what a service function raises for an expected failure.

Resolvers turn them into the mutation's typed error payload; the `code` string must name a
member of that mutation's error-code enum (see schema/errors.py)."""

from __future__ import annotations


class DomainError(Exception):
    code: str = "INVALID"

    def __init__(self, code: str | None = None, message: str = "", field: str | None = None):
        super().__init__(message or code or self.code)
        if code is not None:
            self.code = code
        self.message = message or (code or self.code).replace("_", " ").capitalize()
        self.field = field


class NotFound(DomainError):
    code = "NOT_FOUND"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Conflict(DomainError):
    code = "CONFLICT"
