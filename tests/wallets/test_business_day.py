"""The business day is the Asia/Shanghai date (UTC+8) at every hour, not the UTC date.

The suite's clock starts at 09:00 in Shanghai (01:00 UTC), when the Shanghai and the UTC dates
agree, so a rule that took its date in UTC would go unseen there. Every rule here that takes a
date from the clock runs at moments on both sides of 00:00 Shanghai (16:00 UTC) and of 08:00
Shanghai (00:00 UTC), and each asserts the exact date. Between 00:00 and 08:00 Shanghai the UTC
date is the day before; from 08:00 on both agree again. Domain-level, so the cases stay cheap."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from core.errors import DomainError
from mall import service as mall
from core.documents import Document
from neutrality.cers import projects, verification
from neutrality.cers.notice import notices_of
from neutrality.retirement.certificates import Signer
from reductions.service import ItemStatus, ReportItem
from tests.neutrality.certificate_fixtures import holding, retire
from tests.wallets.fixtures import make_world, publish_rule, report
from tests.mall.fixtures import make_listing, make_merchant, redeem, scalar
from tests.neutrality.fixtures import PV_METHODOLOGY, accounts, commissioned_project, published_methodology
from wallets import read

UTC = timezone.utc
SHANGHAI = ZoneInfo("Asia/Shanghai")  # stated here, not taken from the code under test


def shanghai(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """A wall-clock time in Shanghai, as the UTC moment it is."""
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


def around(utc_day: date) -> list:
    """Four moments of one UTC day's Shanghai evening and the next Shanghai morning, each with the
    Shanghai date it falls on. The UTC date is `utc_day` for the first three."""
    after = utc_day + timedelta(days=1)
    return [
        pytest.param(datetime.combine(utc_day, time(15, 59), tzinfo=UTC), utc_day, id="23:59-shanghai"),
        pytest.param(datetime.combine(utc_day, time(16, 0), tzinfo=UTC), after, id="00:00-shanghai"),
        pytest.param(datetime.combine(utc_day, time(23, 59), tzinfo=UTC), after, id="07:59-shanghai"),
        pytest.param(datetime.combine(after, time(0, 0), tzinfo=UTC), after, id="08:00-shanghai"),
    ]


# Monday 2 March 2026 (UTC) into Tuesday 3 March in Shanghai
MOMENTS = around(date(2026, 3, 2))
# New Year's Eve 2026 (UTC) into 2027 in Shanghai: the year changes with the date
NEW_YEAR = around(date(2026, 12, 31))


# --- points: the lot's issue date and validity ------------------------------------------------------


@pytest.mark.parametrize("moment, day", MOMENTS)
async def test_a_credit_is_issued_on_the_shanghai_date_and_keeps_its_whole_validity(services, clock, moment, day):
    """A lot issued on Shanghai date D is usable through the day before D's anniversary: a credit
    between 00:00 and 08:00 Shanghai loses no day of validity to the UTC date."""
    clock.set(moment)
    world = await make_world(services, people=1)
    await publish_rule(services, validity_years=1)
    [credited] = await report(services, world.operator_id, [ReportItem("r", "u-0", "SZ-METRO", "25", moment)])
    assert credited.status == ItemStatus.CREDITED and credited.points == 117
    anniversary = day.replace(year=day.year + 1)
    expires_at = shanghai(anniversary)  # 00:00 Shanghai on the anniversary
    assert credited.expires_at == expires_at
    wallet = world.people["u-0"]
    async with services.session_factory() as session:
        [lot] = (await read.list_lots(session=session, account_id=wallet, first=10, after=None)).items
    assert (lot.node.issue_date, lot.node.expires_at) == (day, expires_at)

    # the last usable minute, shown as expiring on the anniversary; one minute later it is gone
    clock.set(expires_at - timedelta(minutes=1))
    async with services.session_factory() as session:
        summary = await read.wallet_summary(session=session, clock=clock, account_id=wallet)
        soon = await read.expiring_soon(session=session, clock=clock, account_id=wallet, within_days=30)
    assert summary.balance == 117
    assert [(d.expires_on, d.points) for d in soon] == [(anniversary, 117)]
    clock.set(expires_at)
    async with services.session_factory() as session:
        summary = await read.wallet_summary(session=session, clock=clock, account_id=wallet)
    assert (summary.balance, summary.awaiting_expiry) == (0, 117)


# --- points: the daily cap's business day ------------------------------------------------------------


@pytest.mark.parametrize("first, second, days", [
    # one UTC date, two Shanghai days: the cap starts again at 00:00 Shanghai
    pytest.param(datetime(2026, 3, 2, 15, 59, tzinfo=UTC), datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
                 (date(2026, 3, 2), date(2026, 3, 3)), id="across-00:00-shanghai"),
    # two UTC dates, one Shanghai day: 08:00 Shanghai is no boundary
    pytest.param(datetime(2026, 3, 2, 23, 59, tzinfo=UTC), datetime(2026, 3, 3, 0, 0, tzinfo=UTC),
                 (date(2026, 3, 3), date(2026, 3, 3)), id="across-08:00-shanghai"),
])
async def test_the_daily_cap_counts_per_shanghai_business_day(services, clock, first, second, days):
    clock.set(second)
    world = await make_world(services, people=1)
    await publish_rule(services, daily_cap_points=100)
    # 15 km = 70.2 points each; 100 a day at most
    a, b = await report(services, world.operator_id, [ReportItem("a", "u-0", "SZ-METRO", "15", first),
                                                      ReportItem("b", "u-0", "SZ-METRO", "15", second)])
    same_day = days[0] == days[1]
    assert (a.points, b.points) == ((70, 30) if same_day else (70, 70))
    assert b.uncredited_reason == ("DAILY_CAP_REACHED" if same_day else None)
    async with services.session_factory() as session:
        recorded = (await session.execute(text("SELECT behaviour_day FROM behaviour_reports"
                                               " WHERE report_id IN ('a', 'b') ORDER BY report_id"))).scalars().all()
    assert tuple(recorded) == days


# --- the mall: points cancelled after use, per business day -----------------------------------------


@pytest.mark.parametrize("moment, day", MOMENTS)
async def test_points_cancelled_after_use_count_on_the_shanghai_day_of_the_fulfilment(services, clock, moment, day):
    clock.set(moment)
    world = await make_world(services, people=1)
    await publish_rule(services)
    await report(services, world.operator_id, [ReportItem("r", "u-0", "SZ-METRO", "25", moment)])
    merchant = await make_merchant(services)
    listing = await make_listing(services, merchant, price=50, stock=5)
    revision = await scalar(services, "SELECT revision FROM listings WHERE id = :l", l=listing)
    redemption = await redeem(services, world.people["u-0"], listing, expected_revision=revision)
    async with services.session_factory() as session, session.begin():
        _, cancellation = await mall.fulfil(session=session, clock=clock, merchant_id=merchant,
                                            code=redemption.voucher_code)
    assert cancellation.business_day == day
    async with services.session_factory() as session:
        figures = await mall.cancellation_figures(session=session, since=day - timedelta(days=1),
                                                  until=day + timedelta(days=1))
        that_day = await mall.cancellation_figures(session=session, since=day, until=day, merchant_id=merchant)
    assert [(f.day, f.redemptions, f.points) for f in figures] == [(day, 1, 50)]
    assert [(f.day, f.points) for f in that_day] == [(day, 50)]


# --- CER projects: the public notice and the vintage ------------------------------------------------


# a notice published on Monday 2 March runs 3-11 March (declare from Thursday 12 March); published on
# Tuesday 3 March it runs 4-12 March (declare from Friday 13 March)
DECLARE_FROM = {date(2026, 3, 2): date(2026, 3, 12), date(2026, 3, 3): date(2026, 3, 13)}


@pytest.mark.parametrize("moment, day", MOMENTS)
async def test_a_public_notice_runs_from_the_shanghai_date_it_was_published(services, clock, moment, day):
    [owner] = await accounts(services, 1, role="project_owner")
    clock.set(moment)
    await published_methodology(services)
    async with services.session_factory() as session, session.begin():
        fields = projects.ProjectFields(title="光明区屋顶分布式光伏", methodology_code=PV_METHODOLOGY,
                                        location="深圳市光明区", description="", expected_tonnes_per_year=1_000,
                                        benefit_sharing="")
        draft = await projects.register_project(session=session, clock=clock, owner_id=owner, fields=fields)
        published = await projects.publish_for_notice(session=session, clock=clock, owner_id=owner,
                                                      project_id=draft.id, pledge_accepted=True)
        assert published.notice_ends_on == DECLARE_FROM[day]
        assert (await notices_of(session=session, projects=[published]))[published.id].declare_from == DECLARE_FROM[day]

    async def declare():
        async with services.session_factory() as session, session.begin():
            return await projects.declare_project(session=session, clock=clock, owner_id=owner, project_id=draft.id)

    # the notice is over at 00:00 Shanghai on the declaration date, not a minute before and not at
    # 08:00 (00:00 UTC)
    clock.set(shanghai(DECLARE_FROM[day]) - timedelta(minutes=1))
    with pytest.raises(DomainError) as early:
        await declare()
    assert early.value.code == "NOTICE_NOT_OVER" and DECLARE_FROM[day].isoformat() in early.value.message
    clock.set(shanghai(DECLARE_FROM[day], 7, 59))
    assert (await declare()).status == "declared"


@pytest.mark.parametrize("moment, day", NEW_YEAR)
async def test_the_new_vintage_may_be_verified_from_new_year_in_shanghai(services, clock, moment, day):
    clock.set(moment)

    async def report(vintage: int):
        commissioned = await commissioned_project(services)
        async with services.session_factory() as session, session.begin():
            return await verification.submit_report(
                session=session, clock=clock, verifier_id=commissioned.verifier_id,
                commission_id=commissioned.commission_id,
                vintages=[verification.VintageTonnes(vintage=vintage, tonnes=100)],
                documents=[Document(name="report.pdf", sha256="ab" * 32, byte_size=1000)])

    assert (await report(day.year)).status == "reported"
    with pytest.raises(DomainError) as refused:
        await report(day.year + 1)
    assert (refused.value.code, refused.value.field) == ("INVALID", "vintages")


# --- carbon neutrality: the certificate's date and number, the period's limit ------------------------

SIGNER = Signer.generate()


@pytest.mark.parametrize("moment, day", NEW_YEAR)
async def test_a_certificate_is_dated_numbered_and_its_period_limited_by_the_shanghai_date(services, clock,
                                                                                         moment, day):
    [holder] = await accounts(services, 1)
    await holding(services, holder, tonnes=100)
    clock.set(moment)
    # a period may end up to 366 days after today (Shanghai), not 367
    last_end = day + timedelta(days=366)
    with pytest.raises(DomainError) as refused:
        await retire(services, SIGNER, holder, period_start=last_end, period_end=last_end + timedelta(days=1))
    assert (refused.value.code, refused.value.field) == ("INVALID_PERIOD", "periodEnd")
    outcome = await retire(services, SIGNER, holder, period_start=last_end - timedelta(days=1), period_end=last_end)
    certificate = outcome.certificate
    assert certificate.number.startswith(f"SZCN-{day.year}-")
    document = json.loads(certificate.canonical)
    assert document["issued_on"] == day.isoformat()
    assert document["period"] == {"start": (last_end - timedelta(days=1)).isoformat(), "end": last_end.isoformat()}
