"""Domain errors: what a service function raises for an expected failure, and the codes they carry.

Resolvers turn them into the mutation's typed error payload; the `code` must name a member of that
mutation's error-code enum (schema/errors.py builds those enums from the area enums below; a code
missing from it fails loudly, as an internal error). Each area owns its codes: `CoreCode` here
(the ones every area shares), `AccountCode` in accounts/errors.py, `WalletCode` in
wallets/errors.py, `MallCode` in mall/errors.py, `ReductionCode` in reductions/errors.py, and
`RegistryCode`, `MarketCode`, `NeutralityCode` in neutrality/errors.py. They are `str` enums, so
`CoreCode.NOT_FOUND == "NOT_FOUND"` and a member goes wherever a code string does
(tests/structure/test_conventions_error_codes.py keeps every raised code in its area's enum)."""

from __future__ import annotations

import enum


class Code(str, enum.Enum):
    """An error code: its name is its value."""

    def __str__(self) -> str:
        return self.value


class CoreCode(Code):
    """Codes any mutation or query can answer with, whatever the area."""

    INVALID = "INVALID"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    CONFLICT = "CONFLICT"
    # the idempotency-key convention (core/idempotency.py)
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    # the sign-in throttle (accounts/sign_in_throttle.py) on the fields that check a credential
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    # paging (core/keyset.py): top-level errors of query fields
    INVALID_CURSOR = "INVALID_CURSOR"
    INVALID_PAGE_SIZE = "INVALID_PAGE_SIZE"


class DomainError(Exception):
    code: str = CoreCode.INVALID.value

    def __init__(self, code: str | None = None, message: str = "", field: str | None = None):
        super().__init__(message or code or self.code)
        if code is not None:
            self.code = str(code)
        self.message = message or (code or self.code).replace("_", " ").capitalize()
        self.field = field


class DomainErrors(DomainError):
    """Several expected failures at once, each its own typed error in the payload (an incomplete
    application names every missing item). Carries the first one's code for code that reads one."""

    def __init__(self, problems: list[DomainError]):
        first = problems[0]
        super().__init__(first.code, first.message, first.field)
        self.problems = list(problems)


class NotFound(DomainError):
    code = CoreCode.NOT_FOUND.value


class Forbidden(DomainError):
    code = CoreCode.FORBIDDEN.value


class Conflict(DomainError):
    code = CoreCode.CONFLICT.value
