"""The disclosure lists' three forms (art. 29): the same rows in the same order as GraphQL, CSV and
HTML, page by page; CSV with a BOM, RFC 4180 quoting and formula-safe cells, streamed; HTML without
scripts, escaped, paginated by links; an index linking every list; typed 400s; no sign-in anywhere."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import timedelta

import pytest

from accounts.models import Account, AccountRole
from core.clock import business_date
from disclosure import REGISTRY
from disclosure.registry import Column, DisclosureList, register
from tests.api.test_conventions_pagination import insert_operators
from tests.api.test_frontend_contracts import PersistedClient
from tests.conftest import START
from tests.disclosure.fixtures import (DISCLOSURE_CONTRACTS, ESCAPED_ORG, build_world, csv_rows, csv_text,
                                       graphql_rows, html_pages, html_rows)

ORGS = "approved-organisations"


async def test_every_list_shows_the_same_rows_in_the_same_order_in_all_three_forms(api):
    world = await build_world(api)
    for name in REGISTRY:
        whole = await graphql_rows(api, name, first=100)
        assert whole, name
        assert await graphql_rows(api, name, first=2) == whole, name
        assert csv_rows(await csv_text(api, name)) == whole, name
        assert html_rows(await html_pages(api, name, first=2)) == whole, name
        assert html_rows(await html_pages(api, name)) == whole, name
    columns = [c.key for c in REGISTRY["methodologies"].columns]
    versions = {(row[0], row[1]): dict(zip(columns, row)) for row in await graphql_rows(api, "methodologies")}
    today = business_date(api.services.clock.now()).isoformat()
    assert versions[("SZ-EBUS", "1")]["status"] == "已废止 retired"
    assert versions[("SZ-EBUS", "1")]["retired_at"].startswith(today)
    retired = {m["code"]: m["retiredAt"] for m in (await api.data("{ methodologies { code retiredAt } }"))["methodologies"]}
    assert retired["SZ-EBUS"] == api.services.clock.now().isoformat() and retired["SZ-METRO"] is None
    assert versions[("SZ-BIKE", "1")]["filing_reason"] == "方法学合理，数据来源可靠"
    assert versions[("SZ-BIKE", "1")]["applicant"] == ESCAPED_ORG
    projects = {row[0]: dict(zip([c.key for c in REGISTRY["cer-projects"].columns], row))
                for row in await graphql_rows(api, "cer-projects")}
    filed = projects[world.filed_code]
    assert (filed["status"], projects[world.rejected_code]["status"]) == ("已备案 filed", "不予备案 rejected")
    assert filed["issuances"].startswith(f"2025: 13 t SZCER-{world.filed_code}-2025-000000001-000000013")
    assert filed["flags"] and filed["frozen"]
    assert "草稿" not in str(projects)


async def test_a_long_list_streams_as_csv_and_pages_alike_in_every_form(api):
    """105 approved operators (more than one CSV page of 100), several sharing a name."""
    await insert_operators(api.services, 105, start=START, prefix="运营")
    async with api.services.session_factory() as session:
        async with session.begin():
            for account in (await session.execute(Account.__table__.select().limit(3))).all():
                await session.execute(Account.__table__.update().where(Account.id == account.id)
                                      .values(display_name="同名运营机构"))
            await session.execute(AccountRole.__table__.update().values(decided_at=START + timedelta(days=1)))
    whole = await graphql_rows(api, ORGS, first=100)
    assert len(whole) == 105 and whole[0][0] == "同名运营机构"
    assert whole == sorted(whole, key=lambda row: row[0]) and all(row[2] == "2026-03-03" for row in whole)
    assert await graphql_rows(api, ORGS, first=7) == whole
    content = await csv_text(api, ORGS)
    assert content.count("\r\n") == 106
    assert csv_rows(content) == whole
    pages = await html_pages(api, ORGS, first=10)
    assert len(pages) == 11 and html_rows(pages) == whole
    assert all("<script" not in page.lower() for page in pages)


async def test_csv_has_a_bom_quotes_as_rfc_4180_and_defuses_formulas(api):
    names = ['=HYPERLINK("http://evil.example","点我")', "+SUM(A1)", "-2+3", "@cmd", '绿色,"引号"公司']
    ids = await insert_operators(api.services, len(names), start=START)
    async with api.services.session_factory() as session:
        async with session.begin():
            for account_id, name in zip(ids, names):
                await session.execute(Account.__table__.update().where(Account.id == account_id)
                                      .values(display_name=name))
    response = await api.client.get(f"/disclosure/{ORGS}.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv; charset=utf-8")
    assert response.headers["content-disposition"] == f'attachment; filename="{ORGS}.csv"'
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.content.startswith(b"\xef\xbb\xbf")
    content = response.content.decode("utf-8")
    assert '"\'=HYPERLINK(""http://evil.example"",""点我"")"' in content
    assert '"绿色,""引号""公司"' in content
    parsed = list(csv.reader(io.StringIO(content[1:], newline="")))
    assert parsed[0] == [c.heading for c in REGISTRY[ORGS].columns]
    cells = {row[0] for row in parsed[1:]}
    assert cells == {"'" + names[0], "'+SUM(A1)", "'-2+3", "'@cmd", names[4]}
    assert not any(cell[:1] in ("=", "+", "-", "@") for row in parsed for cell in row)


async def test_html_pages_escape_text_run_no_script_and_read_on_a_phone(api):
    world = await build_world(api)
    index = await api.client.get("/disclosure")
    assert index.status_code == 200 and index.headers["cache-control"] == "public, max-age=300"
    for name in REGISTRY:
        assert f'href="/disclosure/{name}"' in index.text and f'href="/disclosure/{name}.csv"' in index.text
    for name in REGISTRY:
        for page in await html_pages(api, name, first=1):
            lowered = page.lower()
            assert "<script" not in lowered and "javascript:" not in lowered and " on" + "click" not in lowered
            assert page.startswith('<!doctype html><html lang="zh-Hans">') and '<span lang="en">' in page
            assert 'name="viewport"' in page
            assert "<b>&" not in page  # the operator's name is shown escaped
    page = (await api.client.get(f"/disclosure/{ORGS}?first=100"))
    assert "绿色&lt;b&gt;&amp;运营&lt;/b&gt;有限公司" in page.text
    assert page.headers["cache-control"] == "public, max-age=60"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy and "script-src" not in policy
    assert world.operator.account_id not in page.text


@pytest.mark.parametrize("query, code", [
    ("first=0", "INVALID_PAGE_SIZE"), ("first=101", "INVALID_PAGE_SIZE"), ("first=abc", "INVALID_PAGE_SIZE"),
    ("first=%EF%BC%95", "INVALID_PAGE_SIZE"), ("after=not-a-cursor", "INVALID_CURSOR"),
    ("after=" + "A" * 2000, "INVALID_CURSOR"), ("after=WyJ4Il0", "INVALID_CURSOR"),  # ["x"]: the wrong width
])
async def test_bad_parameters_get_a_typed_400_never_a_stack_trace(api, query, code):
    page = await api.client.get(f"/disclosure/{ORGS}?{query}")
    assert page.status_code == 400 and code in page.text and "Traceback" not in page.text
    assert page.headers["cache-control"] == "no-store"
    if "after" in query:
        listing = await api.client.get(f"/disclosure/{ORGS}.csv?{query}")
        assert listing.status_code == 400 and listing.json()["error"]["code"] == code


async def test_an_unknown_list_is_not_found_and_graphql_refuses_bad_pages_with_codes(api):
    assert (await api.client.get("/disclosure/nothing-here")).status_code == 404
    assert (await api.client.get("/disclosure/nothing-here.csv")).status_code == 404
    query = "query($a: String, $f: Int) { disclosureRows(name: EXPERTS, first: $f, after: $a) { edges { cursor } } }"
    bad_cursor = await api.gql(query, {"a": "bm9wZQ", "f": 5})
    assert bad_cursor["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    too_many = await api.gql(query, {"f": 101})
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID_PAGE_SIZE"


async def test_the_graphql_queries_are_public_and_run_by_hash(api):
    await build_world(api)
    client = PersistedClient(api)
    lists = (await client.run("DisclosureLists"))["disclosureLists"]
    assert [d["name"] for d in lists] == [n.upper().replace("-", "_") for n in REGISTRY]
    assert {d["csvPath"] for d in lists} == {f"/disclosure/{n}.csv" for n in REGISTRY}
    for listed in lists:
        rows = (await client.run("DisclosureRows", {"name": listed["name"], "first": 2}))["disclosureRows"]
        assert rows["edges"], listed["name"]
        assert [c["column"] for c in rows["edges"][0]["node"]["cells"]] == [c["key"] for c in listed["columns"]]
    assert client.ran == DISCLOSURE_CONTRACTS


async def test_a_declaration_is_checked_when_registered_and_when_read(services):
    async def wrong(*, session, first, after):
        from core.keyset import Page, PageItem
        return Page(items=[PageItem(cursor="c", node={"a": 1})], has_next_page=False, has_previous_page=False)

    with pytest.raises(ValueError):
        register(DisclosureList(name="experts", title_zh="重复", title_en="Twice", article="art. 29",
                                columns=(Column("a", "甲", "A"),), fetch=wrong))
    with pytest.raises(ValueError):
        DisclosureList(name="Bad Name", title_zh="坏", title_en="Bad", article="art. 29",
                       columns=(Column("a", "甲", "A"),), fetch=wrong)
    undeclared = DisclosureList(name=f"t-{uuid.uuid4().hex[:8]}", title_zh="测试", title_en="Test", article="-",
                                columns=(Column("a", "甲", "A"), Column("b", "乙", "B")), fetch=wrong)
    async with services.session_factory() as session:
        with pytest.raises(RuntimeError, match="declared"):
            await undeclared.page(session=session, first=1, after=None)
    assert re.fullmatch(r"[a-z-]+", ORGS)
