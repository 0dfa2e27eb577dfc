"""Accounts, roles, credentials and entrustments."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from audit_log.models import AuditEvent  # noqa: F401  (the audit log's table; imported from here before)
from core.db import Base, new_id


class AccountKind(str, enum.Enum):
    PERSON = "person"
    ORGANISATION = "organisation"
    AUTHORITY = "authority"  # the regulator (市生态环境主管部门)


class Role(str, enum.Enum):
    INDIVIDUAL = "individual"
    ORGANISATION = "organisation"
    APP_OPERATOR = "app_operator"
    MERCHANT = "merchant"
    PROJECT_OWNER = "project_owner"
    REGULATOR = "regulator"
    EXPERT = "expert"  # a member of the regulator's expert library (art. 8), drawn for reviews
    VERIFIER = "verifier"  # an independent verification body (核查机构, art. 17, 32), approved by the regulator
    NEUTRALITY_REVIEWER = "neutrality_reviewer"  # the platform's reviewer of neutrality applications (art. 19)


class RoleStatus(str, enum.Enum):
    PENDING = "pending"
    ACTIVE = "active"
    REJECTED = "rejected"
    REVOKED = "revoked"


class ApiKeyScope(str, enum.Enum):
    """What an API key may change (least privilege, like Stripe's restricted keys). Reads of the
    organisation's own data need no scope; every mutation a key may call names one."""

    INVITE_ENTRUSTMENTS = "invite_entrustments"
    REPORT_BEHAVIOUR = "report_behaviour"
    MANAGE_LISTINGS = "manage_listings"
    FULFIL_REDEMPTIONS = "fulfil_redemptions"
    MANAGE_CER_PROJECTS = "manage_cer_projects"
    SELL_CERS = "sell_cers"
    RETIRE_CERS = "retire_cers"


# The role an organisation must hold to give a key each scope.
SCOPE_ROLES = {
    ApiKeyScope.INVITE_ENTRUSTMENTS: Role.APP_OPERATOR,
    ApiKeyScope.REPORT_BEHAVIOUR: Role.APP_OPERATOR,
    ApiKeyScope.MANAGE_LISTINGS: Role.MERCHANT,
    ApiKeyScope.FULFIL_REDEMPTIONS: Role.MERCHANT,
    ApiKeyScope.MANAGE_CER_PROJECTS: Role.PROJECT_OWNER,
    ApiKeyScope.SELL_CERS: Role.PROJECT_OWNER,
    ApiKeyScope.RETIRE_CERS: Role.PROJECT_OWNER,
}


class EntrustmentStatus(str, enum.Enum):
    ACTIVE = "active"
    REVOKED = "revoked"


def _enum_check(column: str, enum_cls: type[enum.Enum]) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum_cls)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        _enum_check("kind", AccountKind),
        Index("uq_accounts_email", "email", unique=True, postgresql_where=text("email IS NOT NULL")),
        Index("uq_accounts_phone", "phone", unique=True, postgresql_where=text("phone IS NOT NULL")),
        Index(
            "uq_accounts_national_id_hash",
            "national_id_hash",
            unique=True,
            postgresql_where=text("national_id_hash IS NOT NULL"),
        ),
        CheckConstraint("email IS NOT NULL OR phone IS NOT NULL", name="has_login"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    # contact data: shown only to the account itself and the regulator, never logged
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    # keyed hash (HMAC-SHA256) of a national identity number; the number itself is never stored
    national_id_hash: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    suspended_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class AccountRole(Base):
    """A role an account holds or applied for. Operators and merchants start pending and
    become active only when a regulator approves them (art. 6, 24)."""

    __tablename__ = "account_roles"
    __table_args__ = (
        UniqueConstraint("account_id", "role", name="uq_account_roles_account_role"),
        _enum_check("role", Role),
        _enum_check("status", RoleStatus),
        Index("ix_account_roles_status_created", "status", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    # what the applicant tells the regulator (licence number, app name...)
    application_note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("accounts.id"))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class RefreshToken(Base):
    """One link of a rotating refresh-token family. Only a hash of the token is stored."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index("ix_refresh_tokens_family", "family_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    family_id: Mapped[uuid.UUID] = mapped_column(nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    issued_at: Mapped[datetime] = mapped_column(nullable=False)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class ApiKey(Base):
    """A machine client's key, scoped to its organisation. Shown once; stored as a keyed hash."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_account", "account_id", "created_at"),
        CheckConstraint("scopes <@ ARRAY[" + ", ".join(f"'{s.value}'" for s in ApiKeyScope) + "]::varchar[]",
                        name="scopes_valid"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    # ApiKeyScope values, chosen at creation and never widened
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(40)), nullable=False)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()


class EntrustmentInvitation(Base):
    """A short-lived code an operator hands its user so the user can entrust it (委托)
    from their own Tanpuhui login: the operator never learns who the person is."""

    __tablename__ = "entrustment_invitations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    operator_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    external_user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    expires_at: Mapped[datetime] = mapped_column(nullable=False)
    accepted_at: Mapped[datetime | None] = mapped_column()


class Entrustment(Base):
    """An individual's entrustment agreement (委托协议) with an app operator (art. 6)."""

    __tablename__ = "entrustments"
    __table_args__ = (
        _enum_check("status", EntrustmentStatus),
        Index(
            "uq_entrustments_active_external_user",
            "operator_account_id",
            "external_user_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index(
            "uq_entrustments_active_individual",
            "operator_account_id",
            "individual_account_id",
            unique=True,
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_entrustments_individual", "individual_account_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    individual_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    operator_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id"), nullable=False)
    external_user_id: Mapped[str] = mapped_column(String(128), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    agreement_version: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column()
