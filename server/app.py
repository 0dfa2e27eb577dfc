"""The ASGI application: /graphql, /healthz, /readyz, request ids and access logs, CORS from the
TANPUHUI_CORS_ORIGINS allow-list, and the security headers every answer carries."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from typing import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from accounts.security import PasswordHashing
from core.clock import Clock, SystemClock
from schema.context import Services
from server.graphql_schema import schema
from server.db import create_engine, create_session_factory
from server.graphql_http import GraphQLEndpoint
from server.logs import request_id_var
from server.persisted import load_documents
from server.redis import create_redis
from server.settings import Settings
from server.webhooks import stripe_webhook
from server.certificates_http import certificate_routes
from server.disclosure_http import disclosure_routes
from neutrality.market.payments import from_settings as payments_from_settings

log = logging.getLogger("tanpuhui.http")

# HTML pages that set no policy of their own (the certificate page: no scripts, styles or images)
HTML_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


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


class AllowListCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, except that an origin off the list gets no CORS headers at all: a bare 400
    for its preflight and only `Vary: Origin` on its other answers (Starlette's would still list
    the allowed methods and the exposed headers)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        if not self.is_allowed_origin(request_headers["origin"]):
            return PlainTextResponse("Disallowed CORS origin", status_code=400)
        return super().preflight_response(request_headers)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if message["type"] == "http.response.start" and origin is not None and not self.is_allowed_origin(origin):
            message.setdefault("headers", [])
            MutableHeaders(scope=message).add_vary_header("Origin")  # no cache may hand it to a listed origin
            await send(message)
            return
        await super().send(message, send, request_headers)


class SecurityHeadersMiddleware:
    """On every answer: `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`; on HTML
    pages without a Content-Security-Policy of their own, a strict one (GraphiQL sets its own);
    `Cache-Control: no-store` on every /graphql answer (they depend on the caller, and none is
    public) and on any answer to a request that carried credentials (Authorization or X-API-Key)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"] == "/graphql" or any(name in CREDENTIAL_HEADERS for name, _ in scope["headers"])

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                if (headers.get("content-type", "").startswith("text/html")
                        and "content-security-policy" not in headers):
                    headers["Content-Security-Policy"] = HTML_CSP
                if no_store:
                    headers["Cache-Control"] = "no-store"
                message["headers"] = headers.raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
            *disclosure_routes(services),
        ],
        middleware=[
            # browsers' cross-origin calls only from the allow-list (none unless set); no cookies are
            # used, so no credentials mode: tokens and API keys travel in headers
            Middleware(AllowListCORSMiddleware, allow_origins=list(services.settings.cors_origins),
                       allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
                       expose_headers=["X-Request-ID", "Retry-After"], max_age=600),
        ],
        lifespan=lifespan,
    )
    app.state.endpoint = endpoint
    return RequestIdMiddleware(SecurityHeadersMiddleware(app))  # type: ignore[return-value]
