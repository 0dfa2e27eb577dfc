"""Settings are checked when they are read: a bad value names its variable and what it accepts
(never the value of a secret), flags take only the listed words, and the `tanpuhui` command
prints the message and exits non-zero without a traceback, before it starts anything."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest

from server import cli
from server.settings import VARIABLES, SettingsError, load_settings

README = Path(__file__).resolve().parents[2] / "README.md"
CLI = Path(sys.executable).with_name("tanpuhui")
COMMAND = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "server.cli"]


def refusal() -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings()
    return str(raised.value)


BAD_VALUES = [
    ("TANPUHUI_ACCESS_TOKEN_TTL", "15m", "TANPUHUI_ACCESS_TOKEN_TTL: expected a whole number of seconds above 0, got '15m'"),
    ("TANPUHUI_ACCESS_TOKEN_TTL", "0", "TANPUHUI_ACCESS_TOKEN_TTL: expected a whole number of seconds above 0, got '0'"),
    ("TANPUHUI_REFRESH_TOKEN_TTL", "-5", "TANPUHUI_REFRESH_TOKEN_TTL: expected a whole number of seconds above 0"),
    ("TANPUHUI_PERSISTED_QUERIES_ONLY", "ture",
     "TANPUHUI_PERSISTED_QUERIES_ONLY: expected true or false (or 1/0, yes/no, on/off), got 'ture'"),
    ("TANPUHUI_GRAPHIQL", "enabled", "TANPUHUI_GRAPHIQL: expected true or false"),
    ("TANPUHUI_INTROSPECTION", "t", "TANPUHUI_INTROSPECTION: expected true or false"),
    ("TANPUHUI_FIELD_SUGGESTIONS", "2", "TANPUHUI_FIELD_SUGGESTIONS: expected true or false"),
    ("TANPUHUI_DB_POOL_SIZE", "0", "TANPUHUI_DB_POOL_SIZE: expected a whole number of connections, at least 1, got '0'"),
    ("TANPUHUI_RATE_LIMIT_PER_MINUTE", "lots", "TANPUHUI_RATE_LIMIT_PER_MINUTE: expected a whole number of requests"),
    ("TANPUHUI_ANONYMOUS_RATE_LIMIT_PER_MINUTE", "0", "TANPUHUI_ANONYMOUS_RATE_LIMIT_PER_MINUTE: expected"),
    ("TANPUHUI_MAX_QUERY_DEPTH", "0", "TANPUHUI_MAX_QUERY_DEPTH: expected a whole number of levels, at least 1"),
    ("TANPUHUI_MAX_ALIASES", "-1", "TANPUHUI_MAX_ALIASES: expected a whole number of aliases, 0 or more"),
    ("TANPUHUI_MAX_QUERY_COST", "1e4x", "TANPUHUI_MAX_QUERY_COST: expected a whole number, at least 1"),
    ("TANPUHUI_MAX_BODY_BYTES", "1MB", "TANPUHUI_MAX_BODY_BYTES: expected a whole number of bytes, at least 1024"),
    ("TANPUHUI_REDEMPTION_HOLD_MINUTES", "0", "TANPUHUI_REDEMPTION_HOLD_MINUTES: expected a whole number of minutes"),
    ("TANPUHUI_CER_RESERVATION_MINUTES", "half an hour", "TANPUHUI_CER_RESERVATION_MINUTES: expected a whole number"),
    ("TANPUHUI_EXPIRY_SWEEP_MINUTES", "7", "TANPUHUI_EXPIRY_SWEEP_MINUTES: expected a whole number of minutes that "
                                          "divides 60"),
    ("TANPUHUI_ENV", "staging", "TANPUHUI_ENV: expected development or production, got 'staging'"),
    ("TANPUHUI_LOG_LEVEL", "verbose", "TANPUHUI_LOG_LEVEL: expected a log level: DEBUG, INFO, WARNING, ERROR, CRITICAL, "
                                      "got 'verbose'"),
    ("TANPUHUI_PUBLIC_BASE_URL", "tanpuhui.example.org", "TANPUHUI_PUBLIC_BASE_URL: expected an http(s) URL"),
    ("TANPUHUI_PUBLIC_BASE_URL", "ftp://tanpuhui.example.org", "TANPUHUI_PUBLIC_BASE_URL: expected an http(s) URL"),
    ("STRIPE_API_BASE", "localhost:12111", "STRIPE_API_BASE: expected an http(s) URL"),
    ("TANPUHUI_CORS_ORIGINS", "https://app.example.org/path",
     "TANPUHUI_CORS_ORIGINS: expected a comma-separated list of origins"),
    ("TANPUHUI_CORS_ORIGINS", "app.example.org", "TANPUHUI_CORS_ORIGINS: expected a comma-separated list of origins"),
]


@pytest.mark.parametrize(("variable", "value", "message"), BAD_VALUES, ids=[f"{v}={x}" for v, x, _ in BAD_VALUES])
def test_a_bad_value_names_its_variable_and_what_it_accepts(env, variable, value, message):
    env({variable: value})
    text = refusal()
    assert text.startswith(message), text
    assert "\n" not in text and "Traceback" not in text and "pydantic" not in text.lower()


SECRETS = [
    ("DATABASE_URL", "mysql://tanpuhui:hunter2-db@db/tanpuhui", "DATABASE_URL: expected a postgresql+asyncpg:// URL"),
    ("REDIS_URL", "memcached://:hunter2-redis@cache", "REDIS_URL: expected a redis://, rediss:// or unix:// URL"),
    ("STRIPE_API_KEY", "pk_live_hunter2stripe", "STRIPE_API_KEY: expected a Stripe secret key"),
    ("TANPUHUI_CERTIFICATE_SIGNING_KEY", "hunter2-not-a-key", "TANPUHUI_CERTIFICATE_SIGNING_KEY: expected an Ed25519 "
                                                              "private key"),
]


@pytest.mark.parametrize(("variable", "value", "message"), SECRETS, ids=[v for v, _, _ in SECRETS])
def test_a_bad_secret_is_named_but_never_shown(env, variable, value, message):
    env({variable: value, "STRIPE_WEBHOOK_SECRET": "whsec_x"})
    text = refusal()
    assert text.startswith(message) and "hunter2" not in text, text


def test_every_bad_variable_is_named_at_once(env):
    env(dict(TANPUHUI_ACCESS_TOKEN_TTL="15m", TANPUHUI_PERSISTED_QUERIES_ONLY="ture", TANPUHUI_DB_POOL_SIZE="0"))
    lines = refusal().splitlines()
    assert sorted(line.split(":")[0] for line in lines) == [
        "TANPUHUI_ACCESS_TOKEN_TTL", "TANPUHUI_DB_POOL_SIZE", "TANPUHUI_PERSISTED_QUERIES_ONLY"]


@pytest.mark.parametrize("word", ["true", "TRUE", "1", "yes", "On", " on "])
def test_flags_take_the_words_for_true(env, word):
    env(dict(TANPUHUI_PERSISTED_QUERIES_ONLY=word))
    assert load_settings().persisted_queries_only is True


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "OFF"])
def test_flags_take_the_words_for_false(env, word):
    env(dict(TANPUHUI_ENV="production", TANPUHUI_PERSISTED_QUERIES_ONLY=word, TANPUHUI_SECRET_KEY="s" * 48,
             TANPUHUI_PERSONAL_DATA_KEY="p" * 48, TANPUHUI_CERTIFICATE_SIGNING_KEY=base64.b64encode(b"k" * 32).decode(),
             TANPUHUI_PUBLIC_BASE_URL="https://tanpuhui.example.org"))
    assert load_settings().persisted_queries_only is False


def test_good_values_are_read(env):
    env(dict(TANPUHUI_ACCESS_TOKEN_TTL="600", TANPUHUI_EXPIRY_SWEEP_MINUTES="120", TANPUHUI_LOG_LEVEL="debug",
             TANPUHUI_ENV="Development", TANPUHUI_PUBLIC_BASE_URL="https://tanpuhui.example.org/",
             TANPUHUI_CORS_ORIGINS="https://App.example.org, http://localhost:5173", DATABASE_URL="",
             TANPUHUI_MAX_ALIASES=""))
    settings = load_settings()
    assert settings.access_token_ttl_seconds == 600 and settings.expiry_sweep_minutes == 120
    assert settings.log_level == "DEBUG" and settings.environment == "development"
    assert settings.public_base_url == "https://tanpuhui.example.org"
    assert settings.cors_origins == ("https://app.example.org", "http://localhost:5173")
    # an empty variable is an unset one
    assert settings.database_url is None and settings.max_aliases == 30


def test_overrides_are_checked_like_the_variables(env):
    assert load_settings(max_query_depth=3).max_query_depth == 3
    with pytest.raises(SettingsError, match="^TANPUHUI_MAX_QUERY_DEPTH: expected a whole number of levels"):
        load_settings(max_query_depth=0)
    with pytest.raises(SettingsError, match="not settings: max_depth"):
        load_settings(max_depth=3)


def test_stripe_needs_its_webhook_secret(env):
    env(dict(STRIPE_API_KEY="sk_test_123"))
    assert refusal() == "STRIPE_WEBHOOK_SECRET must be set with STRIPE_API_KEY (webhooks are verified)"
    env(dict(STRIPE_WEBHOOK_SECRET="whsec_123"))
    assert load_settings().stripe_webhook_secret == "whsec_123"


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["worker"], ["demo"], ["expire"],
                                     ["create-regulator", "--email", "r@example.org"]])
def test_the_command_prints_the_message_and_exits_without_a_traceback(env, capsys, tmp_path, command):
    env(dict(TANPUHUI_ACCESS_TOKEN_TTL="15m", TANPUHUI_PERSISTED_QUERIES_ONLY="ture"))
    assert cli.main(command) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "error: TANPUHUI_ACCESS_TOKEN_TTL: expected a whole number of seconds above 0, got '15m'",
        "error: TANPUHUI_PERSISTED_QUERIES_ONLY: expected true or false (or 1/0, yes/no, on/off), got 'ture'"]
    assert captured.out == ""
    assert not (tmp_path / "data").exists(), "nothing may be started or written before the settings are good"


def test_the_installed_command_refuses_a_bad_setting_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TANPUHUI_", "STRIPE_")) and k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(TANPUHUI_DATA_DIR=str(tmp_path / "data"), TANPUHUI_ACCESS_TOKEN_TTL="15m")
    result = subprocess.run(COMMAND + ["migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == "error: TANPUHUI_ACCESS_TOKEN_TTL: expected a whole number of seconds above 0, got '15m'\n"
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "data").exists()


def test_every_variable_is_in_the_readme_configuration_table():
    text = README.read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines() if line.startswith("| `")}
    assert set(VARIABLES) <= rows, sorted(set(VARIABLES) - rows)
