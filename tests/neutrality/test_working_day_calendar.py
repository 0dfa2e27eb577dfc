"""The working-day calendar of the public notice (art. 16): the regulator enters a year's official
schedule (holidays and make-up working days), the notice counts on it, and a declaration counted
on a year with no official schedule is refused until the schedule exists. Through the API (the
calendar contracts by their persisted hash) and the pure count."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from core.errors import DomainError
from neutrality.cers import projects
from neutrality.cers.notice import Schedule, WorkingCalendar, notice_end
from tests.conftest import START, organisation, regulator, sign_in
from tests.neutrality.fixtures import CALENDAR_CONTRACTS, PV_METHODOLOGY, accounts, published_methodology
from tests.api.test_frontend_contracts import PersistedClient


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


# a 2027 schedule in the State Council's shape (the real one is published in late 2026): the Spring
# Festival break is Friday 5 to Saturday 13 February, Sunday 31 January and Saturday 20 February
# are worked instead
HOLIDAYS_2027 = [date(2027, 1, 1), *_days(date(2027, 2, 5), date(2027, 2, 13)), *_days(date(2027, 5, 1), date(2027, 5, 5)),
                 *_days(date(2027, 10, 1), date(2027, 10, 7))]
MAKEUP_2027 = [date(2027, 1, 31), date(2027, 2, 20)]
SCHEDULE_2027 = {"year": 2027, "holidays": [d.isoformat() for d in HOLIDAYS_2027],
                 "makeUpWorkdays": [d.isoformat() for d in MAKEUP_2027],
                 "sourceReference": "国务院办公厅关于2027年部分节假日安排的通知 (test)"}
# 09:00 Monday 1 February 2027 in Shanghai
PUBLISHED = datetime(2027, 2, 1, 1, 0, tzinfo=timezone.utc)

ENTER = """
mutation($input: EnterWorkingDayScheduleInput!) {
  enterWorkingDaySchedule(input: $input) { calendarYear { year source provisional schedule { version } }
                                           errors { code field message } }
}"""
NOTICE = "query($id: ID) { cerProject(id: $id) { notice { declareFrom provisional } } }"


def test_an_entered_schedule_moves_the_count_past_the_spring_festival():
    provisional = notice_end(date(2027, 2, 1))
    # Mon-Fri: 2, 3, 4, 5, 8, 9, 10 February -> from 11 February, inside the break
    assert (provisional.declare_from, provisional.provisional_years) == (date(2027, 2, 11), (2027,))
    calendar = WorkingCalendar(entered={2027: Schedule(2027, frozenset(HOLIDAYS_2027), frozenset(MAKEUP_2027))})
    official = notice_end(date(2027, 2, 1), calendar=calendar)
    # 2, 3, 4 February, the break 5-13, Sunday 14, then 15, 16, 17, 18 -> from 19 February
    assert (official.declare_from, official.provisional) == (date(2027, 2, 19), False)
    # a make-up Sunday counts: published Thursday 28 January, 29 Jan, Sun 31 Jan, 1-4 Feb, the break,
    # 15 Feb -> from 16 February (17 without the make-up Sunday)
    assert notice_end(date(2027, 1, 28), calendar=calendar).declare_from == date(2027, 2, 16)
    # the package's years stay the package's, whatever is entered
    assert notice_end(date(2026, 9, 29), calendar=calendar).declare_from == date(2026, 10, 15)


async def _declare(services, owner_id, project_id):
    async with services.session_factory() as session, session.begin():
        return await projects.declare_project(session=session, clock=services.clock, owner_id=owner_id,
                                              project_id=project_id)


async def test_a_declaration_waits_for_the_year_schedule_then_counts_on_it(api, services, clock):
    """The API's part runs on today's clock (access tokens carry a real-time `iat`); the project's
    notice in February 2027 runs through the domain functions on a moved clock."""
    c = PersistedClient(api)
    reg = await regulator(api)
    before = {y["year"]: y for y in (await c.run("WorkingDayCalendar"))["workingDayCalendar"]}
    assert before[2026]["source"] == "PACKAGE" and before[2026]["provisional"] is False
    assert before[2027] == {"year": 2027, "source": "PROVISIONAL", "provisional": True, "schedule": None}
    assert max(before) == 2027  # up to next year

    [owner] = await accounts(services, 1, role="project_owner")
    await published_methodology(services)
    clock.set(PUBLISHED)
    async with services.session_factory() as session, session.begin():
        fields = projects.ProjectFields(title="光明区屋顶分布式光伏", methodology_code=PV_METHODOLOGY,
                                        location="深圳市光明区", expected_tonnes_per_year=1_000)
        made = await projects.register_project(session=session, clock=clock, owner_id=owner, fields=fields)
        await projects.publish_for_notice(session=session, clock=clock, owner_id=owner, project_id=made.id,
                                          pledge_accepted=True)
        assert made.notice_ends_on == date(2027, 2, 11)  # provisional
    # 11 February: the provisional count is over, but 2027's schedule is not known: refused
    clock.set(datetime(2027, 2, 10, 16, 0, tzinfo=timezone.utc))
    with pytest.raises(DomainError) as refused:
        await _declare(services, owner, made.id)
    assert (refused.value.code, refused.value.field) == ("CALENDAR_NOT_PUBLISHED", "projectId")
    assert "2027" in refused.value.message

    clock.set(START)
    reg = await sign_in(api, reg.login)
    entered = (await c.run("EnterWorkingDaySchedule", {"input": {**SCHEDULE_2027, "idempotencyKey": "cal-2027"}},
                           token=reg.token))["enterWorkingDaySchedule"]["calendarYear"]
    assert (entered["year"], entered["source"], entered["provisional"]) == (2027, "ENTERED", False)
    assert entered["schedule"]["version"] == 1 and entered["schedule"]["makeUpWorkdays"] == ["2027-01-31",
                                                                                             "2027-02-20"]
    # the notice is recounted at once: past the break
    assert (await api.data(NOTICE, {"id": str(made.id)}))["cerProject"]["notice"] == {
        "declareFrom": "2027-02-19", "provisional": False}
    clock.set(datetime(2027, 2, 10, 16, 0, tzinfo=timezone.utc))
    with pytest.raises(DomainError) as early:
        await _declare(services, owner, made.id)
    assert early.value.code == "NOTICE_NOT_OVER" and "2027-02-19" in early.value.message
    clock.set(datetime(2027, 2, 18, 16, 0, tzinfo=timezone.utc))  # 00:00 on 19 February in Shanghai
    declared = await _declare(services, owner, made.id)
    assert declared.status == "declared" and declared.notice_ends_on == date(2027, 2, 19)
    assert c.ran == CALENDAR_CONTRACTS


def _entry(**changes) -> dict:
    return {"input": {**SCHEDULE_2027, "idempotencyKey": "k", **changes}}


@pytest.mark.parametrize("changes, field, says", [
    ({"year": 2026}, "year", "chinesecalendar"),
    ({"year": 1999}, "year", "2000 to 2100"),
    ({"holidays": SCHEDULE_2027["holidays"] + ["2028-01-01"]}, "holidays", "2028-01-01 is not in 2027"),
    ({"makeUpWorkdays": ["2026-12-27"]}, "makeUpWorkdays", "2026-12-27 is not in 2027"),
    ({"makeUpWorkdays": ["2027-02-06"]}, "makeUpWorkdays", "both a holiday and a make-up"),
    ({"makeUpWorkdays": ["2027-02-22"]}, "makeUpWorkdays", "is a weekday"),
    ({"holidays": [d for d in SCHEDULE_2027["holidays"] if d != "2027-10-02"]}, "holidays", "2027-10-02"),
    ({"holidays": SCHEDULE_2027["holidays"] + ["2027-02-05"]}, "holidays", "given twice"),
    ({"holidays": [d.isoformat() for d in _days(date(2027, 1, 1), date(2027, 3, 31))]}, "holidays", "at most 60"),
    ({"sourceReference": "  "}, "sourceReference", "State Council"),
])
async def test_an_implausible_schedule_is_refused(api, changes, field, says):
    reg = await regulator(api)
    refused = (await api.data(ENTER, _entry(**changes), token=reg.token))["enterWorkingDaySchedule"]
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("INVALID", field)], refused
    assert says in refused["errors"][0]["message"] and refused["calendarYear"] is None
    calendar = (await api.data("{ workingDayCalendar { year provisional } }"))["workingDayCalendar"]
    assert {"year": 2027, "provisional": True} in calendar


async def test_corrections_append_versions_and_only_the_regulator_enters(api):
    reg = await regulator(api)
    own = await organisation(api, "光明绿能科技有限公司", apply_for=["PROJECT_OWNER"])
    forbidden = (await api.data(ENTER, _entry(), token=own.token))["enterWorkingDaySchedule"]
    assert [e["code"] for e in forbidden["errors"]] == ["FORBIDDEN"]
    assert [e["code"] for e in (await api.data(ENTER, _entry()))["enterWorkingDaySchedule"]["errors"]] == [
        "UNAUTHENTICATED"]

    first = (await api.data(ENTER, _entry(), token=reg.token))["enterWorkingDaySchedule"]
    again = (await api.data(ENTER, _entry(), token=reg.token))["enterWorkingDaySchedule"]
    assert first == again and first["calendarYear"]["schedule"]["version"] == 1  # replayed, not entered twice
    reused = (await api.data(ENTER, _entry(makeUpWorkdays=["2027-01-31"]), token=reg.token))["enterWorkingDaySchedule"]
    assert [e["code"] for e in reused["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]

    # a correction: 20 February is no longer worked; version 2 counts, version 1 stays
    corrected = (await api.data(ENTER, _entry(makeUpWorkdays=["2027-01-31"], idempotencyKey="k2"),
                                token=reg.token))["enterWorkingDaySchedule"]
    assert corrected["errors"] == [] and corrected["calendarYear"]["schedule"]["version"] == 2
    shown = (await api.data("{ workingDayCalendar { year schedule { version makeUpWorkdays } } }"))
    [y2027] = [y for y in shown["workingDayCalendar"] if y["year"] == 2027]
    assert y2027["schedule"] == {"version": 2, "makeUpWorkdays": ["2027-01-31"]}
    async with api.services.session_factory() as session:
        from sqlalchemy import text
        versions = (await session.execute(text("SELECT version FROM working_day_schedules WHERE year = 2027"
                                                " ORDER BY version"))).scalars().all()
    assert versions == [1, 2]


def test_the_package_years_win_over_an_entered_schedule():
    # an entry for 2026 (which the package covers) making 30 September a holiday changes nothing
    calendar = WorkingCalendar(entered={2026: Schedule(2026, frozenset({date(2026, 9, 30), date(2026, 10, 9)}),
                                                       frozenset())})
    assert notice_end(date(2026, 9, 29), calendar=calendar).declare_from == date(2026, 10, 15)


async def test_the_count_uses_the_latest_version_and_crosses_into_the_next_year(services):
    from neutrality.cers import notice

    [regulator_id] = await accounts(services, 1, role="regulator", kind="authority")
    fixed_only = [date(2027, 1, 1), date(2027, 5, 1), date(2027, 5, 2), date(2027, 10, 1), date(2027, 10, 2),
                  date(2027, 10, 3)]

    async def count(published_on: date):
        async with services.session_factory() as session:
            return await notice.notice_for(session=session, published_on=published_on)

    # a notice published on 28 December 2026 runs into 2027: provisional until 2027 is entered
    across = await count(date(2026, 12, 28))
    assert across.provisional_years == (2027,)
    async with services.session_factory() as session, session.begin():
        await notice.enter_schedule(session=session, clock=services.clock, regulator_id=regulator_id, year=2027,
                                    holidays=fixed_only, makeup_workdays=[], source_reference="first notice (test)")
    # 29, 30, 31 Dec, (1 Jan a holiday), 4, 5, 6, 7 Jan -> from 8 January, on the entered 2027
    assert ((await count(date(2026, 12, 28))).declare_from, (await count(date(2026, 12, 28))).provisional) == (
        date(2027, 1, 8), False)
    first = await count(date(2027, 2, 1))
    assert (first.declare_from, first.provisional) == (date(2027, 2, 11), False)
    # the correction (version 2) adds the Spring Festival break: the count follows it at once
    async with services.session_factory() as session, session.begin():
        corrected = await notice.enter_schedule(session=session, clock=services.clock, regulator_id=regulator_id,
                                                year=2027, holidays=HOLIDAYS_2027, makeup_workdays=MAKEUP_2027,
                                                source_reference="corrected notice (test)")
    assert corrected.version == 2
    assert (await count(date(2027, 2, 1))).declare_from == date(2027, 2, 19)
