"""The public disclosure lists (art. 29) as GraphQL types: one declaration per list
(disclosure/registry.py) gives its columns, and its rows as cells in the columns' order."""

from __future__ import annotations

import enum

import strawberry

from disclosure import REGISTRY
from disclosure.registry import Cell, DisclosureList, cell_items, cell_text

# one member per registered list: CER_PROJECTS = "cer-projects"
DisclosureListName = strawberry.enum(
    enum.Enum("DisclosureListName", {name.upper().replace("-", "_"): name for name in REGISTRY}),
    description="A public disclosure list (art. 29); its value is its name in /disclosure/<name>.")


@strawberry.type(description="A column of a disclosure list: its key and its headings.")
class DisclosureColumn:
    key: str
    heading_zh: str
    heading_en: str


@strawberry.type(description="A public disclosure list (art. 29) and where it is served besides GraphQL: a plain "
                             "HTML page and a CSV file (UTF-8 with BOM).")
class DisclosureListInfo:
    name: DisclosureListName
    title_zh: str
    title_en: str
    article: str
    description: str
    columns: list[DisclosureColumn]
    html_path: str
    csv_path: str

    @classmethod
    def of(cls, disclosure: DisclosureList) -> "DisclosureListInfo":
        return cls(name=DisclosureListName(disclosure.name), title_zh=disclosure.title_zh,
                   title_en=disclosure.title_en, article=disclosure.article, description=disclosure.description_en,
                   columns=[DisclosureColumn(key=c.key, heading_zh=c.heading_zh, heading_en=c.heading_en)
                            for c in disclosure.columns],
                   html_path=f"/disclosure/{disclosure.name}", csv_path=f"/disclosure/{disclosure.name}.csv")


@strawberry.type(description="One cell: `text` as the CSV and HTML forms show it (dates and times in Asia/Shanghai, "
                             "a list's items joined by \"; \"), `items` the list's items (one for a single value, "
                             "none when empty).")
class DisclosureCell:
    column: str
    text: str
    items: list[str]


@strawberry.type(description="One row of a disclosure list, its cells in the order of the list's columns.")
class DisclosureRow:
    cells: list[DisclosureCell]

    @classmethod
    def of(cls, row: dict[str, Cell]) -> "DisclosureRow":
        return cls(cells=[DisclosureCell(column=key, text=cell_text(value), items=cell_items(value))
                          for key, value in row.items()])
