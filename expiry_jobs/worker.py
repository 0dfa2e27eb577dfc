"""`tanpuhui worker`: the arq worker running the scheduled sweeps.

Several workers may run at once: arq's cron jobs are unique per run time, and even if two
sweeps overlap, the sweep itself skips wallets another one holds and never expires a lot twice."""

from __future__ import annotations

from arq import cron
from arq.connections import RedisSettings

from core.clock import SystemClock
from expiry_jobs.sweeps import cer_reservation_sweep, expiry_sweep, redemption_timeout_sweep
from server.db import create_engine, create_session_factory
from server.settings import Settings
from server.stripe_emulator import payments_for_worker


def sweep_schedule(every: int = 60) -> dict:
    """The cron times of the expiry sweep, every `every` minutes (TANPUHUI_EXPIRY_SWEEP_MINUTES,
    checked by the settings: a divisor of 60, or a multiple of 60 that divides a day)."""
    if 1 <= every <= 60 and 60 % every == 0:
        return {"minute": set(range(0, 60, every))}
    if every > 60 and every % 60 == 0 and 1440 % every == 0:
        return {"hour": set(range(0, 24, every // 60)), "minute": {0}}
    raise ValueError("TANPUHUI_EXPIRY_SWEEP_MINUTES must divide 60, or be a multiple of 60 that divides a day")


async def run_expiry_sweep(ctx: dict) -> dict:
    report = await expiry_sweep(session_factory=ctx["session_factory"], clock=ctx["clock"])
    return {"run_id": report.run_id, "lots": report.lots_expired, "points": report.points_expired,
            "notices": report.notices_issued}


async def run_redemption_timeouts(ctx: dict) -> dict:
    return {"expired": await redemption_timeout_sweep(session_factory=ctx["session_factory"], clock=ctx["clock"])}


async def run_cer_reservation_timeouts(ctx: dict) -> dict:
    return await cer_reservation_sweep(session_factory=ctx["session_factory"], clock=ctx["clock"],
                                       payments=ctx.get("payments"))


def worker_settings(database_url: str, redis_url: str, settings: Settings | None = None) -> type:
    """arq's settings for the worker; without `settings` (tests) the sweep is hourly and the
    sweeps leave the payment provider alone."""
    async def startup(ctx: dict) -> None:
        ctx["engine"] = create_engine(database_url, 5)
        ctx["session_factory"] = create_session_factory(ctx["engine"])
        ctx["clock"] = SystemClock()
        ctx["payments"] = payments_for_worker(settings) if settings is not None else None

    async def shutdown(ctx: dict) -> None:
        if ctx.get("payments") is not None:
            await ctx["payments"].aclose()
        await ctx["engine"].dispose()

    class WorkerSettings:
        functions = [run_expiry_sweep, run_redemption_timeouts, run_cer_reservation_timeouts]
        cron_jobs = [
            cron(run_expiry_sweep, **sweep_schedule(settings.expiry_sweep_minutes if settings else 60),
                 run_at_startup=True, unique=True),
            # reservations time out within a minute of their deadline
            cron(run_redemption_timeouts, minute=None, second=0, unique=True),
            # CER purchase reservations likewise; also settles deferred webhooks and due refunds
            cron(run_cer_reservation_timeouts, minute=None, second=30, unique=True),
        ]
        redis_settings = RedisSettings.from_dsn(redis_url)
        on_startup = startup
        on_shutdown = shutdown
        job_timeout = 3600
        max_jobs = 4

    return WorkerSettings
