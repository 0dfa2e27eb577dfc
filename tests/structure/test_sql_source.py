"""The database functions and triggers are their `.sql` files (core/sql_source.py): a migrated
database holds exactly what the files say, every function and trigger of the public schema has
its file, and every file its function or trigger.

The comparison is pg_get_functiondef / pg_get_triggerdef against the file's CREATE statement,
with runs of whitespace taken as one space (the files wrap long lines) and nothing else
forgiven: a changed word, type, name or option in a body or a header is drift."""

from __future__ import annotations

import asyncio
import difflib
import uuid
from pathlib import Path

import asyncpg
import pytest

from core.sql_source import defines, read_sql, sql_names, statement
from server.migrate import downgrade, upgrade
from tests.conftest import database_url

ROOT = Path(__file__).resolve().parents[2]

FUNCTIONS = """
SELECT p.proname AS name, pg_get_functiondef(p.oid) AS definition FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                   AND d.deptype = 'e')
 ORDER BY p.proname, p.oid"""
TRIGGERS = """
SELECT t.tgname AS name, pg_get_triggerdef(t.oid) AS definition FROM pg_trigger t
  JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
 ORDER BY t.tgname, t.oid"""


def owners() -> list[str]:
    """The packages with a sql/ folder."""
    return sorted({path.parent.parent.name for path in ROOT.glob("*/sql/*.sql")})


def source_files() -> dict[tuple[str, str], tuple[str, str]]:
    """(kind, name) -> (the file, its statement), read the way the code reads them (package data)."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for package in owners():
        for name in sql_names(package):
            text = read_sql(package, name)
            key = defines(text)
            assert key not in found, f"{package}/sql/{name}.sql and {found[key][0]} both define {key}"
            found[key] = (f"{package}/sql/{name}.sql", statement(text))
    return found


async def database_definitions(conn: asyncpg.Connection) -> dict[tuple[str, str], list[str]]:
    """(kind, name) -> its definitions in the database (more than one: overloads)."""
    held: dict[tuple[str, str], list[str]] = {}
    for kind, query in (("function", FUNCTIONS), ("trigger", TRIGGERS)):
        for row in await conn.fetch(query):
            held.setdefault((kind, row["name"]), []).append(row["definition"])
    return held


def normalised(text: str) -> str:
    return " ".join(text.split()).removesuffix(";").rstrip()


def drift(files: dict, held: dict) -> list[str]:
    """What differs between the files and the database, one line (or diff) each; [] when nothing."""
    problems = []
    for key in sorted(files.keys() - held.keys()):
        problems.append(f"{files[key][0]} defines {key[0]} {key[1]}, which the database does not hold")
    for key in sorted(held.keys() - files.keys()):
        problems.append(f"{key[0]} {key[1]} is in the database but in no sql/ file")
    for key in sorted(files.keys() & held.keys()):
        path, text = files[key]
        definitions = held[key]
        if len(definitions) > 1:
            problems.append(f"{key[0]} {key[1]} has {len(definitions)} definitions in the database, {path} one")
        elif normalised(definitions[0]) != normalised(text):
            diff = difflib.unified_diff(text.splitlines(), definitions[0].strip().splitlines(),
                                        f"{path}", f"pg_get_{key[0]}def", lineterm="", n=1)
            problems.append(f"{path} differs from the database:\n" + "\n".join(diff))
    return problems


@pytest.fixture
async def conn(embedded, database):
    connection = await asyncpg.connect(host=embedded.pg_host, user="postgres",
                                       database=database.split("@/", 1)[1].split("?")[0])
    yield connection
    await connection.close()


def test_each_file_is_package_data_named_after_what_it_defines():
    paths = sorted(ROOT.glob("*/sql/*.sql"))
    assert {path.parent.parent.name for path in paths} >= {"wallets", "mall"}
    for path in paths:
        package, name = path.parent.parent.name, path.stem
        text = read_sql(package, name)
        assert text == path.read_text(encoding="utf-8")
        assert defines(text)[1] == name, f"{path.relative_to(ROOT)} defines {defines(text)}"
        header = text[:text.index(statement(text))]
        # the header says what rule it holds, its refusals and who calls it
        assert header.startswith(f"-- {name}:") and "Called by:" in header and "Refusal" in header, path


async def test_the_migrated_database_holds_exactly_the_files(conn):
    assert drift(source_files(), await database_definitions(conn)) == []


async def test_the_comparison_sees_drift(conn):
    """Not vacuous: a changed body, a changed trigger, a function without a file and a file
    without its function are each reported; rolled back, nothing is."""
    files = source_files()
    redeem = files[("function", "mall_redeem")][1]
    assert "code := 'OUT_OF_STOCK'" in redeem
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(redeem.replace("code := 'OUT_OF_STOCK'", "code := 'SOLD_OUT'"))
        await conn.execute("DROP TRIGGER redemptions_reserve_stock ON redemptions")
        await conn.execute(files[("trigger", "redemptions_reserve_stock")][1]
                           .replace("INITIALLY DEFERRED", "INITIALLY IMMEDIATE"))
        await conn.execute("CREATE FUNCTION public.stray() RETURNS integer LANGUAGE sql AS 'SELECT 1'")
        await conn.execute("DROP FUNCTION wallet_lock(uuid)")
        problems = drift(files, await database_definitions(conn))
    finally:
        await transaction.rollback()
    assert len(problems) == 4, problems
    assert problems[0] == "wallets/sql/wallet_lock.sql defines function wallet_lock, which the database does not hold"
    assert problems[1] == "function stray is in the database but in no sql/ file"
    assert problems[2].startswith("mall/sql/mall_redeem.sql differs") and "SOLD_OUT" in problems[2]
    assert problems[3].startswith("mall/sql/redemptions_reserve_stock.sql differs")
    assert "INITIALLY IMMEDIATE" in problems[3]
    assert drift(files, await database_definitions(conn)) == []


def test_whitespace_alone_is_not_drift_but_a_word_is():
    text = "CREATE FUNCTION public.f(a integer,\n    b text)\n RETURNS integer\nAS $function$ SELECT 1 $function$;"
    printed = "CREATE FUNCTION public.f(a integer, b text)\n RETURNS integer\nAS $function$ SELECT 1 $function$\n"
    key = ("function", "f")
    assert drift({key: ("x.sql", text)}, {key: [printed]}) == []
    assert drift({key: ("x.sql", text)}, {key: [printed.replace("SELECT 1", "SELECT 2")]}) != []
    assert drift({key: ("x.sql", text)}, {key: [printed.replace("b text", "b varchar")]}) != []


async def test_downgrading_0010_gives_back_the_rules_of_0009(embedded):
    """Migration 0010 applies the files' frozen copy; its downgrade restores what 0006 and 0008 made."""
    name = f"rules_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=embedded.pg_host, user="postgres", database="postgres")
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        url = database_url(embedded, name)
        conn = await asyncpg.connect(host=embedded.pg_host, user="postgres", database=name)
        try:
            await asyncio.to_thread(upgrade, url, "0009_api_key_scopes")
            before = await database_definitions(conn)
            await asyncio.to_thread(upgrade, url)
            assert drift(source_files(), await database_definitions(conn)) == []
            await asyncio.to_thread(downgrade, url, "0009_api_key_scopes")
            assert await database_definitions(conn) == before
            assert ("function", "wallet_lock") not in before
        finally:
            await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
