"""Methodologies for tests, the demo and benchmarks: the one place that writes a methodology row
without the filing flow.

The running service publishes a methodology only by filing an application after the experts'
review (reductions/filing.py, art. 12-14); migrations seed the figures Shenzhen published before
filing existed. Tests, `tanpuhui demo` and benchmarks need ready methodologies (and drafts or
retired ones, to test that only published ones count) without staging a review each time, so
they insert them here, as the migrations do."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from reductions.models import CalculationKind, Methodology, PublicationStatus
from reductions.service import publish_version


async def seed_methodology(
    *, session: AsyncSession, clock: Clock, code: str, name: str, behaviour_domain: str, activity_unit: str,
    factor_mg_per_unit: int, max_quantity_milli: int, effective_from: date, source_reference: str,
    status: PublicationStatus = PublicationStatus.PUBLISHED,
    calculation: CalculationKind = CalculationKind.FACTOR_PER_UNIT, is_example: bool = True,
) -> Methodology:
    """The code's next version, in `status` (published by default), numbered as filing numbers it
    (reductions.service.publish_version)."""
    return await publish_version(
        session=session, clock=clock, code=code, name=name, behaviour_domain=behaviour_domain,
        activity_unit=activity_unit, calculation=calculation, factor_mg_per_unit=factor_mg_per_unit,
        max_quantity_milli=max_quantity_milli, effective_from=effective_from, source_reference=source_reference,
        status=status, is_example=is_example)
