"""Relay-style connections over keyset pages (core/keyset.py): `first` (at most 100) and `after`."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

import strawberry

from core.keyset import Page

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: Page, convert: Callable[[object], T]) -> "Connection[T]":
        return cls(
            edges=[Edge(cursor=item.cursor, node=convert(item.node)) for item in page.items],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
        )
