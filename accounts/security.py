"""Credential primitives: argon2id passwords, signed access tokens, keyed hashes, random secrets."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ACCESS_TOKEN_ALGORITHM = "HS256"
ACCESS_TOKEN_AUDIENCE = "tanpuhui"


class PasswordHashing:
    """argon2id (the argon2-cffi default type). Hashing runs in a thread: it is deliberately slow."""

    def __init__(self, time_cost: int = 3, memory_cost_kib: int = 65536, parallelism: int = 4):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
        )
        # verifying against this for unknown logins keeps timing the same as a wrong password
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)


def keyed_hash(key: str, value: str) -> str:
    """HMAC-SHA256, hex. For identity numbers, API key secrets and one-time codes."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """Plain sha256 for high-entropy random tokens (refresh tokens)."""
    return hashlib.sha256(token.encode()).hexdigest()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True)
class AccessClaims:
    account_id: uuid.UUID
    kind: str
    roles: frozenset[str]
    family_id: uuid.UUID
    issued_at: datetime
    expires_at: datetime


def issue_access_token(
    *, secret: str, account_id: uuid.UUID, kind: str, roles: frozenset[str], family_id: uuid.UUID,
    now: datetime, ttl_seconds: int,
) -> tuple[str, datetime]:
    expires = now + timedelta(seconds=ttl_seconds)
    claims = {
        "sub": str(account_id),
        "knd": kind,
        "rol": sorted(roles),
        "fam": str(family_id),
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "aud": ACCESS_TOKEN_AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm=ACCESS_TOKEN_ALGORITHM), expires


class InvalidAccessToken(Exception):
    pass


def verify_access_token(token: str, *, secret: str, now: datetime) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ACCESS_TOKEN_ALGORITHM],
            audience=ACCESS_TOKEN_AUDIENCE,
            options={"require": ["sub", "exp", "iat", "fam"], "verify_exp": False},
        )
        expires_at = datetime.fromtimestamp(claims["exp"], tz=now.tzinfo)
        # expiry checked against the injected clock, so tests can move time
        if expires_at <= now:
            raise InvalidAccessToken("expired")
        return AccessClaims(
            account_id=uuid.UUID(claims["sub"]),
            kind=claims.get("knd", ""),
            roles=frozenset(claims.get("rol", [])),
            family_id=uuid.UUID(claims["fam"]),
            issued_at=datetime.fromtimestamp(claims["iat"], tz=now.tzinfo),
            expires_at=expires_at,
        )
    except InvalidAccessToken:
        raise
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise InvalidAccessToken("invalid") from exc
