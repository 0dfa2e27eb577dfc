"""Facts about the service itself, for anyone."""

from __future__ import annotations

import strawberry
from datetime import datetime

from schema.permissions import Allow


@strawberry.type(description="What this deployment is.")
class ServiceInfo:
    name: str
    version: str
    time: datetime
    persisted_queries_only: bool


@strawberry.type
class SystemQuery:
    @strawberry.field(extensions=[Allow(anyone=True)], description="The service's name, version and clock.")
    def service(self, info: strawberry.Info) -> ServiceInfo:
        from importlib.metadata import PackageNotFoundError, version

        try:
            current = version("tanpuhui")
        except PackageNotFoundError:
            current = "dev"
        ctx = info.context
        return ServiceInfo(name="Tanpuhui 碳普惠", version=current, time=ctx.clock.now(),
                           persisted_queries_only=ctx.settings.persisted_queries_only)
