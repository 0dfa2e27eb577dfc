"""The root schema: every area's Query and Mutation merged into one."""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types

from resolvers.accounts import AccountsMutation, AccountsQuery
from resolvers.system import SystemQuery

Query = merge_types("Query", (SystemQuery, AccountsQuery))
Mutation = merge_types("Mutation", (AccountsMutation,))


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation)


schema = build_schema()
