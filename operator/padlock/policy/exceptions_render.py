"""Padlock exceptions -> Falco ``exceptions`` entries, with namespace pinning and expiry.

A PolicyException or ClusterPolicyException (or an entry of a CustomPolicy's ``spec.exceptions``)
becomes one Falco exception entry, later appended to each targeted rule with
``override: {exceptions: append}``. Convenience keys map to fields (``images`` ->
``container.image.repository``, ``containerNames`` -> ``container.name``, ``processNames`` ->
``proc.name``, each with ``in``). A namespaced PolicyException always gets ``k8s.ns.name = <its
namespace>`` in every value tuple: added when absent, accepted when it already names the same
namespace, refused when it names another one, so a namespace owner can never blind the rest of the
cluster. An exception whose ``expiresAt`` is not after ``now`` is not applied and is reported.

Who calls it: ``padlock.policy.layer``. Pure: ``now`` is passed in.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from padlock.engine import collector, exception_text, limits
from padlock.engine import condition as cond
from padlock.policy.policy_objects import ExceptionInput, ObjectDiagnostic

NAMESPACE_FIELD = "k8s.ns.name"
CONVENIENCE_FIELDS = (
    ("images", "container.image.repository"),
    ("container_names", "container.name"),
    ("process_names", "proc.name"),
)
# Falco's comparison operators for exceptions, and those taking a list: the rules loader's own tables,
# so an exception Padlock renders is one the loader accepts. A modifier form such as
# "startswith oneof" is checked by its first word.
COMPS = collector.EXCEPTION_COMPS


@dataclass(frozen=True)
class RenderedException:
    """One Falco exception entry ready to append, or why there is none."""

    entry: dict[str, Any] | None
    diagnostics: tuple[ObjectDiagnostic, ...] = ()
    expired: bool = False


def exception_name(exc: ExceptionInput, index: int = 0) -> str:
    """A unique, stable Falco exception name per object (and per entry within a CustomPolicy).

    Kubernetes names never contain ``_``, so ``_`` separates the parts without ambiguity.
    """
    ref = exc.ref
    if ref.kind == "PolicyException":
        return f"padlock_pe_{ref.namespace}_{ref.name}"
    if ref.kind == "ClusterPolicyException":
        return f"padlock_cpe_{ref.name}"
    return f"padlock_cp_{ref.name}_{index}"


def is_expired(exc: ExceptionInput, now: datetime) -> bool:
    return exc.expires_at is not None and exc.expires_at <= now


def render_exception(
    exc: ExceptionInput, now: datetime, index: int = 0, lists: Mapping[str, Sequence[str]] | None = None
) -> RenderedException:
    """The Falco exception entry for ``exc`` (not yet bound to a rule), or why there is none.

    ``lists``: the lists of the ruleset the entry joins (name -> items, in definition order, lists
    inside lists expanded: ``exception_text.expand_lists``); Falco substitutes them textually into the
    exception, so the confinement proof needs them. The entry is returned only when that proof holds.
    """
    if is_expired(exc, now):
        assert exc.expires_at is not None
        diag = ObjectDiagnostic(
            exc.ref,
            f"{exc.path}.expiresAt",
            f"expired at {exc.expires_at.isoformat()}; no longer applied",
            "exception-expired",
            "warning",
        )
        return RenderedException(None, (diag,), expired=True)
    shape, problems = _intended(exc)
    if exc.ref.kind == "PolicyException" and not problems:
        problems.extend(_pin_namespace(exc, shape))
    if not problems:
        problems.extend(confinement_problems(exc, shape, lists or {}))
    if problems:
        return RenderedException(None, tuple(problems))
    entry: dict[str, Any] = {
        "name": exception_name(exc, index),
        "fields": list(shape.fields),
        "comps": list(shape.comps),
        "values": [[_yaml(c.emitted) for c in row] for row in shape.rows],
    }
    return RenderedException(entry)


def check_exception(exc: ExceptionInput, lists: Mapping[str, Sequence[str]]) -> RenderedException:
    """``render_exception`` without the clock (expiry is not looked at), for admission and ``padlock
    validate``: the same checks, the same entry."""
    return render_exception(exc, _NEVER, 0, lists)


_NEVER = datetime.min.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# What the user means: fields, comps and one cell per value, each with its field path


@dataclass
class _Cell:
    value: str | tuple[str, ...]
    path: str  # field path of the value; for a list, ``item_paths`` name each item
    item_paths: tuple[str, ...] = ()
    emitted: str | tuple[str, ...] = ""  # what Padlock writes into the Falco entry
    want: _Want | None = None


@dataclass
class _Shape:
    fields: list[str]
    comps: list[str]
    rows: list[list[_Cell]]
    field_paths: list[str]
    comp_paths: list[str]


def _intended(exc: ExceptionInput) -> tuple[_Shape, list[ObjectDiagnostic]]:
    m = exc.match
    path = f"{exc.path}.match"
    problems: list[ObjectDiagnostic] = []
    if m.fields:
        fields = list(m.fields)
        comps = list(m.comps) or ["="] * len(fields)
        rows = [
            [_Cell(v, f"{path}.values[{i}][{j}]", tuple(f"{path}.values[{i}][{j}][{k}]" for k in range(len(v)))
                   if isinstance(v, tuple) else ())
             for j, v in enumerate(r)]
            for i, r in enumerate(m.values)
        ]
        field_paths = [f"{path}.fields[{j}]" for j in range(len(fields))]
        comp_paths = [f"{path}.comps[{j}]" for j in range(len(comps))]
    else:
        fields, comps, row, field_paths, comp_paths = [], [], [], [], []
        for attr, field_name in CONVENIENCE_FIELDS:
            values = getattr(m, attr)
            if values:
                key = _CAMEL[attr]
                fields.append(field_name)
                comps.append("in")
                row.append(_Cell(tuple(values), f"{path}.{key}", tuple(f"{path}.{key}[{k}]" for k in range(len(values)))))
                field_paths.append(f"{path}.{key}")
                comp_paths.append(f"{path}.{key}")
        rows = [row]
        if not fields:
            problems.append(
                ObjectDiagnostic(
                    exc.ref, path, "names no images, containerNames or processNames", "invalid-exception"
                )
            )
    for i, comp in enumerate(comps):
        if not _comp_ok(comp):
            problems.append(
                ObjectDiagnostic(
                    exc.ref,
                    comp_paths[i] if i < len(comp_paths) else f"{path}.comps[{i}]",
                    f"'{comp}' is not a supported comparison operator",
                    "invalid-exception",
                )
            )
    if len(comps) != len(fields) or any(len(r) != len(fields) for r in rows):
        problems.append(ObjectDiagnostic(exc.ref, path, "Fields and values lists must have equal length",
                                         "invalid-exception"))
    if not problems:
        problems.extend(_reader_rules(exc, fields, comps, rows, field_paths, comp_paths))
    return _Shape(fields, comps, rows, field_paths, comp_paths), problems


_CAMEL = {"images": "images", "container_names": "containerNames", "process_names": "processNames"}


def _comp_ok(comp: str) -> bool:
    parts = comp.split(" ")
    if len(parts) == 1:
        return comp in COMPS
    return len(parts) == 2 and parts[0] in collector.MODIFIABLE_COMPS and parts[1] in _MODIFIERS


_MODIFIERS = frozenset({"oneof", "anyof", "allof"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _reader_rules(
    exc: ExceptionInput,
    fields: list[str],
    comps: list[str],
    rows: list[list[_Cell]],
    field_paths: list[str],
    comp_paths: list[str],
) -> list[ObjectDiagnostic]:
    """Falco's reader rules for exception entries, each with Falco's message (or what Falco would do)."""
    out: list[ObjectDiagnostic] = []

    def text_rules(text: str, where: str) -> bool:
        if text == "":
            out.append(ObjectDiagnostic(exc.ref, where, exception_text.EMPTY_VALUE, "empty-value"))
            return False
        bad = _CONTROL.search(text)
        if bad is not None:
            out.append(ObjectDiagnostic(
                exc.ref, where,
                f"contains the control character U+{ord(bad.group()):04X}: Falco's condition parser reads it as "
                "a blank or refuses it, so it cannot stay part of one value",
                "control-character",
            ))
            return False
        return True

    for j, f in enumerate(fields):
        text_rules(f, field_paths[j])
    for row in rows:
        for j, cell in enumerate(row):
            op = comps[j].split(" ")[0]
            modifier = " " in comps[j]
            if isinstance(cell.value, tuple):
                if not cell.value:
                    out.append(ObjectDiagnostic(exc.ref, cell.path, "an empty list matches nothing; give at least one value",
                                                "empty-value"))
                for k, item in enumerate(cell.value):
                    text_rules(item, cell.item_paths[k] if k < len(cell.item_paths) else cell.path)
                if op not in exception_text.LIST_OPERATORS and not modifier:
                    out.append(ObjectDiagnostic(
                        exc.ref, cell.path,
                        f"a list of values needs the comparison in, intersects or pmatch (or a modifier such as "
                        f"'startswith anyof'), not '{comps[j]}': Falco would build '{fields[j]} {comps[j]} (...)', "
                        "which does not parse",
                        "list-value-needs-list-comp",
                    ))
            elif text_rules(cell.value, cell.path) and op == "exists":
                out.append(ObjectDiagnostic(
                    exc.ref, cell.path,
                    f"'exists' takes no value, but Falco appends the value after it verbatim "
                    f"('{_short(fields[j] + ' exists ' + cell.value)}'), so it would become condition code or a "
                    "parse error; an exception cannot use 'exists'",
                    "value-after-exists",
                ))
    return out


# ---------------------------------------------------------------------------------------------
# Emission and the confinement proof


_BARE = re.compile(r"[^ \b\t\n\r(),=\"'\\]+")
"""Text Falco's builder leaves alone and its parser reads back as exactly this one bare string."""
_NUMERIC_COMPS = frozenset({"<", "<=", ">", ">="})


@dataclass(frozen=True)
class _Want:
    """The intended value of one cell: a string, a number, or a list of strings."""

    kind: str  # "str" | "num" | "list"
    text: str = ""
    items: tuple[str, ...] = ()
    #: the list holds items of Falco lists named in it (their items are whatever those lists hold)
    refs: bool = False


def _literal(value: str, lists: Mapping[str, Sequence[str]]) -> str:
    """Text that Falco's builder and parser turn into exactly ``value``: bare when that is proven
    safe (no delimiter, quote or backslash, not a list name), otherwise pre-quoted, which Falco's
    ``quote_item`` leaves as it is."""
    if _BARE.fullmatch(value) and value not in lists:
        return value
    return cond.quote(value)


def _emit(cell: _Cell, comp: str, lists: Mapping[str, Sequence[str]]) -> None:
    op = comp.split(" ")[0]
    listish = op in exception_text.LIST_OPERATORS or " " in comp
    v = cell.value
    if isinstance(v, tuple):
        cell.emitted = tuple(_literal(x, lists) for x in v)
        cell.want = _Want("list", items=v)
        return
    if op in _NUMERIC_COMPS:
        cell.emitted, cell.want = v, _Want("num", v)
        return
    if not listish:
        cell.emitted, cell.want = _literal(v, lists), _Want("str", v)
        return
    if v in lists and op in exception_text.LIST_OPERATORS:
        # Documented: under in/intersects/pmatch a value that is a list's name stands for that list.
        cell.emitted, cell.want = v, _Want("list", refs=True)
        return
    inline = _inline_list(v) if v.startswith("(") else None
    if inline is not None:
        refs = tuple(i.value for i in inline if not i.quoted and i.value in lists)
        cell.emitted = tuple(i.value if (not i.quoted and i.value in lists) else _literal(i.value, lists) for i in inline)
        cell.want = _Want("list", items=tuple(i.value for i in inline if i.value not in refs), refs=bool(refs))
        return
    cell.emitted, cell.want = (_literal(v, lists),), _Want("list", items=(v,))


def _inline_list(value: str) -> tuple[cond.Str, ...] | None:
    """The items of a documented inline list such as ``(bash, sh)``, or None when it is not one."""
    try:
        node = cond.parse(f"proc.name in {value}")
    except cond.ConditionError:
        return None
    if isinstance(node, cond.Check) and isinstance(node.value, cond.ListValue):
        return node.value.items
    return None


def _yaml(emitted: str | tuple[str, ...]) -> Any:
    return list(emitted) if isinstance(emitted, tuple) else emitted


@functools.lru_cache(maxsize=4096)
def _field_ref(text: str) -> cond.FieldRef | None:
    try:
        node = cond.parse(f"{text} exists")
    except cond.ConditionError:
        return None
    if isinstance(node, cond.Check) and isinstance(node.lhs, cond.FieldRef) and node.op == "exists":
        return node.lhs
    return None


def _matches(node: cond.Node, lhs: cond.FieldRef, comp: str, want: _Want) -> bool:
    """``node`` is exactly ``lhs comp <want>``: one check, on the intended field, with the intended literal."""
    if not isinstance(node, cond.Check) or node.lhs != lhs:
        return False
    parts = comp.split(" ")
    op, modifier = parts[0], (parts[1] if len(parts) > 1 else None)
    if node.op != op or node.modifier != modifier:
        return False
    v = node.value
    if want.kind == "str":
        return isinstance(v, cond.Str) and v.value == want.text
    if want.kind == "num":
        return isinstance(v, cond.Num) and v.text == want.text
    if not isinstance(v, cond.ListValue):
        return False
    got = tuple(i.value for i in v.items)
    if want.refs:  # the named lists' items are the admin's; the user's own items must all be there
        return all(item in got for item in want.items)
    return got == want.items


def _row_matches(node: cond.Node, lhs: Sequence[cond.FieldRef], comps: Sequence[str], row: Sequence[_Cell]) -> bool:
    terms = node.children if isinstance(node, cond.And) else (node,)
    if len(terms) != len(row):
        return False
    return all(
        c.want is not None and _matches(t, f, comp, c.want) for t, f, comp, c in zip(terms, lhs, comps, row, strict=True)
    )


def _built(fields: Sequence[str], comps: Sequence[str], rows: Sequence[Sequence[_Cell]],
           pairs: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, cond.Node | cond.ConditionError]:
    """The exception's text as Falco builds it (lists substituted) and what its parser makes of it."""
    spec = exception_text.ExceptionSpec(
        "probe",
        exception_text.Entry(True, items=tuple(exception_text.Entry(False, f) for f in fields)),
        exception_text.Entry(True, items=tuple(exception_text.Entry(False, c) for c in comps)),
        tuple(
            exception_text.Entry(True, items=tuple(
                exception_text.Entry(True, items=tuple(exception_text.Entry(False, x) for x in c.emitted))
                if isinstance(c.emitted, tuple) else exception_text.Entry(False, c.emitted)
                for c in row
            ))
            for row in rows
        ),
    )
    text, _ = exception_text.resolve_lists(exception_text.exception_condition(spec), pairs)
    try:
        return text, cond.parse(text[1:-1])
    except cond.ConditionError as err:
        return text, err


def _short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _outcome(text: str, parsed: cond.Node | cond.ConditionError) -> str:
    built = _short(text[1:-1].strip())
    if isinstance(parsed, cond.ConditionError):
        return f"Falco would build '{built}', which does not parse ({parsed.message}): the ruleset would not load"
    return f"Falco would build '{built}', which it compiles as '{_short(cond.render(parsed))}'"


def confinement_problems(
    exc: ExceptionInput, shape: _Shape, lists: Mapping[str, Sequence[str]]
) -> list[ObjectDiagnostic]:
    """Prove that Falco compiles exactly the intended exception from what Padlock emits, or say why not.

    Emits every cell (``_emit``), builds the exception's text with Falco's own builder and list
    substitution (``exception_text``), parses it with Padlock's condition parser and requires the tree
    to be the intended shape: an ``or`` of one row per values entry, each row an ``and`` of exactly
    ``field comp literal`` per field, the literals equal to the user's values (and the namespace pin,
    a cell like any other, in every row of a namespaced exception). A cell that fails alone is named
    by its field path; otherwise the exception as a whole is.
    """
    out: list[ObjectDiagnostic] = []
    pairs = tuple(lists.items())
    lhs: list[cond.FieldRef] = []
    for j, f in enumerate(shape.fields):
        ref = _field_ref(f)
        if ref is None:
            out.append(ObjectDiagnostic(
                exc.ref, shape.field_paths[j],
                f"'{_short(f)}' is not a supported filter field: Falco would build '{_short(f)} exists' from it, "
                "which is not one field",
                "exception-field-not-a-field",
            ))
        lhs.append(ref or cond.FieldRef(f))
    if out:
        return out
    for row in shape.rows:
        for j, cell in enumerate(row):
            _emit(cell, shape.comps[j], lists)
    text, parsed = _built(shape.fields, shape.comps, shape.rows, pairs)
    if len(text) > limits.MAX_CONDITION_CHARS:
        # Too big to prove (the parser refuses such input, docs/limits.md): the object is too large,
        # not hostile, so it is left out as TooLarge before the per-object byte count sees it.
        return [ObjectDiagnostic(
            exc.ref, f"{exc.path}.match",
            f"its exception condition would be {len(text)} characters, more than the per-object limit of "
            f"{limits.MAX_CONDITION_CHARS} characters Padlock checks in one condition; left out of the "
            "published ruleset",
            "object-too-large",
        )]
    if not isinstance(parsed, cond.ConditionError):
        alts = parsed.children if isinstance(parsed, cond.Or) else (parsed,)
        if len(alts) == len(shape.rows) and all(
            _row_matches(a, lhs, shape.comps, row) for a, row in zip(alts, shape.rows, strict=True)
        ):
            return []
    # Not the intended shape: find the values that break it on their own.
    for row in shape.rows:
        for j, cell in enumerate(row):
            one_text, one = _built([shape.fields[j]], [shape.comps[j]], [[cell]], pairs)
            assert cell.want is not None
            if isinstance(one, cond.ConditionError) or not _matches(one, lhs[j], shape.comps[j], cell.want):
                out.append(ObjectDiagnostic(
                    exc.ref, _culprit(cell, shape.fields[j], shape.comps[j], lhs[j], pairs, lists),
                    f"{_outcome(one_text, one)}; a value must stay one literal compared with "
                    f"{shape.fields[j]} (a namespaced exception also keeps its {NAMESPACE_FIELD} pin)",
                    "value-becomes-code",
                ))
    if not out:
        out.append(ObjectDiagnostic(
            exc.ref, f"{exc.path}.match",
            f"{_outcome(text, parsed)}; the values together do not stay literals compared with their fields",
            "value-becomes-code",
        ))
    return out


def _culprit(cell: _Cell, fld: str, comp: str, lhs: cond.FieldRef,
             pairs: Sequence[tuple[str, Sequence[str]]], lists: Mapping[str, Sequence[str]]) -> str:
    """The path of the first list item that breaks the cell on its own (the cell's path otherwise)."""
    if isinstance(cell.value, tuple) and cell.item_paths:
        for k, item in enumerate(cell.value):
            one = _Cell((item,), cell.path)
            _emit(one, comp, lists)
            _, parsed = _built([fld], [comp], [[one]], pairs)
            assert one.want is not None
            if isinstance(parsed, cond.ConditionError) or not _matches(parsed, lhs, comp, one.want):
                return cell.item_paths[k]
    return cell.path


def _pin_namespace(exc: ExceptionInput, shape: _Shape) -> list[ObjectDiagnostic]:
    """Force every tuple of a namespaced exception to match only the exception's own namespace."""
    ns = exc.ref.namespace
    path = f"{exc.path}.match"
    fields, comps, rows = shape.fields, shape.comps, shape.rows
    if NAMESPACE_FIELD not in fields:
        fields.append(NAMESPACE_FIELD)
        comps.append("=")
        shape.field_paths.append("metadata.namespace")
        shape.comp_paths.append("metadata.namespace")
        for r in rows:
            r.append(_Cell(ns, "metadata.namespace"))
        return []
    idx = fields.index(NAMESPACE_FIELD)
    problems = []
    if comps[idx] not in ("=", "==", "in"):
        problems.append(
            ObjectDiagnostic(
                exc.ref,
                f"{path}.comps[{idx}]",
                f"'{comps[idx]}' on {NAMESPACE_FIELD} could match other namespaces; a PolicyException in "
                f'namespace "{ns}" may only use = {ns}',
                "exception-namespace-escape",
            )
        )
        return problems
    comps[idx] = "="
    for i, r in enumerate(rows):
        value = r[idx].value
        values = list(value) if isinstance(value, tuple | list) else [value]
        if values != [ns]:
            problems.append(
                ObjectDiagnostic(
                    exc.ref,
                    f"{path}.values[{i}][{idx}]",
                    f'names namespace {", ".join(map(str, values))!s}; a PolicyException in namespace "{ns}" '
                    f"can only silence events from its own namespace",
                    "exception-namespace-escape",
                )
            )
        r[idx] = _Cell(ns, r[idx].path)
    return problems
