"""Settings from the environment. Every variable is listed in the README's configuration table."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None
    redis_url: str | None
    secret_key: str
    personal_data_key: str
    environment: str = "development"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    rate_limit_per_minute: int = 600
    anonymous_rate_limit_per_minute: int = 120
    max_query_depth: int = 12
    max_aliases: int = 30
    max_query_cost: int = 10_000
    max_body_bytes: int = 1_000_000
    persisted_queries_only: bool = False
    db_pool_size: int = 20
    redemption_hold_minutes: int = 30
    # Stripe (issue 5): unset key = the embedded test-mode emulator (localstripe on 127.0.0.1)
    stripe_api_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    cer_reservation_minutes: int = 30
    # carbon-neutral certificates: Ed25519 private key (PEM or base64); unset = <data dir>/certificate-signing.key
    certificate_signing_key: str | None = None
    # the public address the certificates' verification links and QR codes point to
    public_base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    extra: dict = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None


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
    data_dir = Path(os.environ.get("TANPUHUI_DATA_DIR", "./.tanpuhui")).resolve()
    values = dict(
        data_dir=data_dir,
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        environment=os.environ.get("TANPUHUI_ENV", "development"),
        access_token_ttl_seconds=_int("TANPUHUI_ACCESS_TOKEN_TTL", 900),
        refresh_token_ttl_seconds=_int("TANPUHUI_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
        rate_limit_per_minute=_int("TANPUHUI_RATE_LIMIT_PER_MINUTE", 600),
        anonymous_rate_limit_per_minute=_int("TANPUHUI_ANONYMOUS_RATE_LIMIT_PER_MINUTE", 120),
        max_query_depth=_int("TANPUHUI_MAX_QUERY_DEPTH", 12),
        max_aliases=_int("TANPUHUI_MAX_ALIASES", 30),
        max_query_cost=_int("TANPUHUI_MAX_QUERY_COST", 10_000),
        max_body_bytes=_int("TANPUHUI_MAX_BODY_BYTES", 1_000_000),
        persisted_queries_only=_bool("TANPUHUI_PERSISTED_QUERIES_ONLY", False),
        db_pool_size=_int("TANPUHUI_DB_POOL_SIZE", 20),
        redemption_hold_minutes=_int("TANPUHUI_REDEMPTION_HOLD_MINUTES", 30),
        stripe_api_key=os.environ.get("STRIPE_API_KEY") or None,
        stripe_webhook_secret=os.environ.get("STRIPE_WEBHOOK_SECRET") or None,
        stripe_api_base=os.environ.get("STRIPE_API_BASE") or None,
        cer_reservation_minutes=_int("TANPUHUI_CER_RESERVATION_MINUTES", 30),
        certificate_signing_key=os.environ.get("TANPUHUI_CERTIFICATE_SIGNING_KEY") or None,
        public_base_url=(os.environ.get("TANPUHUI_PUBLIC_BASE_URL") or "http://127.0.0.1:8000").rstrip("/"),
        log_level=os.environ.get("TANPUHUI_LOG_LEVEL", "INFO"),
    )
    values.update(overrides)
    dd = Path(values["data_dir"])
    values["secret_key"] = overrides.get("secret_key") or os.environ.get(
        "TANPUHUI_SECRET_KEY"
    ) or _secret_from_file(dd, "secret.key")
    values["personal_data_key"] = overrides.get("personal_data_key") or os.environ.get(
        "TANPUHUI_PERSONAL_DATA_KEY"
    ) or _secret_from_file(dd, "personal-data.key")
    if values["environment"] == "production" and (
        not os.environ.get("TANPUHUI_SECRET_KEY") and "secret_key" not in overrides
    ):
        raise RuntimeError("TANPUHUI_SECRET_KEY must be set in production")
    return Settings(**values)
