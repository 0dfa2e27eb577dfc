"""Test fixtures on the real embedded servers.

One embedded PostgreSQL and one Redis per test run. The schema is migrated once into a template
database; every test gets a fresh database cloned from it (`CREATE DATABASE ... TEMPLATE`), so
tests that open real parallel connections see each other's committed data and nothing else."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import Phase
from hypothesis import settings as hypothesis_settings

from accounts.security import PasswordHashing
from core.clock import MovableClock
from server.app import build_services, create_app
from server.embedded import start_postgres, start_redis
from server.migrate import upgrade
from server.settings import load_settings

# hypothesis' "explain" phase re-runs a failing example under a tracer, which takes many minutes
# against a real database; the shrunk example and its reproduction blob are enough
hypothesis_settings.register_profile("tanpuhui", phases=[p for p in Phase if p is not Phase.explain], print_blob=True)
hypothesis_settings.load_profile("tanpuhui")

TEMPLATE = "tanpuhui_template"
START = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # 09:00 Monday in Shanghai
_counter = itertools.count()

# argon2id with small parameters: the algorithm and code path are the production ones,
# only cheaper, so hundreds of sign-ins fit in the suite.
FAST_HASHING = PasswordHashing(time_cost=1, memory_cost_kib=1024, parallelism=1)


@dataclass
class Embedded:
    root: Path
    pg_host: str
    base_url: str  # SQLAlchemy URL of the postgres database
    redis_url: str
    redis_server: Any


@pytest.fixture(scope="session")
def embedded() -> Embedded:
    root = Path(os.environ.get("TANPUHUI_TEST_DIR") or tempfile.mkdtemp(prefix="tanpuhui-test-"))
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # pgserver runs postgres as its own system user when we are root
    pg, base_url = start_postgres(root)
    redis_server, redis_url = start_redis(root)
    pg_host = str(root / "postgres")
    embedded = Embedded(root=root, pg_host=pg_host, base_url=base_url, redis_url=redis_url,
                        redis_server=redis_server)

    async def make_template() -> None:
        conn = await asyncpg.connect(host=pg_host, user="postgres", database="postgres")
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {TEMPLATE}")
        finally:
            await conn.close()

    asyncio.run(make_template())
    upgrade(database_url(embedded, TEMPLATE))
    yield embedded
    try:
        redis_server._cleanup()
    except Exception:
        pass
    pg.cleanup()
    if not os.environ.get("TANPUHUI_TEST_DIR"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def localstripe():
    """The Stripe emulator of the embedded default (localstripe, test mode, 127.0.0.1), started once
    for the run by the service's own code; payment tests point a Payments adapter at it."""
    from server.stripe_emulator import start_emulator

    emulator = start_emulator()
    yield emulator
    emulator.stop()


def database_url(embedded: Embedded, name: str) -> str:
    return f"postgresql+asyncpg://postgres@/{name}?host={embedded.pg_host}"


async def _admin(embedded: Embedded, sql: str) -> None:
    conn = await asyncpg.connect(host=embedded.pg_host, user="postgres", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def database(embedded: Embedded) -> str:
    """A fresh database cloned from the migrated template; dropped after the test."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    await _admin(embedded, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    yield database_url(embedded, name)
    await _admin(embedded, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment of settings for load_settings and the CLI: the test process's own
    TANPUHUI_*, STRIPE_* and URLs removed, a data dir of its own; call it with the variables to set."""
    for name in list(os.environ):
        if name.startswith(("TANPUHUI_", "STRIPE_")) or name in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TANPUHUI_DATA_DIR", str(tmp_path / "data"))

    def set_(variables: dict) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_


@pytest.fixture
def settings_overrides() -> dict:
    """Override in a test module to change settings (rate limits, persisted-only...)."""
    return {}


@pytest.fixture
async def services(embedded: Embedded, database: str, clock: MovableClock, settings_overrides: dict, tmp_path):
    settings = load_settings(data_dir=tmp_path, database_url=database, redis_url=embedded.redis_url,
                             secret_key="test-secret-" + "x" * 40, personal_data_key="test-pii-" + "y" * 40,
                             **settings_overrides)
    services = build_services(settings, database, embedded.redis_url, clock=clock, hashing=FAST_HASHING)
    await services.redis.flushdb()
    yield services
    await services.redis.aclose()
    await services.engine.dispose()


@dataclass
class Api:
    """The public GraphQL API over HTTP (ASGI transport into the real app)."""

    client: httpx.AsyncClient
    services: Any
    last_response: httpx.Response | None = None
    headers: dict = field(default_factory=dict)

    async def post(self, body: Any = None, *, token: str | None = None, api_key: str | None = None,
                   headers: dict | None = None, content: bytes | None = None) -> httpx.Response:
        sent = dict(self.headers)
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if api_key:
            sent["X-API-Key"] = api_key
        sent.update(headers or {})
        if content is not None:
            sent.setdefault("Content-Type", "application/json")
            response = await self.client.post("/graphql", content=content, headers=sent)
        else:
            response = await self.client.post("/graphql", json=body, headers=sent)
        self.last_response = response
        return response

    async def gql(self, query: str, variables: dict | None = None, *, token: str | None = None,
                  api_key: str | None = None, headers: dict | None = None) -> dict:
        response = await self.post({"query": query, "variables": variables or {}}, token=token,
                                   api_key=api_key, headers=headers)
        return response.json()

    async def data(self, query: str, variables: dict | None = None, **kwargs) -> dict:
        """Run and insist on no top-level errors."""
        body = await self.gql(query, variables, **kwargs)
        assert "errors" not in body, body
        return body["data"]


@pytest.fixture
async def api(services) -> Api:
    app = create_app(services, dispose_on_shutdown=False)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client=client, services=services)


# --- actors ------------------------------------------------------------------------------------

SIGN_UP = """
mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) { account { id displayName roles { id role status } } errors { code field message } }
}"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) {
    session { accessToken refreshToken accessTokenExpiresAt account { id roles { role status } } }
    errors { code field message }
  }
}"""
DECIDE = """
mutation Decide($input: DecideRoleApplicationInput!) {
  decideRoleApplication(input: $input) { application { id status role } errors { code field message } }
}"""
PASSWORD = "correct horse battery"


@dataclass
class Actor:
    account_id: str
    login: str
    token: str
    refresh_token: str
    roles: list = field(default_factory=list)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.org"


async def sign_in(api: Api, login: str, password: str = PASSWORD) -> Actor:
    data = await api.data(LOGIN, {"input": {"login": login, "password": password}})
    session = data["login"]["session"]
    assert session is not None, data
    return Actor(account_id=session["account"]["id"], login=login, token=session["accessToken"],
                 refresh_token=session["refreshToken"], roles=session["account"]["roles"])


async def person(api: Api, name: str = "王小明", **extra) -> Actor:
    email = unique_email("person")
    data = await api.data(SIGN_UP, {"input": {"kind": "PERSON", "displayName": name, "email": email,
                                               "password": PASSWORD, **extra}})
    assert data["signUp"]["errors"] == [], data
    return await sign_in(api, email)


async def organisation(api: Api, name: str = "深圳绿色科技有限公司", apply_for: list | None = None) -> Actor:
    email = unique_email("org")
    data = await api.data(SIGN_UP, {"input": {"kind": "ORGANISATION", "displayName": name, "email": email,
                                               "password": PASSWORD, "applyFor": apply_for or []}})
    assert data["signUp"]["errors"] == [], data
    return await sign_in(api, email)


async def regulator(api: Api) -> Actor:
    from accounts import service

    email = unique_email("regulator")
    async with api.services.session_factory() as session:
        async with session.begin():
            await service.create_regulator(session=session, clock=api.services.clock, hashing=FAST_HASHING,
                                           email=email, password=PASSWORD)
    return await sign_in(api, email)


async def approved(api: Api, role: str, name: str = "低碳星球运营有限公司", reg: Actor | None = None) -> Actor:
    """An organisation whose application for `role` the regulator approved; signed in afresh."""
    org = await organisation(api, name, apply_for=[role])
    reg = reg or await regulator(api)
    me = await api.data("{ me { roles { id role status } } }", token=org.token)
    application = next(r for r in me["me"]["roles"] if r["role"] == role)
    data = await api.data(DECIDE, {"input": {"applicationId": application["id"], "approve": True}}, token=reg.token)
    assert data["decideRoleApplication"]["errors"] == [], data
    return await sign_in(api, org.login)
