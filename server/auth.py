"""Who is calling, from the request's credentials, and the per-caller rate limit.

One Redis round trip per request for a bearer token: the rate-limit counter and the two
revocation mark of its session go in one pipeline."""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from accounts import service as accounts
from accounts.revocation import api_key_cache_key, family_key
from accounts.principal import Principal
from accounts.security import InvalidAccessToken, verify_access_token
from schema.context import Services

API_KEY_CACHE_SECONDS = 30


class AuthFailure(Exception):
    def __init__(self, code: str, message: str, status: int = 401):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class Gate:
    principal: Principal | None
    allowed: bool
    retry_after: int
    limit: int


def _credential(headers) -> str | None:
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthFailure("INVALID_TOKEN", "Use 'Authorization: Bearer <token>'.")
        return value.strip()
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key else None


class _TooManyFailures(Exception):
    def __init__(self, gate: Gate):
        self.gate = gate


def _window(services: Services) -> tuple[int, int]:
    """The current one-minute window and the whole seconds until the next one begins."""
    now = services.clock.now().timestamp()
    return int(now // 60), max(1, math.ceil(60 - now % 60))


def _failure_counter(client_ip: str, window: int) -> str:
    return f"ratelimit:authfail:ip:{client_ip}:{window}"


async def _api_key_principal(services: Services, plaintext: str, client_ip: str) -> Principal:
    cache_key = api_key_cache_key(plaintext)
    cached = await services.redis.get(cache_key)
    if cached is not None:
        data = orjson.loads(cached)
        return Principal(account_id=uuid.UUID(data["a"]), kind=data["k"], roles=frozenset(data["r"]),
                         via="api_key", api_key_id=uuid.UUID(data["i"]), scopes=frozenset(data.get("s", ())))
    # an IP that has used up its failed attempts gets no more database look-ups this minute
    window, retry_after = _window(services)
    limit = services.settings.anonymous_rate_limit_per_minute
    failures = await services.redis.get(_failure_counter(client_ip, window))
    if failures is not None and int(failures) >= limit:
        raise _TooManyFailures(Gate(principal=None, allowed=False, retry_after=retry_after, limit=limit))
    async with services.session_factory() as session:
        async with session.begin():
            principal = await accounts.authenticate_api_key(
                session=session, clock=services.clock, secret=services.settings.secret_key, plaintext=plaintext)
    if principal is None:
        raise AuthFailure("INVALID_API_KEY", "This API key is not valid or was revoked.")
    await services.redis.set(cache_key, orjson.dumps({
        "a": str(principal.account_id), "k": principal.kind, "r": sorted(principal.roles),
        "i": str(principal.api_key_id), "s": sorted(principal.scopes or ())}), ex=API_KEY_CACHE_SECONDS)
    return principal


async def authenticate_and_limit(services: Services, headers, client_ip: str) -> Gate:
    """Resolve the caller and count the request against its rate limit.

    Failed credentials count against the calling IP (with the anonymous limit), so tokens and
    API keys cannot be guessed at speed: over the limit the answer is 429, not 401."""
    try:
        return await _authenticate_and_limit(services, headers, client_ip)
    except _TooManyFailures as over:
        return over.gate
    except AuthFailure:
        window, retry_after = _window(services)
        counter = _failure_counter(client_ip, window)
        async with services.redis.pipeline(transaction=False) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, 120)
            count = int((await pipe.execute())[0])
        limit = services.settings.anonymous_rate_limit_per_minute
        if count > limit:
            return Gate(principal=None, allowed=False, retry_after=retry_after, limit=limit)
        raise


async def _authenticate_and_limit(services: Services, headers, client_ip: str) -> Gate:
    settings = services.settings
    credential = _credential(headers)
    principal: Principal | None = None
    if credential is not None:
        if credential.startswith(accounts.API_KEY_PREFIX + "_"):
            principal = await _api_key_principal(services, credential, client_ip)
        else:
            try:
                claims = verify_access_token(credential, secret=settings.secret_key, now=services.clock.now())
            except InvalidAccessToken as exc:
                code = "TOKEN_EXPIRED" if str(exc) == "expired" else "INVALID_TOKEN"
                raise AuthFailure(code, "The access token has expired; refresh it." if code == "TOKEN_EXPIRED"
                                  else "The access token is not valid.") from None
            principal = Principal(account_id=claims.account_id, kind=claims.kind, roles=claims.roles,
                                  via="password", family_id=claims.family_id)

    if principal is not None:
        subject, limit = principal.key, settings.rate_limit_per_minute
    else:
        subject, limit = f"ip:{client_ip}", settings.anonymous_rate_limit_per_minute
    window, retry_after = _window(services)
    counter = f"ratelimit:{subject}:{window}"
    async with services.redis.pipeline(transaction=False) as pipe:
        pipe.incr(counter)
        pipe.expire(counter, 120)
        if principal is not None and principal.family_id is not None:
            pipe.exists(family_key(principal.family_id))
        results = await pipe.execute()
    if principal is not None and principal.family_id is not None:
        if results[2]:
            raise AuthFailure("TOKEN_REVOKED", "This session was signed out.")
    count = int(results[0])
    return Gate(principal=principal, allowed=count <= limit, retry_after=retry_after, limit=limit)


def monotonic_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


async def anonymous_limit(services: Services, request: Request) -> Response | None:
    """The anonymous rate limit of the client IP for the public pages (certificates, disclosure lists,
    scenarios): None to go on, else the 503/429 answer. Credentials are not looked at here."""
    client_ip = request.client.host if request.client else "unknown"
    try:
        gate = await authenticate_and_limit(services, {}, client_ip)
    except Exception as exc:  # Redis is down: answer, don't hang
        logging.getLogger("tanpuhui.http").error("rate limit unavailable", extra={"error": type(exc).__name__})
        return JSONResponse({"error": "temporarily unavailable"}, status_code=503, headers={"Retry-After": "5"})
    if not gate.allowed:
        return JSONResponse({"error": "rate limited", "retryAfter": gate.retry_after}, status_code=429,
                            headers={"Retry-After": str(gate.retry_after)})
    return None
