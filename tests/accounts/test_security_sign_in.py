"""Sign-in resists guessing (issue 8): one credential check per operation, failed checks back off
per login and IP, per IP and per login (never locking a person out for good), the throttle acts
before any argon2 work, a bearer token changes nothing, and sign-ups per IP are limited.

Policies (accounts/sign_in_throttle.py): one login from one IP: 5 free failures per 15 minutes,
then 1 s, 2 s, 4 s ... up to 15 minutes; one IP against any login: 20 free; one login from
anywhere: 10 free, delays capped at 60 s and not applied to IPs the login signed in from."""

from __future__ import annotations

import pytest

from tests.api._conventions import client_for, codes, table_counts
from tests.conftest import PASSWORD, organisation, person, unique_email

WRONG = "not the password at all"
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { session { accessToken } errors { code field message retryAfter } }
}"""
SIGN_UP = """
mutation SignUp($input: SignUpInput!) { signUp(input: $input) { account { id } errors { code retryAfter } } }"""


@pytest.fixture
def settings_overrides() -> dict:
    # the request rate limits are not what is tested here
    return {"rate_limit_per_minute": 10_000, "anonymous_rate_limit_per_minute": 10_000,
            "sign_ups_per_ip_per_hour": 1_000}


@pytest.fixture
def verifications(services, monkeypatch) -> list:
    """Every argon2 verification the service runs."""
    calls = []
    real = services.hashing.verify

    async def counted(stored_hash, password):
        calls.append(password)
        return await real(stored_hash, password)

    monkeypatch.setattr(services.hashing, "verify", counted)
    return calls


async def login(client_or_api, login: str, password: str, token: str | None = None) -> dict:
    body = {"query": LOGIN, "variables": {"input": {"login": login, "password": password}}}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if hasattr(client_or_api, "post") and hasattr(client_or_api, "services"):
        response = await client_or_api.post(body, headers=headers)
    else:
        response = await client_or_api.post("/graphql", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]["login"]


def error_of(payload: dict) -> tuple[str, int | None]:
    [error] = payload["errors"]
    return error["code"], error["retryAfter"]


async def test_one_operation_checks_at_most_one_credential(api, services, verifications):
    org = await organisation(api)
    verifications.clear()
    before = await table_counts(services)
    guesses = " ".join(f'g{i}: login(input: {{login: "{org.login}", password: "guess-{i:04d}-xyz"}})'
                       f' {{ session {{ accessToken }} }}' for i in range(30))
    response = await api.post({"query": f"mutation {{ {guesses} }}"})
    assert response.status_code == 400
    assert codes(response.json()) == ["TOO_MANY_CREDENTIAL_CHECKS"]
    # two different credential checks, or two hidden in fragments, are refused alike
    mixed = ('mutation { login(input: {login: "a@example.org", password: "x"}) { session { accessToken } }'
             ' refreshSession(input: {refreshToken: "r"}) { session { accessToken } } }')
    assert codes((await api.post({"query": mixed})).json()) == ["TOO_MANY_CREDENTIAL_CHECKS"]
    fragments = ('mutation { ...A ...A } fragment A on Mutation {'
                 ' changePassword(input: {currentPassword: "x", newPassword: "y"}) { signedOutSessions } }')
    assert codes((await api.post({"query": fragments})).json()) == ["TOO_MANY_CREDENTIAL_CHECKS"]
    assert verifications == [] and await table_counts(services) == before
    # one is fine
    assert (await login(api, org.login, PASSWORD))["session"] is not None


async def test_failed_logins_back_off_per_login_and_ip(api, clock, verifications):
    org = await organisation(api)
    for attempt in range(5):  # free
        assert error_of(await login(api, org.login, WRONG)) == ("INVALID_CREDENTIALS", None), attempt
    assert error_of(await login(api, org.login, WRONG)) == ("INVALID_CREDENTIALS", 1)
    checked = len(verifications)
    # barred for a second: even the right password is not checked
    assert error_of(await login(api, org.login, PASSWORD)) == ("TOO_MANY_ATTEMPTS", 1)
    assert len(verifications) == checked
    clock.advance(seconds=1)
    assert error_of(await login(api, org.login, WRONG)) == ("INVALID_CREDENTIALS", 2)
    clock.advance(seconds=2)
    assert error_of(await login(api, org.login, WRONG)) == ("INVALID_CREDENTIALS", 4)
    clock.advance(seconds=3)
    assert error_of(await login(api, org.login, WRONG)) == ("TOO_MANY_ATTEMPTS", 1)
    clock.advance(seconds=1)
    # the right password after the wait signs in and clears this IP's count for the login
    assert (await login(api, org.login, PASSWORD))["session"] is not None
    assert error_of(await login(api, org.login, WRONG)) == ("INVALID_CREDENTIALS", None)


async def test_delays_grow_to_their_cap_and_the_window_forgets(api, clock):
    org = await organisation(api)
    waits = []
    for _ in range(16):
        payload = await login(api, org.login, WRONG)
        code, wait = error_of(payload)
        assert code == "INVALID_CREDENTIALS"
        waits.append(wait)
        clock.advance(seconds=wait or 0)
    assert waits == [None] * 5 + [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]  # capped at 15 minutes
    assert error_of(await login(api, org.login, WRONG)) == ("INVALID_CREDENTIALS", 900)  # waiting out is not forgetting
    clock.advance(minutes=31)  # 15 minutes without a failure after the bar: the count starts again
    assert error_of(await login(api, org.login, WRONG)) == ("INVALID_CREDENTIALS", None)


async def test_guesses_from_one_ip_across_many_logins_back_off(api, services):
    people = [await organisation(api, f"机构{i}") for i in range(3)]
    for i in range(20):
        payload = await login(api, unique_email("nobody") if i % 2 else people[i % 3].login, WRONG)
        assert error_of(payload)[0] == "INVALID_CREDENTIALS"
    # the 21st failure from this IP bars the IP, for every login
    assert error_of(await login(api, unique_email("nobody"), WRONG)) == ("INVALID_CREDENTIALS", 1)
    assert error_of(await login(api, people[0].login, PASSWORD))[0] == "TOO_MANY_ATTEMPTS"
    async with client_for(services, host="10.9.8.7") as elsewhere:
        assert (await login(elsewhere, people[0].login, PASSWORD))["session"] is not None


async def test_an_attacker_cannot_lock_a_person_out(api, services, clock):
    victim = await organisation(api)  # signed in from 127.0.0.1: a known address of the login
    answers, bot_number = [], 0
    while len(answers) < 30:  # a botnet: every guess from another address, as fast as allowed
        bot_number += 1
        async with client_for(services, host=f"10.0.{bot_number}.1") as bot:
            code, wait = error_of(await login(bot, victim.login, WRONG))
        answers.append((code, wait))
        if code == "TOO_MANY_ATTEMPTS":
            assert wait <= 60  # the login-wide bar is short
            clock.advance(seconds=wait)
    assert answers[:10] == [("INVALID_CREDENTIALS", None)] * 10
    assert max(wait for _, wait in answers if wait) == 60
    # meanwhile the person, from an address they signed in from, is not held up at all
    assert (await login(api, victim.login, PASSWORD))["session"] is not None
    # and a new address of theirs waits at most a minute, however long the attack goes on
    async with client_for(services, host="10.0.255.1") as bot:
        assert error_of(await login(bot, victim.login, WRONG))[0] in ("INVALID_CREDENTIALS", "TOO_MANY_ATTEMPTS")
    async with client_for(services, host="192.168.1.20") as new_phone:
        code, wait = error_of(await login(new_phone, victim.login, PASSWORD))
        assert code == "TOO_MANY_ATTEMPTS" and wait <= 60
        clock.advance(seconds=wait)
        assert (await login(new_phone, victim.login, PASSWORD))["session"] is not None


async def test_a_bearer_token_does_not_move_guesses_onto_the_account_limit(api):
    attacker = await person(api)
    target = await organisation(api)
    for _ in range(5):
        assert error_of(await login(api, target.login, WRONG, token=attacker.token))[0] == "INVALID_CREDENTIALS"
    assert error_of(await login(api, target.login, WRONG, token=attacker.token)) == ("INVALID_CREDENTIALS", 1)
    assert error_of(await login(api, target.login, WRONG))[0] == "TOO_MANY_ATTEMPTS"  # same IP, no token


async def test_wrong_current_passwords_back_off(api, verifications):
    someone = await person(api)
    change = ("mutation($i: ChangePasswordInput!) { changePassword(input: $i) {"
              " signedOutSessions errors { code retryAfter } } }")
    answers = []
    for _ in range(7):
        body = await api.data(change, {"i": {"currentPassword": WRONG, "newPassword": "another good password"}},
                              token=someone.token)
        answers.append(error_of(body["changePassword"]))
    assert answers[:5] == [("INVALID_CREDENTIALS", None)] * 5
    assert answers[5] == ("INVALID_CREDENTIALS", 1) and answers[6] == ("TOO_MANY_ATTEMPTS", 1)


async def test_guessed_refresh_tokens_back_off_per_ip(api):
    refresh = "mutation($t: String!) { refreshSession(input: {refreshToken: $t}) { errors { code retryAfter } } }"
    answers = [error_of((await api.data(refresh, {"t": f"guess-{i}"}))["refreshSession"]) for i in range(22)]
    assert answers[:20] == [("INVALID_REFRESH_TOKEN", None)] * 20
    assert answers[20] == ("INVALID_REFRESH_TOKEN", 1) and answers[21] == ("TOO_MANY_ATTEMPTS", 1)


@pytest.mark.parametrize("settings_overrides", [{"sign_ups_per_ip_per_hour": 3,
                                                 "anonymous_rate_limit_per_minute": 10_000}])
async def test_sign_ups_per_ip_are_limited(api, services, clock, settings_overrides, verifications):
    async def sign_up(client=None) -> dict:
        body = {"query": SIGN_UP, "variables": {"input": {"kind": "PERSON", "displayName": "注册", "email": unique_email(),
                                                        "password": PASSWORD}}}
        response = await (client.post("/graphql", json=body) if client else api.post(body))
        return response.json()["data"]["signUp"]

    for _ in range(3):
        assert (await sign_up())["errors"] == []
    before = await table_counts(services)
    refused = await sign_up()
    assert refused["account"] is None
    code, wait = error_of(refused)
    assert code == "TOO_MANY_ATTEMPTS" and 1 <= wait <= 3600
    assert await table_counts(services) == before
    async with client_for(services, host="10.4.4.4") as other:
        assert (await sign_up(other))["errors"] == []
    clock.advance(seconds=wait)
    assert (await sign_up())["errors"] == []


async def test_the_throttle_counts_before_any_password_is_hashed(api, services, clock, verifications):
    org = await organisation(api)
    for _ in range(6):
        await login(api, org.login, WRONG)
    verifications.clear()
    for _ in range(50):  # a barred caller costs no argon2 at all
        assert error_of(await login(api, org.login, WRONG))[0] == "TOO_MANY_ATTEMPTS"
    assert verifications == []
