"""Internal errors are masked (server/graphql_http.py): the client sees only
INTERNAL_SERVER_ERROR with the request id; the log has the exception under that id."""

from __future__ import annotations

import logging


from accounts import service as accounts_service
from tests.api._conventions import assert_no_leak, codes, table_counts
from tests.conftest import PASSWORD, SIGN_UP, unique_email

SECRET = "secret SQL SELECT password_hash FROM accounts -- sqlalchemy.exc asyncpg"


def explode(*args, **kwargs):
    raise RuntimeError(SECRET)


async def explode_async(*args, **kwargs):
    raise RuntimeError(SECRET)


def internal_records(caplog, request_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "tanpuhui.graphql" and r.levelno >= logging.ERROR and getattr(r, "request_id", None) == request_id]


async def test_an_unexpected_resolver_error_is_masked_and_logged(api, monkeypatch, caplog):
    monkeypatch.setattr(accounts_service, "list_operators", explode_async)
    caplog.set_level(logging.ERROR, logger="tanpuhui.graphql")

    response = await api.post({"query": "{ service { name } appOperators(first: 5) { edges { node { id } } } }"})
    assert response.status_code == 200  # a partial result: the other root field still answers
    body = response.json()
    request_id = response.headers["X-Request-ID"]
    assert body["data"] is None or body["data"].get("appOperators") is None
    [error] = body["errors"]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
    assert error["path"] == ["appOperators"]
    assert body["extensions"]["requestId"] == request_id
    assert "secret" not in response.text and "password_hash" not in response.text
    assert_no_leak(response)

    [record] = internal_records(caplog, request_id)
    assert record.exc_info and isinstance(record.exc_info[1], RuntimeError)
    assert SECRET in str(record.exc_info[1])
    assert record.path == "appOperators"


async def test_a_client_supplied_request_id_is_used_for_masking(api, monkeypatch, caplog):
    monkeypatch.setattr(accounts_service, "list_operators", explode_async)
    caplog.set_level(logging.ERROR, logger="tanpuhui.graphql")
    mine = "client-trace-0123456789"
    response = await api.post({"query": "{ appOperators { edges { cursor } } }"}, headers={"X-Request-ID": mine})
    assert response.headers["X-Request-ID"] == mine
    assert response.json()["errors"][0]["extensions"]["requestId"] == mine
    assert len(internal_records(caplog, mine)) == 1


async def test_an_unexpected_error_in_a_mutation_rolls_back_and_is_masked(api, services, monkeypatch, caplog):
    """signUp writes the account, then something unexpected fails: nothing stays written."""
    caplog.set_level(logging.ERROR, logger="tanpuhui.graphql")
    real_roles_of = accounts_service.roles_of
    monkeypatch.setattr(accounts_service, "roles_of", explode_async)
    before = await table_counts(services)
    response = await api.post({"query": SIGN_UP, "variables": {"input": {
        "kind": "PERSON", "displayName": "回滚", "email": unique_email(), "password": PASSWORD,
        "idempotencyKey": "rolled-back"}}})
    body = response.json()
    assert codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert body["errors"][0]["extensions"]["requestId"] == response.headers["X-Request-ID"]
    assert body["data"] is None
    assert_no_leak(response)
    assert "secret" not in response.text
    assert await table_counts(services) == before
    assert len(internal_records(caplog, response.headers["X-Request-ID"])) == 1
    monkeypatch.setattr(accounts_service, "roles_of", real_roles_of)


async def test_a_failure_outside_the_resolvers_is_masked_too(api, monkeypatch, caplog):
    """An unexpected exception in the endpoint itself (here: the credential check) still answers
    JSON with the request id, never a stack trace."""
    import server.graphql_http as endpoint_module

    monkeypatch.setattr(endpoint_module, "authenticate_and_limit", explode_async)
    caplog.set_level(logging.ERROR)
    response = await api.post({"query": "{ service { name } }"})
    assert response.status_code == 500
    body = response.json()
    request_id = response.headers["X-Request-ID"]
    assert codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert body["errors"][0]["message"] == "Internal server error."
    assert body["extensions"]["requestId"] == request_id
    assert "secret" not in response.text
    assert_no_leak(response)
    assert len(internal_records(caplog, request_id)) == 1


async def test_domain_errors_on_query_fields_are_public(api):
    """Expected failures of query fields (bad page size, bad cursor) are shown as written."""
    response = await api.post({"query": "{ appOperators(first: 500) { edges { cursor } } }"})
    body = response.json()
    assert codes(body) == ["INVALID_PAGE_SIZE"]
    assert body["errors"][0]["extensions"]["field"] == "first"
    assert_no_leak(response)


async def test_a_broken_result_is_masked_as_internal(api, monkeypatch, caplog):
    """A resolver returning null for a non-null field is a server bug, not the client's."""
    from core.keyset import Page, PageItem

    class Row:
        id = "secret SELECT id"
        display_name = None

    async def broken(**kwargs):
        return Page(items=[PageItem(cursor="c", node=Row())], has_next_page=False, has_previous_page=False)

    monkeypatch.setattr(accounts_service, "list_operators", broken)
    caplog.set_level(logging.ERROR, logger="tanpuhui.graphql")
    response = await api.post({"query": "{ appOperators { edges { node { id displayName } } } }"})
    body = response.json()
    assert codes(body) == ["INTERNAL_SERVER_ERROR"]
    assert body["errors"][0]["message"] == "Internal server error."
    assert_no_leak(response)
    assert len(internal_records(caplog, response.headers["X-Request-ID"])) == 1


async def test_refusals_by_permission_are_public(api):
    response = await api.post({"query": "{ me { id } }"})
    body = response.json()
    assert codes(body) == ["UNAUTHENTICATED"]
    assert body["errors"][0]["message"] == "Sign in to do this."
    assert body["errors"][0]["path"] == ["me"]
    assert_no_leak(response)
