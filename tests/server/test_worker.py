"""The arq worker on the real embedded Redis: the scheduled sweep runs through the queue."""

from __future__ import annotations


import pytest
from arq import create_pool
from arq.worker import Worker

from expiry_jobs.schedule import sweep_schedule
from reductions.service import ReportItem
from server import worker as worker_module
from server.settings import SettingsError, load_settings
from tests.wallets.fixtures import make_world, publish_rule, report
from wallets.audit import ledger_audit


def test_sweep_schedule_is_configurable(monkeypatch, tmp_path):
    assert sweep_schedule() == {"minute": {0}}
    monkeypatch.setenv("TANPUHUI_EXPIRY_SWEEP_MINUTES", "15")
    every = load_settings(data_dir=tmp_path).expiry_sweep_minutes
    assert sweep_schedule(every) == {"minute": {0, 15, 30, 45}}
    monkeypatch.setenv("TANPUHUI_EXPIRY_SWEEP_MINUTES", "360")
    every = load_settings(data_dir=tmp_path).expiry_sweep_minutes
    assert sweep_schedule(every) == {"hour": {0, 6, 12, 18}, "minute": {0}}
    for wrong in ("7", "90", "420", "0", "hourly"):
        monkeypatch.setenv("TANPUHUI_EXPIRY_SWEEP_MINUTES", wrong)
        with pytest.raises(SettingsError, match=f"^TANPUHUI_EXPIRY_SWEEP_MINUTES: expected .*, got '{wrong}'$"):
            load_settings(data_dir=tmp_path)


async def test_queued_sweep_expires_due_lots(services, clock, embedded, monkeypatch):
    world = await make_world(services, people=2)
    await publish_rule(services, validity_years=1)
    await report(services, world.operator_id,
                 [ReportItem(f"r-{u}", u, "SZ-METRO", "25", clock.now()) for u in world.people])
    clock.advance(days=366)

    settings_cls = worker_module.worker_settings(services.settings.database_url, embedded.redis_url)
    # the worker's own clock is the system clock; for the test it reads the moved one
    monkeypatch.setattr(worker_module, "SystemClock", lambda: clock)
    pool = await create_pool(settings_cls.redis_settings)
    try:
        job = await pool.enqueue_job("run_expiry_sweep")
        worker = Worker(functions=settings_cls.functions, redis_settings=settings_cls.redis_settings,
                        on_startup=settings_cls.on_startup, on_shutdown=settings_cls.on_shutdown, burst=True,
                        poll_delay=0.05, handle_signals=False)
        await worker.main()
        await worker.close()
        result = await job.result(timeout=10)
    finally:
        await pool.aclose()
    assert result["lots_expired"] == 2 and result["points_expired"] == 2 * 117
    async with services.session_factory() as session:
        audit = await ledger_audit(session=session)
    assert audit.ok and audit.totals.expired == 2 * 117
