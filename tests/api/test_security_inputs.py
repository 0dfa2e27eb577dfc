"""Every bad input is a clean, typed refusal that changes nothing; never INTERNAL_SERVER_ERROR (issue 8).

The walk takes every String and ID argument of every root field from the live schema (inside
input objects and lists too), fills the rest of the arguments with well-typed values, and sends
each bad string both as a variable and as a literal in the document, with a token holding every
role so that every resolver would really run."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    build_schema,
    get_named_type,
    is_leaf_type,
)

from accounts.models import Role
from accounts.security import issue_access_token
from server.graphql_schema import live_schema_sdl
from tests.api._conventions import assert_no_leak, codes, table_counts
from tests.conftest import PASSWORD, SIGN_UP, person, unique_email
from tests.wallets.test_wallet_api import REPORT, setup

LIVE = build_schema(live_schema_sdl())
BAD_STRINGS = {
    "NUL": "a\x00b",
    "only NUL": "\x00",
    "another control character": "tab\x1bescape",
    "unpaired surrogate": "x\ud800y",
    "right-to-left override": "gpj.\u202eexe",
    "left-to-right isolate": "\u2066name\u2069",
    "zero-width only": "\u200b\u200d",
    "byte-order mark and spaces only": " \ufeff ",
}


@pytest.fixture
def settings_overrides() -> dict:
    return {"rate_limit_per_minute": 100_000, "anonymous_rate_limit_per_minute": 100_000}


def _unwrap(type_):
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        type_ = type_.of_type
    return type_


def string_paths(type_, prefix: tuple) -> list[tuple]:
    named = _unwrap(type_)
    if isinstance(named, GraphQLScalarType):
        return [prefix] if named.name in ("String", "ID") else []
    if isinstance(named, GraphQLInputObjectType):
        return [path for name, field in named.fields.items() for path in string_paths(field.type, prefix + (name,))]
    return []


def sample(type_, path: tuple, bad: str, clock):
    """A well-typed value of `type_`, with `bad` at `path` (an empty path: here)."""
    if isinstance(type_, GraphQLNonNull):
        return sample(type_.of_type, path, bad, clock)
    if isinstance(type_, GraphQLList):
        return [sample(type_.of_type, path, bad, clock)]
    if isinstance(type_, GraphQLInputObjectType):
        value = {}
        for name, field in type_.fields.items():
            if path and path[0] == name:
                value[name] = sample(field.type, path[1:], bad, clock)
            elif isinstance(field.type, GraphQLNonNull):
                value[name] = sample(field.type, (), bad, clock)
        return value
    if isinstance(type_, GraphQLEnumType):
        return EnumName(next(iter(type_.values)))
    if not path and type_.name in ("String", "ID") and bad is not None:
        return bad
    return {"String": "x", "ID": str(uuid.uuid4()), "Int": 1, "Long": 1, "Boolean": False,
            "Date": clock.now().date().isoformat(), "DateTime": clock.now().isoformat()}[type_.name]


def walk(clock):
    """(operation kind, field, argument, path, the arguments' values) for every string argument."""
    for kind, root in (("query", LIVE.query_type), ("mutation", LIVE.mutation_type)):
        for field_name, field in root.fields.items():
            for arg_name, arg in field.args.items():
                for path in string_paths(arg.type, ()):
                    yield kind, field_name, field, arg_name, path


def selection(field) -> str:
    return "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"


def as_variables(kind, name, field, arg_name, path, bad, clock) -> dict:
    declared, passed, values = [], [], {}
    for other, arg in field.args.items():
        if other != arg_name and not isinstance(arg.type, GraphQLNonNull):
            continue
        declared.append(f"${other}: {arg.type}")
        passed.append(f"{other}: ${other}")
        values[other] = sample(arg.type, path if other == arg_name else (), bad if other == arg_name else None, clock)
    head = f"{kind} Walk({', '.join(declared)})" if declared else f"{kind} Walk"
    return {"query": f"{head} {{ {name}({', '.join(passed)}){selection(field)} }}", "variables": values}


class EnumName(str):
    """An enum value: written bare in a document."""


def literal(value) -> str:
    """A GraphQL literal; strings escaped as JSON escapes them (GraphQL's escapes are the same),
    so control characters and unpaired surrogates travel as \\u escapes."""
    if isinstance(value, EnumName):
        return value
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {literal(item)}" for key, item in value.items()) + "}"
    return str(value)


def as_literals(kind, name, field, arg_name, path, bad, clock) -> dict:
    passed = []
    for other, arg in field.args.items():
        if other != arg_name and not isinstance(arg.type, GraphQLNonNull):
            continue
        value = sample(arg.type, path if other == arg_name else (), bad if other == arg_name else None, clock)
        passed.append(f"{other}: {literal(value)}")
    return {"query": f"{kind} Walk {{ {name}({', '.join(passed)}){selection(field)} }}"}


async def test_every_string_argument_of_every_root_field_refuses_bad_characters(api, services, clock):
    someone = await person(api)
    every_role = frozenset(role.value for role in Role)
    token, _ = issue_access_token(secret=services.settings.secret_key, account_id=uuid.UUID(someone.account_id),
                                  kind="organisation", roles=every_role, family_id=uuid.uuid4(), now=clock.now(),
                                  ttl_seconds=3600)
    before = await table_counts(services)
    fields, walked = set(), 0
    for kind, name, field, arg_name, path in walk(clock):
        fields.add(name)
        for label, bad in BAD_STRINGS.items():
            for build in (as_variables, as_literals):
                body = build(kind, name, field, arg_name, path, bad, clock)
                # JSON with \u escapes: an unpaired surrogate cannot be sent as UTF-8
                response = await api.post(content=json.dumps(body).encode(), token=token)
                where = f"{name}({arg_name}.{'.'.join(path)}) {label} as {build.__name__}"
                assert response.status_code == 400, (where, response.status_code, response.text[:300])
                # the JSON parser and GraphQL's lexer themselves refuse an unpaired surrogate escape
                expected = "BAD_USER_INPUT" if label != "unpaired surrogate" else (
                    "BAD_REQUEST" if build is as_variables else "GRAPHQL_PARSE_FAILED")
                assert codes(response.json()) == [expected], (where, response.text[:300])
                assert_no_leak(response)
                walked += 1
    assert await table_counts(services) == before
    # the walk reached every root field that takes a string somewhere
    taking_strings = {name for _, name, *_ in walk(clock)}
    assert fields == taking_strings and len(fields) > 40, len(fields)
    assert walked == len(list(walk(clock))) * len(BAD_STRINGS) * 2


async def test_a_refusal_names_the_variable_and_the_field(api):
    response = await api.post({"query": SIGN_UP, "variables": {"input": {
        "kind": "PERSON", "displayName": "王\x00小明", "email": unique_email(), "password": PASSWORD}}})
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "$input.displayName contains a control character (such as NUL)."


async def test_text_is_stored_in_nfc(api):
    decomposed = "Zoe\u0301 Cafe\u0301"  # e + combining acute accent
    body = await api.data(SIGN_UP, {"input": {"kind": "PERSON", "displayName": decomposed, "email": unique_email(),
                                               "password": PASSWORD}})
    assert body["signUp"]["account"]["displayName"] == "Zo\u00e9 Caf\u00e9"
    literal = ('mutation { signUp(input: {kind: PERSON, displayName: "Rene\\u0301", email: "%s", password: "%s"})'
               ' { account { displayName } errors { code } } }') % (unique_email(), PASSWORD)
    assert (await api.data(literal))["signUp"]["account"]["displayName"] == "Ren\u00e9"


async def test_tabs_and_new_lines_are_text(api):
    body = await api.data(SIGN_UP, {"input": {"kind": "ORGANISATION", "displayName": "深圳\t绿色", "email": unique_email(),
                                               "password": PASSWORD, "applyFor": ["MERCHANT"],
                                               "applicationNote": "第一行\r\n第二行"}})
    assert body["signUp"]["errors"] == []


async def test_a_report_item_with_an_absurd_quantity_is_rejected_alone(api, clock):
    reg, key, someone, operator = await setup(api, clock)
    at = (clock.now() - timedelta(minutes=5)).isoformat()
    quantities = {"huge-exponent": "1e400", "twenty-nines": "99999999999999999999", "long": "9" * 5000,
                  "tiny-exponent": "1e-400", "big-but-fine": "12.4", "exponent-overflow": "1e999999999999"}
    items = [{"reportId": report_id, "externalUserId": "u-381", "methodologyCode": "SZ-METRO", "quantity": quantity,
              "occurredAt": at} for report_id, quantity in quantities.items()]
    body = await api.data(REPORT, {"input": {"items": items}}, api_key=key)
    assert body["reportBehaviour"]["errors"] == []
    results = {r["reportId"]: (r["status"], r["rejectCode"], r["points"]) for r in body["reportBehaviour"]["results"]}
    assert results == {
        "huge-exponent": ("REJECTED", "QUANTITY_TOO_LARGE", 0),
        "twenty-nines": ("REJECTED", "QUANTITY_TOO_LARGE", 0),
        "long": ("REJECTED", "INVALID_QUANTITY", 0),
        "tiny-exponent": ("REJECTED", "INVALID_QUANTITY", 0),
        "big-but-fine": ("CREDITED", None, 58),
        "exponent-overflow": ("REJECTED", "QUANTITY_TOO_LARGE", 0),
    }
    wallet = await api.data("{ myWallet { balance } }", token=someone.token)
    assert wallet["myWallet"]["balance"] == 58


@pytest.mark.parametrize("header", [
    {"X-API-Key": "tph_\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00_secret"},
    {"X-API-Key": "tph_zzzzzzzzzzzz_secret"},
    {"X-API-Key": b"tph_0123456789ab_" + b"\xe9" * 30},  # Latin-1 bytes, as a header may carry
    {"Authorization": "Bearer \x00"},
])
async def test_a_malformed_credential_is_a_clean_401(api, services, header):
    before = await table_counts(services)
    response = await api.post({"query": "{ service { name } }"}, headers=header)
    assert response.status_code == 401, response.text
    assert codes(response.json())[0] in ("INVALID_API_KEY", "INVALID_TOKEN")
    assert_no_leak(response)
    assert await table_counts(services) == before
