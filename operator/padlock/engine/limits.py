"""Upper bounds on everything Padlock parses from users and from the network, in one place.

Read by ``padlock.engine.safe_yaml`` (every YAML document Padlock reads), the rules reader, collector,
condition parser and compiler, the CLI's file reading and ``padlock.sources`` (downloads). Each bound
is checked before or while the input is parsed, never after, and each refusal names the limit, the
file and the line. The values leave ample room for real input: the largest upstream rules file ever
released is about 150 KB, nests 6 levels deep and has about 4,500 YAML nodes; the longest upstream
rule name is under 100 characters.

Changing a value here changes it for the operator, the webhook and the CLI alike (one engine).
"""

from __future__ import annotations

from typing import Final

MAX_YAML_BYTES: Final = 8 * 1024 * 1024
"""Size of one YAML text (a rules file, a catalog, a file of padlock objects), UTF-8 encoded."""

MAX_YAML_DEPTH: Final = 64
"""Nesting of YAML collections (sequences and maps), aliases included. Falco rules nest about 6 deep,
Kubernetes objects about 15; yaml-cpp itself stops at 2000 (and libyaml's Python binding overflows
the C stack long before that), so the bound is ours, and makes the parse iterative-safe."""

MAX_YAML_NODES: Final = 250_000
"""YAML nodes in one text after expanding every alias: a billion-laughs document or 40 doubling
levels of aliases are refused here, before a single value is built."""

MAX_NAME_CHARS: Final = 1024
"""Length of a rule, macro or list name (and of an identifier in a condition)."""

MAX_CONDITION_CHARS: Final = 256 * 1024
"""Length of one condition's text (upstream: under 4 KB). A condition listing hundreds of thousands
of values takes seconds of pure-Python parsing; it is refused before parsing instead."""

MAX_MACRO_DEPTH: Final = 300
"""Nesting of a condition once macros are expanded: a macro's own nesting plus the deepest macro it
uses, recursively (upstream: under 20). Deeper conditions are refused with an error at the macro
where the bound is crossed, so no check ever recurses deeper than this."""

MAX_PRECISE_POSITIONS: Final = 200
"""Diagnostics per condition that get an exact line and column inside the condition text; later ones
point at the condition's start, so a condition with a million errors stays linear to report."""


def shorten(text: str, keep: int = 80) -> str:
    """``text`` cut to ``keep`` characters for messages, saying how long it was."""
    if len(text) <= keep:
        return text
    return f"{text[:keep]}... ({len(text)} characters)"
