"""Rate limits (server/auth.py): per signed-in principal and per anonymous IP, counted in the
real Redis per clock minute; the request over the limit gets a prompt 429 with Retry-After."""

from __future__ import annotations

import time

import pytest

from tests.api._conventions import assert_no_leak, client_for, codes, table_counts
from tests.conftest import PASSWORD, SIGN_UP, person, unique_email

ANON_LIMIT = 5
SIGNED_IN_LIMIT = 8
PING = {"query": "{ service { name } }"}
ME = {"query": "{ me { id } }"}


@pytest.fixture
def settings_overrides() -> dict:
    return {"anonymous_rate_limit_per_minute": ANON_LIMIT, "rate_limit_per_minute": SIGNED_IN_LIMIT}


def assert_rate_limited(response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert codes(body) == ["RATE_LIMITED"]
    assert "data" not in body
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 61
    assert body["errors"][0]["extensions"]["retryAfter"] == retry_after
    assert response.headers["X-Request-ID"] == body["extensions"]["requestId"]
    assert_no_leak(response)


async def test_anonymous_limit_per_ip_and_reset_after_a_minute(api, clock, services):
    for _ in range(ANON_LIMIT):
        response = await api.post(PING)
        assert response.status_code == 200, response.text

    started = time.perf_counter()
    over = await api.post(PING)
    assert time.perf_counter() - started < 2.0  # answered at once, not queued
    assert_rate_limited(over)

    # another IP has its own budget
    async with client_for(services, host="10.1.2.3") as other:
        for _ in range(ANON_LIMIT):
            assert (await other.post("/graphql", json=PING)).status_code == 200
        assert_rate_limited(await other.post("/graphql", json=PING))

    assert over.headers["Retry-After"] == "60"  # the clock stands at hh:mm:00

    # still limited within the same minute, free again in the next one
    clock.advance(seconds=30)
    later = await api.post(PING)
    assert_rate_limited(later)
    assert later.headers["Retry-After"] == "30"
    clock.advance(seconds=30)
    response = await api.post(PING)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["service"]["name"]


async def test_a_rate_limited_mutation_writes_nothing(api, services):
    for _ in range(ANON_LIMIT):
        assert (await api.post(PING)).status_code == 200
    before = await table_counts(services)
    response = await api.post({"query": SIGN_UP, "variables": {"input": {
        "kind": "PERSON", "displayName": "限流", "email": unique_email(), "password": PASSWORD}}})
    assert_rate_limited(response)
    assert await table_counts(services) == before


async def test_signed_in_limit_is_per_principal(api, clock, services):
    # two sign-ups and two sign-ins: 4 anonymous requests from 127.0.0.1
    alice = await person(api, "Alice")
    bob = await person(api, "Bob")

    for _ in range(SIGNED_IN_LIMIT):
        response = await api.post(ME, token=alice.token)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["me"]["id"] == alice.account_id
    started = time.perf_counter()
    over = await api.post(ME, token=alice.token)
    assert time.perf_counter() - started < 2.0
    assert_rate_limited(over)
    assert int(over.json()["errors"][0]["message"].split("of ")[1].split()[0]) == SIGNED_IN_LIMIT

    # Bob, from the same IP, is unaffected; so are anonymous requests from that IP (1 left)
    response = await api.post(ME, token=bob.token)
    assert response.status_code == 200 and response.json()["data"]["me"]["id"] == bob.account_id
    assert (await api.post(PING)).status_code == 200

    # Alice from another IP is still Alice: the limit follows the principal
    async with client_for(services, host="10.9.9.9") as other:
        assert_rate_limited(await other.post("/graphql", json=ME,
                                             headers={"Authorization": f"Bearer {alice.token}"}))

    clock.advance(minutes=1)
    response = await api.post(ME, token=alice.token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["me"]["id"] == alice.account_id


async def test_failed_credentials_spend_the_ip_budget(api, clock, services, monkeypatch):
    """Guessing API keys or tokens is limited per IP: over the limit the answer is 429, and an
    unknown API key no longer costs a database look-up."""
    from accounts import service as accounts_service

    lookups = []
    real_lookup = accounts_service.authenticate_api_key

    async def counting_lookup(**kwargs):
        lookups.append(1)
        return await real_lookup(**kwargs)

    monkeypatch.setattr(accounts_service, "authenticate_api_key", counting_lookup)
    for i in range(ANON_LIMIT):
        response = await api.post(PING, api_key=f"tph_guess{i:04d}_{'x' * 30}")
        assert response.status_code == 401 and codes(response.json()) == ["INVALID_API_KEY"]
    assert len(lookups) == ANON_LIMIT
    for i in range(3):
        assert_rate_limited(await api.post(PING, api_key=f"tph_more{i:04d}_{'x' * 30}"))
    assert len(lookups) == ANON_LIMIT  # refused before touching the database
    assert_rate_limited(await api.post(PING, token="not.a.token"))

    # another IP is not affected, and the next minute starts afresh
    async with client_for(services, host="10.4.4.4") as other:
        response = await other.post("/graphql", json=PING, headers={"X-API-Key": "tph_other_" + "y" * 30})
        assert response.status_code == 401
    clock.advance(minutes=1)
    response = await api.post(PING, token="not.a.token")
    assert response.status_code == 401 and codes(response.json()) == ["INVALID_TOKEN"]
