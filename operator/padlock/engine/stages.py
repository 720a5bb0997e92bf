"""The stages of one load from scratch, and the result types the loader and the incremental loader share.

``scratch(files, ...)`` runs Falco's stages in order: ``reader.read`` each file, ``collector.collect``
its items into one collection shared by all files, ``compiler.compile_collection`` once at the end, then
the engine and plugin requirements (``engine_requirement``, ``plugin_requirements``); ``finish`` sorts and
deduplicates the diagnostics the way every load reports them.

Who calls it: ``padlock.engine.loader`` (the entry point; callers outside the engine use that) and
``padlock.engine.incremental``, which reuses the same finishing steps so an incremental load gives a
full load's result. It exists so neither of those two imports the other in both directions (no import
cycle, ``tests/unit/test_import_graph.py``). Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from padlock.engine import collector, compiler, fields, reader, versions
from padlock.engine.diagnostics import Diagnostic
from padlock.engine.model import List, Macro, PluginRequirement, Rule, RuleException, Ruleset, RulesFile


@dataclass
class LoadResult:
    """The loaded ruleset and what was found on the way. ``valid`` is False when there is any error."""

    ruleset: Ruleset
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def for_file(self, name: str) -> tuple[list[Diagnostic], list[Diagnostic]]:
        """(errors, warnings) located in one file."""
        return [d for d in self.errors if d.file == name], [d for d in self.warnings if d.file == name]


@dataclass(frozen=True)
class SplitRulesFile(RulesFile):
    """A rules file given with the parts it was written from (``text == "".join(parts)``).

    For generated files: each part is comments only or one YAML block sequence at column 1 (one or
    more items), so the parts can be read one by one and a part seen before is not read again. The
    loader checks both conditions and otherwise reads the text whole, so a bad split never changes a
    result.
    """

    parts: tuple[str, ...] = ()


def scratch(
    files: Sequence[RulesFile], engine_version: str | None, plugins: Mapping[str, str] | None
) -> tuple[LoadResult, collector.Collection, list[Diagnostic], dict[str, str]]:
    """A full load of ``files``: the result, the collection and read diagnostics it built, and the texts."""
    engine = engine_version or versions.NEWEST_ENGINE_VERSION
    plugin_map = dict(plugins or {})
    col = collector.Collection(engine=engine)
    read_diags: list[Diagnostic] = []
    texts: dict[str, str] = {}
    for f in files:
        texts[f.name] = f.text
        read = reader.read(f.name, f.text)
        read_diags.extend(read.diagnostics)
        collector.collect(col, read.items)
    diags = [*read_diags, *col.diagnostics]
    catalog = fields.catalog(plugin_map, versions.parse(engine))
    compiled = compiler.compile_collection(col, catalog, texts, engine)
    diags.extend(compiled.diagnostics)
    required = engine_requirement(col, engine, diags)
    diags.extend(plugin_requirements(col, plugin_map))
    ruleset = _ruleset(col, compiled, required)
    return finish(ruleset, diags, files, texts), col, read_diags, texts


def finish(ruleset: Ruleset, diags: list[Diagnostic], files: Sequence[RulesFile], texts: Mapping[str, str]) -> LoadResult:
    """Snippets for errors, then errors and warnings each in file order without duplicates."""
    lines: dict[str, list[str]] = {}  # split each file once, however many errors it has
    for i, d in enumerate(diags):
        if d.severity == "error" and not d.snippet and d.file in texts and d.line > 0:
            if d.file not in lines:
                lines[d.file] = texts[d.file].splitlines()
            diags[i] = _with_snippet(d, lines[d.file])
    errors = sorted((d for d in diags if d.severity == "error"), key=_order(files))
    warnings = sorted((d for d in diags if d.severity == "warning"), key=_order(files))
    return LoadResult(ruleset, _dedupe(errors), _dedupe(warnings))


def _order(files: Sequence[RulesFile]):  # type: ignore[no-untyped-def]
    rank = {f.name: i for i, f in enumerate(files)}

    def key(d: Diagnostic) -> tuple[int, int, int, str, str, str]:
        return (rank.get(d.file, len(rank)), d.line, d.column, d.code, d.item_name, d.message)

    return key


def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, str, str, int, int, str]] = set()
    out: list[Diagnostic] = []
    for d in diags:
        k = (d.code, d.message, d.file, d.line, d.column, d.item_name)
        if k not in seen:
            seen.add(k)
            out.append(d)
    return out


def _with_snippet(d: Diagnostic, lines: list[str]) -> Diagnostic:
    if d.line - 1 >= len(lines):
        return d
    line = lines[d.line - 1]
    col = max(d.column - 1, 0)
    if len(line) > 120:  # keep long output lines readable: a window around the column
        start = max(0, col - 40)
        line = ("..." if start else "") + line[start : start + 100] + "..."
        col = col - start + (3 if start else 0)
    caret = " " * col + "^"
    return Diagnostic(d.code, d.id, d.message, d.file, d.line, d.column, d.item_type, d.item_name, d.hint,
                      f"{line}\n{caret}")


def engine_requirement(col: collector.Collection, engine: str, diags: list[Diagnostic]) -> str | None:
    """The highest ``required_engine_version``; a diagnostic in ``diags`` for each one ``engine`` misses."""
    for version, loc in col.engine_versions:
        if not versions.compatible(engine, version):
            diags.append(Diagnostic("LOAD_ERR_VALIDATE", "engine-version-too-old",
                                    f"Rules require engine version {version}, but engine version is {engine}",
                                    loc.file, loc.line, loc.column, "required_engine_version", version))
    return versions.highest(version for version, _ in col.engine_versions)


def plugin_requirements(col: collector.Collection, loaded: Mapping[str, str]) -> list[Diagnostic]:
    """A diagnostic for each ``required_plugin_versions`` entry the ``loaded`` plugins do not satisfy."""
    out: list[Diagnostic] = []
    for req, loc in col.plugins:
        options = [(req.name, req.version), *req.alternatives]
        if any(name in loaded and versions.compatible(loaded[name], version) for name, version in options):
            continue
        wanted = ", ".join(f"{n} (>= {v})" for n, v in options)
        out.append(Diagnostic("LOAD_ERR_VALIDATE", "plugin-requirement",
                              f"Plugin requirement not satisfied, must load one of: {wanted}",
                              loc.file, loc.line, loc.column, "required_plugin_versions", req.name,
                              f"pass --plugin {req.name}={req.version}"))
    return out


def _ruleset(col: collector.Collection, compiled: compiler.Compiled, required: str | None) -> Ruleset:
    lists = {
        name: List(name, tuple(info.items), info.loc.file, info.loc.line, info.loc.column)
        for name, info in col.lists.items()
    }
    macros = {
        name: Macro(name, info.condition, info.loc.file, info.loc.line, info.loc.column)
        for name, info in col.macros.items()
    }
    # What runs, as Falco's ``-L`` lists it: a rule Falco drops while compiling (an unknown source, or an
    # unknown field with skip-if-unknown-filter) is not in the ruleset.
    rules = {
        name: rule_object(r, compiled.compiled_conditions.get(name, r.condition))
        for name, r in col.rules.items()
        if name not in compiled.dropped_rules
    }
    plugins: list[PluginRequirement] = []
    for req, _ in col.plugins:
        if req not in plugins:
            plugins.append(req)
    return Ruleset(rules, macros, lists, required, tuple(plugins))


def rule_object(r: collector.RuleInfo, compiled_condition: str) -> Rule:
    """The ``Rule`` of a collected rule and its compiled condition."""
    return Rule(
        name=r.name,
        condition=r.condition,
        output=r.output,
        desc=r.desc,
        priority=r.priority,
        tags=tuple(r.tags),
        enabled=r.enabled,
        source=r.source,
        exceptions=tuple(_exception(e) for e in r.exceptions),
        warn_evttypes=r.warn_evttypes,
        skip_if_unknown_filter=r.skip_if_unknown_filter,
        capture=r.capture,
        capture_duration=r.capture_duration,
        file=r.loc.file,
        line=r.loc.line,
        column=r.loc.column,
        compiled_condition=compiled_condition,
    )


def _freeze(v: object) -> object:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return str(v)


def _exception(e: collector.ExceptionInfo) -> RuleException:
    fields_: tuple[str, ...] | str = tuple(e.fields) if isinstance(e.fields, list) else (e.fields or ())
    comps: tuple[str, ...] | str = tuple(e.comps) if isinstance(e.comps, list) else (e.comps or ())
    return RuleException(e.name, fields_, comps, tuple(_freeze(v) for v in e.values))
