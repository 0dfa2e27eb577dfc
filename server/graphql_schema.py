"""The root schema: every area's Query and Mutation merged into one (composition, so it lives in server/)."""

from __future__ import annotations

import strawberry
from graphql import GraphQLSchema
from strawberry.tools import merge_types

from resolvers.accounts import AccountsMutation, AccountsQuery
from resolvers.audit import AuditQuery
from resolvers.certificates import CertificatesMutation, CertificatesQuery
from resolvers.disclosure import DisclosureQuery
from resolvers.mall import MallMutation, MallQuery
from resolvers.measures import MeasuresMutation, MeasuresQuery
from resolvers.offsets import OffsetsMutation, OffsetsQuery
from resolvers.market import MarketMutation, MarketQuery
from resolvers.projects import ProjectsMutation, ProjectsQuery
from resolvers.reductions import ReductionsMutation, ReductionsQuery
from resolvers.reviews import ReviewsMutation, ReviewsQuery
from resolvers.scenarios import ScenariosMutation, ScenariosQuery
from resolvers.supervision import SupervisionMutation, SupervisionQuery
from resolvers.system import SystemQuery
from resolvers.wallets import WalletsQuery

# one line per area, so areas added side by side merge cleanly
Query = merge_types("Query", (
    SystemQuery,
    AccountsQuery,
    WalletsQuery,
    ReductionsQuery,
    MallQuery,
    MarketQuery,
    ProjectsQuery,
    CertificatesQuery,
    ReviewsQuery,
    MeasuresQuery,
    DisclosureQuery,
    OffsetsQuery,
    ScenariosQuery,
    SupervisionQuery,
    AuditQuery,
))
Mutation = merge_types("Mutation", (
    AccountsMutation,
    ReductionsMutation,
    MallMutation,
    MarketMutation,
    ProjectsMutation,
    CertificatesMutation,
    ReviewsMutation,
    MeasuresMutation,
    OffsetsMutation,
    ScenariosMutation,
    SupervisionMutation,
))



def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation)


schema = build_schema()


def live_schema_sdl() -> str:
    """The SDL of the schema the code serves now (frontend_contracts/schema.graphql is its snapshot)."""
    return schema.as_str()


def executable_schema(strawberry_schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema strawberry built, which server/graphql_http.py validates and executes
    against directly (prepared documents cached per query text, limits, all suggestions hidden).

    Strawberry (0.341, the newest) has no public accessor for it: its public road is
    `Schema.execute`, which re-parses or re-validates through extension hooks (203 µs against 61 µs
    for a trivial operation, measured on the 2-core machine) and cannot hide argument and enum
    suggestions. This is the one place that reads strawberry's private attribute;
    tests/structure/test_conventions_layers.py keeps it the only one and fails loudly if strawberry renames it."""
    core = strawberry_schema._schema
    if not isinstance(core, GraphQLSchema):
        raise RuntimeError("strawberry no longer keeps its graphql-core schema where this expects it")
    return core
