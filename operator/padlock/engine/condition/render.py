"""Print a condition tree back to text that parses to the same tree.

Used by the loader (compiled conditions with exceptions), the policy renderer (wrapping upstream
conditions) and tests (parse -> render -> parse round trips). Output is canonical: single spaces,
parentheses only where precedence needs them, strings bare when the grammar allows, else double-quoted.
"""

from __future__ import annotations

import re

from padlock.engine.condition import ast

_BARE_OK = re.compile(r"[^ \b\t\n\r(),=\"'\\]+")
_ARG_BARE_OK = re.compile(r"[^ \b\t\n\r\[\]\"'\\]+")
_KEYWORDS = frozenset({"and", "or", "not", "exists", "in", "intersects", "pmatch", "oneof", "anyof", "allof"})
_NUMERIC_START = re.compile(r"[+\-]?[0-9]|0[xX]")


def quote(value: str) -> str:
    """Double-quote a string value, escaping what libsinsp's unescaper decodes."""
    out = (
        value.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\b", "\\b")
        .replace("\f", "\\f")
    )
    return f'"{out}"'


def _str(value: str) -> str:
    if value and _BARE_OK.fullmatch(value) and value not in _KEYWORDS and not value.startswith(("val(",)):
        # Transformer names followed by '(' cannot occur: '(' is not bare.
        return value
    return quote(value)


def _arg(arg: str | None) -> str:
    if arg is None:
        return ""
    if arg and _ARG_BARE_OK.fullmatch(arg):
        return f"[{arg}]"
    return f"[{quote(arg)}]"


def _value(v: ast.Value | ast.Arg) -> str:
    if isinstance(v, ast.Str):
        return _str(v.value)
    if isinstance(v, ast.Num):
        return v.text
    if isinstance(v, ast.ListValue):
        return "(" + ", ".join(_str(i.value) for i in v.items) + ")"
    if isinstance(v, ast.ListRef):
        return v.name
    if isinstance(v, ast.FieldRef):
        return v.name + _arg(v.arg)
    return _transformer(v)


def _transformer(t: ast.Transformer) -> str:
    return f"{t.name}(" + ", ".join(_value(a) for a in t.args) + ")" + _arg(t.arg)


def _lhs(lhs: ast.FieldRef | ast.Transformer) -> str:
    if isinstance(lhs, ast.FieldRef):
        return lhs.name + _arg(lhs.arg)
    return _transformer(lhs)


def render(node: ast.Node) -> str:
    """Canonical text of a condition tree."""
    if isinstance(node, ast.Check):
        if node.value is None:
            return f"{_lhs(node.lhs)} {node.op}"
        mod = f" {node.modifier}" if node.modifier else ""
        return f"{_lhs(node.lhs)} {node.op}{mod} {_value(node.value)}"
    if isinstance(node, ast.MacroRef):
        return node.name
    if isinstance(node, ast.Not):
        child = node.child
        if isinstance(child, (ast.And, ast.Or)):
            return f"not ({render(child)})"
        return f"not {render(child)}"
    if isinstance(node, ast.And):
        return " and ".join(f"({render(c)})" if isinstance(c, (ast.Or, ast.And)) else render(c) for c in node.children)
    return " or ".join(f"({render(c)})" if isinstance(c, ast.Or) else render(c) for c in node.children)
