"""The supervision audit log for the regulator (art. 30-31): the entries, filtered and paged, and a
verification of the whole hash chain."""

from __future__ import annotations

from datetime import datetime

import strawberry

from accounts.models import Role as R
from audit_log import service
from core.errors import CoreCode, DomainError
from resolvers.common import parse_optional_id
from schema import audit as t
from schema.context import Context
from schema.pagination import Connection
from schema.permissions import Allow


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise DomainError(CoreCode.INVALID, "Give the time with its zone (e.g. +08:00 or Z).", field)
    return value


@strawberry.type
class AuditQuery:
    @strawberry.field(extensions=[Allow(R.REGULATOR)],
                      description="The audit log, newest first: every act of the regulator and of reviewers. "
                                  "Filters combine; since is inclusive, until exclusive.")
    async def audit_log(self, info: strawberry.Info, first: int | None = None, after: str | None = None,
                        action: str | None = None, actor_id: strawberry.ID | None = None,
                        subject_type: str | None = None, subject_id: strawberry.ID | None = None,
                        since: datetime | None = None, until: datetime | None = None) -> Connection[t.AuditEntry]:
        ctx: Context = info.context
        async with ctx.reading() as session:
            page = await service.entries(
                session=session, first=first, after=after, action=action, actor_id=parse_optional_id(actor_id),
                subject_type=subject_type, subject_id=parse_optional_id(subject_id),
                since=_aware(since, "since"), until=_aware(until, "until"))
        return Connection.from_page(page, t.AuditEntry.from_row)

    @strawberry.field(extensions=[Allow(R.REGULATOR)],
                      description="Verify the whole audit chain now (seq without gaps, each prevHash the hash "
                                  "before, each hash its entry's) and say where it first breaks.")
    async def audit_chain_status(self, info: strawberry.Info) -> t.AuditChainStatus:
        ctx: Context = info.context
        async with ctx.reading() as session:
            status = await service.verify_chain(session=session)
        return t.AuditChainStatus.from_status(status)
