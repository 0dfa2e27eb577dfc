"""Methodologies, exchange rules, and operators' behaviour reports turned into point credits.

Operators never send points (art. 21): they send behaviour (activity and quantity, or a baseline
and an actual quantity); the platform computes the reduction with the methodology published for
that day, by its calculation (reductions.models.CalculationKind), and the points with the
exchange rule in force at the behaviour's time (art. 20). Methodologies are published only by
filing after the experts' review (reductions/filing.py, art. 11-14)."""

from __future__ import annotations

import enum
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import ColumnElement, Date, String, and_, column, func, or_, select, values
from sqlalchemy.ext.asyncio import AsyncSession

from accounts import service as accounts
from core.bulk import driver
from core.clock import Clock, business_date
from core.errors import CoreCode, DomainError, NotFound
from core.keyset import Page, keyset_page
from core.locks import lock_name
from measures import service as measures
from reductions.errors import ReductionCode
from reductions.models import (BehaviourReport, CalculationKind, ExchangeRule, Methodology, PublicationStatus,
                               ReportOutcome)
from scenarios import marks as scenario_marks
from scenarios.models import MarkStatus
from supervision import standing
from supervision.models import SupervisedRole
from wallets import audit, lock, read
from wallets.credit import Credit, Fraction, apply_credits
from wallets.validity import MAX_VALIDITY_YEARS, lot_expiry

MAX_BATCH = 1000
# clocks of phones and operators' servers drift; behaviour "in the future" beyond this is refused
CLOCK_SKEW = timedelta(minutes=5)
QUANTITY_DECIMALS = 3
# no behaviour is larger (and a quantity's thousandths must fit a bigint with room for factors)
MAX_QUANTITY_MILLI = 10**15
MAX_QUANTITY_CHARS = 40


class Reject(str, enum.Enum):
    NO_ACTIVE_ENTRUSTMENT = "NO_ACTIVE_ENTRUSTMENT"
    BEFORE_ENTRUSTMENT = "BEFORE_ENTRUSTMENT"
    UNKNOWN_METHODOLOGY = "UNKNOWN_METHODOLOGY"
    METHODOLOGY_NOT_PUBLISHED = "METHODOLOGY_NOT_PUBLISHED"
    NO_EXCHANGE_RULE = "NO_EXCHANGE_RULE"
    OCCURRED_IN_FUTURE = "OCCURRED_IN_FUTURE"
    OUTSIDE_ACCEPTANCE_WINDOW = "OUTSIDE_ACCEPTANCE_WINDOW"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    QUANTITY_TOO_LARGE = "QUANTITY_TOO_LARGE"
    DUPLICATE_IN_BATCH = "DUPLICATE_IN_BATCH"
    # the inputs do not fit the methodology's calculation (reductions.models.CalculationKind)
    QUANTITY_REQUIRED = "QUANTITY_REQUIRED"  # factor per unit: a quantity, and no baseline or actual
    BASELINE_AND_ACTUAL_REQUIRED = "BASELINE_AND_ACTUAL_REQUIRED"  # baseline minus actual: both, and no quantity
    # the scenario the item names (by its mark number, art. 25-27; scenarios/marks.py)
    UNKNOWN_SCENARIO = "UNKNOWN_SCENARIO"  # no mark has this number
    SCENARIO_NOT_MARKED = "SCENARIO_NOT_MARKED"  # the behaviour happened before the mark was granted
    SCENARIO_MARK_SUSPENDED = "SCENARIO_MARK_SUSPENDED"  # suspended at the behaviour's time
    SCENARIO_MARK_WITHDRAWN = "SCENARIO_MARK_WITHDRAWN"  # withdrawn at the behaviour's time
    SCENARIO_MARK_EXPIRED = "SCENARIO_MARK_EXPIRED"  # past its validity at the behaviour's time
    SCENARIO_UNRELATED = "SCENARIO_UNRELATED"  # the scenario does not record this methodology's behaviour


DAILY_CAP_REACHED = "DAILY_CAP_REACHED"


# --- methodologies -----------------------------------------------------------------------------


def parse_quantity(value: str | Decimal | int, field: str = "quantity") -> int:
    """An activity quantity in thousandths of its unit (12.4 km -> 12400). Exact, no floats.

    Bounded before any arithmetic: "1e400" or twenty nines are numbers, but no behaviour is that
    large and no database column holds them, so they are QUANTITY_TOO_LARGE, never an overflow."""
    text = str(value).strip()
    if len(text) > MAX_QUANTITY_CHARS:
        raise DomainError(ReductionCode.INVALID_QUANTITY, f"A quantity has at most {MAX_QUANTITY_CHARS} characters.",
                          field)
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        raise DomainError(ReductionCode.INVALID_QUANTITY, "The quantity is not a number.", field) from None
    if not number.is_finite():
        raise DomainError(ReductionCode.INVALID_QUANTITY, "The quantity is not a number.", field)
    if number.adjusted() >= len(str(MAX_QUANTITY_MILLI)) - 3:  # the exponent alone says it is too large
        raise DomainError(ReductionCode.QUANTITY_TOO_LARGE, "The quantity is larger than any behaviour.", field)
    milli = number.scaleb(3)
    if milli != milli.to_integral_value():
        raise DomainError(ReductionCode.INVALID_QUANTITY, f"At most {QUANTITY_DECIMALS} decimals.", field)
    if abs(milli) > MAX_QUANTITY_MILLI:
        raise DomainError(ReductionCode.QUANTITY_TOO_LARGE, "The quantity is larger than any behaviour.", field)
    return int(milli)


async def publish_version(
    *, session: AsyncSession, clock: Clock, code: str, name: str, behaviour_domain: str, activity_unit: str,
    calculation: CalculationKind, factor_mg_per_unit: int, max_quantity_milli: int, effective_from: date,
    source_reference: str, status: PublicationStatus = PublicationStatus.PUBLISHED, is_example: bool = False,
    application_id: uuid.UUID | None = None, published_by: uuid.UUID | None = None,
) -> Methodology:
    """Write the next version of `code` (published by default): versions of one code are numbered in
    the order they are written, under a lock of the code that serialises two writers. The filing of an
    application (reductions/filing.py, art. 14) and the seeding of tests and the demo
    (reductions/seeding.py) both publish through here."""
    code = code.strip().upper()
    await lock_name(session, f"methodology:{code}")
    latest = await session.scalar(select(func.max(Methodology.version)).where(Methodology.code == code))
    now = clock.now()
    methodology = Methodology(
        code=code, version=(latest or 0) + 1, name=name, behaviour_domain=behaviour_domain,
        activity_unit=activity_unit, calculation=CalculationKind(calculation).value,
        factor_mg_per_unit=factor_mg_per_unit, max_quantity_milli=max_quantity_milli, effective_from=effective_from,
        status=status.value, source_reference=source_reference, is_example=is_example, created_at=now,
        published_at=now if status != PublicationStatus.DRAFT else None, application_id=application_id)
    session.add(methodology)
    await session.flush()
    # the regulator's filing, or the system's seeding (published_by None)
    accounts.record_audit_event(session, clock, actor=published_by, action="methodology.published",
                                subject_type="methodology", subject_id=methodology.id, before=None,
                                after={"code": code, "version": methodology.version, "status": methodology.status,
                                       "effective_from": effective_from,
                                       "factor_mg_per_unit": factor_mg_per_unit},
                                application_id=application_id)
    return methodology


async def retire_methodology(*, session: AsyncSession, clock: Clock, methodology_id: uuid.UUID,
                             regulator_id: uuid.UUID | None = None) -> Methodology:
    """published -> retired. Publication itself happens only by filing an application after the
    experts' review (reductions/filing.py, art. 12-14); published figures never change, a new
    version replaces them."""
    methodology = (await session.execute(
        select(Methodology).where(Methodology.id == methodology_id).with_for_update())).scalar_one_or_none()
    if methodology is None:
        raise NotFound(message="No such methodology.", field="id")
    if methodology.status != PublicationStatus.PUBLISHED.value:
        raise DomainError(ReductionCode.INVALID_TRANSITION,
                          f"A {methodology.status} methodology cannot be retired.", "id")
    methodology.status = PublicationStatus.RETIRED.value
    methodology.retired_at = clock.now()
    await session.flush()
    accounts.record_audit_event(session, clock, actor=regulator_id, action="methodology.retired",
                                subject_type="methodology", subject_id=methodology.id,
                                before={"code": methodology.code, "version": methodology.version,
                                        "status": PublicationStatus.PUBLISHED.value},
                                after={"code": methodology.code, "version": methodology.version,
                                       "status": methodology.status})
    return methodology


async def get_methodology(*, session: AsyncSession, methodology_id: uuid.UUID) -> Methodology:
    methodology = await session.get(Methodology, methodology_id)
    if methodology is None:
        raise NotFound(message="No such methodology.", field="id")
    return methodology


async def list_methodologies(*, session: AsyncSession, include_drafts: bool) -> list[Methodology]:
    stmt = select(Methodology).order_by(Methodology.code, Methodology.version)
    if not include_drafts:
        stmt = stmt.where(Methodology.status != PublicationStatus.DRAFT.value)
    return list((await session.execute(stmt)).scalars())


def in_force_on(day: date | ColumnElement[date]) -> ColumnElement[bool]:
    """The condition that a methodology version is published and in force on `day` (a date, or a
    column of dates): effective_from <= day <= effective_to (open-ended when effective_to is null).
    The one statement of it, for reports, exchange rules and CER projects (art. 14)."""
    return and_(Methodology.status == PublicationStatus.PUBLISHED.value, Methodology.effective_from <= day,
                or_(Methodology.effective_to.is_(None), Methodology.effective_to >= day))


async def is_published_methodology(*, session: AsyncSession, clock: Clock, code: str) -> bool:
    """Whether a version of the methodology with this code is published and in force today:
    exchange rules and CER projects name only these (art. 14)."""
    found = await session.scalar(select(Methodology.id).where(
        Methodology.code == (code or "").strip().upper(), in_force_on(business_date(clock.now()))).limit(1))
    return found is not None


async def methodologies_in_force(*, session: AsyncSession,
                                 wanted: set[tuple[str, date]]) -> dict[tuple[str, date], Methodology]:
    """For each (code, day), the latest version in force that day (in_force_on), in one query;
    pairs without one are absent."""
    if not wanted:
        return {}
    pairs = values(column("code", String), column("day", Date), name="wanted").data(sorted(wanted))
    rows = await session.execute(
        select(pairs.c.code, pairs.c.day, Methodology)
        .join(Methodology, and_(Methodology.code == pairs.c.code, in_force_on(pairs.c.day)))
        .distinct(pairs.c.code, pairs.c.day).order_by(pairs.c.code, pairs.c.day, Methodology.version.desc()))
    return {(code, day): methodology for code, day, methodology in rows}


# --- exchange rules ----------------------------------------------------------------------------


async def create_exchange_rule(
    *, session: AsyncSession, clock: Clock, points: int, reduction_mg: int, daily_cap_points: int,
    acceptance_window_days: int, effective_from: datetime, validity_years: int = MAX_VALIDITY_YEARS,
    methodology_code: str | None = None, note: str | None = None, regulator_id: uuid.UUID | None = None,
) -> ExchangeRule:
    if points <= 0 or reduction_mg <= 0:
        raise DomainError(CoreCode.INVALID, "The ratio is a positive number of points per positive mg.", "points")
    if validity_years > MAX_VALIDITY_YEARS:
        raise DomainError(ReductionCode.VALIDITY_TOO_LONG, "Points are valid for at most 10 years (art. 22).",
                          "validityYears")
    if validity_years < 1:
        raise DomainError(CoreCode.INVALID, "Points are valid for at least a year.", "validityYears")
    if daily_cap_points <= 0:
        raise DomainError(CoreCode.INVALID, "The daily cap is a positive number of points.", "dailyCapPoints")
    if not 0 <= acceptance_window_days <= 366:
        raise DomainError(CoreCode.INVALID, "The acceptance window is 0 to 366 days.", "acceptanceWindowDays")
    if effective_from.tzinfo is None:
        raise DomainError(CoreCode.INVALID, "effectiveFrom needs a time zone.", "effectiveFrom")
    # the version of the Measures governing the rule's first day may allow less than 10 years (art. 33)
    longest = await measures.max_point_validity_years(session=session, day=business_date(effective_from))
    if validity_years > longest:
        raise DomainError(ReductionCode.VALIDITY_TOO_LONG,
                          f"The Measures governing {business_date(effective_from)} allow points at most {longest} "
                          "years.", "validityYears")
    code = methodology_code.strip().upper() if methodology_code else None
    if code is not None:
        known = (await session.execute(select(Methodology.id).where(Methodology.code == code).limit(1))).first()
        if known is None:
            raise DomainError(ReductionCode.UNKNOWN_METHODOLOGY, "No methodology has this code.", "methodologyCode")
        if not await is_published_methodology(session=session, clock=clock, code=code):
            raise DomainError(ReductionCode.METHODOLOGY_NOT_PUBLISHED,
                              "Rules name only published methodologies (art. 14).", "methodologyCode")
    latest = (await session.execute(select(func.max(ExchangeRule.version)))).scalar_one()
    rule = ExchangeRule(version=(latest or 0) + 1, methodology_code=code, points=points, reduction_mg=reduction_mg,
                        daily_cap_points=daily_cap_points, acceptance_window_days=acceptance_window_days,
                        validity_years=validity_years, effective_from=effective_from,
                        status=PublicationStatus.DRAFT.value, note=note, created_at=clock.now())
    session.add(rule)
    await session.flush()
    accounts.record_audit_event(session, clock, actor=regulator_id, action="exchange_rule.created",
                                subject_type="exchange_rule", subject_id=rule.id, before=None, after=_rule_facts(rule))
    return rule


def _rule_facts(rule: ExchangeRule) -> dict:
    return {"version": rule.version, "status": rule.status, "methodology_code": rule.methodology_code,
            "points": rule.points, "reduction_mg": rule.reduction_mg, "daily_cap_points": rule.daily_cap_points,
            "validity_years": rule.validity_years, "effective_from": rule.effective_from}


async def publish_exchange_rule(*, session: AsyncSession, clock: Clock, rule_id: uuid.UUID,
                                regulator_id: uuid.UUID | None = None) -> ExchangeRule:
    """A rule takes effect only forward: publishing one effective in the past would change
    points already issued for that time, so it is refused."""
    rule = (await session.execute(
        select(ExchangeRule).where(ExchangeRule.id == rule_id).with_for_update())).scalar_one_or_none()
    if rule is None:
        raise NotFound(message="No such exchange rule.", field="id")
    if rule.status != PublicationStatus.DRAFT.value:
        raise DomainError(ReductionCode.INVALID_TRANSITION, f"This rule is already {rule.status}.", "id")
    if rule.effective_from < clock.now() - CLOCK_SKEW:
        raise DomainError(ReductionCode.EFFECTIVE_IN_PAST, "A rule cannot take effect before it is published.",
                          "effectiveFrom")
    before = {"version": rule.version, "status": rule.status}
    rule.status, rule.published_at = PublicationStatus.PUBLISHED.value, clock.now()
    await session.flush()
    accounts.record_audit_event(session, clock, actor=regulator_id, action="exchange_rule.published",
                                subject_type="exchange_rule", subject_id=rule.id, before=before,
                                after=_rule_facts(rule))
    return rule


async def list_exchange_rules(*, session: AsyncSession, include_drafts: bool) -> list[ExchangeRule]:
    stmt = select(ExchangeRule).order_by(ExchangeRule.version)
    if not include_drafts:
        stmt = stmt.where(ExchangeRule.status != PublicationStatus.DRAFT.value)
    return list((await session.execute(stmt)).scalars())


def rule_in_force(rules: list[ExchangeRule], code: str, at: datetime) -> ExchangeRule | None:
    """The published rule for this methodology (else the general one) with the latest
    effective_from at or before `at`."""
    best: ExchangeRule | None = None
    for rule in rules:
        if rule.status != PublicationStatus.PUBLISHED.value or rule.effective_from > at:
            continue
        if rule.methodology_code not in (None, code):
            continue
        if best is None:
            best = rule
            continue
        specific, best_specific = rule.methodology_code is not None, best.methodology_code is not None
        if (specific, rule.effective_from, rule.version) > (best_specific, best.effective_from, best.version):
            best = rule
    return best


# --- reports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportItem:
    """One reported behaviour. A FACTOR_PER_UNIT methodology takes `quantity`; a
    BASELINE_MINUS_ACTUAL one takes `baseline_quantity` and `actual_quantity` (household
    electricity: the baseline and the actual kWh); other inputs reject the item."""

    report_id: str
    external_user_id: str
    methodology_code: str
    quantity: str | None
    occurred_at: datetime
    baseline_quantity: str | None = None
    actual_quantity: str | None = None
    # the mark number (SZCS-<year>-<4 digits>) of the scenario the behaviour happened in, if any
    scenario_mark: str | None = None


def _calculation_inputs(item: ReportItem) -> tuple[int | None, int | None, int | None]:
    """(quantity, baseline, actual) in thousandths, each None when absent; raises DomainError
    (INVALID_QUANTITY, QUANTITY_TOO_LARGE) for a malformed one. A quantity is positive; a baseline
    or an actual may be zero (a household away from home), never negative."""
    quantity = baseline = actual = None
    if item.quantity is not None:
        quantity = parse_quantity(item.quantity)
        if quantity <= 0:
            raise DomainError(ReductionCode.INVALID_QUANTITY, "A quantity is positive.", "quantity")
    if item.baseline_quantity is not None:
        baseline = parse_quantity(item.baseline_quantity, "baselineQuantity")
    if item.actual_quantity is not None:
        actual = parse_quantity(item.actual_quantity, "actualQuantity")
    if (baseline is not None and baseline < 0) or (actual is not None and actual < 0):
        raise DomainError(ReductionCode.INVALID_QUANTITY, "A baseline or actual quantity is not negative.")
    return quantity, baseline, actual


def _both_or_neither(baseline: int | None, actual: int | None) -> tuple[int | None, int | None]:
    """What a report row keeps of a baseline and an actual: both, or neither when one is missing."""
    return (baseline, actual) if baseline is not None and actual is not None else (None, None)


def calculated_quantity(calculation: str, quantity: int | None, baseline: int | None,
                        actual: int | None) -> int | Reject:
    """The thousandths of activity the factor multiplies, or why the inputs do not fit the
    calculation: the quantity itself, or max(0, baseline - actual)."""
    if calculation == CalculationKind.BASELINE_MINUS_ACTUAL.value:
        if quantity is not None or baseline is None or actual is None:
            return Reject.BASELINE_AND_ACTUAL_REQUIRED
        return max(0, baseline - actual)
    if quantity is None or baseline is not None or actual is not None:
        return Reject.QUANTITY_REQUIRED
    return quantity


class ItemStatus(str, enum.Enum):
    CREDITED = "credited"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ItemResult:
    report_id: str
    status: ItemStatus
    outcome: str  # of the stored report: credited | rejected
    reject_code: str | None = None
    points: int = 0
    reduction_mg: int = 0
    lot_id: uuid.UUID | None = None
    uncredited_reduction_mg: int = 0
    uncredited_reason: str | None = None
    expires_at: datetime | None = None


class ConcurrentDuplicate(Exception):
    """Another batch stored one of these report ids meanwhile; retrying sees it as a duplicate."""


def _id_source(count: int):
    """Random (version 4) UUIDs for `count` rows from one read of the OS's random source:
    uuid.uuid4() reads it once per id, a visible cost over a 1,000-item batch."""
    raw = os.urandom(16 * count)
    ids = (uuid.UUID(bytes=raw[i:i + 16], version=4) for i in range(0, 16 * count, 16))
    return lambda: next(ids)


def _result_from_row(row, status: ItemStatus, expires: dict | None = None) -> ItemResult:
    return ItemResult(report_id=row["report_id"], status=status, outcome=row["outcome"],
                      reject_code=row["reject_code"], points=row["points_credited"],
                      reduction_mg=row["reduction_mg"], lot_id=row["lot_id"],
                      uncredited_reduction_mg=row["uncredited_reduction_mg"],
                      uncredited_reason=row["uncredited_reason"],
                      expires_at=(expires or {}).get(row["lot_id"]))


_MARK_REFUSALS = {MarkStatus.SUSPENDED: Reject.SCENARIO_MARK_SUSPENDED, MarkStatus.WITHDRAWN: Reject.SCENARIO_MARK_WITHDRAWN,
                  MarkStatus.EXPIRED: Reject.SCENARIO_MARK_EXPIRED}


def _scenario_refusal(mark: scenario_marks.MarkFacts | None, code: str, occurred_at: datetime) -> Reject | None:
    """Why an item naming this scenario's mark is refused, or None: an unknown mark, a mark not yet
    granted, suspended, withdrawn or expired at the behaviour's time, or a scenario that does not
    record this methodology's behaviour."""
    if mark is None:
        return Reject.UNKNOWN_SCENARIO
    status = mark.status_at(occurred_at)
    if status is None:
        return Reject.SCENARIO_NOT_MARKED
    if status != MarkStatus.ACTIVE:
        return _MARK_REFUSALS[status]
    if code not in mark.methodology_codes:
        return Reject.SCENARIO_UNRELATED
    return None


async def report_behaviour(
    *, session: AsyncSession, clock: Clock, operator_id: uuid.UUID, items: list[ReportItem],
) -> list[ItemResult]:
    """Credit a batch of an operator's behaviour reports, each item on its own merits.

    Idempotent per (operator, report id): an item seen before returns its original result as a
    duplicate. Runs in the caller's transaction; raises ConcurrentDuplicate if a parallel batch
    stored one of the same report ids first (the caller retries the whole batch once)."""
    if not 1 <= len(items) <= MAX_BATCH:
        raise DomainError(ReductionCode.INVALID_BATCH, f"A batch has 1 to {MAX_BATCH} items.", "items")
    # a suspended operator reports nothing (art. 31): one primary-key probe per call, not per item
    until = await standing.suspended_until(session=session, clock=clock, account_id=operator_id,
                                           role=SupervisedRole.APP_OPERATOR)
    if until is not None:
        raise DomainError(ReductionCode.OPERATOR_SUSPENDED, f"This operator is suspended by the regulator until "
                                                              f"{until.isoformat()}; its reports are refused.", None)
    now = clock.now()
    today = business_date(now)
    conn = await driver(session)
    for index, item in enumerate(items):
        if not item.report_id.strip() or len(item.report_id) > 128:
            raise DomainError(CoreCode.INVALID, "A report id has 1 to 128 characters.", f"items.{index}.reportId")
        if not item.external_user_id.strip() or len(item.external_user_id) > 128:
            raise DomainError(CoreCode.INVALID, "An external user id has 1 to 128 characters.",
                              f"items.{index}.externalUserId")
        if item.occurred_at.tzinfo is None:
            raise DomainError(CoreCode.INVALID, "occurredAt needs a time zone.", f"items.{index}.occurredAt")

    report_ids = list(dict.fromkeys(i.report_id for i in items))
    # one probe of the (operator, report id) unique index per id: with `report_id = ANY(...)` the
    # planner, when its statistics lag behind a busy table, scans all of the operator's reports
    seen_rows = await conn.fetch(
        "SELECT b.report_id, b.outcome, b.reject_code, b.points_credited, b.reduction_mg, b.lot_id,"
        " b.uncredited_reduction_mg, b.uncredited_reason"
        " FROM unnest($2::text[]) AS r(report_id)"
        " CROSS JOIN LATERAL (SELECT * FROM behaviour_reports x WHERE x.operator_account_id = $1"
        "  AND x.report_id = r.report_id LIMIT 1) b", operator_id, report_ids)
    seen = {r["report_id"]: r for r in seen_rows}
    # a duplicate answers with its lot's expiry: one more read, only when a batch repeats credited reports
    seen_lots = [r["lot_id"] for r in seen_rows if r["lot_id"] is not None]
    seen_expiry = await read.lot_expiries(session=session, lot_ids=seen_lots) if seen_lots else {}

    fresh = [i for i in items if i.report_id not in seen]
    codes = {i.methodology_code.strip().upper() for i in fresh}
    known = set((await session.execute(select(Methodology.code).where(Methodology.code.in_(codes)).distinct())
                 ).scalars())
    in_force = await methodologies_in_force(session=session, wanted={
        (i.methodology_code.strip().upper(), business_date(i.occurred_at)) for i in fresh
        if i.methodology_code.strip().upper() in known})
    rules = (await session.execute(
        select(ExchangeRule).where(ExchangeRule.status == PublicationStatus.PUBLISHED.value))).scalars().all()
    # the scenarios the batch names, in one statement (none when no item names one)
    marks = await scenario_marks.marks_by_number(conn, {
        scenario_marks.normalise_number(i.scenario_mark) for i in fresh if i.scenario_mark is not None})
    entrustments = await accounts.entrusted_individuals(
        session=session, operator_id=operator_id, external_user_ids=list({i.external_user_id for i in items}))

    # first pass: decide each new item's fate without touching wallets
    @dataclass
    class Pending:
        item: ReportItem
        row_id: uuid.UUID
        day: date
        wallet_id: uuid.UUID | None = None
        methodology: Methodology | None = None
        rule: ExchangeRule | None = None
        quantity_milli: int = 0
        baseline_milli: int | None = None
        actual_milli: int | None = None
        reject: str | None = None
        scenario_id: uuid.UUID | None = None

    results: dict[int, ItemResult] = {}
    pending: list[tuple[int, Pending]] = []
    first_index: dict[str, int] = {}
    next_id = _id_source(len(items))
    for index, item in enumerate(items):
        if item.report_id in seen:
            results[index] = _result_from_row(seen[item.report_id], ItemStatus.DUPLICATE, seen_expiry)
            continue
        if item.report_id in first_index:
            continue  # answered with the first occurrence's result below
        first_index[item.report_id] = index
        p = Pending(item=item, row_id=next_id(), day=business_date(item.occurred_at))
        pending.append((index, p))
        code = item.methodology_code.strip().upper()
        try:
            quantity, p.baseline_milli, p.actual_milli = _calculation_inputs(item)
        except DomainError as refused:
            p.reject = Reject(refused.code)
            continue
        if item.occurred_at > now + CLOCK_SKEW:
            p.reject = Reject.OCCURRED_IN_FUTURE
            continue
        if code not in known:
            p.reject = Reject.UNKNOWN_METHODOLOGY
            continue
        p.methodology = in_force.get((code, p.day))
        if p.methodology is None:
            p.reject = Reject.METHODOLOGY_NOT_PUBLISHED
            continue
        if item.scenario_mark is not None:
            p.reject = _scenario_refusal(marks.get(scenario_marks.normalise_number(item.scenario_mark)), code,
                                         item.occurred_at)
            if p.reject is not None:
                continue
            p.scenario_id = marks[scenario_marks.normalise_number(item.scenario_mark)].scenario_id
        calculated = calculated_quantity(p.methodology.calculation, quantity, p.baseline_milli, p.actual_milli)
        if isinstance(calculated, Reject):
            p.reject = calculated
            continue
        p.quantity_milli = calculated
        # each reported figure is bounded by the methodology's largest credible quantity
        if max(quantity or 0, p.baseline_milli or 0, p.actual_milli or 0) > p.methodology.max_quantity_milli:
            p.reject = Reject.QUANTITY_TOO_LARGE
            continue
        p.rule = rule_in_force(rules, code, item.occurred_at)
        if p.rule is None:
            p.reject = Reject.NO_EXCHANGE_RULE
            continue
        if item.occurred_at < now - timedelta(days=p.rule.acceptance_window_days):
            p.reject = Reject.OUTSIDE_ACCEPTANCE_WINDOW
            continue
        entrustment = entrustments.get(item.external_user_id)
        if entrustment is None:
            p.reject = Reject.NO_ACTIVE_ENTRUSTMENT
            continue
        individual_id, entrusted_at = entrustment
        if item.occurred_at < entrusted_at - CLOCK_SKEW:
            p.reject = Reject.BEFORE_ENTRUSTMENT
            continue
        p.wallet_id = individual_id

    accepted = [p for _, p in pending if p.reject is None]
    wallet_ids = sorted({p.wallet_id for p in accepted})
    await lock.ensure_wallets(session=session, clock=clock, account_ids=wallet_ids)
    wallets = await lock.lock_wallets(session=session, account_ids=wallet_ids)

    # points already credited per (wallet, methodology, behaviour day), for the daily caps
    used: dict[tuple, int] = {}
    if accepted:
        for r in await conn.fetch(
            "SELECT wallet_id, methodology_code, behaviour_day, sum(points_credited)::bigint AS points"
            " FROM behaviour_reports WHERE wallet_id = ANY($1::uuid[]) AND behaviour_day = ANY($2::date[])"
            " AND outcome = 'credited' GROUP BY 1, 2, 3",
            wallet_ids, sorted({p.day for p in accepted}),
        ):
            used[(r["wallet_id"], r["methodology_code"], r["behaviour_day"])] = r["points"]

    credits: list[Credit] = []
    remainders: dict[uuid.UUID, Fraction] = {w: s.remainder for w, s in wallets.items()}
    zero_point_reduction: dict[uuid.UUID, int] = {}
    uncredited_reduction: dict[uuid.UUID, int] = {}
    computed: dict[uuid.UUID, dict] = {}
    expiry_by_validity: dict[int, datetime] = {}
    for p in accepted:
        m, rule = p.methodology, p.rule
        reduction_mg = p.quantity_milli * m.factor_mg_per_unit // 1000
        # exact points: quantity (milli) x factor (mg) x points / (1000 x reduction_mg)
        exact = remainders[p.wallet_id].plus(p.quantity_milli * m.factor_mg_per_unit * rule.points,
                                             1000 * rule.reduction_mg)
        whole, rest = exact.split()
        key = (p.wallet_id, m.code, p.day)
        cap_left = max(0, rule.daily_cap_points - used.get(key, 0))
        uncredited_mg = 0
        reason = None
        if whole <= cap_left:
            points = whole
            remainders[p.wallet_id] = rest
        else:
            # capped: the cap_left points come from this report's own reduction (it alone is worth
            # more than cap_left, the carry being under one point); the rest of it is uncredited,
            # and uncredited reduction never touches the carry, which stays as it was
            points = cap_left
            reason = DAILY_CAP_REACHED
            uncredited_mg = reduction_mg - cap_left * rule.reduction_mg // rule.points
        used[key] = used.get(key, 0) + points
        issue_date = today
        expires_at = expiry_by_validity.get(rule.validity_years)
        if expires_at is None:
            expires_at = expiry_by_validity[rule.validity_years] = lot_expiry(issue_date, rule.validity_years)
        credited_mg = reduction_mg - uncredited_mg
        if points > 0:
            credits.append(Credit(wallet_id=p.wallet_id, points=points, reduction_mg=credited_mg,
                                  issue_date=issue_date, expires_at=expires_at, report_row_id=p.row_id,
                                  rule_id=rule.id, operator_id=operator_id))
        else:
            zero_point_reduction[p.wallet_id] = zero_point_reduction.get(p.wallet_id, 0) + credited_mg
        if uncredited_mg:
            uncredited_reduction[p.wallet_id] = uncredited_reduction.get(p.wallet_id, 0) + uncredited_mg
        computed[p.row_id] = {"points": points, "reduction_mg": reduction_mg, "uncredited_mg": uncredited_mg,
                              "reason": reason, "expires_at": expires_at if points > 0 else None}

    lots = await apply_credits(session=session, clock=clock, credits=credits, remainders=remainders,
                               reduction_without_points=zero_point_reduction,
                               uncredited_reduction=uncredited_reduction) if wallets else {}

    rows = []
    for index, p in pending:
        c = computed.get(p.row_id)
        rows.append((
            p.row_id, p.item.report_id, p.item.external_user_id, p.wallet_id,
            p.item.methodology_code.strip().upper()[:40], p.methodology.id if p.methodology else None,
            p.quantity_milli, *_both_or_neither(p.baseline_milli, p.actual_milli), p.item.occurred_at, ReportOutcome.REJECTED.value if p.reject else ReportOutcome.CREDITED.value,
            p.reject.value if p.reject else None, p.rule.id if (p.rule and not p.reject) else None,
            c["reduction_mg"] if c else 0, c["points"] if c else 0, c["uncredited_mg"] if c else 0,
            c["reason"] if c else None, lots.get(p.row_id), p.day, p.scenario_id,
        ))
        row = rows[-1]
        results[index] = ItemResult(
            report_id=p.item.report_id, status=ItemStatus.REJECTED if p.reject else ItemStatus.CREDITED,
            outcome=row[10], reject_code=row[11], points=row[14], reduction_mg=row[13],
            lot_id=row[17], uncredited_reduction_mg=row[15], uncredited_reason=row[16],
            expires_at=c["expires_at"] if c else None)
    if rows:
        cols = list(zip(*rows))
        status = await conn.execute(
            "INSERT INTO behaviour_reports (id, report_id, external_user_id, wallet_id, methodology_code,"
            " methodology_id, quantity_milli, baseline_milli, actual_milli, occurred_at, outcome, reject_code,"
            " rule_id, reduction_mg, points_credited, uncredited_reduction_mg, uncredited_reason, lot_id,"
            " behaviour_day, scenario_id, operator_account_id, received_at)"
            " SELECT *, $21::uuid, $22::timestamptz FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[],"
            " $5::text[], $6::uuid[], $7::bigint[], $8::bigint[], $9::bigint[], $10::timestamptz[], $11::text[],"
            " $12::text[], $13::uuid[], $14::bigint[], $15::bigint[], $16::bigint[], $17::text[], $18::uuid[],"
            " $19::date[], $20::uuid[])"
            " ON CONFLICT (operator_account_id, report_id) DO NOTHING",
            *[list(c) for c in cols], operator_id, now,
        )
        if int(status.split()[-1]) != len(rows):  # "INSERT 0 <rows inserted>"
            raise ConcurrentDuplicate()

    for index, item in enumerate(items):
        if index not in results:  # a repeat of a report id earlier in the same batch
            first = results[first_index[item.report_id]]
            results[index] = ItemResult(report_id=item.report_id, status=ItemStatus.DUPLICATE, outcome=first.outcome,
                                        reject_code=first.reject_code, points=first.points,
                                        reduction_mg=first.reduction_mg, lot_id=first.lot_id,
                                        uncredited_reduction_mg=first.uncredited_reduction_mg,
                                        uncredited_reason=first.uncredited_reason, expires_at=first.expires_at)
    return [results[i] for i in range(len(items))]


# --- operator and regulator views --------------------------------------------------------------


async def list_reports(*, session: AsyncSession, operator_id: uuid.UUID, first: int | None, after: str | None,
                       outcome: str | None = None) -> Page:
    stmt = select(BehaviourReport).where(BehaviourReport.operator_account_id == operator_id)
    if outcome:
        stmt = stmt.where(BehaviourReport.outcome == outcome)
    return await keyset_page(session, stmt, keys=[BehaviourReport.received_at, BehaviourReport.id],
                             first=first, after=after, descending=True)


@dataclass(frozen=True)
class DailyAggregate:
    day: date
    methodology_code: str
    reports: int
    credited: int
    rejected: int
    points: int
    reduction_mg: int
    uncredited_reduction_mg: int
    scenario_id: uuid.UUID | None = None  # with by_scenario: the scenario the reports named (None: none)


async def operator_aggregates(*, session: AsyncSession, operator_id: uuid.UUID, since: date, until: date,
                              by_scenario: bool = False) -> list[DailyAggregate]:
    """The operator's reports per behaviour day and methodology, and with `by_scenario` per scenario too
    (the same index-ordered scan, one more grouping column)."""
    if until < since or (until - since).days > 366:
        raise DomainError(CoreCode.INVALID, "Ask for 1 to 366 days.", "until")
    conn = await driver(session)
    scenario = "scenario_id" if by_scenario else "NULL::uuid"
    rows = await conn.fetch(
        f"SELECT behaviour_day, methodology_code, {scenario} AS scenario_id, count(*) AS reports,"
        " count(*) FILTER (WHERE outcome = 'credited') AS credited,"
        " count(*) FILTER (WHERE outcome = 'rejected') AS rejected,"
        " coalesce(sum(points_credited), 0)::bigint AS points, coalesce(sum(reduction_mg), 0)::bigint AS reduction,"
        " coalesce(sum(uncredited_reduction_mg), 0)::bigint AS uncredited"
        " FROM behaviour_reports WHERE operator_account_id = $1 AND behaviour_day BETWEEN $2 AND $3"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", operator_id, since, until)
    return [DailyAggregate(r["behaviour_day"], r["methodology_code"], r["reports"], r["credited"], r["rejected"],
                           r["points"], r["reduction"], r["uncredited"], r["scenario_id"]) for r in rows]


async def totals_by_operator(*, session: AsyncSession) -> list[tuple[uuid.UUID, str, audit.Totals]]:
    """issued = outstanding + held + cancelled + expired, per reporting operator (wallets.audit),
    with the operator's name."""
    rows = await audit.totals_by_operator(session=session)
    names = await accounts.account_names(session=session, ids=[operator for operator, _ in rows])
    return [(operator, names.get(operator, ""), totals) for operator, totals in rows]
