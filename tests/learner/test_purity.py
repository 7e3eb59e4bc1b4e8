"""``app.learner`` is pure (DESIGN.md §1): objective, fits, online solves, trust and
the checkpoint format, with no database, asyncio, metrics or GraphQL imports, so it
can be tested and benchmarked alone. The run-time wiring lives in ``app.engine``."""

from __future__ import annotations

import ast
from pathlib import Path

import app.learner

FORBIDDEN = ("asyncio", "tortoise", "strawberry", "starlette", "prometheus_client",
             "app.db", "app.engine", "app.metrics", "app.config", "app.schema",
             "app.resolvers", "app.http")  # fmt: skip


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_learner_package_imports_nothing_of_the_running_server():
    files = sorted(Path(app.learner.__file__).parent.glob("*.py"))
    assert len(files) > 5
    offending = {
        f.name: sorted(
            n for n in _imports(f) if n.split(".")[0] in FORBIDDEN or n.startswith(FORBIDDEN)
        )
        for f in files
    }
    assert {f: n for f, n in offending.items() if n} == {}
