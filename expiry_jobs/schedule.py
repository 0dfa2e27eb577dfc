"""Every domain's scheduled jobs, gathered with their times for the worker (server/worker.py runs them).

Each domain declares its jobs next to its rules: wallets/jobs.py (expiry), mall/jobs.py (redemption
time-outs), neutrality/market/jobs.py (CER reservations). They are keyword-only async functions over
a session factory and a clock, returning a small report; this module only says when each runs. Several workers may
run at once: arq's cron jobs are unique per run time, and each job is safe to overlap with itself
(the expiry sweep skips wallets another holds and never expires a lot twice)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from mall.jobs import redemption_timeout_sweep
from neutrality.market.jobs import cer_reservation_sweep
from wallets.jobs import expiry_sweep


@dataclass(frozen=True)
class ScheduledJob:
    name: str  # the arq job name, stable across releases (queued jobs refer to it)
    run: Callable[..., Awaitable[Any]]  # run(session_factory=, clock=[, payments=])
    when: dict  # arq cron fields: minute, second, hour
    at_startup: bool = False
    needs_payments: bool = False  # given the payment provider (or None when there is none)


def sweep_schedule(every: int = 60) -> dict:
    """The cron times of the expiry sweep, every `every` minutes (TANPUHUI_EXPIRY_SWEEP_MINUTES,
    checked by the settings: a divisor of 60, or a multiple of 60 that divides a day)."""
    if 1 <= every <= 60 and 60 % every == 0:
        return {"minute": set(range(0, 60, every))}
    if every > 60 and every % 60 == 0 and 1440 % every == 0:
        return {"hour": set(range(0, 24, every // 60)), "minute": {0}}
    raise ValueError("TANPUHUI_EXPIRY_SWEEP_MINUTES must divide 60, or be a multiple of 60 that divides a day")


def scheduled_jobs(*, expiry_sweep_minutes: int = 60) -> tuple[ScheduledJob, ...]:
    return (
        # points past their validity leave the wallets; notices for those expiring within 30 days
        ScheduledJob("run_expiry_sweep", expiry_sweep, sweep_schedule(expiry_sweep_minutes), at_startup=True),
        # redemptions not fulfilled in time release their points and stock, within a minute
        ScheduledJob("run_redemption_timeouts", redemption_timeout_sweep, {"minute": None, "second": 0}),
        # CER purchases likewise; also settles deferred webhooks and retries due refunds
        ScheduledJob("run_cer_reservation_timeouts", cer_reservation_sweep, {"minute": None, "second": 30},
                     needs_payments=True),
    )
