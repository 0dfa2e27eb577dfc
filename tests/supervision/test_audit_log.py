"""The supervision audit log (art. 30-31): append-only in the database, gap-free and hash-chained;
tampering found by the verifier, the CLI and the regulator's query."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from accounts.models import AuditEvent
from accounts.service import record_audit_event
from audit_log.chain import GENESIS, row_hash
from audit_log.service import verify_chain
from server.migrate import downgrade, upgrade
from tests.conftest import DECIDE, approved, organisation, person, regulator, sign_in

ROOT = Path(__file__).resolve().parents[2]
# the revision migration 0024 (the chain) follows, whatever the merges made it
BEFORE_CHAIN = re.search(r"^down_revision = '([^']+)'", (ROOT / "migrations" / "versions" / "0024_audit_chain.py")
                         .read_text(encoding="utf-8"), re.M).group(1)
# the regulator's contracts (frontend_contracts/regulator/), as the front-end sends them
AUDIT_LOG = (ROOT / "frontend_contracts" / "regulator" / "AuditLog.graphql").read_text(encoding="utf-8")
STATUS = (ROOT / "frontend_contracts" / "regulator" / "AuditChainStatus.graphql").read_text(encoding="utf-8")
GRANT = """
mutation Grant($input: GrantRoleInput!) { grantRole(input: $input) { grant { id status } errors { code } } }"""
REVOKE = """
mutation Revoke($id: ID!, $reason: String!) {
  revokeRole(input: {applicationId: $id, reason: $reason}) { application { id status } errors { code } }
}"""


async def verify(services, **kwargs):
    async with services.session_factory() as session:
        return await verify_chain(session=session, **kwargs)


async def rows(services) -> list:
    async with services.session_factory() as session:
        return (await session.execute(select(AuditEvent.__table__).order_by(AuditEvent.seq))).all()


async def as_superuser(services, *statements: str) -> None:
    """What a superuser could do: switch the append-only triggers off, change rows, switch them on."""
    async with services.engine.begin() as connection:
        await connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"))
        for statement in statements:
            await connection.execute(text(statement))
        await connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update_delete"))


async def some_acts(api) -> dict:
    """A few real acts of the regulator through the API: approvals, a grant, a revocation."""
    reg = await regulator(api)
    operator = await approved(api, "APP_OPERATOR", reg=reg)
    merchant = await approved(api, "MERCHANT", reg=reg)
    reviewer = await person(api)
    granted = (await api.data(GRANT, {"input": {"accountId": reviewer.account_id, "role": "NEUTRALITY_REVIEWER"}},
                              token=reg.token))["grantRole"]
    assert granted["errors"] == [], granted
    role_id = next(r["id"] for r in (await api.data("{ me { roles { id role } } }", token=merchant.token))
                   ["me"]["roles"] if r["role"] == "MERCHANT")
    revoked = (await api.data(REVOKE, {"id": role_id, "reason": "licence withdrawn"}, token=reg.token))["revokeRole"]
    assert revoked["errors"] == [], revoked
    return {"regulator": reg, "operator": operator, "merchant": merchant, "reviewer": reviewer,
            "revoked_role": role_id}


async def test_the_chain_of_real_acts_is_gap_free_and_verifies(api, services):
    acts = await some_acts(api)
    entries = await rows(services)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == GENESIS
    for earlier, later in zip(entries, entries[1:]):
        assert later.prev_hash == earlier.hash
    assert all(row_hash(e) == e.hash for e in entries)
    status = await verify(services)
    assert status.intact and status.first_break is None
    assert (status.entries, status.head_seq, status.head_hash) == (len(entries), entries[-1].seq, entries[-1].hash)
    # the regulator's acts carry the role it acted in and the public facts before and after
    revoked = next(e for e in entries if e.action == "role.revoked")
    assert revoked.actor_account_id == uuid.UUID(acts["regulator"].account_id)
    assert revoked.actor_roles == ["regulator"]
    assert (revoked.before, revoked.after) == ({"status": "active"}, {"status": "revoked"})
    approvals = [e for e in entries if e.action == "role.approved"]
    assert [(e.details["role"], e.before, e.after) for e in approvals] == [
        ("app_operator", {"status": "pending"}, {"status": "active"}),
        ("merchant", {"status": "pending"}, {"status": "active"})]
    granted = next(e for e in entries if e.action == "role.granted")
    assert (granted.before, granted.after) == (None, {"status": "active"})


async def test_update_delete_and_truncate_are_refused_by_the_database(api, services):
    await some_acts(api)
    for statement in ("UPDATE audit_events SET action = 'role.nothing' WHERE seq = 2",
                      "UPDATE audit_events SET after = '{\"status\": \"pending\"}'::jsonb",
                      "DELETE FROM audit_events WHERE seq = 3",
                      "TRUNCATE audit_events"):
        with pytest.raises(DBAPIError) as refused:
            async with services.engine.begin() as connection:
                await connection.execute(text(statement))
        assert "audit_events is append-only" in str(refused.value.orig), statement
        assert refused.value.orig.sqlstate == "TPH30"
    assert (await verify(services)).intact


async def test_a_changed_entry_is_found(api, services):
    await some_acts(api)
    entries = await rows(services)
    target = next(e for e in entries if e.action == "role.revoked")
    await as_superuser(services, "UPDATE audit_events SET after = '{\"status\": \"active\"}'::jsonb "
                                 f"WHERE seq = {target.seq}")
    status = await verify(services)
    assert not status.intact
    assert (status.first_break.seq, status.first_break.problem) == (target.seq, "hash")
    assert status.first_break.found == target.hash and status.first_break.expected != target.hash
    assert status.entries == target.seq - 1


async def test_a_deleted_middle_entry_is_found(api, services):
    await some_acts(api)
    await as_superuser(services, "DELETE FROM audit_events WHERE seq = 3")
    status = await verify(services)
    assert (status.first_break.seq, status.first_break.problem) == (3, "gap")
    assert (status.first_break.expected, status.first_break.found) == ("3", "4")


async def test_reordered_entries_are_found(api, services):
    await some_acts(api)
    await as_superuser(services, "UPDATE audit_events SET seq = 1000000 WHERE seq = 4",
                       "UPDATE audit_events SET seq = 4 WHERE seq = 5",
                       "UPDATE audit_events SET seq = 5 WHERE seq = 1000000")
    status = await verify(services)
    assert status.first_break.seq == 4 and status.first_break.problem in ("link", "hash")


async def test_a_recomputed_chain_or_a_cut_tail_is_found_against_a_recorded_head(api, services):
    """A superuser who rewrites an entry and recomputes every hash after it leaves a chain that
    verifies on its own; the head recorded outside the database before shows it. So does cutting
    entries off the end."""
    await some_acts(api)
    head = await verify(services)
    entries = await rows(services)
    target = entries[2]
    statements = [f"UPDATE audit_events SET action = 'role.nothing' WHERE seq = {target.seq}"]
    prev = target.prev_hash
    for entry in entries[2:]:
        fields = entry._asdict() | {"prev_hash": prev}
        if entry.seq == target.seq:
            fields["action"] = "role.nothing"
        digest = row_hash(SimpleNamespace(**fields))
        statements.append(f"UPDATE audit_events SET prev_hash = '{prev}', hash = '{digest}' WHERE seq = {entry.seq}")
        prev = digest
    await as_superuser(services, *statements)
    assert (await verify(services)).intact  # the chain alone cannot tell
    anchored = await verify(services, anchors={head.head_seq: head.head_hash})
    assert (anchored.first_break.seq, anchored.first_break.problem) == (head.head_seq, "anchor")

    await as_superuser(services, f"DELETE FROM audit_events WHERE seq >= {head.head_seq - 1}")
    cut = await verify(services, anchors={head.head_seq: head.head_hash})
    assert (cut.first_break.seq, cut.first_break.problem) == (head.head_seq - 1, "truncated")


async def test_parallel_acts_from_many_connections_make_one_gap_free_chain(services, clock):
    """Twenty transactions on their own connections at once, every fourth rolled back: the entries
    of the others are numbered 1..15 without gaps, in commit order, and the chain verifies."""

    async def act(n: int) -> None:
        async with services.session_factory() as session:
            try:
                async with session.begin():
                    record_audit_event(session, clock, actor=None, action="test.parallel", subject_type="test",
                                       subject_id=uuid.uuid4(), before={"n": n}, after={"n": n + 1})
                    await session.flush()
                    await session.execute(text("SELECT pg_sleep(0.01)"))  # overlap the transactions
                    if n % 4 == 3:
                        raise RuntimeError("roll back")
            except RuntimeError:
                pass

    await asyncio.gather(*(act(n) for n in range(20)))
    entries = await rows(services)
    assert [e.seq for e in entries] == list(range(1, 16))
    assert sorted(e.before["n"] for e in entries) == [n for n in range(20) if n % 4 != 3]
    assert (await verify(services)).intact


async def test_several_entries_of_one_transaction_follow_one_another(services, clock):
    async with services.session_factory() as session:
        async with session.begin():
            for n in range(3):
                record_audit_event(session, clock, actor=None, action="test.many", subject_type="test",
                                   subject_id=None, before=None, after={"n": n}, note=f"{n}")
    entries = await rows(services)
    assert [(e.seq, e.after["n"], e.details["note"]) for e in entries] == [(1, 0, "0"), (2, 1, "1"), (3, 2, "2")]
    assert (await verify(services, page_size=2)).intact  # verified in pages of two


async def test_the_regulator_reads_the_log_filtered_and_paged(api, services, clock):
    acts = await some_acts(api)
    reg = acts["regulator"]
    everything = (await api.data(AUDIT_LOG, {"first": 100}, token=reg.token))["auditLog"]
    seqs = [edge["node"]["seq"] for edge in everything["edges"]]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(await rows(services))

    pages, after = [], None
    while True:
        page = (await api.data(AUDIT_LOG, {"first": 2, "after": after}, token=reg.token))["auditLog"]
        pages.extend(edge["node"]["seq"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == seqs

    approvals = (await api.data(AUDIT_LOG, {"action": "role.approved"}, token=reg.token))["auditLog"]["edges"]
    assert [e["node"]["action"] for e in approvals] == ["role.approved", "role.approved"]
    assert approvals[0]["node"]["after"] == '{"status":"active"}'
    assert approvals[0]["node"]["actorRoles"] == ["regulator"]
    mine = (await api.data(AUDIT_LOG, {"actorId": reg.account_id}, token=reg.token))["auditLog"]["edges"]
    assert {e["node"]["action"] for e in mine} == {"role.approved", "role.granted", "role.revoked"}
    subject = (await api.data(AUDIT_LOG, {"subjectType": "account_role", "subjectId": acts["revoked_role"]},
                              token=reg.token))["auditLog"]["edges"]
    assert [e["node"]["action"] for e in subject] == ["role.revoked", "role.approved"]
    assert (await api.data(AUDIT_LOG, {"actorId": "not-an-id"}, token=reg.token))["auditLog"]["edges"] == []

    clock.advance(days=1)
    reg = await sign_in(api, reg.login)
    later = await organisation(api, apply_for=["MERCHANT"])
    app_id = next(r["id"] for r in (await api.data("{ me { roles { id role } } }", token=later.token))
                  ["me"]["roles"] if r["role"] == "MERCHANT")
    await api.data(DECIDE, {"input": {"applicationId": app_id, "approve": True}}, token=reg.token)
    since = (clock.now() - timedelta(minutes=1)).isoformat()
    recent = (await api.data(AUDIT_LOG, {"since": since, "action": "role.approved"}, token=reg.token))["auditLog"]
    assert [e["node"]["subjectId"] for e in recent["edges"]] == [app_id]
    before = (await api.data(AUDIT_LOG, {"until": since, "action": "role.approved"}, token=reg.token))["auditLog"]
    assert len(before["edges"]) == 2

    status = (await api.data(STATUS, token=reg.token))["auditChainStatus"]
    assert status["intact"] and status["firstBreak"] is None and status["headSeq"] == status["entries"] > 0

    too_many = await api.gql(AUDIT_LOG, {"first": 101}, token=reg.token)
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID_PAGE_SIZE"
    naive = await api.gql(AUDIT_LOG, {"since": "2026-03-02T09:00:00"}, token=reg.token)
    assert naive["errors"][0]["extensions"]["code"] == "INVALID"


async def test_only_the_regulator_reads_the_log(api, services):
    acts = await some_acts(api)
    for actor in (acts["operator"], acts["reviewer"], await person(api)):
        for query in (AUDIT_LOG, STATUS):
            body = await api.gql(query, token=actor.token)
            assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    anonymous = await api.gql(STATUS)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_regulator_sees_a_broken_chain(api, services):
    acts = await some_acts(api)
    await as_superuser(services, "DELETE FROM audit_events WHERE seq = 2")
    status = (await api.data(STATUS, token=acts["regulator"].token))["auditChainStatus"]
    assert status["intact"] is False and status["entries"] == 1
    assert status["firstBreak"] == {"seq": 2, "problem": "gap", "expected": "2", "found": "3"}


def run_cli(database: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`tanpuhui` of this checkout, in its own process, on the test's database."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
           and not k.startswith("TANPUHUI_")}
    env.update(DATABASE_URL=database, TANPUHUI_DATA_DIR=str(tmp_path / "cli"), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "server.cli", "audit-verify", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


async def test_the_cli_exits_non_zero_on_a_broken_chain(api, services, database, tmp_path):
    await some_acts(api)
    head = await verify(services)
    intact = await asyncio.to_thread(run_cli, database, tmp_path)
    assert intact.returncode == 0, intact.stderr
    assert "audit chain intact" in intact.stdout
    assert f"head seq {head.head_seq} hash {head.head_hash}" in intact.stdout
    anchored = await asyncio.to_thread(run_cli, database, tmp_path, "--anchor", f"{head.head_seq}:{head.head_hash}")
    assert anchored.returncode == 0, anchored.stderr

    await as_superuser(services, "UPDATE audit_events SET details = '{}'::jsonb WHERE seq = 3")
    broken = await asyncio.to_thread(run_cli, database, tmp_path)
    assert broken.returncode == 1
    assert "audit chain BROKEN at seq 3: hash" in broken.stderr and "Traceback" not in broken.stderr
    wrong_anchor = await asyncio.to_thread(run_cli, database, tmp_path, "--anchor", "2:" + "f" * 64)
    assert wrong_anchor.returncode == 1 and "BROKEN at seq 2: anchor" in wrong_anchor.stderr
    bad = await asyncio.to_thread(run_cli, database, tmp_path, "--anchor", "two:abc")
    assert bad.returncode == 2 and "SEQ:HASH" in bad.stderr


async def test_the_migration_chains_the_rows_already_there(embedded):
    """Rows written before 0024 are numbered in (at, id) order and chained; the chain verifies."""
    from tests.conftest import _admin, database_url
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"t_audit_{uuid.uuid4().hex[:8]}"
    await _admin(embedded, f"CREATE DATABASE {name}")
    url = database_url(embedded, name)
    engine = create_async_engine(url)
    try:
        await asyncio.to_thread(upgrade, url, BEFORE_CHAIN)
        ids = [uuid.uuid4() for _ in range(3)]
        async with engine.begin() as connection:
            for n, (id_, hour) in enumerate(zip(ids, (3, 1, 2))):
                await connection.execute(text(
                    "INSERT INTO audit_events (id, action, subject_type, details, at) "
                    "VALUES (:id, 'old.act', 'thing', CAST(:details AS jsonb), :at)"),
                    {"id": id_, "details": f'{{"n": {n}}}', "at": _at(hour)})
        await asyncio.to_thread(upgrade, url)
        async with engine.connect() as connection:
            chained = (await connection.execute(text("SELECT id, seq, actor_roles FROM audit_events ORDER BY seq"))).all()
        assert [(row.id, row.seq, row.actor_roles) for row in chained] == [
            (ids[1], 1, []), (ids[2], 2, []), (ids[0], 3, [])]
        from sqlalchemy.ext.asyncio import async_sessionmaker
        async with async_sessionmaker(engine)() as session:
            assert (await verify_chain(session=session)).intact
        await asyncio.to_thread(downgrade, url, BEFORE_CHAIN)
    finally:
        await engine.dispose()
        await _admin(embedded, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _at(hour: int):
    from datetime import datetime, timezone
    return datetime(2026, 1, 1, hour, 0, 0, 123456, tzinfo=timezone.utc)


async def test_what_a_rolled_back_savepoint_recorded_is_not_written(services, clock):
    async with services.session_factory() as session:
        async with session.begin():
            record_audit_event(session, clock, actor=None, action="test.kept", subject_type="test", subject_id=None)
            with pytest.raises(RuntimeError):
                async with session.begin_nested():
                    record_audit_event(session, clock, actor=None, action="test.dropped", subject_type="test",
                                       subject_id=None)
                    await session.execute(text("SELECT 1"))
                    raise RuntimeError("the savepoint rolls back")
            async with session.begin_nested():
                record_audit_event(session, clock, actor=None, action="test.released", subject_type="test",
                                   subject_id=None)
    async with services.session_factory() as session:
        record_audit_event(session, clock, actor=None, action="test.never_committed", subject_type="test",
                           subject_id=None)
        await session.execute(text("SELECT 1"))
    assert [(e.seq, e.action) for e in await rows(services)] == [(1, "test.kept"), (2, "test.released")]
    assert (await verify(services)).intact


async def test_an_audited_transaction_never_holds_the_chain_while_it_waits_for_a_lock(services, clock):
    """T1 records its entry, then waits for a lock T2 holds; T2 records its own and commits. Were the
    chain's lock taken when T1 recorded, the two would deadlock; it is taken at commit, so both
    commit, T2 first."""
    async with services.session_factory() as session:
        async with session.begin():
            record_audit_event(session, clock, actor=None, action="test.seed", subject_type="test", subject_id=None)
    holding = asyncio.Event()

    async def waiting_for_42() -> bool:
        async with services.engine.connect() as connection:  # its own snapshot of the activity each time
            return bool(await connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory' "
                "AND query = 'SELECT pg_advisory_xact_lock(42)'")))

    async def t2() -> None:
        async with services.session_factory() as session:
            async with session.begin():
                await session.execute(text("SELECT pg_advisory_xact_lock(42)"))
                holding.set()
                while not await waiting_for_42():
                    await asyncio.sleep(0.01)
                record_audit_event(session, clock, actor=None, action="test.t2", subject_type="test",
                                   subject_id=None)

    async def t1() -> None:
        await holding.wait()
        async with services.session_factory() as session:
            async with session.begin():
                record_audit_event(session, clock, actor=None, action="test.t1", subject_type="test",
                                   subject_id=None)
                await session.flush()
                await session.execute(text("SELECT pg_advisory_xact_lock(42)"))

    await asyncio.wait_for(asyncio.gather(t1(), t2()), timeout=60)
    assert [e.action for e in await rows(services)] == ["test.seed", "test.t2", "test.t1"]
    assert (await verify(services)).intact
