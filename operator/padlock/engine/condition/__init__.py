"""Falco's condition language: parse to a tree, print back, and list what a condition uses.

Public entry points for the loader and the policy renderer: ``parse(text) -> Node`` (raises
``ConditionError`` with libsinsp's message and an offset), ``render(node) -> str`` and
``fields(node) -> tuple[str, ...]``, plus ``expand_macros`` and ``substitute_lists`` for the condition
Falco evaluates.
"""

from padlock.engine.condition.ast import (
    And,
    Check,
    FieldRef,
    ListRef,
    ListValue,
    MacroRef,
    Node,
    Not,
    Num,
    Or,
    Str,
    Transformer,
)
from padlock.engine.condition.expand import expand_macros, substitute_lists
from padlock.engine.condition.parser import ConditionError, parse
from padlock.engine.condition.render import quote, render
from padlock.engine.condition.walk import fields, iter_field_refs, iter_nodes, macro_refs

__all__ = [
    "And",
    "Check",
    "ConditionError",
    "FieldRef",
    "ListRef",
    "ListValue",
    "MacroRef",
    "Node",
    "Not",
    "Num",
    "Or",
    "Str",
    "Transformer",
    "expand_macros",
    "fields",
    "iter_field_refs",
    "iter_nodes",
    "macro_refs",
    "parse",
    "quote",
    "render",
    "substitute_lists",
]
