"""Database functions and triggers as source: one `.sql` file per function or trigger, in the `sql/`
folder of the package that owns its rule (wallets/sql/wallet_place_hold.sql, mall/sql/mall_redeem.sql).

A file is a header comment (the rule, its refusals in the order they are checked, who calls it)
and one CREATE statement, written as pg_get_functiondef / pg_get_triggerdef print it. Migrations
never read these files: each applies a frozen copy of the text as it was then, so an old migration
means the same forever; a change to a file needs a new migration that carries the new text.
tests/structure/test_sql_source.py holds the files and a migrated database to each other.

The files ship as package data (pyproject.toml: sql/*.sql), so they are found next to the module
in a checkout and in an installed wheel alike."""

from __future__ import annotations

import re
from importlib import resources

# the first statement of a file: what follows its header comment
_CREATES = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|CONSTRAINT\s+TRIGGER|TRIGGER)\s+"
                      r"(?:public\.)?(\w+)", re.IGNORECASE | re.MULTILINE)


def sql_names(package: str) -> list[str]:
    """The names of the `.sql` files in a package's sql/ folder (without the suffix), sorted."""
    folder = resources.files(package).joinpath("sql")
    if not folder.is_dir():
        return []
    return sorted(entry.name[:-4] for entry in folder.iterdir() if entry.name.endswith(".sql"))


def read_sql(package: str, name: str) -> str:
    """The text of `<package>/sql/<name>.sql`, header comment included."""
    return resources.files(package).joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def statement(text: str) -> str:
    """The CREATE statement of a file, without its header comment and the final semicolon:
    what the database holds of it."""
    found = _CREATES.search(text)
    if found is None:
        raise ValueError("no CREATE FUNCTION or CREATE TRIGGER statement")
    return text[found.start():].strip().removesuffix(";").rstrip()


def defines(text: str) -> tuple[str, str]:
    """What a file creates: ("function" or "trigger", its name)."""
    found = _CREATES.search(text)
    if found is None:
        raise ValueError("no CREATE FUNCTION or CREATE TRIGGER statement")
    kind = "function" if found.group(1).upper() == "FUNCTION" else "trigger"
    return kind, found.group(2)
