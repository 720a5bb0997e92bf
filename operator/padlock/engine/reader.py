"""Reader: one rules file's text -> raw items with positions (Falco's ``rule_loader_reader``).

Called by ``padlock.engine.loader``. Composes node trees with ``padlock.engine.safe_yaml`` (bounded size,
depth and alias expansion; never PyYAML's recursive composer), so every item and every top-level key
remembers its line and column, then turns nodes into plain Python values. A key written twice in one
item: the first wins, as yaml-cpp reads it for Falco. Classifies each entry by the first of
``required_engine_version, required_plugin_versions, list, macro, rule`` it contains, as Falco does.
Shape problems of the document itself become diagnostics; per-key checks happen in the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from padlock.engine import safe_yaml
from padlock.engine.diagnostics import Diagnostic

#: Classification order of ``rule_loader_reader.cpp``.
ITEM_KINDS = ("required_engine_version", "required_plugin_versions", "list", "macro", "rule")


@dataclass(frozen=True)
class KeyPos:
    """Where a key's value starts in the file (1-based), and how it is written."""

    line: int
    column: int
    index: int  # character offset of the value in the file text
    style: str | None  # YAML scalar style: None (plain), '>', '|', "'", '"'


@dataclass
class RawItem:
    """One entry of a rules file before the loader interprets it."""

    kind: str  # one of ITEM_KINDS, or "" for an unknown item
    body: dict[str, object]
    file: str
    line: int
    column: int
    keys: dict[str, KeyPos] = field(default_factory=dict)

    @property
    def name(self) -> str:
        value = self.body.get(self.kind) if self.kind in ("list", "macro", "rule") else None
        return value if isinstance(value, str) else ("" if value is None else str(value))


@dataclass
class ReadResult:
    items: list[RawItem]
    diagnostics: list[Diagnostic]
    #: the text is comments only or one block sequence at column 1 read without problems, so it can
    #: be concatenated with other such texts (the loader reads generated files part by part)
    block_sequence: bool = False


_value = safe_yaml.to_python


def read(name: str, text: str) -> ReadResult:
    """Parse one rules file into raw items; YAML and document-shape problems become diagnostics."""
    diags: list[Diagnostic] = []
    items: list[RawItem] = []
    try:
        docs = safe_yaml.compose_all(text)
    except safe_yaml.YamlError as exc:
        diags.append(Diagnostic(exc.code, exc.id, exc.message, name, exc.line, exc.column))
        return ReadResult(items, diags)
    block = not docs or (
        len(docs) == 1
        and isinstance(docs[0], yaml.SequenceNode)
        and not docs[0].flow_style
        and docs[0].start_mark.column == 0
    )
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, yaml.ScalarNode) and doc.tag == "tag:yaml.org,2002:null":
            continue
        if not isinstance(doc, yaml.SequenceNode):
            diags.append(
                Diagnostic(
                    "LOAD_ERR_YAML_VALIDATE",
                    "not-a-sequence",
                    "Rules content is not yaml array of objects",
                    name,
                    doc.start_mark.line + 1,
                    doc.start_mark.column + 1,
                )
            )
            continue
        for entry in doc.value:
            if isinstance(entry, yaml.ScalarNode) and entry.tag == "tag:yaml.org,2002:null":
                continue
            line, col = entry.start_mark.line + 1, entry.start_mark.column + 1
            if not isinstance(entry, yaml.MappingNode):
                diags.append(
                    Diagnostic(
                        "LOAD_ERR_YAML_VALIDATE",
                        "item-not-a-map",
                        "Unexpected element type. Each element should be a yaml associative array.",
                        name,
                        line,
                        col,
                    )
                )
                continue
            body: dict[str, object] = {}
            keys: dict[str, KeyPos] = {}
            for k, v in entry.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else safe_yaml.complex_key(k)
                if key in body:  # yaml-cpp (Falco): a key written twice in one item, the first wins
                    continue
                body[key] = _value(v)
                mark = v.start_mark
                style = v.style if isinstance(v, yaml.ScalarNode) else None
                keys[key] = KeyPos(mark.line + 1, mark.column + 1, mark.index, style)
                if key == "exceptions" and isinstance(v, yaml.SequenceNode):
                    # Each exception entry gets its own position, so diagnostics point at it.
                    for i, sub in enumerate(v.value):
                        m = sub.start_mark
                        keys[f"exceptions[{i}]"] = KeyPos(m.line + 1, m.column + 1, m.index, None)
            kind = next((k for k in ITEM_KINDS if k in body), "")
            items.append(RawItem(kind, body, name, line, col, keys))
    return ReadResult(items, diags, block and not diags)


def offset_position(text: str, pos: KeyPos, value: str, offset: int) -> tuple[int, int]:
    """Map an offset inside a (possibly folded or multi-line) scalar value to a file line/column.

    Counts non-blank characters: the value's text and its source differ only in blanks and line
    breaks for plain and folded scalars, which is how conditions are written. Good enough to point
    at the right token; falls back to the value's start for anything it cannot follow.
    """
    target = sum(1 for c in value[:offset] if not c.isspace())
    i = pos.index
    if pos.style in (">", "|"):
        nl = text.find("\n", i)
        if nl < 0:
            return pos.line, pos.column
        i = nl + 1
    elif pos.style in ("'", '"'):
        i += 1
    count = 0
    n = len(text)
    while i < n and count < target:
        if not text[i].isspace():
            count += 1
        i += 1
    if value[offset:].strip():  # point at the next token, not at the blanks before it
        while i < n and text[i].isspace():
            i += 1
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col
