"""The public disclosure lists (art. 29) as plain web pages and CSV files, for the government website
to link to; no sign-in, no JavaScript. Each list is declared once (disclosure/registry.py) and served
here and over GraphQL (resolvers/disclosure.py) from that declaration.

- GET /disclosure                 the index: every list, its HTML page and its CSV file;
- GET /disclosure/<name>          one page of the list as a server-rendered table (`first` rows, at
                                  most 100, from the keyset cursor `after`), with links to the next
                                  page and back to the first; readable on a phone (each row becomes a
                                  card with its headings); every text escaped;
- GET /disclosure/<name>.csv      the whole list (or the rest of it from `after`): UTF-8 with a BOM (so Excel reads the Chinese),
                                  RFC 4180 quoting and CRLF line ends, a cell starting with = + - @
                                  (or a tab or carriage return) prefixed with ' so no spreadsheet takes
                                  it for a formula; streamed a page of 100 rows at a time, each page
                                  read in its own short session.

Answers are `Cache-Control: public, max-age=60` (the index 300). A bad `first` or `after` is a typed
400 (`INVALID_PAGE_SIZE`, `INVALID_CURSOR`: JSON for the CSV address, an HTML page for the HTML one),
an unknown list 404. They count against the anonymous per-IP rate limit, like the certificate pages."""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
from typing import AsyncIterator
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from core.errors import CoreCode, DomainError
from core.keyset import MAX_PAGE_SIZE, Page
from disclosure import REGISTRY
from disclosure.registry import Cell, DisclosureList, cell_items, cell_text
from server.certificates_http import _limited

HTML_PAGE_SIZE = 50
MAX_CURSOR = 1_000
BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CACHE = "public, max-age=60"
INDEX_CACHE = "public, max-age=300"

STYLE = ("body{font-family:system-ui,sans-serif;margin:1rem;line-height:1.45;color:#111}"
         "h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}"
         "th,td{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;vertical-align:top}"
         "thead th{background:#f3f3f3}td ul{margin:0;padding-left:1.1rem}.wrap{overflow-x:auto}"
         "nav a{display:inline-block;margin:.5rem 1rem .5rem 0;padding:.4rem .7rem;border:1px solid #888}"
         "@media (max-width:640px){thead{display:none}table,tbody,tr,td{display:block;width:auto}"
         "tr{border:1px solid #999;margin:0 0 .8rem}td{border:0;border-bottom:1px solid #eee}"
         "td::before{content:attr(data-label);display:block;font-weight:bold;font-size:.85rem;color:#444}}")
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


def e(value: object) -> str:
    return html.escape(str(value), quote=True)


# --- CSV ---------------------------------------------------------------------------------------------


def safe_csv_cell(text: str) -> str:
    """A text a spreadsheet will show as text: one starting like a formula gets a leading '."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows([[safe_csv_cell(cell) for cell in row] for row in rows])
    return buffer.getvalue()


def csv_rows(page: Page) -> list[list[str]]:
    return [[cell_text(value) for value in item.node.values()] for item in page.items]


# --- HTML --------------------------------------------------------------------------------------------


def _document(title: str, body: str) -> str:
    return ("<!doctype html><html lang=\"zh-Hans\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>")


def _bilingual(zh: str, en: str) -> str:
    return f"{e(zh)} <span lang=\"en\">{e(en)}</span>"


def _cell_html(value: Cell) -> str:
    items = cell_items(value)
    if isinstance(value, list):
        return "<ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>" if items else ""
    return e(items[0]) if items else ""


def list_page(disclosure: DisclosureList, page: Page, first: int) -> str:
    heads = "".join(f"<th scope=\"col\">{e(c.heading_zh)}<br><span lang=\"en\">{e(c.heading_en)}</span></th>"
                    for c in disclosure.columns)
    labels = [e(c.heading) for c in disclosure.columns]
    body_rows = "".join(
        "<tr>" + "".join(f"<td data-label=\"{label}\">{_cell_html(value)}</td>"
                         for label, value in zip(labels, item.node.values())) + "</tr>"
        for item in page.items)
    if not page.items:
        body_rows = f"<tr><td colspan=\"{len(disclosure.columns)}\">暂无记录 <span lang=\"en\">Nothing listed</span></td></tr>"
    links = []
    if page.has_previous_page:
        links.append(f"<a href=\"/disclosure/{e(disclosure.name)}?{e(urlencode({'first': first}))}\">"
                     f"{_bilingual('第一页', 'First page')}</a>")
    if page.has_next_page:
        query = urlencode({"first": first, "after": page.end_cursor})
        links.append(f"<a rel=\"next\" href=\"/disclosure/{e(disclosure.name)}?{e(query)}\">"
                     f"{_bilingual('下一页', 'Next page')}</a>")
    body = (f"<p><a href=\"/disclosure\">{_bilingual('信息公开', 'All disclosure lists')}</a></p>"
            f"<h1>{_bilingual(disclosure.title_zh, disclosure.title_en)}</h1>"
            f"<p lang=\"en\">{e(disclosure.description_en)} ({e(disclosure.article)})</p>"
            f"<p>{_bilingual('时间均为北京时间', 'Times are China Standard Time (UTC+8).')}</p>"
            f"<p><a href=\"/disclosure/{e(disclosure.name)}.csv\">{_bilingual('下载 CSV', 'Download CSV')}</a></p>"
            f"<div class=\"wrap\"><table><thead><tr>{heads}</tr></thead><tbody>{body_rows}</tbody></table></div>"
            f"<nav>{' '.join(links)}</nav>")
    return _document(f"{disclosure.title_zh} {disclosure.title_en}", body)


def index_page() -> str:
    items = "".join(
        f"<li><a href=\"/disclosure/{e(d.name)}\">{_bilingual(d.title_zh, d.title_en)}</a> ({e(d.article)}) "
        f"· <a href=\"/disclosure/{e(d.name)}.csv\">CSV</a><br><span lang=\"en\">{e(d.description_en)}</span></li>"
        for d in REGISTRY.values())
    body = (f"<h1>{_bilingual('深圳市碳普惠信息公开', 'Shenzhen carbon inclusion: public disclosure')}</h1>"
            f"<p>{_bilingual('《深圳市碳普惠管理办法》第二十九条', 'Art. 29 of the Shenzhen Carbon Inclusion Measures')}</p>"
            f"<ul>{items}</ul>")
    return _document("碳普惠信息公开 Disclosure", body)


def _error_page(error: DomainError, disclosure: DisclosureList) -> HTMLResponse:
    body = (f"<h1>{_bilingual('请求有误', 'Bad request')}</h1><p><code>{e(error.code)}</code> "
            f"<span lang=\"en\">{e(error.message)}</span></p>"
            f"<p><a href=\"/disclosure/{e(disclosure.name)}\">{_bilingual('回到第一页', 'Back to the first page')}</a></p>")
    return HTMLResponse(_document("400", body), status_code=400, headers={"Cache-Control": "no-store",
                                                                         "Content-Security-Policy": CSP})


def _error_json(error: DomainError) -> JSONResponse:
    return JSONResponse({"error": {"code": error.code, "field": error.field, "message": error.message}},
                        status_code=400, headers={"Cache-Control": "no-store"})


def _parameters(request: Request) -> tuple[int, str | None]:
    """`first` and `after` from the query string, as typed errors when wrong."""
    raw_first = request.query_params.get("first")
    first = HTML_PAGE_SIZE
    if raw_first is not None:
        if not raw_first.isascii() or not raw_first.isdigit() or not 1 <= int(raw_first) <= MAX_PAGE_SIZE:
            raise DomainError(CoreCode.INVALID_PAGE_SIZE, f"first must be between 1 and {MAX_PAGE_SIZE}.", "first")
        first = int(raw_first)
    after = request.query_params.get("after") or None
    if after is not None and len(after) > MAX_CURSOR:
        raise DomainError(CoreCode.INVALID_CURSOR, "The cursor is not valid for this list.", "after")
    return first, after


def disclosure_routes(services) -> list[Route]:
    async def read(disclosure: DisclosureList, first: int, after: str | None) -> Page:
        async with services.session_factory() as session:
            return await disclosure.page(session=session, first=first, after=after)

    async def index(request: Request) -> Response:
        refused = await _limited(services, request)
        if refused is not None:
            return refused
        return HTMLResponse(index_page(), headers={"Cache-Control": INDEX_CACHE, "Content-Security-Policy": CSP})

    async def admitted(request: Request) -> tuple[DisclosureList | None, Response | None]:
        """The list asked for, or the answer instead: rate limited (429) or no such list (404)."""
        refused = await _limited(services, request)
        if refused is not None:
            return None, refused
        disclosure = REGISTRY.get(request.path_params["name"])
        if disclosure is None:
            return None, JSONResponse({"error": {"code": "NOT_FOUND", "field": None, "message": "No such list."}},
                                      status_code=404)
        return disclosure, None

    async def html_list(request: Request) -> Response:
        disclosure, refused = await admitted(request)
        if disclosure is None:
            return refused
        try:
            first, after = _parameters(request)
            page = await read(disclosure, first, after)
        except DomainError as error:
            return _error_page(error, disclosure)
        return HTMLResponse(list_page(disclosure, page, first),
                            headers={"Cache-Control": CACHE, "Content-Security-Policy": CSP})

    async def csv_list(request: Request) -> Response:
        disclosure, refused = await admitted(request)
        if disclosure is None:
            return refused
        try:
            _, after = _parameters(request)
            first_page = await read(disclosure, MAX_PAGE_SIZE, after)
        except DomainError as error:
            return _error_json(error)

        async def stream() -> AsyncIterator[bytes]:
            page = first_page
            yield (BOM + csv_lines([[c.heading for c in disclosure.columns]]) + csv_lines(csv_rows(page))).encode()
            while page.has_next_page:
                page = await read(disclosure, MAX_PAGE_SIZE, page.end_cursor)
                yield csv_lines(csv_rows(page)).encode()

        return StreamingResponse(stream(), media_type="text/csv; charset=utf-8; header=present", headers={
            "Cache-Control": CACHE, "Content-Disposition": f"attachment; filename=\"{disclosure.name}.csv\""})

    return [Route("/disclosure", index, methods=["GET"]),
            Route("/disclosure/{name}.csv", csv_list, methods=["GET"]),
            Route("/disclosure/{name}", html_list, methods=["GET"])]
