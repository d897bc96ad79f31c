"""The layering, read from the source: the core never imports the edges.

Edges speak to the outside — wire schemas (``voxgate.protocol``), the ASGI app (``voxgate.server``), the client SDK
(``voxgate.client``) and the command line — and convert to and from the core's own types. Everything else is core:
streaming, analysis, engines, audio, models, files, the service, the shared types. A core module that imports an
edge would tie the domain to a wire format (and drag pydantic models, FastAPI or the SDK into it), so the rules below
are checked on every module's imports, wherever they sit in the file (functions and ``TYPE_CHECKING`` blocks too).

:func:`import_graph` is the module-level import graph of the package; further checks (circles, ...) can build on it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import voxgate

PACKAGE = Path(voxgate.__file__).resolve().parent

EDGES = (
    "voxgate.protocol",
    "voxgate.server",
    "voxgate.client",
    "voxgate.cli",
    "voxgate.__main__",
    "voxgate.cluster.app",
)
"""Modules (and packages) that face the outside world (``voxgate.cluster.app``: the Ray Serve application, which serves
the ASGI app; the rest of ``voxgate.cluster`` is core)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    """``name`` is one of ``prefixes`` or inside one of them (``voxgate.server.ws`` is within ``voxgate.server``)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imports_of(source: str, module: str, *, package: bool = False) -> set[str]:
    """The modules ``source`` (the text of ``module``) imports, absolute; ``from a import b`` counts as ``a`` and, when
    ``a.b`` could be a module, ``a.b`` too. ``package``: the source is a package's ``__init__``."""
    found: set[str] = set()
    base = module.split(".") if package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def import_graph() -> dict[str, set[str]]:
    """Each voxgate module -> the voxgate modules it imports (names that are not modules are dropped)."""
    known = modules()
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        found = imports_of(path.read_text(encoding="utf-8"), name, package=path.name == "__init__.py")
        graph[name] = {m for m in found if m in known and m != name}
    return graph


@dataclass(frozen=True)
class Rule:
    what: str
    applies_to: tuple[str, ...] | None
    """Modules the rule holds for (``None``: every module outside the edges, i.e. the core)."""
    forbidden: tuple[str, ...]

    def covers(self, module: str) -> bool:
        return not within(module, EDGES) if self.applies_to is None else within(module, self.applies_to)


RULES = (
    Rule("the core imports no edge", None, EDGES),
    Rule("the wire schemas know nothing of the server or the SDK", ("voxgate.protocol",),
         ("voxgate.server", "voxgate.client", "voxgate.cli")),
    Rule("the client SDK does not import the server", ("voxgate.client",), ("voxgate.server", "voxgate.cli")),
)  # fmt: skip


def violations(rule: Rule, graph: dict[str, set[str]]) -> Iterator[str]:
    for module, imported in sorted(graph.items()):
        if rule.covers(module):
            yield from (f"{module} imports {m}" for m in sorted(imported) if within(m, rule.forbidden))


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.what)
def test_layering(rule: Rule, graph: dict[str, set[str]]) -> None:
    assert list(violations(rule, graph)) == []


def test_the_core_is_what_the_architecture_names(graph: dict[str, set[str]]) -> None:
    core = {m for m in graph if RULES[0].covers(m)}
    named = {"voxgate.types", "voxgate.service", "voxgate.streaming.session", "voxgate.streaming.runner",
             "voxgate.streaming.policy", "voxgate.analysis.profile", "voxgate.engines.base", "voxgate.audio.pcm",
             "voxgate.models.catalog"}  # fmt: skip
    assert named <= core
    assert not core & {"voxgate.protocol.ws", "voxgate.server.app", "voxgate.client.stream", "voxgate.cli"}


def test_the_reader_sees_every_kind_of_import() -> None:
    source = """
import voxgate.server.app
from voxgate.protocol.ws import TurnDetection
from ..protocol import http
from . import events

def later() -> None:
    from voxgate.client import connect
"""
    found = imports_of(source, "voxgate.streaming.session")
    assert {"voxgate.server.app", "voxgate.protocol.ws", "voxgate.protocol", "voxgate.protocol.http"} <= found
    assert {"voxgate.streaming", "voxgate.streaming.events", "voxgate.client"} <= found
    assert imports_of("from .decode import iter_decode", "voxgate.audio", package=True) >= {"voxgate.audio.decode"}


def test_a_violation_is_reported() -> None:
    graph = {"voxgate.streaming.session": {"voxgate.protocol.ws", "voxgate.types"}, "voxgate.protocol.ws": set()}
    assert list(violations(RULES[0], graph)) == ["voxgate.streaming.session imports voxgate.protocol.ws"]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every group of modules that import each other round a circle (strongly connected components of two or more,
    or a module importing itself), by Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles() -> None:
    """No two modules import each other, directly or round a longer circle (imports inside functions count too)."""
    assert cycles(import_graph()) == []
