"""The import rules of the code base, checked from the source (ast), not by importing it.

Layers, lowest first; a module may import its own layer and the ones below, never above.
Each folder is one layer, named here; a module in no listed folder is an error, not a
default:

    0  scoring core      evaluator.scoring (+ reader, probes), evaluator.support,
                         evaluator.runs
    1  data and clients  evaluator.db, evaluator.clients
    2  boards            leaderboard (standings, boards, publishers)
    3  commands          evaluator.daemon (+ outbox), evaluator.operator, evaluator.cli,
                         evaluator.__main__

Every import counts, also one inside a function: a lazy upward import is still an upward
dependency. Import cycles between our modules are refused too, and so is importing another
module's private name (`from x import _y`): what a module shares, it names without `_`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

FOLDERS = {
    "evaluator.scoring": 0,
    "evaluator.support": 0,
    "evaluator.runs": 0,
    "evaluator.db": 1,
    "evaluator.clients": 1,
    "leaderboard": 2,
    "evaluator.daemon": 3,
    "evaluator.operator": 3,
    "evaluator.cli": 3,
}
# Modules outside those folders: the top package's own files.
MODULES = {"evaluator": 0, "evaluator.__main__": 3}
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


def layer(module: str) -> int | None:
    """The module's layer, or None where no folder of FOLDERS (nor MODULES) holds it."""
    if module in MODULES:
        return MODULES[module]
    for folder, number in FOLDERS.items():
        if module == folder or module.startswith(folder + "."):
            return number
    return None


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, str, int]]:
    """(imported module of ours, name taken from it or "", line) for every import."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _ours(alias.name, "", node.lineno, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package[: len(package) - node.level + (1 if is_package else 0)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if target in known:
                    yield from _ours(target, "", node.lineno, known)
                else:
                    yield from _ours(base, alias.name, node.lineno, known)


def _ours(name: str, taken: str, line: int,
          known: set[str]) -> Iterator[tuple[str, str, int]]:
    while name and name not in known:
        name = name.rpartition(".")[0]
    if name:
        yield name, taken, line


def violations(root: Path) -> list[str]:
    """Every unplaced module, upward import, private import and import cycle below root,
    as readable lines."""
    found = modules(root)
    known = set(found)
    graph: dict[str, set[str]] = {name: set() for name in found}
    problems = [f"{path.relative_to(root)}: {name} is in no layer's folder; put it in one, "
                "or add its folder to tests/layers.py FOLDERS"
                for name, path in sorted(found.items()) if layer(name) is None]
    for name, path in sorted(found.items()):
        for target, taken, line in imports(name, path, known):
            if target == name:
                continue
            graph[name].add(target)
            where = f"{path.relative_to(root)}:{line}: {name}"
            if taken.startswith("_") and not taken.startswith("__"):
                problems.append(f"{where} imports the private name {taken} of {target}")
            mine, theirs = layer(name), layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(f"{where} ({LAYER_NAMES[mine]}) imports {target} "
                                f"({LAYER_NAMES[theirs]}), a higher layer")
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
