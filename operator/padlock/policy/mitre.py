"""MITRE ATT&CK names for a rule's tags: ``mitre_credential_access`` -> TA0006 Credential Access,
``T1552.001`` -> Unsecured Credentials: Credentials In Files.

The table ships as package data (``padlock/policy/data/mitre_attack.yaml``) with its provenance (source,
ATT&CK version, url); an id missing from it is reported without a name, never guessed.

Who calls it: ``padlock explain`` and ``padlock show``. Pure apart from reading the packaged table once.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")


@dataclass(frozen=True)
class Attack:
    """What a rule's tags say in ATT&CK terms."""

    tactics: tuple[tuple[str, str, str], ...]  # (tag, id, name)
    techniques: tuple[tuple[str, str], ...]  # (id, name; "" when not in the table)

    def to_json(self) -> dict[str, Any]:
        return {
            "tactics": [{"tag": t, "id": i, "name": n} for t, i, n in self.tactics],
            "techniques": [{"id": i, "name": n} for i, n in self.techniques],
        }


@functools.cache
def table() -> dict[str, Any]:
    """The packaged table: ``source``, ``version``, ``url``, ``tactics``, ``techniques``."""
    text = resources.files("padlock.policy").joinpath("data/mitre_attack.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.load(text, Loader=yaml.CSafeLoader)
    return data


def provenance() -> str:
    """``MITRE ATT&CK Enterprise v15.1 (https://attack.mitre.org)``."""
    t = table()
    return f"{t['source']} v{t['version']} ({t['url']})"


def technique_name(tid: str) -> str:
    """``Unsecured Credentials: Credentials In Files`` for ``T1552.001``; "" when unknown."""
    names = table()["techniques"]
    name = str(names.get(tid, ""))
    if name and "." in tid:
        parent = str(names.get(tid.split(".")[0], ""))
        return f"{parent}: {name}" if parent else name
    return name


def attack(tags: Sequence[str]) -> Attack:
    """The tactics (``mitre_*`` tags) and techniques (``T1234``/``T1234.001`` tags) in ``tags``."""
    tactics_table = table()["tactics"]
    tactics = []
    for tag in tags:
        if tag.startswith("mitre_"):
            tid, name = tactics_table.get(tag, ("", ""))
            tactics.append((tag, str(tid), str(name)))
    techniques = tuple((t, technique_name(t)) for t in tags if _TECHNIQUE.match(t))
    return Attack(tuple(tactics), techniques)
