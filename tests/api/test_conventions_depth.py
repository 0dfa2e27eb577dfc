"""Query depth limit (schema/limits.py). The schema has no cycles: its deepest real query is only
5 levels (myEntrustments > edges > node > operator > id), so the limit is lowered to 3 here."""

from __future__ import annotations

import time

import pytest

from tests.api._conventions import assert_no_leak, codes, table_counts

DEPTH_LIMIT = 3


@pytest.fixture
def settings_overrides() -> dict:
    return {"max_query_depth": DEPTH_LIMIT}


def assert_too_deep(response, depth: int) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert codes(body) == ["QUERY_TOO_DEEP"]
    assert body.get("data") is None
    assert f"{depth} levels deep; the limit is {DEPTH_LIMIT}" in body["errors"][0]["message"]
    assert_no_leak(response)


async def test_too_deep_queries_are_refused(api, services):
    before = await table_counts(services)
    assert_too_deep(await api.post({"query": "{ appOperators { edges { node { id } } } }"}), 4)
    # depth reached through named and inline fragments counts the same
    via_fragments = """
    query Deep { ...Root }
    fragment Root on Query { myEntrustments(first: 5) { ...Edges } }
    fragment Edges on EntrustmentConnection { edges { ... on EntrustmentEdge { node { ...Node } } } }
    fragment Node on Entrustment { operator { id } }
    """
    assert_too_deep(await api.post({"query": via_fragments}), 5)
    assert await table_counts(services) == before


async def test_a_too_deep_mutation_writes_nothing(api, services):
    mutation = """mutation { signUp(input: {kind: PERSON, displayName: "深", email: "EMAIL",
                  password: "correct horse battery"}) { account { SELECTION } errors { code } } }"""
    before = await table_counts(services)
    assert_too_deep(await api.post({"query": mutation.replace("EMAIL", "deep@example.org")
                                    .replace("SELECTION", "roles { id }")}), 4)
    assert await table_counts(services) == before
    # at the limit it runs and writes
    ok = await api.post({"query": mutation.replace("EMAIL", "deep@example.org").replace("SELECTION", "id")})
    assert ok.status_code == 200 and ok.json()["data"]["signUp"]["errors"] == [], ok.text
    assert (await table_counts(services))["accounts"] == before["accounts"] + 1


async def test_queries_at_the_limit_run(api):
    response = await api.post({"query": "{ appOperators(first: 5) { pageInfo { hasNextPage } } }"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["appOperators"]["pageInfo"] == {"hasNextPage": False}


async def test_introspection_nesting_is_exempt(api):
    query = '{ __type(name: "Account") { fields { type { ofType { ofType { ofType { name kind } } } } } } }'
    response = await api.post({"query": query})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["__type"]["fields"]


async def test_a_very_deep_query_is_refused_fast(api):
    nested = "{ me " + "{ roles " * 2000 + "{ id }" + " }" * 2001
    started = time.perf_counter()
    response = await api.post({"query": nested})
    assert time.perf_counter() - started < 2.0
    assert response.status_code == 400, response.text
    assert_no_leak(response)
