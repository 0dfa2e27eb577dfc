"""The ASGI application: /graphql, /healthz, /readyz, request ids and access logs."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from accounts.security import PasswordHashing
from core.clock import Clock, SystemClock
from schema.context import Services
from schema.root import schema
from server.db import create_engine, create_session_factory
from server.graphql_http import GraphQLEndpoint
from server.logs import request_id_var
from server.persisted import load_documents
from server.redis import create_redis
from server.settings import Settings
from server.webhooks import stripe_webhook
from server.certificates_http import certificate_routes
from neutrality.payments import from_settings as payments_from_settings

log = logging.getLogger("tanpuhui.http")


class RequestIdMiddleware:
    """Gives every request an id (or keeps a sane one the client sent), returns it in
    X-Request-ID, and writes one access-log line without the query string or client data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        sane = 8 <= len(sent) <= 64 and sent.isascii() and sent.replace("-", "").isalnum()
        request_id = sent if sane else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info("request", extra={"method": scope["method"], "path": scope["path"], "status": status,
                                       "ms": round((time.perf_counter() - started) * 1000, 2)})
            request_id_var.reset(token)


def build_services(settings: Settings, database_url: str, redis_url: str, clock: Clock | None = None,
                   hashing: PasswordHashing | None = None, payments=None) -> Services:
    engine = create_engine(database_url, settings.db_pool_size)
    return Services(settings=settings, engine=engine, session_factory=create_session_factory(engine),
                    redis=create_redis(redis_url), clock=clock or SystemClock(),
                    hashing=hashing or PasswordHashing(), payments=payments or payments_from_settings(settings))


def create_app(services: Services, *, dispose_on_shutdown: bool = True) -> Starlette:
    endpoint = GraphQLEndpoint(schema, services, load_documents())

    async def graphql(request: Request):
        return await endpoint(request)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks = {}
        try:
            async with services.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"down: {type(exc).__name__}"
        try:
            await services.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                            status_code=200 if ready else 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if dispose_on_shutdown:
            if services.payments is not None:
                await services.payments.aclose()
            await services.redis.aclose()
            await services.engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/webhooks/stripe", stripe_webhook(services), methods=["POST"]),
            *certificate_routes(services),
        ],
        lifespan=lifespan,
    )
    app.state.endpoint = endpoint
    return RequestIdMiddleware(app)  # type: ignore[return-value]
