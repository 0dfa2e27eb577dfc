"""Accounts through the public GraphQL API: sign-up, sessions, role approval, API keys,
entrustments, isolation and personal data.

Every test runs against the real app on a fresh cloned database and a flushed Redis; outcomes
are checked through the API and, where the promise is about storage, in the database itself."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from datetime import datetime, timedelta

import jwt
from sqlalchemy import text

from accounts import service
from accounts.models import SCOPE_ROLES
from server.logs import JsonFormatter
from tests.conftest import (
    DECIDE,
    LOGIN,
    PASSWORD,
    SIGN_UP,
    START,
    approved,
    organisation,
    person,
    regulator,
    sign_in,
    unique_email,
)

# --- operations --------------------------------------------------------------------------------

ME = "{ me { id kind displayName email phone hasNationalId roles { id role status } } }"
ACCOUNT = """
query Account($id: ID!) { account(id: $id) { id kind displayName email phone hasNationalId roles { role status } } }"""
REFRESH = """
mutation Refresh($token: String!) {
  refreshSession(input: {refreshToken: $token}) {
    session { accessToken refreshToken accessTokenExpiresAt account { id roles { role status } } }
    errors { code field message }
  }
}"""
LOGOUT = """
mutation Logout($everywhere: Boolean!) {
  logout(input: {everywhere: $everywhere}) { revokedSessions errors { code field message } }
}"""
APPLY = """
mutation Apply($role: Role!) {
  applyForRole(input: {role: $role}) { application { id role status } errors { code field message } }
}"""
ROLE_APPLICATIONS = """
query Applications($status: RoleStatus, $role: Role) {
  roleApplications(status: $status, role: $role) {
    edges { node { id role status accountId accountName decidedAt decisionReason } }
  }
}"""
REVOKE_ROLE = """
mutation RevokeRole($id: ID!, $reason: String!) {
  revokeRole(input: {applicationId: $id, reason: $reason}) {
    application { id role status decisionReason } errors { code field message }
  }
}"""
CREATE_KEY = """
mutation CreateKey($name: String!, $scopes: [ApiKeyScope!]! = [REPORT_BEHAVIOUR]) {
  createApiKey(input: {name: $name, scopes: $scopes}) {
    secret apiKey { id name prefix scopes createdAt revokedAt lastUsedAt } errors { code field message }
  }
}"""
REVOKE_KEY = """
mutation RevokeKey($id: ID!) {
  revokeApiKey(input: {id: $id}) { apiKey { id revokedAt } errors { code field message } }
}"""
MY_KEYS = "{ myApiKeys { id name prefix scopes createdAt revokedAt lastUsedAt } }"
INVITE = """
mutation Invite($ext: String!) {
  createEntrustmentInvitation(input: {externalUserId: $ext}) {
    invitation { code externalUserId expiresAt } errors { code field message }
  }
}"""
ACCEPT = """
mutation Accept($code: String!, $version: String!) {
  acceptEntrustment(input: {code: $code, agreementVersion: $version}) {
    entrustment { id status externalUserId agreementVersion revokedAt operator { id displayName } }
    errors { code field message }
  }
}"""
REVOKE_ENTRUSTMENT = """
mutation RevokeEntrustment($id: ID!) {
  revokeEntrustment(input: {id: $id}) { entrustment { id status revokedAt } errors { code field message } }
}"""
ENTRUSTED_USER = """
query Entrusted($ext: String!) { entrustedUser(externalUserId: $ext) { id externalUserId status createdAt revokedAt } }"""
OPERATOR_ENTRUSTMENTS = """
query OperatorEntrustments($status: EntrustmentStatus) {
  operatorEntrustments(status: $status) { edges { node { id externalUserId status revokedAt } } }
}"""
MY_ENTRUSTMENTS = """
query MyEntrustments($status: EntrustmentStatus) {
  myEntrustments(status: $status) {
    edges { node { id status externalUserId agreementVersion revokedAt operator { id displayName } } }
  }
}"""
AGREEMENT = "2026-01"

# --- helpers -----------------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def national_id(body17: str) -> str:
    """A mainland identity number with its correct GB 11643 check character."""
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, _ID_WEIGHTS)) % 11]


def with_wrong_check(number: str) -> str:
    wrong = next(c for c in "0123456789X" if c != number[-1])
    return number[:-1] + wrong


def only_error(payload: dict) -> dict:
    assert len(payload["errors"]) == 1, payload
    error = payload["errors"][0]
    assert error["message"], error
    return error


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def sql(services, statement: str, **params):
    async with services.session_factory() as session:
        return (await session.execute(text(statement), params)).all()


async def sql_value(services, statement: str, **params):
    async with services.session_factory() as session:
        return (await session.execute(text(statement), params)).scalar()


async def counts(services) -> dict:
    return {table: await sql_value(services, f"SELECT count(*) FROM {table}")
            for table in ("accounts", "account_roles", "audit_events", "refresh_tokens", "api_keys",
                          "entrustment_invitations", "entrustments")}


async def tables_mentioning(services, needle: str) -> list[str]:
    """Every table with a row whose JSON form contains `needle` (case-insensitive)."""
    tables = [row[0] for row in await sql(services, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    found = []
    for table in tables:
        hits = await sql_value(
            services, f'SELECT count(*) FROM "{table}" AS t WHERE strpos(lower(row_to_json(t)::text), :needle) > 0',
            needle=needle.lower())
        if hits:
            found.append(table)
    return found


async def refused(api, query: str = "{ me { id } }", variables: dict | None = None, **credentials) -> str:
    """The request is turned away with HTTP 401; returns its error code."""
    response = await api.post({"query": query, "variables": variables or {}}, **credentials)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body.get("data") is None, body
    return body["errors"][0]["extensions"]["code"]


async def top_level_code(api, query: str, variables: dict | None = None, **credentials) -> str:
    body = await api.gql(query, variables, **credentials)
    assert body["errors"], body
    return body["errors"][0]["extensions"]["code"]


async def sign_up(api, **fields) -> dict:
    values = {"kind": "PERSON", "displayName": "李华", "password": PASSWORD, **fields}
    values = {k: v for k, v in values.items() if v is not None}
    return (await api.data(SIGN_UP, {"input": values}))["signUp"]


async def role_id(api, actor, role: str) -> str:
    me = await api.data(ME, token=actor.token)
    return next(r["id"] for r in me["me"]["roles"] if r["role"] == role)


async def create_key(api, actor, name: str = "reporting system") -> tuple[str, dict]:
    roles = {r["role"].lower() for r in actor.roles if r["status"] == "ACTIVE"}
    scopes = [scope.name for scope, role in SCOPE_ROLES.items() if role.value in roles]
    payload = (await api.data(CREATE_KEY, {"name": name, "scopes": scopes}, token=actor.token))["createApiKey"]
    assert payload["errors"] == [], payload
    return payload["secret"], payload["apiKey"]


async def invite(api, ext: str, **credentials) -> dict:
    payload = (await api.data(INVITE, {"ext": ext}, **credentials))["createEntrustmentInvitation"]
    assert payload["errors"] == [], payload
    return payload["invitation"]


async def accept(api, actor, code: str, version: str = AGREEMENT) -> dict:
    return (await api.data(ACCEPT, {"code": code, "version": version}, token=actor.token))["acceptEntrustment"]


async def entrusted(api, operator_key: str, ext: str, **credentials) -> dict:
    """An operator (by API key) invites `ext`, a fresh person accepts; returns person and entrustment."""
    invitation = await invite(api, ext, api_key=operator_key)
    someone = await person(api)
    payload = await accept(api, someone, invitation["code"])
    assert payload["errors"] == [], payload
    return {"person": someone, "entrustment": payload["entrustment"]}


# === 1. sign-up ================================================================================


async def test_person_signs_up_with_email_phone_and_national_id(api, services):
    number = national_id("44030419900307231")
    email = unique_email("Person").upper()
    payload = await sign_up(api, displayName="  王   小明 ", email=f"  {email} ", phone="138 0013 8000",
                            nationalId=number)
    assert payload["errors"] == []
    account = payload["account"]
    assert account["displayName"] == "王 小明"
    assert [(r["role"], r["status"]) for r in account["roles"]] == [("INDIVIDUAL", "ACTIVE")]

    someone = await sign_in(api, email.lower())
    me = (await api.data(ME, token=someone.token))["me"]
    assert me["id"] == account["id"] == someone.account_id
    assert me["kind"] == "PERSON"
    assert me["email"] == email.lower()
    assert me["phone"] == "+8613800138000"
    assert me["hasNationalId"] is True


async def test_organisation_signs_up_and_its_applications_wait_for_the_regulator(api):
    payload = await sign_up(api, kind="ORGANISATION", displayName="深圳绿色出行科技有限公司",
                            email=unique_email("org"), applyFor=["APP_OPERATOR", "MERCHANT", "PROJECT_OWNER"],
                            applicationNote="APP 备案号 粤ICP备 000000")
    assert payload["errors"] == []
    roles = {r["role"]: r["status"] for r in payload["account"]["roles"]}
    assert roles == {"ORGANISATION": "ACTIVE", "APP_OPERATOR": "PENDING", "MERCHANT": "PENDING",
                     "PROJECT_OWNER": "ACTIVE"}


SIGN_UP_REFUSALS = [
    ({"email": "not-an-email"}, "INVALID_EMAIL", "email"),
    ({"email": "a@b"}, "INVALID_EMAIL", "email"),
    ({"password": "short1"}, "WEAK_PASSWORD", "password"),
    ({"password": "aaaaaaaaaaaaaaa"}, "WEAK_PASSWORD", "password"),
    ({"password": "x" * 129}, "WEAK_PASSWORD", "password"),
    ({"email": None}, "INVALID", "email"),
    ({"email": "   ", "phone": "  "}, "INVALID", "email"),
    ({"phone": "12ab34"}, "INVALID_PHONE", "phone"),
    ({"nationalId": with_wrong_check(national_id("44030419900307231"))}, "INVALID_NATIONAL_ID", "nationalId"),
    ({"nationalId": "4403041990030723"}, "INVALID_NATIONAL_ID", "nationalId"),
    ({"applyFor": ["APP_OPERATOR"]}, "ROLE_NOT_ALLOWED", "applyFor"),
    ({"kind": "ORGANISATION", "applyFor": ["REGULATOR"]}, "ROLE_NOT_ALLOWED", "applyFor"),
    ({"kind": "ORGANISATION", "applyFor": ["INDIVIDUAL"]}, "ROLE_NOT_ALLOWED", "applyFor"),
    ({"kind": "ORGANISATION", "nationalId": national_id("44030419900307231")}, "INVALID", "nationalId"),
    ({"displayName": "   "}, "INVALID", "displayName"),
]


async def test_sign_up_refusals_are_typed_and_write_nothing(api, services):
    before = await counts(services)
    assert before["accounts"] == 0
    for fields, code, field in SIGN_UP_REFUSALS:
        payload = await sign_up(api, **{"email": unique_email(), **fields})
        assert payload["account"] is None, fields
        error = only_error(payload)
        assert (error["code"], error["field"]) == (code, field), (fields, error)
        assert await counts(services) == before, fields


async def test_duplicate_email_is_email_taken_whatever_its_case(api, services):
    email = unique_email("dup")
    assert (await sign_up(api, email=email))["errors"] == []
    before = await counts(services)

    payload = await sign_up(api, kind="ORGANISATION", email=f" {email.upper()} ")
    assert payload["account"] is None
    error = only_error(payload)
    assert (error["code"], error["field"]) == ("EMAIL_TAKEN", "email")
    assert await counts(services) == before
    assert before["accounts"] == 1


async def test_duplicate_phone_in_another_spelling_is_phone_taken(api, services):
    assert (await sign_up(api, phone="13800138000"))["errors"] == []
    before = await counts(services)
    payload = await sign_up(api, phone="+86 138-0013-8000")
    error = only_error(payload)
    assert (error["code"], error["field"]) == ("PHONE_TAKEN", "phone")
    assert payload["account"] is None
    assert await counts(services) == before


async def test_phone_normalisation_mainland_and_international(api, services):
    mainland = await sign_up(api, phone="(139) 2345-6789")
    overseas = await sign_up(api, phone="+44 20 7946 0958")
    assert mainland["errors"] == overseas["errors"] == []
    stored = dict(await sql(services, "SELECT id::text, phone FROM accounts"))
    assert stored[mainland["account"]["id"]] == "+8613923456789"
    assert stored[overseas["account"]["id"]] == "+442079460958"

    # every spelling of the number signs in to the same account
    for spelling in ("13923456789", "+86 139 2345 6789", "+8613923456789"):
        assert (await sign_in(api, spelling)).account_id == mainland["account"]["id"]
    me = (await api.data(ME, token=(await sign_in(api, "13923456789")).token))["me"]
    assert me["phone"] == "+8613923456789" and me["email"] is None


async def test_national_id_is_stored_only_as_a_keyed_hash(api, services):
    number = national_id("11010519491231002")  # check character X
    assert number.endswith("X")
    payload = await sign_up(api, email=unique_email(), nationalId=number.lower())
    assert payload["errors"] == []
    stored = await sql_value(services, "SELECT national_id_hash FROM accounts WHERE id = :id",
                             id=payload["account"]["id"])
    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    # keyed, not a bare digest anyone can recompute from the number
    assert stored not in {hashlib.sha256(number.encode()).hexdigest(),
                          hashlib.sha256(number.lower().encode()).hexdigest()}
    row = await sql_value(services, "SELECT row_to_json(a)::text FROM accounts a WHERE id = :id",
                          id=payload["account"]["id"])
    assert number not in row.upper()
    assert number[:17] not in row  # not even the digits without the check character
    # nor anywhere else in the database (audit log, idempotency records...)
    assert await tables_mentioning(services, number[:17]) == []


async def test_sign_up_does_not_tell_whether_an_identity_number_is_registered(api, services):
    """Issue 8: the answer to an anonymous sign-up is the same whether or not the number is linked
    to an account already; the number is linked once, and the second use is audited."""
    number = national_id("44030419900307231")
    first = await sign_up(api, email=unique_email(), nationalId=number)
    fresh = await sign_up(api, email=unique_email(), nationalId=national_id("44030419900307232"))
    again = await sign_up(api, email=unique_email(), nationalId=f" {number} ")

    def shape(payload: dict) -> dict:
        return {"errors": payload["errors"], "displayName": payload["account"]["displayName"],
                "roles": [(r["role"], r["status"]) for r in payload["account"]["roles"]]}

    assert shape(again) == shape(fresh) == shape(first)
    assert api.last_response.status_code == 200
    linked = await sql_value(services, "SELECT count(*) FROM accounts WHERE national_id_hash IS NOT NULL"
                                       " AND id = ANY(CAST(:ids AS uuid[]))",
                             ids=[first["account"]["id"], again["account"]["id"]])
    assert linked == 1
    assert await sql_value(services, "SELECT national_id_hash FROM accounts WHERE id = :id",
                           id=again["account"]["id"]) is None
    assert await sql_value(services, "SELECT count(*) FROM audit_events WHERE"
                                     " action = 'account.identity_number_already_linked' AND subject_id = :id",
                           id=again["account"]["id"]) == 1


async def test_two_sign_ups_at_once_with_one_identity_number_link_it_once(api, services):
    number = national_id("44030419900307233")
    payloads = await asyncio.gather(*[sign_up(api, email=unique_email(), nationalId=number) for _ in range(4)])
    assert all(p["errors"] == [] for p in payloads), payloads
    assert await sql_value(services, "SELECT count(*) FROM accounts WHERE national_id_hash IS NOT NULL") == 1


async def test_sign_up_with_an_idempotency_key_replays(api, services):
    fields = {"email": unique_email(), "idempotencyKey": "signup-7f3a"}
    first = await sign_up(api, **fields)
    second = await sign_up(api, **fields)
    assert first["errors"] == second["errors"] == []
    assert first["account"]["id"] == second["account"]["id"]
    assert await sql_value(services, "SELECT count(*) FROM accounts") == 1


# === 2. login ==================================================================================


async def test_login_with_email_any_case_and_the_token_works_for_me(api):
    someone = await person(api)
    body = await api.data(LOGIN, {"input": {"login": f"  {someone.login.upper()} ", "password": PASSWORD}})
    session = body["login"]["session"]
    assert body["login"]["errors"] == []
    assert session["account"]["id"] == someone.account_id
    assert at(session["accessTokenExpiresAt"]) == START + timedelta(minutes=15)
    assert session["refreshToken"] and session["refreshToken"] != session["accessToken"]
    me = (await api.data(ME, token=session["accessToken"]))["me"]
    assert me["id"] == someone.account_id and me["email"] == someone.login


async def test_login_with_phone(api):
    payload = await sign_up(api, phone="13712345678")
    assert payload["errors"] == []
    for spelling in ("13712345678", "+86 137 1234 5678"):
        actor = await sign_in(api, spelling)
        assert actor.account_id == payload["account"]["id"]
        assert (await api.data(ME, token=actor.token))["me"]["phone"] == "+8613712345678"


async def test_wrong_password_and_unknown_login_are_the_same_error(api, services):
    someone = await person(api)
    attempts = [
        {"login": someone.login, "password": "wrong password 123"},
        {"login": unique_email("nobody"), "password": PASSWORD},
        {"login": "13000000000", "password": PASSWORD},
        {"login": "not a login", "password": PASSWORD},
    ]
    seen = []
    for attempt in attempts:
        payload = (await api.data(LOGIN, {"input": attempt}))["login"]
        assert payload["session"] is None
        seen.append(only_error(payload))
    assert seen[0]["code"] == "INVALID_CREDENTIALS"
    assert all(error == seen[0] for error in seen), seen
    assert await sql_value(services, "SELECT count(*) FROM refresh_tokens") == 1  # only person()'s own


async def test_a_blank_login_never_matches_an_account_without_a_phone(api):
    # accounts that signed up with an email only have no phone: a blank login must not find them
    await person(api)
    for blank in ("", "   ", "()"):
        payload = (await api.data(LOGIN, {"input": {"login": blank, "password": PASSWORD}}))["login"]
        assert payload["session"] is None, blank
        assert only_error(payload)["code"] == "INVALID_CREDENTIALS"
    await person(api)  # with two such accounts the lookup must still be a clean refusal
    for blank in ("", "   ", "()"):
        body = await api.gql(LOGIN, {"input": {"login": blank, "password": PASSWORD}})
        assert "errors" not in body, body
        assert only_error(body["data"]["login"])["code"] == "INVALID_CREDENTIALS"


async def test_an_access_token_expires_after_15_minutes(api, clock):
    someone = await person(api)
    clock.advance(minutes=14, seconds=59)
    assert (await api.data(ME, token=someone.token))["me"]["id"] == someone.account_id
    clock.advance(seconds=1)
    assert await refused(api, token=someone.token) == "TOKEN_EXPIRED"
    # the refresh token still gets a new session
    fresh = (await api.data(REFRESH, {"token": someone.refresh_token}))["refreshSession"]
    assert fresh["errors"] == []
    assert at(fresh["session"]["accessTokenExpiresAt"]) == clock.now() + timedelta(minutes=15)
    assert (await api.data(ME, token=fresh["session"]["accessToken"]))["me"]["id"] == someone.account_id


async def test_garbage_and_forged_tokens_are_invalid(api, services):
    someone = await person(api)
    assert await refused(api, token="garbage") == "INVALID_TOKEN"
    assert await refused(api, token="a.b.c") == "INVALID_TOKEN"
    claims = jwt.decode(someone.token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "rol": ["regulator"]}, "another-secret-" + "z" * 40, algorithm="HS256")
    assert await refused(api, token=forged) == "INVALID_TOKEN"
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert await refused(api, token=unsigned) == "INVALID_TOKEN"
    assert await refused(api, headers={"Authorization": f"Basic {someone.token}"}) == "INVALID_TOKEN"


# === 3. refresh rotation =======================================================================


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(api, clock):
    someone = await person(api)
    other_device = await sign_in(api, someone.login)
    clock.advance(minutes=5)

    rotated = (await api.data(REFRESH, {"token": someone.refresh_token}))["refreshSession"]
    assert rotated["errors"] == []
    new = rotated["session"]
    assert new["refreshToken"] != someone.refresh_token and new["accessToken"] != someone.token
    assert new["account"]["id"] == someone.account_id
    assert (await api.data(ME, token=new["accessToken"]))["me"]["id"] == someone.account_id

    # the used refresh token comes back: it leaked, so the whole family is revoked
    reused = (await api.data(REFRESH, {"token": someone.refresh_token}))["refreshSession"]
    assert reused["session"] is None
    assert only_error(reused)["code"] == "REFRESH_TOKEN_REUSED"
    assert only_error(reused)["field"] == "refreshToken"

    after = (await api.data(REFRESH, {"token": new["refreshToken"]}))["refreshSession"]
    assert after["session"] is None and only_error(after)["code"] == "REFRESH_TOKEN_REVOKED"
    assert await refused(api, token=new["accessToken"]) == "TOKEN_REVOKED"
    assert await refused(api, token=someone.token) == "TOKEN_REVOKED"

    # another sign-in of the same account is another family and keeps working
    assert (await api.data(ME, token=other_device.token))["me"]["id"] == someone.account_id
    assert (await api.data(REFRESH, {"token": other_device.refresh_token}))["refreshSession"]["errors"] == []


async def test_unknown_and_expired_refresh_tokens(api, clock):
    someone = await person(api)
    unknown = (await api.data(REFRESH, {"token": "no-such-token"}))["refreshSession"]
    assert only_error(unknown)["code"] == "INVALID_REFRESH_TOKEN"
    clock.advance(days=30, seconds=1)
    expired = (await api.data(REFRESH, {"token": someone.refresh_token}))["refreshSession"]
    assert expired["session"] is None and only_error(expired)["code"] == "REFRESH_TOKEN_EXPIRED"


async def test_two_concurrent_refreshes_with_one_token_only_one_wins(api, services):
    someone = await person(api)
    results = await asyncio.gather(*(api.gql(REFRESH, {"token": someone.refresh_token}) for _ in range(2)))
    payloads = [r["data"]["refreshSession"] for r in results]
    won = [p for p in payloads if p["session"] is not None]
    lost = [p for p in payloads if p["session"] is None]
    assert len(won) == 1 and len(lost) == 1, payloads
    assert only_error(lost[0])["code"] in {"REFRESH_TOKEN_REUSED", "REFRESH_TOKEN_REVOKED"}
    # exactly one new link was issued in the family
    assert await sql_value(services, "SELECT count(*) FROM refresh_tokens WHERE account_id = :id",
                           id=someone.account_id) == 2


async def test_refresh_picks_up_roles_granted_since_sign_in(api):
    org = await organisation(api, apply_for=["MERCHANT"])
    reg = await regulator(api)
    application = await role_id(api, org, "MERCHANT")
    assert (await api.data(DECIDE, {"input": {"applicationId": application, "approve": True}},
                           token=reg.token))["decideRoleApplication"]["errors"] == []
    new = (await api.data(REFRESH, {"token": org.refresh_token}))["refreshSession"]["session"]
    assert {"role": "MERCHANT", "status": "ACTIVE"} in new["account"]["roles"]
    created = (await api.data(CREATE_KEY, {"name": "shop", "scopes": ["MANAGE_LISTINGS"]}, token=new["accessToken"]))["createApiKey"]
    assert created["errors"] == [] and created["secret"].startswith("tph_")


# === 4. logout =================================================================================


async def test_logout_revokes_this_session_only(api):
    someone = await person(api)
    other_device = await sign_in(api, someone.login)
    payload = (await api.data(LOGOUT, {"everywhere": False}, token=someone.token))["logout"]
    assert payload == {"revokedSessions": 1, "errors": []}

    assert await refused(api, token=someone.token) == "TOKEN_REVOKED"
    again = (await api.data(REFRESH, {"token": someone.refresh_token}))["refreshSession"]
    assert again["session"] is None and only_error(again)["code"] == "REFRESH_TOKEN_REVOKED"
    assert (await api.data(ME, token=other_device.token))["me"]["id"] == someone.account_id


async def test_logout_after_rotation_revokes_the_rotated_tokens(api):
    someone = await person(api)
    new = (await api.data(REFRESH, {"token": someone.refresh_token}))["refreshSession"]["session"]
    assert (await api.data(LOGOUT, {"everywhere": False}, token=new["accessToken"]))["logout"]["errors"] == []
    assert await refused(api, token=new["accessToken"]) == "TOKEN_REVOKED"
    assert await refused(api, token=someone.token) == "TOKEN_REVOKED"
    for token in (new["refreshToken"], someone.refresh_token):
        payload = (await api.data(REFRESH, {"token": token}))["refreshSession"]
        assert payload["session"] is None
        assert only_error(payload)["code"] == "REFRESH_TOKEN_REVOKED"


async def test_logout_everywhere_ends_every_session_of_the_account_only(api):
    someone = await person(api)
    phone_app = await sign_in(api, someone.login)
    tablet = await sign_in(api, someone.login)
    neighbour = await person(api, "张三")

    payload = (await api.data(LOGOUT, {"everywhere": True}, token=someone.token))["logout"]
    assert payload == {"revokedSessions": 3, "errors": []}
    for actor in (someone, phone_app, tablet):
        assert await refused(api, token=actor.token) == "TOKEN_REVOKED"
        again = (await api.data(REFRESH, {"token": actor.refresh_token}))["refreshSession"]
        assert only_error(again)["code"] == "REFRESH_TOKEN_REVOKED"

    assert (await api.data(ME, token=neighbour.token))["me"]["id"] == neighbour.account_id
    assert (await api.data(REFRESH, {"token": neighbour.refresh_token}))["refreshSession"]["errors"] == []
    # signing in again works
    assert (await api.data(ME, token=(await sign_in(api, someone.login)).token))["me"]["id"] == someone.account_id


async def test_logout_needs_a_password_session(api):
    anonymous = (await api.data(LOGOUT, {"everywhere": False}))["logout"]
    assert only_error(anonymous)["code"] == "UNAUTHENTICATED"
    operator = await approved(api, "APP_OPERATOR")
    secret, _ = await create_key(api, operator)
    by_key = (await api.data(LOGOUT, {"everywhere": True}, api_key=secret))["logout"]
    assert only_error(by_key)["code"] == "FORBIDDEN"
    assert (await api.data(ME, token=operator.token))["me"]["id"] == operator.account_id


CHANGE_PASSWORD = """
mutation ChangePassword($current: String!, $new: String!) {
  changePassword(input: {currentPassword: $current, newPassword: $new}) { signedOutSessions errors { code field message } }
}"""


async def test_change_password_signs_out_the_other_sessions_and_the_old_password_stops_working(api):
    someone = await person(api)
    other_device = await sign_in(api, someone.login)
    new_password = "a much longer passphrase 2026"
    payload = (await api.data(CHANGE_PASSWORD, {"current": PASSWORD, "new": new_password}, token=someone.token))
    assert payload["changePassword"] == {"signedOutSessions": 1, "errors": []}
    assert (await api.data(ME, token=someone.token))["me"]["id"] == someone.account_id
    assert await refused(api, token=other_device.token) == "TOKEN_REVOKED"
    old = (await api.data(LOGIN, {"input": {"login": someone.login, "password": PASSWORD}}))["login"]
    assert only_error(old)["code"] == "INVALID_CREDENTIALS"
    assert (await sign_in(api, someone.login, new_password)).account_id == someone.account_id


async def test_change_password_refuses_a_wrong_current_a_weak_or_the_same_password(api):
    someone = await person(api)
    cases = [({"current": "wrong password here", "new": "another good passphrase"}, "INVALID_CREDENTIALS", "currentPassword"),
             ({"current": PASSWORD, "new": "short"}, "WEAK_PASSWORD", "newPassword"),
             ({"current": PASSWORD, "new": PASSWORD}, "SAME_PASSWORD", "newPassword")]
    for variables, code, field in cases:
        payload = (await api.data(CHANGE_PASSWORD, variables, token=someone.token))["changePassword"]
        assert (only_error(payload)["code"], only_error(payload)["field"]) == (code, field)
    assert (await sign_in(api, someone.login)).account_id == someone.account_id
    anonymous = (await api.data(CHANGE_PASSWORD, {"current": PASSWORD, "new": "x" * 20}))["changePassword"]
    assert only_error(anonymous)["code"] == "UNAUTHENTICATED"


# === 5. role approval ==========================================================================


async def test_a_pending_operator_can_do_nothing_an_operator_does(api, services):
    org = await organisation(api, apply_for=["APP_OPERATOR", "MERCHANT"])
    me = (await api.data(ME, token=org.token))["me"]
    assert {(r["role"], r["status"]) for r in me["roles"]} == {
        ("ORGANISATION", "ACTIVE"), ("APP_OPERATOR", "PENDING"), ("MERCHANT", "PENDING")}

    key = (await api.data(CREATE_KEY, {"name": "x"}, token=org.token))["createApiKey"]
    assert key["secret"] is None and key["apiKey"] is None
    assert only_error(key)["code"] == "FORBIDDEN"
    invitation = (await api.data(INVITE, {"ext": "u-1"}, token=org.token))["createEntrustmentInvitation"]
    assert invitation["invitation"] is None and only_error(invitation)["code"] == "FORBIDDEN"
    assert await top_level_code(api, ENTRUSTED_USER, {"ext": "u-1"}, token=org.token) == "FORBIDDEN"
    assert await top_level_code(api, MY_KEYS, token=org.token) == "FORBIDDEN"
    assert await sql_value(services, "SELECT count(*) FROM api_keys") == 0
    assert await sql_value(services, "SELECT count(*) FROM entrustment_invitations") == 0
    # a pending operator is not offered to people
    operators = await api.data("{ appOperators { edges { node { id } } } }")
    assert operators["appOperators"]["edges"] == []


async def test_only_the_regulator_decides_applications(api, services):
    org = await organisation(api, apply_for=["APP_OPERATOR"])
    application = await role_id(api, org, "APP_OPERATOR")
    reg = await regulator(api)
    operator = await approved(api, "APP_OPERATOR", "另一家运营机构", reg=reg)
    someone = await person(api)

    for actor in (someone, org, operator):
        payload = (await api.data(DECIDE, {"input": {"applicationId": application, "approve": True}},
                                  token=actor.token))["decideRoleApplication"]
        assert payload["application"] is None and only_error(payload)["code"] == "FORBIDDEN"
    anonymous = (await api.data(DECIDE, {"input": {"applicationId": application, "approve": True}}))
    assert only_error(anonymous["decideRoleApplication"])["code"] == "UNAUTHENTICATED"
    assert await sql_value(services, "SELECT status FROM account_roles WHERE id = :id", id=application) == "pending"

    decided = (await api.data(DECIDE, {"input": {"applicationId": application, "approve": True}},
                              token=reg.token))["decideRoleApplication"]
    assert decided["errors"] == []
    assert decided["application"] == {"id": application, "status": "ACTIVE", "role": "APP_OPERATOR"}
    again = await sign_in(api, org.login)
    assert {"role": "APP_OPERATOR", "status": "ACTIVE"} in again.roles
    assert (await api.data(CREATE_KEY, {"name": "app"}, token=again.token))["createApiKey"]["errors"] == []
    operators = await api.data("{ appOperators { edges { node { id displayName } } } }")
    assert {e["node"]["id"] for e in operators["appOperators"]["edges"]} == {org.account_id, operator.account_id}


async def test_rejection_needs_a_reason_and_a_decision_is_final(api, services):
    org = await organisation(api, apply_for=["MERCHANT"])
    application = await role_id(api, org, "MERCHANT")
    reg = await regulator(api)

    for reason in (None, "   "):
        payload = (await api.data(DECIDE, {"input": {"applicationId": application, "approve": False,
                                                     "reason": reason}}, token=reg.token))["decideRoleApplication"]
        error = only_error(payload)
        assert (error["code"], error["field"]) == ("REASON_REQUIRED", "reason")
        assert payload["application"] is None
    assert await sql_value(services, "SELECT status FROM account_roles WHERE id = :id", id=application) == "pending"

    rejected = (await api.data(DECIDE, {"input": {"applicationId": application, "approve": False,
                                                  "reason": "营业执照已过期"}}, token=reg.token))["decideRoleApplication"]
    assert rejected["errors"] == [] and rejected["application"]["status"] == "REJECTED"

    twice = (await api.data(DECIDE, {"input": {"applicationId": application, "approve": True}},
                            token=reg.token))["decideRoleApplication"]
    assert only_error(twice)["code"] == "NOT_PENDING"
    assert await sql_value(services, "SELECT status FROM account_roles WHERE id = :id", id=application) == "rejected"
    me = (await api.data(ME, token=(await sign_in(api, org.login)).token))["me"]
    assert {"id": application, "role": "MERCHANT", "status": "REJECTED"} in me["roles"]

    # approving twice is refused too
    other = await organisation(api, "其他商户", apply_for=["MERCHANT"])
    other_application = await role_id(api, other, "MERCHANT")
    for expected in ([], ["NOT_PENDING"]):
        payload = (await api.data(DECIDE, {"input": {"applicationId": other_application, "approve": True}},
                                  token=reg.token))["decideRoleApplication"]
        assert [e["code"] for e in payload["errors"]] == expected


async def test_deciding_an_unknown_application_is_not_found(api):
    reg = await regulator(api)
    for application_id in ("00000000-0000-0000-0000-000000000000", "not-an-id"):
        payload = (await api.data(DECIDE, {"input": {"applicationId": application_id, "approve": True}},
                                  token=reg.token))["decideRoleApplication"]
        assert only_error(payload)["code"] == "NOT_FOUND"


async def test_role_applications_are_for_the_regulator_and_filter_by_status(api):
    reg = await regulator(api)
    pending = await organisation(api, "待审运营机构", apply_for=["APP_OPERATOR"])
    operator = await approved(api, "APP_OPERATOR", reg=reg)
    merchant = await organisation(api, "待审商户", apply_for=["MERCHANT"])
    someone = await person(api)

    everything = (await api.data(ROLE_APPLICATIONS, token=reg.token))["roleApplications"]["edges"]
    assert {(e["node"]["accountId"], e["node"]["role"], e["node"]["status"]) for e in everything} == {
        (pending.account_id, "APP_OPERATOR", "PENDING"),
        (operator.account_id, "APP_OPERATOR", "ACTIVE"),
        (merchant.account_id, "MERCHANT", "PENDING"),
    }
    names = {e["node"]["accountId"]: e["node"]["accountName"] for e in everything}
    assert names[pending.account_id] == "待审运营机构"

    waiting = (await api.data(ROLE_APPLICATIONS, {"status": "PENDING"}, token=reg.token))["roleApplications"]["edges"]
    assert {e["node"]["accountId"] for e in waiting} == {pending.account_id, merchant.account_id}
    assert all(e["node"]["status"] == "PENDING" for e in waiting)
    active = (await api.data(ROLE_APPLICATIONS, {"status": "ACTIVE"}, token=reg.token))["roleApplications"]["edges"]
    assert [e["node"]["accountId"] for e in active] == [operator.account_id]
    assert active[0]["node"]["decidedAt"] is not None
    merchants = (await api.data(ROLE_APPLICATIONS, {"role": "MERCHANT"}, token=reg.token))["roleApplications"]["edges"]
    assert [e["node"]["accountId"] for e in merchants] == [merchant.account_id]

    for actor in (someone, pending, operator):
        body = await api.gql(ROLE_APPLICATIONS, token=actor.token)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        assert body["data"] is None
    assert await top_level_code(api, ROLE_APPLICATIONS) == "UNAUTHENTICATED"


async def test_revoking_an_operator_ends_its_sessions_and_keys(api, services):
    reg = await regulator(api)
    operator = await approved(api, "APP_OPERATOR", reg=reg)
    secret, _ = await create_key(api, operator)
    assert (await api.data(ME, api_key=secret))["me"]["id"] == operator.account_id  # now cached
    application = await role_id(api, operator, "APP_OPERATOR")

    no_reason = (await api.data(REVOKE_ROLE, {"id": application, "reason": " "}, token=reg.token))["revokeRole"]
    assert only_error(no_reason)["code"] == "REASON_REQUIRED"
    by_operator = (await api.data(REVOKE_ROLE, {"id": application, "reason": "x"},
                                  token=operator.token))["revokeRole"]
    assert only_error(by_operator)["code"] == "FORBIDDEN"
    assert (await api.data(ME, api_key=secret))["me"]["id"] == operator.account_id

    revoked = (await api.data(REVOKE_ROLE, {"id": application, "reason": "违反委托协议"},
                              token=reg.token))["revokeRole"]
    assert revoked["errors"] == []
    assert revoked["application"] == {"id": application, "role": "APP_OPERATOR", "status": "REVOKED",
                                      "decisionReason": "违反委托协议"}
    assert await refused(api, token=operator.token) == "TOKEN_REVOKED"
    assert await refused(api, api_key=secret) == "INVALID_API_KEY"
    assert await refused(api, token=secret) == "INVALID_API_KEY"
    stale = (await api.data(REFRESH, {"token": operator.refresh_token}))["refreshSession"]
    assert only_error(stale)["code"] == "REFRESH_TOKEN_REVOKED"

    again = await sign_in(api, operator.login)
    assert {"role": "APP_OPERATOR", "status": "REVOKED"} in again.roles
    assert only_error((await api.data(CREATE_KEY, {"name": "y"}, token=again.token))["createApiKey"])["code"] == "FORBIDDEN"
    twice = (await api.data(REVOKE_ROLE, {"id": application, "reason": "again"}, token=reg.token))["revokeRole"]
    assert only_error(twice)["code"] == "NOT_ACTIVE"
    assert (await api.data("{ appOperators { edges { node { id } } } }"))["appOperators"]["edges"] == []


# === 6. API keys ===============================================================================


async def test_api_key_is_shown_once_and_stored_only_as_a_hash(api, services, clock):
    operator = await approved(api, "APP_OPERATOR")
    secret, key = await create_key(api, operator, "  行为上报系统  ")
    assert secret.startswith("tph_")
    assert key["name"] == "行为上报系统" and key["revokedAt"] is None and key["lastUsedAt"] is None
    assert secret.split("_", 2)[1] == key["prefix"]
    assert at(key["createdAt"]) == START

    listing = await api.post({"query": MY_KEYS}, token=operator.token)
    assert secret not in listing.text and secret.split("_", 2)[2] not in listing.text
    assert listing.json()["data"]["myApiKeys"] == [key]
    fields = await api.data('{ __type(name: "ApiKey") { fields { name } } }')
    assert {f["name"] for f in fields["__type"]["fields"]} == {"id", "name", "prefix", "scopes", "createdAt",
                                                                "revokedAt", "lastUsedAt"}

    row = (await sql(services, "SELECT secret_hash, row_to_json(k)::text FROM api_keys k"))[0]
    assert re.fullmatch(r"[0-9a-f]{64}", row[0])
    assert row[0] != hashlib.sha256(secret.encode()).hexdigest()
    assert await tables_mentioning(services, secret.split("_", 2)[2]) == []


async def test_api_key_authenticates_by_header_or_bearer_and_records_use(api, clock):
    operator = await approved(api, "APP_OPERATOR")
    secret, key = await create_key(api, operator)
    clock.advance(minutes=3)

    me = (await api.data(ME, api_key=secret))["me"]
    assert me["id"] == operator.account_id and me["kind"] == "ORGANISATION"
    assert (await api.data(ME, headers={"Authorization": f"Bearer {secret}"}))["me"]["id"] == operator.account_id
    listed = (await api.data(MY_KEYS, token=(await sign_in(api, operator.login)).token))["myApiKeys"]
    assert at(listed[0]["lastUsedAt"]) == START + timedelta(minutes=3)
    # a key works after the access tokens of its creator have expired
    clock.advance(hours=2)
    assert (await api.data(MY_KEYS, api_key=secret))["myApiKeys"][0]["id"] == key["id"]


async def test_every_issued_key_works_whatever_characters_its_secret_has(api):
    # the random part is urlsafe base64: about half of all keys contain "_" or "-" in it
    operator = await approved(api, "APP_OPERATOR")
    secrets_seen = []
    for n in range(20):
        secret, _ = await create_key(api, operator, f"key {n}")
        secrets_seen.append(secret)
        if "_" in secret.split("_", 2)[2] and len(secrets_seen) >= 3:
            break
    assert any("_" in s.split("_", 2)[2] for s in secrets_seen)
    for secret in secrets_seen:
        assert (await api.data("{ me { id } }", api_key=secret))["me"]["id"] == operator.account_id, secret


async def test_malformed_and_tampered_keys_are_refused(api):
    operator = await approved(api, "APP_OPERATOR")
    secret, _ = await create_key(api, operator)
    _, prefix, body = secret.split("_", 2)
    tampered = f"tph_{prefix}_{body[:-2]}{'AA' if body[-2:] != 'AA' else 'BB'}"
    for attempt in (tampered, "tph_000000000000_" + body, "tph_short_x", "tph_"):
        assert await refused(api, api_key=attempt) == "INVALID_API_KEY", attempt
    assert (await api.data(ME, api_key=secret))["me"]["id"] == operator.account_id


async def test_revoked_api_key_stops_at_once(api, services):
    operator = await approved(api, "APP_OPERATOR")
    secret, key = await create_key(api, operator)
    spare, spare_key = await create_key(api, operator, "spare")
    assert (await api.data(ME, api_key=secret))["me"]["id"] == operator.account_id  # cached now

    revoked = (await api.data(REVOKE_KEY, {"id": key["id"]}, token=operator.token))["revokeApiKey"]
    assert revoked["errors"] == [] and revoked["apiKey"]["revokedAt"] is not None
    assert await refused(api, api_key=secret) == "INVALID_API_KEY"
    assert await refused(api, headers={"Authorization": f"Bearer {secret}"}) == "INVALID_API_KEY"
    assert (await api.data(ME, api_key=spare))["me"]["id"] == operator.account_id
    listed = {k["id"]: k for k in (await api.data(MY_KEYS, token=operator.token))["myApiKeys"]}
    assert listed[key["id"]]["revokedAt"] is not None and listed[spare_key["id"]]["revokedAt"] is None


async def test_an_api_key_cannot_manage_keys(api, services):
    operator = await approved(api, "APP_OPERATOR")
    secret, key = await create_key(api, operator)
    created = (await api.data(CREATE_KEY, {"name": "more"}, api_key=secret))["createApiKey"]
    assert created["secret"] is None and only_error(created)["code"] == "FORBIDDEN"
    revoked = (await api.data(REVOKE_KEY, {"id": key["id"]}, api_key=secret))["revokeApiKey"]
    assert revoked["apiKey"] is None and only_error(revoked)["code"] == "FORBIDDEN"
    assert await sql_value(services, "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL") == 1
    assert (await api.data(ME, api_key=secret))["me"]["id"] == operator.account_id


async def test_keys_belong_to_their_organisation(api):
    reg = await regulator(api)
    operator = await approved(api, "APP_OPERATOR", reg=reg)
    merchant = await approved(api, "MERCHANT", "绿色商户", reg=reg)
    secret, key = await create_key(api, operator)
    _, merchant_key = await create_key(api, merchant)

    stolen = (await api.data(REVOKE_KEY, {"id": key["id"]}, token=merchant.token))["revokeApiKey"]
    assert stolen["apiKey"] is None and only_error(stolen)["code"] == "NOT_FOUND"
    assert (await api.data(ME, api_key=secret))["me"]["id"] == operator.account_id
    for bad_id in ("00000000-0000-0000-0000-000000000000", "nonsense"):
        payload = (await api.data(REVOKE_KEY, {"id": bad_id}, token=operator.token))["revokeApiKey"]
        assert only_error(payload)["code"] == "NOT_FOUND"
    assert [k["id"] for k in (await api.data(MY_KEYS, token=merchant.token))["myApiKeys"]] == [merchant_key["id"]]
    assert [k["id"] for k in (await api.data(MY_KEYS, token=operator.token))["myApiKeys"]] == [key["id"]]


async def test_who_may_create_keys(api):
    someone = await person(api)
    plain_org = await organisation(api)
    payload = (await api.data(CREATE_KEY, {"name": "x"}, token=someone.token))["createApiKey"]
    assert only_error(payload)["code"] == "FORBIDDEN"
    payload = (await api.data(CREATE_KEY, {"name": "x"}, token=plain_org.token))["createApiKey"]
    assert only_error(payload)["code"] == "FORBIDDEN"
    assert only_error((await api.data(CREATE_KEY, {"name": "x"}))["createApiKey"])["code"] == "UNAUTHENTICATED"
    operator = await approved(api, "APP_OPERATOR")
    unnamed = (await api.data(CREATE_KEY, {"name": "   "}, token=operator.token))["createApiKey"]
    error = only_error(unnamed)
    assert (error["code"], error["field"]) == ("INVALID", "name") and unnamed["secret"] is None


# === 7. entrustment ============================================================================


async def test_entrustment_from_invitation_to_operator_view(api, clock):
    operator = await approved(api, "APP_OPERATOR")
    secret, _ = await create_key(api, operator)
    invitation = await invite(api, "u-381", api_key=secret)
    assert invitation["externalUserId"] == "u-381"
    assert re.fullmatch(r"[A-Z2-9]{12}", invitation["code"])
    assert at(invitation["expiresAt"]) == START + timedelta(minutes=15)

    someone = await person(api)
    payload = await accept(api, someone, invitation["code"])
    assert payload["errors"] == []
    entrustment = payload["entrustment"]
    assert entrustment["status"] == "ACTIVE" and entrustment["externalUserId"] == "u-381"
    assert entrustment["agreementVersion"] == AGREEMENT
    assert entrustment["operator"] == {"id": operator.account_id, "displayName": "低碳星球运营有限公司"}

    seen = (await api.data(ENTRUSTED_USER, {"ext": "u-381"}, api_key=secret))["entrustedUser"]
    assert seen["id"] == entrustment["id"] and seen["status"] == "ACTIVE" and seen["revokedAt"] is None
    assert (await api.data(ENTRUSTED_USER, {"ext": "u-382"}, api_key=secret))["entrustedUser"] is None
    listed = (await api.data(OPERATOR_ENTRUSTMENTS, api_key=secret))["operatorEntrustments"]["edges"]
    assert [e["node"] for e in listed] == [{"id": entrustment["id"], "externalUserId": "u-381",
                                            "status": "ACTIVE", "revokedAt": None}]
    mine = (await api.data(MY_ENTRUSTMENTS, token=someone.token))["myEntrustments"]["edges"]
    assert [e["node"]["id"] for e in mine] == [entrustment["id"]]


async def test_operator_entrustment_type_carries_nothing_about_the_person(api):
    body = await api.data("""{ __type(name: "OperatorEntrustment") {
        fields { name type { kind name ofType { kind name ofType { kind name } } } } } }""")
    fields = body["__type"]["fields"]
    assert {f["name"] for f in fields} == {"id", "externalUserId", "status", "createdAt", "revokedAt"}

    def leaf(type_ref):
        while type_ref["ofType"] is not None:
            type_ref = type_ref["ofType"]
        return type_ref

    assert all(leaf(f["type"])["kind"] in {"SCALAR", "ENUM"} for f in fields), fields


async def test_invitation_codes_are_single_use_and_expire(api, clock):
    operator = await approved(api, "APP_OPERATOR")
    secret, _ = await create_key(api, operator)
    first = await invite(api, "u-381", api_key=secret)
    someone = await person(api)
    assert (await accept(api, someone, first["code"].lower()))["errors"] == []  # codes are case-insensitive

    stranger = await person(api, "陌生人")
    for actor in (someone, stranger):
        reused = await accept(api, actor, first["code"])
        assert reused["entrustment"] is None
        assert (only_error(reused)["code"], only_error(reused)["field"]) == ("INVALID_CODE", "code")
    unknown = await accept(api, stranger, "ABCDEFGHJKLM")
    assert only_error(unknown)["code"] == "INVALID_CODE"

    late = await invite(api, "u-500", api_key=secret)
    clock.advance(minutes=16)
    stranger = await sign_in(api, stranger.login)  # its access token expired meanwhile
    expired = await accept(api, stranger, late["code"])
    assert expired["entrustment"] is None and only_error(expired)["code"] == "CODE_EXPIRED"
    assert (await api.data(ENTRUSTED_USER, {"ext": "u-500"}, api_key=secret))["entrustedUser"] is None


async def test_a_refused_acceptance_leaves_the_code_usable(api, services):
    operator = await approved(api, "APP_OPERATOR")
    invitation = await invite(api, "u-7", token=operator.token)
    someone = await person(api)
    blank = await accept(api, someone, invitation["code"], version="  ")
    assert (only_error(blank)["code"], only_error(blank)["field"]) == ("INVALID", "agreementVersion")
    assert await sql_value(services, "SELECT count(*) FROM entrustments") == 0
    assert (await accept(api, someone, invitation["code"]))["errors"] == []


async def test_one_active_entrustment_per_app_user_and_per_person(api, services):
    operator = await approved(api, "APP_OPERATOR")
    secret, _ = await create_key(api, operator)
    first = await entrusted(api, secret, "u-381")

    other_person = await person(api, "另一个人")
    same_user = await accept(api, other_person, (await invite(api, "u-381", api_key=secret))["code"])
    assert same_user["entrustment"] is None and only_error(same_user)["code"] == "ALREADY_ENTRUSTED"
    same_person = await accept(api, first["person"], (await invite(api, "u-999", api_key=secret))["code"])
    assert only_error(same_person)["code"] == "ALREADY_ENTRUSTED"
    assert await sql_value(services, "SELECT count(*) FROM entrustments") == 1
    seen = (await api.data(ENTRUSTED_USER, {"ext": "u-381"}, api_key=secret))["entrustedUser"]
    assert seen["id"] == first["entrustment"]["id"]


async def test_the_person_revokes_and_the_operator_loses_access(api):
    operator = await approved(api, "APP_OPERATOR")
    secret, _ = await create_key(api, operator)
    first = await entrusted(api, secret, "u-381")
    someone, entrustment = first["person"], first["entrustment"]
    stranger = await person(api, "旁人")

    theirs = (await api.data(REVOKE_ENTRUSTMENT, {"id": entrustment["id"]}, token=stranger.token))["revokeEntrustment"]
    assert theirs["entrustment"] is None and only_error(theirs)["code"] == "NOT_FOUND"
    by_operator = (await api.data(REVOKE_ENTRUSTMENT, {"id": entrustment["id"]}, api_key=secret))["revokeEntrustment"]
    assert only_error(by_operator)["code"] == "FORBIDDEN"
    assert (await api.data(ENTRUSTED_USER, {"ext": "u-381"}, api_key=secret))["entrustedUser"] is not None

    revoked = (await api.data(REVOKE_ENTRUSTMENT, {"id": entrustment["id"]}, token=someone.token))["revokeEntrustment"]
    assert revoked["errors"] == []
    assert revoked["entrustment"]["status"] == "REVOKED" and at(revoked["entrustment"]["revokedAt"]) == START
    assert (await api.data(ENTRUSTED_USER, {"ext": "u-381"}, api_key=secret))["entrustedUser"] is None
    mine = (await api.data(MY_ENTRUSTMENTS, token=someone.token))["myEntrustments"]["edges"]
    assert [(e["node"]["id"], e["node"]["status"]) for e in mine] == [(entrustment["id"], "REVOKED")]
    assert (await api.data(MY_ENTRUSTMENTS, {"status": "ACTIVE"}, token=someone.token))["myEntrustments"]["edges"] == []
    theirs_listed = (await api.data(OPERATOR_ENTRUSTMENTS, {"status": "ACTIVE"}, api_key=secret))
    assert theirs_listed["operatorEntrustments"]["edges"] == []
    all_listed = (await api.data(OPERATOR_ENTRUSTMENTS, api_key=secret))["operatorEntrustments"]["edges"]
    assert [e["node"]["status"] for e in all_listed] == ["REVOKED"]

    twice = (await api.data(REVOKE_ENTRUSTMENT, {"id": entrustment["id"]}, token=someone.token))["revokeEntrustment"]
    assert only_error(twice)["code"] == "ALREADY_REVOKED"

    # the person may entrust the app again later
    renewed = await accept(api, someone, (await invite(api, "u-381", api_key=secret))["code"])
    assert renewed["errors"] == [] and renewed["entrustment"]["id"] != entrustment["id"]
    assert (await api.data(ENTRUSTED_USER, {"ext": "u-381"}, api_key=secret))["entrustedUser"]["id"] == \
        renewed["entrustment"]["id"]


async def test_a_revoked_operator_loses_its_entrustments(api, services):
    reg = await regulator(api)
    operator = await approved(api, "APP_OPERATOR", reg=reg)
    secret, _ = await create_key(api, operator)
    existing = await entrusted(api, secret, "u-381")
    pending_code = (await invite(api, "u-382", api_key=secret))["code"]

    application = await role_id(api, operator, "APP_OPERATOR")
    assert (await api.data(REVOKE_ROLE, {"id": application, "reason": "注销备案"},
                           token=reg.token))["revokeRole"]["errors"] == []

    late = await person(api, "晚到的人")
    refused_payload = await accept(api, late, pending_code)
    assert refused_payload["entrustment"] is None
    assert only_error(refused_payload)["code"] == "OPERATOR_NOT_ACTIVE"
    # the operator cannot look its users up by any credential it still has...
    assert await refused(api, ENTRUSTED_USER, {"ext": "u-381"}, api_key=secret) == "INVALID_API_KEY"
    again = await sign_in(api, operator.login)
    assert await top_level_code(api, ENTRUSTED_USER, {"ext": "u-381"}, token=again.token) == "FORBIDDEN"
    # ...and the one gate every operator action goes through says no as well
    async with services.session_factory() as session:
        assert await service.entrusted_individual(session=session, operator_id=uuid.UUID(operator.account_id),
                                                  external_user_id="u-381") is None
    # the person still sees the entrustment they signed
    mine = (await api.data(MY_ENTRUSTMENTS, token=existing["person"].token))["myEntrustments"]["edges"]
    assert [e["node"]["id"] for e in mine] == [existing["entrustment"]["id"]]


async def test_entrustment_roles_and_inputs(api):
    operator = await approved(api, "APP_OPERATOR")
    someone = await person(api)
    by_person = (await api.data(INVITE, {"ext": "u-1"}, token=someone.token))["createEntrustmentInvitation"]
    assert only_error(by_person)["code"] == "FORBIDDEN"
    assert only_error((await api.data(INVITE, {"ext": "u-1"}))["createEntrustmentInvitation"])["code"] == \
        "UNAUTHENTICATED"
    for bad in ("   ", "u" * 129):
        payload = (await api.data(INVITE, {"ext": bad}, token=operator.token))["createEntrustmentInvitation"]
        assert (only_error(payload)["code"], only_error(payload)["field"]) == ("INVALID", "externalUserId")
    code = (await invite(api, "u-1", token=operator.token))["code"]
    by_operator = (await api.data(ACCEPT, {"code": code, "version": AGREEMENT}, token=operator.token))
    assert only_error(by_operator["acceptEntrustment"])["code"] == "FORBIDDEN"
    anonymous = (await api.data(ACCEPT, {"code": code, "version": AGREEMENT}))["acceptEntrustment"]
    assert only_error(anonymous)["code"] == "UNAUTHENTICATED"
    assert await top_level_code(api, MY_ENTRUSTMENTS, token=operator.token) == "FORBIDDEN"
    assert await top_level_code(api, OPERATOR_ENTRUSTMENTS, token=someone.token) == "FORBIDDEN"
    # the code is still good after all those refusals
    assert (await accept(api, someone, code))["errors"] == []


# === 8. isolation ==============================================================================


async def test_people_see_only_their_own_account(api):
    someone = await person(api, phone="13500000001")
    neighbour = await person(api, "邻居", phone="13500000002")
    assert (await api.data(ACCOUNT, {"id": neighbour.account_id}, token=someone.token))["account"] is None
    for junk in ("00000000-0000-0000-0000-000000000000", "junk"):
        assert (await api.data(ACCOUNT, {"id": junk}, token=someone.token))["account"] is None
    own = (await api.data(ACCOUNT, {"id": someone.account_id}, token=someone.token))["account"]
    assert own["email"] == someone.login and own["phone"] == "+8613500000001"


async def test_the_regulator_sees_any_account_with_contact_data(api):
    number = national_id("44030419900307231")
    someone = await person(api, phone="13500000003", nationalId=number)
    reg = await regulator(api)
    seen = (await api.data(ACCOUNT, {"id": someone.account_id}, token=reg.token))["account"]
    assert seen["email"] == someone.login and seen["phone"] == "+8613500000003"
    assert seen["hasNationalId"] is True and seen["kind"] == "PERSON"


async def test_an_operator_never_sees_a_persons_contact_data(api):
    operator = await approved(api, "APP_OPERATOR")
    secret, _ = await create_key(api, operator)
    linked = await entrusted(api, secret, "u-381")
    someone = linked["person"]

    for credentials in ({"token": operator.token}, {"api_key": secret}):
        assert (await api.data(ACCOUNT, {"id": someone.account_id}, **credentials))["account"] is None
        # an account created while the operator's credential is on the request: the payload's
        # account is the new person's, not the caller's, so its contact data stays hidden
        body = await api.data("""mutation S($input: SignUpInput!) { signUp(input: $input) {
                account { id email phone hasNationalId } errors { code } } }""",
                              {"input": {"kind": "PERSON", "displayName": "代注册", "password": PASSWORD,
                                         "email": unique_email("via-op")}}, **credentials)
        assert body["signUp"]["errors"] == []
        assert {k: body["signUp"]["account"][k] for k in ("email", "phone", "hasNationalId")} == {
            "email": None, "phone": None, "hasNationalId": None}
    # what the operator sees of its users has no account in it at all
    response = await api.post({"query": OPERATOR_ENTRUSTMENTS}, api_key=secret)
    assert someone.login not in response.text and someone.account_id not in response.text


async def test_every_path_to_an_account_is_known(api):
    """Contact data is masked by the Account type itself; these are the fields that reach it,
    each covered above. A new path needs its own isolation test before joining this list."""
    body = await api.data("""{ __schema { types { name fields { name
        type { name ofType { name ofType { name ofType { name } } } } } } } }""")

    def leaf(type_ref):
        while type_ref.get("ofType"):
            type_ref = type_ref["ofType"]
        return type_ref["name"]

    paths = {(t["name"], f["name"]) for t in body["__schema"]["types"] if not t["name"].startswith("__")
             for f in t["fields"] or [] if leaf(f["type"]) == "Account"}
    assert paths == {("Query", "me"), ("Query", "account"), ("SignUpPayload", "account"), ("Session", "account")}


async def test_anonymous_callers(api):
    body = await api.gql(ME)
    assert body["data"] == {"me": None} or body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await top_level_code(api, ACCOUNT, {"id": "00000000-0000-0000-0000-000000000000"}) == "UNAUTHENTICATED"
    assert await top_level_code(api, MY_KEYS) == "UNAUTHENTICATED"
    assert only_error((await api.data(LOGOUT, {"everywhere": True}))["logout"])["code"] == "UNAUTHENTICATED"
    assert only_error((await api.data(APPLY, {"role": "MERCHANT"}))["applyForRole"])["code"] == "UNAUTHENTICATED"
    assert only_error((await api.data(REVOKE_ENTRUSTMENT, {"id": "00000000-0000-0000-0000-000000000000"}))[
        "revokeEntrustment"])["code"] == "UNAUTHENTICATED"


async def test_apply_for_role_after_sign_up(api):
    org = await organisation(api)
    applied = (await api.data(APPLY, {"role": "APP_OPERATOR"}, token=org.token))["applyForRole"]
    assert applied["errors"] == [] and applied["application"]["status"] == "PENDING"
    twice = (await api.data(APPLY, {"role": "APP_OPERATOR"}, token=org.token))["applyForRole"]
    assert only_error(twice)["code"] == "ALREADY_APPLIED"
    someone = await person(api)
    assert only_error((await api.data(APPLY, {"role": "MERCHANT"}, token=someone.token))["applyForRole"])["code"] == \
        "FORBIDDEN"
    not_applicable = (await api.data(APPLY, {"role": "REGULATOR"}, token=org.token))["applyForRole"]
    assert only_error(not_applicable)["code"] == "ROLE_NOT_ALLOWED"


# === 9. personal data never in logs ============================================================


async def test_personal_data_never_reaches_the_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    email = unique_email("secret-mail")
    phone_local, phone_stored = "13600001234", "+8613600001234"
    number = national_id("44030419900307231")
    password = "Tr0ub4dor & 3 horses"

    payload = await sign_up(api, email=email, phone=phone_local, nationalId=number, password=password)
    assert payload["errors"] == []
    duplicate = await sign_up(api, email=email.upper(), phone="+86" + phone_local, nationalId=number,
                              password=password)
    assert only_error(duplicate)["code"] in {"EMAIL_TAKEN", "PHONE_TAKEN", "NATIONAL_ID_TAKEN"}
    duplicate_id = await sign_up(api, email=unique_email(), nationalId=number, password=password)
    assert duplicate_id["errors"] == []  # not linked again, and not told so
    by_email = await sign_in(api, email, password)
    by_phone = await sign_in(api, phone_local, password)
    wrong = (await api.data(LOGIN, {"input": {"login": email, "password": password + "!"}}))["login"]
    assert only_error(wrong)["code"] == "INVALID_CREDENTIALS"
    await api.data(REFRESH, {"token": by_phone.refresh_token})
    await api.data(ME, token=by_email.token)

    assert any(r.name == "tanpuhui.http" for r in caplog.records), "the access log should be captured"
    formatter = JsonFormatter()
    secrets = [email, email.split("@")[0], phone_local, phone_stored, number, number[:17], password,
               by_email.refresh_token, by_email.token]
    for record in caplog.records:
        line = formatter.format(record) + " " + record.getMessage()
        for secret in secrets:
            assert secret.lower() not in line.lower(), (secret, record.name, line[:300])
