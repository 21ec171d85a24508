"""The layers of ``src/eventrelay`` point down the data flow: computed from the source's imports.

    core                                   the leaf: spec, records, outcome, errors (imports nothing)
    queue  deliverylog  destinations       storage and the destination types
    filters                                destination filters: the FQL subset and its rules (pure logic)
    config                                 the configuration model (reads the destination registry)
    ingest                                 the Tracking API (hands events to an EventSink it declares)
    delivery                               workers: queue -> destinations -> delivery log
    localaws  awsiam  admin                the local AWS endpoint, IAM tooling, admin API and page (the
                                           Event Tester normalises its test event as ingest does)
    runtime  demo  cli                     composition and commands

Every import (module level or inside a function, absolute or relative) counts.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "eventrelay"

# Which top-level packages each one may import (besides itself). Anything else is a layer break.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "storage": {"core"},
    "queue": {"core", "storage"},
    "deliverylog": {"core", "storage"},
    "destinations": {"core"},
    "filters": {"core"},
    "config": {"core", "destinations", "filters"},
    "ingest": {"core"},
    "delivery": {"core", "queue", "deliverylog", "destinations", "config", "filters"},
    "localaws": {"core", "config", "destinations"},
    "awsiam": {"core", "config", "destinations", "deliverylog"},
    "admin": {"core", "config", "destinations", "deliverylog", "delivery", "awsiam", "queue", "ingest", "filters"},
    "demo": {"core", "config", "destinations", "localaws"},
    "runtime": {"core", "config", "queue", "deliverylog", "destinations", "ingest", "delivery", "admin", "filters"},
    "cli": {
        "core", "config", "queue", "deliverylog", "destinations", "ingest", "delivery", "localaws",
        "awsiam", "admin", "demo", "runtime", "filters",
    },
}  # fmt: skip
# The rules of the layering issue, stated on their own so a change to ALLOWED cannot drop them.
NEVER: dict[str, set[str]] = {
    "core": set(ALLOWED) - {"core"},
    "queue": {"delivery"},
    "deliverylog": {"delivery"},
    "destinations": {"delivery", "config"},
    "ingest": {"delivery", "destinations", "queue"},
    "filters": set(ALLOWED) - {"core", "filters"},
}


def _top(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "eventrelay" or len(parts) < 2:
        return None
    if not ((SRC / parts[1]).is_dir() or (SRC / f"{parts[1]}.py").exists()):
        return None  # a name of the root package itself (``__version__``)
    return parts[1]


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every eventrelay module ``path`` imports, with its line."""
    rel = path.relative_to(SRC.parent)
    package = list(rel.with_suffix("").parts)
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "eventrelay":  # from eventrelay import x: x is the package imported
                found += [(f"eventrelay.{a.name}", node.lineno) for a in node.names]
            else:
                found.append((module, node.lineno))
    return found


def _graph() -> dict[str, dict[str, list[str]]]:
    """top-level package -> imported top-level package -> where (file:line)."""
    graph: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if len(rel.parts) == 1:
            continue  # eventrelay/__init__.py: the package's docstring and version only
        owner = rel.parts[0]
        for module, line in _imports(path):
            target = _top(module)
            if target is not None and target != owner:
                graph[owner][target].append(f"{rel}:{line}")
    return graph


def test_every_top_level_package_has_a_layer() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in SRC.glob("*.py") if p.name != "__init__.py"}
    assert packages | modules <= set(ALLOWED), f"give these a layer in ALLOWED: {(packages | modules) - set(ALLOWED)}"


@pytest.mark.parametrize("owner", sorted(ALLOWED))
def test_imports_point_down_the_layers(owner: str) -> None:
    imported = _graph().get(owner, {})
    broken = {
        target: where
        for target, where in imported.items()
        if target not in ALLOWED[owner] or target in NEVER.get(owner, set())
    }
    assert not broken, f"{owner} must not import {sorted(broken)}: {broken}"


def test_no_two_top_level_packages_import_each_other_even_through_others() -> None:
    graph = {owner: set(targets) for owner, targets in _graph().items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            for nxt in graph.get(node, ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    cycles = sorted(owner for owner in graph if reaches(owner, owner))
    assert not cycles, f"import cycles through: {cycles}"


def test_the_checker_sees_a_layer_break(tmp_path: Path) -> None:
    """The graph is read from real source: a relative import inside a function is found."""
    pkg = tmp_path / "eventrelay" / "ingest"
    pkg.mkdir(parents=True)
    bad = pkg / "x.py"
    bad.write_text("def f():\n    from ..delivery import engine\n")
    global SRC
    saved, SRC = SRC, tmp_path / "eventrelay"
    try:
        assert _imports(bad) == [("eventrelay.delivery", 2)]
    finally:
        SRC = saved
