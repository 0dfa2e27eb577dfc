"""The disclosure pages count against the anonymous per-IP rate limit, like anonymous GraphQL."""

from __future__ import annotations

import pytest


@pytest.fixture
def settings_overrides() -> dict:
    return {"anonymous_rate_limit_per_minute": 3}


async def test_the_pages_and_files_share_the_anonymous_budget(api, clock):
    for url in ("/disclosure", "/disclosure/experts", "/disclosure/experts.csv"):
        assert (await api.client.get(url)).status_code == 200, url
    over = await api.client.get("/disclosure/methodologies.csv")
    assert over.status_code == 429 and over.headers["Retry-After"] == "60"
    clock.advance(seconds=60)
    assert (await api.client.get("/disclosure/methodologies")).status_code == 200
