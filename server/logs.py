"""Structured JSON logs with the request id of the request being served.

Nothing personal or secret reaches a log line at any level (BRIEF: art. 28, 30-32): log ids,
codes and counts only. Three guards make that hold even when a caller slips:

1. Exceptions are logged by type, SQLSTATE and constraint, and stack frames (file, line,
   function), never by message: a driver's message carries the row it refused
   ("Key (email)=(...) already exists") and SQLAlchemy's carries the statement's parameters.
2. Libraries that log request or response bodies below WARNING (stripe logs a PaymentIntent
   with its client_secret at DEBUG; SQLAlchemy logs statements and parameters at INFO; httpx,
   asyncpg and the embedded servers log URLs and command lines) are held at WARNING whatever
   the root level. `STRIPE_LOG=debug|info` would make stripe print bodies to stderr past
   logging, so it is refused at start.
3. Every finished line passes a redactor for the shapes of secrets and contact data (emails,
   phone and identity numbers, argon2 hashes, tokens, API keys, Stripe secrets), so a value
   that slips into a message or an `extra` field is replaced by `[redacted]`."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import traceback
from typing import IO

import orjson

from server.settings import stripe_prints_bodies

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

# Loggers that print bodies, statements, parameters or command lines below WARNING.
QUIET_LIBRARIES = ("stripe", "sqlalchemy", "httpx", "httpcore", "asyncpg", "aiohttp", "localstripe", "hpack",
                   "urllib3", "multipart")

REDACTED = "[redacted]"
# Shapes of secrets and personal data. Ordered: longer, more specific shapes first.
_SECRET_SHAPES = re.compile("|".join((
    r"\$argon2(?:id|i|d)\$[^\s\"']+",                               # password hashes
    r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*",       # JWTs (access tokens)
    r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9_]+",                    # Stripe keys
    r"\bwhsec_[A-Za-z0-9_+/=]+",                                       # Stripe webhook secrets
    r"\b(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+",                # Stripe client secrets
    r"\btph_[0-9a-f]{12}_[A-Za-z0-9_-]+",                              # our API keys
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",            # emails
    # digits inside a uuid (its groups are joined by "-") are not a phone or identity number
    r"(?<![0-9A-Za-z-])[0-9]{17}[0-9Xx](?![0-9A-Za-z-])",              # identity numbers
    r"(?<![0-9A-Za-z-])\+?[0-9][0-9 ]{9,17}[0-9](?![0-9A-Za-z-])",     # phone numbers
    r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])",                          # keyed hashes (hex sha256)
)))


def redact(text: str) -> str:
    return _SECRET_SHAPES.sub(REDACTED, text)


def describe_exception(exc: BaseException) -> str:
    """An exception and its causes as types, database codes and frames: never messages."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(f"\n  {frame.filename}:{frame.lineno} in {frame.name}"
                         for frame in traceback.extract_tb(current.__traceback__))
        label = f"{type(current).__module__}.{type(current).__qualname__}"
        database = current.orig if hasattr(current, "orig") else current  # SQLAlchemy wraps the driver's
        sqlstate = getattr(database, "sqlstate", None) or getattr(database, "pgcode", None)
        if isinstance(sqlstate, str):
            label += f" sqlstate={sqlstate}"
            constraint = getattr(database, "constraint_name", None)
            if isinstance(constraint, str):
                label += f" constraint={constraint}"
        parts.append(label + frames)
        current = current.__cause__ or current.__context__
    return "\ncaused by: ".join(parts)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and record.exc_info[1] is not None:
            entry["exc"] = describe_exception(record.exc_info[1])
        return redact(orjson.dumps(entry, default=str).decode())


def refuse_console_stripe_log() -> None:
    """stripe prints request and response bodies to stderr itself when STRIPE_LOG is set."""
    if stripe_prints_bodies():
        raise SystemExit("STRIPE_LOG: unset it; it makes the stripe library print request bodies "
                         "(with payment client secrets) to stderr. Use TANPUHUI_LOG_LEVEL instead.")


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    refuse_console_stripe_log()
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    # uvicorn's access log would print client addresses and full paths; ours logs requests itself
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
