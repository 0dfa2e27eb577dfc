"""Every error code a mutation can answer with is declared in its enum, statically.

A refusal whose code is missing from its mutation's enum fails loudly at run time
(schema.errors.UndeclaredErrorCode, masked as an internal error); this finds it before: by AST over
the domain modules (core/, accounts/, wallets/, mall/, reductions/, neutrality/, expiry_jobs/) and
the resolvers, it gathers the codes each function can raise, following calls inside the repository
transitively:
- `DomainError(code, ...)` / `DomainError(code=...)` and its subclasses, wherever constructed (a
  subclass without a code argument, or with its own __init__, carries its class `code`);
- a code passed to a parameter (`_whole(..., "INVALID_FOOTPRINT", ...)`, `clean_text(code=...)`):
  the literal at each call site;
- a code looked up in a module-level table of tuples (`REFUSALS`, `_UNIQUE_CODES`): every first
  element of the table;
- refusals returned rather than raised (accounts.service.RefreshRefused);
- calls inside a `try` whose handler catches DomainError itself and does not re-raise are
  answered there, so their codes do not reach the caller.
Not followed: calls through objects (e.g. the payment provider's methods) and refusals the database
raises at commit (server/db.py; today only OUT_OF_STOCK, which redeem declares).
Then: each mutation's codes (those of the functions its resolver calls, plus the idempotency-key
convention's when it passes an Idempotency) are members of its payload's error enum, and every
code a domain module raises is a member of its area's enum (core/errors.py and <area>/errors.py),
spelled as that member (`MallCode.OUT_OF_STOCK`), never as a bare string literal.
The self-checks at the end feed the same analysis synthetic sources that break each rule."""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ("core", "accounts", "wallets", "mall", "reductions", "neutrality", "reviews", "scenarios", "measures",
          "supervision", "expiry_jobs")
RESOLVERS = "resolvers"
DOMAIN_ERROR = "core.errors.DomainError"
# refusals a domain function returns instead of raising; the resolver answers with their code
REFUSAL_TYPES = frozenset({"accounts.service.RefreshRefused"})
# a stored refusal replayed (core/idempotency.py): its code is one the same mutation raised before
REPLAYS = frozenset({"core.idempotency.ReplayedRefusal"})
# the mutation runner is followed only for the idempotency-key convention (see mutation_codes)
NOT_FOLLOWED = ("resolvers.runner.",)
IDEMPOTENT_TRANSACTION = "core.idempotency.idempotent_transaction"
# the area whose enum holds the codes of a module, where it is not the module's own package
AREA_OF_MODULE: dict[str, str] = {}
# turns a refusal the database raised at commit (SQLSTATE TPH01) into its DomainError: the codes are
# the .sql files' (test_every_code_the_database_refuses_with_is_in_its_areas_enum)
DATABASE_REFUSALS = frozenset({"core.deferred_refusal.deferred_refusal"})
# areas whose codes a module answers with as its own: mall_redeem places the hold inside PostgreSQL
# (wallet_place_hold), so the ledger's refusal comes back through the mall's REFUSALS table
RELAYS = {"mall.service": ("wallets",)}


def sources_of(packages: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[module.removesuffix(".__init__")] = path.read_text(encoding="utf-8")
    return found


def _code_of(node: ast.expr | None) -> str | None:
    """A literal code: "X", or an enum member XCode.X / XCode.X.value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id.endswith("Code"):
        return node.attr
    return None


@dataclass
class Function:
    key: str
    module: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    params: list[str] = field(default_factory=list)


@dataclass
class Site:
    """Where a code comes from: the function (or module) raising it, and the line."""

    where: str
    line: int


class CodeIndex:
    """The functions, error classes and code tables of a set of modules (name -> source)."""

    def __init__(self, sources: dict[str, str]):
        self.trees = {module: ast.parse(text) for module, text in sources.items()}
        self.imports: dict[str, dict[str, str]] = {}
        self.functions: dict[str, Function] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.tables: dict[str, set[str]] = {}
        for module, tree in self.trees.items():
            self._index(module, tree)
        self.errors = self._error_classes()
        self._codes: dict[str, dict[str, Site]] = {}

    # --- indexing ---------------------------------------------------------------------------

    def _index(self, module: str, tree: ast.Module) -> None:
        names: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:  # `import a.b as c` names a.b; `import a.b` names a
                    top = alias.name.split(".")[0]
                    names[alias.asname or top] = alias.name if alias.asname else top
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(module.split(".")[:-node.level] + ([base] if base else []))
                for alias in node.names:
                    names[alias.asname or alias.name] = f"{base}.{alias.name}"
        self.imports[module] = names
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(module, f"{module}.{node.name}", node)
            elif isinstance(node, ast.ClassDef):
                self.classes[f"{module}.{node.name}"] = node
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        self._function(module, f"{module}.{node.name}.{item.name}", item)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                codes = {_code_of(v.elts[0]) for v in node.value.values if isinstance(v, ast.Tuple) and v.elts}
                codes.discard(None)
                for target in targets:
                    if isinstance(target, ast.Name) and codes:
                        self.tables[f"{module}.{target.id}"] = codes

    def _function(self, module: str, key: str, node) -> None:
        args = node.args
        params = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
        self.functions[key] = Function(key, module, node, params)

    def resolve(self, module: str, node: ast.expr) -> str | None:
        """The dotted name an expression refers to in `module`, if it is a module-level name."""
        if isinstance(node, ast.Name):
            local = f"{module}.{node.id}"
            if local in self.functions or local in self.classes or local in self.tables:
                return local
            return self.imports.get(module, {}).get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.resolve(module, node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def _error_classes(self) -> dict[str, ast.ClassDef]:
        errors: dict[str, ast.ClassDef] = {}
        changed = True
        while changed:
            changed = False
            for key, node in self.classes.items():
                if key in errors:
                    continue
                module = key.rsplit(".", 1)[0]
                if key == DOMAIN_ERROR or any(self.resolve(module, b) in (DOMAIN_ERROR, *errors) for b in node.bases):
                    errors[key] = node
                    changed = True
        return errors

    def class_code(self, key: str) -> str | None:
        node = self.errors[key]
        for item in node.body:
            if isinstance(item, (ast.Assign, ast.AnnAssign)):
                targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                if any(isinstance(t, ast.Name) and t.id == "code" for t in targets):
                    return _code_of(item.value)
        module = key.rsplit(".", 1)[0]
        for base in node.bases:
            resolved = self.resolve(module, base)
            if resolved in self.errors:
                return self.class_code(resolved)
        return None

    def own_init(self, key: str) -> bool:
        """The class (or a base below DomainError) takes other arguments than (code, message, field)."""
        if key == DOMAIN_ERROR:
            return False
        node = self.errors[key]
        if any(isinstance(i, ast.FunctionDef) and i.name == "__init__" for i in node.body):
            return True
        module = key.rsplit(".", 1)[0]
        return any(self.own_init(r) for b in node.bases if (r := self.resolve(module, b)) in self.errors)

    # --- codes --------------------------------------------------------------------------------

    def raised(self, key: str) -> dict[str, Site]:
        """Every code function `key` can raise (or return as a refusal), with one place it comes from."""
        if key in self._codes:
            return self._codes[key]
        self._codes[key] = {}  # a recursive call adds nothing new
        function = self.functions[key]
        found: dict[str, Site] = {}
        for node, answered in _walk(function.node, self, function.module):
            if answered or not isinstance(node, ast.Call):
                continue
            callee = self.resolve(function.module, node.func)
            for code in self._call_codes(function, node, callee):
                found.setdefault(code, Site(key, node.lineno))
            if callee is None or callee.startswith(NOT_FOLLOWED) or callee not in self.functions:
                continue
            for code, site in self.raised(callee).items():
                found.setdefault(code, site)
        self._codes[key] = found
        return found

    def _call_codes(self, function: Function, call: ast.Call, callee: str | None) -> set[str]:
        """The codes one call itself carries: an error or refusal constructed, or a code argument."""
        if callee in REPLAYS or function.key in DATABASE_REFUSALS:
            return set()
        if callee in self.errors or callee in REFUSAL_TYPES:
            own = callee in self.errors and self.own_init(callee)
            argument = None if own else (call.args[0] if call.args else
                                         next((k.value for k in call.keywords if k.arg == "code"), None))
            if argument is None:
                return {self.class_code(callee)} - {None} if callee in self.errors else set()
            literal = _code_of(argument)
            if literal is not None:
                return {literal}
            if isinstance(argument, ast.Name) and argument.id in function.params:
                return set()  # the callers pass it: see _parameter_codes
            tables = {self.resolve(function.module, n) for n in ast.walk(function.node) if isinstance(n, ast.Name)}
            codes = set().union(*(self.tables[t] for t in tables if t in self.tables))
            if not codes:
                raise AssertionError(f"{function.key} line {call.lineno}: a code this test cannot follow; "
                                     "raise a literal, an enum member, a parameter or a code from a table")
            return codes
        if callee in self.functions:
            return self._parameter_codes(self.functions[callee], call)
        return set()

    def _parameter_codes(self, callee: Function, call: ast.Call) -> set[str]:
        codes = set()
        for name in self.code_parameters(callee.key):
            index = callee.params.index(name)
            offset = 1 if callee.params[:1] in (["self"], ["cls"]) else 0
            if index - offset < len(call.args) and index >= offset:
                value = call.args[index - offset]
            else:
                value = next((k.value for k in call.keywords if k.arg == name), None)
            if (code := _code_of(value)) is not None:
                codes.add(code)
        return codes

    def code_parameters(self, key: str) -> set[str]:
        """The parameters of a function that it passes on as an error's code."""
        function = self.functions[key]
        names = set()
        for node in ast.walk(function.node):
            if isinstance(node, ast.Call) and self.resolve(function.module, node.func) in self.errors:
                argument = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "code"), None)
                if isinstance(argument, ast.Name) and argument.id in function.params:
                    names.add(argument.id)
        return names

    def module_codes(self, module: str) -> dict[str, Site]:
        """Every literal code the functions of one module raise themselves, and its error classes' codes."""
        found: dict[str, Site] = {}
        for key, function in self.functions.items():
            if function.module != module:
                continue
            for node in ast.walk(function.node):
                if isinstance(node, ast.Call):
                    for code in self._call_codes(function, node, self.resolve(module, node.func)):
                        found.setdefault(code, Site(key, node.lineno))
        for key, node in self.errors.items():
            if key.rsplit(".", 1)[0] == module and (code := self.class_code(key)) is not None:
                found.setdefault(code, Site(key, node.lineno))
        return found


    def code_nodes(self, module: str) -> list[tuple[str, ast.expr]]:
        """Every expression of one module that spells a code: an error's (or refusal's) code argument,
        an error class's `code`, a code passed to (or defaulted for) a code parameter, and the first
        element of each row of a code table the module's functions raise from."""
        found: list[tuple[str, ast.expr]] = []
        tables: set[str] = set()
        for key, function in self.functions.items():
            if function.module != module:
                continue
            arguments = function.node.args
            positional = [*arguments.posonlyargs, *arguments.args]
            defaults = {**dict(zip((a.arg for a in positional[len(positional) - len(arguments.defaults):]),
                                   arguments.defaults)),
                        **{a.arg: d for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None}}
            found += [(key, defaults[name]) for name in self.code_parameters(key) if name in defaults]
            for node in ast.walk(function.node):
                if not isinstance(node, ast.Call):
                    continue
                callee = self.resolve(module, node.func)
                if callee in self.errors or callee in REFUSAL_TYPES:
                    if callee in self.errors and self.own_init(callee):
                        continue
                    argument = node.args[0] if node.args else next(
                        (k.value for k in node.keywords if k.arg == "code"), None)
                    if argument is not None:
                        found.append((key, argument))
                        if _code_of(argument) is None:
                            tables |= {self.resolve(module, n) for n in ast.walk(function.node)
                                       if isinstance(n, ast.Name)}
                elif callee in self.functions:
                    target = self.functions[callee]
                    for name in self.code_parameters(callee):
                        index = target.params.index(name)
                        offset = 1 if target.params[:1] in (["self"], ["cls"]) else 0
                        value = (node.args[index - offset] if offset <= index and index - offset < len(node.args)
                                 else next((k.value for k in node.keywords if k.arg == name), None))
                        if value is not None:
                            found.append((key, value))
        for key, node in self.errors.items():
            if key.rsplit(".", 1)[0] == module:
                found += [(key, item.value) for item in node.body
                          if isinstance(item, ast.Assign | ast.AnnAssign) and item.value is not None
                          and any(isinstance(t, ast.Name) and t.id == "code"
                                  for t in (item.targets if isinstance(item, ast.Assign) else [item.target]))]
        for node in self.trees[module].body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and f"{module}.{t.id}" in tables for t in targets):
                    found += [(f"{module}.{targets[0].id}", row.elts[0]) for row in node.value.values
                              if isinstance(row, ast.Tuple) and row.elts]
        return found


def _answers_domain_errors(index: CodeIndex, module: str, handler: ast.ExceptHandler) -> bool:
    """The handler catches DomainError itself and does not raise again."""
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    if not any(t is not None and index.resolve(module, t) == DOMAIN_ERROR for t in types):
        return False
    return not any(isinstance(n, ast.Raise) for n in ast.walk(handler))


def _walk(node: ast.AST, index: CodeIndex, module: str, answered: bool = False):
    """ast.walk, saying of each node whether a DomainError it raises is answered by an enclosing try."""
    yield node, answered
    if isinstance(node, ast.Try):
        inner = answered or any(_answers_domain_errors(index, module, h) for h in node.handlers)
        for child in node.body:
            yield from _walk(child, index, module, inner)
        for child in (*node.handlers, *node.orelse, *node.finalbody):
            yield from _walk(child, index, module, answered)
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, index, module, answered)


# --- the rules ----------------------------------------------------------------------------------

def mutation_methods(index: CodeIndex) -> dict[str, str]:
    """(resolver class . method) -> function key, for every method of a *Mutation class of the resolvers."""
    found = {}
    for key, node in index.classes.items():
        if key.startswith(RESOLVERS + ".") and node.name.endswith("Mutation"):
            for item in node.body:
                if isinstance(item, ast.AsyncFunctionDef | ast.FunctionDef) and not item.name.startswith("_"):
                    found[f"{node.name}.{item.name}"] = f"{key}.{item.name}"
    return found


def mutation_codes(index: CodeIndex, key: str) -> dict[str, Site]:
    codes = dict(index.raised(key))
    function = index.functions[key]
    if any(isinstance(n, ast.Name) and index.resolve(function.module, n) == "resolvers.runner.Idempotency"
           for n in ast.walk(function.node)) and IDEMPOTENT_TRANSACTION in index.functions:
        for code, site in index.raised(IDEMPOTENT_TRANSACTION).items():
            codes.setdefault(code, site)
    return codes


def undeclared(index: CodeIndex, declared: dict[str, set[str]]) -> list[str]:
    """Each mutation's codes missing from its enum, as 'Class.method: CODE (raised at where:line)'."""
    problems = []
    for name, key in sorted(mutation_methods(index).items()):
        if name not in declared:
            problems.append(f"{name}: no error enum found")
            continue
        for code, site in sorted(mutation_codes(index, key).items()):
            if code not in declared[name]:
                problems.append(f"{name}: {code} (raised in {site.where}, line {site.line})")
    return problems


def outside_area(index: CodeIndex, area_codes: dict[str, set[str]]) -> list[str]:
    """Codes a domain module raises that are not in its area's enum (or CoreCode); a package
    without an errors module may raise only CoreCode's."""
    problems = []
    for module in sorted(index.trees):
        package = module.split(".")[0]
        if package == RESOLVERS:
            continue  # the resolvers raise the domain's codes, checked per mutation above
        allowed = set().union(*(area_codes.get(area, set()) for area in
                                (AREA_OF_MODULE.get(module, package), "core", *RELAYS.get(module, ()))))
        for code, site in sorted(index.module_codes(module).items()):
            if code not in allowed:
                problems.append(f"{module}: {code} ({site.where}, line {site.line})")
    return problems


def bare_codes(index: CodeIndex) -> list[str]:
    """Codes a domain module spells as a bare string literal instead of its area's enum member
    (`MallCode.OUT_OF_STOCK`, `CoreCode.NOT_FOUND`): a typo there would be found only at run time.
    The database's deferred refusals are exempt: their code is the .sql file's."""
    problems = []
    for module in sorted(index.trees):
        if module.split(".")[0] == RESOLVERS or any(f.startswith(module + ".") for f in DATABASE_REFUSALS):
            continue
        for where, node in index.code_nodes(module):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                problems.append(f"{module}: {node.value} is a bare string ({where}, line {node.lineno})")
    return problems

def declared_enums() -> dict[str, set[str]]:
    """(resolver class . method) -> the members of its payload's error enum, from the live schema."""
    from schema.errors import code_enum, error_type

    found = {}
    for path in sorted((ROOT / RESOLVERS).glob("*.py")):
        module = importlib.import_module(f"{RESOLVERS}.{path.stem}")
        for name, cls in vars(module).items():
            if not (isinstance(cls, type) and name.endswith("Mutation") and cls.__module__ == module.__name__):
                continue
            for mutation in cls.__strawberry_definition__.fields:
                found[f"{name}.{mutation.python_name}"] = set(code_enum(error_type(mutation.type)).__members__)
    return found


def area_enums() -> dict[str, set[str]]:
    from core.errors import Code

    areas = {}
    for area in ("core", *DOMAIN):
        try:
            module = importlib.import_module(f"{area}.errors")
        except ModuleNotFoundError:
            continue
        areas[area] = {member.value for value in vars(module).values()
                       if isinstance(value, type) and issubclass(value, Code) and value is not Code
                       for member in value}
    return areas


@pytest.fixture(scope="module")
def index() -> CodeIndex:
    return CodeIndex(sources_of((*DOMAIN, RESOLVERS)))


def test_every_code_a_mutation_can_raise_is_in_its_enum(index):
    assert undeclared(index, declared_enums()) == []


def test_every_mutation_is_analysed(index):
    methods = mutation_methods(index)
    assert set(methods) == set(declared_enums())
    assert len(methods) >= 39  # every mutation there is today
    # the analysis sees through the resolvers into the services and the ledger below them
    assert "INSUFFICIENT_POINTS" in mutation_codes(index, methods["MallMutation.redeem"])
    assert "HOLD_SETTLED" in mutation_codes(index, methods["MallMutation.cancel_redemption"])
    assert "IDEMPOTENCY_KEY_REUSED" in mutation_codes(index, methods["MarketMutation.buy_cers"])
    assert "INVALID_FOOTPRINT" in mutation_codes(index, methods["CertificatesMutation.apply_for_neutrality"])
    assert "EMAIL_TAKEN" in mutation_codes(index, methods["AccountsMutation.sign_up"])
    assert "REFRESH_TOKEN_REUSED" in mutation_codes(index, methods["AccountsMutation.refresh_session"])
    # a code answered inside a try is not the caller's: items of a batch are rejected one by one
    assert "QUANTITY_TOO_LARGE" not in mutation_codes(index, methods["ReductionsMutation.report_behaviour"])


def test_every_code_a_domain_module_raises_is_in_its_areas_enum(index):
    assert outside_area(index, area_enums()) == []


def test_every_domain_raise_site_names_an_enum_member(index):
    assert bare_codes(index) == []

def test_every_code_the_database_refuses_with_is_in_its_areas_enum():
    """A deferred refusal's code is the message of a RAISE ... USING ERRCODE = 'TPH01' in a .sql
    file; the package owning the file owns the code."""
    enums = area_enums()
    found = {}
    for path in sorted(ROOT.glob("*/sql/*.sql")):
        for code in re.findall(r"RAISE\s+EXCEPTION\s+'([A-Z_]+)'\s+USING\s+ERRCODE\s*=\s*'TPH01'",
                               path.read_text(encoding="utf-8")):
            found[code] = path.parent.parent.name
    assert found.get("OUT_OF_STOCK") == "mall"  # the stock taken at commit
    assert [c for c, area in found.items() if c not in enums[area] | enums["core"]] == []


def test_every_area_enum_value_is_its_name():
    from core.errors import Code

    for area, codes in area_enums().items():
        module = importlib.import_module(f"{area}.errors")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Code) and value is not Code:
                assert all(member.name == member.value == member for member in value), value


# --- the test can fail --------------------------------------------------------------------------

CORE_ERRORS = (ROOT / "core" / "errors.py").read_text(encoding="utf-8")
SYNTHETIC = {
    "core.errors": CORE_ERRORS,
    "widgets.rules": '''
from core.errors import DomainError


def check_size(value, code):
    if value < 0:
        raise DomainError(code, "Too small.")
''',
    "widgets.service": '''
from core.errors import DomainError, NotFound
from widgets.rules import check_size

REFUSALS = {"A": ("WIDGET_TABLE_CODE", "From a table.", None)}


class WidgetJammed(DomainError):
    code = "WIDGET_JAMMED"


def _inner(*, value):
    check_size(value, "WIDGET_TOO_SMALL")
    raise WidgetJammed(message="Jammed.")


async def make_widget(*, session, value):
    try:
        int("x")
        raise DomainError("WIDGET_ANSWERED_HERE")
    except DomainError:
        pass
    refused = REFUSALS.get(value)
    if refused:
        code, message, field = refused
        raise DomainError(code, message, field)
    _inner(value=value)
    raise NotFound(message="No such widget.")
''',
    "resolvers.widgets": '''
from resolvers.common import parse_id
from widgets import service


class WidgetsMutation:
    async def make_widget(self, info, input):
        return await run_mutation(info.context, None, lambda session: service.make_widget(session=session, value=1))
''',
}


def test_self_check_an_undeclared_code_is_reported():
    index = CodeIndex(SYNTHETIC)
    declared = {"INVALID", "NOT_FOUND", "WIDGET_TOO_SMALL", "WIDGET_JAMMED", "WIDGET_TABLE_CODE"}
    assert undeclared(index, {"WidgetsMutation.make_widget": declared}) == []
    # each way a code reaches the mutation, missing from the enum, is reported
    for code in ("WIDGET_TOO_SMALL", "WIDGET_JAMMED", "WIDGET_TABLE_CODE", "NOT_FOUND"):
        problems = undeclared(CodeIndex(SYNTHETIC), {"WidgetsMutation.make_widget": declared - {code}})
        assert len(problems) == 1 and problems[0].startswith(f"WidgetsMutation.make_widget: {code} "), problems
    # a code answered inside the try never reaches it
    assert "WIDGET_ANSWERED_HERE" not in mutation_codes(index, "resolvers.widgets.WidgetsMutation.make_widget")
    # a mutation without an enum is reported too
    assert undeclared(index, {}) == ["WidgetsMutation.make_widget: no error enum found"]


def test_self_check_a_code_outside_its_area_is_reported():
    index = CodeIndex(SYNTHETIC)
    areas = {"core": area_enums()["core"],
             "widgets": {"WIDGET_TOO_SMALL", "WIDGET_JAMMED", "WIDGET_TABLE_CODE", "WIDGET_ANSWERED_HERE"}}
    assert outside_area(index, areas) == []
    areas["widgets"].discard("WIDGET_JAMMED")
    problems = outside_area(index, areas)
    assert len(problems) == 1 and problems[0].startswith("widgets.service: WIDGET_JAMMED"), problems


def test_self_check_a_bare_string_code_is_reported():
    members = {module: re.sub(r'"(WIDGET_[A-Z_]+)"', r"WidgetCode.\1", text) for module, text in SYNTHETIC.items()}
    assert bare_codes(CodeIndex(members)) == []
    # each way of spelling a code, left a bare string, is reported: an error's argument, a code
    # parameter's argument, an error class's code, a table's row
    for code in ("WIDGET_ANSWERED_HERE", "WIDGET_TOO_SMALL", "WIDGET_JAMMED", "WIDGET_TABLE_CODE"):
        sources = {**members, "widgets.service": members["widgets.service"].replace(f"WidgetCode.{code}", f'"{code}"')}
        problems = bare_codes(CodeIndex(sources))
        assert len(problems) == 1 and problems[0].startswith(f"widgets.service: {code} is a bare string"), problems
    # still the same codes, to the analysis
    assert CodeIndex(members).module_codes("widgets.service").keys() == CodeIndex(SYNTHETIC).module_codes(
        "widgets.service").keys()

def test_self_check_an_untraceable_code_fails_loudly():
    sources = {**SYNTHETIC, "widgets.service": '''
from core.errors import DomainError


def make_widget(*, session, value):
    raise DomainError(value.upper(), "Who knows.")
'''}
    with pytest.raises(AssertionError, match="cannot follow"):
        undeclared(CodeIndex(sources), {"WidgetsMutation.make_widget": {"INVALID"}})


# --- at run time: an undeclared code fails loudly, and the client sees only an internal error ------

def test_an_undeclared_code_raises_instead_of_becoming_invalid():
    from core.errors import CoreCode
    from schema import mall as t
    from schema.errors import UndeclaredErrorCode, payload_error
    from wallets.errors import WalletCode

    assert payload_error(t.CancelRedemptionError, WalletCode.HOLD_SETTLED, "Settled.").code.value == "HOLD_SETTLED"
    assert payload_error(t.CancelRedemptionError, "NOT_HELD", "Not held.").code.value == "NOT_HELD"
    assert payload_error(t.CancelRedemptionError, CoreCode.INVALID, "No.").code.value == "INVALID"
    with pytest.raises(UndeclaredErrorCode, match="OUT_OF_STOCK"):
        payload_error(t.CancelRedemptionError, "OUT_OF_STOCK", "Not enough stock left.")


def test_an_enum_names_only_area_codes():
    from schema.errors import error_codes

    with pytest.raises(TypeError, match="no area's error code"):
        error_codes("LooseErrorCode", "LOOSE_STRING")


async def test_an_undeclared_code_is_masked_as_an_internal_error(api, monkeypatch, caplog):
    import logging

    from accounts import service as accounts_service
    from core.errors import DomainError
    from schema.errors import UndeclaredErrorCode
    from tests.api._conventions import assert_no_leak

    async def refuse(**kwargs):
        raise DomainError("SECRET_UNDECLARED_CODE", "A secret message.", "login")

    monkeypatch.setattr(accounts_service, "login", refuse)
    caplog.set_level(logging.ERROR, logger="tanpuhui.graphql")
    response = await api.post({"query": 'mutation { login(input: {login: "who@example.org", password: "x"}) '
                                        "{ session { accessToken } errors { code message } } }"})
    body = response.json()
    [error] = body["errors"]
    assert error["message"] == "Internal server error."
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "SECRET_UNDECLARED_CODE" not in response.text and "secret message" not in response.text
    assert_no_leak(response)
    [record] = [r for r in caplog.records if r.name == "tanpuhui.graphql" and r.levelno >= logging.ERROR]
    assert isinstance(record.exc_info[1], UndeclaredErrorCode)
