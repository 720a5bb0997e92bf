"""Engine and plugin versions: parse and compare Falco's version strings.

Used by the loader to check ``required_engine_version`` and ``required_plugin_versions``, and by the
collector, compiler and field catalog to pick the tables of the Falco release being validated for
(``release_for``: override keys, deprecations, which catalog; data in ``data/falco_versions.json``). Falco reads an
integer engine version ``N`` as ``0.N.0`` and treats a requirement as met when the major versions are
equal and the running version is at least the required one (``sinsp_version::compatible_with``).

The one place Padlock compares engine versions: the loader, the field catalog, the CLI and the early
gate of ``padlock.sources.requirements`` all call ``parse``, ``compatible`` and ``highest`` here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")

#: The newest engine version the field catalog describes (Falco 0.44.x); default for validation.
NEWEST_ENGINE_VERSION = "0.62.0"


def parse(text: str) -> tuple[int, int, int] | None:
    """``"0.57.0"`` -> ``(0, 57, 0)``; ``None`` when the text is not semver."""
    m = _SEMVER.match(text.strip())
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def normalise_engine_version(value: object) -> str | None:
    """An engine version as written in a rules file -> ``"X.Y.Z"``; integers ``N`` become ``0.N.0``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"0.{value}.0" if value >= 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return f"0.{int(text)}.0"
        return text if parse(text) is not None else None
    return None


def highest(candidates: Iterable[str]) -> str | None:
    """The newest of ``candidates`` as written (the first of equals); unparseable ones are skipped."""
    best: tuple[tuple[int, int, int], str] | None = None
    for text in candidates:
        parsed = parse(text)
        if parsed is not None and (best is None or parsed > best[0]):
            best = (parsed, text)
    return best[1] if best is not None else None


def compatible(running: str, required: str) -> bool:
    """True when ``running`` satisfies ``required``: same major, and at least as new."""
    r = parse(running)
    q = parse(required)
    if r is None or q is None:
        return False
    return r[0] == q[0] and r >= q


#: Condition-language features and the first engine version that has them (rules-format notes §8.3):
#: feature -> (engine version, Falco release).
FEATURES: dict[str, tuple[str, str]] = {
    "val": ("0.40.0", "Falco 0.38"),
    "tolower": ("0.40.0", "Falco 0.38"),
    "toupper": ("0.40.0", "Falco 0.38"),
    "b64": ("0.40.0", "Falco 0.38"),
    "basename": ("0.40.0", "Falco 0.38"),
    "len": ("0.40.0", "Falco 0.38"),
    "regex": ("0.43.0", "Falco 0.39"),
    "join": ("0.62.0", "Falco 0.44"),
    "concat": ("0.62.0", "Falco 0.44"),
    "getopt": ("0.62.0", "Falco 0.44"),
    "oneof": ("0.62.0", "Falco 0.44"),
    "anyof": ("0.62.0", "Falco 0.44"),
    "allof": ("0.62.0", "Falco 0.44"),
}


def missing_feature(feature: str, engine: str) -> str | None:
    """A message when ``engine`` predates ``feature`` (an operator, modifier or transformer), else None."""
    spec = FEATURES.get(feature)
    if spec is None or compatible(engine, spec[0]):
        return None
    return f"'{feature}' requires engine version {spec[0]} ({spec[1]}), but engine version is {engine}"


# -- What each Falco release changes (data/falco_versions.json) -------------------------------------


@dataclass(frozen=True)
class Release:
    """One Falco release as a validator sees it: its engine, tables and catalog (``data/falco_versions.json``)."""

    falco: str
    engine: str
    libs: str
    container_plugin: str | None
    container_fields_in_core: bool
    fields: str
    rule_keys_added: frozenset[str]
    rule_append: frozenset[str]
    rule_replace: frozenset[str]
    deprecated_fields: Mapping[str, str]
    deprecated_output_tokens: Mapping[str, str]
    unknown_key_warning: bool
    exceptions_replace_without_existing_crashes: bool
    changes: tuple[str, ...]

    @property
    def override_keys(self) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
        """Item kind -> (keys that may be appended, keys that may be replaced), as this release's reader has them."""
        return {
            "list": (frozenset({"items"}), frozenset({"items"})),
            "macro": (frozenset({"condition"}), frozenset({"condition"})),
            "rule": (self.rule_append, self.rule_replace),
        }


@cache
def releases() -> tuple[Release, ...]:
    """Every supported Falco release, oldest first."""
    text = resources.files("padlock.engine").joinpath("data/falco_versions.json").read_text(encoding="utf-8")
    raw: dict[str, Any] = json.loads(text)
    out = []
    for r in raw["releases"]:
        out.append(Release(
            falco=r["falco"], engine=r["engine"], libs=r["libs"], container_plugin=r["container_plugin"],
            container_fields_in_core=bool(r["container_fields_in_core"]), fields=r["fields"],
            rule_keys_added=frozenset(r["rule_keys_added"]),
            rule_append=frozenset(r["override"]["rule_append"]), rule_replace=frozenset(r["override"]["rule_replace"]),
            deprecated_fields=dict(r["deprecated_fields"]), deprecated_output_tokens=dict(r["deprecated_output_tokens"]),
            unknown_key_warning=bool(r["unknown_key_warning"]),
            exceptions_replace_without_existing_crashes=bool(r["exceptions_replace_without_existing_crashes"]),
            changes=tuple(r["changes"]),
        ))
    return tuple(sorted(out, key=lambda r: parse(r.engine) or (0, 0, 0)))


def release_provenance() -> dict[str, Any]:
    text = resources.files("padlock.engine").joinpath("data/falco_versions.json").read_text(encoding="utf-8")
    prov: dict[str, Any] = json.loads(text)["provenance"]
    return prov


def supported_engine_versions() -> tuple[str, ...]:
    """The engine versions of the supported Falco releases, oldest first."""
    return tuple(r.engine for r in releases())


@cache
def release_for(engine: str) -> Release:
    """The Falco release whose tables apply to ``engine``: the newest one at or below it.

    An engine older than the oldest supported release gets the oldest one's tables (Padlock supports
    Falco 0.40 and later; ``docs/falco-versions.md``); a newer engine gets the newest release's.
    """
    wanted = parse(engine)
    chosen = releases()[0]
    if wanted is None:
        return releases()[-1]
    for r in releases():
        v = parse(r.engine)
        if v is not None and v <= wanted:
            chosen = r
    return chosen
