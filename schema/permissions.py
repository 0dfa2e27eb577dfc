"""Who may use a field or mutation, declared next to it:

    @strawberry.mutation(extensions=[Allow(Role.REGULATOR)])

`Allow` checks the caller's roles before the resolver runs. A refused mutation answers with its
own payload carrying an UNAUTHENTICATED or FORBIDDEN error; a refused query field raises a
top-level error with the same code. Ownership (a person sees only their own wallet...) is the
resolver's job: it scopes every query to the caller, so another's data is simply not found."""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from strawberry.extensions import FieldExtension
from strawberry.types import get_object_definition
from strawberry.types.field import StrawberryField

from accounts.models import ApiKeyScope, Role
from accounts.principal import Principal
from accounts.service import APPLICABLE_ROLES
from schema.errors import PublicError, payload_error

ANYONE = "anyone"
# An organisation holding a role the regulator approved (APP_OPERATOR, MERCHANT, VERIFIER), not one that just
# signed up: "any approved organisation" (art. 11)
APPROVED_ORGANISATIONS = tuple(Role(role) for role, approved in APPLICABLE_ROLES.items() if approved)
# Anyone who can hold CERs: they may resell, retire and see their holdings (art. 19).
CER_HOLDERS = (Role.PROJECT_OWNER, Role.ORGANISATION, Role.INDIVIDUAL)


class Allow(FieldExtension):
    def __init__(self, *roles: Role | str, anyone: bool = False, signed_in: bool = False,
                 password_session: bool = False, scope: ApiKeyScope | None = None) -> None:
        """roles: any of these active roles may call. anyone: no sign-in needed.
        signed_in: any authenticated caller. password_session: refuse API keys (credential
        management needs a person's sign-in). scope: what an API key must have been given to
        call this (every mutation a key may call names one)."""
        self.roles = frozenset(r.value if isinstance(r, Role) else r for r in roles)
        self.anyone = anyone
        self.signed_in = signed_in or not roles
        self.password_session = password_session
        self.scope = scope
        self._payload: type | None = None
        self._error: type | None = None

    def apply(self, field: StrawberryField) -> None:
        who = "anyone" if self.anyone else (
            "any signed-in caller" if not self.roles else "roles: " + ", ".join(sorted(self.roles)))
        if self.password_session:
            who += " (signed in with a password, not an API key)"
        elif self.scope is not None:
            who += f" (an API key needs the {self.scope.name} scope)"
        field.description = ((field.description or "").rstrip() + f"\n\nAllowed: {who}.").strip()
        payload = field.type
        definition = getattr(payload, "__strawberry_definition__", None)
        errors = definition.get_field("errors") if definition is not None else None
        if errors is not None:
            self._payload = payload
            self._error = errors.type.of_type

    def refusal(self, principal: Principal | None) -> tuple[str, str] | None:
        if self.anyone:
            return None
        if principal is None:
            return "UNAUTHENTICATED", "Sign in to do this."
        if self.password_session and principal.via != "password":
            return "FORBIDDEN", "API keys cannot do this; sign in with a password."
        if self.roles and not (principal.roles & self.roles):
            return "FORBIDDEN", "Your account has no role that may do this."
        if self.scope is not None and not principal.may(self.scope.value):
            return "FORBIDDEN", f"This API key lacks the {self.scope.name} scope."
        return None

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Any, **kwargs: Any) -> Any:
        refused = self.refusal(info.context.principal)
        if refused is None:
            return await next_(source, info, **kwargs)
        code, message = refused
        if self._payload is not None:
            return self._payload(errors=[payload_error(self._error, code, message)])
        raise PublicError(message, code)


class ChecksCredentials(FieldExtension):
    """Marks a root field that checks a password or token (login, signUp, refreshSession,
    changePassword, and any later one). The endpoint runs at most one such field per operation,
    so one request cannot try thirty passwords under thirty aliases; the resolver consults the
    sign-in throttle (accounts/sign_in_throttle.py) before any argon2 work."""

    def apply(self, field: StrawberryField) -> None:
        field.description = ((field.description or "").rstrip()
                             + "\n\nChecks a credential: at most one such field per operation;"
                               " repeated failures are slowed down (TOO_MANY_ATTEMPTS with retryAfter).").strip()

    async def resolve_async(self, next_: Callable[..., Awaitable[Any]], source: Any, info: Any, **kwargs: Any) -> Any:
        return await next_(source, info, **kwargs)


def root_fields(schema, root: str) -> list[tuple[str, Any]]:
    """(GraphQL name, strawberry field) of each field of a strawberry schema's "query" or "mutation"
    root, through strawberry's public definitions."""
    root_type = getattr(schema, root)
    if root_type is None:
        return []
    names = schema.config.name_converter
    return [(names.get_graphql_name(field), field) for field in get_object_definition(root_type, strict=True).fields]


def credential_fields(schema) -> frozenset[str]:
    """Names of the root fields marked ChecksCredentials in a strawberry schema."""
    return frozenset(name for root in ("query", "mutation") for name, field in root_fields(schema, root)
                     if any(isinstance(e, ChecksCredentials) for e in field.extensions))
