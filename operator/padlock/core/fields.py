"""Field catalog: which fields exist for each event source, and their types (data in ``data/fields.json``).

Read by the loader's compiler to reject unknown fields and operator/type mismatches, as Falco does when it
compiles a rule. Fields depend on the loaded plugins: ``container.*`` and ``k8s.*`` exist only with the
container plugin, the ``k8s_audit`` source only with the k8saudit plugin. The JSON file records which Falco,
libs and plugin versions it describes (``provenance``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class FieldInfo:
    name: str
    type: str
    kind: str  # numeric | bool | string | buffer | ip | any
    arg: str  # none | optional | required
    suffix: bool  # accepts a dotted suffix, e.g. evt.arg.flags
    is_list: bool
    deprecated: bool


@dataclass(frozen=True)
class Catalog:
    """Fields per source for one set of loaded plugins."""

    sources: Mapping[str, Mapping[str, FieldInfo]]
    event_types: frozenset[str]

    def lookup(self, source: str, name: str) -> FieldInfo | None:
        """The field ``name`` for ``source``; dotted forms such as ``evt.arg.flags`` resolve to ``evt.arg``."""
        fields = self.sources.get(source)
        if fields is None:
            return None
        info = fields.get(name)
        if info is not None:
            return info
        cut = name.rfind(".")
        while cut > 0:
            info = fields.get(name[:cut])
            if info is not None and info.suffix:
                return info
            cut = name.rfind(".", 0, cut)
        return None

    def names(self, source: str) -> tuple[str, ...]:
        return tuple(sorted(self.sources.get(source, {})))


@cache
def _raw() -> dict[str, Any]:
    text = resources.files("padlock.core").joinpath("data/fields.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def provenance() -> dict[str, Any]:
    """Which Falco, libs and plugin versions the catalog describes, and where it was read."""
    prov: dict[str, Any] = _raw()["provenance"]
    return prov


def _kinds() -> dict[str, str]:
    out: dict[str, str] = {}
    for kind, types in _raw()["types"].items():
        for t in types:
            out[t] = kind
    return out


def _infos(table: Mapping[str, Mapping[str, Any]]) -> dict[str, FieldInfo]:
    kinds = _kinds()
    return {
        name: FieldInfo(
            name,
            e["type"],
            kinds.get(e["type"], "string"),
            e.get("arg", "none"),
            bool(e.get("suffix", False)),
            bool(e.get("list", False)),
            bool(e.get("deprecated", False)),
        )
        for name, e in table.items()
    }


@cache
def _catalog(plugins: tuple[str, ...], container_in_core: bool) -> Catalog:
    raw = _raw()
    sources: dict[str, dict[str, FieldInfo]] = {}
    for src, body in raw["sources"].items():
        sources[src] = _infos(body["fields"])
    if container_in_core:
        sources["syscall"].update(_infos(raw["plugins"]["container"]["sources"]["syscall"]))
    for plugin in plugins:
        spec = raw["plugins"].get(plugin)
        if spec is None:
            continue
        for src, table in spec["sources"].items():
            sources.setdefault(src, {}).update(_infos(table))
    return Catalog(sources, frozenset(raw["event_types"]))


#: Falco 0.41 (engine 0.50.0) moved container.* and k8s.* from libsinsp into the container plugin.
CONTAINER_PLUGIN_SINCE = (0, 50, 0)


def catalog(plugins: Iterable[str] = (), engine: tuple[int, int, int] | None = None) -> Catalog:
    """The catalog for a set of loaded plugin names and an engine version (unknown plugins add nothing).

    Before engine 0.50.0 the container fields were part of libsinsp and need no plugin.
    """
    in_core = engine is not None and engine < CONTAINER_PLUGIN_SINCE
    return _catalog(tuple(sorted(set(plugins))), in_core)
