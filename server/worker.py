"""`tanpuhui worker`: the arq worker wiring (database, clock, payment provider) around the scheduled
jobs every domain declares (gathered in expiry_jobs/schedule.py)."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass

from arq import cron, func
from arq.connections import RedisSettings

from core.clock import SystemClock
from expiry_jobs.schedule import ScheduledJob, scheduled_jobs
from server.db import create_engine, create_session_factory
from server.settings import Settings
from server.stripe_emulator import payments_for_worker


def _report(value):
    """A job's report as plain data for arq's result store."""
    return asdict(value) if is_dataclass(value) else value


def _arq_function(job: ScheduledJob):
    async def run(ctx: dict):
        resources = {"payments": ctx.get("payments")} if job.needs_payments else {}
        return _report(await job.run(session_factory=ctx["session_factory"], clock=ctx["clock"], **resources))

    run.__qualname__ = run.__name__ = job.name
    return func(run, name=job.name)


def worker_settings(database_url: str, redis_url: str, settings: Settings | None = None) -> type:
    """arq's settings for the worker; without `settings` (tests) the expiry sweep is hourly and the
    jobs leave the payment provider alone."""
    jobs = scheduled_jobs(expiry_sweep_minutes=settings.expiry_sweep_minutes if settings else 60)

    async def startup(ctx: dict) -> None:
        ctx["engine"] = create_engine(database_url, 5)
        ctx["session_factory"] = create_session_factory(ctx["engine"])
        ctx["clock"] = SystemClock()
        ctx["payments"] = payments_for_worker(settings) if settings is not None else None

    async def shutdown(ctx: dict) -> None:
        if ctx.get("payments") is not None:
            await ctx["payments"].aclose()
        await ctx["engine"].dispose()

    functions = {job.name: _arq_function(job) for job in jobs}

    class WorkerSettings:
        cron_jobs = [cron(functions[job.name].coroutine, name=f"cron:{job.name}", run_at_startup=job.at_startup,
                          unique=True, **job.when) for job in jobs]
        redis_settings = RedisSettings.from_dsn(redis_url)
        on_startup = startup
        on_shutdown = shutdown
        job_timeout = 3600
        max_jobs = 4

    WorkerSettings.functions = list(functions.values())
    return WorkerSettings
