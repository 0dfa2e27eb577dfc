"""TANPUHUI_ENV=production fails closed: it refuses to start without the keys several instances
must share and the public address; GraphiQL, introspection and field suggestions are off and only
persisted operations run, unless a setting enables them explicitly."""

from __future__ import annotations

import base64
import dataclasses

import orjson
import pytest

from server import cli
from server.persisted import document_hash, load_documents
from server.settings import REQUIRED_IN_PRODUCTION, SettingsError, load_settings
from tests.api._conventions import assert_no_leak, client_for, codes, table_counts
from tests.conftest import SIGN_UP

SIGNING_KEY = base64.b64encode(b"c" * 32).decode()
PRODUCTION = {"TANPUHUI_ENV": "production", "TANPUHUI_SECRET_KEY": "s" * 48, "TANPUHUI_PERSONAL_DATA_KEY": "p" * 48,
              "TANPUHUI_CERTIFICATE_SIGNING_KEY": SIGNING_KEY, "TANPUHUI_PUBLIC_BASE_URL": "https://tanpuhui.example.org"}
SERVICE_INFO = next(text for text in load_documents().values() if text.startswith("query ServiceInfo"))


# --- the start -------------------------------------------------------------------------------------


def test_production_names_every_missing_key_at_once(env, tmp_path):
    env({"TANPUHUI_ENV": "production"})
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith("TANPUHUI_ENV=production needs TANPUHUI_SECRET_KEY, TANPUHUI_PERSONAL_DATA_KEY, "
                              "TANPUHUI_CERTIFICATE_SIGNING_KEY, TANPUHUI_PUBLIC_BASE_URL set")
    assert not (tmp_path / "data").exists(), "no key may be generated on a refused start"


@pytest.mark.parametrize("missing", REQUIRED_IN_PRODUCTION)
def test_production_refuses_each_missing_key(env, missing):
    env({name: value for name, value in PRODUCTION.items() if name != missing})
    with pytest.raises(SettingsError) as raised:
        load_settings()
    named = [name for name in REQUIRED_IN_PRODUCTION if name in str(raised.value)]
    assert named == [missing], str(raised.value)


def test_production_with_every_key_starts(env, tmp_path):
    env(PRODUCTION)
    settings = load_settings()
    assert settings.production and settings.secret_key == "s" * 48 and settings.personal_data_key == "p" * 48
    assert settings.certificate_signing_key == SIGNING_KEY
    assert settings.public_base_url == "https://tanpuhui.example.org"
    assert not (tmp_path / "data").exists(), "production generates no key files"


def test_an_empty_key_counts_as_missing(env):
    env({**PRODUCTION, "TANPUHUI_SECRET_KEY": ""})
    with pytest.raises(SettingsError, match="needs TANPUHUI_SECRET_KEY set"):
        load_settings()


def test_production_refuses_a_wildcard_cors_origin(env):
    env({**PRODUCTION, "TANPUHUI_CORS_ORIGINS": "https://app.example.org,*"})
    with pytest.raises(SettingsError, match=r"^TANPUHUI_CORS_ORIGINS: '\*' is not accepted in production"):
        load_settings()
    env({"TANPUHUI_ENV": "development"})
    assert load_settings().cors_origins == ("https://app.example.org", "*")


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["worker"]])
def test_the_command_refuses_production_without_keys_and_says_which(env, capsys, tmp_path, command):
    env({"TANPUHUI_ENV": "production", "TANPUHUI_SECRET_KEY": "s" * 48})
    assert cli.main(command) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: TANPUHUI_ENV=production needs TANPUHUI_PERSONAL_DATA_KEY, "
                                   "TANPUHUI_CERTIFICATE_SIGNING_KEY, TANPUHUI_PUBLIC_BASE_URL set")
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "data").exists()


# --- the defaults --------------------------------------------------------------------------------


def switches(settings) -> tuple:
    return (settings.graphiql, settings.introspection, settings.field_suggestions, settings.persisted_queries_only,
            settings.cors_origins)


def test_development_defaults(env):
    assert switches(load_settings()) == (True, True, True, False, ())


def test_production_defaults_are_closed(env):
    env(PRODUCTION)
    assert switches(load_settings()) == (False, False, False, True, ())


def test_an_explicit_value_wins_in_either_environment(env):
    env({**PRODUCTION, "TANPUHUI_GRAPHIQL": "true", "TANPUHUI_INTROSPECTION": "yes", "TANPUHUI_FIELD_SUGGESTIONS": "1",
         "TANPUHUI_PERSISTED_QUERIES_ONLY": "false", "TANPUHUI_CORS_ORIGINS": "https://app.example.org"})
    assert switches(load_settings()) == (True, True, True, False, ("https://app.example.org",))
    env({"TANPUHUI_ENV": "development", "TANPUHUI_GRAPHIQL": "off", "TANPUHUI_INTROSPECTION": "no",
         "TANPUHUI_FIELD_SUGGESTIONS": "0", "TANPUHUI_PERSISTED_QUERIES_ONLY": "on"})
    assert switches(load_settings()) == (False, False, False, True, ("https://app.example.org",))


# --- the API in production -----------------------------------------------------------------------


@pytest.fixture
async def production_client(services, env, tmp_path):
    """Clients of the real app on the test's database, with production settings (plus `explicit`)."""
    clients = []

    def build(**explicit):
        env(PRODUCTION)
        settings = load_settings(data_dir=tmp_path / "prod", database_url=services.settings.database_url,
                                 redis_url=services.settings.redis_url, **explicit)
        assert settings.production
        client = client_for(dataclasses.replace(services, settings=settings))
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


async def post(client, body: dict, **headers):
    return await client.post("/graphql", content=orjson.dumps(body),
                             headers={"Content-Type": "application/json", **headers})


def refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert code in codes(body) and body.get("data") is None, body
    assert_no_leak(response)
    return body


async def test_production_serves_no_graphiql(production_client):
    client = production_client()
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.headers["content-type"].startswith("application/json")
    assert "graphiql" not in response.text.lower()
    refused(response, 400, "PERSISTED_QUERY_REQUIRED")


async def test_production_runs_only_persisted_operations(production_client, services):
    client = production_client()
    before = await table_counts(services)
    refused(await post(client, {"query": "{ service { name } }"}), 400, "PERSISTED_QUERY_REQUIRED")
    refused(await post(client, {"query": SIGN_UP, "variables": {"input": {}}}), 400, "PERSISTED_QUERY_REQUIRED")
    ok = await post(client, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": document_hash(SERVICE_INFO)}}})
    assert ok.status_code == 200 and ok.json()["data"]["service"]["persistedQueriesOnly"] is True, ok.text
    assert await table_counts(services) == before


INTROSPECTION = [
    "{ __schema { queryType { name } } }",
    '{ __type(name: "Query") { name fields { name } } }',
    "query Q { ...F } fragment F on Query { __schema { types { name } } }",
    "{ service { name } __schema { types { name } } }",
]


async def test_production_refuses_introspection_with_a_typed_error(production_client):
    client = production_client(persisted_queries_only=False)
    for query in INTROSPECTION:
        body = refused(await post(client, {"query": query}), 400, "INTROSPECTION_DISABLED")
        assert len(body["errors"]) == 1, body
        assert body["errors"][0]["message"] == "Introspection is disabled on this server."
    typename = await post(client, {"query": "{ __typename service { __typename name } }"})
    assert typename.status_code == 200, typename.text
    assert typename.json()["data"]["__typename"] == "Query"
    assert typename.json()["data"]["service"]["__typename"] == "ServiceInfo"


async def test_development_answers_introspection(api):
    response = await api.post({"query": INTROSPECTION[0]})
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_production_validation_errors_suggest_nothing(production_client, api):
    client = production_client(persisted_queries_only=False)
    cases = [
        ({"query": "{ service { nme } }"}, "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'nme'"),
        ({"query": SIGN_UP, "variables": {"input": {"kind": "PERSN", "displayName": "x", "email": "x@example.org",
                                                    "password": "correct horse battery"}}},
         "BAD_USER_INPUT", "PERSN"),
        ({"query": '{ appOperators(frist: 3) { edges { node { id } } } }'}, "GRAPHQL_VALIDATION_FAILED", "frist"),
    ]
    for body, code, named in cases:
        production = refused(await post(client, body), 400, code)
        assert named in production["errors"][0]["message"], production
        assert "Did you mean" not in str(production), production
        # the same request in development gets the hint
        development = refused(await api.post(body), 400, code)
        assert "Did you mean" in str(development), development


async def test_production_features_can_be_enabled_explicitly(production_client):
    client = production_client(graphiql=True, introspection=True, field_suggestions=True,
                               persisted_queries_only=False)
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()
    schema = await post(client, {"query": INTROSPECTION[0]})
    assert schema.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    hinted = await post(client, {"query": "{ service { nme } }"})
    assert "Did you mean" in hinted.text
