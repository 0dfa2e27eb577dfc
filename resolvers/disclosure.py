"""The public disclosure lists (art. 29) over GraphQL; no sign-in. The same declarations are served
as CSV and HTML by server/disclosure_http.py."""

from __future__ import annotations

import strawberry

from disclosure import REGISTRY
from schema import disclosure as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import Allow


@strawberry.type
class DisclosureQuery:
    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="Every public disclosure list (art. 29) with its columns and its HTML and CSV "
                                  "addresses.")
    def disclosure_lists(self) -> list[t.DisclosureListInfo]:
        return [t.DisclosureListInfo.of(d) for d in REGISTRY.values()]

    @strawberry.field(extensions=[Allow(anyone=True)],
                      description="One page of a disclosure list's rows (keyset: `first` at most 100, `after` the "
                                  "previous page's endCursor), in the order the HTML and CSV forms show them.")
    async def disclosure_rows(self, info: strawberry.Info, name: t.DisclosureListName, first: int | None = None,
                              after: str | None = None) -> Connection[t.DisclosureRow]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await REGISTRY[name.value].page(session=session, first=first, after=after)
        return Connection.from_page(page, t.DisclosureRow.of)
