"""Field catalog: which fields exist for each event source, and their types (data in ``data/fields.json``).

Read by the loader's compiler to reject unknown fields and operator/type mismatches, as Falco does when it
compiles a rule. Fields depend on the loaded plugins: ``container.*`` and ``k8s.*`` exist only with the
container plugin, the ``k8s_audit`` source only with the k8saudit plugin. The JSON file records which Falco,
libs and plugin versions it describes (``provenance``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from padlock.engine import versions


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
def _raw(file: str = "fields.json") -> dict[str, Any]:
    text = resources.files("padlock.engine").joinpath(f"data/{file}").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def provenance() -> dict[str, Any]:
    """Which Falco, libs and plugin versions the catalog describes, and where it was read."""
    prov: dict[str, Any] = _raw()["provenance"]
    return prov


def _kinds(file: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for kind, types in _raw(file)["types"].items():
        for t in types:
            out[t] = kind
    return out


def _infos(table: Mapping[str, Mapping[str, Any]], file: str = "fields.json") -> dict[str, FieldInfo]:
    kinds = _kinds(file)
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
def _catalog(plugins: tuple[str, ...], file: str, container_in_core: bool) -> Catalog:
    raw = _raw(file)
    sources: dict[str, dict[str, FieldInfo]] = {}
    for src, body in raw["sources"].items():
        sources[src] = _infos(body["fields"], file)
    if container_in_core and "container.id" not in sources["syscall"]:
        sources["syscall"].update(_infos(_raw()["plugins"]["container"]["sources"]["syscall"]))
    for plugin in plugins:
        if container_in_core and plugin == "container":
            continue  # the fields are libsinsp's own in that release
        spec = raw.get("plugins", {}).get(plugin) or _raw()["plugins"].get(plugin)
        if spec is None:
            continue
        for src, table in spec["sources"].items():
            sources.setdefault(src, {}).update(_infos(table))
    return Catalog(sources, frozenset(raw["event_types"]))


#: Falco 0.41 (engine 0.50.0) moved container.* and k8s.* from libsinsp into the container plugin.
CONTAINER_PLUGIN_SINCE = (0, 50, 0)


def catalog(plugins: Iterable[str] = (), engine: tuple[int, int, int] | None = None) -> Catalog:
    """The catalog for a set of loaded plugin names and an engine version (unknown plugins add nothing).

    The engine version picks the Falco release's catalog (``versions.release_for``): Falco 0.40's was
    listed by that Falco itself (``data/fields-0.40.json``), with the container fields built in; from
    0.41 on they come with the container plugin.
    """
    if engine is None:
        release = versions.releases()[-1]
    else:
        release = versions.release_for(".".join(str(x) for x in engine))
    return _catalog(tuple(sorted(set(plugins))), release.fields, release.container_fields_in_core)


# -- Values against field types (a port of libsinsp's ``sinsp_filter_value_parser::string_to_rawval``) -----

#: ``sscanf("%d%c")`` / ``sscanf("%u%c")`` accept leading blanks, a sign and digits, and nothing after them.
_INTEGER = re.compile(r"[ \t\n\r\f\v]*[+-]?[0-9]+")
_SIGNED = frozenset({"INT8", "INT16", "INT32", "INT64", "FD", "ERRNO", "PID"})
_UNSIGNED = frozenset({
    "UINT8", "UINT16", "UINT32", "UINT64", "RELTIME", "ABSTIME", "MODE", "FLAGS8", "FLAGS16", "FLAGS32",
    "ENUMFLAGS8", "ENUMFLAGS16", "ENUMFLAGS32", "L4PROTO", "UID", "GID", "SIGTYPE", "SYSCALLID",
})


def value_error(ftype: str, value: str) -> str | None:
    """Falco's message when ``value`` cannot be read as a constant of field type ``ftype``, else None.

    Falco parses every constant of a check when it compiles the condition (libs ``value_parser.cpp``,
    ``tuples.cpp``, ``utils.cpp`` ``sinsp_numparser`` at 0.20.0, unchanged to 0.25.4), so ``proc.pid = abc``
    or ``fd.net = 10.0.0.0/99`` is a compile error, not a check that never matches. ``DOUBLE`` is read as
    an integer (libs never parsed floating point constants). Types without parsing (strings, buffers,
    dynamic) accept anything.
    """
    if ftype in _SIGNED or ftype in _UNSIGNED or ftype == "DOUBLE":
        return None if _INTEGER.fullmatch(value) else f"{value} is not a valid number"
    if ftype == "BOOL":
        return None if value in ("true", "false") else f"filter error: unrecognized boolean value {value}"
    if ftype == "PORT":
        # Digits, or a service name looked up with getservbyname (/etc/services of the Falco host):
        # names are accepted here, as the host's services table is not known.
        return None if value == "" or value.isdigit() or re.fullmatch(r"[A-Za-z][A-Za-z0-9._+-]*", value) else (
            f"unrecognized protocol {value}")
    if ftype in ("IPADDR", "IPV4ADDR", "IPV6ADDR"):
        return _ip_error(value, ftype)
    if ftype in ("IPNET", "IPV4NET", "IPV6NET"):
        return _net_error(value)
    return None


def _inet(version: int, text: str) -> bool:
    """Whether glibc's ``inet_pton`` reads ``text`` as an address of that IP version (strict dotted quad,
    no leading zeros, no IPv6 zone)."""
    if "%" in text:
        return False
    try:
        if version == 4:
            ipaddress.IPv4Address(text)
        else:
            ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _ip_error(value: str, ftype: str) -> str | None:
    if ftype == "IPV4ADDR" or (ftype == "IPADDR" and "." in value):
        return None if _inet(4, value) else f"unrecognized IPv4 address {value}"
    return None if _inet(6, value) else f"unrecognized IPv6 address {value}"


def _parseu8(text: str) -> int | None:
    """libs ``parseu8``: ``sscanf("%u")`` then a cast to uint8 (so 300 reads as 44); None when not a number."""
    if not _INTEGER.fullmatch(text):
        return None
    return int(text.strip()) % 256


def _net_error(value: str) -> str | None:
    if "." in value:
        if "/" not in value:
            return f"unrecognized IP network {value}"
        ip, mask = value.split("/", 1)
        if not _inet(4, ip):
            return f"unrecognized IP address {value}"
        bits = _parseu8(mask)
        if bits is None:
            return f"{mask} is not a valid number"
        return f"invalid netmask {mask}" if bits > 32 else None
    if "/" not in value:
        return f"invalid v6 netmask: {value}"
    ip, mask = value.split("/", 1)
    if not _inet(6, ip):
        return f"unrecognized IPv6 address {value}"
    bits = _parseu8(mask)
    if bits is None:
        return f"{mask} is not a valid number"
    return f"invalid v6 netmask {mask}" if bits == 0 or bits > 128 else None


def hex_error(value: str) -> str | None:
    """``bcontains`` / ``bstartswith`` take an even-length hex string (libs ``sinsp_utils::unhex``)."""
    if len(value) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in value):
        return None
    return "filter error: bcontains and bstartswith operator support hex strings only"
