"""The GraphQL HTTP endpoint: one place for the request-level conventions.

body size limit -> credentials and rate limit -> persisted operations -> cached parse and
validation (with depth and alias limits) -> cost limit -> execution -> error masking.
Internal errors are logged with the request id and reach the client only as
`INTERNAL_SERVER_ERROR` with that id: never a stack trace, never SQL."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from functools import lru_cache
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    Visitor,
    execute,
    parse,
    validate,
    visit,
)
from graphql.pyutils import is_awaitable
from graphql.type import get_named_type, is_introspection_type
from graphql.validation import NoSchemaIntrospectionCustomRule, specified_rules
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry.http.ides import get_graphql_ide_html

from core.errors import DomainError
from schema.context import Context, Services
from schema.limits import measure
from schema.permissions import credential_fields
from server.auth import AuthFailure, authenticate_and_limit
from server.graphql_schema import executable_schema
from server.input_text import BadText, clean, clean_values
from server.logs import request_id_var

log = logging.getLogger("tanpuhui.graphql")

MAX_QUERY_CHARS = 100_000
JSON_MEDIA_TYPES = ("application/json", "application/graphql-response+json")


def json_response(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json",
                    headers=headers)


def request_error(message: str, code: str, status: int, request_id: str, headers: dict | None = None,
                  **extensions: Any) -> Response:
    return json_response(
        {"errors": [{"message": message, "extensions": {"code": code, **extensions}}],
         "extensions": {"requestId": request_id}},
        status=status, headers=headers,
    )


def clean_literals(document: DocumentNode) -> DocumentNode:
    """The document with every string literal checked and NFC-normalised (server/input_text.py)."""

    class Literals(Visitor):
        def enter_string_value(self, node: StringValueNode, *_args) -> StringValueNode | None:
            value = clean(node.value, "A string literal")
            return None if value == node.value else StringValueNode(value=value, block=node.block, loc=node.loc)

    return visit(document, Literals())


def is_json_media_type(content_type: str) -> bool:
    """Whether a Content-Type names JSON: exactly application/json or
    application/graphql-response+json, parameters allowed, a charset only if it is UTF-8.
    (`text/plain;x=json`, which any web page may send cross-origin without a preflight, is not.)"""
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() not in JSON_MEDIA_TYPES:
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return False
    return True


def graphiql_csp(page: str) -> str:
    """The Content-Security-Policy of the GraphiQL page: exactly the scripts and style sheets it
    loads (pinned unpkg versions, with SRI in the page), its inline script by hash, the Google
    Fonts its style sheet imports, inline styles (its dialogs inject them), requests to this
    origin only, and no framing."""
    scripts = re.findall(r'<script[^>]*?\ssrc="([^"]+)"', page)
    sheets = re.findall(r'<link[^>]*?\srel="stylesheet"[^>]*?\shref="([^"]+)"', page)
    inline = [base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
              for body in re.findall(r"<script>(.*?)</script>", page, re.S)]
    return "; ".join([
        "default-src 'none'",
        "script-src " + " ".join(scripts + [f"'sha256-{digest}'" for digest in inline]),
        "style-src 'unsafe-inline' " + " ".join(sheets + ["https://fonts.googleapis.com/css2"]),
        "font-src https://fonts.gstatic.com",
        "img-src data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


class NoIntrospection(NoSchemaIntrospectionCustomRule):
    """With introspection off: `__schema` and `__type` are refused with a typed error (once per
    field, not once per nested field); `__typename` is not introspection and keeps working."""

    def enter_field(self, node, *_args):
        type_ = get_named_type(self.context.get_type())
        if type_ and is_introspection_type(type_):
            self.report_error(GraphQLError("Introspection is disabled on this server.", node,
                                           extensions={"code": "INTROSPECTION_DISABLED"}))
            return self.SKIP
        return None


class PreparedDocument:
    """A parsed and validated document with its static measures (cached per query text)."""

    def __init__(self, document: DocumentNode | None, errors: list[GraphQLError]):
        self.document = document
        self.errors = errors
        self.operations: dict[str | None, OperationDefinitionNode] = {}
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        if document is not None:
            for definition in document.definitions:
                if isinstance(definition, OperationDefinitionNode):
                    self.operations[definition.name.value if definition.name else None] = definition
                elif isinstance(definition, FragmentDefinitionNode):
                    self.fragments[definition.name.value] = definition

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        if name is None:
            return next(iter(self.operations.values())) if len(self.operations) == 1 else None
        return self.operations.get(name)


class GraphQLEndpoint:
    def __init__(self, schema, services: Services, persisted: dict[str, str]):
        self.strawberry_schema = schema
        self.schema: GraphQLSchema = executable_schema(schema)
        self.services = services
        self.persisted = persisted
        settings = services.settings
        self.max_depth = settings.max_query_depth
        self.max_aliases = settings.max_aliases
        self.max_cost = settings.max_query_cost
        self.max_body = settings.max_body_bytes
        self.persisted_only = settings.persisted_queries_only
        self.credential_fields = credential_fields(schema)
        self._prepare = lru_cache(maxsize=1024)(self._prepare_uncached)
        self._ide = get_graphql_ide_html("graphiql")
        # what production turns off unless enabled explicitly (server/settings.py)
        self.graphiql = settings.graphiql
        self._ide_headers = {"Content-Security-Policy": graphiql_csp(self._ide)}
        self.hide_suggestions = not settings.field_suggestions
        self._rules = None if settings.introspection else (*specified_rules, NoIntrospection)

    # -- parse and validate, cached by query text --------------------------------------------

    def _prepare_uncached(self, query: str) -> PreparedDocument:
        try:
            document = parse(query, max_tokens=5000)
        except GraphQLError as error:  # a syntax error, or over the token limit
            error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_PARSE_FAILED"}
            return PreparedDocument(None, [error])
        try:
            document = clean_literals(document)
        except BadText as bad:
            return PreparedDocument(None, [GraphQLError(str(bad), extensions={"code": "BAD_USER_INPUT"})])
        errors = validate(self.schema, document, rules=self._rules, max_errors=20,
                          hide_suggestions=self.hide_suggestions)
        prepared = PreparedDocument(document, errors)
        if not errors:
            for operation in prepared.operations.values():
                static = measure(operation, prepared.fragments, {}, self.credential_fields)
                if static.depth > self.max_depth:
                    prepared.errors = [GraphQLError(
                        f"The query is {static.depth} levels deep; the limit is {self.max_depth}.",
                        extensions={"code": "QUERY_TOO_DEEP"})]
                elif static.aliases > self.max_aliases:
                    prepared.errors = [GraphQLError(
                        f"The query uses {static.aliases} aliases; the limit is {self.max_aliases}.",
                        extensions={"code": "TOO_MANY_ALIASES"})]
                elif static.named > 1:
                    prepared.errors = [GraphQLError(
                        "An operation checks at most one credential (" + ", ".join(sorted(self.credential_fields))
                        + "): send each in its own request.", extensions={"code": "TOO_MANY_CREDENTIAL_CHECKS"})]
        return prepared

    # -- HTTP ---------------------------------------------------------------------------------

    async def __call__(self, request: Request) -> Response:
        request_id = request_id_var.get() or "-"
        try:
            return await self._handle(request, request_id)
        except Exception as exc:  # a bug outside the resolvers: masked like one inside them
            log.error("internal error", exc_info=exc, extra={"path": None, "request_id": request_id})
            return request_error("Internal server error.", "INTERNAL_SERVER_ERROR", 500, request_id,
                                 requestId=request_id)

    async def _handle(self, request: Request, request_id: str) -> Response:
        if request.method == "GET":
            if (self.graphiql and "text/html" in request.headers.get("accept", "")
                    and "query" not in request.query_params):
                return HTMLResponse(self._ide, headers=self._ide_headers)
            params = dict(request.query_params)
            try:
                body = {
                    "query": params.get("query"),
                    "operationName": params.get("operationName"),
                    "variables": orjson.loads(params["variables"]) if params.get("variables") else None,
                    "extensions": orjson.loads(params["extensions"]) if params.get("extensions") else None,
                }
            except orjson.JSONDecodeError:
                return request_error("variables and extensions must be JSON.", "BAD_REQUEST", 400, request_id)
        elif request.method == "POST":
            body_or_error = await self._read_body(request, request_id)
            if isinstance(body_or_error, Response):
                return body_or_error
            body = body_or_error
        else:
            return request_error("Use GET or POST.", "METHOD_NOT_ALLOWED", 405, request_id)

        client_ip = request.client.host if request.client else "unknown"
        try:
            gate = await authenticate_and_limit(self.services, request.headers, client_ip)
        except AuthFailure as failure:
            return request_error(failure.message, failure.code, failure.status, request_id)
        except (OSError, ConnectionError, TimeoutError) as exc:  # Redis is down: answer, don't hang
            log.error("redis unavailable", extra={"error": type(exc).__name__})
            return request_error("The service is temporarily unavailable.", "SERVICE_UNAVAILABLE", 503,
                                 request_id, headers={"Retry-After": "5"})
        except Exception as exc:
            if exc.__class__.__module__.startswith("redis"):
                log.error("redis unavailable", extra={"error": type(exc).__name__})
                return request_error("The service is temporarily unavailable.", "SERVICE_UNAVAILABLE", 503,
                                     request_id, headers={"Retry-After": "5"})
            raise
        if not gate.allowed:
            return request_error(
                f"Rate limit of {gate.limit} requests a minute exceeded; retry in {gate.retry_after} s.",
                "RATE_LIMITED", 429, request_id, headers={"Retry-After": str(gate.retry_after)},
                retryAfter=gate.retry_after,
            )

        context = Context(services=self.services, principal=gate.principal, request_id=request_id,
                          client_ip=client_ip)
        status, payload = await self.run(body, context, is_get=request.method == "GET")
        return json_response(payload, status=status)

    async def _read_body(self, request: Request, request_id: str) -> dict | Response:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            return request_error(f"The request body is over {self.max_body} bytes.", "PAYLOAD_TOO_LARGE",
                                 413, request_id)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                return request_error(f"The request body is over {self.max_body} bytes.",
                                     "PAYLOAD_TOO_LARGE", 413, request_id)
            chunks.append(chunk)
        if not is_json_media_type(request.headers.get("content-type", "")):
            return request_error("Send application/json (UTF-8).", "UNSUPPORTED_MEDIA_TYPE", 415, request_id)
        try:
            body = orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError:
            return request_error("The body is not valid JSON.", "BAD_REQUEST", 400, request_id)
        if not isinstance(body, dict):
            return request_error("The body must be a JSON object (batches are not supported).",
                                 "BAD_REQUEST", 400, request_id)
        return body

    # -- one operation ------------------------------------------------------------------------

    async def run(self, body: dict, context: Context, is_get: bool = False) -> tuple[int, dict]:
        request_id = context.request_id
        query = body.get("query")
        variables = body.get("variables") or {}
        operation_name = body.get("operationName")
        extensions = body.get("extensions") or {}

        def fail(message: str, code: str, status: int = 400) -> tuple[int, dict]:
            return status, {"errors": [{"message": message, "extensions": {"code": code}}],
                            "extensions": {"requestId": request_id}}

        if not isinstance(variables, dict):
            return fail("variables must be a JSON object.", "BAD_REQUEST")
        if not isinstance(extensions, dict):
            return fail("extensions must be a JSON object.", "BAD_REQUEST")
        if operation_name is not None and not isinstance(operation_name, str):
            return fail("operationName must be a string.", "BAD_REQUEST")

        document_id = body.get("documentId")
        persisted = extensions.get("persistedQuery")
        wanted_hash = None
        if isinstance(document_id, str):
            wanted_hash = document_id.removeprefix("sha256:")
        elif isinstance(persisted, dict) and isinstance(persisted.get("sha256Hash"), str):
            wanted_hash = persisted["sha256Hash"]
        if wanted_hash is not None:
            stored = self.persisted.get(wanted_hash.lower())
            if stored is None:
                return fail("No persisted operation has this hash.", "PERSISTED_QUERY_NOT_FOUND")
            if query is not None and query != stored:
                return fail("The query does not match its hash.", "PERSISTED_QUERY_MISMATCH")
            query = stored
        elif self.persisted_only:
            return fail("Only persisted operations are accepted here; send the document's sha256.",
                        "PERSISTED_QUERY_REQUIRED")
        if not isinstance(query, str) or not query.strip():
            return fail("Send a GraphQL query.", "BAD_REQUEST")
        if len(query) > MAX_QUERY_CHARS:
            return fail(f"The query is over {MAX_QUERY_CHARS} characters.", "QUERY_TOO_LARGE")

        prepared = self._prepare(query)
        if prepared.errors:
            return 400, {"errors": [self._format_known(error) for error in prepared.errors],
                         "extensions": {"requestId": request_id}}
        operation = prepared.operation(operation_name)
        if operation is None:
            return fail("Name the operation to run (operationName).", "BAD_REQUEST")
        if is_get and operation.operation != OperationType.QUERY:
            return fail("Mutations must be sent with POST.", "METHOD_NOT_ALLOWED", 405)

        try:
            variables = {name: clean_values(value, f"${name}") for name, value in variables.items()}
        except BadText as bad:
            return fail(str(bad), "BAD_USER_INPUT")

        cost = measure(operation, prepared.fragments, variables).cost
        cost_report = {"requested": cost, "limit": self.max_cost}
        if cost > self.max_cost:
            status, payload = fail(f"The query costs {cost}; the limit is {self.max_cost}.", "QUERY_TOO_COSTLY")
            payload["extensions"]["cost"] = cost_report
            return status, payload

        started = time.perf_counter()
        result = execute(
            self.schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            executor_class=self.strawberry_schema.execution_context_class,
            hide_suggestions=self.hide_suggestions,
            operation_extensions=extensions,
        )
        if is_awaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        payload: dict[str, Any] = {"data": result.data}
        status = 200
        if result.errors:
            payload["errors"] = [self._format(error, request_id) for error in result.errors]
            if result.data is None and all(not error.path for error in result.errors):
                status = 400  # the request itself was wrong (e.g. a variable of the wrong type)
        payload["extensions"] = {"cost": cost_report, "requestId": request_id}
        log.debug("operation", extra={"operation": operation_name, "ms": round((time.perf_counter() - started) * 1000, 2)})
        return status, payload

    @staticmethod
    def _format_known(error: GraphQLError) -> dict:
        formatted = error.formatted
        formatted.setdefault("extensions", {}).setdefault("code", "GRAPHQL_VALIDATION_FAILED")
        return formatted

    def _format(self, error: GraphQLError, request_id: str) -> dict:
        original = error.original_error
        if original is None and not error.path:  # before execution: the variables do not fit
            error.extensions = {"code": "BAD_USER_INPUT", **(error.extensions or {})}
            return self._format_known(error)
        extensions = {**(getattr(original, "extensions", None) or {}), **(error.extensions or {})}
        if isinstance(original, GraphQLError) and (not error.path or "code" in extensions):
            # a bad variable (no path) or a PublicError a resolver raised. Keep the located
            # error's message: for a variable it names it ("Variable '$input' has invalid
            # value at .kind: ...") where the inner one does not.
            formatted = error.formatted
            formatted["extensions"] = {"code": "BAD_USER_INPUT", **extensions}
            return formatted
        if isinstance(original, DomainError):
            # written for clients: e.g. a bad cursor or page size on a query field
            return {"message": original.message, "path": error.path,
                    "extensions": {"code": original.code, "field": original.field}}
        # an exception in a resolver, or a broken contract such as null for a non-null field
        log.error("internal error", exc_info=original or error,
                  extra={"path": ".".join(str(p) for p in error.path or ()), "request_id": request_id})
        return {"message": "Internal server error.", "path": error.path,
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}}
