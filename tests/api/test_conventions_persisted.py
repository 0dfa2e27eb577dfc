"""Persisted operations (server/persisted.py, server/graphql_http.py): a document addressed by
its sha256, through extensions.persistedQuery or documentId; with persisted_queries_only, nothing
else runs. The documents here are the test's own (frontend_contracts/ is not touched)."""

from __future__ import annotations

import dataclasses
import hashlib

import orjson
import pytest

import server.app as app_module
from server.persisted import document_hash
from tests.api._conventions import assert_no_leak, client_for, codes, table_counts
from tests.conftest import PASSWORD, SIGN_UP, unique_email

SERVICE = "query ServiceName { service { name persistedQueriesOnly } }"
SIGN_UP_DOC = SIGN_UP
HASH = hashlib.sha256(SERVICE.encode()).hexdigest()
SIGN_UP_HASH = hashlib.sha256(SIGN_UP_DOC.encode()).hexdigest()


@pytest.fixture
def persisted_app(monkeypatch):
    monkeypatch.setattr(app_module, "load_documents", lambda: {HASH: SERVICE, SIGN_UP_HASH: SIGN_UP_DOC})

    def build(services, persisted_only: bool = False):
        if persisted_only:
            services = dataclasses.replace(
                services, settings=dataclasses.replace(services.settings, persisted_queries_only=True))
        return app_module.create_app(services, dispose_on_shutdown=False)

    return build


def ok(response, persisted_only: bool = False) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    assert body["data"]["service"] == {"name": "Tanpuhui 碳普惠", "persistedQueriesOnly": persisted_only}
    return body


def refused(response, code: str) -> dict:
    assert response.status_code == 400, response.text
    body = response.json()
    assert codes(body) == [code]
    assert body.get("data") is None
    assert_no_leak(response)
    return body


def test_the_hash_is_the_sha256_of_the_text():
    assert document_hash(SERVICE) == HASH


async def test_persisted_operations_run_by_hash(services, persisted_app):
    async with client_for(services, app=persisted_app(services)) as client:
        ok(await client.post("/graphql", json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": HASH}}}))
        ok(await client.post("/graphql", json={"documentId": f"sha256:{HASH}"}))
        ok(await client.post("/graphql", json={"documentId": f"sha256:{HASH.upper()}"}))
        # the text may accompany its hash when it matches
        ok(await client.post("/graphql", json={"query": SERVICE,
                                                "extensions": {"persistedQuery": {"version": 1, "sha256Hash": HASH}}}))
        # GET, as CDNs like it
        ok(await client.get("/graphql", params={"extensions": orjson.dumps(
            {"persistedQuery": {"version": 1, "sha256Hash": HASH}}).decode()}))
        # free-form queries still run when not persisted-only
        ok(await client.post("/graphql", json={"query": "{ service { name persistedQueriesOnly } }"}))


async def test_unknown_or_mismatched_hashes_are_refused(services, persisted_app):
    before = await table_counts(services)
    async with client_for(services, app=persisted_app(services)) as client:
        unknown = hashlib.sha256(b"query Other { service { name } }").hexdigest()
        refused(await client.post("/graphql", json={"extensions": {"persistedQuery": {"version": 1,
                                                                                       "sha256Hash": unknown}}}),
                "PERSISTED_QUERY_NOT_FOUND")
        refused(await client.post("/graphql", json={"documentId": f"sha256:{unknown}"}), "PERSISTED_QUERY_NOT_FOUND")
        refused(await client.post("/graphql", json={"documentId": "sha256:not-hex"}), "PERSISTED_QUERY_NOT_FOUND")
        # a text that is not the hash's document is never run in its place
        mutation = ('mutation { signUp(input: {kind: PERSON, displayName: "x", email: "x@example.org", '
                    'password: "correct horse battery"}) { account { id } } }')
        refused(await client.post("/graphql", json={"query": mutation, "documentId": f"sha256:{HASH}"}),
                "PERSISTED_QUERY_MISMATCH")
    assert await table_counts(services) == before


async def test_persisted_only_refuses_free_form_queries(services, persisted_app):
    before = await table_counts(services)
    async with client_for(services, app=persisted_app(services, persisted_only=True)) as client:
        body = refused(await client.post("/graphql", json={"query": "{ service { name } }"}),
                       "PERSISTED_QUERY_REQUIRED")
        assert body["extensions"]["requestId"]
        mutation = SIGN_UP.replace("mutation SignUp", "mutation Other")
        refused(await client.post("/graphql", json={"query": mutation, "variables": {"input": {
            "kind": "PERSON", "displayName": "x", "email": unique_email(), "password": PASSWORD}}}),
                "PERSISTED_QUERY_REQUIRED")
        refused(await client.get("/graphql", params={"query": "{ service { name } }"}), "PERSISTED_QUERY_REQUIRED")
        assert await table_counts(services) == before

        # the persisted documents still run, queries and mutations alike
        ok(await client.post("/graphql", json={"extensions": {"persistedQuery": {"version": 1, "sha256Hash": HASH}}}),
           persisted_only=True)
        ok(await client.post("/graphql", json={"documentId": f"sha256:{HASH}"}), persisted_only=True)
        response = await client.post("/graphql", json={
            "documentId": f"sha256:{SIGN_UP_HASH}",
            "variables": {"input": {"kind": "PERSON", "displayName": "持久", "email": unique_email(),
                                    "password": PASSWORD}}})
        assert response.status_code == 200, response.text
        assert response.json()["data"]["signUp"]["errors"] == []
    assert (await table_counts(services))["accounts"] == before["accounts"] + 1
