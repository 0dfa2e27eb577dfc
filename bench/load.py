"""The HTTP load generator the read benchmarks share: CLIENTS concurrent aiohttp clients, each
sending its next request as soon as the previous one is answered, for a fixed time."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Awaitable, Callable

CLIENTS = 32


async def load(client, requests, seconds: float, check, warmup: float = 0.0,
               before: Callable[[], Awaitable[None]] | None = None) -> tuple[int, float]:
    """(requests done, seconds) from CLIENTS concurrent clients cycling through `requests`
    ((path, headers, json body, or None for a GET)) for `seconds` after `warmup` seconds.
    `before`, if given, is awaited before every request (by the client that sends it)."""
    cycle = itertools.cycle(requests)
    done = 0
    stop_at = 0.0

    async def one() -> None:
        path, headers, body = next(cycle)
        if before is not None:
            await before()
        if body is None:
            async with client.get(path, headers=headers) as response:
                payload = await response.read()
        else:
            async with client.post(path, headers=headers, json=body) as response:
                payload = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}: {payload[:300]!r}")
        check(payload)

    async def client_loop(counting: bool) -> None:
        nonlocal done
        while time.perf_counter() < stop_at:
            await one()
            if counting:
                done += 1

    if warmup:
        stop_at = time.perf_counter() + warmup
        await asyncio.gather(*(client_loop(False) for _ in range(CLIENTS)))
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(client_loop(True) for _ in range(CLIENTS)))
    return done, time.perf_counter() - started
