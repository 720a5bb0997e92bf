"""Incremental loading: rules files loaded after a prepared base, with exactly a full load's result.

Called by ``padlock.engine.loader.load(files, base=state)`` (``state`` from ``loader.prepare``). The
renderer validates upstream + the generated policy layer after every object change; this module makes
that cost follow what changed instead of the size of the whole set:

* read: each part of a ``stages.SplitRulesFile`` (one generated item) is read on its own under a
  private file name bound to its text (``"\\0part-<n>"``) and kept; diagnostics and definition
  positions are mapped back to the real file and line at the end. A part seen before is not re-read.
* collect: an item about a rule (definition, override, append, enable-only) reads and changes that
  rule only (``collector.rule_target``), so each rule's chain of items is applied to a copy of the
  base rule, once per chain. Other items (lists, macros, requirements) are collected in order on
  copies of the base tables.
* compile: lists and macros are compiled once per base, and once per distinct set of list and macro
  items the loaded files add (kept while they stay the same); each rule is compiled once per (rule
  state, lists and macros, macros already checked before it), the only things
  ``compiler.compile_rule`` depends on; ``compiler.assemble`` then runs in load order as a full load does.

Pure: no I/O, no clock. ``Memo`` only caches; every key holds everything its value depends on, so a
cold memo, a warm one and ``load([*base.files, *files])`` agree byte for byte
(tests/unit/engine/test_incremental_load.py). Entries unused by the latest load are dropped once they
outnumber the used ones, so the memo stays about the size of one load.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Hashable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace

from padlock.engine import collector, compiler, fields, reader, stages, versions
from padlock.engine.condition import ConditionError
from padlock.engine.diagnostics import Diagnostic
from padlock.engine.model import List, Macro, PluginRequirement, Rule, Ruleset, RulesFile

#: Lines that would change how concatenated parts read (document markers, directives).
_MARKERS = re.compile(r"^(?:---|\.\.\.|%)", re.MULTILINE)
#: Memo entries unused by this many consecutive loads may be dropped.
_KEEP_LOADS = 4
#: Above this many parsed conditions the shared parse cache starts again (scopes make new texts).
_PARSE_CACHE_LIMIT = 50_000


@dataclass(slots=True)
class _Part:
    """One read part: its items carry the private file name ``name``; ``lines`` it spans.

    ``targets`` holds, per item, the rule it acts on (None: a list, macro or other item). The items
    themselves are kept only when some are not about a rule: a part that only changes rules is read
    again on the rare load that needs its items (a changed neighbour in one rule's chain), which keeps
    the memo small for the garbage collector.
    """

    serial: int
    name: str
    text: str
    targets: tuple[str | None, ...]
    items: list[reader.RawItem] | None
    diagnostics: tuple[Diagnostic, ...]
    joinable: bool  # may be read apart from the parts around it (see SplitRulesFile)
    lines: int

    def read_items(self) -> list[reader.RawItem]:
        return self.items if self.items is not None else reader.read(self.name, self.text).items


@dataclass(frozen=True)
class _Chain:
    """A rule after its chain of items: the state (None: never defined), diagnostics by chain position,
    and which position defined it (for a rule the base does not have)."""

    info: collector.RuleInfo | None
    diagnostics: tuple[tuple[int, Diagnostic], ...]
    defined_at: int | None


@dataclass
class _Overlay:
    """The tables after the items that are not about one rule (lists, macros, requirements), and the
    ``Env`` compiled from them once; ``token`` names that env in the per-rule memo."""

    lists: dict[str, collector.ListInfo]
    macros: dict[str, collector.MacroInfo]
    counter: int
    engine_versions: tuple[tuple[str, collector.Loc], ...]
    plugins: tuple[tuple[PluginRequirement, collector.Loc], ...]
    diagnostics: tuple[tuple[int, Diagnostic], ...]  # (position among those items, diagnostic)
    texts: dict[str, str]
    token: int
    env: compiler.Env | None = None


@dataclass
class _RuleEntry:
    rule: collector.RuleInfo  # kept alive so its id() stays its own
    reach: frozenset[str]
    inputs: tuple[Hashable, ...]  # what it read from the lists and macros (see compiler.rule_inputs)
    results: dict[frozenset[str], compiler.RuleResult] = field(default_factory=dict)


@dataclass
class Memo:
    """Caches of one ``LoadState``; safe to share between threads (one load at a time)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = 0
    serial: int = 0
    # Measured (render_bench, CPU, medians; bench/README.md "Caches and what they buy"): re-render after one
    # change 72 ms with every table, without parts 1.05 s, chains 0.85 s, rules 196 ms, env 165 ms.
    parts: dict[tuple[str, int], _Part] = field(default_factory=dict)
    chains: dict[tuple[str, tuple[tuple[int, int], ...]], _Chain] = field(default_factory=dict)
    rules: dict[tuple[int, int], _RuleEntry] = field(default_factory=dict)
    latest: dict[int, _RuleEntry] = field(default_factory=dict)  # id(rule) -> its entry of the latest env
    name_sets: dict[tuple[frozenset[str], frozenset[str]], int] = field(default_factory=dict)
    # overlays: not reached by render_bench (no inline lists or macros); a miss builds a new Env, as env off does
    overlays: dict[tuple[tuple[int, int], ...], _Overlay] = field(default_factory=dict)
    # rule_objects: 72 ms with, 93 ms without (one sample, inconclusive; kept)
    rule_objects: dict[tuple[int, str], tuple[collector.RuleInfo, Rule]] = field(default_factory=dict)
    # parse_cache: full render 1.77 s with, 1.99 s without (target < 2 s)
    parse_cache: compiler.ParseCache = field(default_factory=compiler.ParseCache)
    env: compiler.Env | None = None
    env_token: int = 0
    #: table -> key -> the last load (generation) that used it; plain values, untracked by the GC
    stamps: dict[str, dict[Hashable, int]] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)  # entries the current load used, per table

    def names_id(self, env: compiler.Env) -> int:
        """A number for the env's (macro names, list names), equal for equal sets."""
        names = (frozenset(env.macros), env.list_names)
        got = self.name_sets.get(names)
        if got is None:
            if len(self.name_sets) > 64:
                self.name_sets.clear()
            got = self.name_sets[names] = len(self.name_sets) + self.serial + 1
            self.serial = got
        return got

    def touch(self, table: str, key: Hashable) -> None:
        stamps = self.stamps.setdefault(table, {})
        if stamps.get(key) != self.generation:
            stamps[key] = self.generation
            self.used[table] = self.used.get(table, 0) + 1

    def prune(self) -> None:
        """Once a table outgrows what the latest load used, drop what the last loads did not use.

        Keeping a few loads' worth means a small load in between (a CustomPolicy's inline rules, loaded
        on the same state) does not throw away what the next render of the whole layer needs.
        """
        for name in ("parts", "chains", "rules", "latest", "rule_objects", "overlays"):
            table: dict[Hashable, object] = getattr(self, name)
            if len(table) > 2 * self.used.get(name, 0) + 256:
                stamps = self.stamps.get(name, {})
                oldest = self.generation - _KEEP_LOADS
                for key in [k for k in table if stamps.get(k, -1) <= oldest]:
                    del table[key]
                    stamps.pop(key, None)
        self.used = {}
        if len(self.parse_cache.ok) + len(self.parse_cache.bad) > _PARSE_CACHE_LIMIT:
            self.parse_cache.ok.clear()
            self.parse_cache.bad.clear()
        if self.env is not None and len(self.env.subst_cache) > _PARSE_CACHE_LIMIT:
            self.env.subst_cache.clear()


@dataclass(frozen=True, eq=False)
class LoadState:
    """What loading some files left behind, to load more files after them (``load(..., base=)``).

    Never changed once built: later loads copy what they change. ``memo`` only caches pure steps.
    """

    files: tuple[RulesFile, ...]
    engine: str
    plugins: Mapping[str, str]
    result: stages.LoadResult
    collection: collector.Collection
    read_diagnostics: tuple[Diagnostic, ...]
    texts: Mapping[str, str]
    catalog: fields.Catalog
    memo: Memo


def prepare(
    files: Sequence[RulesFile],
    *,
    engine_version: str | None = None,
    plugins: Mapping[str, str] | None = None,
) -> LoadState:
    """``padlock.engine.loader.prepare``: load ``files`` from scratch and keep what later loads build on."""
    result, col, read_diags, texts = stages.scratch(files, engine_version, plugins)
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
        memo=Memo(),
    )


def load_on(base: LoadState, files: Sequence[RulesFile]) -> stages.LoadResult:
    """``files`` loaded after ``base.files``: the result of ``loader.load([*base.files, *files])``."""
    memo = base.memo
    with memo.lock:
        memo.generation += 1
        try:
            return _Load(base, memo).run(files)
        finally:
            memo.prune()


class _Load:
    def __init__(self, base: LoadState, memo: Memo) -> None:
        self.base = base
        self.memo = memo
        self.seen: dict[str, int] = {}  # occurrences of each part text in this load
        # private file name -> (real file name, lines before the part)
        self.where: dict[str, tuple[str, int]] = {}
        self.part_texts: dict[str, str] = dict(base.texts)
        self.fresh: dict[int, list[reader.RawItem]] = {}  # items of the parts read by this load
        self.env_token = 0
        self.names: int | None = None  # memo.names_id of this load's env

    # -- read ----------------------------------------------------------------------------------
    def part(self, text: str) -> _Part:
        k = self.seen.get(text, 0)
        self.seen[text] = k + 1
        key = (text, k)
        self.memo.touch("parts", key)
        p = self.memo.parts.get(key)
        if p is None:
            self.memo.serial += 1
            name = f"\0part-{self.memo.serial}"
            read = reader.read(name, text)
            joinable = read.block_sequence and text.endswith("\n") and not _MARKERS.search(text)
            targets = tuple(collector.rule_target(i) if i.kind == "rule" else None for i in read.items)
            keep = read.items if None in targets else None
            p = _Part(self.memo.serial, name, text, targets, keep, tuple(read.diagnostics), joinable,
                      text.count("\n"))
            self.fresh[p.serial] = read.items
            self.memo.parts[key] = p
        return p

    def parts_of(self, f: RulesFile) -> list[_Part]:
        if isinstance(f, stages.SplitRulesFile) and len(f.parts) > 1 and "".join(f.parts) == f.text:
            parts = [self.part(t) for t in f.parts]
            if all(p.joinable for p in parts):
                return parts
        return [self.part(f.text)]

    # -- the load ------------------------------------------------------------------------------
    def run(self, files: Sequence[RulesFile]) -> stages.LoadResult:
        base, memo = self.base, self.memo
        b = base.collection
        texts = dict(base.texts)
        read_diags: list[Diagnostic] = []
        # Collect: rule items by rule, everything else in order. seq numbers items over all files.
        general: list[tuple[int, reader.RawItem, tuple[int, int]]] = []
        # (seq, part serial, item index): plain values, which the garbage collector does not track
        chains: dict[str, list[tuple[int, int, int]]] = {}
        by_serial: dict[int, _Part] = {}
        seq = 0
        for f in files:
            texts[f.name] = f.text
            offset = 0
            for p in self.parts_of(f):
                self.where[p.name] = (f.name, offset)
                self.part_texts[p.name] = p.text
                read_diags.extend(p.diagnostics)
                by_serial[p.serial] = p
                for i, target in enumerate(p.targets):
                    if target is None:
                        general.append((seq, p.read_items()[i], (p.serial, i)))
                    else:
                        chains.setdefault(target, []).append((seq, p.serial, i))
                    seq += 1
                offset += p.lines
        col = collector.Collection(
            lists=b.lists, macros=b.macros, rules=dict(b.rules), engine_versions=list(b.engine_versions),
            plugins=list(b.plugins), counter=b.counter, engine=b.engine,
        )
        collect_diags: list[tuple[int, Diagnostic]] = []
        overlay: _Overlay | None = None
        if general:
            # The same list, macro and requirement items (by part and position) give the same tables.
            gkey = tuple(k for _, _, k in general)
            memo.touch("overlays", gkey)
            overlay = memo.overlays.get(gkey)
            if overlay is None:
                overlay = memo.overlays[gkey] = self.collect_general(general, by_serial)
            col.lists, col.macros, col.counter = overlay.lists, overlay.macros, overlay.counter
            col.engine_versions, col.plugins = list(overlay.engine_versions), list(overlay.plugins)
            collect_diags.extend((general[pos][0], d) for pos, d in overlay.diagnostics)
        new_rules: list[tuple[int, str, collector.RuleInfo]] = []
        reread = self.fresh
        for name, chain in chains.items():
            ckey = (name, tuple((serial, i) for _, serial, i in chain))
            memo.touch("chains", ckey)
            c = memo.chains.get(ckey)
            if c is None:
                chain_items = []
                for _, serial, i in chain:
                    if serial not in reread:
                        reread[serial] = by_serial[serial].read_items()
                    chain_items.append(reread[serial][i])
                c = memo.chains[ckey] = _fold(name, b.rules.get(name), chain_items, b.engine)
            collect_diags.extend((chain[pos][0], d) for pos, d in c.diagnostics)
            if c.info is None:
                continue
            if name in b.rules:
                col.rules[name] = c.info
            else:
                assert c.defined_at is not None
                new_rules.append((chain[c.defined_at][0], name, c.info))
        for _, name, info in sorted(new_rules, key=lambda x: x[0]):
            col.rules[name] = info  # new rules follow the base's, in the order they were defined
        collect_diags.sort(key=lambda x: x[0])

        # Compile.
        if col.lists is b.lists and col.macros is b.macros:
            if memo.env is None:
                memo.env = compiler.Env(b, base.catalog, base.texts, base.engine, memo.parse_cache)
                memo.serial += 1
                memo.env_token = memo.serial
            env, self.env_token = memo.env, memo.env_token
        else:
            assert overlay is not None
            if overlay.env is None:
                view = collector.Collection(lists=overlay.lists, macros=overlay.macros)
                overlay.env = compiler.Env(view, base.catalog, overlay.texts, base.engine, memo.parse_cache)
            env, self.env_token = overlay.env, overlay.token
        compile_one = self.plain_compile if env.cyclic else self.memoised_compile
        compiled = compiler.assemble(env, col.rules.values(), compile_one)

        diags = [
            *base.read_diagnostics, *read_diags, *b.diagnostics, *(d for _, d in collect_diags),
            *compiled.diagnostics,
        ]
        required = stages.engine_requirement(col, base.engine, diags)
        diags.extend(stages.plugin_requirements(col, base.plugins))
        diags = [self.real(d) for d in diags]
        ruleset = self.ruleset(col, compiled, required, env is memo.env)
        return stages.finish(ruleset, diags, [*base.files, *files], texts)

    def collect_general(
        self, general: list[tuple[int, reader.RawItem, tuple[int, int]]], by_serial: Mapping[int, _Part]
    ) -> _Overlay:
        """Collect the items that are not about one rule, in order, on copies of the base tables."""
        b = self.base.collection
        col = collector.Collection(
            lists=b.lists, macros=b.macros, engine_versions=list(b.engine_versions), plugins=list(b.plugins),
            counter=b.counter, engine=b.engine,
        )
        if any(item.kind in ("list", "macro") for _, item, _ in general):
            col.lists = {n: replace(i, items=list(i.items)) for n, i in b.lists.items()}
            col.macros = {n: replace(m) for n, m in b.macros.items()}
        diags: list[tuple[int, Diagnostic]] = []
        for pos, (_, item, _) in enumerate(general):
            before = len(col.diagnostics)
            collector.collect(col, [item])
            diags.extend((pos, d) for d in col.diagnostics[before:])
        # Macro positions point into the base files and these parts (names bound to their text).
        texts = dict(self.base.texts)
        for _, _, (serial, _) in general:
            texts[by_serial[serial].name] = by_serial[serial].text
        self.memo.serial += 1
        return _Overlay(col.lists, col.macros, col.counter, tuple(col.engine_versions), tuple(col.plugins),
                        tuple(diags), texts, self.memo.serial)

    def plain_compile(self, env: compiler.Env, r: collector.RuleInfo, checked: AbstractSet[str]) -> compiler.RuleResult:
        return compiler.compile_rule(env, r, self.part_texts, checked)

    def memoised_compile(
        self, env: compiler.Env, r: collector.RuleInfo, checked: AbstractSet[str]
    ) -> compiler.RuleResult:
        # A rule's result depends on its own state, the lists and macros (env, named by a token that
        # is never reused), the texts its positions point into (base files, or parts bound to their
        # text), and which of the macros it reaches were checked before it.
        # Under another env the rule's results still hold when the macro and list names are the same
        # and what the rule reads from them is (compiler.rule_inputs): edits to unrelated custom
        # macros or lists then cost no recompile.
        memo = self.memo
        key = (id(r), self.env_token)
        memo.touch("rules", key)
        entry = memo.rules.get(key)
        if entry is None or entry.rule is not r:
            if self.names is None:
                self.names = memo.names_id(env)
            inputs = (self.names, compiler.rule_inputs(env, r))
            memo.touch("latest", id(r))
            latest = memo.latest.get(id(r))
            if latest is not None and latest.rule is r and latest.inputs == inputs:
                entry = latest
            else:
                parsed = env.cache.parse(r.condition)
                reach = frozenset() if isinstance(parsed, ConditionError) else env.reach(parsed)
                entry = _RuleEntry(r, reach, inputs)
            memo.rules[key] = memo.latest[id(r)] = entry
        before = entry.reach & checked
        res = entry.results.get(before)
        if res is None:
            res = entry.results[before] = compiler.compile_rule(env, r, self.part_texts, checked)
        return res

    # -- positions -----------------------------------------------------------------------------
    def real(self, d: Diagnostic) -> Diagnostic:
        w = self.where.get(d.file)
        if w is None:
            return d
        return replace(d, file=w[0], line=d.line + w[1] if d.line > 0 else d.line)

    def located(self, file: str, line: int) -> tuple[str, int]:
        w = self.where.get(file)
        return (file, line) if w is None else (w[0], line + w[1] if line > 0 else line)

    def ruleset(
        self, col: collector.Collection, compiled: compiler.Compiled, required: str | None, base_tables: bool
    ) -> Ruleset:
        memo = self.memo
        rules: dict[str, Rule] = {}
        for name, r in col.rules.items():
            if name in compiled.dropped_rules:  # Falco drops it while compiling: it does not run
                continue
            condition = compiled.compiled_conditions.get(name, r.condition)
            if r.loc.file in self.where:
                file, line = self.located(r.loc.file, r.loc.line)
                rules[name] = replace(stages.rule_object(r, condition), file=file, line=line)
                continue
            key = (id(r), condition)
            memo.touch("rule_objects", key)
            hit = memo.rule_objects.get(key)
            if hit is None or hit[0] is not r:
                hit = memo.rule_objects[key] = (r, stages.rule_object(r, condition))
            rules[name] = hit[1]
        if base_tables:
            macros = dict(self.base.result.ruleset.macros)
            lists = dict(self.base.result.ruleset.lists)
        else:
            macros = {}
            for name, m in col.macros.items():
                file, line = self.located(m.loc.file, m.loc.line)
                macros[name] = Macro(name, m.condition, file, line, m.loc.column)
            lists = {}
            for name, li in col.lists.items():
                file, line = self.located(li.loc.file, li.loc.line)
                lists[name] = List(name, tuple(li.items), file, line, li.loc.column)
        plugins: list[PluginRequirement] = []
        for req, _ in col.plugins:
            if req not in plugins:
                plugins.append(req)
        return Ruleset(rules, macros, lists, required, tuple(plugins))


def _fold(name: str, prev: collector.RuleInfo | None, items: list[reader.RawItem], engine: str) -> _Chain:
    """Apply one rule's items, in order, to a copy of its base state."""
    scratch = collector.Collection(engine=engine)
    if prev is not None:
        scratch.rules[name] = replace(prev, tags=list(prev.tags), exceptions=[replace(e) for e in prev.exceptions])
    diags: list[tuple[int, Diagnostic]] = []
    defined_at: int | None = None
    for pos, item in enumerate(items):
        before = len(scratch.diagnostics)
        collector.collect(scratch, [item])
        diags.extend((pos, d) for d in scratch.diagnostics[before:])
        if defined_at is None and prev is None and name in scratch.rules:
            defined_at = pos
    return _Chain(scratch.rules.get(name), tuple(diags), defined_at)
