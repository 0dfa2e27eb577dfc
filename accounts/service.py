"""Accounts: sign-up, role applications and approvals, sign-in sessions, API keys, entrustments.

Plain keyword-argument functions over an AsyncSession and a clock. The caller owns the
transaction; these functions flush but never commit."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Text, and_, any_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import validation
from accounts.errors import AccountCode
from accounts.models import (
    Account,
    AccountKind,
    AccountRole,
    ApiKey,
    ApiKeyScope,
    Entrustment,
    EntrustmentInvitation,
    EntrustmentStatus,
    RefreshToken,
    Role,
    RoleStatus,
    SCOPE_ROLES,
)
from accounts.principal import Principal
from accounts.security import (
    PasswordHashing,
    issue_access_token,
    keyed_hash,
    random_token,
    token_hash,
)
from audit_log.service import record_audit_event  # noqa: F401  (re-exported: domains import it from here)
from core.clock import Clock
from core.errors import CoreCode, DomainError, NotFound
from core.keyset import Page, keyset_page
from core.locks import lock_name

# Roles an organisation may apply for after signing up, and whether the regulator must approve.
APPLICABLE_ROLES = {
    Role.APP_OPERATOR.value: True,  # art. 6: registered by the regulator
    Role.MERCHANT.value: True,  # art. 24
    Role.PROJECT_OWNER.value: False,  # its projects are filed by the regulator instead (art. 17)
    Role.VERIFIER.value: True,  # art. 17, 32: an independent verification body the regulator approves
}
# Roles an API key may act with: machine clients only do an organisation's routine work.
API_KEY_ROLES = frozenset({Role.APP_OPERATOR.value, Role.MERCHANT.value, Role.PROJECT_OWNER.value})
INVITATION_TTL = timedelta(minutes=15)
API_KEY_PREFIX = "tph"
_API_KEY_SHAPE = re.compile(API_KEY_PREFIX + r"_([0-9a-f]{12})_[A-Za-z0-9_-]{20,100}")


_UNIQUE_CODES = {
    "uq_accounts_email": (AccountCode.EMAIL_TAKEN, "email", "An account with this email already exists."),
    "uq_accounts_phone": (AccountCode.PHONE_TAKEN, "phone", "An account with this phone number already exists."),
}


def _unique_violation(exc: IntegrityError) -> DomainError | None:
    text = str(exc.orig)
    for constraint, (code, field, message) in _UNIQUE_CODES.items():
        if constraint in text:
            return DomainError(code, message, field)
    return None


# --- sign-up and roles -------------------------------------------------------------------------


async def sign_up(
    *,
    session: AsyncSession,
    clock: Clock,
    hashing: PasswordHashing,
    personal_data_key: str,
    kind: str,
    display_name: str,
    password: str,
    email: str | None = None,
    phone: str | None = None,
    national_id: str | None = None,
    apply_for: list[str] | None = None,
    application_note: str | None = None,
) -> Account:
    """Individuals and organisations sign up themselves. An organisation may apply for roles
    at the same time; those needing approval stay pending until a regulator decides."""
    if kind not in (AccountKind.PERSON.value, AccountKind.ORGANISATION.value):
        raise DomainError(CoreCode.INVALID, "Only people and organisations can sign up.", "kind")
    name = validation.display_name(display_name)
    mail = validation.email(email)
    tel = validation.phone(phone)
    if mail is None and tel is None:
        raise DomainError(CoreCode.INVALID, "Give an email address or a phone number to sign in with.", "email")
    validation.password(password)
    identity = validation.national_id(national_id)
    if identity is not None and kind != AccountKind.PERSON.value:
        raise DomainError(CoreCode.INVALID, "Only a person has an identity number.", "nationalId")
    note = validation.text(application_note, 2000, "applicationNote")
    wanted = list(dict.fromkeys(apply_for or []))
    if wanted and kind != AccountKind.ORGANISATION.value:
        raise DomainError(AccountCode.ROLE_NOT_ALLOWED, "Only an organisation can apply for these roles.", "applyFor")
    for role in wanted:
        if role not in APPLICABLE_ROLES:
            raise DomainError(AccountCode.ROLE_NOT_ALLOWED, f"Nobody can apply to be {role}.", "applyFor")

    now = clock.now()
    identity_hash = keyed_hash(personal_data_key, identity) if identity else None
    identity_conflict = False
    if identity_hash is not None:
        # One person, one identity-linked account, without telling a caller whether a number is
        # registered: a number already linked is simply not linked again. The sign-up answers the
        # same; the conflict is audited for the regulator. Sign-ups for one number are serialised,
        # so two at once cannot both link it (nor one learn it from a unique violation).
        await lock_name(session, f"identity:{identity_hash}")
        identity_conflict = (await session.execute(
            select(Account.id).where(Account.national_id_hash == identity_hash).limit(1))).first() is not None
        if identity_conflict:
            identity_hash = None
    account = Account(
        kind=kind,
        display_name=name,
        email=mail,
        phone=tel,
        national_id_hash=identity_hash,
        password_hash=await hashing.hash(password),
        created_at=now,
    )
    session.add(account)
    try:
        await session.flush()
    except IntegrityError as exc:
        mapped = _unique_violation(exc)
        if mapped is None:
            raise
        raise mapped from None
    base_role = Role.INDIVIDUAL if kind == AccountKind.PERSON.value else Role.ORGANISATION
    session.add(AccountRole(account_id=account.id, role=base_role.value,
                            status=RoleStatus.ACTIVE.value, created_at=now))
    for role in wanted:
        session.add(_application(account.id, role, note, now))
    record_audit_event(session, clock, actor=account.id, action="account.signed_up", subject_type="account",
           subject_id=account.id, kind=kind, applied_for=wanted)
    if identity_conflict:
        record_audit_event(session, clock, actor=account.id, action="account.identity_number_already_linked",
               subject_type="account", subject_id=account.id)
    await session.flush()
    return account


def _application(account_id: uuid.UUID, role: str, note: str | None, now: datetime) -> AccountRole:
    needs_approval = APPLICABLE_ROLES[role]
    return AccountRole(
        account_id=account_id,
        role=role,
        status=RoleStatus.PENDING.value if needs_approval else RoleStatus.ACTIVE.value,
        application_note=note,
        created_at=now,
        decided_at=None if needs_approval else now,
    )


async def create_regulator(
    *, session: AsyncSession, clock: Clock, hashing: PasswordHashing, email: str, password: str,
    display_name: str = "深圳市生态环境局 (regulator)",
) -> Account:
    """Bootstrap a regulator account (CLI only: no API creates regulators)."""
    mail = validation.email(email)
    validation.password(password)
    now = clock.now()
    account = Account(kind=AccountKind.AUTHORITY.value, display_name=validation.display_name(display_name),
                      email=mail, password_hash=await hashing.hash(password), created_at=now)
    session.add(account)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise (_unique_violation(exc) or exc) from None
    session.add(AccountRole(account_id=account.id, role=Role.REGULATOR.value,
                            status=RoleStatus.ACTIVE.value, created_at=now, decided_at=now))
    record_audit_event(session, clock, actor=None, action="regulator.created", subject_type="account",
           subject_id=account.id)
    await session.flush()
    return account


async def _role_for_update(session: AsyncSession, account_id: uuid.UUID, role: str) -> AccountRole | None:
    """The account's row of one role (any status), locked: one row per account and role."""
    return (await session.execute(
        select(AccountRole).where(AccountRole.account_id == account_id, AccountRole.role == role).with_for_update()
    )).scalar_one_or_none()


async def apply_for_role(
    *, session: AsyncSession, clock: Clock, account_id: uuid.UUID, role: str, note: str | None = None,
) -> AccountRole:
    account = await get_account(session=session, account_id=account_id)
    if account.kind != AccountKind.ORGANISATION.value or role not in APPLICABLE_ROLES:
        raise DomainError(AccountCode.ROLE_NOT_ALLOWED, f"This account cannot apply to be {role}.", "role")
    note = validation.text(note, 2000, "note")
    existing = await _role_for_update(session, account_id, role)
    now = clock.now()
    if existing is None:
        application = _application(account_id, role, note, now)
        session.add(application)
    elif existing.status in (RoleStatus.PENDING.value, RoleStatus.ACTIVE.value):
        raise DomainError(AccountCode.ALREADY_APPLIED, f"The {role} role is already {existing.status}.", "role")
    else:
        # a rejected or revoked applicant may apply again; the audit log keeps the history
        application = existing
        fresh = _application(account_id, role, note, now)
        application.status, application.application_note = fresh.status, note
        application.decided_by, application.decision_reason = None, None
        application.decided_at, application.created_at = fresh.decided_at, now
    record_audit_event(session, clock, actor=account_id, action="role.applied", subject_type="account_role",
           subject_id=None, role=role)
    await session.flush()
    return application


async def decide_role_application(
    *, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, application_id: uuid.UUID,
    approve: bool, reason: str | None = None,
) -> AccountRole:
    application = (
        await session.execute(select(AccountRole).where(AccountRole.id == application_id).with_for_update())
    ).scalar_one_or_none()
    if application is None:
        raise NotFound(message="No such application.", field="applicationId")
    if application.status != RoleStatus.PENDING.value:
        raise DomainError(AccountCode.NOT_PENDING, f"This application is already {application.status}.",
                          "applicationId")
    reason = validation.text(reason, 2000, "reason")
    if not approve and not reason:
        raise DomainError(AccountCode.REASON_REQUIRED, "Say why the application is rejected.", "reason")
    before = {"status": application.status}
    application.status = RoleStatus.ACTIVE.value if approve else RoleStatus.REJECTED.value
    application.decided_by, application.decided_at = regulator_id, clock.now()
    application.decision_reason = reason
    record_audit_event(session, clock, actor=regulator_id, action="role.approved" if approve else "role.rejected",
                       subject_type="account_role", subject_id=application.id, role=application.role,
                       account_id=str(application.account_id), before=before, after={"status": application.status})
    await session.flush()
    return application


# Roles the regulator grants to an account directly, not by application (experts are added to the
# library through reviews/experts.py, which calls this).
GRANTED_ROLES = frozenset({Role.EXPERT.value, Role.NEUTRALITY_REVIEWER.value})


async def grant_role(
    *, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, account_id: uuid.UUID, role: str,
    note: str | None = None,
) -> AccountRole:
    """The regulator gives a person a role it grants directly (EXPERT, NEUTRALITY_REVIEWER). A role
    that was revoked becomes active again; one already active is the same answer."""
    account = await get_account(session=session, account_id=account_id)
    if role not in GRANTED_ROLES or account.kind != AccountKind.PERSON.value:
        raise DomainError(AccountCode.ROLE_NOT_ALLOWED, f"This account cannot be given the {role} role.", "accountId")
    existing = await _role_for_update(session, account_id, role)
    now = clock.now()
    if existing is not None and existing.status == RoleStatus.ACTIVE.value:
        return existing
    before = {"status": existing.status} if existing is not None else None
    grant = existing or AccountRole(account_id=account_id, role=role, created_at=now)
    grant.status, grant.application_note = RoleStatus.ACTIVE.value, validation.text(note, 2000, "note")
    grant.decided_by, grant.decided_at, grant.decision_reason = regulator_id, now, None
    if existing is None:
        session.add(grant)
    await session.flush()
    record_audit_event(session, clock, actor=regulator_id, action="role.granted", subject_type="account_role",
                       subject_id=grant.id, role=role, account_id=str(account_id), before=before,
                       after={"status": grant.status})
    await session.flush()
    return grant


async def revoke_role(
    *, session: AsyncSession, clock: Clock, regulator_id: uuid.UUID, application_id: uuid.UUID,
    reason: str,
) -> AccountRole:
    """The regulator withdraws an active role (e.g. an operator's registration)."""
    application = (
        await session.execute(select(AccountRole).where(AccountRole.id == application_id).with_for_update())
    ).scalar_one_or_none()
    if application is None or application.role == Role.REGULATOR.value:
        raise NotFound(message="No such role.", field="applicationId")
    if application.status != RoleStatus.ACTIVE.value:
        raise DomainError(AccountCode.NOT_ACTIVE, "Only an active role can be revoked.", "applicationId")
    reason_text = validation.text(reason, 2000, "reason")
    if not reason_text:
        raise DomainError(AccountCode.REASON_REQUIRED, "Say why the role is revoked.", "reason")
    before = {"status": application.status}
    application.status = RoleStatus.REVOKED.value
    application.decided_by, application.decided_at = regulator_id, clock.now()
    application.decision_reason = reason_text
    record_audit_event(session, clock, actor=regulator_id, action="role.revoked", subject_type="account_role",
                       subject_id=application.id, role=application.role, account_id=str(application.account_id),
                       before=before, after={"status": application.status})
    await session.flush()
    return application


async def get_account(*, session: AsyncSession, account_id: uuid.UUID) -> Account:
    account = await session.get(Account, account_id)
    if account is None:
        raise NotFound(message="No such account.", field="id")
    return account


async def active_roles(*, session: AsyncSession, account_id: uuid.UUID) -> frozenset[str]:
    rows = await session.execute(
        select(AccountRole.role).where(
            AccountRole.account_id == account_id, AccountRole.status == RoleStatus.ACTIVE.value
        )
    )
    return frozenset(rows.scalars())


async def roles_of(*, session: AsyncSession, account_id: uuid.UUID) -> list[AccountRole]:
    rows = await session.execute(
        select(AccountRole).where(AccountRole.account_id == account_id).order_by(AccountRole.created_at)
    )
    return list(rows.scalars())


async def list_role_applications(
    *, session: AsyncSession, status: str | None, role: str | None, first: int | None, after: str | None,
) -> Page:
    stmt = select(AccountRole).where(AccountRole.role.in_(list(APPLICABLE_ROLES)))
    if status:
        stmt = stmt.where(AccountRole.status == status)
    if role:
        stmt = stmt.where(AccountRole.role == role)
    return await keyset_page(session, stmt, keys=[AccountRole.created_at, AccountRole.id],
                             first=first, after=after)


async def list_operators(*, session: AsyncSession, first: int | None, after: str | None) -> Page:
    """Approved app operators, for people choosing whom to entrust (public)."""
    stmt = (
        select(Account)
        .join(AccountRole, AccountRole.account_id == Account.id)
        .where(AccountRole.role == Role.APP_OPERATOR.value, AccountRole.status == RoleStatus.ACTIVE.value,
               Account.suspended_at.is_(None))
    )
    return await keyset_page(session, stmt, keys=[Account.created_at, Account.id], first=first, after=after)


# --- sign-in sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedIn:
    account: Account
    roles: frozenset[str]
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    refresh_token_expires_at: datetime
    family_id: uuid.UUID


@dataclass(frozen=True)
class RefreshRefused:
    code: str
    message: str
    # set when reuse was detected: the whole family was revoked and must be marked so
    revoked_family_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None


async def _issue_session(
    *, session: AsyncSession, clock: Clock, secret: str, account: Account, family_id: uuid.UUID,
    access_ttl: int, refresh_ttl: int,
) -> SignedIn:
    now = clock.now()
    roles = await active_roles(session=session, account_id=account.id)
    access, access_expires = issue_access_token(
        secret=secret, account_id=account.id, kind=account.kind, roles=roles, family_id=family_id,
        now=now, ttl_seconds=access_ttl,
    )
    refresh = random_token()
    refresh_expires = now + timedelta(seconds=refresh_ttl)
    session.add(RefreshToken(account_id=account.id, family_id=family_id, token_hash=token_hash(refresh),
                             issued_at=now, expires_at=refresh_expires))
    await session.flush()
    return SignedIn(account=account, roles=roles, access_token=access, access_token_expires_at=access_expires,
                    refresh_token=refresh, refresh_token_expires_at=refresh_expires, family_id=family_id)


def login_identity(login: str) -> str | None:
    """The normalised email or phone a login names, or None if it is neither."""
    identifier = login.strip()
    try:
        return validation.email(identifier) if "@" in identifier else validation.phone(identifier)
    except DomainError:
        return None


async def login(
    *, session: AsyncSession, clock: Clock, hashing: PasswordHashing, secret: str, login: str,
    password: str, access_ttl: int, refresh_ttl: int,
) -> SignedIn:
    """Email or phone + password. The same error for an unknown login and a wrong password."""
    refused = DomainError(AccountCode.INVALID_CREDENTIALS, "The login or password is wrong.", "login")
    normalised = login_identity(login)
    column = Account.email if normalised and "@" in normalised else Account.phone
    if normalised is None:
        # a blank login normalises to None, and `column == None` would match every account
        # without a phone (SQL `IS NULL`): refuse it like any unknown login
        await hashing.verify(None, password)
        raise refused
    lookup = column == normalised
    account = (await session.execute(select(Account).where(lookup))).scalar_one_or_none()
    if not await hashing.verify(account.password_hash if account else None, password) or account is None:
        raise refused
    if account.suspended_at is not None:
        raise DomainError(AccountCode.ACCOUNT_SUSPENDED, "This account is suspended.", "login")
    signed_in = await _issue_session(session=session, clock=clock, secret=secret, account=account,
                                     family_id=uuid.uuid4(), access_ttl=access_ttl, refresh_ttl=refresh_ttl)
    return signed_in


async def refresh(
    *, session: AsyncSession, clock: Clock, secret: str, refresh_token: str, access_ttl: int,
    refresh_ttl: int,
) -> SignedIn | RefreshRefused:
    """Rotate: the presented token is used up and a new one of the same family is issued.

    Presenting a used token again means it leaked: the whole family is revoked (the caller
    commits that and marks the family in Redis so its access tokens stop working too)."""
    now = clock.now()
    hashed = token_hash(refresh_token)
    claimed = (
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == hashed, RefreshToken.used_at.is_(None),
                   RefreshToken.revoked_at.is_(None), RefreshToken.expires_at > now)
            .values(used_at=now)
            .returning(RefreshToken.account_id, RefreshToken.family_id)
        )
    ).one_or_none()
    if claimed is None:
        token = (await session.execute(select(RefreshToken).where(RefreshToken.token_hash == hashed))).scalar_one_or_none()
        if token is None:
            return RefreshRefused(AccountCode.INVALID_REFRESH_TOKEN, "This refresh token is not valid.")
        if token.revoked_at is not None:
            return RefreshRefused(AccountCode.REFRESH_TOKEN_REVOKED, "This session was signed out.")
        if token.used_at is not None:
            await _revoke_family(session=session, family_id=token.family_id, now=now)
            record_audit_event(session, clock, actor=token.account_id, action="session.refresh_reuse_detected",
                   subject_type="session", subject_id=token.family_id)
            await session.flush()
            return RefreshRefused(
                AccountCode.REFRESH_TOKEN_REUSED,
                "This refresh token was already used; the session has been revoked. Sign in again.",
                revoked_family_id=token.family_id, account_id=token.account_id,
            )
        return RefreshRefused(AccountCode.REFRESH_TOKEN_EXPIRED, "This session has expired. Sign in again.")
    account = await get_account(session=session, account_id=claimed.account_id)
    if account.suspended_at is not None:
        await _revoke_family(session=session, family_id=claimed.family_id, now=now)
        return RefreshRefused(AccountCode.ACCOUNT_SUSPENDED, "This account is suspended.",
                              revoked_family_id=claimed.family_id, account_id=account.id)
    return await _issue_session(session=session, clock=clock, secret=secret, account=account,
                                family_id=claimed.family_id, access_ttl=access_ttl, refresh_ttl=refresh_ttl)


async def _revoke_family(*, session: AsyncSession, family_id: uuid.UUID, now: datetime) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def logout(
    *, session: AsyncSession, clock: Clock, account_id: uuid.UUID, family_id: uuid.UUID | None,
    everywhere: bool = False,
) -> list[uuid.UUID]:
    """Revoke this sign-in (or every sign-in of the account). Returns the revoked families."""
    now = clock.now()
    condition = RefreshToken.account_id == account_id
    if not everywhere:
        if family_id is None:
            raise DomainError(CoreCode.INVALID, "This credential has no session to sign out of.", None)
        condition = and_(condition, RefreshToken.family_id == family_id)
    families = (
        await session.execute(
            update(RefreshToken).where(condition, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now).returning(RefreshToken.family_id)
        )
    ).scalars().all()
    revoked = set(families)
    if family_id is not None:
        revoked.add(family_id)
    return sorted(revoked, key=str)


async def change_password(
    *, session: AsyncSession, clock: Clock, hashing: PasswordHashing, account_id: uuid.UUID,
    current_password: str, new_password: str, keep_family_id: uuid.UUID | None,
) -> list[uuid.UUID]:
    """Replace the password after checking the current one. Every other session is signed out
    (a leaked password's sessions must not outlive it); returns the revoked families."""
    account = (await session.execute(select(Account).where(Account.id == account_id).with_for_update())).scalar_one()
    if not await hashing.verify(account.password_hash, current_password):
        raise DomainError(AccountCode.INVALID_CREDENTIALS, "The current password is wrong.", "currentPassword")
    validation.password(new_password, field="newPassword")
    if new_password == current_password:
        raise DomainError(AccountCode.SAME_PASSWORD, "The new password must differ from the current one.",
                          "newPassword")
    account.password_hash = await hashing.hash(new_password)
    condition = and_(RefreshToken.account_id == account_id, RefreshToken.revoked_at.is_(None))
    if keep_family_id is not None:
        condition = and_(condition, RefreshToken.family_id != keep_family_id)
    families = (await session.execute(update(RefreshToken).where(condition).values(revoked_at=clock.now())
                                      .returning(RefreshToken.family_id))).scalars().all()
    record_audit_event(session, clock, actor=account_id, action="account.password_changed", subject_type="account",
           subject_id=account_id)
    await session.flush()
    return sorted(set(families), key=str)


# --- API keys ----------------------------------------------------------------------------------


def _api_key_hash(secret: str, plaintext: str) -> str:
    return keyed_hash(secret, plaintext)


async def create_api_key(
    *, session: AsyncSession, clock: Clock, secret: str, principal: Principal, name: str, scopes: list[str],
) -> tuple[ApiKey, str]:
    """Returns the key row and the plaintext, which is shown this once and never again. The key
    may change only what its scopes cover, each allowed by a role the organisation holds now."""
    if not (principal.roles & API_KEY_ROLES):
        raise DomainError(CoreCode.FORBIDDEN, "Only an approved operator, merchant or project owner has API keys.")
    label = validation.text(name, 100, "name")
    if not label:
        raise DomainError(CoreCode.INVALID, "Name the key (e.g. the system that uses it).", "name")
    chosen = sorted(set(scopes))
    if not chosen:
        raise DomainError(CoreCode.INVALID, "Give the key at least one scope.", "scopes")
    for scope in chosen:
        role = SCOPE_ROLES[ApiKeyScope(scope)]
        if role.value not in principal.roles:
            raise DomainError(AccountCode.SCOPE_NOT_ALLOWED, f"Only an organisation with the {role.value} role can give a key "
                                                   f"the {scope} scope.", "scopes")
    prefix = secrets.token_hex(6)
    plaintext = f"{API_KEY_PREFIX}_{prefix}_{random_token(32)}"
    key = ApiKey(account_id=principal.account_id, name=label, prefix=prefix, scopes=chosen,
                 secret_hash=_api_key_hash(secret, plaintext), created_by=principal.account_id,
                 created_at=clock.now())
    session.add(key)
    await session.flush()
    record_audit_event(session, clock, actor=principal.account_id, action="api_key.created", subject_type="api_key",
           subject_id=key.id, scopes=chosen)
    return key, plaintext


async def revoke_api_key(
    *, session: AsyncSession, clock: Clock, account_id: uuid.UUID, api_key_id: uuid.UUID,
) -> ApiKey:
    key = (
        await session.execute(
            select(ApiKey).where(ApiKey.id == api_key_id, ApiKey.account_id == account_id).with_for_update()
        )
    ).scalar_one_or_none()
    if key is None:
        raise NotFound(message="No such API key.", field="id")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        record_audit_event(session, clock, actor=account_id, action="api_key.revoked", subject_type="api_key",
               subject_id=key.id)
    await session.flush()
    return key


async def list_api_keys(*, session: AsyncSession, account_id: uuid.UUID) -> list[ApiKey]:
    rows = await session.execute(
        select(ApiKey).where(ApiKey.account_id == account_id).order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(rows.scalars())


def parse_api_key(plaintext: str) -> str | None:
    """The lookup prefix of a well-formed key, else None."""
    # tph_<12 hex>_<urlsafe base64, which may itself contain "_">; anything else is no key
    match = _API_KEY_SHAPE.fullmatch(plaintext)
    return match.group(1) if match else None


async def authenticate_api_key(
    *, session: AsyncSession, clock: Clock, secret: str, plaintext: str,
) -> Principal | None:
    prefix = parse_api_key(plaintext)
    if prefix is None:
        return None
    key = (await session.execute(select(ApiKey).where(ApiKey.prefix == prefix))).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    if not secrets.compare_digest(key.secret_hash, _api_key_hash(secret, plaintext)):
        return None
    account = await session.get(Account, key.account_id)
    if account is None or account.suspended_at is not None:
        return None
    roles = (await active_roles(session=session, account_id=account.id)) & API_KEY_ROLES
    if not roles:
        return None
    now = clock.now()
    # recorded at most once a minute per key, so a busy client is not a write per request
    await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id, or_(ApiKey.last_used_at.is_(None),
                                        ApiKey.last_used_at < now - timedelta(minutes=1)))
        .values(last_used_at=now)
    )
    return Principal(account_id=account.id, kind=account.kind, roles=roles, via="api_key", api_key_id=key.id,
                     scopes=frozenset(key.scopes))


# --- entrustments (委托, art. 6) ------------------------------------------------------------------


def _check_external_user_id(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 128:
        raise DomainError(CoreCode.INVALID, "An external user id has 1 to 128 characters.", "externalUserId")
    return value


async def create_entrustment_invitation(
    *, session: AsyncSession, clock: Clock, secret: str, operator_id: uuid.UUID, external_user_id: str,
) -> tuple[EntrustmentInvitation, str]:
    """The operator asks its user to entrust it: it gets a one-time code to show the user."""
    external = _check_external_user_id(external_user_id)
    code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(12))
    now = clock.now()
    invitation = EntrustmentInvitation(operator_account_id=operator_id, external_user_id=external,
                                       code_hash=keyed_hash(secret, code), created_at=now,
                                       expires_at=now + INVITATION_TTL)
    session.add(invitation)
    await session.flush()
    return invitation, code


async def accept_entrustment(
    *, session: AsyncSession, clock: Clock, secret: str, individual_id: uuid.UUID, code: str,
    agreement_version: str,
) -> Entrustment:
    now = clock.now()
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    invitation = (
        await session.execute(
            select(EntrustmentInvitation)
            .where(EntrustmentInvitation.code_hash == keyed_hash(secret, normalised))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if invitation is None or invitation.accepted_at is not None:
        raise DomainError(AccountCode.INVALID_CODE, "This entrustment code is not valid.", "code")
    if invitation.expires_at <= now:
        raise DomainError(AccountCode.CODE_EXPIRED, "This entrustment code has expired; ask the app for a new one.",
                          "code")
    version = validation.text(agreement_version, 40, "agreementVersion")
    if not version:
        raise DomainError(CoreCode.INVALID, "Name the version of the agreement accepted.", "agreementVersion")
    operator_roles = await active_roles(session=session, account_id=invitation.operator_account_id)
    if Role.APP_OPERATOR.value not in operator_roles:
        raise DomainError(AccountCode.OPERATOR_NOT_ACTIVE, "This app operator is not registered now.", "code")
    existing = (
        await session.execute(
            select(Entrustment).where(
                Entrustment.operator_account_id == invitation.operator_account_id,
                Entrustment.status == EntrustmentStatus.ACTIVE.value,
                or_(Entrustment.individual_account_id == individual_id,
                    Entrustment.external_user_id == invitation.external_user_id),
            )
        )
    ).scalars().first()
    if existing is not None:
        raise DomainError(AccountCode.ALREADY_ENTRUSTED, "There is already an active entrustment for this app user.",
                          "code")
    invitation.accepted_at = now
    entrustment = Entrustment(individual_account_id=individual_id,
                              operator_account_id=invitation.operator_account_id,
                              external_user_id=invitation.external_user_id,
                              status=EntrustmentStatus.ACTIVE.value, agreement_version=version,
                              created_at=now)
    session.add(entrustment)
    try:
        await session.flush()
    except IntegrityError:
        raise DomainError(AccountCode.ALREADY_ENTRUSTED, "There is already an active entrustment for this app user.",
                          "code") from None
    record_audit_event(session, clock, actor=individual_id, action="entrustment.accepted", subject_type="entrustment",
           subject_id=entrustment.id, operator_id=str(invitation.operator_account_id))
    return entrustment


async def revoke_entrustment(
    *, session: AsyncSession, clock: Clock, individual_id: uuid.UUID, entrustment_id: uuid.UUID,
) -> Entrustment:
    """The individual withdraws an entrustment, at any time; the operator's access ends at once."""
    entrustment = (
        await session.execute(
            select(Entrustment)
            .where(Entrustment.id == entrustment_id, Entrustment.individual_account_id == individual_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if entrustment is None:
        raise NotFound(message="No such entrustment.", field="id")
    if entrustment.status != EntrustmentStatus.ACTIVE.value:
        raise DomainError(AccountCode.ALREADY_REVOKED, "This entrustment is already revoked.", "id")
    entrustment.status = EntrustmentStatus.REVOKED.value
    entrustment.revoked_at = clock.now()
    record_audit_event(session, clock, actor=individual_id, action="entrustment.revoked", subject_type="entrustment",
           subject_id=entrustment.id)
    await session.flush()
    return entrustment


def _active_entrustments(operator_id: uuid.UUID, *columns):
    """The one rule of who an operator may act for: an active entrustment of an operator whose
    app-operator role is active (art. 6, 9)."""
    return (select(*columns)
            .join(AccountRole, and_(AccountRole.account_id == Entrustment.operator_account_id,
                                    AccountRole.role == Role.APP_OPERATOR.value,
                                    AccountRole.status == RoleStatus.ACTIVE.value))
            .where(Entrustment.operator_account_id == operator_id,
                   Entrustment.status == EntrustmentStatus.ACTIVE.value))


async def entrusted_individual(
    *, session: AsyncSession, operator_id: uuid.UUID, external_user_id: str,
) -> Entrustment | None:
    """The active entrustment through which an operator may act for its user, or None.
    Every operator action on a person goes through here (or entrusted_individuals for a batch)."""
    return (await session.execute(
        _active_entrustments(operator_id, Entrustment).where(Entrustment.external_user_id == external_user_id)
    )).scalar_one_or_none()


async def entrusted_individuals(
    *, session: AsyncSession, operator_id: uuid.UUID, external_user_ids: list[str],
) -> dict[str, tuple[uuid.UUID, datetime]]:
    """entrusted_individual for a batch of the operator's user ids, in one statement (the
    reportBehaviour hot path): external user id -> (individual account id, entrusted at)."""
    rows = await session.execute(
        _active_entrustments(operator_id, Entrustment.external_user_id, Entrustment.individual_account_id,
                             Entrustment.created_at)
        .where(Entrustment.external_user_id == any_(bindparam("ids", list(external_user_ids), type_=ARRAY(Text)))))
    return {r.external_user_id: (r.individual_account_id, r.created_at) for r in rows}


async def list_entrustments(
    *, session: AsyncSession, individual_id: uuid.UUID | None = None, operator_id: uuid.UUID | None = None,
    status: str | None = None, first: int | None, after: str | None,
) -> Page:
    stmt = select(Entrustment)
    if individual_id is not None:
        stmt = stmt.where(Entrustment.individual_account_id == individual_id)
    if operator_id is not None:
        stmt = stmt.where(Entrustment.operator_account_id == operator_id)
    if status:
        stmt = stmt.where(Entrustment.status == status)
    return await keyset_page(session, stmt, keys=[Entrustment.created_at, Entrustment.id], first=first,
                             after=after, descending=True)


async def account_names(*, session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Account.id, Account.display_name).where(Account.id.in_(ids)))
    return {row.id: row.display_name for row in rows}
