"""Collector: raw items -> ordered definitions, applying Falco's define/append/override semantics.

Called by ``padlock.engine.loader`` for each file in load order, with one ``Collection`` for all files
(Falco's ``rule_loader_collector``). A redefinition replaces an item but keeps its first position;
``append``/``override`` change named keys of an existing item and fail when it does not exist. Each
define or append takes the next number of one counter shared by all item kinds: an item's ``index`` is
the number of its first definition, its ``visibility`` the number of its last define/append, which is
what macro and list visibility compare (``define_info`` in Falco).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from padlock.engine import limits, versions
from padlock.engine.diagnostics import Diagnostic
from padlock.engine.model import PRIORITIES, PluginRequirement
from padlock.engine.reader import KeyPos, RawItem

ALLOWED_KEYS: dict[str, frozenset[str]] = {
    "required_engine_version": frozenset({"required_engine_version"}),
    "required_plugin_versions": frozenset({"required_plugin_versions"}),
    "list": frozenset({"list", "items", "append", "override"}),
    "macro": frozenset({"macro", "condition", "append", "override"}),
    "rule": frozenset(
        {
            "rule", "condition", "output", "desc", "priority", "source", "enabled", "tags", "exceptions",
            "warn_evttypes", "skip-if-unknown-filter", "capture", "capture_duration", "append", "override",
        }
    ),
}

#: Falco's override tables (``rule_loader_reader.cpp`` at 0.44.1): kind -> (append keys, replace keys).
#: The collector uses the table of the engine it collects for (``versions.release_for``); this is the newest.
OVERRIDE_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "list": (frozenset({"items"}), frozenset({"items"})),
    "macro": (frozenset({"condition"}), frozenset({"condition"})),
    "rule": (
        frozenset({"condition", "output", "desc", "tags", "exceptions"}),
        frozenset(
            {
                "condition", "output", "desc", "priority", "tags", "exceptions", "enabled", "warn_evttypes",
                "skip-if-unknown-filter", "capture", "capture_duration",
            }
        ),
    ),
}

EXCEPTION_COMPS = frozenset(
    ["exists", "<=", "<", ">=", ">", "==", "=", "!=", "glob", "iglob", "contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith", "regex", "intersects", "in", "pmatch"]
)
MODIFIABLE_COMPS = frozenset(
    ["=", "!=", "contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith", "glob", "iglob", "regex"]
)
LIST_COMPS = frozenset({"in", "pmatch", "intersects"})
_LIST_NAME = re.compile(r"[^()\"'\s=,]+")
_MACRO_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*")  # Falco's spelling, quoted in the warning
# The same language without the ``+`` then ``*`` overlap that backtracks quadratically on a long name
# ending in a bad character; possessive, so every name is scanned once.
_MACRO_NAME_LINEAR = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*+")
#: yaml-cpp's ``as<bool>`` (``convert.cpp``), which Falco uses for every boolean key: these words in
#: lower case, upper case or capitalised, whether the YAML scalar is quoted or not.
_YAML_CPP_BOOLS = {w: True for w in ("y", "yes", "true", "on")} | {w: False for w in ("n", "no", "false", "off")}


@dataclass
class Loc:
    file: str
    line: int
    column: int


@dataclass
class ExceptionInfo:
    name: str
    fields: list[str] | str | None
    comps: list[str] | str | None
    values: list[object]
    loc: Loc


@dataclass
class ListInfo:
    name: str
    items: list[str]
    loc: Loc
    index: int
    visibility: int
    used: bool = False


@dataclass
class MacroInfo:
    name: str
    condition: str
    loc: Loc
    index: int
    visibility: int
    cond_pos: tuple[str, KeyPos] | None = None  # (file, where the condition text starts)
    used: bool = False


@dataclass
class RuleInfo:
    name: str
    condition: str
    output: str
    desc: str
    priority: str
    loc: Loc
    index: int
    source: str = "syscall"
    source_explicit: bool = False
    enabled: bool = True
    tags: list[str] = field(default_factory=list)
    exceptions: list[ExceptionInfo] = field(default_factory=list)
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    capture: bool = False
    capture_duration: int = 0
    cond_pos: tuple[str, KeyPos] | None = None
    output_loc: Loc | None = None


@dataclass
class Collection:
    """Everything collected so far, over all files in load order."""

    lists: dict[str, ListInfo] = field(default_factory=dict)
    macros: dict[str, MacroInfo] = field(default_factory=dict)
    rules: dict[str, RuleInfo] = field(default_factory=dict)
    engine_versions: list[tuple[str, Loc]] = field(default_factory=list)
    plugins: list[tuple[PluginRequirement, Loc]] = field(default_factory=list)
    counter: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: the engine version collected for: selects the override table and the warnings of that Falco release
    engine: str = versions.NEWEST_ENGINE_VERSION

    def next_id(self) -> int:
        self.counter += 1
        return self.counter


class _Bad(Exception):
    """Internal: abort the current item with one diagnostic."""

    def __init__(self, diag: Diagnostic) -> None:
        self.diag = diag


class _Item:
    """Typed access to a raw item's keys, producing Falco's messages on bad shapes."""

    def __init__(self, raw: RawItem, col: Collection) -> None:
        self.raw = raw
        self.col = col
        self.kind = raw.kind
        self.name = raw.name

    def loc(self, key: str | None = None) -> Loc:
        if key is not None and key in self.raw.keys:
            p = self.raw.keys[key]
            return Loc(self.raw.file, p.line, p.column)
        return Loc(self.raw.file, self.raw.line, self.raw.column)

    def diag(self, code: str, id_: str, message: str, key: str | None = None, hint: str = "") -> Diagnostic:
        loc = self.loc(key)
        return Diagnostic(code, id_, message, loc.file, loc.line, loc.column, self.kind, self.name, hint)

    def bad(self, id_: str, message: str, key: str | None = None, code: str = "LOAD_ERR_YAML_VALIDATE") -> _Bad:
        return _Bad(self.diag(code, id_, message, key))

    def warn(self, code: str, id_: str, message: str, key: str | None = None, hint: str = "") -> None:
        self.col.diagnostics.append(self.diag(code, id_, message, key, hint))

    def has(self, key: str) -> bool:
        return key in self.raw.body

    def string(self, key: str, required: bool = True, allow_empty: bool = False) -> str | None:
        body = self.raw.body
        if key not in body:
            if required:
                raise self.bad("missing-key", f"Item has no mapping for key '{key}'")
            return None
        value = body[key]
        if value is None or (value == "" and not allow_empty):
            raise self.bad("empty-value", f"Mapping for key '{key}' is empty", key)
        if isinstance(value, (list, dict)):
            raise self.bad("not-a-scalar", f"Value is not a scalar value (key '{key}')", key)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.raw.body:
            return default
        value = self.raw.body[key]
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and (value.islower() or value.isupper() or value == value.capitalize()):
            word = _YAML_CPP_BOOLS.get(value.lower())
            if word is not None:
                return word
        raise self.bad("bad-scalar", f"Can't decode YAML scalar value (key '{key}' must be a boolean)", key)

    def integer(self, key: str, default: int) -> int:
        if key not in self.raw.body:
            return default
        value = self.raw.body[key]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self.bad("bad-scalar", f"Can't decode YAML scalar value (key '{key}' must be an integer)", key)

    def sequence(self, key: str) -> list[object] | None:
        if key not in self.raw.body:
            return None
        value = self.raw.body[key]
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.bad("not-a-sequence", f"Value is not a sequence (key '{key}')", key)
        return value

    def str_sequence(self, key: str) -> list[str] | None:
        seq = self.sequence(key)
        if seq is None:
            return None
        out: list[str] = []
        for v in seq:
            if v is None or isinstance(v, (list, dict)):
                raise self.bad("not-a-scalar", f"Value is not a scalar value (an entry of '{key}')", key)
            out.append(("true" if v else "false") if isinstance(v, bool) else str(v))
        return out


def rule_target(raw: RawItem) -> str | None:
    """The rule a ``rule`` item acts on, as ``collect`` names it; None when the name is unusable.

    A rule item (definition, override, append, enable-only) reads and changes only this one rule, which
    is what lets the loader's incremental path apply each rule's items on their own.
    """
    value = raw.body.get("rule")
    if value is None or value == "" or isinstance(value, (list, dict)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _canonical_priority(text: str) -> str | None:
    up = text.strip().upper()
    if up == "INFO":
        return "INFORMATIONAL"
    return up if up in PRIORITIES else None


def collect(col: Collection, items: list[RawItem]) -> None:
    """Apply one file's items to the collection, appending diagnostics to ``col.diagnostics``."""
    for raw in items:
        it = _Item(raw, col)
        try:
            if len(it.name) > limits.MAX_NAME_CHARS:
                it.name = limits.shorten(it.name)
                raise it.bad("name-too-long", f"{raw.kind.capitalize()} name is longer than {limits.MAX_NAME_CHARS} "
                             f"characters (Padlock's limit)", raw.kind)
            if raw.kind == "":
                it.warn("LOAD_UNKNOWN_ITEM", "unknown-item", "Unknown top level item")
                continue
            release = versions.release_for(col.engine)
            for key in raw.body:
                if release.unknown_key_warning and key not in ALLOWED_KEYS[raw.kind]:
                    it.warn(
                        "LOAD_UNKNOWN_KEY", "unknown-key", f"Unknown key '{key}'. The key will be ignored.", key
                    )
            if raw.kind == "required_engine_version":
                _engine_version(it)
            elif raw.kind == "required_plugin_versions":
                _plugin_versions(it)
            elif raw.kind == "list":
                _list(it)
            elif raw.kind == "macro":
                _macro(it)
            else:
                _rule(it)
        except _Bad as bad:
            col.diagnostics.append(bad.diag)


def _engine_version(it: _Item) -> None:
    value = it.raw.body["required_engine_version"]
    if value is None or isinstance(value, (list, dict, bool)):
        raise it.bad("bad-engine-version", "Value is not a scalar value (key 'required_engine_version')",
                     "required_engine_version")
    version = versions.normalise_engine_version(value)
    if version is None:
        raise it.bad(
            "bad-engine-version",
            f"Unable to parse engine version '{value}' as a semver string. Expected \"x.y.z\" semver format.",
            "required_engine_version",
        )
    it.col.engine_versions.append((version, it.loc("required_engine_version")))


def _plugin_versions(it: _Item) -> None:
    seq = it.sequence("required_plugin_versions") or []
    for entry in seq:
        if not isinstance(entry, dict):
            raise it.bad("bad-plugin-requirement", "Unexpected element type. Each element should be a yaml associative array.",
                         "required_plugin_versions")
        name, version = _plugin_pair(it, entry)
        alts: list[tuple[str, str]] = []
        seen = {name}
        alternatives = entry.get("alternatives")
        if alternatives is not None:
            if not isinstance(alternatives, list):
                raise it.bad("not-a-sequence", "Value is not a sequence (key 'alternatives')", "required_plugin_versions")
            for alt in alternatives:
                if not isinstance(alt, dict):
                    raise it.bad("bad-plugin-requirement", "Unexpected element type. Each element should be a yaml associative array.",
                                 "required_plugin_versions")
                pair = _plugin_pair(it, alt)
                if pair[0] in seen:
                    raise it.bad("duplicate-plugin-alternative",
                                 f"Defined multiple alternative version requirements for plugin '{pair[0]}'",
                                 "required_plugin_versions")
                seen.add(pair[0])
                alts.append(pair)
        it.col.plugins.append((PluginRequirement(name, version, tuple(alts)), it.loc("required_plugin_versions")))


def _plugin_pair(it: _Item, entry: dict[object, object]) -> tuple[str, str]:
    for key in ("name", "version"):
        if key not in entry:
            raise it.bad("missing-key", f"Item has no mapping for key '{key}'", "required_plugin_versions")
        if entry[key] is None or entry[key] == "":
            raise it.bad("empty-value", f"Mapping for key '{key}' is empty", "required_plugin_versions")
    version = str(entry["version"])
    if versions.parse(version) is None:
        raise it.bad("bad-plugin-version",
                     f"Unable to parse plugin version '{version}' as a semver string. Expected \"x.y.z\" semver format.",
                     "required_plugin_versions")
    return str(entry["name"]), version


def _override_modes(it: _Item) -> dict[str, str] | None:
    """Validate ``override`` against Falco's tables; returns key -> mode, or None when absent."""
    if "override" not in it.raw.body:
        return None
    if it.raw.body.get("append") is True:
        raise it.bad("override-with-append",
                     "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.",
                     "override")
    ov = it.raw.body["override"]
    if not isinstance(ov, dict) or not ov:
        raise it.bad("bad-override", "Value is not a map with at least one entry (key 'override')", "override")
    append_ok, replace_ok = versions.release_for(it.col.engine).override_keys[it.kind]
    modes: dict[str, str] = {}
    for key, mode in ov.items():
        key = str(key)
        if mode not in ("append", "replace"):
            raise it.bad("bad-override-mode",
                         f"Invalid override operation for key '{key}': '{mode}'. Allowed values are: append, replace",
                         "override", code="LOAD_ERR_YAML_VALIDATE")
        if mode == "append" and key not in append_ok:
            msg = (f"Key '{key}' cannot be appended to, use 'replace' instead" if key in replace_ok
                   else f"Key '{key}' cannot be appended to")
            raise it.bad("override-not-appendable", msg, "override")
        if mode == "replace" and key not in replace_ok:
            raise it.bad("override-not-replaceable", f"Key '{key}' cannot be replaced", "override")
        if key not in it.raw.body:
            raise it.bad("override-key-missing",
                         f"An {mode} override for '{key}' was specified but '{key}' is not defined", "override")
        modes[key] = mode
    for key in it.raw.body:
        if key in (append_ok | replace_ok) and key not in modes:
            raise it.bad("override-key-unlisted",
                         f"Unexpected key '{key}': no corresponding entry under 'override' is defined.", key)
    return modes


def _check_list_name(it: _Item) -> None:
    if not _LIST_NAME.fullmatch(it.name):
        it.warn("LOAD_INVALID_LIST_NAME", "invalid-list-name",
                f"List has an invalid name. List names should match a regular expression: {_LIST_NAME.pattern}",
                "list")


def _list(it: _Item) -> None:
    name = it.string("list")
    assert name is not None
    it.name = name
    modes = _override_modes(it)
    append = it.boolean("append", False)
    items = it.str_sequence("items")
    if items is None:
        raise it.bad("missing-key", "Item has no mapping for key 'items'")
    col = it.col
    if append:
        it.warn("LOAD_DEPRECATED_ITEM", "deprecated-append",
                "The 'append' key is deprecated. Add an 'append' entry (e.g. 'items: append') under 'override' instead.",
                "append")
    if append or (modes is not None and modes.get("items") == "append"):
        prev = col.lists.get(name)
        if prev is None:
            raise it.bad("append-target-missing",
                         "List uses 'append' or 'override.items: append' but no list by that name already exists",
                         code="LOAD_ERR_VALIDATE")
        prev.items.extend(items)
        prev.visibility = col.next_id()
        return
    if modes is not None and name not in col.lists:
        raise it.bad("override-target-missing",
                     "An 'override.items: replace' to a list was requested but no list by that name already exists",
                     code="LOAD_ERR_VALIDATE")
    _check_list_name(it)
    info = ListInfo(name, items, it.loc(), 0, 0)
    _define(col.lists, info, col.next_id())


def _define(table: dict[str, ListInfo] | dict[str, MacroInfo] | dict[str, RuleInfo], info: object, seq: int) -> None:
    """Insert or replace ``info`` by name; a replacement keeps the first definition's position."""
    prev = table.get(info.name)  # type: ignore[attr-defined]
    if prev is not None:
        info.index = prev.index  # type: ignore[attr-defined]
        info.loc = prev.loc  # type: ignore[attr-defined]
    else:
        info.index = seq  # type: ignore[attr-defined]
    if hasattr(info, "visibility"):
        info.visibility = seq
    table[info.name] = info  # type: ignore[attr-defined,assignment]


def _macro(it: _Item) -> None:
    name = it.string("macro")
    assert name is not None
    it.name = name
    modes = _override_modes(it)
    append = it.boolean("append", False)
    cond = it.string("condition")
    assert cond is not None
    col = it.col
    cond_pos = (it.raw.file, it.raw.keys["condition"])
    if append:
        it.warn("LOAD_DEPRECATED_ITEM", "deprecated-append",
                "The 'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.",
                "append")
    if append or (modes is not None and modes.get("condition") == "append"):
        prev = col.macros.get(name)
        if prev is None:
            raise it.bad("append-target-missing",
                         "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists",
                         code="LOAD_ERR_VALIDATE")
        prev.condition = f"{prev.condition} {cond}"
        prev.visibility = col.next_id()
        prev.cond_pos = None  # the text now spans two items; positions fall back to the macro
        return
    if modes is not None and name not in col.macros:
        raise it.bad("override-target-missing",
                     "An 'override.condition: replace' to a macro was requested but no macro by that name already exists",
                     code="LOAD_ERR_VALIDATE")
    if not _MACRO_NAME_LINEAR.fullmatch(name):
        it.warn("LOAD_INVALID_MACRO_NAME", "invalid-macro-name",
                f"Macro has an invalid name. Macro names should match a regular expression: {_MACRO_NAME.pattern}",
                "macro")
    info = MacroInfo(name, cond, it.loc(), 0, 0, cond_pos)
    _define(col.macros, info, col.next_id())


def _tags(it: _Item) -> list[str] | None:
    tags = it.str_sequence("tags")
    return tags


def _exceptions(it: _Item) -> list[ExceptionInfo]:
    seq = it.sequence("exceptions")
    if seq is None:
        return []
    out: list[ExceptionInfo] = []
    seen: set[str] = set()
    for index, entry in enumerate(seq):
        where = f"exceptions[{index}]"
        if not isinstance(entry, dict):
            raise it.bad("bad-exception", "Unexpected element type. Each element should be a yaml associative array.",
                         where)
        if "name" not in entry:
            raise it.bad("missing-key", "Item has no mapping for key 'name' (in exceptions)", where)
        name = entry["name"]
        if name is None or name == "" or isinstance(name, (list, dict)):
            raise it.bad("empty-value", "Mapping for key 'name' is empty (in exceptions)", where)
        ex_name = str(name)
        if ex_name in seen:
            it.warn("LOAD_EXCEPTION_NAME_NOT_UNIQUE", "exception-name-not-unique",
                    f"Multiple definitions of exception '{ex_name}' in the same rule", where)
        seen.add(ex_name)
        fields = _str_or_list(it, entry, "fields", where)
        comps = _str_or_list(it, entry, "comps", where)
        values = entry.get("values")
        if values is None:
            values = []
        if not isinstance(values, list):
            raise it.bad("not-a-sequence", f"Value is not a sequence (key 'values' of exception '{ex_name}')", where)
        if _has_empty_scalar(values):
            # yaml-cpp's reader: "Value must be non-empty" for an empty scalar at any depth of values.
            raise it.bad("empty-value", f"Value must be non-empty (values of exception '{ex_name}')", where)
        out.append(ExceptionInfo(ex_name, fields, comps, values, it.loc(where)))
    return out


def _has_empty_scalar(values: object) -> bool:
    if isinstance(values, list):
        return any(_has_empty_scalar(v) for v in values)
    return values == ""


def _str_or_list(it: _Item, entry: dict[object, object], key: str, where: str) -> list[str] | str | None:
    if key not in entry or entry[key] is None:
        return None
    value = entry[key]
    if isinstance(value, list):
        out: list[str] = []
        for v in value:
            if v is None or isinstance(v, (list, dict)):
                raise it.bad("not-a-scalar", f"Value is not a scalar value (an entry of exception '{key}')", where)
            if v == "":
                raise it.bad("empty-value", f"Value must be non-empty (an entry of exception '{key}')", where)
            out.append(str(v))
        return out
    if isinstance(value, dict):
        # Falco's reader decodes a map as nothing (neither scalar nor sequence): ``fields`` becomes the
        # empty field name (LOAD_ERR_VALIDATE "'' is not a supported filter field"), ``comps`` the default.
        return "" if key == "fields" else None
    if value == "":
        raise it.bad("empty-value", f"Value must be non-empty (exception key '{key}')", where)
    return str(value)


def validate_exception(ex: ExceptionInfo, it_kind: str, it_name: str,
                       engine: str = versions.NEWEST_ENGINE_VERSION) -> list[Diagnostic]:
    """Shape checks of ``validate_exception_info`` (Falco reports them as LOAD_ERR_VALIDATE).

    Up to Falco 0.43 a comp is taken as written (``' = '`` is not an operator) and has no modifier;
    Falco 0.44 (engine 0.62.0) trims comps and accepts ``startswith oneof`` and the like.
    """
    out: list[Diagnostic] = []
    modern = versions.compatible(engine, versions.FEATURES["oneof"][0])

    def err(id_: str, msg: str) -> None:
        out.append(Diagnostic("LOAD_ERR_VALIDATE", id_, f"Exception '{ex.name}': {msg}", ex.loc.file, ex.loc.line,
                              ex.loc.column, it_kind, it_name))

    if ex.fields is None:
        # Falco's reader requires ``fields`` unless appending (``decode_exception_fields``): a shape error.
        out.append(Diagnostic("LOAD_ERR_YAML_VALIDATE", "exception-no-fields",
                              f"Item has no mapping for key 'fields' (exception '{ex.name}')", ex.loc.file,
                              ex.loc.line, ex.loc.column, it_kind, it_name))
        return out
    if isinstance(ex.fields, list):
        comps = ex.comps if ex.comps is not None else ["="] * len(ex.fields)
        if isinstance(comps, str):
            err("exception-shape", "Fields and comps lists must have equal length")
            return out
        if len(comps) != len(ex.fields):
            err("exception-shape", "Fields and comps lists must have equal length")
            return out
        for c in comps:
            if not _comp_ok(c, modern):
                err("exception-bad-comp", f"'{c.strip() if modern else c}' is not a supported comparison operator")
                return out
        for v in ex.values:
            if not isinstance(v, list):
                err("exception-shape", "Expected values array to contain a list of objects")
                return out
            if len(v) != len(ex.fields):
                err("exception-shape", "Fields and values lists must have equal length")
                return out
    else:
        comp = ex.comps if ex.comps is not None else "in"
        if isinstance(comp, list):
            err("exception-shape", "When fields is a single value, comps must be a single value too")
            return out
        c = comp.strip() if modern else comp
        if not modern and c not in LIST_COMPS:
            err("exception-bad-comp", "When fields is a single value, comps must be one of (in, pmatch, intersects)")
            return out
        if not _comp_ok(c, modern):
            err("exception-bad-comp", f"'{c}' is not a supported comparison operator")
            return out
        if c not in LIST_COMPS and len(c.split()) != 2:
            err("exception-bad-comp",
                f"When fields is a single value, comps must be one of (in, pmatch, intersects) or use a modifier, not '{c}'")
            return out
        for v in ex.values:
            if isinstance(v, (list, dict)):
                err("exception-shape", "Expected values array to contain a list of strings")
                return out
    return out


def _comp_ok(comp: str, modern: bool = True) -> bool:
    if not modern:
        return comp in EXCEPTION_COMPS
    parts = comp.split()
    if len(parts) == 1:
        return parts[0] in EXCEPTION_COMPS
    return len(parts) == 2 and parts[0] in MODIFIABLE_COMPS and parts[1] in ("oneof", "anyof", "allof")


def _rule(it: _Item) -> None:
    name = it.string("rule")
    assert name is not None
    it.name = name
    col = it.col
    modes = _override_modes(it)
    append = it.boolean("append", False)
    body = it.raw.body
    if modes is not None:
        _rule_override(it, name, modes)
        return
    if append:
        it.warn("LOAD_DEPRECATED_ITEM", "deprecated-append",
                "The 'append' key is deprecated. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.",
                "append")
        prev = col.rules.get(name)
        if prev is None:
            raise it.bad("append-target-missing",
                         "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists",
                         code="LOAD_ERR_VALIDATE")
        cond = it.string("condition", required=False)
        exc = _exceptions(it)
        if cond is None and not exc:
            raise it.bad("append-nothing", "Appended rule must have exceptions or condition property",
                         code="LOAD_ERR_VALIDATE")  # the collector's check in Falco, not the reader's
        if cond is not None:
            prev.condition = f"{prev.condition} {cond}"
            prev.cond_pos = None
        _append_exceptions(it, prev, exc)
        return
    if not any(k in body for k in ("condition", "output", "desc", "priority")):
        if "enabled" not in body:
            raise it.bad("missing-key", "Item has no mapping for key 'condition'")
        enabled = it.boolean("enabled", True)
        it.warn("LOAD_DEPRECATED_ITEM", "deprecated-enable-only",
                "The standalone 'enabled' key usage is deprecated. The correct approach requires also a 'replace' entry under the 'override' key (i.e. 'enabled: replace').",
                "enabled")
        prev = col.rules.get(name)
        if prev is None:
            raise it.bad("enable-target-missing", "Rule has 'enabled' key but no rule by that name already exists",
                         code="LOAD_ERR_VALIDATE")
        prev.enabled = enabled
        return
    cond = it.string("condition")
    output = it.string("output", allow_empty=False)
    desc = it.string("desc")
    prio_text = it.string("priority")
    assert cond is not None and output is not None and desc is not None and prio_text is not None
    priority = _canonical_priority(prio_text)
    if priority is None or isinstance(body.get("priority"), (int, float)):
        raise it.bad("bad-priority", "Invalid priority", "priority")
    source = it.string("source", required=False) or "syscall"
    tags = _tags(it) or []
    info = RuleInfo(
        name, cond, output.strip(), desc, priority, it.loc(), 0,
        source=source,
        source_explicit="source" in body,
        enabled=it.boolean("enabled", True),
        tags=tags,
        exceptions=_exceptions(it),
        warn_evttypes=it.boolean("warn_evttypes", True),
        skip_if_unknown_filter=it.boolean("skip-if-unknown-filter", False),
        # Before Falco 0.42 the reader does not know these keys and ignores them.
        capture=it.boolean("capture", False) if _knows_capture(col) else False,
        capture_duration=it.integer("capture_duration", 0) if _knows_capture(col) else 0,
        cond_pos=(it.raw.file, it.raw.keys["condition"]),
        output_loc=it.loc("output"),
    )
    for ex in info.exceptions:
        for d in validate_exception(ex, "rule", name, col.engine):
            raise _Bad(d)
    prev = col.rules.get(name)
    if prev is not None and info.source_explicit and prev.source != info.source:
        raise it.bad("source-redefined", "Rule has been re-defined with a different source", "source",
                     code="LOAD_ERR_VALIDATE")
    _define(col.rules, info, col.next_id())


def _knows_capture(col: Collection) -> bool:
    return "capture" in versions.release_for(col.engine).rule_replace


def _append_exceptions(it: _Item, rule: RuleInfo, exc: list[ExceptionInfo]) -> None:
    by_name = {e.name: e for e in rule.exceptions}
    for ex in exc:
        if not ex.values:
            it.col.diagnostics.append(Diagnostic(
                "LOAD_APPEND_NO_VALUES", "append-no-values", f"Overriding/appending exception '{ex.name}' with no values",
                ex.loc.file, ex.loc.line, ex.loc.column, "rule", rule.name))
        prev = by_name.get(ex.name)
        if prev is not None:
            if ex.fields is not None:
                raise _Bad(Diagnostic("LOAD_ERR_VALIDATE", "exception-append-fields",
                                      "Can not append exception fields to existing exception, only values",
                                      ex.loc.file, ex.loc.line, ex.loc.column, "rule", rule.name))
            if ex.comps is not None:
                raise _Bad(Diagnostic("LOAD_ERR_VALIDATE", "exception-append-comps",
                                      "Can not append exception comps to existing exception, only values",
                                      ex.loc.file, ex.loc.line, ex.loc.column, "rule", rule.name))
            probe = ExceptionInfo(prev.name, prev.fields, prev.comps, ex.values, ex.loc)
            for d in validate_exception(probe, "rule", rule.name, it.col.engine):
                raise _Bad(d)
            prev.values = list(prev.values) + list(ex.values)
        else:
            if ex.fields is None:
                raise _Bad(Diagnostic("LOAD_ERR_VALIDATE", "exception-no-fields",
                                      f"Exception '{ex.name}': Rule exception item must have fields property with a list of fields",
                                      ex.loc.file, ex.loc.line, ex.loc.column, "rule", rule.name))
            for d in validate_exception(ex, "rule", rule.name, it.col.engine):
                raise _Bad(d)
            rule.exceptions.append(ex)
            by_name[ex.name] = ex


def _rule_override(it: _Item, name: str, modes: dict[str, str]) -> None:
    col = it.col
    prev = col.rules.get(name)
    appends = [k for k, m in modes.items() if m == "append"]
    replaces = [k for k, m in modes.items() if m == "replace"]
    if prev is None:
        if appends:
            raise it.bad("append-target-missing",
                         f"Rule uses 'append' or 'override.{appends[0]}: append' but no rule by that name already exists",
                         code="LOAD_ERR_VALIDATE")
        raise it.bad("override-target-missing",
                     f"An 'override.{replaces[0]}: replace' to a rule was requested but no rule by that name already exists",
                     code="LOAD_ERR_VALIDATE")
    # Decode every value first so a bad one changes nothing.
    new: dict[str, object] = {}
    for key in modes:
        if key in ("condition", "output", "desc"):
            new[key] = it.string(key)
        elif key == "priority":
            text = it.string(key)
            assert text is not None
            prio = _canonical_priority(text)
            if prio is None:
                raise it.bad("bad-priority", "Invalid priority", "priority")
            new[key] = prio
        elif key == "tags":
            new[key] = _tags(it) or []
        elif key == "exceptions":
            new[key] = _exceptions(it)
        elif key == "capture_duration":
            new[key] = it.integer(key, 0)
        else:
            new[key] = it.boolean(key, False)
    release = versions.release_for(col.engine)
    if modes.get("exceptions") == "replace" and release.exceptions_replace_without_existing_crashes and not prev.exceptions:
        raise it.bad(
            "exceptions-replace-crashes-falco",
            f"'override: {{exceptions: replace}}' on a rule that has no exceptions crashes Falco {release.falco} "
            f"(engine {release.engine}) with a segmentation fault while loading rules; add the exceptions with "
            "'override: {exceptions: append}' instead",
            "override", code="LOAD_ERR_VALIDATE")
    for key, mode in modes.items():
        value = new[key]
        if mode == "append":
            if key == "condition":
                prev.condition = f"{prev.condition} {value}"
                prev.cond_pos = None
            elif key == "output":
                prev.output = f"{prev.output} {value}".strip()
            elif key == "desc":
                prev.desc = f"{prev.desc} {value}"
            elif key == "tags":
                prev.tags.extend(t for t in value if t not in prev.tags)  # type: ignore[attr-defined]
            elif key == "exceptions":
                _append_exceptions(it, prev, value)  # type: ignore[arg-type]
        else:
            if key == "exceptions":
                for ex in value:  # type: ignore[attr-defined]
                    for d in validate_exception(ex, "rule", name, col.engine):
                        raise _Bad(d)
                prev.exceptions = list(value)  # type: ignore[call-overload]
            elif key == "condition":
                prev.condition = str(value)
                prev.cond_pos = (it.raw.file, it.raw.keys["condition"])
            elif key == "output":
                prev.output = str(value).strip()
                prev.output_loc = it.loc("output")
            elif key == "skip-if-unknown-filter":
                prev.skip_if_unknown_filter = bool(value)
            else:
                setattr(prev, key, value)
