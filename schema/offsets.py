"""GraphQL types of the yearly ETS offset scope and the surrender of CERs for ETS compliance (art. 18)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from core.errors import CoreCode
from neutrality.cers import models, offsets
from neutrality.errors import OffsetCode, RegistryCode
from schema.certificates import CerSerialRangeInput
from schema.errors import MutationError, error_codes
from schema.scalars import Long

EtsOffsetScopeStatus = strawberry.enum(
    models.OffsetScopeStatus, name="EtsOffsetScopeStatus",
    description="draft (private) -> published (in force for its year, immutable) -> superseded (by a later "
                "published version of the same year: a correction).")


@strawberry.type(description="The regulator's scope of CERs usable to offset Shenzhen ETS obligations in one "
                             "compliance year (art. 18): eligible vintages, project kinds and/or methodology codes, "
                             "and the year's total in tonnes. A CER is eligible if its vintage is listed and its "
                             "project's methodology code, or that methodology's kind, is listed.")
class EtsOffsetScope:
    id: strawberry.ID
    year: int = strawberry.field(description="The compliance year.")
    version: int
    status: EtsOffsetScopeStatus
    vintages: list[int]
    project_kinds: list[str] = strawberry.field(description="Behaviour domains of projects' methodologies, e.g. "
                                                            "renewable_energy.")
    methodology_codes: list[str]
    cap_tonnes: Long = strawberry.field(description="The year's total that may be surrendered, in whole tonnes.")
    note: str
    published_at: datetime | None
    superseded_at: datetime | None
    supersedes_id: strawberry.ID | None = strawberry.field(description="The version this correction replaced.")

    @classmethod
    def from_row(cls, row: models.EtsOffsetScope) -> "EtsOffsetScope":
        return cls(id=strawberry.ID(str(row.id)), year=row.year, version=row.version,
                   status=models.OffsetScopeStatus(row.status), vintages=list(row.vintages),
                   project_kinds=list(row.project_kinds), methodology_codes=list(row.methodology_codes),
                   cap_tonnes=row.cap_tonnes, note=row.note, published_at=row.published_at,
                   superseded_at=row.superseded_at,
                   supersedes_id=strawberry.ID(str(row.supersedes_id)) if row.supersedes_id else None)


@strawberry.type(description="A compliance year's published scope and its use so far (public, art. 18 and 29).")
class EtsOffsetScopeUse:
    year: int
    scope: EtsOffsetScope = strawberry.field(description="The version in force.")
    surrendered_tonnes: Long = strawberry.field(description="Surrendered for the year so far, under any version.")
    remaining_tonnes: Long
    surrenders: int = strawberry.field(description="How many surrenders were made for the year.")

    @classmethod
    def from_row(cls, row: offsets.ScopeUse) -> "EtsOffsetScopeUse":
        return cls(year=row.year, scope=EtsOffsetScope.from_row(row.scope), surrendered_tonnes=row.surrendered_tonnes,
                   remaining_tonnes=row.remaining_tonnes, surrenders=row.surrenders)


@strawberry.type(description="CERs surrendered for Shenzhen ETS compliance (履约抵销, art. 18): public and final. "
                             "The compliance entity is a company, named with its unified social credit code.")
class EtsSurrender:
    id: strawberry.ID
    year: int = strawberry.field(description="The compliance year.")
    tonnes: Long
    serials: list[str] = strawberry.field(description="The serial ranges surrendered (SZCER-...).")
    entity_name: str
    entity_code: str = strawberry.field(description="The entity's unified social credit code (18 characters).")
    scope_id: strawberry.ID = strawberry.field(description="The scope version in force when surrendered.")
    surrendered_at: datetime

    @classmethod
    def from_row(cls, row: models.EtsSurrender) -> "EtsSurrender":
        return cls(id=strawberry.ID(str(row.id)), year=row.year, tonnes=row.tonnes, serials=offsets.serial_labels(row),
                   entity_name=row.entity_name, entity_code=row.entity_code, scope_id=strawberry.ID(str(row.scope_id)),
                   surrendered_at=row.surrendered_at)


# --- inputs ---------------------------------------------------------------------------------------------


@strawberry.input(description="A new draft version of a year's scope. A draft for a year that has a published "
                              "scope is a correction: publishing it supersedes the one in force.")
class DraftEtsOffsetScopeInput:
    year: int
    vintages: list[int]
    cap_tonnes: Long
    idempotency_key: str
    project_kinds: list[str] = strawberry.field(default_factory=list)
    methodology_codes: list[str] = strawberry.field(default_factory=list)
    note: str | None = None


@strawberry.input
class PublishEtsOffsetScopeInput:
    scope_id: strawberry.ID
    idempotency_key: str


@strawberry.input(description="Tonnes from your held CERs (not those on offer), within the year's published scope.")
class SurrenderCersForComplianceInput:
    year: int = strawberry.field(description="The compliance year whose published scope applies.")
    entity_name: str = strawberry.field(description="The compliance entity (a company), 1 to 200 characters.")
    entity_code: str = strawberry.field(description="Its unified social credit code (统一社会信用代码), 18 characters.")
    idempotency_key: str
    tonnes: Long | None = strawberry.field(default=None, description="Required unless serialRange is given.")
    project_id: strawberry.ID | None = strawberry.field(default=None, description="Only tonnes of this project.")
    vintage: int | None = strawberry.field(default=None, description="Only tonnes of this vintage.")
    serial_range: CerSerialRangeInput | None = strawberry.field(
        default=None, description="Exactly these serials (with projectId and vintage); the tonnes are its size.")


# --- payloads -------------------------------------------------------------------------------------------

DraftEtsOffsetScopeErrorCode = error_codes(
    "DraftEtsOffsetScopeErrorCode", OffsetCode.INVALID_SCOPE, RegistryCode.METHODOLOGY_NOT_PUBLISHED,
    CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class DraftEtsOffsetScopeError(MutationError):
    code: DraftEtsOffsetScopeErrorCode


@strawberry.type
class DraftEtsOffsetScopePayload:
    scope: EtsOffsetScope | None = None
    errors: list[DraftEtsOffsetScopeError] = strawberry.field(default_factory=list)


PublishEtsOffsetScopeErrorCode = error_codes(
    "PublishEtsOffsetScopeErrorCode", OffsetCode.SCOPE_NOT_DRAFT, OffsetCode.CAP_BELOW_SURRENDERED,
    OffsetCode.SCOPE_NOT_PUBLISHED, CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class PublishEtsOffsetScopeError(MutationError):
    code: PublishEtsOffsetScopeErrorCode


@strawberry.type
class PublishEtsOffsetScopePayload:
    scope: EtsOffsetScope | None = None
    errors: list[PublishEtsOffsetScopeError] = strawberry.field(default_factory=list)


SurrenderCersForComplianceErrorCode = error_codes(
    "SurrenderCersForComplianceErrorCode", OffsetCode.SCOPE_NOT_PUBLISHED, OffsetCode.VINTAGE_NOT_IN_SCOPE,
    OffsetCode.PROJECT_NOT_IN_SCOPE, OffsetCode.OVER_CAP, OffsetCode.INVALID_ENTITY_NAME,
    OffsetCode.INVALID_ENTITY_CODE, OffsetCode.SERIALS_NOT_HELD, RegistryCode.INSUFFICIENT_TONNES,
    RegistryCode.PROJECT_FROZEN, CoreCode.IDEMPOTENCY_KEY_REUSED)


@strawberry.type
class SurrenderCersForComplianceError(MutationError):
    code: SurrenderCersForComplianceErrorCode


@strawberry.type
class SurrenderCersForCompliancePayload:
    surrender: EtsSurrender | None = None
    errors: list[SurrenderCersForComplianceError] = strawberry.field(default_factory=list)
