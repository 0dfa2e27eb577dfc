"""/healthz, /readyz and request ids (server/app.py)."""

from __future__ import annotations

import uuid

from tests.api._conventions import assert_no_leak


async def test_healthz(api):
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["X-Request-ID"]


async def test_readyz_checks_postgres_and_redis(api):
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_readyz_reports_a_dead_dependency_without_details(services, api, monkeypatch):
    async def down():
        raise ConnectionError("redis at /secret/socket refused")

    monkeypatch.setattr(services.redis, "ping", down)
    response = await api.client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "checks": {"postgres": "ok", "redis": "down: ConnectionError"}}
    assert "secret" not in response.text


async def test_every_response_has_a_request_id(api):
    responses = [
        await api.client.get("/healthz"),
        await api.client.get("/readyz"),
        await api.client.post("/graphql", json={"query": "{ service { name } }"}),
        await api.client.post("/graphql", content=b"nope", headers={"Content-Type": "application/json"}),
        await api.client.get("/graphql", headers={"Accept": "text/html"}),
        await api.client.get("/nowhere"),
        await api.client.put("/graphql"),
    ]
    ids = [r.headers.get("X-Request-ID") for r in responses]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)
    body = responses[2].json()
    assert body["extensions"]["requestId"] == ids[2]
    assert responses[3].json()["extensions"]["requestId"] == ids[3]


async def test_a_sane_client_request_id_is_echoed_and_others_replaced(api):
    sane = f"trace-{uuid.uuid4()}"
    response = await api.client.post("/graphql", json={"query": "{ service { name } }"},
                                     headers={"X-Request-ID": sane})
    assert response.headers["X-Request-ID"] == sane
    assert response.json()["extensions"]["requestId"] == sane
    for insane in ("short", "x" * 65, "has spaces in it", "<script>alert(1)</script>", "id;DROP TABLE accounts",
                   "ümlaut-ümlaut"):
        response = await api.client.get("/healthz", headers={"X-Request-ID": insane.encode("utf-8")})
        returned = response.headers["X-Request-ID"]
        assert returned != insane and len(returned) == 32 and returned.isalnum(), (insane, returned)


async def test_unknown_paths_leak_nothing(api):
    for path in ("/nowhere", "/graphql/../../etc/passwd", "/.env", "/graphql/x"):
        response = await api.client.get(path)
        assert response.status_code == 404, (path, response.status_code)
        assert response.headers["X-Request-ID"]
        assert len(response.content) < 100
        assert_no_leak(response)
        for word in ("starlette", "uvicorn", "python", "/work"):
            assert word not in response.text.lower()
