"""How the code is layered: one store boundary, imports pointing down, no circles.

- Only ``broker/store/`` speaks to PostgreSQL: no other module of ``broker/``,
  ``adapters/`` or ``routing/`` imports asyncpg, at any level (a function's
  own import counts). Tests may: integration tests read rows with asyncpg to
  assert what the store holds, which is an observation, not a second way in.
- The module-level imports of ``broker/``, ``adapters/`` and ``routing/``
  form no cycle (imports under ``if TYPE_CHECKING:`` and inside functions are
  left out: they run later, or never).
- Adapters never import routing; only the CLI's commands import
  ``broker.app``, which composes the roles.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("broker", "adapters", "routing")


def modules() -> dict[str, Path]:
    """Return every module of the three packages by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imported(path: Path, name: str, *, top_level_only: bool) -> Iterator[str]:
    """Yield the dotted names a module imports (``from a import b`` gives ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes: list[ast.stmt | ast.AST]
    if top_level_only:
        nodes = []
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.extend(node.body if isinstance(node, ast.Try) else [node])
    else:
        nodes = list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    """Return module -> the project modules it imports at module level (packages included)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets: set[str] = set()
        for target in imported(path, name, top_level_only=True):
            while target and target not in known:
                target = target.rpartition(".")[0]
            parts = target.split(".")
            # Importing a.b.c runs a and a.b first.
            targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & known.keys()
        edges[name] = targets - {name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_only_the_store_imports_asyncpg() -> None:
    offenders = sorted(
        name
        for name, path in modules().items()
        if not name.startswith("broker.store")
        and any(
            t == "asyncpg" or t.startswith("asyncpg.")
            for t in imported(path, name, top_level_only=False)
        )
    )
    assert offenders == [], "speak to PostgreSQL through broker/store/, not asyncpg"


def test_module_level_imports_form_no_cycle() -> None:
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]


def test_adapters_never_import_routing() -> None:
    offenders = sorted(
        f"{name} imports {target}"
        for name, path in modules().items()
        if name.startswith("adapters")
        for target in set(imported(path, name, top_level_only=False))
        if target == "routing" or target.startswith("routing.")
    )
    assert offenders == []


def test_only_the_commands_import_the_composition_of_roles() -> None:
    offenders = sorted(
        name
        for name, path in modules().items()
        if not (name.startswith("broker.commands") or name in ("broker.cli", "broker.app"))
        and "broker.app" in set(imported(path, name, top_level_only=False))
    )
    assert offenders == []
