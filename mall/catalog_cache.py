"""The catalog cache: browse pages kept in Redis for a few seconds, keyed by a catalog version
that every listing change bumps, so an edit, a pause or a restock shows at once. Stock taken by
redemptions does not bump it (a hot sale would empty the cache); counts on cached pages may lag
by up to TTL_SECONDS, and redeeming always checks the real stock."""

from __future__ import annotations

import hashlib
import logging
from typing import Awaitable, Callable

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

VERSION_KEY = "mall:catalog-version"
TTL_SECONDS = 10

log = logging.getLogger("tanpuhui.mall.cache")


async def cached_page(redis: aioredis.Redis, params: dict, load: Callable[[], Awaitable[dict]]) -> dict:
    try:
        version = (await redis.get(VERSION_KEY) or b"0").decode()
        key = f"mall:page:{version}:" + hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()
        hit = await redis.get(key)
    except RedisError as exc:  # the cache is an optimisation: serve from PostgreSQL
        log.warning("catalog cache unavailable", extra={"error": type(exc).__name__})
        return await load()
    if hit is not None:
        return orjson.loads(hit)
    data = await load()
    try:
        await redis.set(key, orjson.dumps(data), ex=TTL_SECONDS)
    except RedisError:
        pass
    return data


async def invalidate(redis: aioredis.Redis) -> None:
    try:
        await redis.incr(VERSION_KEY)
    except RedisError as exc:
        log.error("catalog cache not invalidated", extra={"error": type(exc).__name__})
