"""Only wallets/ reads or writes the point ledger's tables (issue 9): wallets, point_lots,
point_holds, hold_draws, wallet_entries, expiry_runs and expiry_notices. Everything else calls the
functions of wallets/ (lock, credit, hold, post, release, expire, read, audit, jobs).

Read from the source: every string literal (f-strings and implicit concatenation included) that
names one of those tables where SQL names a table (FROM, JOIN, INTO, UPDATE, TABLE ...), and every
use of a wallet model outside an import or a type annotation (select(PointLot), session.get(...),
PointHold(...)). migrations/ is exempt (it creates the tables and the plpgsql that runs on them);
so are the few tests and benchmarks listed below, each for a stated reason."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("wallets", "point_lots", "point_holds", "hold_draws", "wallet_entries", "expiry_runs", "expiry_notices")
MODELS = ("Wallet", "PointLot", "WalletEntry", "PointHold", "HoldDraw", "ExpiryRun", "ExpiryNotice")
MODEL_MODULES = ("wallets.models", "accounts.wallets")  # where the models live, and lived
OWNER = ("wallets",)
EXEMPT_DIRS = ("migrations", ".venv", "node_modules", ".git")

# files outside wallets/ allowed to name the tables, and why; each must still need it (see below)
ALLOWED = {
    # they assert on the journal and the counters themselves, independently of the code under test
    "tests/wallets/test_ledger_domain.py": "counts expire entries and runs; tampers counters to prove the audit sees it",
    "tests/wallets/test_ledger_invariants.py": "checks counters, lots and draws against the journal",
    "tests/mall/test_mall_invariants.py": "checks holds, draws and wallets against the journal",
    "tests/mall/test_mall_races.py": "checks holds and wallet counters after concurrent redemptions",
    "tests/disclosure/fixtures.py": "reads every wallet and lot id, to prove no public list shows one",
    "bench/hot_listing.py": "checks every wallet adds up after the run",
    "bench/issuance.py": "the asyncpg baseline writes the same rows as the domain, to compare",
    # the raw-SQL baselines (and the million expired lots the expiry baseline sweeps, seeded in SQL)
    "bench/expiry.py": "seeds a million expired lots; the baseline is three raw statements",
    "bench/plain_app.py": "the plain Starlette baseline reads the wallet with its own SQL",
}

_TABLE = "|".join(TABLES)
# a table named where SQL names tables: FROM x, JOIN x, INTO x, UPDATE x, TABLE x, USING x, "FROM a, x"
SQL_TABLE = re.compile(
    rf"\b(?:FROM|JOIN|INTO|UPDATE|TABLE|USING)\s+(?:ONLY\s+)?(?:public\.)?\"?({_TABLE})\b\"?"
    rf"|\bFROM\s+\w+(?:\s+(?:AS\s+)?\w+)?\s*,\s*({_TABLE})\b",
)  # upper-case keywords, as all SQL here is written: prose ("drawn from wallets") is not SQL


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal, an f-string's constant parts joined around a placeholder."""
    found = []
    in_fstring = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    parts.append(value.value)
                    in_fstring.add(id(value))
                else:
                    parts.append(" x ")
            found.append((node.lineno, "".join(parts)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in in_fstring:
            found.append((node.lineno, node.value))
    return found


def _annotations(tree: ast.AST) -> set[int]:
    """ids of every node inside a type annotation (argument, return, variable)."""
    inside: set[int] = set()
    roots = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            roots.append(node.returns)
            args = node.args
            roots += [a.annotation for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            roots += [a.annotation for a in (args.vararg, args.kwarg) if a is not None]
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    for root in roots:
        if root is not None:
            inside.update(id(n) for n in ast.walk(root))
    return inside


def _model_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The local names this module binds to the wallet models, and to their module."""
    models, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in MODEL_MODULES:
            models.update(a.asname or a.name for a in node.names if a.name in MODELS)
        elif isinstance(node, ast.ImportFrom) and node.module in ("wallets", "accounts"):
            modules.update(a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in MODEL_MODULES)
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name in MODEL_MODULES)
    return models, modules


def violations(source: str) -> list[str]:
    """What in this source touches the ledger's tables: SQL naming them, or ORM use of their models."""
    tree = ast.parse(source)
    found = [f"line {line}: SQL on {m.group(1) or m.group(2)}"
             for line, text in _strings(tree) for m in SQL_TABLE.finditer(text)]
    annotations = _annotations(tree)
    models, modules = _model_names(tree)
    for node in ast.walk(tree):
        if id(node) in annotations:
            continue
        if isinstance(node, ast.Name) and node.id in models:
            found.append(f"line {node.lineno}: ORM use of {node.id}")
        elif (isinstance(node, ast.Attribute) and node.attr in MODELS and
              isinstance(node.value, ast.Name) and node.value.id in modules):
            found.append(f"line {node.lineno}: ORM use of {node.attr}")
    return sorted(set(found), key=lambda v: (int(v.split()[1].rstrip(":")), v))


def outside_files() -> list[Path]:
    return sorted(
        path for path in ROOT.rglob("*.py")
        if path.relative_to(ROOT).parts[0] not in (*OWNER, *EXEMPT_DIRS)
        and not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    )


def test_only_wallets_touches_the_ledger_tables():
    offenders = []
    for path in outside_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative in ALLOWED or relative == "tests/structure/test_wallet_tables_owned.py":
            continue
        offenders += [f"{relative} {v}" for v in violations(path.read_text(encoding="utf-8"))]
    assert offenders == [], "call wallets/ functions instead:\n" + "\n".join(offenders)


def test_every_exemption_is_still_needed():
    stale = [path for path in ALLOWED if not violations((ROOT / path).read_text(encoding="utf-8"))]
    assert stale == [], f"these no longer touch the ledger's tables; drop them from ALLOWED: {stale}"


def test_the_scan_catches_sql_and_orm_use():
    caught = violations('''
"""The wallets hold points; nothing here reads wallets."""
from wallets import models
from wallets.models import PointLot, WalletEntry

async def lock(conn, found):
    await conn.execute("SELECT 1 FROM wallets WHERE account_id = $1 FOR UPDATE", found)

async def lots(conn, table_alias):
    return await conn.fetch(
        f"SELECT l.expires_at FROM behaviour_reports b"
        f" LEFT JOIN point_lots l ON l.id = b.lot_id WHERE {table_alias}")

async def count(session):
    return await session.execute(select(func.count()).select_from(WalletEntry))

async def lot(session, lot_id):
    return await session.get(models.PointLot, lot_id)

def shown(row: PointLot) -> str:
    return "update the wallets view"
''')
    assert caught == ["line 7: SQL on wallets", "line 11: SQL on point_lots", "line 15: ORM use of WalletEntry",
                      "line 18: ORM use of PointLot"]


def test_the_scan_leaves_prose_and_other_tables_alone():
    assert violations('''
"""Points leave the wallets only by a hold; see wallets/post.py for cancellation."""
QUERY = "SELECT * FROM wallets_view_bench"  # not a ledger table
MESSAGE = "Nothing moves points between wallets."
NOTE = "Points drawn from wallets first"

class Wallet:  # a GraphQL type of the same name as a model, not the model
    pass

def summary(row: PointLot) -> Wallet:
    return Wallet()
''') == []
