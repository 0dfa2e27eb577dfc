"""The one convention for expected failures.

Every mutation returns `<Mutation>Payload { ...; errors: [<Mutation>Error!]! }`; each error
carries `code` (the mutation's own enum), `field` (the input field it is about, or null) and
`message`. Expected failures never become top-level GraphQL errors. Top-level errors are for
malformed requests and for internal errors, which are masked (see server/graphql_http.py)."""

from __future__ import annotations

import enum
from typing import Any

import strawberry
from graphql import GraphQLError

from core.errors import DomainError

# Codes every mutation can answer with, whatever it does.
COMMON_CODES = ("INVALID", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "RATE_LIMITED")
# Codes of the mutations that check a credential (schema.permissions.ChecksCredentials).
CREDENTIAL_CODES = ("TOO_MANY_ATTEMPTS",)


def error_codes(name: str, *codes: str, description: str | None = None) -> Any:
    """The error-code enum of one mutation: the common codes plus its own."""
    members = {code: code for code in dict.fromkeys((*COMMON_CODES, *codes))}
    return strawberry.enum(enum.Enum(name, members), description=description or f"Codes of {name[:-4]}s.")


@strawberry.interface(description="An expected failure of a mutation.")
class MutationError:
    field: str | None = strawberry.field(description="The input field the error is about, if any.")
    message: str
    retry_after: int | None = strawberry.field(
        default=None, description="For TOO_MANY_ATTEMPTS and RATE_LIMITED: whole seconds before trying again.")


def payload_error(error_cls: type, code: str, message: str, field: str | None = None,
                  retry_after: int | None = None) -> Any:
    """Build one error of `error_cls` (which has `code`, `field`, `message`)."""
    enum_cls = error_cls.__strawberry_definition__.get_field("code").type.wrapped_cls
    member = enum_cls.__members__.get(code) or enum_cls.__members__["INVALID"]
    return error_cls(code=member, field=field, message=message, retry_after=retry_after)


def domain_errors(error_cls: type, exc: DomainError) -> list[Any]:
    return [payload_error(error_cls, exc.code, exc.message, exc.field, getattr(exc, "retry_after", None))]


class PublicError(GraphQLError):
    """A top-level error whose message and code are safe to show (bad arguments, denied access)."""

    def __init__(self, message: str, code: str, **extensions: Any):
        super().__init__(message, extensions={"code": code, **extensions})
