"""The error codes of accounts, roles, sessions, API keys and entrustments (accounts/service.py,
accounts/validation.py). Raise sites name the members (`AccountCode.EMAIL_TAKEN`), never a bare string
(tests/structure/test_conventions_error_codes.py checks it)."""

from __future__ import annotations

from core.errors import Code


class AccountCode(Code):
    # signing up (art. 6): contact details and identity
    EMAIL_TAKEN = "EMAIL_TAKEN"
    PHONE_TAKEN = "PHONE_TAKEN"
    NATIONAL_ID_TAKEN = "NATIONAL_ID_TAKEN"
    INVALID_EMAIL = "INVALID_EMAIL"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_NATIONAL_ID = "INVALID_NATIONAL_ID"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    # signing in and sessions
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    ACCOUNT_SUSPENDED = "ACCOUNT_SUSPENDED"
    SAME_PASSWORD = "SAME_PASSWORD"
    INVALID_REFRESH_TOKEN = "INVALID_REFRESH_TOKEN"
    REFRESH_TOKEN_REVOKED = "REFRESH_TOKEN_REVOKED"
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"
    REFRESH_TOKEN_EXPIRED = "REFRESH_TOKEN_EXPIRED"
    # roles (art. 6, 24)
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"
    ALREADY_APPLIED = "ALREADY_APPLIED"
    NOT_PENDING = "NOT_PENDING"
    NOT_ACTIVE = "NOT_ACTIVE"
    REASON_REQUIRED = "REASON_REQUIRED"
    # API keys
    SCOPE_NOT_ALLOWED = "SCOPE_NOT_ALLOWED"
    # entrustments (委托协议)
    INVALID_CODE = "INVALID_CODE"
    CODE_EXPIRED = "CODE_EXPIRED"
    ALREADY_ENTRUSTED = "ALREADY_ENTRUSTED"
    OPERATOR_NOT_ACTIVE = "OPERATOR_NOT_ACTIVE"
    ALREADY_REVOKED = "ALREADY_REVOKED"
