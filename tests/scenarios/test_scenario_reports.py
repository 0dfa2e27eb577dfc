"""Behaviour reports naming a scenario (issue 11, art. 25-27): each item is judged by the mark's status
at the behaviour's time; an unknown, unmarked, suspended, withdrawn, expired or unrelated scenario
rejects that item alone while the others are credited; the batch's marks are read once; the
person's earnings break down by scenario."""

from datetime import timedelta

from sqlalchemy import select

from reductions.models import BehaviourReport
from reductions.service import ItemStatus, ReportItem
from scenarios import marks as scenario_marks
from scenarios import service
from tests.reviews.fixtures import in_transaction
from tests.scenarios.fixtures import complete_fields, granted
from tests.wallets.fixtures import make_world, publish_rule, report


def item(report_id, user, at, mark=None, code="SZ-METRO", quantity="10"):
    return ReportItem(report_id=report_id, external_user_id=user, methodology_code=code, quantity=quantity,
                      occurred_at=at, scenario_mark=mark)


def outcomes(results):
    return {r.report_id: (r.status.value, r.reject_code, r.points) for r in results}


async def test_each_item_is_judged_by_its_scenario_the_others_are_credited(services, monkeypatch):
    world = await make_world(services, people=3)
    await publish_rule(services)
    scenario, mark, regulator_id = await granted(services, fields=complete_fields(methodology_codes=["SZ-METRO"]))
    granted_at = services.clock.now()
    now = services.clock.advance(hours=1)
    calls = []
    real = scenario_marks.marks_by_number

    async def counted(conn, numbers):
        calls.append(set(numbers))
        return await real(conn, numbers)

    monkeypatch.setattr(scenario_marks, "marks_by_number", counted)
    results = await report(services, world.operator_id, [
        item("r1", "u-0", now - timedelta(minutes=10), mark.number),
        item("r2", "u-1", now - timedelta(minutes=10), mark.number, code="SZ-EBUS"),
        item("r3", "u-2", now - timedelta(minutes=10), "SZCS-2026-0999"),
        item("r4", "u-0", now - timedelta(minutes=9), "not a mark"),
        item("r5", "u-1", granted_at - timedelta(minutes=1), mark.number),
        item("r6", "u-2", now - timedelta(minutes=10)),
        item("r7", "u-2", now - timedelta(minutes=8), " " + mark.number.lower()),
    ])
    # 10 person-km of metro: 468 g, 46 points at 1 point per 10 g
    assert outcomes(results) == {
        "r1": ("credited", None, 46), "r2": ("rejected", "SCENARIO_UNRELATED", 0),
        "r3": ("rejected", "UNKNOWN_SCENARIO", 0), "r4": ("rejected", "UNKNOWN_SCENARIO", 0),
        "r5": ("rejected", "SCENARIO_NOT_MARKED", 0), "r6": ("credited", None, 46), "r7": ("credited", None, 47)}  # the fraction carried
    assert len(calls) == 1  # one read of the batch's marks
    async with services.session_factory() as session:
        stored = dict((await session.execute(select(BehaviourReport.report_id, BehaviourReport.scenario_id))).all())
    assert stored == {"r1": scenario.id, "r2": None, "r3": None, "r4": None, "r5": None, "r6": None,
                      "r7": scenario.id}
    # a retried batch answers the same, as duplicates
    again = await report(services, world.operator_id, [item("r2", "u-1", now, mark.number, code="SZ-EBUS")])
    assert (again[0].status, again[0].reject_code) == (ItemStatus.DUPLICATE, "SCENARIO_UNRELATED")

    # suspended, then reinstated, then withdrawn: each item by the mark's status when it happened
    change = lambda how, reason="数据采集异常": in_transaction(  # noqa: E731
        services, service.change_mark, regulator_id=regulator_id, number=mark.number, change=how, reason=reason)
    await change("suspend")
    suspended_at = services.clock.now()
    services.clock.advance(hours=1)
    results = await report(services, world.operator_id, [
        item("s1", "u-0", suspended_at + timedelta(minutes=5), mark.number),
        item("s2", "u-1", suspended_at - timedelta(minutes=5), mark.number)])
    assert outcomes(results) == {"s1": ("rejected", "SCENARIO_MARK_SUSPENDED", 0), "s2": ("credited", None, 46)}
    await change("reinstate", "整改完成")
    reinstated_at = services.clock.now()
    now = services.clock.advance(hours=1)
    results = await report(services, world.operator_id, [
        item("t1", "u-0", reinstated_at - timedelta(minutes=5), mark.number),
        item("t2", "u-1", now - timedelta(minutes=5), mark.number)])
    assert outcomes(results) == {"t1": ("rejected", "SCENARIO_MARK_SUSPENDED", 0), "t2": ("credited", None, 47)}
    await change("withdraw", "拒不整改")
    now = services.clock.advance(hours=1)
    results = await report(services, world.operator_id, [
        item("w1", "u-0", now - timedelta(minutes=5), mark.number), item("w2", "u-1", now - timedelta(minutes=5))])
    assert outcomes(results) == {"w1": ("rejected", "SCENARIO_MARK_WITHDRAWN", 0), "w2": ("credited", None, 47)}

    # the person's earnings per scenario, and the scenario named on each credit of their history
    async with services.session_factory() as session:
        breakdown = await service.wallet_breakdown(session=session, wallet_id=world.people["u-0"])
        assert [(e.scenario.mark_number if e.scenario else None, e.reports, e.points, e.reduction_mg)
                for e in breakdown] == [(mark.number, 1, 46, 468_000)]
        breakdown = await service.wallet_breakdown(session=session, wallet_id=world.people["u-2"])
        assert [(e.scenario.name if e.scenario else None, e.reports, e.points) for e in breakdown] == [
            (scenario.name, 1, 47), (None, 1, 46)]
        rows = dict((await session.execute(select(BehaviourReport.report_id, BehaviourReport.id))).all())
        named = await service.scenarios_of_reports(session=session, report_ids=[rows["r1"], rows["r6"], rows["s2"]])
        assert {k: v.mark_number for k, v in named.items()} == {rows["r1"]: mark.number, rows["s2"]: mark.number}


async def test_behaviour_after_the_marks_validity_is_rejected_expired(services):
    scenario, mark, _ = await granted(services, fields=complete_fields(methodology_codes=["SZ-METRO"]),
                                      validity_years=1)
    services.clock.set(mark.valid_until + timedelta(hours=1))
    world = await make_world(services, people=2)
    await publish_rule(services)
    results = await report(services, world.operator_id, [
        item("e1", "u-0", mark.valid_until + timedelta(minutes=5), mark.number),
        item("e2", "u-1", mark.valid_until - timedelta(minutes=5), mark.number)])
    assert outcomes(results) == {"e1": ("rejected", "SCENARIO_MARK_EXPIRED", 0), "e2": ("credited", None, 46)}
