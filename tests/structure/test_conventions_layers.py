"""The arrows point one way: server -> resolvers/schema -> domain -> core -> database.

Read from the source itself (every import statement, at any depth of a module), so a late import
inside a function counts like one at the top. The closing note of issue 9 shows the same two
facts with one grep."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# the layers, top to bottom; a package may import only from its own layer or those below it
COMPOSITION = ("server",)
API = ("resolvers", "schema")
DOMAIN = ("accounts", "wallets", "reductions", "mall", "neutrality", "reviews", "measures", "disclosure", "scenarios",
          "supervision", "expiry_jobs")
LOWEST = ("core", "audit_log")  # audit_log: the audit log, below every domain that records to it
BELOW_SERVER = (*API, *DOMAIN, *LOWEST, "frontend_contracts", "migrations")


def modules(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module name an import statement in `path` names."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)} imports {name}" for path in modules(*packages)
            for name in sorted(imported(path)) if name.split(".")[0] in forbidden]


def test_nothing_below_server_imports_server():
    assert offenders(BELOW_SERVER, COMPOSITION) == []


def test_the_schema_imports_no_resolver():
    assert offenders(("schema",), ("resolvers",)) == []


def test_domain_packages_know_nothing_of_graphql_or_the_api():
    assert offenders((*DOMAIN, *LOWEST), (*API, "strawberry", "graphql", "starlette")) == []


def test_core_imports_no_domain():
    assert offenders(LOWEST, DOMAIN) == []


def test_no_resolver_imports_another_resolvers_internals():
    shared = {"resolvers.common", "resolvers.runner"}
    found = [f"{path.relative_to(ROOT)} imports {name}" for path in modules("resolvers")
             for name in sorted(imported(path))
             if name.startswith("resolvers.") and name not in shared and name != f"resolvers.{path.stem}"]
    assert found == []


def test_settings_come_only_from_the_settings_object():
    """Only server/settings.py reads the environment."""
    found = [str(path.relative_to(ROOT)) for path in modules(*COMPOSITION, *BELOW_SERVER)
             if path != ROOT / "server" / "settings.py"
             and re.search(r"\bos\.(environ|getenv)\b", path.read_text(encoding="utf-8"))]
    assert found == []


def test_only_one_place_reads_strawberrys_private_schema():
    found = [str(path.relative_to(ROOT)) for path in modules(*COMPOSITION, *BELOW_SERVER)
             if re.search(r"\._schema\b", path.read_text(encoding="utf-8"))]
    assert found == ["server/graphql_schema.py"]


@pytest.mark.parametrize("package", [*DOMAIN, *LOWEST])
def test_every_domain_module_says_its_purpose_first(package):
    """Each module's docstring begins with one line of purpose."""
    silent = [str(path.relative_to(ROOT)) for path in modules(package)
              if path.stat().st_size and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert silent == []


def test_each_part_of_neutrality_says_its_purpose_in_one_line():
    """The split of neutrality/ (cers, market, retirement): each module's purpose is one sentence,
    its docstring's first line (packages' __init__ may take a paragraph)."""
    long = []
    for path in modules("neutrality"):
        if path.name == "__init__.py":
            continue
        first = (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").split("\n")[0]
        if not first.endswith(".") or len(first) > 130:
            long.append(f"{path.relative_to(ROOT)}: {first!r}")
    assert long == []
