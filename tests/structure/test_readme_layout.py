"""The README's layout section is the map a newcomer reads: it names every top-level package, and
each rule it points to is stated in the module it names (so the map cannot drift from the house)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
LAYOUT = README[README.index("## Layout\n"):README.index("\n## ", README.index("## Layout\n") + 1)]

# a rule a newcomer looks for -> the module that states it in its docstring
RULES = {
    "points valid at most 10 years": "wallets/validity.py",
    "operators cannot debit": "wallets/credit.py",
    "7 working days of notice": "neutrality/cers/notice.py",
    "cancellation (注销) of used points": "wallets/post.py",
}


def docstring(path: str) -> str:
    return ast.get_docstring(ast.parse((ROOT / path).read_text(encoding="utf-8"))) or ""


def test_each_rule_is_on_the_map_and_in_the_module_it_names():
    for rule, path in RULES.items():
        folder, module = path.rsplit("/", 1)
        line = next((line for line in LAYOUT.splitlines() if rule in line), None)
        assert line is not None, f"the layout does not name {rule!r}"
        assert module in line or module.removesuffix(".py") in line, (rule, line)
        assert folder.split("/")[-1] + "/" in LAYOUT, folder
        assert rule.lower() in docstring(path).lower(), f"{path} does not state {rule!r}"


def test_every_top_level_package_is_on_the_map():
    packages = sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists())
    assert {"wallets", "mall", "neutrality", "accounts", "core", "server"} <= set(packages)
    assert [p for p in packages if f"\n{p}/" not in LAYOUT] == []
