"""The two calculation shapes of a methodology (issue 10, art. 20-21), exactly, through reportBehaviour's
batch path: factor per unit (metro), and max(0, baseline - actual) x factor (household electricity,
SZ-HOME-POWER seeded by migration 0014 at 570,300 mg CO2e per kWh)."""

import uuid
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from reductions.service import ItemStatus, Reject, ReportItem, calculated_quantity
from tests.wallets.fixtures import make_world, publish_rule, report
from wallets import read
from wallets.audit import ledger_audit

POWER = "SZ-HOME-POWER"
POWER_FACTOR = 570_300


def power(report_id, user, baseline, actual, when, quantity=None):
    return ReportItem(report_id, user, POWER, quantity, when, baseline_quantity=baseline, actual_quantity=actual)


async def test_both_shapes_in_one_batch_are_exact(services, clock):
    world = await make_world(services)
    await publish_rule(services)
    when = clock.now() - timedelta(hours=1)
    results = await report(services, world.operator_id, [
        ReportItem("metro", "u-0", "SZ-METRO", "12.4", when),
        # 8.5 - 6.25 = 2.25 kWh saved x 570.3 g = 1,283.175 g -> 128 points at 1 point / 10 g
        power("home", "u-1", "8.5", "6.25", when),
        # a household using more than its baseline saved nothing: credited, 0 points, 0 reduction
        power("home-more", "u-2", "6", "9.125", when),
        power("home-equal", "u-2", "6", "6", when),
    ])
    by_id = {r.report_id: r for r in results}
    assert (by_id["metro"].status, by_id["metro"].reduction_mg, by_id["metro"].points) == (
        ItemStatus.CREDITED, 580_320, 58)
    assert (by_id["home"].status, by_id["home"].reduction_mg, by_id["home"].points) == (
        ItemStatus.CREDITED, 2_250 * POWER_FACTOR // 1000, 128)
    assert by_id["home"].reduction_mg == 1_283_175
    for zero in ("home-more", "home-equal"):
        assert (by_id[zero].status, by_id[zero].reduction_mg, by_id[zero].points, by_id[zero].lot_id) == (
            ItemStatus.CREDITED, 0, 0, None)
    async with services.session_factory() as session:
        rows = {r.report_id: r for r in (await session.execute(text(
            "SELECT report_id, quantity_milli, baseline_milli, actual_milli FROM behaviour_reports"))).all()}
        assert rows["home"][1:] == (2_250, 8_500, 6_250)
        assert rows["home-more"][1:] == (0, 6_000, 9_125)
        assert rows["metro"][1:] == (12_400, None, None)
        summary = await read.wallet_summary(session=session, clock=clock, account_id=world.people["u-1"])
        audit = await ledger_audit(session=session)
    assert summary.balance == 128
    assert audit.ok, audit


async def test_inputs_that_do_not_fit_the_calculation_are_rejected_per_item(services, clock):
    world = await make_world(services)
    await publish_rule(services)
    when = clock.now() - timedelta(hours=1)
    results = await report(services, world.operator_id, [
        ReportItem("power-with-quantity", "u-0", POWER, "3", when),
        power("power-only-baseline", "u-0", "8", None, when),
        power("power-only-actual", "u-0", None, "8", when),
        power("power-with-all-three", "u-0", "8", "6", when, quantity="2"),
        ReportItem("metro-with-baseline", "u-0", "SZ-METRO", "3", when, baseline_quantity="5", actual_quantity="1"),
        ReportItem("metro-without-quantity", "u-0", "SZ-METRO", None, when),
        ReportItem("metro-baseline-only", "u-0", "SZ-METRO", None, when, baseline_quantity="5", actual_quantity="1"),
        power("power-negative", "u-0", "8", "-1", when),
        power("power-malformed", "u-0", "8", "x", when),
        power("power-too-many-decimals", "u-0", "8.0001", "1", when),
        power("power-baseline-too-large", "u-0", "1000.001", "999", when),  # max 1,000 kWh a report
        power("power-ok", "u-0", "1000", "999", when),
    ])
    codes = {r.report_id: (r.status, r.reject_code) for r in results}
    rejected = lambda code: (ItemStatus.REJECTED, code.value)  # noqa: E731
    assert codes == {
        "power-with-quantity": rejected(Reject.BASELINE_AND_ACTUAL_REQUIRED),
        "power-only-baseline": rejected(Reject.BASELINE_AND_ACTUAL_REQUIRED),
        "power-only-actual": rejected(Reject.BASELINE_AND_ACTUAL_REQUIRED),
        "power-with-all-three": rejected(Reject.BASELINE_AND_ACTUAL_REQUIRED),
        "metro-with-baseline": rejected(Reject.QUANTITY_REQUIRED),
        "metro-without-quantity": rejected(Reject.QUANTITY_REQUIRED),
        "metro-baseline-only": rejected(Reject.QUANTITY_REQUIRED),
        "power-negative": rejected(Reject.INVALID_QUANTITY),
        "power-malformed": rejected(Reject.INVALID_QUANTITY),
        "power-too-many-decimals": rejected(Reject.INVALID_QUANTITY),
        "power-baseline-too-large": rejected(Reject.QUANTITY_TOO_LARGE),
        "power-ok": (ItemStatus.CREDITED, None),
    }
    # a rejected report keeps a baseline and an actual only as a pair
    async with services.session_factory() as session:
        rows = {r[0]: r[1:] for r in (await session.execute(text(
            "SELECT report_id, baseline_milli, actual_milli FROM behaviour_reports"))).all()}
    assert rows["power-only-baseline"] == (None, None)
    assert rows["power-with-all-three"] == (8_000, 6_000)
    [again] = await report(services, world.operator_id, [power("power-ok", "u-0", "1000", "999", when)])
    assert (again.status, again.reduction_mg) == (ItemStatus.DUPLICATE, POWER_FACTOR)


def test_the_calculated_quantity_of_each_shape():
    assert calculated_quantity("factor_per_unit", 12_400, None, None) == 12_400
    assert calculated_quantity("baseline_minus_actual", None, 8_500, 6_250) == 2_250
    assert calculated_quantity("baseline_minus_actual", None, 0, 6_250) == 0
    assert calculated_quantity("baseline_minus_actual", None, 6_250, 0) == 6_250
    assert calculated_quantity("baseline_minus_actual", 1, 6_250, 0) == Reject.BASELINE_AND_ACTUAL_REQUIRED
    assert calculated_quantity("factor_per_unit", 1, 6_250, None) == Reject.QUANTITY_REQUIRED


thousandths = st.integers(min_value=0, max_value=1_000_000)  # up to the methodology's 1,000 kWh


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(thousandths, thousandths), min_size=1, max_size=20))
async def test_baseline_shape_credits_exactly_the_saving(services, clock, pairs):
    """Whatever the baselines and actuals, each report's reduction is max(0, b - a) x factor in
    whole mg (the sub-mg rest goes with the points' carry), and the ledger stays exact."""
    world = await make_world(services, people=1, prefix=f"p{uuid.uuid4().hex[:6]}-")
    [user] = world.people
    async with services.session_factory() as session, session.begin():
        await session.execute(text("UPDATE exchange_rules SET status = 'retired' WHERE status = 'published'"))
    await publish_rule(services, daily_cap_points=10**12, days_ago=1)
    when = clock.now() - timedelta(minutes=1)
    items = [power(f"{user}-{k}", user, f"{b / 1000:.3f}", f"{a / 1000:.3f}", when) for k, (b, a) in enumerate(pairs)]
    results = await report(services, world.operator_id, items)
    for (b, a), result in zip(pairs, results):
        assert result.status == ItemStatus.CREDITED
        assert result.reduction_mg == max(0, b - a) * POWER_FACTOR // 1000
    saved = sum(max(0, b - a) for b, a in pairs)
    # 1 point per 10,000 mg, the fractions carried across reports: exactly floor of the total
    assert sum(r.points for r in results) == saved * POWER_FACTOR // (1000 * 10_000)
    async with services.session_factory() as session:
        assert (await ledger_audit(session=session)).ok


async def test_baseline_inputs_over_the_api(api, clock):
    """reportBehaviour takes baselineQuantity and actualQuantity; myReports shows them with the
    quantity the factor multiplied."""
    from tests.wallets.test_wallet_api import setup

    _reg, key, _someone, _operator = await setup(api, clock)
    at = (clock.now() - timedelta(minutes=5)).isoformat()
    body = await api.data("""mutation($input: ReportBehaviourInput!) { reportBehaviour(input: $input) {
        results { reportId status rejectCode points reductionMg } errors { code } } }""", {"input": {"items": [
        {"reportId": "home", "externalUserId": "u-381", "methodologyCode": POWER, "occurredAt": at,
         "baselineQuantity": "8.5", "actualQuantity": "6.25"},
        {"reportId": "wrong", "externalUserId": "u-381", "methodologyCode": POWER, "occurredAt": at, "quantity": "2"},
        {"reportId": "none", "externalUserId": "u-381", "methodologyCode": "SZ-METRO", "occurredAt": at}]}},
        api_key=key)
    results = {r["reportId"]: r for r in body["reportBehaviour"]["results"]}
    assert (results["home"]["status"], results["home"]["reductionMg"], results["home"]["points"]) == (
        "CREDITED", 1_283_175, 128)
    assert results["wrong"]["rejectCode"] == "BASELINE_AND_ACTUAL_REQUIRED"
    assert results["none"]["rejectCode"] == "QUANTITY_REQUIRED"
    mine = await api.data("{ myReports(first: 10) { edges { node { reportId quantity baselineQuantity actualQuantity } } } }",
                          api_key=key)
    shown = {e["node"]["reportId"]: e["node"] for e in mine["myReports"]["edges"]}
    assert (shown["home"]["quantity"], shown["home"]["baselineQuantity"], shown["home"]["actualQuantity"]) == (
        "2.25", "8.5", "6.25")
