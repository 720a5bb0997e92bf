"""Macro expansion and list substitution on condition trees (Falco's ``filter_macro_resolver`` and
``resolve_list``), for callers that want the condition Falco actually evaluates.

Used by the policy renderer and tests; the loader's compiler uses the same substitution rule. Pure
functions over trees: macros replace bare identifiers by their own (already parsed) trees, so a macro
keeps its grouping; a bare list name inside ``( ... )`` is replaced by the list's items.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from padlock.engine.condition import ast
from padlock.engine.condition.parser import ConditionError, unescape

#: libsinsp's QuotedStr (parser.h), to recognise an item that is one whole quoted string
_QUOTED = re.compile(r"\"(?:\\\"|[^\"])*?\"|'(?:\\'|[^'])*?'", re.DOTALL)


def expand_macros(node: ast.Node, macros: Mapping[str, ast.Node]) -> ast.Node:
    """Replace every macro reference by its tree, recursively; unknown names are left as they are.

    A macro that refers to itself (directly or not) is left unexpanded at the point of recursion.
    """
    return _expand(node, macros, frozenset())


def _expand(node: ast.Node, macros: Mapping[str, ast.Node], stack: frozenset[str]) -> ast.Node:
    if isinstance(node, ast.MacroRef):
        body = macros.get(node.name)
        if body is None or node.name in stack:
            return node
        return _expand(body, macros, stack | {node.name})
    if isinstance(node, ast.And):
        return ast.And(tuple(_expand(c, macros, stack) for c in node.children), node.pos)
    if isinstance(node, ast.Or):
        return ast.Or(tuple(_expand(c, macros, stack) for c in node.children), node.pos)
    if isinstance(node, ast.Not):
        return ast.Not(_expand(node.child, macros, stack), node.pos)
    return node


def pasted_item(text: str, pos: int) -> ast.Str:
    """A list item as Falco reads it after pasting it into the condition text (``resolve_list``).

    An item that is one whole quoted string (upstream writes ``'"10.0.0.0/8"'``) is read as that quoted
    string, so its value is the text between the quotes; any other item is its text.
    """
    if len(text) >= 2 and text[0] in "\"'" and _QUOTED.fullmatch(text):
        try:
            return ast.Str(unescape(text, 0), pos, True)
        except ConditionError:
            pass
    return ast.Str(text, pos)


def substitute_lists(node: ast.Node, lists: Mapping[str, Sequence[str]]) -> ast.Node:
    """Replace bare (unquoted) list names inside ``( ... )`` by the lists' items."""
    if isinstance(node, ast.Check):
        v = node.value
        if isinstance(v, ast.ListValue) and any(not i.quoted and i.value in lists for i in v.items):
            items: list[ast.Str] = []
            for i in v.items:
                if not i.quoted and i.value in lists:
                    items.extend(pasted_item(x, i.pos) for x in lists[i.value])
                else:
                    items.append(i)
            return ast.Check(node.lhs, node.op, ast.ListValue(tuple(items), v.pos), node.modifier, node.pos)
        if isinstance(v, ast.ListRef) and v.name in lists and len(lists[v.name]) == 1:
            item = pasted_item(lists[v.name][0], v.pos)
            return ast.Check(node.lhs, node.op, ast.ListValue((item,), v.pos), node.modifier, node.pos)
        return node
    if isinstance(node, ast.And):
        return ast.And(tuple(substitute_lists(c, lists) for c in node.children), node.pos)
    if isinstance(node, ast.Or):
        return ast.Or(tuple(substitute_lists(c, lists) for c in node.children), node.pos)
    if isinstance(node, ast.Not):
        return ast.Not(substitute_lists(node.child, lists), node.pos)
    return node
