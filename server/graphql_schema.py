"""The root schema: every area's Query and Mutation merged into one (composition, so it lives in server/)."""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types

from resolvers.accounts import AccountsMutation, AccountsQuery
from resolvers.certificates import CertificatesMutation, CertificatesQuery
from resolvers.mall import MallMutation, MallQuery
from resolvers.market import MarketMutation, MarketQuery
from resolvers.projects import ProjectsMutation, ProjectsQuery
from resolvers.reductions import ReductionsMutation, ReductionsQuery
from resolvers.system import SystemQuery
from resolvers.wallets import WalletsQuery

Query = merge_types("Query", (SystemQuery, AccountsQuery, WalletsQuery, ReductionsQuery, MallQuery, MarketQuery,
                              ProjectsQuery, CertificatesQuery))
Mutation = merge_types("Mutation", (AccountsMutation, ReductionsMutation, MallMutation, MarketMutation,
                                    ProjectsMutation, CertificatesMutation))


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation)


schema = build_schema()


def live_schema_sdl() -> str:
    """The SDL of the schema the code serves now (frontend_contracts/schema.graphql is its snapshot)."""
    return schema.as_str()
