"""The layers of the code, read from its imports (every import, at module level or inside a
function): no import circle anywhere, and no import back up the layers of :data:`LAYERS`
(``models/``, the model adapters, imports nothing from ``pipeline/``)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def module_graph() -> dict[str, set[str]]:
    """{module: the project modules it imports} over pipeline/ and models/ (migrations left out:
    Alembic loads them by path)."""
    files = {}
    for path in [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("models/**/*.py")]:
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        files[name] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    target = next((c for c in (f"{base}.{alias.name}", base) if c in files), None)
                    if target and target != name:
                        graph[name].add(target)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in files and a.name != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


LAYERS = [
    ["models"],  # model adapters, and the errors, records and file writing they share
    ["pipeline", "pipeline.errors", "pipeline.text", "pipeline.interaction"],  # the shared record and helpers
    ["pipeline.ingest", "pipeline.asr", "pipeline.speakers", "pipeline.pii", "pipeline.analysis"],  # the stages
    ["pipeline.config", "pipeline.run", "pipeline.evaluation", "pipeline.review", "pipeline.live",
     "pipeline.insights", "pipeline.learning"],  # what runs and reads them
    ["pipeline.cli"],
]
"""The layers, lowest first: a module imports from its own layer or lower ones."""


def layer_of(module: str) -> int:
    """The layer of ``module``: that of the longest prefix named in LAYERS."""
    named = [(len(prefix), i) for i, layer in enumerate(LAYERS) for prefix in layer
             if module == prefix or module.startswith(prefix + ".")]
    assert named, f"{module} is in no layer: add its package to LAYERS"
    return max(named)[1]


def test_circles_are_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_models_import_nothing_from_pipeline():
    graph = module_graph()
    assert graph["models.errors"] == set() and "pipeline.interaction.utterances" in graph
    up = sorted((m, d) for m, deps in graph.items() if m.startswith("models") for d in deps
                if d.startswith("pipeline"))
    assert up == []


def test_the_review_package_has_no_import_circle():
    graph = module_graph()
    review = {m: {d for d in deps if d.startswith("pipeline.review")} for m, deps in graph.items()
              if m.startswith("pipeline.review")}
    assert len(review) > 15 and circles(review) == []


def test_no_import_circle_anywhere():
    graph = module_graph()
    assert len(graph) > 90 and circles(graph) == []


def test_no_import_runs_back_up_the_layers():
    graph = module_graph()
    assert layer_of("pipeline.analysis.detectors.base") == 2 and layer_of("pipeline.cli") == 4
    up = sorted((m, d) for m, deps in graph.items() for d in deps if layer_of(d) > layer_of(m))
    assert up == []
