"""Reading padlock objects and rules sources from disk, shared by ``padlock render`` and ``padlock validate``.

Both commands take padlock objects from YAML files (multi-document, ``kind: List`` wrappers too) and
rules sources from ``--source [NAME[@VERSION]=]PATH``, and both build the managed policies the
operator would build from the built-in catalog plus those sources. This module holds that file
reading and that wiring once, so the two commands see the same objects, the same source names and
load orders, and the same managed policies. All decisions stay in ``padlock.policy`` and ``padlock.engine``.

``read_documents`` keeps where each document starts (the line of its ``kind:`` key) so ``validate``
can point at it; ``read_objects`` is the plain form ``render`` uses.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from padlock.engine import limits, loader, readorder, safe_yaml
from padlock.engine.model import RulesFile
from padlock.policy import catalog, managed, policy_objects

_SOURCE = re.compile(r"^(?:(?P<name>[a-z0-9][-a-z0-9.]*)(?:@(?P<version>[^=]+))?=)?(?P<path>.+)$")
MAX_SOURCE_FILES = 1024
"""Files in one ``--source`` directory (an artifact holds at most 64; see ``padlock.sources``)."""
DEFAULT_LOAD_ORDER = 50
"""``spec.loadOrder`` of a RuleSource that sets none (the CRD default)."""


class InputError(Exception):
    """Unreadable input: reported with the file and exit code 2."""


@dataclass(frozen=True)
class Document:
    """One object found in a YAML file: a document, or one item of a ``kind: List`` document.

    ``line``/``column`` (1-based) locate its ``kind:`` key, or its start when it has none.
    """

    file: str
    line: int
    column: int
    body: Any


@dataclass(frozen=True)
class YamlProblem:
    """Why a file is not YAML, located at the parser's mark (1-based)."""

    file: str
    line: int
    column: int
    message: str


def yaml_files(path: Path) -> list[Path]:
    """``path`` itself, or every ``.yaml``/``.yml`` file under a directory, sorted (deterministic order)."""
    if path.is_dir():
        # Byte order of the full path, as Falco sorts a rules directory (padlock.engine.readorder).
        found = (p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        return sorted(found, key=lambda p: readorder.path_key(str(p)))
    return [path]


def _where(node: yaml.Node) -> tuple[int, int]:
    # The `kind:` key is what a reader looks for to find an object in a long file.
    if isinstance(node, yaml.MappingNode):
        for key, _value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "kind":
                return key.start_mark.line + 1, key.start_mark.column + 1
    return node.start_mark.line + 1, node.start_mark.column + 1


def _items_node(node: yaml.Node) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "items":
                found: yaml.Node = value
                return found
    return None


def read_documents(file: str, text: str) -> tuple[list[Document], YamlProblem | None]:
    """Every document of ``text``, with ``kind: List`` documents expanded into their items.

    Documents before a YAML error are returned with the error, so a caller can report both; empty
    documents are skipped. Read through ``padlock.engine.safe_yaml`` (bounded size, depth, aliases).
    """
    docs: list[Document] = []
    try:
        for node in safe_yaml.documents(text):
            body = safe_yaml.to_python(node)
            if body is None:
                continue
            if isinstance(body, dict) and body.get("kind") == "List" and isinstance(body.get("items"), list):
                items_node = _items_node(node)
                nodes = items_node.value if isinstance(items_node, yaml.SequenceNode) else []
                for i, item in enumerate(body["items"]):
                    line, column = _where(nodes[i]) if i < len(nodes) else _where(node)
                    docs.append(Document(file, line, column, item))
                continue
            line, column = _where(node)
            docs.append(Document(file, line, column, body))
    except safe_yaml.YamlError as exc:
        return docs, YamlProblem(file, exc.line or 1, exc.column or 1, exc.message)
    return docs, None


def read_text(path: Path, limit: int = limits.MAX_YAML_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``limit`` bytes; ``InputError`` otherwise.

    Refuses what is not a regular file (``/dev/zero``, a FIFO, a socket) before opening it, and reads
    at most ``limit + 1`` bytes, so neither an endless device nor a 200 MB file is read whole.
    """
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file (devices, FIFOs and sockets are not read)")
    if st.st_size > limit:
        raise InputError(f"{path}: {st.st_size} bytes, over the limit of {limit} bytes")
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO after the check, open does not hang on it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise InputError(f"{path}: not a regular file (devices, FIFOs and sockets are not read)")
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise InputError(f"{path}: over the limit of {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot read: not UTF-8 ({exc.reason} at byte {exc.start})") from exc


def read_objects(paths: Iterable[Path], object_namespace: str | None = None) -> list[dict[str, Any]]:
    """Every padlock object in the given files/directories (other YAML documents are skipped).

    ``object_namespace``: given to each PolicyException that names none, as ``kubectl apply -n``
    would, so the offline commands confine it as the cluster will."""
    bodies = _read_objects(paths)
    if object_namespace is not None:
        for body in bodies:
            meta = body.setdefault("metadata", {})
            if body.get("kind") == "PolicyException" and isinstance(meta, dict) and not meta.get("namespace"):
                meta["namespace"] = object_namespace
    return bodies


def _read_objects(paths: Iterable[Path]) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for path in paths:
        for f in yaml_files(path):
            text = read_text(f)
            docs, problem = read_documents(str(f), text)
            if problem is not None:
                raise InputError(f"{f}: not valid YAML: line {problem.line}: {problem.message}")
            for doc in docs:
                if isinstance(doc.body, dict) and doc.body.get("apiVersion") == policy_objects.GROUP_VERSION:
                    bodies.append(doc.body)
    return bodies


def read_source(spec: str, load_orders: dict[str, int]) -> policy_objects.SourceInput:
    """``[NAME[@VERSION]=]PATH``: a rules file, or a directory of them (top level, like Falco)."""
    m = _SOURCE.match(spec)
    if m is None:
        raise InputError(f"--source {spec}: expected [NAME[@VERSION]=]PATH")
    path = Path(m["path"])
    if not path.exists():
        raise InputError(f"--source {spec}: {path} does not exist")
    name = m["name"] or re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-") or "rules"
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    if len(files) > MAX_SOURCE_FILES:
        raise InputError(f"--source {spec}: more than {MAX_SOURCE_FILES} files in {path}")
    texts: list[tuple[str, str]] = []
    for f in files:
        if f.suffix not in (".yaml", ".yml"):
            continue
        texts.append((f.name, read_text(f)))
    if not texts:
        raise InputError(f"--source {spec}: no .yaml rules files in {path}")
    return policy_objects.SourceInput(
        name, load_orders.get(name, DEFAULT_LOAD_ORDER), m["version"] or "local", tuple(texts)
    )


def check_unique_names(sources: Sequence[policy_objects.SourceInput]) -> None:
    """InputError when two sources share a name (their files would collide in the ConfigMap)."""
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise InputError(f"two --source share a name ({', '.join(names)}); name them with NAME=PATH")


def build_managed(
    sources: Sequence[policy_objects.SourceInput], engine_version: str | None, plugins: dict[str, str]
) -> tuple[list[managed.ManagedPolicyContent], list[str]]:
    """The managed policies the operator would build: built-in catalog (+ any ``padlock-catalog.yaml``
    in a source) over the sources' rulesets. Returns them with the catalog problems, one line each."""
    notes: list[str] = []
    ordered = sorted(sources, key=lambda s: (s.load_order, s.name))
    cat = catalog.builtin()
    rulesets = {}
    for src in ordered:
        cat, problems = catalog.from_bundle(cat, src.files, f"{src.name}/")
        notes.extend(p.one_line() for p in problems)
        files = [RulesFile(n, t) for n, t in src.files if n != catalog.ARTIFACT_FILE]
        rulesets[src.name] = loader.load(files, engine_version=engine_version, plugins=plugins).ruleset
    return managed.build_managed(cat, rulesets, {s.name: s.version for s in ordered}), notes


def managed_inputs(
    sources: list[policy_objects.SourceInput],
    parsed: policy_objects.ParsedObjects,
    engine_version: str | None,
    plugins: dict[str, str],
) -> tuple[list[policy_objects.ManagedPolicyInput], list[str]]:
    """Managed policies as the operator would build them, with the user's choices from the objects."""
    contents, notes = build_managed(sources, engine_version, plugins)
    choices = {m.name: m for m in parsed.managed}
    out = []
    for content in contents:
        user = choices.pop(content.name, None)
        if user is None:
            out.append(content.as_input())
        else:
            out.append(content.as_input(user.enabled, user.disabled_rules, user.scope))
    for name in sorted(choices):
        notes.append(
            f"ManagedPolicy {name}: no policy of that name in the catalog; its choices are ignored [unknown-policy]"
        )
    return out, notes
