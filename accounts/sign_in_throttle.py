"""Failed credential checks slow the next ones down: per login and client IP, per client IP,
and per login from anywhere; and sign-ups are limited per client IP (issue 8; art. 28, 30-32).

Counted in Redis by the injected clock (a subject's count runs until 15 minutes pass without a
failure), and checked BEFORE any argon2 work (a verification costs ~0.2 s of CPU, so the limits must not wait for it). The count is kept
for the calling IP whatever credentials the request carries: a bearer token must not move an
anonymous IP's guesses onto a roomier limit.

After `free` failures of a subject, each further failure bars the subject for a
growing delay (1 s, 2 s, 4 s ... up to `max_delay`), answered as TOO_MANY_ATTEMPTS with
retryAfter. Nobody can lock a person out for good: the delay of a login tried from anywhere is
capped at a minute and does not stop the IPs the login signed in from in the last 30 days,
while one IP's guesses against it (or against anyone) are capped at 15 minutes; a correct
password from an IP clears that IP's count for the login.

Logins are never stored as they are: a subject is a keyed hash (HMAC with the secret key) of the
normalised email or phone, or of the account id."""

from __future__ import annotations

import math
from dataclasses import dataclass

import redis.asyncio as aioredis

from accounts.security import keyed_hash
from core.clock import Clock
from core.errors import CoreCode, DomainError

WINDOW_SECONDS = 15 * 60
SIGN_UP_WINDOW_SECONDS = 3600
KNOWN_ADDRESS_DAYS = 30


class TooManyAttempts(DomainError):
    code = CoreCode.TOO_MANY_ATTEMPTS.value

    def __init__(self, retry_after: int, message: str = "Too many failed attempts; wait before trying again."):
        super().__init__(message=f"{message} Retry in {retry_after} s.", field=None)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Policy:
    name: str
    free: int  # failures in a window before delays begin
    max_delay: int  # seconds


LOGIN_FROM_IP = Policy("pair", free=5, max_delay=15 * 60)
ANY_LOGIN_FROM_IP = Policy("ip", free=20, max_delay=15 * 60)
LOGIN_FROM_ANYWHERE = Policy("login", free=10, max_delay=60)


@dataclass(frozen=True)
class Subject:
    policy: Policy
    key: str

    @property
    def record(self) -> str:
        """A hash: n (failures in a row), last (time of the last), until (barred until)."""
        return f"signin:{self.policy.name}:{self.key}"


@dataclass(frozen=True)
class Attempt:
    """One credential check: from `client_ip`, for `who` (a keyed hash of the login, or None when
    the credential names no one, as a refresh token does)."""

    client_ip: str
    who: str | None

    @classmethod
    def of(cls, *, secret: str, client_ip: str, login: str | None) -> "Attempt":
        """`login` is the normalised email or phone, or "account:<id>"."""
        return cls(client_ip, keyed_hash(secret, "sign-in:" + login)[:32] if login is not None else None)

    @property
    def subjects(self) -> list[Subject]:
        ip = Subject(ANY_LOGIN_FROM_IP, self.client_ip)
        if self.who is None:
            return [ip]
        return [Subject(LOGIN_FROM_IP, f"{self.who}:{self.client_ip}"), ip, Subject(LOGIN_FROM_ANYWHERE, self.who)]

    @property
    def known_addresses(self) -> str:
        """The IPs this login signed in from lately: the login-wide bar does not stop them."""
        return f"signin:known:{self.who}"


async def check(*, redis: aioredis.Redis, clock: Clock, attempt: Attempt) -> None:
    """Raise TooManyAttempts while the attempt is barred; run this before any password hashing."""
    wait = await retry_after(redis=redis, clock=clock, attempt=attempt)
    if wait:
        raise TooManyAttempts(wait)


async def retry_after(*, redis: aioredis.Redis, clock: Clock, attempt: Attempt) -> int:
    """Whole seconds until this attempt may go ahead; 0: now."""
    subjects = attempt.subjects
    async with redis.pipeline(transaction=False) as pipe:
        for subject in subjects:
            pipe.hget(subject.record, "until")
        if attempt.who is not None:
            pipe.sismember(attempt.known_addresses, attempt.client_ip)
        results = await pipe.execute()
    known = attempt.who is not None and bool(results[-1])
    now = clock.now().timestamp()
    barred = max((float(value) for subject, value in zip(subjects, results)
                  if value is not None and not (known and subject.policy is LOGIN_FROM_ANYWHERE)), default=0.0)
    return max(0, math.ceil(barred - now))


# One failure of several subjects, atomically. A subject's failures run on until a whole window
# passes without one; the n-th beyond `free` bars it for 2^(n-free-1) s, at most `max_delay`.
_RECORD_FAILURE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local free, cap = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  local last = tonumber(redis.call('HGET', key, 'last') or '0')
  if now - last > window then n = 0 end
  n = n + 1
  local barred = 0
  if n > free then barred = now + math.min(cap, 2 ^ math.min(n - free - 1, 30)) end
  redis.call('HSET', key, 'n', n, 'last', tostring(now), 'until', tostring(barred))
  redis.call('EXPIRE', key, window + cap + 60)
end
return 0
"""


async def record_failure(*, redis: aioredis.Redis, clock: Clock, attempt: Attempt) -> int:
    """Count a failed check; returns the seconds this caller must now wait (0: none yet)."""
    subjects = attempt.subjects
    limits = [number for subject in subjects for number in (subject.policy.free, subject.policy.max_delay)]
    await redis.eval(_RECORD_FAILURE, len(subjects), *[subject.record for subject in subjects],
                     repr(clock.now().timestamp()), WINDOW_SECONDS, *limits)
    return await retry_after(redis=redis, clock=clock, attempt=attempt)


async def record_success(*, redis: aioredis.Redis, clock: Clock, attempt: Attempt) -> None:
    """A right credential clears this IP's count for this login and makes the IP a known one."""
    if attempt.who is None:
        return
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(attempt.subjects[0].record)
        pipe.sadd(attempt.known_addresses, attempt.client_ip)
        pipe.expire(attempt.known_addresses, KNOWN_ADDRESS_DAYS * 86400)
        await pipe.execute()


async def sign_up_allowed(*, redis: aioredis.Redis, clock: Clock, client_ip: str, per_hour: int) -> int:
    """Count one sign-up attempt from this IP; returns 0 if it may go ahead, else the seconds to wait."""
    now = clock.now().timestamp()
    window = int(now // SIGN_UP_WINDOW_SECONDS)
    counter = f"signup:ip:{client_ip}:{window}"
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(counter)
        pipe.expire(counter, 2 * SIGN_UP_WINDOW_SECONDS)
        count = int((await pipe.execute())[0])
    if count <= per_hour:
        return 0
    return max(1, math.ceil((window + 1) * SIGN_UP_WINDOW_SECONDS - now))
