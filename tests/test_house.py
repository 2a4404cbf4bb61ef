"""The house as drawn in pipeline/__init__.py: no import circle (lazy imports included), engines never import a
command, the backends import no engine above them, and no ``type: ignore`` hides a type error."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"


def imports() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports, at the top or inside a function."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.with_suffix("").relative_to(PACKAGE.parent).parts).removesuffix(".__init__")
        modules[name] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
                graph[name] |= {found for found in (base, *(f"{base}.{a.name}" for a in node.names))
                                if found in modules and found != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph[node]):
            if target in path:
                found.append(path[path.index(target):] + [target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node, [node])
    return found


def test_no_import_circle_and_arrows_point_down() -> None:
    graph = imports()
    assert any(name.startswith("pipeline.commands.") for name in graph), "the commands live in pipeline/commands/"
    assert any(name.startswith("pipeline.backends.") for name in graph), "the backends live in pipeline/backends/"
    assert circles(graph) == []
    for name, targets in graph.items():
        if not name.startswith(("pipeline.commands", "pipeline.cli", "pipeline.__main__")):
            assert not {t for t in targets if t.startswith("pipeline.commands")}, f"{name} imports a command"
        if name.startswith("pipeline.backends"):
            above = {"pipeline.session", "pipeline.generate", "pipeline.refresh", "pipeline.draft", "pipeline.stale"}
            assert not targets & above, f"{name} imports an engine above it"


def test_no_type_ignore() -> None:
    assert [str(path) for path in PACKAGE.rglob("*.py") if "type: ignore" in path.read_text(encoding="utf-8")] == []
