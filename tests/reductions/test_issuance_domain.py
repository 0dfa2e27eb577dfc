from datetime import timedelta

from reductions.service import ItemStatus, ReportItem
from tests.wallets.fixtures import make_world, publish_rule, report
from wallets import read
from wallets.audit import ledger_audit


async def test_metro_ride_credits_points(services, clock):
    world = await make_world(services)
    await publish_rule(services)
    ride = ReportItem("r-1", "u-0", "SZ-METRO", "12.4", clock.now() - timedelta(hours=1))
    [result] = await report(services, world.operator_id, [ride])
    # 12.4 km x 46.8 g = 580.32 g -> 58 points at 1 point / 10 g, 0.032 carried
    assert result.status == ItemStatus.CREDITED, result
    assert result.points == 58
    assert result.reduction_mg == 580_320
    [again] = await report(services, world.operator_id, [ride])
    assert again.status == ItemStatus.DUPLICATE and again.points == 58
    async with services.session_factory() as session:
        summary = await read.wallet_summary(session=session, clock=clock, account_id=world.people["u-0"])
        audit = await ledger_audit(session=session)
    assert summary.balance == 58
    assert audit.ok, audit
