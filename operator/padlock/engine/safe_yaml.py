"""The one way Padlock reads YAML it did not write: bounded, iterative, yaml-cpp's duplicate keys.

Every reader of untrusted YAML goes through here: rules files (``padlock.engine.reader``), user
``falcoRules`` (``padlock.policy.custom_rules``), catalogs (``padlock.policy.catalog``), and the files of
padlock objects the CLI reads (``padlock.cli.objects``). It never raises anything but ``YamlError``
for bad input.

Why not ``yaml.compose`` / ``yaml.load``: PyYAML's composer (C or Python) recurses once per nesting
level, so 100,000 ``[`` overflow the C stack (a segfault, not an exception), and it builds alias
graphs that explode when walked (billion laughs). Here libyaml only scans and parses (an iterative
state machine), and the node tree is built by an explicit stack, checking while it goes:

- the text's size (``limits.MAX_YAML_BYTES``) before parsing;
- nesting depth (``limits.MAX_YAML_DEPTH``), aliases counted with the depth of what they point to;
- the number of nodes once every alias is expanded (``limits.MAX_YAML_NODES``), tracked per anchor,
  so an alias bomb is refused after reading a few lines and before any value is built.

Plain values (``to_python``) follow yaml-cpp as Falco uses it: when a map repeats a key, the first
one wins; scalars stay the text they are written as, except ints, floats, booleans and nulls.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml import events

from padlock.engine import limits

_TYPED_TAGS = frozenset(
    {"tag:yaml.org,2002:int", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null", "tag:yaml.org,2002:float"}
)
_constructor = yaml.constructor.SafeConstructor()
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(ValueError):
    """Input that is not YAML, or over a limit: Falco's code, a stable id, a message and a 1-based
    position (0 when unknown)."""

    def __init__(self, code: str, id_: str, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.id = id_
        self.message = message
        self.line = line
        self.column = column

    def located(self, name: str = "") -> str:
        """``name:line:col: message`` (what the CLI and conditions print)."""
        where = f"{name}:" if name else ""
        if self.line:
            where += f"{self.line}:{self.column}:"
        return f"{where} {self.message}" if where else self.message


def _limit(id_: str, message: str, mark: Any) -> YamlError:
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
    return YamlError("LOAD_ERR_YAML_VALIDATE", id_, message, line, col)


def check_size(text: str) -> None:
    """Refuse a text over ``MAX_YAML_BYTES`` (encoded as UTF-8) before anything parses it."""
    if len(text) * 4 <= limits.MAX_YAML_BYTES:  # cheap: a character is at most 4 bytes
        return
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.MAX_YAML_BYTES:
        raise YamlError("LOAD_ERR_YAML_VALIDATE", "yaml-too-large",
                        f"YAML text is {size} bytes, over the limit of {limits.MAX_YAML_BYTES} bytes", 1, 1)


@dataclass
class _Frame:
    node: yaml.SequenceNode | yaml.MappingNode
    anchor: str | None
    size: int = 1  # nodes under this one, aliases expanded, itself included
    height: int = 1  # nesting levels from this node down, aliases expanded


def documents(text: str) -> Iterator[yaml.Node]:
    """Compose each document of ``text`` into a node tree, within the limits; ``YamlError`` otherwise.

    A generator: documents before a problem are yielded before the error is raised. Empty documents
    yield nothing. Nodes are PyYAML's (positions in ``start_mark``, 0-based), alias targets shared.
    """
    check_size(text)
    parser = _Loader(text)
    total = 0
    try:
        anchors: dict[str, tuple[yaml.Node, int, int]] = {}  # anchor -> (node, size, height)
        open_anchors: set[str] = set()
        stack: list[_Frame] = []
        root: yaml.Node | None = None
        resolved: dict[tuple[str, object], str] = {}  # short plain scalars repeat (keys): resolve once

        def attach(node: yaml.Node, size: int, height: int) -> None:
            nonlocal root
            if not stack:
                root = node
                return
            top = stack[-1]
            if isinstance(top.node, yaml.MappingNode):
                pending = top.node.value
                if pending and pending[-1][1] is None:
                    pending[-1] = (pending[-1][0], node)
                else:
                    pending.append((node, None))  # type: ignore[arg-type,unused-ignore]
            else:
                top.node.value.append(node)
            top.size += size
            if height + 1 > top.height:
                top.height = height + 1

        while True:
            try:
                ev: Any = parser.get_event()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                problem = exc.problem or str(exc)
                context = f" {exc.context}" if exc.context else ""
                line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
                raise YamlError("LOAD_ERR_YAML_PARSE", "yaml-parse", f"{problem}{context}", line, col) from None
            except yaml.YAMLError as exc:
                raise YamlError("LOAD_ERR_YAML_PARSE", "yaml-parse", str(exc), 1, 1) from None
            kind_of = type(ev)  # dispatch on the class: events are many, and mypy keeps ``ev`` loose
            if ev is None or kind_of is events.StreamEndEvent:
                return
            if kind_of is events.ScalarEvent:
                tag = ev.tag
                if tag is None or tag == "!":
                    key = (ev.value, ev.implicit)
                    tag = resolved.get(key) if len(ev.value) < 64 else None
                    if tag is None:
                        tag = parser.resolve(yaml.ScalarNode, ev.value, ev.implicit)
                        if len(ev.value) < 64 and len(resolved) < 4096:
                            resolved[key] = tag
                node: yaml.Node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, style=ev.style)
                if ev.anchor is not None:
                    anchors[ev.anchor] = (node, 1, 0)
                total += 1
                if total > limits.MAX_YAML_NODES:
                    raise _limit("yaml-too-many-nodes",
                                 f"YAML has more than {limits.MAX_YAML_NODES} nodes (aliases expanded)",
                                 ev.start_mark)
                attach(node, 1, 0)
            elif kind_of is events.SequenceStartEvent or kind_of is events.MappingStartEvent:
                if len(stack) >= limits.MAX_YAML_DEPTH:
                    raise _limit("yaml-too-deep", f"YAML nests deeper than {limits.MAX_YAML_DEPTH} levels",
                                 ev.start_mark)
                tag = ev.tag
                is_seq = kind_of is events.SequenceStartEvent
                kind = yaml.SequenceNode if is_seq else yaml.MappingNode
                if tag is None or tag == "!":
                    tag = parser.resolve(kind, None, ev.implicit)
                coll = kind(tag, [], ev.start_mark, None, flow_style=ev.flow_style)
                total += 1
                if ev.anchor is not None:
                    open_anchors.add(ev.anchor)
                    anchors.pop(ev.anchor, None)
                stack.append(_Frame(coll, ev.anchor))
            elif kind_of is events.SequenceEndEvent or kind_of is events.MappingEndEvent:
                frame = stack.pop()
                frame.node.end_mark = ev.end_mark
                if isinstance(frame.node, yaml.MappingNode):
                    pending = frame.node.value
                    if pending and pending[-1][1] is None:  # pragma: no cover - libyaml pairs keys
                        pending.pop()
                if frame.anchor is not None:
                    open_anchors.discard(frame.anchor)
                    anchors[frame.anchor] = (frame.node, frame.size, frame.height)
                attach(frame.node, frame.size, frame.height)
            elif kind_of is events.AliasEvent:
                if ev.anchor in open_anchors:
                    raise _limit("yaml-recursive-alias", f"alias *{ev.anchor} refers to a node that contains it",
                                 ev.start_mark)
                found = anchors.get(ev.anchor)
                if found is None:
                    mark = ev.start_mark
                    raise YamlError("LOAD_ERR_YAML_PARSE", "yaml-parse", f"found undefined alias {ev.anchor!r}",
                                    mark.line + 1, mark.column + 1)
                target, size, height = found
                total += size
                if total > limits.MAX_YAML_NODES:
                    raise _limit("yaml-too-many-nodes",
                                 f"YAML has more than {limits.MAX_YAML_NODES} nodes once aliases are expanded "
                                 f"(alias *{ev.anchor} stands for {size})", ev.start_mark)
                if len(stack) + height > limits.MAX_YAML_DEPTH:
                    raise _limit("yaml-too-deep",
                                 f"YAML nests deeper than {limits.MAX_YAML_DEPTH} levels (through alias "
                                 f"*{ev.anchor})", ev.start_mark)
                attach(target, size, height)
            elif kind_of is events.DocumentStartEvent:
                anchors = {}
                open_anchors = set()
                root = None
            elif kind_of is events.DocumentEndEvent:
                if root is not None:
                    yield root
                root = None
    finally:
        parser.dispose()


def compose_all(text: str) -> list[yaml.Node]:
    """Every document's node tree (``documents`` as a list)."""
    return list(documents(text))


def to_python(node: yaml.Node) -> object:
    """Node -> plain value, as yaml-cpp gives it to Falco.

    Only ints, bools, nulls and floats are typed; every other scalar (dates, custom tags) stays the
    string it is written as. A key repeated in one map: the first one wins. Recursion is bounded by
    ``MAX_YAML_DEPTH`` (``documents`` checked it) and the output size by ``MAX_YAML_NODES``.
    """
    if isinstance(node, yaml.ScalarNode):
        if node.tag in _TYPED_TAGS:
            try:
                return _constructor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError):
                return node.value
        return node.value
    if isinstance(node, yaml.SequenceNode):
        return [to_python(n) for n in node.value]
    if isinstance(node, yaml.MappingNode):
        out: dict[object, object] = {}
        for k, v in node.value:
            key = to_python(k) if isinstance(k, yaml.ScalarNode) else complex_key(k)
            if key in out:
                continue
            out[key] = to_python(v)
        return out
    return None  # pragma: no cover - the composer yields only the three node kinds


def complex_key(node: yaml.Node) -> str:
    """A stand-in for a list or map used as a map key (no Falco or Kubernetes key is one). Not its
    text: nested complex keys would double in size at each level once printed."""
    kind = "map" if isinstance(node, yaml.MappingNode) else "list"
    return f"<{kind} key at line {node.start_mark.line + 1}, column {node.start_mark.column + 1}>"


def load(text: str) -> object:
    """The first document of ``text`` as plain values (None when empty); ``YamlError`` otherwise."""
    found: yaml.Node | None = None
    for node in documents(text):
        if found is not None:
            mark = node.start_mark
            raise YamlError("LOAD_ERR_YAML_PARSE", "yaml-parse", "expected a single document in the stream",
                            mark.line + 1, mark.column + 1)
        found = node
    return None if found is None else to_python(found)


def load_all(text: str) -> list[object]:
    """Every document of ``text`` as plain values."""
    return [to_python(n) for n in documents(text)]
