"""Settings from the environment. Every variable is listed in the README's configuration table.

pydantic-settings reads and checks the variables: `_Environment` has one field per variable,
named after it, and says what each accepts. `load_settings` turns them into the frozen `Settings`
the rest of the code reads. A bad value raises SettingsError, whose message names the variable
and what it accepts (never the value of a secret). With TANPUHUI_ENV=production the start is
refused unless the keys that several instances must share and the public address are set, and
GraphiQL, introspection and field suggestions default to off, persisted operations to only."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENVIRONMENTS = ("development", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FLAGS = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}
# Several instances with self-generated keys would disagree on tokens, identity-number hashes and
# certificate keys, and certificates would point to 127.0.0.1.
REQUIRED_IN_PRODUCTION = ("TANPUHUI_SECRET_KEY", "TANPUHUI_PERSONAL_DATA_KEY", "TANPUHUI_CERTIFICATE_SIGNING_KEY",
                          "TANPUHUI_PUBLIC_BASE_URL")
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"


class SettingsError(ValueError):
    """A setting is missing or has a value it cannot take; the message names the variable(s)."""


@dataclass(frozen=True)
class Settings:
    """What the rest of the code reads; built only by `load_settings`, which holds the defaults
    (in `_Environment`) and the checks."""

    data_dir: Path
    database_url: str | None
    redis_url: str | None
    secret_key: str
    personal_data_key: str
    environment: str
    access_token_ttl_seconds: int
    refresh_token_ttl_seconds: int
    rate_limit_per_minute: int
    anonymous_rate_limit_per_minute: int
    # sign-up attempts a client IP may make an hour (each hashes a password with argon2)
    sign_ups_per_ip_per_hour: int
    max_query_depth: int
    max_aliases: int
    max_query_cost: int
    max_body_bytes: int
    persisted_queries_only: bool
    db_pool_size: int
    redemption_hold_minutes: int
    # the worker's expiry sweep: every this many minutes (a divisor of 60, or a multiple of 60 dividing a day)
    expiry_sweep_minutes: int
    # Stripe (issue 5): unset key = the embedded test-mode emulator (localstripe on 127.0.0.1)
    stripe_api_key: str | None
    stripe_webhook_secret: str | None
    stripe_api_base: str | None
    cer_reservation_minutes: int
    # carbon-neutral certificates: Ed25519 private key (PEM or base64); unset = <data dir>/certificate-signing.key
    certificate_signing_key: str | None
    # the public address the certificates' verification links and QR codes point to
    public_base_url: str
    log_level: str
    # what a production deployment turns off unless enabled explicitly
    graphiql: bool
    introspection: bool
    field_suggestions: bool
    # origins allowed to call the API from a browser (CORS); empty: none
    cors_origins: tuple[str, ...]
    extra: dict = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None

    @property
    def production(self) -> bool:
        return self.environment == "production"


# --- what each variable accepts ------------------------------------------------------------------


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        normalised = value.strip().lower()
        if normalised not in FLAGS:
            raise ValueError("not a flag")
        return FLAGS[normalised]
    if isinstance(value, bool):
        return value
    raise ValueError("not a flag")


def _one_of(choices: tuple[str, ...]):
    def check(value: str) -> str:
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
        raise ValueError("not one of the choices")
    return check


def _http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("not an http(s) URL")
    return value.strip().rstrip("/")


def _url_with_scheme(*schemes: str):
    def check(value: str) -> str:
        if urlsplit(value.strip()).scheme not in schemes:
            raise ValueError("unexpected scheme")
        return value.strip()
    return check


def _sweep_minutes(value: int) -> int:
    if value < 1 or not ((value <= 60 and 60 % value == 0) or (value % 60 == 0 and 1440 % value == 0)):
        raise ValueError("not a divisor or multiple of 60")
    return value


def _origins(value: Any) -> Any:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    origins = []
    for origin in value:
        if origin != "*":
            parts = urlsplit(origin)
            if (parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query
                    or parts.fragment or parts.username or parts.password):
                raise ValueError("not an origin")
            origin = f"{parts.scheme}://{parts.netloc.lower()}"
        origins.append(origin)
    return tuple(origins)


def _signing_key(value: str | None) -> str | None:
    if value is not None:
        from neutrality.retirement.certificates import InvalidSigningKey, parse_private_key

        try:
            parse_private_key(value)
        except InvalidSigningKey:
            raise ValueError("not a readable Ed25519 key") from None
    return value


def _stripe_key(value: str) -> str:
    if not value.startswith(("sk_", "rk_")):
        raise ValueError("not a secret key")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]


def _setting(default: Any, accepts: str, *, secret: bool = False, **constraints: Any) -> Any:
    return Field(default, json_schema_extra={"accepts": accepts, "secret": secret}, **constraints)


_SECONDS = "a whole number of seconds above 0"
_MINUTES = "a whole number of minutes above 0"
_PER_MINUTE = "a whole number of requests a minute, at least 1"


class _Environment(BaseSettings):
    """One field per environment variable (the field name is the variable's, lower-cased).
    An empty variable counts as unset."""

    model_config = SettingsConfigDict(env_ignore_empty=True, frozen=True, extra="forbid")

    tanpuhui_data_dir: Path = _setting(Path("./.tanpuhui"), "a directory path")
    database_url: Annotated[str, AfterValidator(_url_with_scheme("postgresql+asyncpg"))] | None = _setting(
        None, "a postgresql+asyncpg:// URL", secret=True)
    redis_url: Annotated[str, AfterValidator(_url_with_scheme("redis", "rediss", "unix"))] | None = _setting(
        None, "a redis://, rediss:// or unix:// URL", secret=True)
    tanpuhui_env: Annotated[str, AfterValidator(_one_of(ENVIRONMENTS))] = _setting(
        "development", "development or production")
    tanpuhui_secret_key: str | None = _setting(None, "a secret string", secret=True)
    tanpuhui_personal_data_key: str | None = _setting(None, "a secret string", secret=True)
    tanpuhui_access_token_ttl: int = _setting(900, _SECONDS, gt=0)
    tanpuhui_refresh_token_ttl: int = _setting(30 * 24 * 3600, _SECONDS, gt=0)
    tanpuhui_rate_limit_per_minute: int = _setting(600, _PER_MINUTE, ge=1)
    tanpuhui_anonymous_rate_limit_per_minute: int = _setting(120, _PER_MINUTE, ge=1)
    tanpuhui_sign_ups_per_ip_per_hour: int = _setting(20, "a whole number of sign-ups an hour, at least 1", ge=1)
    tanpuhui_max_query_depth: int = _setting(12, "a whole number of levels, at least 1", ge=1)
    tanpuhui_max_aliases: int = _setting(30, "a whole number of aliases, 0 or more", ge=0)
    tanpuhui_max_query_cost: int = _setting(10_000, "a whole number, at least 1", ge=1)
    tanpuhui_max_body_bytes: int = _setting(1_000_000, "a whole number of bytes, at least 1024", ge=1024)
    tanpuhui_persisted_queries_only: Flag | None = _setting(None, "true or false (or 1/0, yes/no, on/off)")
    tanpuhui_db_pool_size: int = _setting(20, "a whole number of connections, at least 1", ge=1)
    tanpuhui_redemption_hold_minutes: int = _setting(30, _MINUTES, gt=0)
    tanpuhui_expiry_sweep_minutes: Annotated[int, AfterValidator(_sweep_minutes)] = _setting(
        60, "a whole number of minutes that divides 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60) or a multiple "
            "of 60 that divides a day (120, 180, 240, 360, 480, 720, 1440)")
    stripe_api_key: Annotated[str, AfterValidator(_stripe_key)] | None = _setting(
        None, "a Stripe secret key (sk_... or rk_...)", secret=True)
    stripe_webhook_secret: str | None = _setting(None, "the endpoint's signing secret (whsec_...)", secret=True)
    stripe_api_base: Annotated[str, AfterValidator(_http_url)] | None = _setting(None, "an http(s) URL")
    tanpuhui_cer_reservation_minutes: int = _setting(30, _MINUTES, gt=0)
    tanpuhui_certificate_signing_key: Annotated[str, AfterValidator(_signing_key)] | None = _setting(
        None, "an Ed25519 private key: PEM, or base64 of the raw 32-byte seed or of PKCS#8 DER", secret=True)
    tanpuhui_public_base_url: Annotated[str, AfterValidator(_http_url)] | None = _setting(
        None, "an http(s) URL such as https://tanpuhui.example.org")
    tanpuhui_log_level: Annotated[str, AfterValidator(_one_of(LOG_LEVELS))] = _setting(
        "INFO", "a log level: " + ", ".join(LOG_LEVELS))
    tanpuhui_graphiql: Flag | None = _setting(None, "true or false (or 1/0, yes/no, on/off)")
    tanpuhui_introspection: Flag | None = _setting(None, "true or false (or 1/0, yes/no, on/off)")
    tanpuhui_field_suggestions: Flag | None = _setting(None, "true or false (or 1/0, yes/no, on/off)")
    tanpuhui_cors_origins: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_origins)] = _setting(
        (), "a comma-separated list of origins such as https://app.example.org (scheme://host[:port])")


# Settings attribute -> the variable it comes from (overrides passed to load_settings are checked alike)
_VARIABLE_OF = {
    "data_dir": "TANPUHUI_DATA_DIR", "database_url": "DATABASE_URL", "redis_url": "REDIS_URL",
    "environment": "TANPUHUI_ENV", "secret_key": "TANPUHUI_SECRET_KEY",
    "personal_data_key": "TANPUHUI_PERSONAL_DATA_KEY", "access_token_ttl_seconds": "TANPUHUI_ACCESS_TOKEN_TTL",
    "refresh_token_ttl_seconds": "TANPUHUI_REFRESH_TOKEN_TTL", "rate_limit_per_minute": "TANPUHUI_RATE_LIMIT_PER_MINUTE",
    "anonymous_rate_limit_per_minute": "TANPUHUI_ANONYMOUS_RATE_LIMIT_PER_MINUTE",
    "sign_ups_per_ip_per_hour": "TANPUHUI_SIGN_UPS_PER_IP_PER_HOUR",
    "max_query_depth": "TANPUHUI_MAX_QUERY_DEPTH", "max_aliases": "TANPUHUI_MAX_ALIASES",
    "max_query_cost": "TANPUHUI_MAX_QUERY_COST", "max_body_bytes": "TANPUHUI_MAX_BODY_BYTES",
    "persisted_queries_only": "TANPUHUI_PERSISTED_QUERIES_ONLY", "db_pool_size": "TANPUHUI_DB_POOL_SIZE",
    "redemption_hold_minutes": "TANPUHUI_REDEMPTION_HOLD_MINUTES",
    "expiry_sweep_minutes": "TANPUHUI_EXPIRY_SWEEP_MINUTES", "stripe_api_key": "STRIPE_API_KEY",
    "stripe_webhook_secret": "STRIPE_WEBHOOK_SECRET", "stripe_api_base": "STRIPE_API_BASE",
    "cer_reservation_minutes": "TANPUHUI_CER_RESERVATION_MINUTES",
    "certificate_signing_key": "TANPUHUI_CERTIFICATE_SIGNING_KEY", "public_base_url": "TANPUHUI_PUBLIC_BASE_URL",
    "log_level": "TANPUHUI_LOG_LEVEL", "graphiql": "TANPUHUI_GRAPHIQL", "introspection": "TANPUHUI_INTROSPECTION",
    "field_suggestions": "TANPUHUI_FIELD_SUGGESTIONS", "cors_origins": "TANPUHUI_CORS_ORIGINS",
}
assert set(_VARIABLE_OF.values()) == {name.upper() for name in _Environment.model_fields}
# every variable read (the README's configuration table lists each)
VARIABLES = tuple(_VARIABLE_OF.values())


def stripe_prints_bodies() -> bool:
    """Whether STRIPE_LOG asks the stripe library (which reads it itself) to print request and response
    bodies to stderr; not a setting of ours, so not in the table: server/logs.py refuses to start."""
    return os.environ.get("STRIPE_LOG", "").strip().lower() in ("debug", "info")


def _explain(error: ValidationError) -> str:
    """One line per bad variable: its name, what it accepts and (unless it is a secret) what it got."""
    lines = {}
    for problem in error.errors(include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else ""
        described = _Environment.model_fields.get(name)
        if described is None:  # an unknown override: a mistake in the calling code
            lines[name] = f"{name}: not a setting"
            continue
        extra = described.json_schema_extra or {}
        line = f"{name.upper()}: expected {extra['accepts']}"
        if not extra["secret"]:
            shown = repr(problem["input"])
            line += f", got {shown if len(shown) <= 80 else shown[:77] + '...'}"
        lines.setdefault(name, line)
    return "\n".join(lines.values())


def _secret_from_file(data_dir: Path, name: str) -> str:
    """A random secret kept in the data dir, so the embedded default survives restarts
    without configuration. Production sets the environment variable instead."""
    path = data_dir / name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def load_settings(**overrides) -> Settings:
    """The settings from the environment; `overrides` (Settings attribute names) win and are
    checked like the variables they stand for. Raises SettingsError on any bad or missing value."""
    passed = {_VARIABLE_OF[key].lower(): value for key, value in overrides.items() if key in _VARIABLE_OF}
    unknown = sorted(set(overrides) - set(_VARIABLE_OF) - {"extra"})
    if unknown:
        raise SettingsError(f"not settings: {', '.join(unknown)}")
    try:
        env = _Environment(**passed)
    except ValidationError as exc:
        raise SettingsError(_explain(exc)) from None
    production = env.tanpuhui_env == "production"
    problems = []
    if production:
        missing = [name for name in REQUIRED_IN_PRODUCTION if getattr(env, name.lower()) is None]
        if missing:
            problems.append(f"TANPUHUI_ENV=production needs {', '.join(missing)} set (instances must share "
                            "their keys, and certificates must point to the public address)")
        if "*" in env.tanpuhui_cors_origins:
            problems.append("TANPUHUI_CORS_ORIGINS: '*' is not accepted in production; list the origins")
    if env.stripe_api_key and not env.stripe_webhook_secret:
        problems.append("STRIPE_WEBHOOK_SECRET must be set with STRIPE_API_KEY (webhooks are verified)")
    if problems:
        raise SettingsError("\n".join(problems))

    def default(value: bool | None, development: bool, in_production: bool) -> bool:
        return value if value is not None else (in_production if production else development)

    data_dir = Path(env.tanpuhui_data_dir).resolve()
    values = {attribute: getattr(env, variable.lower()) for attribute, variable in _VARIABLE_OF.items()}
    values.update(
        data_dir=data_dir,
        secret_key=env.tanpuhui_secret_key or _secret_from_file(data_dir, "secret.key"),
        personal_data_key=env.tanpuhui_personal_data_key or _secret_from_file(data_dir, "personal-data.key"),
        public_base_url=env.tanpuhui_public_base_url or DEFAULT_PUBLIC_BASE_URL,
        persisted_queries_only=default(env.tanpuhui_persisted_queries_only, False, True),
        graphiql=default(env.tanpuhui_graphiql, True, False),
        introspection=default(env.tanpuhui_introspection, True, False),
        field_suggestions=default(env.tanpuhui_field_suggestions, True, False),
        extra=overrides.get("extra") or {},
    )
    return Settings(**values)

