"""The order Falco reads a rules directory, and the published keys that make it Padlock's load order.

Falco expands a ``rules_files`` directory to its top-level ``.yaml``/``.yml`` files sorted by full
path (``read_rules_file_directory``: ``std::sort`` of the path strings, i.e. byte order) and loads
them in that order. Every shard of the published ruleset is mounted through one projected volume into
one directory, so the order Falco reads is the byte order of the keys across all shards.

Padlock's keys make that order the intended one whatever the RuleSources are called:

* upstream files are ``<loadOrder:02d>-<source>-<file>``: they always start with two digits;
* the generated policy layer is ``padlock-policies.yaml`` (continued in ``padlock-policies_002.yaml``,
  ...): it starts with a letter, which sorts after every digit, so it loads after every upstream file
  (a RuleSource with ``loadOrder: 99`` named ``vendor`` gives ``99-vendor-...``, still before it), and
  its parts load in order because ``.`` sorts before ``_``.

``read_order`` is what the renderer checks its validation order against and what ``padlock
validate`` uses for a directory, so what is validated is what Falco reads.

Who calls it: ``padlock.policy.effective`` and ``padlock.cli.objects``. Pure.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

#: Where the Falco chart mounts the published ConfigMaps (docs/falco-integration.md).
MOUNT = "/etc/falco/rules.d"


def path_key(path: str) -> bytes:
    """The sort key Falco uses for a rules file path: its bytes (as the file system stores them)."""
    return os.fsencode(path)


def read_order(keys: Iterable[str], mount: str = MOUNT) -> list[str]:
    """``keys`` (file names in one mounted directory) in the order Falco reads them."""
    return sorted(keys, key=lambda k: path_key(f"{mount.rstrip('/')}/{k}"))


def upstream_key(load_order: int, source: str, fname: str) -> str:
    """The key of an upstream rules file: ``<loadOrder:02d>-<source>-<basename>``."""
    return f"{load_order:02d}-{source}-{fname.rsplit('/', 1)[-1]}"


def layer_key(index: int) -> str:
    """The key of part ``index`` (0-based) of the generated policy layer."""
    return LAYER_KEY if index == 0 else f"padlock-policies_{index + 1:03d}.yaml"


LAYER_KEY = "padlock-policies.yaml"
