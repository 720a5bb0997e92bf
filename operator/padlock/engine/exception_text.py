"""Falco's textual exception builder and list substitution, ported faithfully.

Falco does not compile a rule's ``exceptions`` into a tree directly: it appends them to the rule's
condition as *text* and parses the result, after substituting every list name textually over the
whole condition (quoted strings included). A value can therefore become condition code: a value with
a quote, a parenthesis or a comma, a value after ``exists``, a value that names a list. This module
reproduces that text exactly, so the loader's compiler (``padlock.engine.compiler``) reaches Falco's
verdicts and the policy side (``padlock.policy.exceptions_render``) can prove that what it emits stays a
value.

Port of ``quote_item``, ``paren_item``, ``build_rule_exception_infos`` and ``resolve_list`` of
``userspace/engine/rule_loader_compiler.cpp`` in falcosecurity/falco; those functions are the same in
every Falco release from 0.40.0 to 0.44.1, the versions Padlock supports. Values arrive as the YAML
reader gives them (``Entry``, Falco's ``rule_exception_info::entry``), with the reader's own rule that a
scalar may not be empty (``rule_loader_reader.cpp`` ``decode_exception_info_entry``).

Pure functions over strings: no parsing happens here (callers parse with ``padlock.engine.condition``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: ``libsinsp::filter::parser::supported_operators(true)``: the operators that take a list.
LIST_OPERATORS = frozenset({"in", "intersects", "pmatch"})

# resolve_list: a list name is replaced only where it is bounded by these (or the text's ends)
_BLANKS = " \t\n\r"
_DELIMS = _BLANKS + "(),="

#: Falco's reader message for an empty scalar anywhere in an exception (LOAD_ERR_YAML_VALIDATE).
EMPTY_VALUE = "Value must be non-empty"


class ExceptionBuildError(ValueError):
    """A ``THROW`` of ``build_rule_exception_infos`` (Falco reports it as LOAD_ERR_VALIDATE)."""


class ExceptionReadError(ValueError):
    """A reader rule broken by an exception entry (Falco reports it as LOAD_ERR_YAML_VALIDATE)."""


@dataclass(frozen=True)
class Entry:
    """``rule_exception_info::entry``: a scalar (``item``) or a sequence of entries (``items``)."""

    is_list: bool
    item: str = ""
    items: tuple[Entry, ...] = ()


@dataclass(frozen=True)
class ExceptionSpec:
    """One exception as the builder reads it: ``fields`` and ``comps`` are lists or single strings."""

    name: str
    fields: Entry
    comps: Entry
    values: tuple[Entry, ...]


def entry_of(value: object) -> Entry:
    """The entry Falco's reader makes of a YAML-loaded value; raises ``ExceptionReadError`` for ``""``.

    A mapping or null is neither a scalar nor a sequence for yaml-cpp: Falco keeps an empty scalar
    entry (which then breaks the built condition), so this does too.
    """
    if isinstance(value, list | tuple):
        return Entry(True, items=tuple(entry_of(v) for v in value))
    if value is None or isinstance(value, dict):
        return Entry(False)
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if text == "":
        raise ExceptionReadError(EMPTY_VALUE)
    return Entry(False, text)


def quote_item(e: str) -> str:
    """Falco's ``quote_item``: double-quote a text with a space that does not start with a quote."""
    if " " in e and e[:1] != '"' and e[:1] != "'":
        return '"' + e + '"'
    return e


def paren_item(e: str) -> str:
    """Falco's ``paren_item``: wrap a text in parentheses unless it already starts with one."""
    if e[:1] != "(":
        return "(" + e + ")"
    return e


def is_operator_for_list(op: str) -> bool:
    return op in LIST_OPERATORS


def exception_condition(ex: ExceptionSpec) -> str:
    """The text one exception adds after ``and not`` (``icond``); empty when it has no values.

    Raises ``ExceptionBuildError`` with Falco's message where ``build_rule_exception_infos`` throws.
    """
    icond = ""
    if not ex.fields.is_list:
        for val in ex.values:
            if val.is_list:
                raise ExceptionBuildError("Expected values array to contain a list of strings")
            icond += ("(" + ex.fields.item + " " + ex.comps.item + " (") if not icond else ", "
            icond += quote_item(val.item)
        icond += "))" if icond else ""
        return icond
    icond = "("
    for values in ex.values:
        if len(ex.fields.items) != len(values.items):
            raise ExceptionBuildError("Fields and values lists must have equal length")
        icond += "" if icond == "(" else " or "
        icond += "("
        for k, fld in enumerate(ex.fields.items):
            icond += "" if k == 0 else " and "
            value = values.items[k]
            if value.is_list:
                istr = "("
                for v in value.items:
                    tmp = quote_item(v.item)
                    istr += "" if istr == "(" else ", "
                    istr += tmp
                istr += ")"
            else:
                istr = value.item
                comp = ex.comps.items[k].item if k < len(ex.comps.items) else ""
                istr = paren_item(istr) if is_operator_for_list(comp) else quote_item(istr)
            icond += " " + fld.item
            icond += " " + (ex.comps.items[k].item if k < len(ex.comps.items) else "") + " " + istr
        icond += ")"
    icond += ")"
    return "" if icond == "()" else icond


def build_rule_exception_infos(exceptions: Sequence[ExceptionSpec], condition: str) -> str:
    """The rule's condition with every exception appended, as Falco builds it (before list substitution)."""
    out = "(" + condition + ")"
    for ex in exceptions:
        icond = exception_condition(ex)
        out += "" if not icond else " and not " + icond
    return out


def resolve_list(cnd: str, name: str, items: Sequence[str]) -> tuple[str, bool]:
    """Falco's ``resolve_list``: replace every delimited ``name`` in ``cnd`` by the list's items.

    Quotes are not looked at (Falco's own "this breaks string escaping" todo): a list name inside a
    quoted string is replaced too. Items with a space that are not quoted get double quotes; an empty
    list also removes one adjacent comma. Returns the new text and whether the name was found.
    """
    if not name:
        return cnd, False
    used = False
    start = cnd.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or cnd[start - 1] in _DELIMS) and (end >= len(cnd) or cnd[end] in _DELIMS):
            while start > 0 and cnd[start - 1] in _BLANKS:
                start -= 1
            while end < len(cnd) and cnd[end] in _BLANKS:
                end += 1
            sub = ""
            for v in items:
                if sub:
                    sub += ", "
                sub += quote_item(v)
            if not sub:
                if start > 0 and cnd[start - 1] == ",":
                    start -= 1
                elif end < len(cnd) and cnd[end] == ",":
                    end += 1
            new = ""
            if start > 0:
                new += cnd[:start] + " "
            new += sub + " "
            if end <= len(cnd):
                new += cnd[end:]
            cnd = new
            start += len(sub) + 1
            used = True
        start = cnd.find(name, start + 1)
    return cnd, used


def resolve_lists(cnd: str, lists: Iterable[tuple[str, Sequence[str]]]) -> tuple[str, tuple[str, ...]]:
    """Every list substituted in turn, in the order given (Falco: the order lists were defined).

    Returns the text and the names of the lists that were found (Falco marks them used).
    """
    used: list[str] = []
    for name, items in lists:
        if name not in cnd:  # the common case, without the loop's bookkeeping
            continue
        cnd, hit = resolve_list(cnd, name, items)
        if hit:
            used.append(name)
    return cnd, tuple(used)


def expand_lists(lists: Iterable[tuple[str, Sequence[str]]]) -> dict[str, tuple[str, ...]]:
    """Lists inside lists expanded as Falco's ``compile_list_infos`` does (only lists defined before)."""
    out: dict[str, tuple[str, ...]] = {}
    for name, items in lists:
        got: list[str] = []
        for item in items:
            ref = out.get(item)
            if ref is not None and item != name:
                got.extend(ref)
            else:
                got.append(item)
        out[name] = tuple(got)
    return out
