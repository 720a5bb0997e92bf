"""Loader: an ordered list of rules files -> one checked ``Ruleset`` with Falco's semantics.

The entry point of the rules core, called by ``padlock validate``, ``padlock diff``, the policy renderer
and the operator flows. Stages, as in Falco's engine: ``reader.read`` each file, ``collector.collect``
its items into one collection shared by all files (later files redefine and override earlier ones),
``compiler.compile_collection`` once at the end, then the engine and plugin requirements. Pure: file
contents, engine version and plugin set come in as arguments; diagnostics come back, nothing is raised
for bad input.

``prepare(files)`` + ``load(extra, base=state)`` is the incremental form the policy renderer uses: the
upstream files are loaded once, and each render loads only the generated layer on top of them
(``padlock.core.incremental``), with the very result of loading everything from scratch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from padlock.core import collector, compiler, fields, reader, versions
from padlock.core.diagnostics import Diagnostic
from padlock.core.model import List, Macro, PluginRequirement, Rule, RuleException, Ruleset, RulesFile

if TYPE_CHECKING:  # incremental builds on this module; it is imported where it is used
    from padlock.core import incremental


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


def load(
    files: Sequence[RulesFile],
    *,
    engine_version: str | None = None,
    plugins: Mapping[str, str] | None = None,
    base: LoadState | None = None,
) -> LoadResult:
    """Load ``files`` in order into one ruleset, like ``falco -V a.yaml -V b.yaml``.

    ``engine_version`` defaults to the newest the field catalog describes. ``plugins`` maps loaded plugin
    names to versions (e.g. ``{"container": "0.4.0"}``); it decides which fields and sources exist and
    whether ``required_plugin_versions`` hold.

    With ``base`` (from ``prepare``), ``files`` are loaded after the base's files, reusing what the base
    already read, collected and compiled: the result is the one ``load([*base.files, *files])`` gives
    (``engine_version`` and ``plugins`` come from the base; passing different ones is an error). A
    ``SplitRulesFile`` is then read part by part, and parts already seen are not read again.
    """
    if base is not None:
        if (engine_version is not None and engine_version != base.engine) or (
            plugins is not None and dict(plugins) != dict(base.plugins)
        ):
            raise ValueError("load(base=...): engine_version and plugins are those of the base")
        from padlock.core import incremental

        return incremental.load_on(base, files)
    return _scratch(files, engine_version, plugins)[0]


def prepare(
    files: Sequence[RulesFile],
    *,
    engine_version: str | None = None,
    plugins: Mapping[str, str] | None = None,
) -> LoadState:
    """Load ``files`` once and keep what later ``load(extra, base=state)`` calls build on.

    ``state.result`` is ``load(files, ...)``. Keep one state per set of base files (the renderer keys it
    by the files' digests); it also holds the memo that makes repeated loads on it cheap.
    """
    from padlock.core import incremental

    result, col, read_diags, texts = _scratch(files, engine_version, plugins)
    engine = engine_version or versions.NEWEST_ENGINE_VERSION
    plugin_map = dict(plugins or {})
    return LoadState(
        files=tuple(files),
        engine=engine,
        plugins=plugin_map,
        result=result,
        collection=col,
        read_diagnostics=tuple(read_diags),
        texts=texts,
        catalog=fields.catalog(plugin_map, versions.parse(engine)),
        memo=incremental.Memo(),
    )


def _scratch(
    files: Sequence[RulesFile], engine_version: str | None, plugins: Mapping[str, str] | None
) -> tuple[LoadResult, collector.Collection, list[Diagnostic], dict[str, str]]:
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
    required = _engine_requirement(col, engine, diags)
    diags.extend(_plugin_requirements(col, plugin_map))
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


@dataclass(frozen=True, eq=False)
class LoadState:
    """What loading some files left behind, to load more files after them (``load(..., base=)``).

    Never changed once built: later loads copy what they change. ``memo`` only caches pure steps.
    """

    files: tuple[RulesFile, ...]
    engine: str
    plugins: Mapping[str, str]
    result: LoadResult
    collection: collector.Collection
    read_diagnostics: tuple[Diagnostic, ...]
    texts: Mapping[str, str]
    catalog: fields.Catalog
    memo: incremental.Memo


@dataclass(frozen=True)
class SplitRulesFile(RulesFile):
    """A rules file given with the parts it was written from (``text == "".join(parts)``).

    For generated files: each part is comments only or one YAML block sequence at column 1 (one or
    more items), so the parts can be read one by one and a part seen before is not read again. The
    loader checks both conditions and otherwise reads the text whole, so a bad split never changes a
    result.
    """

    parts: tuple[str, ...] = ()


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


def _engine_requirement(col: collector.Collection, engine: str, diags: list[Diagnostic]) -> str | None:
    best: tuple[tuple[int, int, int], str, collector.Loc] | None = None
    for version, loc in col.engine_versions:
        parsed = versions.parse(version)
        assert parsed is not None
        if best is None or parsed > best[0]:
            best = (parsed, version, loc)
        if not versions.compatible(engine, version):
            diags.append(Diagnostic("LOAD_ERR_VALIDATE", "engine-version-too-old",
                                    f"Rules require engine version {version}, but engine version is {engine}",
                                    loc.file, loc.line, loc.column, "required_engine_version", version))
    return best[1] if best else None


def _plugin_requirements(col: collector.Collection, loaded: Mapping[str, str]) -> list[Diagnostic]:
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
