"""API keys carry scopes chosen at creation (issue 8): least privilege, like Stripe's restricted
keys. A value-moving call outside a key's scope is refused and changes nothing; a person signed in
with a password is limited by roles only."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from accounts.models import SCOPE_ROLES, ApiKeyScope
from neutrality.cers.models import BlockState
from schema.permissions import Allow, root_fields
from server.graphql_schema import schema
from server.migrate import upgrade
from tests.neutrality.certificate_fixtures import APPLY, application
from tests.conftest import approved, database_url
from tests.neutrality.market_fixtures import CREATE_OFFER, seller_with_tonnes, tonnes

CREATE_KEY = """
mutation CreateKey($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { secret apiKey { id scopes } errors { code field message } }
}"""


async def key(api, actor, *scopes: str) -> tuple[str, dict]:
    payload = (await api.data(CREATE_KEY, {"input": {"name": "machine", "scopes": list(scopes)}},
                              token=actor.token))["createApiKey"]
    assert payload["errors"] == [], payload
    return payload["secret"], payload["apiKey"]


def offer_input(seller) -> dict:
    return {"projectId": str(seller.registry.project_id), "vintage": 2025, "quantity": 5, "pricePerTonneFen": 9_000,
            "minPurchase": 1, "idempotencyKey": uuid.uuid4().hex}


async def test_a_project_owners_routine_key_can_neither_sell_nor_retire(api, services):
    seller = await seller_with_tonnes(api, services, 20)
    secret, created = await key(api, seller.actor, "MANAGE_CER_PROJECTS")
    assert created["scopes"] == ["MANAGE_CER_PROJECTS"]

    sold = (await api.data(CREATE_OFFER, {"input": offer_input(seller)}, api_key=secret))["createCerOffer"]
    assert [(e["code"], e["message"]) for e in sold["errors"]] == [
        ("FORBIDDEN", "This API key lacks the SELL_CERS scope.")]
    retired = (await api.data(APPLY, {"input": application()}, api_key=secret))["applyForNeutrality"]
    assert [e["code"] for e in retired["errors"]] == ["FORBIDDEN"]
    assert await tonnes(services, seller.id) == 20  # nothing moved
    # reads of its own organisation need no scope
    held = await api.data("{ myCerHoldings { state tonnes } }", api_key=secret)
    assert held["myCerHoldings"] == [{"state": "HELD", "tonnes": 20}]

    # a key given the scopes may; the password session was never limited by scopes
    seller_key, _ = await key(api, seller.actor, "SELL_CERS")
    sold = (await api.data(CREATE_OFFER, {"input": offer_input(seller)}, api_key=seller_key))["createCerOffer"]
    assert sold["errors"] == []
    retire_key, _ = await key(api, seller.actor, "RETIRE_CERS")
    retired = (await api.data(APPLY, {"input": application()}, api_key=retire_key))["applyForNeutrality"]
    # held for the platform's review (art. 19); a reviewer's approval retires them
    assert retired["errors"] == [] and retired["retirement"]["status"] == "PENDING_REVIEW"
    assert await tonnes(services, seller.id, BlockState.IN_REVIEW) == 13


async def test_keys_list_their_scopes(api):
    operator = await approved(api, "APP_OPERATOR")
    _, first = await key(api, operator, "REPORT_BEHAVIOUR")
    _, second = await key(api, operator, "INVITE_ENTRUSTMENTS", "REPORT_BEHAVIOUR", "REPORT_BEHAVIOUR")
    listed = {k["id"]: k["scopes"] for k in (await api.data("{ myApiKeys { id scopes } }", token=operator.token))["myApiKeys"]}
    assert listed == {first["id"]: ["REPORT_BEHAVIOUR"], second["id"]: ["INVITE_ENTRUSTMENTS", "REPORT_BEHAVIOUR"]}


async def test_an_operators_reporting_key_cannot_invite(api):
    operator = await approved(api, "APP_OPERATOR")
    secret, _ = await key(api, operator, "REPORT_BEHAVIOUR")
    invited = await api.data('mutation { createEntrustmentInvitation(input: {externalUserId: "u-1"})'
                             ' { invitation { code } errors { code } } }', api_key=secret)
    assert invited["createEntrustmentInvitation"] == {"invitation": None, "errors": [{"code": "FORBIDDEN"}]}


async def test_a_scope_needs_a_role_the_organisation_holds(api):
    merchant = await approved(api, "MERCHANT", "绿色商户")
    for scopes, code in ((["REPORT_BEHAVIOUR"], "SCOPE_NOT_ALLOWED"), (["MANAGE_LISTINGS", "RETIRE_CERS"],
                                                                       "SCOPE_NOT_ALLOWED"), ([], "INVALID")):
        payload = (await api.data(CREATE_KEY, {"input": {"name": "till", "scopes": scopes}},
                                  token=merchant.token))["createApiKey"]
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, "scopes")], scopes
        assert payload["secret"] is None


def test_every_mutation_an_api_key_may_call_names_a_scope():
    for name, field in root_fields(schema, "mutation"):
        [allow] = [e for e in field.extensions if isinstance(e, Allow)]
        if allow.anyone or allow.password_session:
            continue  # no API key gets here
        machine_roles = allow.roles & {role.value for role in SCOPE_ROLES.values()}
        if allow.signed_in and not allow.roles or machine_roles:
            assert allow.scope is not None, name
            assert SCOPE_ROLES[allow.scope].value in allow.roles, name


async def test_existing_keys_keep_routine_scopes_only(embedded):
    """Migration 0009: keys made before scopes keep their roles' routine scopes, never SELL_CERS
    or RETIRE_CERS."""
    name = f"scopes_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=embedded.pg_host, user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        url = database_url(embedded, name)
        await asyncio.to_thread(upgrade, url, "0008_exact_to_the_last_fraction")
        conn = await asyncpg.connect(host=embedded.pg_host, user="postgres", database=name)
        try:
            keys = {}
            for roles in (("app_operator",), ("merchant", "project_owner"), ()):
                account = uuid.uuid4()
                await conn.execute("INSERT INTO accounts (id, kind, display_name, email, password_hash, created_at)"
                                   " VALUES ($1, 'organisation', 'x', $2, 'x', now())", account, f"{account}@example.org")
                for role in roles:
                    await conn.execute("INSERT INTO account_roles (id, account_id, role, status, created_at)"
                                       " VALUES ($1, $2, $3, 'active', now())", uuid.uuid4(), account, role)
                keys[roles] = uuid.uuid4()
                await conn.execute("INSERT INTO api_keys (id, account_id, name, prefix, secret_hash, created_by,"
                                   " created_at) VALUES ($1, $2, 'k', $3, 'h', $2, now())", keys[roles], account,
                                   uuid.uuid4().hex[:12])
            await asyncio.to_thread(upgrade, url)
            scopes = {roles: sorted(await conn.fetchval("SELECT scopes FROM api_keys WHERE id = $1", key_id))
                      for roles, key_id in keys.items()}
        finally:
            await conn.close()
        assert scopes == {("app_operator",): ["invite_entrustments", "report_behaviour"],
                          ("merchant", "project_owner"): ["fulfil_redemptions", "manage_cer_projects", "manage_listings"],
                          (): []}
        assert {s.value for s in ApiKeyScope} >= {s for found in scopes.values() for s in found}
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
