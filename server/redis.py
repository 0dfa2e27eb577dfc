"""The Redis handle. Short timeouts: a Redis outage must answer with an error, never hang."""

from __future__ import annotations

import redis.asyncio as aioredis


def create_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_timeout=2.0,
        socket_connect_timeout=2.0,
        decode_responses=False,
        health_check_interval=30,
    )
