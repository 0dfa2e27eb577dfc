"""The headers every answer carries (server/app.py): CORS only for the TANPUHUI_CORS_ORIGINS
allow-list; `Cache-Control: no-store` on every /graphql answer and on any answer to a request
with credentials; `nosniff` and `X-Frame-Options: DENY` everywhere; a Content-Security-Policy on
the HTML pages (GraphiQL's allows exactly the files it loads, the certificate page's nothing)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import uuid

import pytest

from tests.api._conventions import client_for
from tests.neutrality.certificate_fixtures import APPLY, application, auto_approve, holding
from tests.conftest import organisation, person

ALLOWED = "https://app.tanpuhui.example"
OTHER = "https://evil.example"


@pytest.fixture
def settings_overrides() -> dict:
    return {"cors_origins": ALLOWED}


def preflight(origin: str) -> dict:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-api-key"}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


# --- CORS ----------------------------------------------------------------------------------------


async def test_a_listed_origin_gets_its_preflight_and_answers(api):
    response = await api.client.options("/graphql", headers=preflight(ALLOWED))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-api-key"} <= {h.strip() for h in allowed_headers.split(",")}
    assert "access-control-allow-credentials" not in response.headers  # no cookies: tokens travel in headers
    answer = await api.post({"query": "{ service { name } }"}, headers={"Origin": ALLOWED})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


async def test_an_unlisted_origin_gets_no_cors_headers(api):
    response = await api.client.options("/graphql", headers=preflight(OTHER))
    assert response.status_code == 400
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    answer = await api.post({"query": "{ service { name } }"}, headers={"Origin": OTHER})
    assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


async def test_no_origin_is_allowed_unless_listed(services):
    unlisted = dataclasses.replace(services, settings=dataclasses.replace(services.settings, cors_origins=()))
    async with client_for(unlisted) as client:
        response = await client.options("/graphql", headers=preflight(ALLOWED))
        assert response.status_code == 400 and "access-control-allow-origin" not in response.headers


# --- caching -------------------------------------------------------------------------------------


async def test_no_graphql_answer_is_stored(api):
    someone = await person(api)
    answers = [
        await api.post({"query": "{ service { name } }"}),
        await api.post({"query": "{ me { displayName } }"}, token=someone.token),
        await api.post({"query": "{ service { nme } }"}),
        await api.post(content=b"{}", headers={"Content-Type": "text/plain"}),
        await api.client.get("/graphql", params={"query": "{ service { name } }"}),
        await api.post({"query": "{ me { displayName } }"}, headers={"Authorization": "Bearer not.a.jwt"}),
    ]
    for response in answers:
        assert response.headers["cache-control"] == "no-store", (response.status_code, response.text)


async def test_an_answer_to_a_request_with_credentials_is_not_stored_anywhere(api):
    assert "cache-control" not in (await api.client.get("/healthz")).headers
    for credentials in ({"Authorization": "Bearer x"}, {"X-API-Key": "tph_x"}):
        response = await api.client.get("/healthz", headers=credentials)
        assert response.headers["cache-control"] == "no-store", credentials


# --- security headers ----------------------------------------------------------------------------


async def test_every_answer_is_not_sniffed_and_not_framed(api):
    for response in [await api.client.get("/healthz"), await api.post({"query": "{ service { name } }"}),
                     await api.client.get("/nowhere"), await api.client.get("/certificates/ZZZZZZZZZZZZ"),
                     await api.client.post("/webhooks/stripe", content=b"{}")]:
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["x-frame-options"] == "DENY", response.url


async def test_graphiql_page_policy_allows_exactly_what_it_loads(api):
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    policy = directives(page.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["connect-src"] == ["'self'"]

    scripts = re.findall(r'<script[^>]*?\ssrc="([^"]+)"', page.text)
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    sheets = re.findall(r'<link[^>]*?\srel="stylesheet"[^>]*?\shref="([^"]+)"', page.text)
    assert scripts and inline and sheets
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'" for body in inline]
    # each script the page loads, by its full pinned address, and its inline script by hash: nothing else
    assert sorted(policy["script-src"]) == sorted(scripts + hashes)
    assert all(url.startswith("https://unpkg.com/") and "@" in url for url in scripts)
    assert set(sheets) <= set(policy["style-src"])
    assert "'unsafe-eval'" not in str(policy) and "*" not in str(policy["script-src"])


async def test_the_certificate_page_allows_nothing_to_load(api, services):
    await auto_approve(services)  # the certificate is issued at once
    org = await organisation(api)
    await holding(services, uuid.UUID(org.account_id), 30)
    data = (await api.data(APPLY, {"input": application()}, token=org.token))["applyForNeutrality"]
    assert data["errors"] == [], data
    code = data["certificate"]["verificationCode"]
    page = await api.client.get(f"/certificates/{code}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = directives(page.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    # the JSON form is public and cacheable; asked with credentials it is not stored
    assert "cache-control" not in (await api.client.get(f"/certificates/{code}")).headers
    signed_in = await api.client.get(f"/certificates/{code}", headers={"Authorization": f"Bearer {org.token}"})
    assert signed_in.headers["cache-control"] == "no-store"
