"""Malformed and abusive requests get a clean 4xx or a typed error, promptly, and write nothing.

Default limits (Settings): body 1,000,000 bytes, 30 aliases, cost 10,000."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import orjson
import pytest

from tests.api._conventions import assert_no_leak, codes, table_counts
from tests.conftest import PASSWORD, SIGN_UP, unique_email

GOOD_INPUT = {"kind": "PERSON", "displayName": "坏输入", "email": "bad-input@example.org", "password": PASSWORD}


def sign_up(**changes) -> dict:
    return {"query": SIGN_UP, "variables": {"input": {**GOOD_INPUT, **changes}}}


def error_response(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["errors"], body
    assert body.get("data") is None, body
    if code is not None:
        assert code in codes(body), body
    assert_no_leak(response)
    assert response.headers["X-Request-ID"]
    return body


@pytest.fixture
async def unchanged(services):
    """Asserts at teardown that the test wrote no row anywhere."""
    before = await table_counts(services)
    yield
    assert await table_counts(services) == before


# (description, raw body or None, json body or None, content type, status, code)
MALFORMED = [
    ("empty body", b"", None, "application/json", 400, "BAD_REQUEST"),
    ("not JSON", b"{query: nope", None, "application/json", 400, "BAD_REQUEST"),
    ("not UTF-8", b"\xff\xfe{}", None, "application/json", 400, "BAD_REQUEST"),
    ("JSON array (batch)", orjson.dumps([sign_up()]), None, "application/json", 400, "BAD_REQUEST"),
    ("JSON string", b'"{ service { name } }"', None, "application/json", 400, "BAD_REQUEST"),
    ("JSON null", b"null", None, "application/json", 400, "BAD_REQUEST"),
    ("missing query", None, {"variables": {}}, "application/json", 400, "BAD_REQUEST"),
    ("blank query", None, {"query": "   "}, "application/json", 400, "BAD_REQUEST"),
    ("query not a string", None, {"query": ["mutation"]}, "application/json", 400, "BAD_REQUEST"),
    ("variables not an object", None, {"query": SIGN_UP, "variables": [1, 2]}, "application/json", 400,
     "BAD_REQUEST"),
    ("extensions not an object", None, {"query": SIGN_UP, "extensions": "x"}, "application/json", 400,
     "BAD_REQUEST"),
    ("operationName not a string", None, {**sign_up(), "operationName": 7}, "application/json", 400,
     "BAD_REQUEST"),
    ("unknown operationName", None, {**sign_up(), "operationName": "Nope"}, "application/json", 400,
     "BAD_REQUEST"),
    ("two operations, none named", None,
     {"query": "query A { service { name } } query B { service { name } }"}, "application/json", 400,
     "BAD_REQUEST"),
    ("syntax error", None, {"query": "mutation { signUp(input: { kind: PERSON "}, "application/json", 400,
     "GRAPHQL_PARSE_FAILED"),
    ("unknown field", None, {"query": "{ service { name password } }"}, "application/json", 400,
     "GRAPHQL_VALIDATION_FAILED"),
    ("wrong variable type: input is a string", None, {"query": SIGN_UP, "variables": {"input": "me"}},
     "application/json", 400, "BAD_USER_INPUT"),
    ("wrong variable type: displayName is a number", None, sign_up(displayName=42), "application/json", 400,
     "BAD_USER_INPUT"),
    ("wrong variable type: first is a string", None,
     {"query": "query Q($n: Int) { appOperators(first: $n) { edges { node { id } } } }",
      "variables": {"n": "ten"}}, "application/json", 400, "BAD_USER_INPUT"),
    ("Int out of 32-bit range", None,
     {"query": "query Q($n: Int) { appOperators(first: $n) { edges { node { id } } } }",
      "variables": {"n": 2 ** 40}}, "application/json", 400, "BAD_USER_INPUT"),
    ("missing required variable", None, {"query": SIGN_UP}, "application/json", 400, "BAD_USER_INPUT"),
    ("unknown enum value in variables", None, sign_up(kind="ALIEN"), "application/json", 400,
     "BAD_USER_INPUT"),
    ("unknown enum value inline", None,
     {"query": 'mutation { signUp(input: {kind: ALIEN, displayName: "x", email: "x@example.org", '
               'password: "correct horse battery"}) { account { id } } }'},
     "application/json", 400, "GRAPHQL_VALIDATION_FAILED"),
    ("enum given as a string inline", None,
     {"query": 'mutation { signUp(input: {kind: "PERSON", displayName: "x", email: "x@example.org", '
               'password: "correct horse battery"}) { account { id } } }'},
     "application/json", 400, "GRAPHQL_VALIDATION_FAILED"),
    ("text/plain", orjson.dumps(sign_up()), None, "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("form", urlencode({"query": SIGN_UP}).encode(), None, "application/x-www-form-urlencoded", 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("no content type", orjson.dumps(sign_up()), None, "", 415, "UNSUPPORTED_MEDIA_TYPE"),
    # a foreign page may send text/plain without a preflight: "json" in a parameter is not JSON
    ("text/plain with a json parameter", orjson.dumps(sign_up()), None, "text/plain;x=json", 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("text/plain with a json charset", orjson.dumps(sign_up()), None, "text/plain; charset=json", 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("application/jsonp", orjson.dumps(sign_up()), None, "application/jsonp", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("another +json type", orjson.dumps(sign_up()), None, "application/json-patch+json", 415,
     "UNSUPPORTED_MEDIA_TYPE"),
    ("json as a parameter of form", urlencode({"query": SIGN_UP}).encode(), None,
     "application/x-www-form-urlencoded; type=application/json", 415, "UNSUPPORTED_MEDIA_TYPE"),
    ("JSON in a charset other than UTF-8", orjson.dumps(sign_up()), None, "application/json; charset=iso-8859-1",
     415, "UNSUPPORTED_MEDIA_TYPE"),
]


async def test_malformed_requests(api, unchanged):
    """One database for all cases (a fresh one per case costs half a second each)."""
    for name, raw, body, content_type, status, code in MALFORMED:
        content = raw if raw is not None else orjson.dumps(body)
        response = await api.client.post("/graphql", content=content, headers={"Content-Type": content_type})
        try:
            error_response(response, status, code)
        except AssertionError as failure:
            raise AssertionError(f"case {name!r}: {failure}") from None


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", 'Application/JSON;Charset="UTF-8"',
    "application/graphql-response+json", "application/graphql-response+json; charset=utf-8",
])
async def test_json_media_types_are_accepted_with_their_parameters(api, content_type):
    response = await api.client.post("/graphql", content=orjson.dumps({"query": "{ service { name } }"}),
                                     headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["service"]["name"]


async def test_wrong_variable_types_report_the_variable(api, unchanged):
    body = error_response(await api.post(sign_up(kind="ALIEN")), 400, "BAD_USER_INPUT")
    assert "$input" in body["errors"][0]["message"]
    assert "ALIEN" in body["errors"][0]["message"]


async def test_a_ten_megabyte_body_is_refused_fast(api, unchanged):
    payload = orjson.dumps({"query": SIGN_UP, "variables": {"input": {**GOOD_INPUT,
                                                                      "applicationNote": "x" * 10_000_000}}})
    started = time.perf_counter()
    response = await api.post(content=payload)
    assert time.perf_counter() - started < 2.0
    error_response(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_streamed_body_without_length_is_cut_off(api, unchanged):
    async def chunks():
        for _ in range(200):  # 12.8 MB in 64 KiB chunks, no Content-Length
            yield b" " * 65536

    started = time.perf_counter()
    response = await api.client.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert time.perf_counter() - started < 3.0
    assert "content-length" not in {k.lower() for k in response.request.headers.keys()}
    error_response(response, 413, "PAYLOAD_TOO_LARGE")


async def test_too_many_aliases(api, unchanged):
    aliases = " ".join(f"a{i}: service {{ name }}" for i in range(31))
    body = error_response(await api.post({"query": f"{{ {aliases} }}"}), 400, "TOO_MANY_ALIASES")
    assert "31" in body["errors"][0]["message"]
    thirty = " ".join(f"a{i}: service {{ name }}" for i in range(30))
    response = await api.post({"query": f"{{ {thirty} }}"})
    assert response.status_code == 200 and len(response.json()["data"]) == 30


async def test_aliases_inside_a_mutation_are_counted_before_anything_runs(api, unchanged):
    signups = " ".join(
        f'a{i}: signUp(input: {{kind: PERSON, displayName: "n{i}", email: "{unique_email()}", '
        f'password: "{PASSWORD}"}}) {{ account {{ id }} }}' for i in range(31))
    error_response(await api.post({"query": f"mutation {{ {signups} }}"}), 400, "TOO_MANY_ALIASES")


PAGE = "appOperators(first: 100) { edges { cursor node { id displayName } } }"  # 1 + 100 * 5 = 501


async def test_cost_over_the_limit_is_refused_with_the_cost(api, unchanged):
    query = "{ " + " ".join(f"p{i}: {PAGE}" for i in range(20)) + " }"  # 20 * 501
    body = error_response(await api.post({"query": query}), 400, "QUERY_TOO_COSTLY")
    assert body["extensions"]["cost"] == {"requested": 10_020, "limit": 10_000}
    assert body["extensions"]["requestId"] == api.last_response.headers["X-Request-ID"]


async def test_cost_counts_page_sizes_from_variables(api, unchanged):
    query = ("query Q($n: Int) { " + " ".join(
        f"p{i}: appOperators(first: $n) {{ edges {{ cursor node {{ id displayName }} }} }}" for i in range(20))
             + " }")
    body = error_response(await api.post({"query": query, "variables": {"n": 100}}), 400, "QUERY_TOO_COSTLY")
    assert body["extensions"]["cost"]["requested"] == 10_020
    response = await api.post({"query": query, "variables": {"n": 99}})  # 20 * (1 + 99 * 5) = 9,920
    assert response.status_code == 200, response.text
    assert response.json()["extensions"]["cost"] == {"requested": 9_920, "limit": 10_000}


async def test_a_normal_query_reports_its_cost(api, unchanged):
    response = await api.post({"query": "{ service { name } appOperators(first: 10) { edges { node { id } } } }"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["extensions"]["cost"] == {"requested": 2 + 1 + 10 * 3, "limit": 10_000}
    assert body["extensions"]["requestId"] == response.headers["X-Request-ID"]
    # introspection is free
    response = await api.post({"query": "{ __schema { types { name fields { name } } } }"})
    assert response.json()["extensions"]["cost"]["requested"] == 0


async def test_a_fragment_bomb_is_refused_promptly(api, unchanged):
    """Each fragment spreads the previous one twice: 2**40 fields if expanded naively."""
    fragments = ["fragment F0 on Query { service { name } }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 41)]
    query = "query Bomb { ...F40 }\n" + "\n".join(fragments)
    started = time.perf_counter()
    response = await api.post({"query": query})
    assert time.perf_counter() - started < 2.0
    body = error_response(response, 400, "QUERY_TOO_COSTLY")
    assert body["extensions"]["cost"]["requested"] > 10_000


async def test_an_alias_bomb_through_fragments_is_refused_promptly(api, unchanged):
    fragments = ["fragment F0 on Query { a: service { name } }"] + [
        f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 41)]
    query = "query Bomb { ...F40 }\n" + "\n".join(fragments)
    started = time.perf_counter()
    response = await api.post({"query": query})
    assert time.perf_counter() - started < 2.0
    error_response(response, 400, "TOO_MANY_ALIASES")


async def test_deep_introspection_is_refused(api, unchanged):
    query = "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }"
    started = time.perf_counter()
    response = await api.post({"query": query})
    assert time.perf_counter() - started < 2.0
    error_response(response, 400, "GRAPHQL_VALIDATION_FAILED")


async def test_too_many_tokens_is_a_parse_error(api, unchanged):
    query = "{ " + " ".join("__typename" for _ in range(6000)) + " }"
    error_response(await api.post({"query": query}), 400, "GRAPHQL_PARSE_FAILED")


async def test_an_over_long_query_is_refused(api, unchanged):
    query = "{ service { name } }" + " " * 100_001
    error_response(await api.post({"query": query}), 400, "QUERY_TOO_LARGE")


async def test_get_runs_queries_but_never_mutations(api, unchanged):
    ok = await api.client.get("/graphql", params={"query": "{ service { name } }"})
    assert ok.status_code == 200 and ok.json()["data"]["service"]["name"]
    mutation = "mutation { logout { revokedSessions } }"
    error_response(await api.client.get("/graphql", params={"query": mutation}), 405, "METHOD_NOT_ALLOWED")
    error_response(await api.client.get("/graphql", params={"query": SIGN_UP,
                                                            "variables": orjson.dumps({"input": GOOD_INPUT}).decode()}),
                   405, "METHOD_NOT_ALLOWED")
    error_response(await api.client.get("/graphql", params={"query": "{ service { name } }", "variables": "{oops"}),
                   400, "BAD_REQUEST")


async def test_other_methods_are_refused(api, unchanged):
    for method in ("PUT", "DELETE", "PATCH"):
        response = await api.client.request(method, "/graphql", json=sign_up())
        assert response.status_code == 405, (method, response.status_code)
        assert_no_leak(response)


async def test_bad_credentials_are_401_and_write_nothing(api, unchanged):
    for header, code in [
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer "}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer not.a.jwt"}, "INVALID_TOKEN"),
        ({"X-API-Key": "tph_nothing_like_a_key"}, "INVALID_API_KEY"),
    ]:
        response = await api.post(sign_up(email=unique_email()), headers=header)
        assert codes(error_response(response, 401)) == [code], header
