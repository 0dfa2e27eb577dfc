"""Keyset connections (core/keyset.py, schema/pagination.py): at most 100 a page, opaque stable
cursors, every row exactly once, no repeats or skips when rows arrive between pages.

The 100+ rows are inserted with the ORM (signing 105 operators up through the API would cost
105 argon2 hashes): many share a created_at, so the id tie-breaker is exercised."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from accounts.models import Account, AccountRole, Entrustment
from tests.api._conventions import assert_no_leak, codes
from tests.conftest import START, person, regulator

OPERATORS = """
query Ops($first: Int, $after: String) {
  appOperators(first: $first, after: $after) {
    edges { cursor node { id displayName } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def insert_operators(services, count: int, *, start, prefix: str = "运营", same_time_groups: int = 3,
                           role_status: str = "active") -> list[uuid.UUID]:
    """`count` organisations holding the app-operator role; `same_time_groups` rows share each created_at."""
    ids = []
    async with services.session_factory() as session:
        async with session.begin():
            for i in range(count):
                created = start + timedelta(seconds=i // same_time_groups)
                account = Account(id=uuid.uuid4(), kind="organisation", display_name=f"{prefix}{i:03d}",
                                  email=f"op-{uuid.uuid4().hex}@example.org", password_hash="not-a-login",
                                  created_at=created)
                session.add(account)
                ids.append(account.id)
            await session.flush()
            for account_id, i in zip(ids, range(count)):
                session.add(AccountRole(account_id=account_id, role="app_operator", status=role_status,
                                        created_at=start + timedelta(seconds=i // same_time_groups)))
    return ids


async def expected_order(services) -> list[str]:
    async with services.session_factory() as session:
        rows = (await session.execute(
            select(Account.id).join(AccountRole, AccountRole.account_id == Account.id)
            .where(AccountRole.role == "app_operator", AccountRole.status == "active")
            .order_by(Account.created_at, Account.id))).scalars().all()
    return [str(r) for r in rows]


async def page(api, first=None, after=None, query=OPERATORS, field="appOperators", token=None) -> dict:
    response = await api.post({"query": query, "variables": {"first": first, "after": after}}, token=token)
    body = response.json()
    assert "errors" not in body, body
    return body["data"][field]


async def walk(api, first: int, **kwargs) -> list[str]:
    seen, after, pages = [], None, 0
    while True:
        result = await page(api, first, after, **kwargs)
        pages += 1
        assert len(result["edges"]) <= first
        assert result["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [edge["node"]["id"] for edge in result["edges"]]
        if result["edges"]:
            assert result["pageInfo"]["startCursor"] == result["edges"][0]["cursor"]
            assert result["pageInfo"]["endCursor"] == result["edges"][-1]["cursor"]
        if not result["pageInfo"]["hasNextPage"]:
            return seen
        after = result["pageInfo"]["endCursor"]
        assert pages < 200


@pytest.fixture
def settings_overrides() -> dict:
    return {"anonymous_rate_limit_per_minute": 100_000, "rate_limit_per_minute": 100_000}


@pytest.fixture
async def operators(services) -> list[uuid.UUID]:
    return await insert_operators(services, 105, start=START - timedelta(days=30))


async def page_error(api, first=None, after=None, query=OPERATORS, token=None) -> dict:
    response = await api.post({"query": query, "variables": {"first": first, "after": after}}, token=token)
    assert response.status_code in (200, 400), response.text
    assert_no_leak(response)
    body = response.json()
    assert body["data"] is None
    return body


async def test_page_size_is_capped_at_100(api, operators):
    for bad in (101, 1000, 0, -1):
        body = await page_error(api, first=bad)
        assert codes(body) == ["INVALID_PAGE_SIZE"], (bad, body)
        assert body["errors"][0]["extensions"]["field"] == "first"
    full = await page(api, 100)
    assert len(full["edges"]) == 100 and full["pageInfo"]["hasNextPage"] is True
    rest = await page(api, 100, full["pageInfo"]["endCursor"])
    assert len(rest["edges"]) == 5 and rest["pageInfo"]["hasNextPage"] is False
    default = await page(api)
    assert len(default["edges"]) == 20


@pytest.mark.parametrize("first", [1, 7, 100])
async def test_paging_walks_every_row_once_in_a_stable_order(api, services, operators, first):
    order = await expected_order(services)
    assert len(order) == 105
    seen = await walk(api, first)
    assert seen == order
    assert await walk(api, first) == seen  # the same order every time


async def test_rows_inserted_between_pages_cause_no_repeats_or_skips(api, services, operators):
    original = await expected_order(services)
    first_pages = []
    result = await page(api, 10)
    first_pages += [e["node"]["id"] for e in result["edges"]]
    result = await page(api, 10, result["pageInfo"]["endCursor"])
    first_pages += [e["node"]["id"] for e in result["edges"]]
    cursor = result["pageInfo"]["endCursor"]

    # new operators arrive: some sort before the cursor, some after every existing row,
    # and some share the created_at of the row at the cursor
    earlier = await insert_operators(services, 4, start=START - timedelta(days=60), prefix="早")
    later = await insert_operators(services, 4, start=START, prefix="晚")
    async with services.session_factory() as session:
        at_cursor = (await session.execute(select(Account.created_at).where(
            Account.id == uuid.UUID(first_pages[-1])))).scalar_one()
    tied = await insert_operators(services, 6, start=at_cursor, prefix="同", same_time_groups=6)

    rest = []
    while True:
        result = await page(api, 10, cursor)
        rest += [e["node"]["id"] for e in result["edges"]]
        if not result["pageInfo"]["hasNextPage"]:
            break
        cursor = result["pageInfo"]["endCursor"]
    seen = first_pages + rest
    assert len(seen) == len(set(seen)), "a row was repeated"
    assert set(original) <= set(seen), "an existing row was skipped"
    assert [i for i in seen if i in set(original)] == original
    assert not {str(i) for i in earlier} & set(seen)  # sorted before the cursor: not in this walk
    assert set(seen[-4:]) == {str(i) for i in later}  # sorted after everything: at the end
    # exactly: the pages already read, then every row (old or new) that sorts after the cursor row
    final = await expected_order(services)
    assert rest == final[final.index(first_pages[-1]) + 1:]
    # rows tied with the cursor row come after it exactly when their id is greater
    last_id = uuid.UUID(first_pages[-1])
    assert {str(i) for i in tied if i > last_id} <= set(rest)
    assert not {str(i) for i in tied if i < last_id} & set(seen)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


MALFORMED_CURSORS = [
    "not a cursor!!",
    "",
    b64(b"not json"),
    b64(orjson.dumps({"a": 1})),
    b64(orjson.dumps([["t", "2026-01-01T00:00:00+00:00"]])),  # wrong width
    b64(orjson.dumps([1, 2])),  # right width, wrong types
    b64(orjson.dumps(["2026-01-01", "abc"])),
    b64(orjson.dumps([["t", "yesterday"], ["u", str(uuid.uuid4())]])),
    b64(orjson.dumps([["t", "2026-01-01T00:00:00+00:00"], ["u", "not-a-uuid"]])),
    b64(orjson.dumps([["t", "2026-01-01T00:00:00+00:00"], 12345])),
    b64(orjson.dumps([["u", str(uuid.uuid4())], ["t", "2026-01-01T00:00:00+00:00"]])),  # swapped
    b64(orjson.dumps([["t", "2026-01-01T00:00:00"], ["u", str(uuid.uuid4())]])),  # no time zone
    b64(orjson.dumps([["t", "2026-01-01T00:00:00+00:00"], "\u0000"])),
    b64(orjson.dumps([["d", "2026-01-01"], ["u", str(uuid.uuid4())]])),
    b64(orjson.dumps([["t", "99999-01-01T00:00:00+00:00"], ["u", str(uuid.uuid4())]])),
    b64(orjson.dumps([True, None])),
    "A" * 5000,
]


async def test_malformed_cursors_are_invalid_cursor(api, operators):
    for cursor in MALFORMED_CURSORS:
        body = await page_error(api, 5, cursor)
        assert codes(body) == ["INVALID_CURSOR"], (cursor, body)
        assert body["errors"][0]["extensions"]["field"] == "after"


async def test_a_well_formed_cursor_past_the_end_is_an_empty_page(api, operators):
    cursor = b64(orjson.dumps([["t", "2100-01-01T00:00:00+00:00"], ["u", str(uuid.uuid4())]]))
    result = await page(api, 5, cursor)
    assert result["edges"] == [] and result["pageInfo"]["hasNextPage"] is False


ROLE_APPLICATIONS = """
query Apps($first: Int, $after: String) {
  roleApplications(status: ACTIVE, first: $first, after: $after) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def test_role_applications_page_for_the_regulator(api, services, operators):
    reg = await regulator(api)
    async with services.session_factory() as session:
        order = [str(i) for i in (await session.execute(
            select(AccountRole.id).where(AccountRole.role == "app_operator", AccountRole.status == "active")
            .order_by(AccountRole.created_at, AccountRole.id))).scalars().all()]
    assert len(order) == 105
    assert await walk(api, 40, query=ROLE_APPLICATIONS, field="roleApplications", token=reg.token) == order
    body = await page_error(api, 101, query=ROLE_APPLICATIONS, token=reg.token)
    assert codes(body) == ["INVALID_PAGE_SIZE"]
    body = await page_error(api, 5, "garbage", query=ROLE_APPLICATIONS, token=reg.token)
    assert codes(body) == ["INVALID_CURSOR"]


MY_ENTRUSTMENTS = """
query Mine($first: Int, $after: String) {
  myEntrustments(first: $first, after: $after) {
    edges { cursor node { id operator { id } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def test_newest_first_lists_walk_every_row_once(api, services, operators):
    """myEntrustments pages newest first (descending keys)."""
    someone = await person(api)
    async with services.session_factory() as session:
        async with session.begin():
            for i, operator_id in enumerate(operators):
                session.add(Entrustment(individual_account_id=uuid.UUID(someone.account_id),
                                        operator_account_id=operator_id, external_user_id=f"u{i}",
                                        status="active", agreement_version="v1",
                                        created_at=START - timedelta(minutes=i // 4)))
    async with services.session_factory() as session:
        order = [str(i) for i in (await session.execute(
            select(Entrustment.id).order_by(Entrustment.created_at.desc(), Entrustment.id.desc()))).scalars().all()]
    assert len(order) == 105
    assert await walk(api, 9, query=MY_ENTRUSTMENTS, field="myEntrustments", token=someone.token) == order
    body = await page_error(api, 5, b64(orjson.dumps([1, 2])), query=MY_ENTRUSTMENTS, token=someone.token)
    assert codes(body) == ["INVALID_CURSOR"]
