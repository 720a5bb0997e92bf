"""Read-only walks over condition trees: the fields, macros and lists a condition uses.

Used by the loader's compiler (field and visibility checks) and the policy engineer's renderer
(which fields an exception or scope touches).
"""

from __future__ import annotations

from collections.abc import Iterator

from padlock.engine.condition import ast


def iter_nodes(node: ast.Node) -> Iterator[ast.Node]:
    """Every node of the tree, depth first, parents before children."""
    stack: list[ast.Node] = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, (ast.And, ast.Or)):
            stack.extend(reversed(n.children))
        elif isinstance(n, ast.Not):
            stack.append(n.child)


def iter_field_refs(node: ast.Node) -> Iterator[ast.FieldRef]:
    """Every field reference, including inside transformers and ``val()``."""
    for n in iter_nodes(node):
        if isinstance(n, ast.Check):
            yield from check_field_refs(n)


def check_field_refs(check: ast.Check) -> Iterator[ast.FieldRef]:
    """The field references of one check: its left side and a transformer (or ``val()``) on the right."""
    yield from _fields_in(check.lhs)
    if isinstance(check.value, ast.Transformer):
        yield from _fields_in(check.value)


def _fields_in(x: ast.Arg | ast.Value) -> Iterator[ast.FieldRef]:
    if isinstance(x, ast.FieldRef):
        yield x
    elif isinstance(x, ast.Transformer):
        for a in x.args:
            yield from _fields_in(a)


def fields(node: ast.Node) -> tuple[str, ...]:
    """Names of the fields a condition uses, sorted and unique (arguments dropped)."""
    return tuple(sorted({f.name for f in iter_field_refs(node)}))


def macro_refs(node: ast.Node) -> Iterator[ast.MacroRef]:
    for n in iter_nodes(node):
        if isinstance(n, ast.MacroRef):
            yield n
