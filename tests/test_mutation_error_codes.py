"""Each mutation's ``<Mutation>ErrorCode`` enum holds every code it can raise, and only
those (plus the fallback every mutation declares).

The inventory is static: from each ``@strawberry.mutation`` resolver, every function of
``app/`` reachable by name is visited (a call or reference on a known module or class
is resolved exactly; on anything else, every method of that name counts: an
over-approximation), collecting ``ErrorCode.X`` references and the codes given to a
function with a ``code`` parameter (``InvalidInput``, ``PaginationError``,
``ApiError``…), or its default when none is given.

``python tests/test_mutation_error_codes.py`` prints the inventory, a declaration to
paste next to each mutation.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.errors import ErrorCode, InvalidInput

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
MEMBERS = {code.value for code in ErrorCode}
# Called by the GraphQL executor only (never by name from app code): a field resolver
# of a returned payload runs outside the mutation's `userErrors` handling.
RESOLVER_DECORATORS = {"field", "mutation", "subscription", "connection"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass
class Function:
    key: str  # "app.resolvers.accounts:login", "app.auth:Viewer.__init__"
    module: str
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.expr
    cls: str | None = None
    is_resolver: bool = False
    is_property: bool = False
    code_param: tuple[int, ast.expr | None] | None = None  # (position, default)


@dataclass
class Module:
    name: str
    tree: ast.Module
    names: dict[str, str] = field(default_factory=dict)  # local name -> key or module
    classes: dict[str, list[str]] = field(default_factory=dict)  # class -> base names


class Inventory:
    """The codes each function of app/ can raise, over-approximated."""

    def __init__(self, root: Path = APP) -> None:
        self.modules: dict[str, Module] = {}
        self.functions: dict[str, Function] = {}
        self.methods_by_name: dict[str, list[str]] = {}
        self.problems: list[str] = []
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            self.modules[name] = Module(name, ast.parse(path.read_text(encoding="utf-8")))
        for module in self.modules.values():
            self._index(module)
        self._memo: dict[str, frozenset[str]] = {}

    # -- indexing --

    def _index(self, module: Module) -> None:
        for node in ast.walk(module.tree):  # imports anywhere, function-level ones too
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        module.names[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    module.names[alias.asname or alias.name] = (
                        target if target in self.modules else f"{node.module}:{alias.name}"
                    )
        for stmt in module.tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self._add_function(module, stmt, None)
            elif isinstance(stmt, ast.ClassDef):
                module.names[stmt.name] = f"{module.name}:{stmt.name}"
                module.classes[stmt.name] = [ast.unparse(base) for base in stmt.bases]
                for item in stmt.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        self._add_function(module, item, stmt.name)
                    elif isinstance(item, ast.Assign | ast.AnnAssign) and item.value:
                        for target in _targets(item):
                            key = f"{module.name}:{stmt.name}.{target}"
                            self.functions[key] = Function(key, module.name, item.value, stmt.name)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value:
                for target in _targets(stmt):
                    key = f"{module.name}:{target}"
                    module.names[target] = key
                    self.functions[key] = Function(key, module.name, stmt.value)

    def _add_function(
        self, module: Module, node: ast.FunctionDef | ast.AsyncFunctionDef, cls: str | None
    ) -> None:
        key = f"{module.name}:{cls + '.' if cls else ''}{node.name}"
        decorators = {
            _last_name(d.func if isinstance(d, ast.Call) else d) for d in node.decorator_list
        }
        fn = Function(
            key, module.name, node, cls,
            is_resolver=bool(decorators & RESOLVER_DECORATORS),
            is_property=bool(decorators & {"property", "cached_property", "setter"}),
        )  # fmt: skip
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        for i, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
            if arg.arg == "code":
                fn.code_param = (
                    i - (1 if cls and positional[0].arg in ("self", "cls") else 0),
                    default,
                )
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            if arg.arg == "code":
                fn.code_param = (-1, default)
        self.functions[key] = fn
        if cls is None:
            module.names[node.name] = key
        else:
            self.methods_by_name.setdefault(node.name, []).append(key)

    # -- resolution --

    def _resolve_name(self, module: Module, name: str) -> str | None:
        return module.names.get(name)

    def _lookup(self, target: str, attr: str) -> list[str]:
        """``attr`` of a module or class key."""
        if target in self.modules:
            sub = f"{target}.{attr}"
            if sub in self.modules:
                return [sub]
            found = self.modules[target].names.get(attr)
            if found is None:
                return []
            # a name the module imported: follow it into its own module
            return [found]
        module_name, _, cls = target.partition(":")
        if module_name in self.modules and cls in self.modules[module_name].classes:
            return self._class_members(module_name, cls, attr)
        return []

    def _class_members(self, module_name: str, cls: str, attr: str, depth: int = 0) -> list[str]:
        key = f"{module_name}:{cls}.{attr}"
        if key in self.functions:
            return [key]
        found: list[str] = []
        module = self.modules[module_name]
        for base in module.classes.get(cls, []):
            resolved = self._resolve_dotted(module, base)
            for b in resolved:
                bmod, _, bcls = b.partition(":")
                if bmod in self.modules and bcls in self.modules[bmod].classes and depth < 10:
                    found += self._class_members(bmod, bcls, attr, depth + 1)
        return found

    def _resolve_bases(self, module: Module, cls: str) -> list[str]:
        return [
            b
            for base in module.classes.get(cls, [])
            for b in self._resolve_dotted(module, base)
            if self._is_class(b)
        ]

    def _resolve_dotted(self, module: Module, dotted: str) -> list[str]:
        head, *rest = dotted.split(".")
        current = [k] if (k := self._resolve_name(module, head)) else []
        for part in rest:
            current = [r for c in current for r in self._lookup(self._canonical(c), part)]
        return [self._canonical(c) for c in current]

    def _canonical(self, key: str) -> str:
        """Follow re-exports: ``app.db.validation:InvalidInput`` -> ``app.errors:InvalidInput``."""
        for _ in range(10):
            if key in self.modules or key in self.functions:
                return key
            module_name, _, name = key.partition(":")
            if module_name not in self.modules:
                return key
            module = self.modules[module_name]
            if name in module.classes:
                return key
            nxt = module.names.get(name)
            if nxt is None or nxt == key:
                return key
            key = nxt
        return key

    def _is_class(self, key: str) -> bool:
        module_name, _, name = key.partition(":")
        return module_name in self.modules and name in self.modules[module_name].classes

    def _callees(
        self, module: Module, expr: ast.expr, cls: str | None, called: bool = True
    ) -> list[str]:
        """What a Name or Attribute expression may refer to (keys of functions,
        module variables, classes); ``called``: it is the function of a call."""
        if isinstance(expr, ast.Name):
            key = self._resolve_name(module, expr.id)
            return [self._canonical(key)] if key else []
        if isinstance(expr, ast.Attribute):
            base = expr.value
            if isinstance(base, ast.Name | ast.Attribute):
                dotted = _dotted(base)
                if dotted is not None and dotted.split(".")[0] not in ("self", "cls"):
                    resolved = self._resolve_dotted(module, dotted)
                    if resolved:
                        return [
                            self._canonical(r) for t in resolved for r in self._lookup(t, expr.attr)
                        ]
                if isinstance(base, ast.Name) and base.id in ("self", "cls") and cls:
                    own = self._class_members(module.name, cls, expr.attr)
                    if own:
                        return own
            if (
                isinstance(base, ast.Call)
                and isinstance(base.func, ast.Name)
                and base.func.id == "super"
                and cls
            ):
                return [
                    m
                    for b in self._resolve_bases(module, cls)
                    for m in self._class_members(*b.split(":"), expr.attr)
                ]
            # an unknown receiver: every method of that name (only properties when
            # it is read rather than called: `row.user` is data, not `Query.user`)
            return [
                k
                for k in self.methods_by_name.get(expr.attr, [])
                if not self.functions[k].is_resolver and (called or self.functions[k].is_property)
            ]
        return []

    # -- the codes --

    def codes(self, key: str) -> frozenset[str]:
        """Every code the function (or module variable) ``key`` may raise, through
        everything it reaches by name."""
        found: set[str] = set()
        for reached in self.reachable(key):
            found |= self._own_codes(reached)
        return frozenset(found)

    def reachable(self, start: str) -> set[str]:
        seen = {start}
        todo = [start]
        while todo:
            key = todo.pop()
            for nxt in self._edges(key):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def _edges(self, key: str) -> Iterator[str]:
        if self._is_class(key):  # constructing it
            module_name, _, cls = key.partition(":")
            for special in ("__init__", "__post_init__", "__new__"):
                yield from self._class_members(module_name, cls, special)
            return
        fn = self.functions.get(key)
        if fn is None:
            return
        module = self.modules[fn.module]
        called = {id(n.func) for n in _body_nodes(fn.node) if isinstance(n, ast.Call)}
        for node in _body_nodes(fn.node):
            if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                for target in self._callees(module, node, fn.cls, id(node) in called):
                    if target in self.functions or self._is_class(target):
                        yield target

    def _own_codes(self, key: str) -> set[str]:
        fn = self.functions.get(key)
        if fn is None:
            return set()
        module = self.modules[fn.module]
        found: set[str] = set()
        for node in _body_nodes(fn.node):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in MEMBERS
                and _last_name(node.value) == "ErrorCode"
            ):
                found.add(node.attr)
            if isinstance(node, ast.Call):
                for target in self._callees(module, node.func, fn.cls):
                    found |= self._code_argument(fn, node, target)
        return found

    def _code_argument(self, caller: Function, call: ast.Call, target: str) -> set[str]:
        """The code a call passes to a ``code`` parameter, or that parameter's default."""
        callee = None
        if self._is_class(target):
            module_name, _, cls = target.partition(":")
            inits = self._class_members(module_name, cls, "__init__")
            callee = self.functions[inits[0]] if inits else None
        else:
            callee = self.functions.get(target)
        if callee is None or callee.code_param is None:
            return set()
        position, default = callee.code_param
        given = next((k.value for k in call.keywords if k.arg == "code"), None)
        if given is None and 0 <= position < len(call.args):
            given = call.args[position]
        if given is None:
            return _constant_codes(default) if default is not None else set()
        codes = _constant_codes(given)
        if codes:
            return codes
        if isinstance(given, ast.Attribute) and _last_name(given.value) == "ErrorCode":
            return set()  # collected as a reference
        if isinstance(given, ast.Name) and isinstance(
            caller.node, ast.FunctionDef | ast.AsyncFunctionDef
        ):
            params = {a.arg for a in (*caller.node.args.args, *caller.node.args.kwonlyargs,
                                      *caller.node.args.posonlyargs)}  # fmt: skip
            if given.id in params:
                return set()  # passed through: each caller's code is collected there
            # a local variable: any code spelled in this function
            return {
                n.value
                for n in ast.walk(caller.node)
                if isinstance(n, ast.Constant) and n.value in MEMBERS
            }
        self.problems.append(
            f"{caller.key}: cannot tell which code `{ast.unparse(given)}` is "
            f"(line {call.lineno}); spell it out"
        )
        return set()

    def mutations(self) -> dict[str, str]:
        """GraphQL mutation name -> resolver key."""
        out = {}
        for key, fn in self.functions.items():
            node = fn.node
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for d in node.decorator_list:
                target = d.func if isinstance(d, ast.Call) else d
                if _dotted(target) == "strawberry.mutation":
                    out[_camel(node.name)] = key
        return out


def _targets(stmt: ast.Assign | ast.AnnAssign) -> list[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return [t.id for t in targets if isinstance(t, ast.Name)]


def _dotted(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        inner = _dotted(expr.value)
        return f"{inner}.{expr.attr}" if inner else None
    return None


def _last_name(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def _constant_codes(expr: ast.expr) -> set[str]:
    if isinstance(expr, ast.Constant) and expr.value in MEMBERS:
        return {expr.value}
    if (
        isinstance(expr, ast.Attribute)
        and expr.attr in MEMBERS
        and _last_name(expr.value) == "ErrorCode"
    ):
        return {expr.attr}
    return set()


CATCH_ALL = {"InvalidInput", "ValueError", "Exception", "BaseException"}


def _swallows(handler: ast.ExceptHandler) -> bool:
    """Whether this handler catches every InvalidInput and does not raise it again."""
    kinds = handler.type
    names = (
        {_last_name(e) for e in kinds.elts} if isinstance(kinds, ast.Tuple)
        else {_last_name(kinds)} if kinds is not None else {"BaseException"}
    )  # fmt: skip
    if not names & CATCH_ALL:
        return False
    for node in ast.walk(handler):
        if isinstance(node, ast.Raise) and (
            node.exc is None
            or (handler.name and isinstance(node.exc, ast.Name) and node.exc.id == handler.name)
        ):
            return False
    return True


def _body_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """What runs when the function is called and may raise out of it: its body, not
    its decorators or argument defaults (evaluated once, at definition), nor the
    body of a ``try`` whose handler swallows every InvalidInput."""
    stack = list(node.body) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, ast.Try | ast.TryStar) and any(
            _swallows(h) for h in current.handlers
        ):
            stack += [*current.handlers, *current.orelse, *current.finalbody]
            continue
        stack += ast.iter_child_nodes(current)


# Codes the inventory finds but the mutation cannot raise, and why (the inventory does
# not follow argument values). Should one be raised after all, the mutation answers
# the fallback code and logs an ERROR.
KNOWN_UNREACHABLE = {
    # comparisons.submit -> videos.ensure -> videos.add_video(youtube_id): READ_ONLY is
    # for metadata given to addVideo, and ensure gives none
    "submitComparison": {"READ_ONLY"},
}


@pytest.fixture(scope="module")
def inventory() -> Inventory:
    return Inventory()


def _declared() -> dict[str, set[str]]:
    """Mutation name -> the values of its payload's `userErrors.code` enum, as built."""
    from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull, GraphQLObjectType

    from app.schema import build_schema

    schema = build_schema()._schema
    out = {}
    assert schema.mutation_type is not None
    for name, mutation_field in schema.mutation_type.fields.items():
        payload = mutation_field.type
        while isinstance(payload, GraphQLNonNull | GraphQLList):
            payload = payload.of_type
        assert isinstance(payload, GraphQLObjectType)
        errors = payload.fields["userErrors"].type
        while isinstance(errors, GraphQLNonNull | GraphQLList):
            errors = errors.of_type
        code = errors.fields["code"].type
        while isinstance(code, GraphQLNonNull):
            code = code.of_type
        assert isinstance(code, GraphQLEnumType), name
        out[name] = set(code.values)
    return out


def test_every_mutation_is_found(inventory):
    assert set(inventory.mutations()) == set(_declared())


def test_every_code_a_mutation_can_raise_is_in_its_enum(inventory):
    declared = _declared()
    missing = {}
    for name, key in sorted(inventory.mutations().items()):
        can = inventory.codes(key) - KNOWN_UNREACHABLE.get(name, set())
        if can - declared[name]:
            missing[name] = sorted(can - declared[name])
    assert not inventory.problems, inventory.problems
    assert not missing, f"declare these codes next to the mutation (codes=...): {missing}"


def test_no_mutation_declares_a_code_it_cannot_raise(inventory):
    from app.schema.mutation import FALLBACK

    declared = _declared()
    extra = {}
    for name, key in sorted(inventory.mutations().items()):
        never = declared[name] - (inventory.codes(key) - KNOWN_UNREACHABLE.get(name, set()))
        never -= {FALLBACK.value}
        if never:
            extra[name] = sorted(never)
    assert not extra, f"these mutations declare codes they can never raise: {extra}"


def test_the_inventory_sees_through_helpers(inventory):
    """Known paths, so that the inventory cannot silently go blind."""
    mutations = inventory.mutations()
    # ctx.require_viewer() -> unauthenticated() -> ErrorCode.UNAUTHENTICATED
    assert "UNAUTHENTICATED" in inventory.codes(mutations["submitComparison"])
    # validation.youtube_id(...) -> InvalidInput(..., "BAD_VIDEO_ID")
    assert "BAD_VIDEO_ID" in inventory.codes(mutations["submitComparison"])
    # ctx.require_admin() -> ErrorCode.FORBIDDEN
    assert "FORBIDDEN" in inventory.codes(mutations["refit"])
    # PaginationError(...) without a code -> its default, BAD_PAGINATION
    default = Inventory()
    tree = ast.parse("from app.resolvers.pagination import PaginationError\n"
                     "def f():\n    raise PaginationError('x')\n")  # fmt: skip
    default.modules["probe"] = Module("probe", tree)
    default._index(default.modules["probe"])
    assert default.codes("probe:f") == {"BAD_PAGINATION"}


async def test_an_undeclared_code_falls_back_and_logs(caplog):
    """A code missing from the declaration answers the fallback (and logs an ERROR,
    which the fuzz tests fail on) instead of failing the whole payload."""
    import strawberry

    from app.schema.mutation import FALLBACK, USER_ERRORS, payload
    from app.schema.types import PublicUser

    @strawberry.type
    class ProbePayload:
        user: PublicUser | None = None

    async def probe_thing(self: object, code: str) -> ProbePayload:
        raise InvalidInput("x", "nope", code)

    wrapped = payload(ProbePayload, codes=[ErrorCode.SAME_VIDEO])(probe_thing)
    kind = USER_ERRORS["probeThing"]
    assert {c.value for c in kind.code_enum} == {"SAME_VIDEO", FALLBACK.value}

    answer = await wrapped(None, "SAME_VIDEO")
    assert [(e.field, e.message, e.code.value) for e in answer.user_errors] == [
        ("x", "nope", "SAME_VIDEO")
    ]
    with caplog.at_level(logging.ERROR, logger="sunrank.api"):
        answer = await wrapped(None, "UNKNOWN_USER")
    assert [(e.field, e.message, e.code.value) for e in answer.user_errors] == [
        ("x", "nope", FALLBACK.value)
    ]
    assert any(
        r.levelno == logging.ERROR and "UNKNOWN_USER" in r.getMessage() for r in caplog.records
    )


if __name__ == "__main__":  # print each mutation's codes
    inv = Inventory()
    order = [code.value for code in ErrorCode]
    for mutation, resolver in sorted(inv.mutations().items()):
        names = sorted(
            inv.codes(resolver) - KNOWN_UNREACHABLE.get(mutation, set()), key=order.index
        )
        print(f"{mutation}: {', '.join(names)}")
    for problem in inv.problems:
        print("PROBLEM", problem)
