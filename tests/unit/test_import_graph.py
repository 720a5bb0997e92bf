"""The import graph of the ``padlock`` package has no cycle, and the rules engine never reaches the policy model.

Covers, on the graph grimp builds from the source (the library import-linter runs on):

* no import cycle anywhere in ``padlock``, between any two or more modules. The graph holds every
  import statement grimp finds in a module: at module level, inside functions and methods (deferred
  imports, which only hide a cycle), and under ``if TYPE_CHECKING:`` (a cycle for the reader and for
  mypy all the same). A cycle found is reported with the import lines that close it;
* ``padlock.engine`` (Falco's rules engine) reaches ``padlock.policy`` (the policy model) through no
  chain of imports, direct or indirect, while the policy model does use the engine; and the old
  ``padlock.core`` package no longer exists.
"""

from __future__ import annotations

import grimp
import pytest


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("padlock", cache_dir=None)


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in modules:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            succ = edges.get(node, [])
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:  # propagate to the parent once every successor is done
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    lines = []
    for importer in component:
        for imported in component:
            for detail in graph.get_import_details(importer=importer, imported=imported):
                lines.append(f"  {importer}:{detail['line_number']}: {detail['line_contents']}")
    return "\n".join(lines)


def test_the_cycle_finder_reports_a_cycle_when_one_exists() -> None:
    g = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c", "p.d"):
        g.add_module(m)
    g.add_import(importer="p.a", imported="p.b")
    g.add_import(importer="p.b", imported="p.c")
    g.add_import(importer="p.c", imported="p.a")
    g.add_import(importer="p.c", imported="p.d")
    assert cycles(g) == [["p.a", "p.b", "p.c"]]


def test_no_module_of_padlock_takes_part_in_an_import_cycle(graph: grimp.ImportGraph) -> None:
    found = cycles(graph)
    assert found == [], "import cycles:\n" + "\n".join(describe(graph, c) for c in found)


def test_the_rules_engine_never_reaches_the_policy_model_and_the_policy_model_uses_the_engine(
    graph: grimp.ImportGraph,
) -> None:
    chain = graph.find_shortest_chain(importer="padlock.engine", imported="padlock.policy", as_packages=True)
    assert chain is None, f"padlock.engine reaches padlock.policy: {' -> '.join(chain or ())}"
    assert graph.chain_exists(importer="padlock.policy", imported="padlock.engine", as_packages=True)
    assert "padlock.core" not in graph.modules
