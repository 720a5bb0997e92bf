"""Compiler: the collected items -> checked lists, macros and rules (Falco's ``rule_loader_compiler``).

Called by ``padlock.engine.loader`` once, after all files are collected. Expands lists inside lists (only
earlier ones), parses every macro and rule condition once (parses are cached by text, so the same macro
redefined identically in stable, incubating and sandbox costs one parse), checks macro visibility,
substitutes lists, appends exceptions as ``and not (...)``, and checks fields, operators, event types
and outputs against the field catalog for the rule's source. Also reports unused macros and lists and
the warnings Falco gives (no event type, ``<NA>`` comparisons, deprecated fields).

Three steps, so the incremental loader (``padlock.engine.incremental``) can memoise the middle one:
``Env`` (lists and macros, once), ``compile_rule`` (one rule: a pure function of the rule, the env and
the macros checked before it), ``assemble`` (rules in load order, order-dependent reporting, unused
items). ``compile_collection`` runs the three; the collection is never changed.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from padlock.engine import condition as cond
from padlock.engine import exception_text, fields, limits, versions
from padlock.engine.collector import Collection, ExceptionInfo, Loc, MacroInfo, RuleInfo
from padlock.engine.condition import ast, walk
from padlock.engine.diagnostics import Diagnostic
from padlock.engine.fields import Catalog, FieldInfo
from padlock.engine.reader import KeyPos, offset_position

#: libs ``flt_is_comparable``: operators allowed for each kind of field.
ALLOWED_OPS: dict[str, frozenset[str]] = {
    "numeric": frozenset({"=", "==", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"}),
    "bool": frozenset({"=", "==", "!=", "in", "intersects", "exists"}),
    "string": frozenset(
        {"=", "==", "!=", "<", "<=", ">", ">=", "contains", "icontains", "startswith", "endswith", "glob",
         "iglob", "regex", "in", "intersects", "pmatch", "exists"}
    ),
    "buffer": frozenset(
        {"=", "==", "!=", "contains", "in", "exists", "startswith", "endswith", "intersects", "bcontains",
         "bstartswith"}
    ),
    "ip": frozenset({"=", "==", "!=", "in", "exists", "intersects"}),
    "list": frozenset({"in", "exists", "intersects"}),
}
_LIST_OPS = frozenset({"in", "intersects", "pmatch"})
_OUTPUT_TOKEN = re.compile(
    r"%(?:(tolower|toupper|b64|basename|len|join|concat|getopt)\(([^)]*)\)|([a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+)(\[[^\]]*\])?)"
)
_LOOKS_LIKE_LIST = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
#: Name endings of upstream list names; a lone ``(x_binaries)`` that is not a list is almost surely a typo.
_LIST_SUFFIXES = (
    "_binaries", "_procs", "_files", "_filenames", "_dirs", "_directories", "_names", "_list", "_images",
    "_ports", "_hosts", "_domains", "_users", "_paths", "_containers", "_networks", "_ipaddrs", "_programs",
    "_repositories", "_cmdlines", "_syscalls", "_processes", "_commands", "_keys",
)
#: More event types than this means "no restriction" for LOAD_NO_EVTTYPE (Falco's threshold).
_EVTTYPE_LIMIT = 100


@dataclass
class Compiled:
    """What the compiler hands back to the loader."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    list_items: dict[str, tuple[str, ...]] = field(default_factory=dict)
    compiled_conditions: dict[str, str] = field(default_factory=dict)
    dropped_rules: set[str] = field(default_factory=set)


class ParseCache:
    """Condition text -> tree or error. Pure, so one cache may serve many loads (trees are immutable)."""

    def __init__(self) -> None:
        self.ok: dict[str, ast.Node] = {}
        self.bad: dict[str, cond.ConditionError] = {}

    def parse(self, text: str) -> ast.Node | cond.ConditionError:
        node = self.ok.get(text)
        if node is not None:
            return node
        err = self.bad.get(text)
        if err is not None:
            return err
        try:
            node = cond.parse(text)
        except cond.ConditionError as exc:
            self.bad[text] = exc
            return exc
        self.ok[text] = node
        return node


@dataclass
class _Where:
    """Where a condition's text lives, to turn parser offsets into file positions."""

    item_type: str
    item_name: str
    loc: Loc
    text: str
    cond_pos: tuple[str, KeyPos] | None
    file_texts: Mapping[str, str]
    precise: int = 0  # diagnostics placed inside the text so far (limits.MAX_PRECISE_POSITIONS)

    def at(self, code: str, id_: str, message: str, offset: int | None = None) -> Diagnostic:
        file, line, col = self.loc.file, self.loc.line, self.loc.column
        if self.cond_pos is not None:
            # The condition may live in another file than the item's first definition (an
            # ``override: {condition: replace}``): the position is in the file holding the text.
            file, kp = self.cond_pos
            line, col = kp.line, kp.column
            src = self.file_texts.get(file)
            if (offset is not None and src is not None and offset <= len(self.text)
                    and self.precise < limits.MAX_PRECISE_POSITIONS):
                # each exact position walks the text: bounded, so a million errors stay linear
                self.precise += 1
                line, col = offset_position(src, kp, self.text, offset)
        return Diagnostic(code, id_, message, file, line, col, self.item_type, self.item_name)


class Env:
    """The lists and macros of one collection, compiled once; every rule compiles against it.

    Built by ``compile_collection`` (and reused by the loader's incremental path while the lists and
    macros stay those of its base). Records what the list and macro phase found (diagnostics, which
    macros and lists it used, whether a macro failed to parse) instead of marking the collection, so
    the collection is never changed by compiling it.
    """

    def __init__(
        self,
        col: Collection,
        catalog: Catalog,
        file_texts: Mapping[str, str],
        engine: str,
        parse_cache: ParseCache | None = None,
    ) -> None:
        self.engine = engine
        self.release = versions.release_for(engine)
        self.macros = col.macros
        self.lists = col.lists
        self.catalog = catalog
        self.file_texts = file_texts
        self.cache = parse_cache if parse_cache is not None else ParseCache()
        self.diagnostics: list[Diagnostic] = []
        self.used_macros: set[str] = set()
        self.used_lists: set[str] = set()
        self.list_items: dict[str, tuple[str, ...]] = {}
        self.list_names: frozenset[str] = frozenset()
        self.macro_ast: dict[str, ast.Node] = {}
        self.parse_failed = False
        # With the text memos below (subst, ex_subst, paste, paste-text) and the field lru_caches all off:
        # objects parsed anew re-render 127 ms instead of 97 ms (target < 100 ms, bench/README.md)
        # text -> (condition with lists substituted, lists it names); pure memo
        self.subst_cache: dict[str, tuple[ast.Node, frozenset[str]]] = {}
        self.close_memo: dict[str, str | None] = {}
        self.macro_evttypes: dict[tuple[str, bool], _EvtSet] = {}
        self.reach_memo: dict[str, frozenset[str]] = {}
        self.macro_lists: dict[str, frozenset[str]] = {}  # lists each parsed macro names
        self.ex_subst: dict[str, tuple[str, tuple[str, ...]]] = {}  # exception text -> substituted, lists
        self._lists()
        self._macros()
        #: a macro graph with a cycle (only possible next to an undefined-macro error) makes the
        #: event-type memo depend on which rule came first: rules must then compile in order, unmemoised
        self.cyclic = any(name in self._refs_of_body(name, deep=True) for name in self.macro_ast)

    # -- lists ---------------------------------------------------------------------------------
    def _lists(self) -> None:
        infos = sorted(self.lists.values(), key=lambda i: i.index)
        expanded: dict[str, tuple[str, ...]] = {}
        for info in infos:
            items: list[str] = []
            for item in info.items:
                ref = self.lists.get(item)
                if ref is not None and ref.index < info.visibility and item in expanded and ref is not info:
                    self.used_lists.add(item)
                    items.extend(expanded[item])
                else:
                    items.append(item)
            expanded[info.name] = tuple(items)
        self.list_items = {i.name: expanded[i.name] for i in self.lists.values()}
        self.list_names = frozenset(self.lists)
        #: (name, expanded items) in definition order: Falco substitutes lists textually in this order
        self.list_pairs: tuple[tuple[str, tuple[str, ...]], ...] = tuple((i.name, expanded[i.name]) for i in infos)

        # What a condition gets for a list: Falco pastes lists into the text one after the other in
        # definition order, so an item naming a list defined later is pasted over again by that list.
        rank = {i.name: n for n, i in enumerate(infos)}
        cond_items: dict[str, tuple[str, ...]] = {}
        for info in reversed(infos):
            out: list[str] = []
            for item in expanded[info.name]:
                later = rank.get(item)
                out.extend(cond_items[item] if later is not None and later > rank[info.name] else (item,))
            cond_items[info.name] = tuple(out)
        self.cond_items = cond_items
        self.paste_memo: dict[str, tuple[str, int] | None] = {}
        self.paste_text_memo: dict[str, tuple[str, frozenset[str]]] = {}

    def resolve_exception(self, icond: str) -> tuple[str, tuple[str, ...]]:
        """An exception's built text with lists substituted (memoised: pure in the text and the lists)."""
        done = self.ex_subst.get(icond)
        if done is None:
            done = self.ex_subst[icond] = exception_text.resolve_lists(icond, self.list_pairs)
        return done

    def pasted(self, text: str) -> tuple[str, frozenset[str]]:
        """Falco's textual list substitution (``exception_text.resolve_lists``) of a condition for this
        env's lists, memoised: (pasted text, lists it pasted)."""
        done = self.paste_text_memo.get(text)
        if done is None:
            pasted, used = exception_text.resolve_lists(text, self.list_pairs)
            done = self.paste_text_memo[text] = (pasted, frozenset(used))
        return done

    def paste_error(self, text: str) -> tuple[str, int] | None:
        """What Falco refuses once it pasted the lists into ``text`` as text (``proc.name = my_list``).

        Padlock substitutes lists on the parsed tree; Falco pastes them into the text first
        (``exception_text.resolve_lists``). When only the pasted text fails to parse, returns (message, offset of
        the first pasted list name in ``text``); memoised by text.
        """
        if text in self.paste_memo:
            return self.paste_memo[text]
        pasted, used = self.pasted(text)
        found: tuple[str, int] | None = None
        if used and pasted != text:
            parsed = self.cache.parse(pasted)
            if isinstance(parsed, cond.ConditionError):
                name, at = min(((n, _bounded_find(text, n)) for n in used), key=lambda x: (x[1] < 0, x[1]))
                found = (f"{parsed.message} (once Falco pastes the items of list '{name}' into the condition "
                         f"text: {pasted.strip()[:200]!r})", max(at, 0))
        self.paste_memo[text] = found
        return found

    # -- macros --------------------------------------------------------------------------------
    def _macros(self) -> None:
        for m in self.macros.values():
            where = self.where_macro(m)
            parsed = self.cache.parse(m.condition)
            if isinstance(parsed, cond.ConditionError):
                self.parse_failed = True
                self.diagnostics.append(
                    where.at("LOAD_ERR_COMPILE_CONDITION", "condition-syntax", parsed.message, parsed.offset)
                )
                continue
            self.used_lists |= self.pasted(m.condition)[1]
            pasted = self.paste_error(m.condition)
            if pasted is not None:
                self.parse_failed = True
                self.diagnostics.append(where.at("LOAD_ERR_COMPILE_CONDITION", "list-paste-syntax", *pasted))
                continue
            node, lists = self.substituted(m.condition, parsed)
            self.used_lists |= lists
            self.macro_ast[m.name] = node
            self.macro_lists[m.name] = lists
        self._bound_macro_depth()
        for m in self.macros.values():
            body = self.macro_ast.get(m.name)
            if body is None:
                continue
            where = self.where_macro(m)
            for ref in cond.macro_refs(body):
                target = self.macros.get(ref.name)
                if target is None or target.index >= m.visibility:
                    self.diagnostics.append(self.undefined_macro(where, ref))
                else:
                    self.used_macros.add(ref.name)

    def _bound_macro_depth(self) -> None:
        """Refuse macros whose expanded nesting exceeds ``limits.MAX_MACRO_DEPTH``.

        The checks below (``evttypes``, ``check_tree``) follow macro references recursively; a chain of
        thousands of macros would exhaust the stack. Depths are computed here without recursion (an
        explicit stack, each macro once); a macro over the bound gets one error where the bound is
        first crossed and its body is dropped, so nothing recurses into it. A cycle (only possible
        next to an undefined-macro error) counts each macro once.
        """
        depth: dict[str, int] = {}
        own = {name: _ast_depth(body) for name, body in self.macro_ast.items()}
        refs = {name: [r.name for r in cond.macro_refs(body) if r.name in self.macro_ast]
                for name, body in self.macro_ast.items()}
        for start in self.macro_ast:
            if start in depth:
                continue
            stack: list[tuple[str, int]] = [(start, 0)]
            on_path: set[str] = {start}
            while stack:
                name, i = stack[-1]
                children = refs[name]
                if i < len(children):
                    stack[-1] = (name, i + 1)
                    child = children[i]
                    if child not in depth and child not in on_path:
                        on_path.add(child)
                        stack.append((child, 0))
                    continue
                stack.pop()
                on_path.discard(name)
                depth[name] = own[name] + max((depth.get(c, 0) for c in children), default=0)
        over = {name for name, d in depth.items() if d > limits.MAX_MACRO_DEPTH}
        for name in over:
            if any(c in over for c in refs[name]):
                continue  # reported where the bound is first crossed
            m = self.macros[name]
            self.diagnostics.append(self.where_macro(m).at(
                "LOAD_ERR_VALIDATE", "macro-too-deep",
                f"Macro nesting is deeper than {limits.MAX_MACRO_DEPTH} levels once the macros it uses are "
                f"expanded (Padlock's limit; it is {depth[name]})"))
        for name in over:
            del self.macro_ast[name]

    def where_macro(self, m: MacroInfo) -> _Where:
        return _Where("macro", m.name, m.loc, m.condition, m.cond_pos, self.file_texts)

    def undefined_macro(self, where: _Where, ref: ast.MacroRef) -> Diagnostic:
        d = where.at("LOAD_ERR_VALIDATE", "undefined-macro", f"Undefined macro '{ref.name}' used in filter.", ref.pos)
        close = difflib.get_close_matches(ref.name, list(self.macros), n=1)
        if close:
            d = Diagnostic(d.code, d.id, d.message, d.file, d.line, d.column, d.item_type, d.item_name,
                           f"did you mean '{close[0]}'?")
        return d

    def substituted(self, text: str, node: ast.Node) -> tuple[ast.Node, frozenset[str]]:
        done = self.subst_cache.get(text)
        if done is None:
            done = (cond.substitute_lists(node, self.cond_items), self.lists_named(node))
            self.subst_cache[text] = done
        return done

    def lists_named(self, node: ast.Node) -> frozenset[str]:
        names: set[str] = set()
        for n in cond.iter_nodes(node):
            if isinstance(n, ast.Check):
                v = n.value
                if isinstance(v, ast.ListValue):
                    for item in v.items:
                        if not item.quoted and item.value in self.list_names:
                            names.add(item.value)
                elif isinstance(v, ast.ListRef) and v.name in self.list_names:
                    names.add(v.name)
        return frozenset(names)

    def _refs_of_body(self, name: str, deep: bool) -> frozenset[str]:
        """Macros (with a parsed body) reachable from macro ``name``'s body."""
        out: set[str] = set()
        stack = [name]
        while stack:
            body = self.macro_ast.get(stack.pop())
            if body is None:
                continue
            for ref in cond.macro_refs(body):
                if ref.name in self.macro_ast and ref.name not in out:
                    out.add(ref.name)
                    if deep:
                        stack.append(ref.name)
        return frozenset(out)

    def reach(self, node: ast.Node) -> frozenset[str]:
        """Macros a rule's field checks can visit: those with a parsed body reachable from ``node``."""
        out: set[str] = set()
        for ref in cond.macro_refs(node):
            if ref.name in self.macro_ast and ref.name not in out:
                sub = self.reach_memo.get(ref.name)
                if sub is None:
                    sub = self.reach_memo[ref.name] = self._refs_of_body(ref.name, deep=True) | {ref.name}
                out |= sub
        return frozenset(out)

    def close_list_name(self, value: str) -> str | None:
        """The defined list name closest to ``value`` (a likely typo), memoised: difflib is slow."""
        if value in self.close_memo:
            return self.close_memo[value]
        # Names whose length differs by more than 3 cannot reach the 0.85 ratio for these lengths.
        candidates = [n for n in self.list_names if abs(len(n) - len(value)) <= 3 and n[:1] == value[:1]]
        close = difflib.get_close_matches(value, sorted(candidates), n=1, cutoff=0.85) if candidates else []
        self.close_memo[value] = close[0] if close else None
        return self.close_memo[value]

    # -- event types ---------------------------------------------------------------------------
    def evttypes(self, node: ast.Node, negated: bool = False) -> _EvtSet:
        """The event types a condition can match, as libsinsp's evttype resolver computes them.

        Negation is pushed down (De Morgan); only ``evt.type`` checks restrict the set, any other check
        matches all event types whether negated or not.
        """
        if isinstance(node, (ast.And, ast.Or)):
            intersect = isinstance(node, ast.And) != negated
            acc = _EvtSet.all() if intersect else _EvtSet.none()
            for c in node.children:
                sub = self.evttypes(c, negated)
                acc = acc.intersect(sub) if intersect else acc.union(sub)
            return acc
        if isinstance(node, ast.Not):
            return self.evttypes(node.child, not negated)
        if isinstance(node, ast.MacroRef):
            key = (node.name, negated)
            cached = self.macro_evttypes.get(key)
            if cached is None:
                body = self.macro_ast.get(node.name)
                self.macro_evttypes[key] = _EvtSet.all()  # guards self-reference
                cached = self.evttypes(body, negated) if body is not None else _EvtSet.all()
                self.macro_evttypes[key] = cached
            return cached
        if isinstance(node.lhs, ast.FieldRef) and node.lhs.name == "evt.type":
            names = frozenset(v.value for v in _values(node))
            if node.op in ("=", "==", "in"):
                return _EvtSet(negated, names)
            if node.op == "!=":
                return _EvtSet(not negated, names)
        return _EvtSet.all()


@dataclass(frozen=True)
class RuleResult:
    """What compiling one rule produced, given the macros already checked for its source."""

    diagnostics: tuple[Diagnostic, ...]
    #: LOAD_NO_EVTTYPE, reported only when no condition failed to parse before this rule (Falco's
    #: resolver reads an unparsed macro as "any event type", so the warning would be noise)
    evttype_warning: Diagnostic | None
    compiled: str | None  # the condition with exceptions appended (None: not compiled)
    dropped: bool
    parse_failed: bool
    used_macros: frozenset[str]
    used_lists: frozenset[str]
    checked: frozenset[str]  # macros whose bodies this rule checked for its source


class _RuleCompiler:
    """Compiles one rule against an ``Env``; ``checked`` holds the macros already checked for its source."""

    def __init__(self, env: Env, r: RuleInfo, file_texts: Mapping[str, str], checked: AbstractSet[str]) -> None:
        self.env = env
        self.r = r
        self.file_texts = file_texts
        self.before = checked
        self.checked: set[str] = set()
        self.diags: list[Diagnostic] = []
        self.used_macros: set[str] = set()
        self.used_lists: set[str] = set()

    def diag(self, d: Diagnostic) -> None:
        self.diags.append(d)

    def result(self, compiled: str | None = None, dropped: bool = False, parse_failed: bool = False,
               evt: Diagnostic | None = None) -> RuleResult:
        return RuleResult(tuple(self.diags), evt, compiled, dropped, parse_failed, frozenset(self.used_macros),
                          frozenset(self.used_lists), frozenset(self.checked))

    def count_errors(self) -> int:
        return sum(1 for d in self.diags if d.severity == "error")

    def run(self) -> RuleResult:
        r, env = self.r, self.env
        where = _Where("rule", r.name, r.loc, r.condition, r.cond_pos, self.file_texts)
        if r.source not in env.catalog.sources:
            self.diag(Diagnostic("LOAD_UNKNOWN_SOURCE", "unknown-source",
                                 f"Unknown source {r.source}, skipping", r.loc.file, r.loc.line, r.loc.column,
                                 "rule", r.name))
            return self.result(dropped=True)
        parsed = env.cache.parse(r.condition)
        if isinstance(parsed, cond.ConditionError):
            self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "condition-syntax", parsed.message, parsed.offset))
            return self.result(parse_failed=True)
        self.used_lists |= env.pasted(r.condition)[1]  # Falco counts a list used wherever it pastes it
        pasted = env.paste_error(r.condition)
        if pasted is not None:
            self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "list-paste-syntax", *pasted))
            return self.result(parse_failed=True)
        for ref in cond.macro_refs(parsed):
            if ref.name not in env.macros:
                self.diag(env.undefined_macro(where, ref))
            else:
                self.used_macros.add(ref.name)
        parsed, lists = env.substituted(r.condition, parsed)
        self.used_lists |= lists
        ex_node, whole, ex_failed = self.exceptions(r)
        if ex_failed:
            return self.result(parse_failed=True)
        full: ast.Node = parsed if ex_node is None else ast.And((parsed, *ex_node))
        if whole is not None:
            full = whole
        compiled = cond.render(full) if ex_node or whole is not None else r.condition
        unknown: list[Diagnostic] = []
        self.check_tree(parsed, r.source, where, unknown, set())
        ex_where = _Where("rule", r.name, r.exceptions[0].loc if r.exceptions else r.loc, "", None, self.file_texts)
        if ex_node:
            for n in ex_node:
                self.check_tree(n, r.source, ex_where, unknown, set())
        elif whole is not None:
            # The exceptions rewrote the rule's structure: check every part of what Falco compiles.
            seen = {(d.code, d.message) for d in (*self.diags, *unknown)}
            extra: list[Diagnostic] = []
            before = len(self.diags)
            self.check_tree(whole, r.source, ex_where, extra, set())
            fresh = self.diags[before:]
            del self.diags[before:]
            self.diags.extend(d for d in fresh if (d.code, d.message) not in seen)
            unknown.extend(d for d in extra if (d.code, d.message) not in seen)
        self.output(r, unknown)
        if unknown:
            if r.skip_if_unknown_filter:
                for d in unknown:
                    self.diag(Diagnostic("LOAD_UNKNOWN_FILTER", "unknown-filter-skipped",
                                         f"{d.message}; skipping rule (skip-if-unknown-filter: true)", d.file, d.line,
                                         d.column, d.item_type, d.item_name))
                return self.result(compiled, dropped=True)
            for d in unknown:
                self.diag(d)
        evt = None
        if self.count_errors() == 0 and r.source == "syscall" and r.warn_evttypes:
            universe = len(env.catalog.event_types)
            ev = env.evttypes(full)
            if ev.size(universe) > _EVTTYPE_LIMIT or ev.size(universe) == 0:
                evt = Diagnostic(
                    "LOAD_NO_EVTTYPE", "no-evttype",
                    "Rule matches too many evt.type values. This has a significant performance penalty.",
                    r.loc.file, r.loc.line, r.loc.column, "rule", r.name,
                    "restrict every branch of the condition with evt.type, or set warn_evttypes: false")
        return self.result(compiled, evt=evt)

    # -- exceptions ----------------------------------------------------------------------------
    def exceptions(self, r: RuleInfo) -> tuple[tuple[ast.Node, ...] | None, ast.Node | None, bool]:
        """The rule's exceptions as Falco compiles them: built as text, lists substituted, parsed.

        Returns (one ``not (...)`` node per exception, or None), the whole rule's tree when an
        exception's text only parses together with the rest of the condition (its values changed the
        rule's structure), and whether the built condition failed to parse (an error is recorded).
        Each exception's text is parsed on its own first (cached: the same exception appended to
        many rules is parsed once); when all of them parse alone, the whole text Falco parses is
        exactly ``(<condition>) and not (<ex1>) and not (<ex2>)...``.
        """
        pieces: list[tuple[ExceptionInfo, str, ast.Node | cond.ConditionError]] = []
        for ex in r.exceptions:
            if not ex.values or ex.fields is None:
                continue
            if not self.exception_fields_ok(ex, r):
                continue
            try:
                icond = exception_text.exception_condition(_exception_spec(ex))
            except exception_text.ExceptionReadError as err:
                self.diag(Diagnostic("LOAD_ERR_YAML_VALIDATE", "empty-value", f"Exception '{ex.name}': {err}",
                                     ex.loc.file, ex.loc.line, ex.loc.column, "rule", r.name))
                continue
            except exception_text.ExceptionBuildError as err:
                self.diag(Diagnostic("LOAD_ERR_VALIDATE", "exception-shape", f"Exception '{ex.name}': {err}",
                                     ex.loc.file, ex.loc.line, ex.loc.column, "rule", r.name))
                continue
            if not icond:
                continue
            text, used = self.env.resolve_exception(icond)
            self.used_lists |= set(used)
            pieces.append((ex, text, self.env.cache.parse(text[1:-1])))
        if not pieces:
            return None, None, False
        if all(not isinstance(node, cond.ConditionError) for _, _, node in pieces):
            return tuple(ast.Not(node) for _, _, node in pieces if not isinstance(node, cond.ConditionError)), None, False
        # Some exception does not parse alone: parse what Falco parses, the whole built text.
        head, used = exception_text.resolve_lists("(" + r.condition + ")", self.env.list_pairs)
        self.used_lists |= set(used)
        whole_text = head + "".join(" and not " + text for _, text, _ in pieces)
        try:
            whole = cond.parse(whole_text)
        except cond.ConditionError as err:
            ex = next(e for e, _, node in pieces if isinstance(node, cond.ConditionError))
            self.diag(Diagnostic("LOAD_ERR_COMPILE_CONDITION", "exception-condition-syntax",
                                 f"{err.message} (in the condition Falco builds from exception '{ex.name}': "
                                 f"{_excerpt(whole_text, err.offset)})",
                                 ex.loc.file, ex.loc.line, ex.loc.column, "rule", r.name))
            return None, None, True
        return None, whole, False

    def exception_fields_ok(self, ex: ExceptionInfo, r: RuleInfo) -> bool:
        """Falco's collector check of exception fields, also for arguments a field does not take."""
        field_names = ex.fields if isinstance(ex.fields, list) else [ex.fields or ""]
        for fname in field_names:
            lhs = _field_from_text(fname)
            info = None if lhs is None else self.env.catalog.lookup(r.source, lhs.name)
            if lhs is None or info is None or (lhs.arg is not None and info.arg == "none"):
                self.diag(Diagnostic("LOAD_ERR_VALIDATE", "exception-unknown-field",
                                     f"Exception '{ex.name}': '{fname}' is not a supported filter field",
                                     ex.loc.file, ex.loc.line, ex.loc.column, "rule", r.name))
                return False
        return True

    # -- field and operator checks -------------------------------------------------------------
    def check_tree(self, node: ast.Node, source: str, where: _Where, unknown: list[Diagnostic],
                   seen: set[str]) -> None:
        env = self.env
        for n in cond.iter_nodes(node):
            if isinstance(n, ast.MacroRef):
                if n.name in seen:
                    continue
                seen.add(n.name)
                m = env.macros.get(n.name)
                body = env.macro_ast.get(n.name)
                if m is None or body is None:
                    continue
                # Falco reports a macro's field problems once, at the first rule (per source) using it.
                if n.name in self.before or n.name in self.checked:
                    continue
                self.checked.add(n.name)
                self.check_tree(body, source, env.where_macro(m), unknown, seen)
            elif isinstance(n, ast.Check):
                self.check(n, source, where, unknown)

    def check(self, c: ast.Check, source: str, where: _Where, unknown: list[Diagnostic]) -> None:
        env = self.env
        for feature in _features(c):
            missing = versions.missing_feature(feature, env.engine)
            if missing is not None:
                self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "feature-too-new", missing, c.pos))
                return
        infos = []
        for fref in walk.check_field_refs(c):
            info = env.catalog.lookup(source, fref.name)
            if info is None:
                unknown.append(where.at("LOAD_ERR_COMPILE_CONDITION", "unknown-field",
                                        f"filter_check called with nonexistent field {fref.name}", fref.pos))
                return
            if info.arg == "required" and fref.arg is None and fref.name == info.name:
                self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "field-needs-argument",
                                   f"filter_check called without the argument {fref.name} requires, e.g. {fref.name}[0]",
                                   fref.pos))
            if fref.arg is not None and info.arg == "none" and fref.name == info.name:
                # libsinsp finds no field named "proc.name[1]" (observed with Falco 0.40.0).
                unknown.append(where.at("LOAD_ERR_COMPILE_CONDITION", "unknown-field",
                                        f"filter_check called with nonexistent field {fref.name}[{fref.arg}]",
                                        fref.pos))
                return
            arg_problem = _field_arg_error(info, fref)
            if arg_problem is not None:
                self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "bad-field-argument", arg_problem, fref.pos))
            deprecation = env.release.deprecated_fields.get(fref.name)
            if deprecation is not None:
                self.diag(where.at("LOAD_DEPRECATED_ITEM", "deprecated-field",
                                   f"usage of deprecated field '{fref.name}': {deprecation}", fref.pos))
            infos.append((fref, info))
        if not infos or not isinstance(c.lhs, ast.FieldRef):
            return
        _, info = infos[0]
        kind = "list" if info.is_list else info.kind
        if kind != "any" and c.op not in ALLOWED_OPS[kind]:
            self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "operator-type-mismatch",
                               f"'{c.op}' operator not supported for {kind} filters", c.pos))
            return
        if c.modifier is not None and kind not in ("string", "buffer", "any"):
            self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "operator-type-mismatch",
                               f"'{c.op} {c.modifier}' operator not supported for {kind} filters", c.pos))
            return
        values = _values(c)
        for v in _constants(c):
            problem = (fields.hex_error(v.value) if c.op in ("bcontains", "bstartswith")
                       else fields.value_error(info.type, v.value))
            if problem is not None:
                self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "value-type-mismatch",
                                   f"{problem} (a value of {c.lhs.name}, type {info.type})", v.pos))
                return
        if c.lhs.name == "evt.type" and c.value is not None and not isinstance(c.value, ast.Transformer):
            # One error per check, naming the first unknown type (Falco stops at the first): a list
            # of a million unknown types costs one diagnostic, not a million.
            bad = [v for v in values if v.value not in env.catalog.event_types]
            if bad:
                more = f" (and {len(bad) - 1} more unknown event types in this check)" if len(bad) > 1 else ""
                unknown.append(where.at("LOAD_ERR_COMPILE_CONDITION", "unknown-event-type",
                                        f"unknown event type {limits.shorten(bad[0].value)}{more}", bad[0].pos))
        # Falco's filter_warning_resolver: only k8s audit fields (ka.*, jevt.*) compared for equality.
        if c.lhs.name.startswith(("ka.", "jevt.")) and c.op in ("=", "==", "!=", "in", "intersects", "pmatch"):
            for v in values:
                if v.value == "<NA>":
                    self.diag(where.at("LOAD_UNSAFE_NA_CHECK", "unsafe-na-check",
                                       f"Condition compares '{c.lhs.name}' with <NA>: it can match unrelated events "
                                       "where the field is missing", v.pos))
                    break
        if c.op == "regex" and isinstance(c.value, ast.Str) and _regex_is_simple(c.value.value):
            self.diag(where.at("LOAD_COMPILE_CONDITION", "regex-plain-string",
                               f"regex check with '{c.value.value}' may be optimized with simpler operators such "
                               "as '=', 'contains', 'startswith', 'endswith'", c.pos))
        if isinstance(c.value, ast.ListValue):
            self.suspicious_list_items(c.value, where)
        elif isinstance(c.value, ast.ListRef) and c.value.name not in env.list_names:
            self.undefined_list(c.value.name, c.value.pos, where)
        elif isinstance(c.value, ast.ListRef) and len(env.list_items.get(c.value.name, ())) > 1:
            self.diag(where.at("LOAD_ERR_COMPILE_CONDITION", "list-without-parentheses",
                               f"list '{c.value.name}' must be used inside parentheses: ({c.value.name})",
                               c.value.pos))

    def suspicious_list_items(self, lv: ast.ListValue, where: _Where) -> None:
        # Beyond Falco: an undefined list name in (...) is silently taken as a literal string.
        for it in lv.items:
            if it.quoted or it.value in self.env.list_names or not _LOOKS_LIKE_LIST.fullmatch(it.value):
                continue
            close = self.env.close_list_name(it.value)
            if close or (len(lv.items) == 1 and it.value.endswith(_LIST_SUFFIXES)):
                self.undefined_list(it.value, it.pos, where, close)

    def undefined_list(self, name: str, pos: int, where: _Where, close: str | None = None) -> None:
        d = where.at("LOAD_COMPILE_CONDITION", "undefined-list",
                     f"'{name}' is not a defined list; Falco compares it as the literal string '{name}'", pos)
        hint = f"did you mean '{close}'?" if close else "define the list, or quote the value if it is a literal"
        self.diag(Diagnostic(d.code, d.id, d.message, d.file, d.line, d.column, d.item_type, d.item_name, hint))

    # -- outputs -------------------------------------------------------------------------------
    def output(self, r: RuleInfo, unknown: list[Diagnostic]) -> None:
        loc = r.output_loc or r.loc
        release = self.env.release

        def at(code: str, id_: str, message: str) -> Diagnostic:
            return Diagnostic(code, id_, message, loc.file, loc.line, loc.column, "rule", r.name)

        # Falco rewrites %container.info before checking the format: to the container id and name up to
        # 0.40, to nothing (with a deprecation warning) from 0.41 on.
        text = r.output.replace("%container.info", "" if "%container.info" in release.deprecated_output_tokens
                                else "container_id=%container.id container_name=%container.name")
        for _, problem in output_tokens(self.env.catalog, r.source, text):
            if problem is not None:
                # Only an unknown token is skippable with skip-if-unknown-filter (``err_is_unknown_type_or_field``).
                if problem.startswith("invalid formatting token"):
                    unknown.append(at("LOAD_ERR_COMPILE_OUTPUT", "unknown-output-field", problem))
                else:
                    self.diag(at("LOAD_ERR_COMPILE_OUTPUT", "bad-output-format", problem))
                return
        # Falco looks for deprecated names anywhere in the output text (``fmt.find``), not only in tokens.
        for name, why in release.deprecated_fields.items():
            if name in r.output:
                self.diag(at("LOAD_DEPRECATED_ITEM", "deprecated-field",
                             f"usage of deprecated field '{name}' has been detected in the rule output: {why}"))
        for token, why in release.deprecated_output_tokens.items():
            if token in r.output:
                self.diag(at("LOAD_DEPRECATED_ITEM", "deprecated-output-token", why))


def output_tokens(catalog: Catalog, source: str, text: str) -> Iterator[tuple[str, str | None]]:
    """Falco's reading of an output format (libs ``sinsp_evt_formatter::set_format``, 0.20.0 to 0.25.4).

    Yields (field token, None) for each ``%`` token, or ("", Falco's message) at the first one Falco
    refuses and then stops. A token is the longest known field name the text after ``%`` (an optional
    width and transformers aside) starts with; what follows is plain text, so ``%proc.ttys`` is
    ``%proc.tty`` then ``s``. Only a ``%`` followed by no known field is an error.
    """
    n = len(text)
    i = 0
    while i < n:
        if text[i] != "%":
            i += 1
            continue
        if i == n - 1:
            yield "", "invalid formatting syntax: formatting cannot end with a %"
            return
        j = i + 1
        while j < n and text[j].isdigit():
            if j == n - 1:
                yield "", "invalid formatting syntax: formatting cannot end with a number"
                return
            j += 1
        opened = 0
        progressed = True
        while progressed:
            progressed = False
            for tr in _OUTPUT_TRANSFORMERS:
                if text.startswith(tr + "(", j) and j + len(tr) + 1 < n:
                    j += len(tr) + 1
                    opened += 1
                    progressed = True
        rest = text[j:]
        size = _field_prefix(catalog, source, rest)
        if size is None:
            yield "", f"invalid formatting token {rest}"
            return
        j += size
        for _ in range(opened):
            if j >= n or text[j] != ")":
                yield "", f"missing closing transformer parenthesis: {text[j - 1:]}"
                return
            j += 1
        yield rest[:size], None
        i = j


#: Transformers an output token may start with (libs ``parser::supported_field_transformers``).
_OUTPUT_TRANSFORMERS = ("tolower", "toupper", "b64", "basename", "len")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.]+")


def _field_prefix(catalog: Catalog, source: str, rest: str) -> int | None:
    """Length of the field token ``rest`` starts with (longest known name, then ``[arg]`` or ``.suffix``).

    None when no known field starts it. Falco 0.40 reads ``%proc.aname[x]`` and an unclosed ``[`` without
    complaint in outputs (observed), so the argument is not checked here.
    """
    fields_ = catalog.sources.get(source, {})
    m = _NAME_CHARS.match(rest)
    if m is None:
        return None
    word = m.group(0)
    for end in range(len(word), 0, -1):
        info = fields_.get(word[:end])
        if info is None:
            continue
        size = end
        if info.arg != "none" and size < len(rest) and rest[size] == "[":
            close = rest.find("]", size)
            size = close + 1 if close >= 0 else size
        elif info.suffix and size < len(word) and word[size] == ".":
            size = len(word)
        return size
    return None


def rule_inputs(env: Env, r: RuleInfo) -> tuple[Hashable, ...]:
    """What ``compile_rule(env, r, ...)`` reads from ``env``, as plain values (names aside).

    Two envs with the same macro and list names that give equal values here give ``r`` the same
    result, so the loader can keep a rule's result when unrelated lists or macros change. Follows
    ``_RuleCompiler``: the macros its checks can visit (text and position), and the expanded items of
    every list its condition, those macros or its exception values name. Keep the two in step.
    """
    parsed = env.cache.parse(r.condition)
    if isinstance(parsed, cond.ConditionError):
        return ()
    reach = sorted(env.reach(parsed))
    lists = set(env.substituted(r.condition, parsed)[1]) | env.pasted(r.condition)[1]
    for name in reach:
        lists |= env.macro_lists.get(name, frozenset())
    for ex in r.exceptions:  # the lists Falco's textual substitution finds in the built exception text
        if not ex.values or ex.fields is None:
            continue
        try:
            icond = exception_text.exception_condition(_exception_spec(ex))
        except ValueError:
            continue
        text, used = env.resolve_exception(icond)
        lists.update(used)
        if isinstance(env.cache.parse(text[1:-1]), cond.ConditionError):
            # compile_rule then parses the whole built text: the condition's own textual substitution counts
            lists.update(exception_text.resolve_lists("(" + r.condition + ")", env.list_pairs)[1])
    macros = tuple(
        (n, m.condition, m.loc.file, m.loc.line, m.loc.column, m.cond_pos)
        for n in reach
        for m in (env.macros[n],)
    )
    return macros, tuple((n, env.list_items[n]) for n in sorted(lists))


def compile_rule(env: Env, r: RuleInfo, file_texts: Mapping[str, str], checked: AbstractSet[str]) -> RuleResult:
    """Compile one rule; ``checked``: macros whose bodies earlier rules of the same source checked."""
    return _RuleCompiler(env, r, file_texts, checked).run()


#: (env, rule, macros already checked for the rule's source) -> result; the loader passes a memoised one
RuleCompileFn = Callable[[Env, RuleInfo, AbstractSet[str]], RuleResult]


def assemble(env: Env, rules: Iterable[RuleInfo], compile_one: RuleCompileFn) -> Compiled:
    """Compile ``rules`` in load order against ``env`` and gather one ``Compiled``.

    The order matters, as in Falco: a macro's own problems are reported at the first rule (per source)
    that uses it, and a condition that fails to parse silences later LOAD_NO_EVTTYPE warnings.
    """
    out = Compiled(diagnostics=list(env.diagnostics), list_items=env.list_items)
    checked: dict[str, set[str]] = {}
    parse_failed = env.parse_failed
    used_macros = set(env.used_macros)
    used_lists = set(env.used_lists)
    for r in rules:
        done = checked.setdefault(r.source, set())
        res = compile_one(env, r, done)
        out.diagnostics.extend(res.diagnostics)
        if res.evttype_warning is not None and not parse_failed:
            out.diagnostics.append(res.evttype_warning)
        parse_failed = parse_failed or res.parse_failed
        done |= res.checked
        used_macros |= res.used_macros
        used_lists |= res.used_lists
        if res.compiled is not None:
            out.compiled_conditions[r.name] = res.compiled
        if res.dropped:
            out.dropped_rules.add(r.name)
    for m in env.macros.values():
        if m.name not in used_macros:
            out.diagnostics.append(Diagnostic("LOAD_UNUSED_MACRO", "unused-macro", "Macro not referred to by any other rule/macro",
                                              m.loc.file, m.loc.line, m.loc.column, "macro", m.name))
    for li in env.lists.values():
        if li.name not in used_lists:
            out.diagnostics.append(Diagnostic("LOAD_UNUSED_LIST", "unused-list", "List not referred to by any other rule/macro",
                                              li.loc.file, li.loc.line, li.loc.column, "list", li.name))
    return out


@dataclass(frozen=True)
class _EvtSet:
    """A set of event types: ``names`` (complement=False) or everything except ``names``."""

    complement: bool
    names: frozenset[str]

    @staticmethod
    def all() -> _EvtSet:
        return _EvtSet(True, frozenset())

    @staticmethod
    def none() -> _EvtSet:
        return _EvtSet(False, frozenset())

    def invert(self) -> _EvtSet:
        return _EvtSet(not self.complement, self.names)

    def union(self, o: _EvtSet) -> _EvtSet:
        if not self.complement and not o.complement:
            return _EvtSet(False, self.names | o.names)
        if self.complement and o.complement:
            return _EvtSet(True, self.names & o.names)
        pos, neg = (self, o) if not self.complement else (o, self)
        return _EvtSet(True, neg.names - pos.names)

    def intersect(self, o: _EvtSet) -> _EvtSet:
        return self.invert().union(o.invert()).invert()

    def size(self, universe: int) -> int:
        return universe - len(self.names) if self.complement else len(self.names)


def _ast_depth(node: ast.Node) -> int:
    """Nesting levels of a condition tree (iterative)."""
    best = 0
    stack: list[tuple[ast.Node, int]] = [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        if isinstance(n, (ast.And, ast.Or)):
            stack.extend((c, d + 1) for c in n.children)
        elif isinstance(n, ast.Not):
            stack.append((n.child, d + 1))
    return best


@functools.lru_cache(maxsize=4096)
def _field_from_text(text: str) -> ast.FieldRef | None:
    try:
        node = cond.parse(f"{text.strip()} exists")
    except cond.ConditionError:
        return None
    if isinstance(node, ast.Check) and isinstance(node.lhs, ast.FieldRef):
        return node.lhs
    return None


def _exception_spec(ex: ExceptionInfo) -> exception_text.ExceptionSpec:
    """A collected exception as Falco's builder reads it, with the collector's default comps.

    Raises ``exception_text.ExceptionReadError`` for an empty scalar, as Falco's reader does.
    """
    if isinstance(ex.fields, list):
        fields = exception_text.Entry(True, items=tuple(exception_text.entry_of(f) for f in ex.fields))
        comps_list = ex.comps if isinstance(ex.comps, list) else ["="] * len(ex.fields)
        comps = exception_text.Entry(True, items=tuple(exception_text.entry_of(c.strip()) for c in comps_list))
    else:
        fields = exception_text.entry_of(ex.fields)
        comps = exception_text.entry_of((ex.comps if isinstance(ex.comps, str) else "in").strip())
    return exception_text.ExceptionSpec(ex.name, fields, comps, tuple(exception_text.entry_of(v) for v in ex.values))


def _excerpt(text: str, offset: int, width: int = 60) -> str:
    """The built text around ``offset``, bounded (values may be very long)."""
    lo = max(0, offset - width)
    hi = min(len(text), offset + width)
    return ("..." if lo else "") + text[lo:hi] + ("..." if hi < len(text) else "")


def _features(c: ast.Check) -> Iterator[str]:
    """Operators, modifiers and transformers a check uses (for engine-version gating)."""
    yield c.op
    if c.modifier:
        yield c.modifier
    stack: list[ast.Arg | ast.Value] = [c.lhs] + ([c.value] if c.value is not None else [])
    while stack:
        x = stack.pop()
        if isinstance(x, ast.Transformer):
            yield x.name
            stack.extend(x.args)


def _regex_is_simple(v: str) -> bool:
    """libs ``check_warnings_regex_value``: no special character apart from anchors at the ends and a
    leading or trailing ``.*``/``.+``/``.?``, so ``=``, ``contains``, ``startswith`` or ``endswith`` would do."""
    special, occurrence = ".+*?^$()[]{}|\\", "+*?"
    n = len(v)
    i = 0
    while i < n:
        if (i == 0 and v[i] == "^") or (i == n - 1 and v[i] == "$"):
            i += 1
            continue
        if ((i == 0 and n > 1) or i == n - 2) and v[i] == "." and i + 1 < n and v[i + 1] in occurrence:
            i += 2
            continue
        if v[i] in special:
            return False
        i += 1
    return True


def _bounded_find(text: str, name: str) -> int:
    """Where ``name`` first occurs bounded as Falco's list substitution wants it, or -1."""
    delims = " \t\n\r(),="
    start = text.find(name)
    while start != -1:
        end = start + len(name)
        if (start == 0 or text[start - 1] in delims) and (end >= len(text) or text[end] in delims):
            return start
        start = text.find(name, start + 1)
    return -1


def _constants(c: ast.Check) -> tuple[ast.Str, ...]:
    """The constants Falco parses against the field's type: strings, list items and numbers."""
    v = c.value
    if isinstance(v, ast.Num):
        return (ast.Str(v.text, v.pos),)
    return _values(c)


#: Fields whose ``[arg]`` is an ancestor index read with ``sinsp_numparser::parsed32`` (libs
#: ``sinsp_filter_check_thread::extract_arg``): ``proc.aname[x]`` is refused.
_INDEX_ARG_FIELDS = frozenset({"proc.apid", "proc.aname", "proc.aexe", "proc.aexepath", "proc.acmdline"})


def _field_arg_error(info: FieldInfo, fref: ast.FieldRef) -> str | None:
    if fref.arg is None:
        return None
    if info.name in _INDEX_ARG_FIELDS and fref.name == info.name:
        err = fields.value_error("INT32", fref.arg)
        return None if err is None else err
    return None


def _values(c: ast.Check) -> tuple[ast.Str, ...]:
    v = c.value
    if isinstance(v, ast.Str):
        return (v,)
    if isinstance(v, ast.ListValue):
        return v.items
    return ()


def compile_collection(
    col: Collection, catalog: Catalog, file_texts: Mapping[str, str], engine: str = versions.NEWEST_ENGINE_VERSION
) -> Compiled:
    """Run all compile checks over a collection for one engine version; diagnostics are returned."""
    env = Env(col, catalog, file_texts, engine)
    return assemble(env, col.rules.values(), lambda e, r, checked: compile_rule(e, r, file_texts, checked))
