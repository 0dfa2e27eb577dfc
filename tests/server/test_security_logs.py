"""Personal data and secrets never reach a log line, at any level (issue 8, art. 28, 30-32).

The failing paths are driven for real with marker values: a database error inside a write
(a trigger that throws the row it was given back in its message, detail and hint, the way a
unique violation quotes its key) and a Stripe call with the root logger at DEBUG. Every line the
service's own formatter writes is then searched for every marker."""

from __future__ import annotations

import io
import logging

import asyncpg
import pytest

from accounts.security import keyed_hash
from server.logs import configure_logging, describe_exception, redact
from tests.conftest import PASSWORD, SIGN_UP, organisation, sign_in, unique_email
from tests.neutrality.market_fixtures import buy, offer, seller_with_tonnes, stripe_world  # noqa: F401

NATIONAL_ID = "11010519491231002X"
PHONE = "13912345678"


@pytest.fixture
def log_lines():
    """The service's own logging set-up at DEBUG, writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    yield lambda: buffer.getvalue()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)


async def _throw_rows_back(services) -> None:
    """A trigger that refuses every new account and quotes all of it, as a constraint would."""
    url = services.settings.database_url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("""
            CREATE FUNCTION quote_row() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'refused %, %, %', NEW.email, NEW.phone, NEW.display_name
                USING DETAIL = coalesce(NEW.national_id_hash, '') || ' ' || NEW.password_hash,
                      HINT = NEW.email;
            END $$;
            CREATE TRIGGER quote_row BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION quote_row();""")
    finally:
        await connection.close()


async def test_a_database_error_inside_a_write_logs_no_personal_data(api, services, log_lines):
    await _throw_rows_back(services)
    email = unique_email("marker")
    name = "标记张三丰"
    password = "marker-password-Xq93"
    response = await api.post({"query": SIGN_UP, "variables": {"input": {
        "kind": "PERSON", "displayName": name, "email": email, "phone": PHONE, "nationalId": NATIONAL_ID,
        "password": password}}})
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", body
    request_id = response.headers["X-Request-ID"]

    text = log_lines()
    internal = [line for line in text.splitlines() if '"internal error"' in line and request_id in line]
    assert internal, text  # the failure is logged, by request id, with its database code
    assert "sqlstate=P0001" in internal[0]
    markers = [email, name, password, PHONE, "+86" + PHONE, NATIONAL_ID,
               keyed_hash(services.settings.personal_data_key, NATIONAL_ID), "$argon2", "refused "]
    for marker in markers:
        assert marker not in text, marker


async def test_a_stripe_call_at_debug_logs_no_client_secret(api, services, stripe_world, log_lines):
    seller = await seller_with_tonnes(api, services, 10)
    sale = await offer(api, seller, 10, price=5_000)
    buyer = await organisation(api, "日志测试有限公司")
    bought = await buy(api, buyer, sale["id"], 2)
    secret = bought["clientSecret"]
    assert secret and "_secret_" in secret

    text = log_lines()
    assert secret not in text
    assert secret.split("_secret_")[1] not in text
    assert "sk_test_" not in text  # the emulator's API key rides in the Authorization header
    assert buyer.token not in text
    # the stripe library logs its requests at DEBUG and INFO: held at WARNING whatever the root says
    assert '"logger":"stripe"' not in text


async def test_a_login_refused_logs_neither_login_nor_password(api, services, log_lines):
    org = await organisation(api, "登录日志有限公司")
    await api.post({"query": "mutation($i: LoginInput!) { login(input: $i) { errors { code } } }",
                    "variables": {"i": {"login": org.login, "password": "wrong-password-marker"}}})
    actor = await sign_in(api, org.login)
    text = log_lines()
    for marker in (org.login, "wrong-password-marker", PASSWORD, actor.token, actor.refresh_token):
        assert marker not in text, marker


def test_stripe_console_logging_is_refused_at_start(monkeypatch):
    monkeypatch.setenv("STRIPE_LOG", "debug")
    with pytest.raises(SystemExit, match="STRIPE_LOG"):
        configure_logging("INFO", stream=io.StringIO())


@pytest.mark.parametrize("secret", [
    "someone@example.org", "+8613912345678", "13912345678", NATIONAL_ID,
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x", "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "whsec_abcdef0123456789", "pi_3Mtw_secret_YrKJUKribcBjcG8HVhfZluoGH", "tph_0123456789ab_AbC-dEf_GhI",
    "a" * 8 + "0" * 56,
])
def test_the_redactor_replaces_every_secret_shape(secret):
    line = f'{{"msg":"value {secret} here","x":"{secret}"}}'
    assert secret not in redact(line)
    assert redact(line).count("[redacted]") == 2


def test_the_redactor_keeps_ids_times_and_counts():
    line = ('{"ts":"2026-03-02T01:00:00.123Z","request_id":"0123456789abcdef0123456789abcdef",'
            '"id":"12345678-1234-4234-9234-123456789012","ms":12.5,"lots":1234567}')
    assert redact(line) == line


def test_an_exception_is_described_without_its_message():
    try:
        try:
            raise KeyError("someone@example.org")
        except KeyError as inner:
            raise RuntimeError("secret 13912345678") from inner
    except RuntimeError as exc:
        described = describe_exception(exc)
    assert "builtins.RuntimeError" in described and "builtins.KeyError" in described
    assert "someone" not in described and "1391234" not in described
    assert "test_an_exception_is_described_without_its_message" in described  # frames stay
