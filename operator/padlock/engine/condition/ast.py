"""The syntax tree of a Falco condition (libsinsp filter grammar).

Built by ``condition.parser``, printed by ``condition.render``, walked by the loader's compiler.
Nodes are frozen dataclasses; positions (offsets into the parsed text) are excluded from equality so
that a printed and re-parsed tree compares equal to the original.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field, e.g. ``proc.name`` or ``proc.aname[2]`` (``arg`` holds ``2``)."""

    name: str
    arg: str | None = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Transformer:
    """A transformer call, e.g. ``tolower(proc.name)`` or ``val(proc.pname)``."""

    name: str
    args: tuple[Arg, ...]
    arg: str | None = None  # optional ``[arg]`` after the closing parenthesis
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Str:
    """A string value (bare or quoted in the source; the decoded text is kept)."""

    value: str
    pos: int = field(default=0, compare=False)
    #: Whether the source quoted it: Falco's list substitution only replaces bare names.
    quoted: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class Num:
    """A numeric value after ``<``, ``<=``, ``>``, ``>=`` (decimal, float or hex), as written."""

    text: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ListValue:
    """A parenthesised list of string values: ``(a, b, "c d")``."""

    items: tuple[Str, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ListRef:
    """A bare identifier used as a list value (``x in my_list``): only valid once substituted."""

    name: str
    pos: int = field(default=0, compare=False)


Arg = FieldRef | Transformer | Str | Num | ListValue
Value = Str | Num | ListValue | ListRef | Transformer


@dataclass(frozen=True, slots=True)
class Check:
    """``lhs op [modifier] value``; ``value`` is None for the unary ``exists``."""

    lhs: FieldRef | Transformer
    op: str
    value: Value | None = None
    modifier: str | None = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class MacroRef:
    """A bare identifier in check position: a macro reference."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


Node = And | Or | Not | Check | MacroRef
