"""GraphQL types of accounts, roles, sessions, API keys and entrustments."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import strawberry

from accounts import models
from accounts.errors import AccountCode
from core.errors import CoreCode
from schema.errors import CREDENTIAL_CODES, MutationError, error_codes
from wallets.errors import WalletCode

Role = strawberry.enum(models.Role, name="Role", description="What an account may do on the platform.")
RoleStatus = strawberry.enum(models.RoleStatus, name="RoleStatus")
AccountKind = strawberry.enum(models.AccountKind, name="AccountKind")
EntrustmentStatus = strawberry.enum(models.EntrustmentStatus, name="EntrustmentStatus")
ApiKeyScope = strawberry.enum(models.ApiKeyScope, name="ApiKeyScope",
                              description="What an API key may change (least privilege).")


@strawberry.enum(description="Who can sign up themselves.")
class SignUpKind(enum.Enum):
    PERSON = "person"
    ORGANISATION = "organisation"


def _can_see_contact(info: strawberry.Info, account_id: uuid.UUID) -> bool:
    principal = info.context.principal
    return principal is not None and (
        principal.account_id == account_id or principal.has(models.Role.REGULATOR.value)
    )


@strawberry.type(description="A role an account holds or has applied for.")
class RoleGrant:
    id: strawberry.ID
    role: Role
    status: RoleStatus
    application_note: str | None
    decided_at: datetime | None
    decision_reason: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.AccountRole) -> "RoleGrant":
        return cls(id=strawberry.ID(str(row.id)), role=models.Role(row.role), status=models.RoleStatus(row.status),
                   application_note=row.application_note, decided_at=row.decided_at,
                   decision_reason=row.decision_reason, created_at=row.created_at)


@strawberry.type(description="An account: a person, an organisation or the regulator.")
class Account:
    id: strawberry.ID
    kind: AccountKind
    display_name: str
    created_at: datetime
    suspended: bool
    roles: list[RoleGrant]
    _email: strawberry.Private[str | None]
    _phone: strawberry.Private[str | None]
    _has_national_id: strawberry.Private[bool]

    @strawberry.field(description="Contact email. Only the account itself and the regulator see it.")
    def email(self, info: strawberry.Info) -> str | None:
        return self._email if _can_see_contact(info, uuid.UUID(self.id)) else None

    @strawberry.field(description="Contact phone. Only the account itself and the regulator see it.")
    def phone(self, info: strawberry.Info) -> str | None:
        return self._phone if _can_see_contact(info, uuid.UUID(self.id)) else None

    @strawberry.field(description="Whether an identity number was verified at sign-up (the number is never stored).")
    def has_national_id(self, info: strawberry.Info) -> bool | None:
        return self._has_national_id if _can_see_contact(info, uuid.UUID(self.id)) else None

    @classmethod
    def from_row(cls, row: models.Account, roles: list[models.AccountRole]) -> "Account":
        return cls(id=strawberry.ID(str(row.id)), kind=models.AccountKind(row.kind), display_name=row.display_name,
                   created_at=row.created_at, suspended=row.suspended_at is not None,
                   roles=[RoleGrant.from_row(r) for r in roles], _email=row.email, _phone=row.phone,
                   _has_national_id=row.national_id_hash is not None)


@strawberry.type(description="A role application as the regulator reviews it.")
class RoleApplication:
    id: strawberry.ID
    role: Role
    status: RoleStatus
    application_note: str | None
    account_id: strawberry.ID
    account_name: str
    created_at: datetime
    decided_at: datetime | None
    decision_reason: str | None

    @classmethod
    def from_row(cls, row: models.AccountRole, names: dict) -> "RoleApplication":
        return cls(id=strawberry.ID(str(row.id)), role=models.Role(row.role), status=models.RoleStatus(row.status),
                   application_note=row.application_note, account_id=strawberry.ID(str(row.account_id)),
                   account_name=names.get(row.account_id, ""), created_at=row.created_at,
                   decided_at=row.decided_at, decision_reason=row.decision_reason)


@strawberry.type(description="A signed-in session: a short-lived access token and a rotating refresh token.")
class Session:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str = strawberry.field(description="Single use: each refresh returns a new one. Reusing an old one revokes the session.")
    refresh_token_expires_at: datetime
    account: Account


@strawberry.type(description="A machine client's API key. The secret is shown only when it is created.")
class ApiKey:
    id: strawberry.ID
    name: str
    prefix: str
    scopes: list[ApiKeyScope] = strawberry.field(description="What the key may change; reads need no scope.")
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: models.ApiKey) -> "ApiKey":
        return cls(id=strawberry.ID(str(row.id)), name=row.name, prefix=row.prefix,
                   scopes=[models.ApiKeyScope(s) for s in row.scopes], created_at=row.created_at,
                   revoked_at=row.revoked_at, last_used_at=row.last_used_at)


@strawberry.type(description="An approved app operator (碳普惠应用程序运营机构).")
class AppOperator:
    id: strawberry.ID
    display_name: str


@strawberry.type(description="An entrustment (委托) as the individual sees it.")
class Entrustment:
    id: strawberry.ID
    operator: AppOperator
    external_user_id: str
    status: EntrustmentStatus
    agreement_version: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Entrustment, names: dict) -> "Entrustment":
        return cls(id=strawberry.ID(str(row.id)),
                   operator=AppOperator(id=strawberry.ID(str(row.operator_account_id)),
                                        display_name=names.get(row.operator_account_id, "")),
                   external_user_id=row.external_user_id, status=models.EntrustmentStatus(row.status),
                   agreement_version=row.agreement_version, created_at=row.created_at, revoked_at=row.revoked_at)


@strawberry.type(description="An entrustment as the operator sees it: its own user id, never the person.")
class OperatorEntrustment:
    id: strawberry.ID
    external_user_id: str
    status: EntrustmentStatus
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Entrustment) -> "OperatorEntrustment":
        return cls(id=strawberry.ID(str(row.id)), external_user_id=row.external_user_id,
                   status=models.EntrustmentStatus(row.status), created_at=row.created_at, revoked_at=row.revoked_at)


@strawberry.type(description="A one-time code the operator shows its user, who enters it to entrust the operator.")
class EntrustmentInvitation:
    code: str
    external_user_id: str
    expires_at: datetime


# --- inputs ------------------------------------------------------------------------------------


@strawberry.input
class SignUpInput:
    kind: SignUpKind
    display_name: str
    password: str
    email: str | None = None
    phone: str | None = None
    national_id: str | None = strawberry.field(default=None, description="Optional; kept only as a keyed hash, so one person has one account.")
    apply_for: list[Role] | None = strawberry.field(default=None, description="Organisations: roles to apply for (APP_OPERATOR, MERCHANT, PROJECT_OWNER, VERIFIER).")
    application_note: str | None = None
    idempotency_key: str | None = strawberry.field(default=None, description="Retrying with the same key returns the account created by the first call.")


@strawberry.input
class LoginInput:
    login: str = strawberry.field(description="Email or phone number.")
    password: str


@strawberry.input
class RefreshSessionInput:
    refresh_token: str


@strawberry.input
class LogoutInput:
    everywhere: bool = strawberry.field(default=False, description="Sign out of every session of the account.")


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class ApplyForRoleInput:
    role: Role
    note: str | None = None


@strawberry.input
class DecideRoleApplicationInput:
    application_id: strawberry.ID
    approve: bool
    reason: str | None = None


@strawberry.input(description="The regulator grants a role no one applies for: NEUTRALITY_REVIEWER to a person "
                              "(the platform's reviewers of neutrality applications, art. 19).")
class GrantRoleInput:
    account_id: strawberry.ID
    role: Role
    note: str | None = None


@strawberry.input
class RevokeRoleInput:
    application_id: strawberry.ID
    reason: str


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[ApiKeyScope] = strawberry.field(
        description="What the key may change, each allowed by a role the organisation holds; at least one.")


@strawberry.input
class RevokeApiKeyInput:
    id: strawberry.ID


@strawberry.input
class CreateEntrustmentInvitationInput:
    external_user_id: str


@strawberry.input
class AcceptEntrustmentInput:
    code: str
    agreement_version: str


@strawberry.input
class RevokeEntrustmentInput:
    id: strawberry.ID


# --- payloads and their errors -----------------------------------------------------------------

SignUpErrorCode = error_codes(
    "SignUpErrorCode", *CREDENTIAL_CODES, AccountCode.EMAIL_TAKEN, AccountCode.PHONE_TAKEN,
    AccountCode.NATIONAL_ID_TAKEN, AccountCode.INVALID_EMAIL, AccountCode.INVALID_PHONE,
    AccountCode.INVALID_NATIONAL_ID, AccountCode.WEAK_PASSWORD, AccountCode.ROLE_NOT_ALLOWED,
    CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class SignUpError(MutationError):
    code: SignUpErrorCode


@strawberry.type
class SignUpPayload:
    account: Account | None = None
    errors: list[SignUpError] = strawberry.field(default_factory=list)


LoginErrorCode = error_codes(
    "LoginErrorCode", *CREDENTIAL_CODES, AccountCode.INVALID_CREDENTIALS, AccountCode.ACCOUNT_SUSPENDED)


@strawberry.type
class LoginError(MutationError):
    code: LoginErrorCode


@strawberry.type
class LoginPayload:
    session: Session | None = None
    errors: list[LoginError] = strawberry.field(default_factory=list)


RefreshSessionErrorCode = error_codes(
    "RefreshSessionErrorCode", *CREDENTIAL_CODES, AccountCode.INVALID_REFRESH_TOKEN, AccountCode.REFRESH_TOKEN_REVOKED,
    AccountCode.REFRESH_TOKEN_REUSED, AccountCode.REFRESH_TOKEN_EXPIRED, AccountCode.ACCOUNT_SUSPENDED)


@strawberry.type
class RefreshSessionError(MutationError):
    code: RefreshSessionErrorCode


@strawberry.type
class RefreshSessionPayload:
    session: Session | None = None
    errors: list[RefreshSessionError] = strawberry.field(default_factory=list)


LogoutErrorCode = error_codes("LogoutErrorCode")


@strawberry.type
class LogoutError(MutationError):
    code: LogoutErrorCode


@strawberry.type
class LogoutPayload:
    revoked_sessions: int = 0
    errors: list[LogoutError] = strawberry.field(default_factory=list)


ChangePasswordErrorCode = error_codes(
    "ChangePasswordErrorCode", *CREDENTIAL_CODES, AccountCode.INVALID_CREDENTIALS, AccountCode.WEAK_PASSWORD,
    AccountCode.SAME_PASSWORD)


@strawberry.type
class ChangePasswordError(MutationError):
    code: ChangePasswordErrorCode


@strawberry.type
class ChangePasswordPayload:
    signed_out_sessions: int = strawberry.field(default=0, description="Other sessions signed out by the change.")
    errors: list[ChangePasswordError] = strawberry.field(default_factory=list)


ApplyForRoleErrorCode = error_codes("ApplyForRoleErrorCode", AccountCode.ROLE_NOT_ALLOWED, AccountCode.ALREADY_APPLIED)


@strawberry.type
class ApplyForRoleError(MutationError):
    code: ApplyForRoleErrorCode


@strawberry.type
class ApplyForRolePayload:
    application: RoleGrant | None = None
    errors: list[ApplyForRoleError] = strawberry.field(default_factory=list)


DecideRoleApplicationErrorCode = error_codes(
    "DecideRoleApplicationErrorCode", AccountCode.NOT_PENDING, AccountCode.REASON_REQUIRED)


@strawberry.type
class DecideRoleApplicationError(MutationError):
    code: DecideRoleApplicationErrorCode


@strawberry.type
class DecideRoleApplicationPayload:
    application: RoleApplication | None = None
    errors: list[DecideRoleApplicationError] = strawberry.field(default_factory=list)


GrantRoleErrorCode = error_codes("GrantRoleErrorCode", AccountCode.ROLE_NOT_ALLOWED)


@strawberry.type
class GrantRoleError(MutationError):
    code: GrantRoleErrorCode


@strawberry.type
class GrantRolePayload:
    grant: RoleApplication | None = None
    errors: list[GrantRoleError] = strawberry.field(default_factory=list)


# HOLD_SETTLED: unreachable in practice (only held redemptions of a revoked merchant or app mall are
# released after the commit), declared because the release can say so
RevokeRoleErrorCode = error_codes("RevokeRoleErrorCode", AccountCode.NOT_ACTIVE, AccountCode.REASON_REQUIRED,
                                  WalletCode.HOLD_SETTLED)


@strawberry.type
class RevokeRoleError(MutationError):
    code: RevokeRoleErrorCode


@strawberry.type
class RevokeRolePayload:
    application: RoleApplication | None = None
    errors: list[RevokeRoleError] = strawberry.field(default_factory=list)


CreateApiKeyErrorCode = error_codes("CreateApiKeyErrorCode", AccountCode.SCOPE_NOT_ALLOWED)


@strawberry.type
class CreateApiKeyError(MutationError):
    code: CreateApiKeyErrorCode


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey | None = None
    secret: str | None = strawberry.field(default=None, description="The key itself. Shown this once; store it now.")
    errors: list[CreateApiKeyError] = strawberry.field(default_factory=list)


RevokeApiKeyErrorCode = error_codes("RevokeApiKeyErrorCode")


@strawberry.type
class RevokeApiKeyError(MutationError):
    code: RevokeApiKeyErrorCode


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None = None
    errors: list[RevokeApiKeyError] = strawberry.field(default_factory=list)


CreateEntrustmentInvitationErrorCode = error_codes("CreateEntrustmentInvitationErrorCode")


@strawberry.type
class CreateEntrustmentInvitationError(MutationError):
    code: CreateEntrustmentInvitationErrorCode


@strawberry.type
class CreateEntrustmentInvitationPayload:
    invitation: EntrustmentInvitation | None = None
    errors: list[CreateEntrustmentInvitationError] = strawberry.field(default_factory=list)


AcceptEntrustmentErrorCode = error_codes(
    "AcceptEntrustmentErrorCode", AccountCode.INVALID_CODE, AccountCode.CODE_EXPIRED, AccountCode.ALREADY_ENTRUSTED,
    AccountCode.OPERATOR_NOT_ACTIVE)


@strawberry.type
class AcceptEntrustmentError(MutationError):
    code: AcceptEntrustmentErrorCode


@strawberry.type
class AcceptEntrustmentPayload:
    entrustment: Entrustment | None = None
    errors: list[AcceptEntrustmentError] = strawberry.field(default_factory=list)


RevokeEntrustmentErrorCode = error_codes("RevokeEntrustmentErrorCode", AccountCode.ALREADY_REVOKED)


@strawberry.type
class RevokeEntrustmentError(MutationError):
    code: RevokeEntrustmentErrorCode


@strawberry.type
class RevokeEntrustmentPayload:
    entrustment: Entrustment | None = None
    errors: list[RevokeEntrustmentError] = strawberry.field(default_factory=list)
