"""The public disclosure lists (信息公开, art. 29): each is declared once, here, and served three ways
from that one declaration (a public GraphQL query, CSV and a plain HTML page; resolvers/disclosure.py
and server/disclosure_http.py).

A list is a name (its address: /disclosure/<name>, /disclosure/<name>.csv), a title in Chinese and
English, its columns with their headings, and `fetch`: a keyset-paginated read of its public rows
(core/keyset.py) that returns a Page whose nodes are dicts from column key to cell. A fetch selects
public facts only (names of organisations, codes, statuses, dates, tonnes, reasons the regulator
published), never an account id, an email, a phone, an identity hash, a person's name that is not
published by law (experts' are, art. 8, 29), a credential or a note meant for the regulator; the
test tests/disclosure/test_disclosure_private.py walks every registered list in all three forms
looking for such values.

Registering a list (another package's, after a merge) is a few lines:

    from disclosure.registry import Column, DisclosureList, register

    async def _fetch(*, session, first, after):          # keyset, public rows only
        page = await keyset_page(session, select(...), keys=[...], first=first, after=after)
        return map_nodes(page, lambda row: {"code": row.code, "status": row.status})

    register(DisclosureList(name="scenarios", title_zh="碳普惠场景", title_en="Carbon-inclusion scenarios",
                            article="art. 25-29", columns=(Column("code", "编号", "Number"), ...), fetch=_fetch))

and importing the module from disclosure/lists.py (so the lists exist before the GraphQL schema is
built). Cells are str, int, date, datetime (shown in Asia/Shanghai), None, or a list of str."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Awaitable, Callable, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import BUSINESS_TZ
from core.keyset import Page, PageItem

Cell = str | int | date | datetime | list[str] | None
Row = dict[str, Cell]
NAME = re.compile(r"[a-z][a-z0-9-]{1,39}")


class Fetch(Protocol):
    def __call__(self, *, session: AsyncSession, first: int | None, after: str | None) -> Awaitable[Page]: ...


@dataclass(frozen=True)
class Column:
    key: str
    heading_zh: str
    heading_en: str

    @property
    def heading(self) -> str:
        return f"{self.heading_zh} {self.heading_en}"


@dataclass(frozen=True)
class DisclosureList:
    name: str
    title_zh: str
    title_en: str
    article: str
    columns: tuple[Column, ...]
    fetch: Fetch
    description_en: str = ""
    keys: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise ValueError(f"a disclosure list's name is lowercase letters, digits and hyphens: {self.name!r}")
        keys = tuple(c.key for c in self.columns)
        if len(set(keys)) != len(keys) or not keys:
            raise ValueError(f"{self.name}: columns need unique keys")
        object.__setattr__(self, "keys", keys)

    async def page(self, *, session: AsyncSession, first: int | None, after: str | None) -> Page:
        """One page of rows; every row has exactly the declared columns (a fetch that forgets or
        adds one is a programming error, caught here before anything is shown)."""
        page = await self.fetch(session=session, first=first, after=after)
        for item in page.items:
            if tuple(item.node) != self.keys:
                raise RuntimeError(f"{self.name}: a row has columns {tuple(item.node)}, declared {self.keys}")
        return page


REGISTRY: dict[str, DisclosureList] = {}


def register(disclosure: DisclosureList) -> DisclosureList:
    if disclosure.name in REGISTRY:
        raise ValueError(f"the disclosure list {disclosure.name!r} is registered twice")
    REGISTRY[disclosure.name] = disclosure
    return disclosure


def map_nodes(page: Page, convert: Callable[[Any], Row]) -> Page:
    """The same page with each node converted to a row (cursors unchanged)."""
    return Page(items=[PageItem(cursor=i.cursor, node=convert(i.node)) for i in page.items],
                has_next_page=page.has_next_page, has_previous_page=page.has_previous_page)


def cell_items(value: Cell) -> list[str]:
    """A cell as a list of texts: a list cell item by item, any other as one text (none when empty)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, datetime):
        return [value.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M")]
    if isinstance(value, date):
        return [value.isoformat()]
    return [str(value)]


def cell_text(value: Cell) -> str:
    """A cell as one text (a list's items joined by "; "), as CSV and HTML show it."""
    return "; ".join(cell_items(value))
