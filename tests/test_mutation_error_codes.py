"""Each mutation's ``<Mutation>ErrorCode`` enum holds every code it can raise, and only
those (plus the fallback every mutation declares).

The inventory is static: from each ``@strawberry.mutation`` resolver, every function of
``app/`` reachable by name is visited, collecting ``ErrorCode.X`` references and the
codes given to a function with a ``code`` parameter (``InvalidInput``,
``PaginationError``, ``ApiError``…), or its default when none is given. A name on a
module or class of app/ resolves exactly; a method on a receiver whose type is known
(an annotation, a constructor call, a literal) resolves in that class and its
subclasses, or to nothing when the type is not app/'s (``dict.keys``, an httpx
client); on anything else, every method of that name counts (an over-approximation;
a value read without a call only reaches properties). Code under a ``try`` whose
handler swallows InvalidInput does not count, nor do field resolvers of the payload
(the GraphQL executor runs them, outside ``userErrors``).

``python tests/test_mutation_error_codes.py`` prints the inventory, a declaration to
paste next to each mutation.
"""

from __future__ import annotations

import ast
import builtins
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.errors import ErrorCode, InvalidInput

EXTERNAL = "<not app/>"  # the type of a str, a dict, an httpx client...
BUILTINS = frozenset(dir(builtins))
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
        self._local_types: dict[str, dict[str, str | None]] = {}
        self._attribute_types: dict[str, dict[str, str | None]] = {}

    # -- indexing --

    def _index(self, module: Module) -> None:
        for node in ast.walk(module.tree):  # imports anywhere, function-level ones too
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        module.names[alias.asname] = alias.name
                    else:
                        module.names.setdefault(alias.name.split(".")[0], alias.name.split(".")[0])
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

    def _ancestors(self, class_key: str, depth: int = 0) -> set[str]:
        """The classes of app/ that ``class_key`` derives from (itself excluded)."""
        module_name, _, cls = class_key.partition(":")
        if module_name not in self.modules or depth > 10:
            return set()
        found = set()
        for base in self._resolve_bases(self.modules[module_name], cls):
            found |= {base} | self._ancestors(base, depth + 1)
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

    def _callees(self, fn: Function, expr: ast.expr, called: bool = True) -> list[str]:
        """What a Name or Attribute expression in ``fn`` may refer to (keys of
        functions, module variables, classes); ``called``: it is the function of a call."""
        module, cls = self.modules[fn.module], fn.cls
        if isinstance(expr, ast.Name):
            key = self._resolve_name(module, expr.id)
            return [self._canonical(key)] if key else []
        if isinstance(expr, ast.Attribute):
            base = expr.value
            kind = self._type_of(fn, base)
            if kind == EXTERNAL:  # a str, a dict, an httpx client...: not our code
                return []
            if kind is not None:  # an instance of one of our classes, or of a subclass
                return self._class_members(*kind.split(":"), expr.attr) + [
                    k
                    for k in self.methods_by_name.get(expr.attr, [])
                    if kind in self._ancestors(k.rsplit(".", 1)[0])
                ]
            if isinstance(base, ast.Name | ast.Attribute):
                dotted = _dotted(base)
                head = dotted.split(".")[0] if dotted else None
                if dotted and head not in ("self", "cls") and head not in self._locals(fn):
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

    # -- what a receiver is: one of our classes, not our code at all, or unknown --

    def _locals(self, fn: Function) -> dict[str, str | None]:
        """The type of each name ``fn`` binds (its arguments and variables), when
        every binding agrees: a class key, EXTERNAL, or None (unknown)."""
        if fn.key in self._local_types:
            return self._local_types[fn.key]
        found: dict[str, set[str | None]] = {}
        self._local_types[fn.key] = {}  # while computing: every name unknown
        node = fn.node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
                kind = self._annotation(fn, arg.annotation) if arg.annotation else None
                found.setdefault(arg.arg, set()).add(kind)
            for extra in (args.vararg, args.kwarg):
                if extra is not None:
                    found.setdefault(extra.arg, set()).add(EXTERNAL)  # a tuple, a dict
            typed: set[int] = set()  # the targets of the assignments typed here
            for sub in _body_nodes(node):
                if isinstance(sub, ast.Assign) and len(sub.targets) == 1:
                    target = sub.targets[0]
                    if isinstance(target, ast.Name):
                        found.setdefault(target.id, set()).add(self._type_of(fn, sub.value))
                        typed.add(id(target))
                elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name):
                    found.setdefault(sub.target.id, set()).add(self._annotation(fn, sub.annotation))
                    typed.add(id(sub.target))
                elif (
                    isinstance(sub, ast.Name)
                    and isinstance(sub.ctx, ast.Store | ast.Del)
                    and id(sub) not in typed
                ):
                    found.setdefault(sub.id, set()).add(None)  # a loop, a with, a tuple...
                elif isinstance(sub, ast.arg):  # a nested function's or a lambda's
                    found.setdefault(sub.arg, set()).add(None)
        types = {name: kinds.pop() if len(kinds) == 1 else None for name, kinds in found.items()}
        self._local_types[fn.key] = types
        return types

    def _annotation(self, fn: Function, annotation: ast.expr | None) -> str | None:
        if annotation is None:
            return None
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
            try:
                annotation = ast.parse(annotation.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
            kinds = {
                self._annotation(fn, side)
                for side in (annotation.left, annotation.right)
                if not (isinstance(side, ast.Constant) and side.value is None)
            }
            return kinds.pop() if len(kinds) == 1 else None
        if isinstance(annotation, ast.Subscript):
            if _last_name(annotation.value) == "Optional":
                return self._annotation(fn, annotation.slice)
            annotation = annotation.value  # list[...], Mapping[...]: the container
        if _last_name(annotation) in ("Any", "object"):
            return None
        return self._named_type(fn, annotation)

    def _named_type(self, fn: Function, expr: ast.expr) -> str | None:
        """A class named by ``expr``: ours (its key), or EXTERNAL (a builtin, or a name
        imported from outside app/)."""
        dotted = _dotted(expr)
        if dotted is None:
            return None
        head = dotted.split(".")[0]
        module = self.modules[fn.module]
        if head in self._locals(fn):
            return None
        if head not in module.names:
            return EXTERNAL if head in BUILTINS else None
        resolved = self._resolve_dotted(module, dotted)
        if any(self._is_class(r) for r in resolved):
            return next(r for r in resolved if self._is_class(r))
        root = module.names[head].split(":")[0]
        if root.split(".")[0] != "app":
            return EXTERNAL
        return None

    def _type_of(self, fn: Function, expr: ast.expr) -> str | None:
        """What ``expr`` evaluates to, as far as this can tell cheaply."""
        if isinstance(
            expr,
            ast.Constant | ast.JoinedStr | ast.List | ast.Tuple | ast.Dict | ast.Set
            | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp | ast.Compare,
        ):  # fmt: skip
            return EXTERNAL
        if isinstance(expr, ast.Await):
            return None
        if isinstance(expr, ast.Name):
            if expr.id in ("self", "cls"):
                return None
            local = self._locals(fn)
            if expr.id in local:
                return local[expr.id]
            module = self.modules[fn.module]
            if expr.id not in module.names:
                return EXTERNAL if expr.id in BUILTINS else None
            target = module.names[expr.id].split(":")[0]
            return EXTERNAL if target.split(".")[0] != "app" else None
        if isinstance(expr, ast.Attribute):
            if isinstance(expr.value, ast.Name) and expr.value.id == "self" and fn.cls:
                return self._attribute_type(fn.module, fn.cls, expr.attr)
            return None  # `info.context` is ours, though `info` is strawberry's
        if isinstance(expr, ast.Call):
            callee = expr.func
            if isinstance(callee, ast.Name | ast.Attribute):
                named = self._named_type(fn, callee)
                if named is not None and named != EXTERNAL:
                    return named  # constructing one of our classes
                if isinstance(callee, ast.Attribute):
                    return None  # what a method returns: `d.get(k)` may be ours
                return named
        return None

    def _attribute_type(self, module_name: str, cls: str, attr: str) -> str | None:
        """The type of ``self.attr`` in ``cls``, when every assignment agrees."""
        key = f"{module_name}:{cls}"
        if key not in self._attribute_types:
            self._attribute_types[key] = {}  # while computing: unknown
            found: dict[str, set[str | None]] = {}
            for fn in self.functions.values():
                if fn.module != module_name or fn.cls != cls:
                    continue
                if not isinstance(fn.node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for sub in _body_nodes(fn.node):
                    targets: list[ast.expr] = []
                    if isinstance(sub, ast.Assign):
                        targets = sub.targets
                    elif isinstance(sub, ast.AnnAssign | ast.AugAssign):
                        targets = [sub.target]
                    for target in targets:
                        for t in ast.walk(target):
                            if (
                                isinstance(t, ast.Attribute)
                                and isinstance(t.value, ast.Name)
                                and t.value.id == "self"
                            ):
                                if isinstance(sub, ast.AnnAssign):
                                    kind = self._annotation(fn, sub.annotation)
                                elif isinstance(sub, ast.Assign) and t is target:
                                    kind = self._type_of(fn, sub.value)
                                else:
                                    kind = None
                                found.setdefault(t.attr, set()).add(kind)
            self._attribute_types[key] = {
                name: kinds.pop() if len(kinds) == 1 else None for name, kinds in found.items()
            }
        return self._attribute_types[key].get(attr)

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
        called = {id(n.func) for n in _body_nodes(fn.node) if isinstance(n, ast.Call)}
        for node in _body_nodes(fn.node):
            if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                for target in self._callees(fn, node, id(node) in called):
                    if target in self.functions or self._is_class(target):
                        yield target

    def _own_codes(self, key: str) -> set[str]:
        fn = self.functions.get(key)
        if fn is None:
            return set()
        found: set[str] = set()
        for node in _body_nodes(fn.node):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in MEMBERS
                and _last_name(node.value) == "ErrorCode"
            ):
                found.add(node.attr)
            if isinstance(node, ast.Call):
                for target in self._callees(fn, node.func):
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


def _probe(source: str) -> frozenset[str]:
    """The codes the inventory finds for ``f`` in ``source``, a module of app/."""
    inventory = Inventory()
    inventory.modules["probe"] = Module("probe", ast.parse(source))
    inventory._index(inventory.modules["probe"])
    return inventory.codes("probe:f")


def test_the_inventory_rules():
    imports = (
        "from app.errors import ErrorCode, InvalidInput\n"
        "from app.resolvers.pagination import PaginationError\n"
        "from app.accounts import mailer\n"
    )
    # a code parameter left out: its default
    assert _probe(imports + "def f():\n    raise PaginationError('x')\n") == {"BAD_PAGINATION"}
    assert _probe(imports + "def f():\n    raise InvalidInput('', 'x')\n") == {"INVALID"}
    # given by name, as a string or through a local variable
    assert _probe(imports + "def f():\n    raise InvalidInput('', 'x', code='SAME_VIDEO')\n") == {
        "SAME_VIDEO"
    }
    assert _probe(
        imports + "def f(a):\n    c = 'NO_SCORES' if a else 'SAME_VIDEO'\n"
        "    raise InvalidInput('', 'x', c)\n"
    ) == {"NO_SCORES", "SAME_VIDEO"}
    # through a module's function; not when a handler swallows it, yes when it re-raises
    call = "        await mailer.check_quota(s, 1)\n"
    assert _probe(imports + "async def f(s):\n" + call.replace("    ", "", 1)) == {"TOO_MANY_MAILS"}
    swallow = "async def f(s):\n    try:\n" + call + "    except InvalidInput:\n        pass\n"
    assert _probe(imports + swallow) == set()
    assert _probe(imports + swallow.replace("pass", "raise")) == {"TOO_MANY_MAILS"}
    # an expression the inventory cannot read is reported, not ignored
    inventory = Inventory()
    source = imports + "def f(e):\n    raise InvalidInput('', 'x', e.code)\n"
    inventory.modules["probe"] = Module("probe", ast.parse(source))
    inventory._index(inventory.modules["probe"])
    inventory.codes("probe:f")
    assert inventory.problems and "e.code" in inventory.problems[0]


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
