"""Idempotency keys (core/idempotency.py, resolvers/common.py) on real PostgreSQL connections."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import pytest
from sqlalchemy import func, select, text

from accounts.models import Account
from core.errors import DomainError
from core.idempotency import (
    NOT_RECORDED,
    IdempotencyKeyReused,
    IdempotencyRecord,
    ReplayedRefusal,
    idempotent_transaction,
    run_idempotent,
)
from tests.api._conventions import assert_no_leak, table_counts
from tests.conftest import PASSWORD, SIGN_UP, unique_email


@pytest.fixture
async def scratch(services):
    async with services.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE scratch (id serial PRIMARY KEY, note text NOT NULL)"))
    return services


async def scratch_rows(services) -> list[tuple[int, str]]:
    async with services.session_factory() as session:
        return [tuple(row) for row in (await session.execute(text("SELECT id, note FROM scratch ORDER BY id"))).all()]


async def record_count(services) -> int:
    async with services.session_factory() as session:
        return (await session.execute(select(func.count()).select_from(IdempotencyRecord))).scalar_one()


Hold = Callable[[], Awaitable[None]]


async def waiting_on_a_lock(services) -> int:
    """Connections to this test's database that wait on a lock (the others with the same key wait
    on the uncommitted idempotency record of the caller that holds it)."""
    async with services.engine.connect() as connection:
        return (await connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"))).scalar_one()


def until_waiting(services, callers: int, timeout: float = 30.0) -> Hold:
    """Holds the key (the transaction stays open) until `callers` others are queued on it."""
    async def hold() -> None:
        deadline = time.monotonic() + timeout
        while (waiting := await waiting_on_a_lock(services)) < callers:
            assert time.monotonic() < deadline, f"{waiting} of {callers} callers queued on the key"
            await asyncio.sleep(0.01)
    return hold


def make_action(session, note: str, calls: list, hold: Hold | None = None, fail: bool = False):
    async def action() -> dict:
        calls.append(note)
        new_id = (await session.execute(text("INSERT INTO scratch (note) VALUES (:n) RETURNING id"),
                                        {"n": note})).scalar_one()
        if hold is not None:
            await hold()  # the transaction stays open, holding the key
        if fail:
            raise RuntimeError("the effect failed")
        return {"scratch_id": new_id, "note": note}
    return action


async def call(services, *, key: str, request, note: str, calls: list, principal: str = "acct:1",
               hold: Hold | None = None, fail: bool = False) -> tuple[dict, bool]:
    async with services.session_factory() as session:
        async with session.begin():
            return await run_idempotent(session=session, clock=services.clock, principal=principal,
                                        operation="test.op", key=key, request=request,
                                        action=make_action(session, note, calls, hold, fail))


async def test_same_key_same_input_replays_without_running_again(scratch):
    services, calls = scratch, []
    first, replayed = await call(services, key="k-1", request={"amount": 5, "to": "x"}, note="first", calls=calls)
    assert replayed is False and first["note"] == "first"
    # same input in another key order: the fingerprint is canonical
    again, replayed = await call(services, key="k-1", request={"to": "x", "amount": 5}, note="second", calls=calls)
    assert replayed is True
    assert again == first
    assert calls == ["first"]
    assert await scratch_rows(services) == [(first["scratch_id"], "first")]
    assert await record_count(services) == 1


async def test_keys_are_scoped_by_principal_and_operation(scratch):
    services, calls = scratch, []
    a, _ = await call(services, key="shared", request={"n": 1}, note="a", calls=calls, principal="acct:1")
    b, replayed = await call(services, key="shared", request={"n": 1}, note="b", calls=calls, principal="acct:2")
    assert replayed is False and a != b
    assert calls == ["a", "b"]


async def test_same_key_different_input_is_refused_and_changes_nothing(scratch):
    services, calls = scratch, []
    first, _ = await call(services, key="k-2", request={"amount": 5}, note="first", calls=calls)
    with pytest.raises(IdempotencyKeyReused) as refused:
        await call(services, key="k-2", request={"amount": 6}, note="second", calls=calls)
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert refused.value.field == "idempotencyKey"
    assert calls == ["first"]
    assert await scratch_rows(services) == [(first["scratch_id"], "first")]


async def test_a_failing_action_leaves_no_record_and_may_be_retried(scratch):
    services, calls = scratch, []
    with pytest.raises(RuntimeError):
        await call(services, key="k-3", request={"amount": 1}, note="broken", calls=calls, fail=True)
    assert await record_count(services) == 0
    assert await scratch_rows(services) == []
    result, replayed = await call(services, key="k-3", request={"amount": 1}, note="retry", calls=calls)
    assert replayed is False and result["note"] == "retry"
    assert calls == ["broken", "retry"]
    assert [note for _, note in await scratch_rows(services)] == ["retry"]


async def test_invalid_keys_are_refused_before_anything_runs(scratch):
    services, calls = scratch, []
    for key in ("", "   ", "k" * 201):
        with pytest.raises(Exception) as refused:
            await call(services, key=key, request={}, note="never", calls=calls)
        assert getattr(refused.value, "code", None) == "INVALID"
    assert calls == [] and await record_count(services) == 0


async def test_twenty_concurrent_callers_run_the_action_once(scratch):
    services, calls = scratch, []
    # whoever takes the key first keeps it until the other 19 are queued on it
    results = await asyncio.gather(*[
        call(services, key="burst", request={"amount": 7}, note=f"caller-{i}", calls=calls,
             hold=until_waiting(services, 19))
        for i in range(20)
    ])
    assert len(calls) == 1
    rows = await scratch_rows(services)
    assert len(rows) == 1
    winner = {"scratch_id": rows[0][0], "note": rows[0][1]}
    assert all(result == winner for result, _ in results)
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 19
    assert await record_count(services) == 1


async def test_concurrent_callers_after_a_failed_first_attempt_still_run_once(scratch):
    """The first holder of the key fails and rolls back: exactly one waiter then runs the action."""
    services, calls = scratch, []

    holding = asyncio.Event()

    async def hold_until_all_queued() -> None:
        holding.set()
        await until_waiting(services, 8)()

    async def failing_first():
        with pytest.raises(RuntimeError):
            await call(services, key="flaky", request={"a": 1}, note="broken", calls=calls,
                       hold=hold_until_all_queued, fail=True)

    async def later(i: int):
        await holding.wait()  # the failing caller holds the key now
        # the one that takes the key after the failure keeps it until the other 7 queue again
        return await call(services, key="flaky", request={"a": 1}, note=f"later-{i}", calls=calls,
                          hold=until_waiting(services, 7))

    outcomes = await asyncio.gather(failing_first(), *[later(i) for i in range(8)])
    results = [o for o in outcomes if o is not None]
    rows = await scratch_rows(services)
    assert len(rows) == 1 and rows[0][1].startswith("later-")
    assert len([c for c in calls if c.startswith("later-")]) == 1
    assert all(result == {"scratch_id": rows[0][0], "note": rows[0][1]} for result, _ in results)
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 7


# --- refusals: the first answer of a key, like a success (idempotent_transaction) ---------------


async def call_own(services, *, key: str, request, note: str, calls: list, refuse: DomainError | None = None,
                   principal: str = "acct:1", delay: float = 0.0) -> dict:
    """The whole convention as resolvers run it: its own transaction, the answer built inside it."""
    async def action(session) -> dict:
        calls.append(note)
        new_id = (await session.execute(text("INSERT INTO scratch (note) VALUES (:n) RETURNING id"),
                                        {"n": note})).scalar_one()
        if delay:
            await asyncio.sleep(delay)
        if refuse is not None:
            raise refuse
        return {"scratch_id": new_id}

    async def answer(session, result: dict) -> dict:
        note = (await session.execute(text("SELECT note FROM scratch WHERE id = :i"),
                                      {"i": result["scratch_id"]})).scalar_one()
        return {"scratch_id": result["scratch_id"], "note": note}

    return await idempotent_transaction(session_factory=services.session_factory, clock=services.clock,
                                        principal=principal, operation="test.op", key=key, request=request,
                                        action=action, answer=answer)


async def test_a_refusal_is_the_keys_answer_and_is_replayed(scratch):
    services, calls = scratch, []
    with pytest.raises(DomainError) as first:
        await call_own(services, key="r-1", request={"n": 1}, note="refused", calls=calls,
                       refuse=DomainError("OUT_OF_STOCK", "Not enough stock left.", "quantity"))
    assert (first.value.code, first.value.message, first.value.field) == (
        "OUT_OF_STOCK", "Not enough stock left.", "quantity")
    assert await scratch_rows(services) == [] and await record_count(services) == 1
    # the cause is gone, but the key's answer stays: the action does not run again
    with pytest.raises(ReplayedRefusal) as again:
        await call_own(services, key="r-1", request={"n": 1}, note="later", calls=calls)
    assert (again.value.code, again.value.message, again.value.field) == (
        "OUT_OF_STOCK", "Not enough stock left.", "quantity")
    assert calls == ["refused"] and await scratch_rows(services) == []
    # another input under that key is still refused as a reused key; a new key runs
    with pytest.raises(IdempotencyKeyReused):
        await call_own(services, key="r-1", request={"n": 2}, note="other", calls=calls)
    done = await call_own(services, key="r-2", request={"n": 1}, note="fresh", calls=calls)
    assert done["note"] == "fresh" and calls == ["refused", "fresh"]


@pytest.mark.parametrize("code", sorted(NOT_RECORDED - {"IDEMPOTENCY_KEY_REUSED"}))
async def test_a_transient_refusal_is_not_recorded_and_may_be_retried(scratch, code):
    services, calls = scratch, []
    with pytest.raises(DomainError) as refused:
        await call_own(services, key="t-1", request={"n": 1}, note="refused", calls=calls,
                       refuse=DomainError(code, "Try again later."))
    assert refused.value.code == code and not isinstance(refused.value, ReplayedRefusal)
    assert await record_count(services) == 0 and await scratch_rows(services) == []
    retried = await call_own(services, key="t-1", request={"n": 1}, note="retry", calls=calls)
    assert retried["note"] == "retry" and calls == ["refused", "retry"]
    assert await record_count(services) == 1


async def test_a_refusal_at_commit_is_recorded_as_the_keys_answer(scratch):
    """A deferred check that refuses at commit (as the redemption's stock does, SQLSTATE TPH01)
    is the key's answer too, though the refused transaction is gone by then."""
    services, calls = scratch, []
    async with services.engine.begin() as connection:
        await connection.execute(text(
            "CREATE FUNCTION scratch_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.note = 'sold out' THEN RAISE EXCEPTION 'OUT_OF_STOCK' USING ERRCODE = 'TPH01',"
            " DETAIL = 'Not enough stock left.', HINT = 'quantity'; END IF; RETURN NULL; END $$"))
        await connection.execute(text(
            "CREATE CONSTRAINT TRIGGER scratch_refuse AFTER INSERT ON scratch DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION scratch_refuse()"))
    with pytest.raises(DomainError) as first:
        await call_own(services, key="c-1", request={"n": 1}, note="sold out", calls=calls)
    assert (first.value.code, first.value.field) == ("OUT_OF_STOCK", "quantity")
    assert await scratch_rows(services) == [] and await record_count(services) == 1
    with pytest.raises(ReplayedRefusal) as again:
        await call_own(services, key="c-1", request={"n": 1}, note="in stock", calls=calls)
    assert again.value.code == "OUT_OF_STOCK" and calls == ["sold out"]


async def test_concurrent_callers_of_a_refused_key_all_get_one_answer(scratch):
    services, calls = scratch, []

    async def caller(i: int):
        try:
            return await call_own(services, key="burst-refused", request={"n": 1}, note=f"caller-{i}",
                                  calls=calls, delay=0.05, refuse=DomainError("LIMIT_REACHED", "At most 1.", "quantity"))
        except DomainError as refused:
            return (refused.code, refused.message, refused.field)

    answers = await asyncio.gather(*(caller(i) for i in range(8)))
    assert set(answers) == {("LIMIT_REACHED", "At most 1.", "quantity")}
    assert await scratch_rows(services) == [] and await record_count(services) == 1


# --- the API: signUp(input: {idempotencyKey}) ------------------------------------------------


def sign_up_input(email: str, name: str = "幂等用户", key: str | None = "signup-key-1") -> dict:
    data = {"kind": "PERSON", "displayName": name, "email": email, "password": PASSWORD}
    if key is not None:
        data["idempotencyKey"] = key
    return {"input": data}


async def account_count(services) -> int:
    async with services.session_factory() as session:
        return (await session.execute(select(func.count()).select_from(Account))).scalar_one()


async def test_sign_up_with_the_same_key_returns_the_same_account(api, services):
    email = unique_email("idem")
    first = await api.data(SIGN_UP, sign_up_input(email))
    assert first["signUp"]["errors"] == []
    second = await api.data(SIGN_UP, sign_up_input(email))
    assert second["signUp"]["errors"] == []
    assert second["signUp"]["account"]["id"] == first["signUp"]["account"]["id"]
    assert await account_count(services) == 1

    before = await table_counts(services)
    reused = await api.data(SIGN_UP, sign_up_input(email, name="另一个名字"))
    assert reused["signUp"]["account"] is None
    assert [(e["code"], e["field"]) for e in reused["signUp"]["errors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert await table_counts(services) == before
    assert_no_leak(api.last_response)


async def test_concurrent_sign_ups_with_one_key_create_one_account(api, services):
    email = unique_email("idem-burst")
    bodies = await asyncio.gather(*[api.data(SIGN_UP, sign_up_input(email, key="burst-key")) for _ in range(6)])
    ids = {body["signUp"]["account"]["id"] for body in bodies}
    assert all(body["signUp"]["errors"] == [] for body in bodies), bodies
    assert len(ids) == 1
    assert await account_count(services) == 1


async def test_a_refused_sign_up_replays_its_refusal(api, services):
    taken = unique_email("taken")
    assert (await api.data(SIGN_UP, sign_up_input(taken, key=None)))["signUp"]["errors"] == []
    before = await table_counts(services)
    refused = await api.data(SIGN_UP, sign_up_input(taken, key="retry-me"))
    assert [e["code"] for e in refused["signUp"]["errors"]] == ["EMAIL_TAKEN"]
    # no account; the key's record holds the refusal
    assert await table_counts(services) == {**before, "idempotency_records": before["idempotency_records"] + 1}
    assert await api.data(SIGN_UP, sign_up_input(taken, key="retry-me")) == refused
    # the same contact with other details is another request under that key: refused as reused
    renamed = await api.data(SIGN_UP, sign_up_input(taken, name="改名", key="retry-me"))
    assert [e["code"] for e in renamed["signUp"]["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    # another email is another caller (anonymous keys are scoped by who the caller says they are)
    fresh = unique_email("fresh")
    retried = await api.data(SIGN_UP, sign_up_input(fresh, key="retry-me"))
    assert retried["signUp"]["errors"] == [] and retried["signUp"]["account"]["id"]


async def test_an_anonymous_sign_up_key_never_replays_to_another_password(api, services):
    """Issue 8: the same key and public fields with another password returned the first caller's
    account id. The fingerprint holds a keyed hash of the password (never the password)."""
    email = unique_email("idem-pw")
    first = await api.data(SIGN_UP, sign_up_input(email, key="shared-key"))
    assert first["signUp"]["errors"] == []
    other = sign_up_input(email, key="shared-key")
    other["input"]["password"] = "another horse battery"
    body = await api.data(SIGN_UP, other)
    assert body["signUp"]["account"] is None
    assert [(e["code"], e["field"]) for e in body["signUp"]["errors"]] == [("IDEMPOTENCY_KEY_REUSED", "idempotencyKey")]
    assert first["signUp"]["account"]["id"] not in str(body)
    assert await account_count(services) == 1
    async with services.session_factory() as session:
        stored = (await session.execute(text("SELECT principal || fingerprint || coalesce(result::text, '')"
                                             " FROM idempotency_records"))).scalars().all()
    assert stored and not any(PASSWORD in row or "another horse" in row or email in row for row in stored)
    # the first caller's retry still gets their account
    again = await api.data(SIGN_UP, sign_up_input(email, key="shared-key"))
    assert again["signUp"]["account"]["id"] == first["signUp"]["account"]["id"]


async def test_an_anonymous_sign_up_key_is_scoped_to_its_caller(api, services):
    """Anonymous callers all shared one principal: another person who happens to send the same key
    gets a result of their own, never the first caller's account."""
    first = await api.data(SIGN_UP, sign_up_input(unique_email("idem-a"), name="甲", key="signup"))
    second = await api.data(SIGN_UP, sign_up_input(unique_email("idem-b"), name="乙", key="signup"))
    assert first["signUp"]["errors"] == [] and second["signUp"]["errors"] == []
    assert second["signUp"]["account"]["id"] != first["signUp"]["account"]["id"]
    assert second["signUp"]["account"]["displayName"] == "乙"
    assert await account_count(services) == 2
    # the identity number is part of the input too (as its keyed hash)
    person = sign_up_input(unique_email("idem-c"), key="with-id")
    person["input"]["nationalId"] = "440304199003072312"
    made = await api.data(SIGN_UP, person)
    assert made["signUp"]["errors"] == [], made
    person["input"]["nationalId"] = "440304199003072320"
    body = await api.data(SIGN_UP, person)
    assert body["signUp"]["account"] is None
    assert [e["code"] for e in body["signUp"]["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]
    assert await account_count(services) == 3
