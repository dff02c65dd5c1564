"""The import rules of the code base, checked from the source (ast), not by importing it.

Layers, lowest first; a module may import its own layer and the ones below, never above:

    0  scoring core      evaluator.* (submission, tasks, probes, protocol, engine, files...)
    1  data and clients  evaluator.db.*, evaluator.evalai
    2  boards            leaderboard.* (standings, boards, publishers)
    3  commands          evaluator.cli.*, evaluator.daemon.*, evaluator.__main__

The longest matching prefix names a module's layer. Every import counts, also one inside a
function: a lazy upward import is still an upward dependency. Import cycles between our
modules are refused too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

LAYERS = {
    "evaluator": 0,
    "evaluator.db": 1,
    "evaluator.evalai": 1,
    "leaderboard": 2,
    "evaluator.cli": 3,
    "evaluator.daemon": 3,
    "evaluator.__main__": 3,
}
LAYER_NAMES = ["scoring core", "data and clients", "boards", "commands"]
PACKAGES = ("evaluator", "leaderboard")


def modules(root: Path) -> dict[str, Path]:
    """Our module names -> their files, below root."""
    found = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:  # Alembic scripts run inside the db layer
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def layer(module: str) -> int:
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    return LAYERS[max(prefixes, key=len)]


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported module of ours, line) for every import statement in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _ours(alias.name, node.lineno, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package[: len(package) - node.level + (1 if is_package else 0)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                yield from _ours(target if target in known else base, node.lineno, known)


def _ours(name: str, line: int, known: set[str]) -> Iterator[tuple[str, int]]:
    while name and name not in known:
        name = name.rpartition(".")[0]
    if name:
        yield name, line


def violations(root: Path) -> list[str]:
    """Every upward import and every import cycle below root, as readable lines."""
    found = modules(root)
    known = set(found)
    graph: dict[str, set[str]] = {name: set() for name in found}
    problems = []
    for name, path in sorted(found.items()):
        for target, line in imports(name, path, known):
            if target == name:
                continue
            graph[name].add(target)
            if layer(target) > layer(name):
                problems.append(
                    f"{path.relative_to(root)}:{line}: {name} ({LAYER_NAMES[layer(name)]}) "
                    f"imports {target} ({LAYER_NAMES[layer(target)]}), a higher layer"
                )
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), shown as a path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [[*group, group[0]] for group in groups]
