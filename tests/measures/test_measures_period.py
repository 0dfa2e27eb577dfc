"""The Measures' own period (art. 33) through the public API: which version governs, the regulator
entering a successor with its refusals, and points credited before keeping their 10 years."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from core.clock import BUSINESS_TZ
from tests.api.test_frontend_contracts import DOCUMENTS, PersistedClient
from tests.measures import MEASURES_CONTRACTS
from tests.wallets.test_wallet_api import CREATE_RULE, REPORT, setup
from wallets.expire import expire_due
from wallets import read

SEEDED_SHA256 = "2a68e6997837cfebe8949c0b076acd5f9948c17c207b3f92dc9621c4c9ac265d"
SUCCESSOR_SHA256 = "ab" * 32


def successor(**changes) -> dict:
    return {"title": "深圳市碳普惠管理办法 (2027)", "sourceReference": "深圳市生态环境局 2027 年第 N 号",
            "effectiveFrom": "2027-08-18", "effectiveUntil": "2032-08-17", "maxPointValidityYears": 5,
            "textSha256": SUCCESSOR_SHA256, "idempotencyKey": "successor-1", **changes}


async def in_force(c: PersistedClient, on: str | None = None) -> dict:
    return (await c.run("MeasuresInForce", {"on": on}))["measuresInForce"]


async def test_the_2022_measures_govern_until_their_fifth_year_and_warn_before_lapsing(api, clock):
    c = PersistedClient(api)
    today = await in_force(c)  # the clock is 2026-03-02
    assert today["governing"]["version"] == 1 and today["governing"]["textSha256"] == SEEDED_SHA256
    assert (today["governing"]["effectiveFrom"], today["governing"]["effectiveUntil"]) == ("2022-08-18", "2027-08-17")
    assert today["governing"]["maxPointValidityYears"] == 10
    assert today["daysLeft"] == 534 and not today["lapsed"] and not today["lapsesWithoutSuccessor"]
    assert (await in_force(c, "2022-08-17"))["governing"] is None  # before the first day
    last_day = await in_force(c, "2027-08-17")
    assert last_day["governing"]["version"] == 1 and last_day["daysLeft"] == 1
    assert (await in_force(c, "2027-05-20"))["lapsesWithoutSuccessor"]  # 90 days left, this one included
    assert not (await in_force(c, "2027-05-19"))["lapsesWithoutSuccessor"]
    after = await in_force(c, "2027-08-18")
    assert after["governing"] is None and after["lapsed"] and after["daysLeft"] is None
    versions = (await c.run("MeasuresVersions", {}))["measuresVersions"]
    assert [v["version"] for v in versions] == [1]


async def test_a_successor_takes_over_and_points_credited_before_keep_their_ten_years(api, clock):
    c = PersistedClient(api)
    reg, key, someone, _ = await setup(api, clock)
    ride = {"reportId": "r-1", "externalUserId": "u-381", "methodologyCode": "SZ-METRO", "quantity": "12.4",
            "occurredAt": (clock.now() - timedelta(minutes=5)).isoformat()}
    credited = (await api.data(REPORT, {"input": {"items": [ride]}}, api_key=key))["reportBehaviour"]["results"][0]
    assert credited["status"] == "CREDITED" and credited["expiresAt"].startswith("2036-03-01T16:00:00")

    async def enter(token: str, **changes) -> dict:
        return (await api.data(DOCUMENTS["EnterMeasuresVersion"], {"input": successor(**changes)}, token=token)
                )["enterMeasuresVersion"]

    refusals = [
        ({"effectiveFrom": "2026-03-02", "idempotencyKey": "k1"}, ("EFFECTIVE_IN_PAST", "effectiveFrom")),
        ({"effectiveUntil": "2027-08-17", "idempotencyKey": "k2"}, ("INVALID_VERSION", "effectiveUntil")),
        ({"maxPointValidityYears": 11, "idempotencyKey": "k3"}, ("VALIDITY_OUT_OF_RANGE", "maxPointValidityYears")),
        ({"maxPointValidityYears": 0, "idempotencyKey": "k4"}, ("VALIDITY_OUT_OF_RANGE", "maxPointValidityYears")),
        ({"textSha256": "not-a-hash", "idempotencyKey": "k5"}, ("INVALID_VERSION", "textSha256")),
        ({"title": "办" * 201, "idempotencyKey": "k6"}, ("INVALID_VERSION", "title")),
        ({"sourceReference": "  ", "idempotencyKey": "k7"}, ("INVALID_VERSION", "sourceReference")),
    ]
    for changes, expected in refusals:
        answer = await enter(reg.token, **changes)
        assert answer["version"] is None and [(e["code"], e["field"]) for e in answer["errors"]] == [expected], changes
    forbidden = await enter(someone.token)
    assert [e["code"] for e in forbidden["errors"]] == ["FORBIDDEN"]
    assert [v["version"] for v in (await c.run("MeasuresVersions", {}))["measuresVersions"]] == [1]

    entered = (await c.run("EnterMeasuresVersion", {"input": successor()}, token=reg.token))["enterMeasuresVersion"]
    assert entered["errors"] == [] and entered["version"]["version"] == 2
    assert await enter(reg.token) == entered  # a retry after a lost answer gets the first answer
    reused = await enter(reg.token, maxPointValidityYears=6)
    assert [e["code"] for e in reused["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    overlap = await enter(reg.token, effectiveFrom="2027-08-18", idempotencyKey="again")
    assert [(e["code"], e["field"]) for e in overlap["errors"]] == [("EFFECTIVE_IN_PAST", "effectiveFrom")]
    assert [v["version"] for v in (await c.run("MeasuresVersions", {}))["measuresVersions"]] == [1, 2]

    warned = await in_force(c, "2027-06-01")
    assert warned["successor"]["version"] == 2 and not warned["lapsesWithoutSuccessor"]
    taken_over = await in_force(c, "2027-08-18")
    assert taken_over["governing"]["version"] == 2 and not taken_over["lapsed"] and taken_over["successor"] is None
    assert c.ran == MEASURES_CONTRACTS

    # an exchange rule starting while the successor governs keeps to its 5 years
    rule = {"points": 1, "reductionMg": 10_000, "dailyCapPoints": 1000, "acceptanceWindowDays": 7}
    later = datetime(2027, 9, 1, tzinfo=BUSINESS_TZ).isoformat()
    too_long = await api.data(CREATE_RULE, {"input": {**rule, "effectiveFrom": later}}, token=reg.token)
    assert [(e["code"], e["field"]) for e in too_long["createExchangeRule"]["errors"]] == [
        ("VALIDITY_TOO_LONG", "validityYears")]
    assert "2027-09-01" in too_long["createExchangeRule"]["errors"][0]["message"]
    five = await api.data(CREATE_RULE, {"input": {**rule, "effectiveFrom": later, "validityYears": 5}}, token=reg.token)
    assert five["createExchangeRule"]["errors"] == [] and five["createExchangeRule"]["rule"]["validityYears"] == 5
    still_ten = await api.data(CREATE_RULE, {"input": {**rule, "effectiveFrom": clock.now().isoformat()}},
                               token=reg.token)
    assert still_ten["createExchangeRule"]["rule"]["validityYears"] == 10  # the 2022 Measures govern today

    # years on, under the successor, the 2026 points are still there: the lot keeps its expiry
    as_of = datetime(2033, 1, 1, tzinfo=timezone.utc)
    clock.set(as_of)
    run = await expire_due(session_factory=api.services.session_factory, clock=clock, as_of=as_of)
    assert run.points_expired == 0
    async with api.services.session_factory() as session:
        lots = await read.list_lots(session=session, account_id=uuid.UUID(someone.account_id), first=10, after=None)
        summary = await read.wallet_summary(session=session, clock=clock, account_id=uuid.UUID(someone.account_id))
    [lot] = [item.node for item in lots.items]
    assert lot.expires_at == datetime(2036, 3, 1, 16, 0, tzinfo=timezone.utc) and lot.points_remaining == 58
    assert summary.balance == 58
