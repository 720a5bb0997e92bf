"""Engine and plugin versions: parse and compare Falco's version strings.

Used by the loader to check ``required_engine_version`` and ``required_plugin_versions``. Falco reads an
integer engine version ``N`` as ``0.N.0`` and treats a requirement as met when the major versions are
equal and the running version is at least the required one (``sinsp_version::compatible_with``).
"""

from __future__ import annotations

import re

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
