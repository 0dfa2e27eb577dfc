"""Revocation marks in Redis, so access tokens and cached API keys stop working at once
rather than when they expire. PostgreSQL stays the record of what was revoked; these marks
only need to outlive the longest access token."""

from __future__ import annotations

import hashlib
import uuid

import redis.asyncio as aioredis


def family_key(family_id: uuid.UUID) -> str:
    return f"revoked:family:{family_id}"


def api_key_cache_key(plaintext: str) -> str:
    return "apikey:" + hashlib.sha256(plaintext.encode()).hexdigest()


async def mark_families_revoked(redis: aioredis.Redis, families: list[uuid.UUID], ttl_seconds: int) -> None:
    if not families:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for family in families:
            pipe.set(family_key(family), b"1", ex=ttl_seconds + 60)
        await pipe.execute()


async def forget_cached_api_keys(redis: aioredis.Redis) -> None:
    """Drop every cached API-key principal (the cache is small and lives 30 seconds)."""
    keys = [key async for key in redis.scan_iter(match="apikey:*", count=500)]
    if keys:
        await redis.delete(*keys)
