"""The one convention for expected failures.

Every mutation returns `<Mutation>Payload { ...; errors: [<Mutation>Error!]! }`; each error
carries `code` (the mutation's own enum), `field` (the input field it is about, or null) and
`message`. Expected failures never become top-level GraphQL errors. Top-level errors are for
malformed requests and for internal errors, which are masked (see server/graphql_http.py).

A mutation's enum is built from the areas' code enums (core/errors.py: CoreCode, AccountCode,
WalletCode, MallCode...), so every code it names belongs to an area. A refusal whose code is not
in the mutation's enum is a bug, not an INVALID: `payload_error` raises UndeclaredErrorCode, which
the endpoint masks and logs like any internal error (tests/structure/test_conventions_error_codes.py checks
statically that every code a mutation's services can raise is declared)."""

from __future__ import annotations

import enum
from typing import Any

import strawberry
from graphql import GraphQLError

from core.errors import Code, CoreCode, DomainError

# Codes every mutation can answer with, whatever it does.
COMMON_CODES = (CoreCode.INVALID, CoreCode.UNAUTHENTICATED, CoreCode.FORBIDDEN, CoreCode.NOT_FOUND,
                CoreCode.RATE_LIMITED)
# Codes of the mutations that check a credential (schema.permissions.ChecksCredentials).
CREDENTIAL_CODES = (CoreCode.TOO_MANY_ATTEMPTS,)


class UndeclaredErrorCode(Exception):
    """A refusal with a code its mutation's enum lacks: a bug (add the code to the enum), answered
    as an internal error. Deliberately no DomainError, so it is never shown to the client."""


def error_codes(name: str, *codes: Code, description: str | None = None) -> Any:
    """The error-code enum of one mutation: the common codes plus its own, each a member of an
    area's code enum (e.g. MallCode.OUT_OF_STOCK, WalletCode.INSUFFICIENT_POINTS)."""
    for code in codes:
        if not isinstance(code, Code):
            raise TypeError(f"{name}: {code!r} is no area's error code (core.errors.Code)")
    members = {code.value: code.value for code in dict.fromkeys((*COMMON_CODES, *codes))}
    return strawberry.enum(enum.Enum(name, members), description=description or f"Codes of {name[:-4]}s.")


@strawberry.interface(description="An expected failure of a mutation.")
class MutationError:
    field: str | None = strawberry.field(description="The input field the error is about, if any.")
    message: str
    retry_after: int | None = strawberry.field(
        default=None, description="For TOO_MANY_ATTEMPTS and RATE_LIMITED: whole seconds before trying again.")


def payload_error(error_cls: type, code: str, message: str, field: str | None = None,
                  retry_after: int | None = None) -> Any:
    """Build one error of `error_cls` (which has `code`, `field`, `message`); `code` (a string or
    a Code) must be in its enum, else UndeclaredErrorCode."""
    enum_cls = code_enum(error_cls)
    member = enum_cls.__members__.get(str(code))
    if member is None:
        raise UndeclaredErrorCode(f"{code} is not a member of {enum_cls.__name__}")
    return error_cls(code=member, field=field, message=message, retry_after=retry_after)


def code_enum(error_cls: type) -> type[enum.Enum]:
    """The error-code enum of a mutation's typed error."""
    return error_cls.__strawberry_definition__.get_field("code").type.wrapped_cls


def error_type(payload: type) -> type:
    """The typed error of a mutation's payload: the item type of its `errors` field."""
    return payload.__strawberry_definition__.get_field("errors").type.of_type


def domain_errors(error_cls: type, exc: DomainError) -> list[Any]:
    """The payload's errors: one, or one per problem of a core.errors.DomainErrors."""
    return [payload_error(error_cls, e.code, e.message, e.field, getattr(e, "retry_after", None))
            for e in getattr(exc, "problems", None) or [exc]]


class PublicError(GraphQLError):
    """A top-level error whose message and code are safe to show (bad arguments, denied access)."""

    def __init__(self, message: str, code: str, **extensions: Any):
        super().__init__(message, extensions={"code": code, **extensions})
