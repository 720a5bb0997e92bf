"""Spread the published files over ConfigMaps that one projected volume mounts together.

A ConfigMap is limited to 1 MiB; Padlock keeps each one under ``DEFAULT_LIMIT`` (900 KiB of keys and
values) so metadata always fits. Whole files are packed greedily in key order into ``padlock-rules``,
``padlock-rules-1``, ... and never split, so key order (Falco's load order inside ``rules.d``) is
the same across shards: every key of shard i sorts before every key of shard i+1. Each shard is
annotated with its index, the shard count and the content hash of the whole set, so a consumer can
tell that all shards belong to one render (docs/falco-integration.md shows the projected volume).

At most ``max_shards`` ConfigMaps are ever produced: that is how many the Falco mount declares (the
projected volume in docs/falco-integration.md lists ``padlock-rules`` and ``-1`` to ``-3``; a fifth
ConfigMap would never reach Falco). The renderer decides beforehand what fits (``Packer`` places
files exactly as ``shard`` will, and ``effective`` leaves out what does not fit, by precedence:
docs/limits.md); ``shard`` refuses, rather than produce, a set that would need more.

Who calls it: ``padlock.policy.effective.render``. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from padlock.api import kinds

#: Default bytes of data (keys + values, UTF-8) per ConfigMap: well under the 1 MiB object limit.
DEFAULT_LIMIT = 900 * 1024
#: ConfigMaps the Falco mount declares by default (``padlock-rules``, ``padlock-rules-1`` .. ``-3``).
DEFAULT_MAX_SHARDS = kinds.DEFAULT_RULES_SHARDS + 1
#: Default per-object limit: bytes one object's items may take in the generated layer (docs/limits.md).
DEFAULT_MAX_OBJECT_BYTES = 256 * 1024
#: Default per-namespace limit: bytes all PolicyExceptions of one namespace may take together.
DEFAULT_MAX_NAMESPACE_BYTES = 512 * 1024
SHARD_INDEX = "padlock.dev/shard-index"
SHARD_COUNT = "padlock.dev/shard-count"


class FileTooLarge(ValueError):
    """A single file exceeds the per-ConfigMap limit: it cannot be published without splitting it."""


class TooManyShards(ValueError):
    """The files need more ConfigMaps than the Falco mount declares: some would never reach Falco."""


@dataclass(frozen=True)
class Shard:
    name: str
    index: int
    data: dict[str, str]


def shard_name(base: str, index: int) -> str:
    return base if index == 0 else f"{base}-{index}"


def size_of(key: str, value: str) -> int:
    return len(key.encode()) + len(value.encode())


def shard(
    files: Mapping[str, str], base: str = "padlock-rules", limit: int = DEFAULT_LIMIT, max_shards: int | None = None
) -> list[Shard]:
    """Pack files (in sorted key order) into as few shards as the limit allows; one shard at least.

    ``max_shards``: raise ``TooManyShards`` instead of producing more ConfigMaps than that.
    """
    shards: list[dict[str, str]] = [{}]
    used = 0
    for key in sorted(files):
        size = size_of(key, files[key])
        if size > limit:
            raise FileTooLarge(f"file {key} is {size} bytes, larger than the {limit}-byte ConfigMap limit")
        if used + size > limit and shards[-1]:
            shards.append({})
            used = 0
        shards[-1][key] = files[key]
        used += size
    if max_shards is not None and len(shards) > max_shards:
        raise TooManyShards(
            f"the ruleset needs {len(shards)} ConfigMaps of {limit} bytes, more than the {max_shards} the Falco mount declares"
        )
    return [Shard(shard_name(base, i), i, data) for i, data in enumerate(shards)]


@dataclass
class Packer:
    """Where ``shard`` will put files, placed one at a time, without building them.

    ``count`` shards are open (shard() always opens the first), ``used`` bytes are in the last one.
    ``place`` adds a whole file as shard() would; ``grow`` adds bytes to the file placed last while
    it still fits its shard (the renderer pours the generated layer in item by item). Both return
    False, changing nothing, when that needs a shard beyond ``max_shards`` or a file over ``limit``.
    """

    limit: int
    max_shards: int
    count: int = 1
    used: int = 0

    def place(self, size: int) -> bool:
        if self.used == 0 or self.used + size <= self.limit:
            if self.used + size > self.limit:
                return False  # an empty shard and still too large: FileTooLarge in shard()
            self.used += size
            return True
        if size > self.limit or self.count >= self.max_shards:
            return False
        self.count += 1
        self.used = size
        return True

    def grow(self, size: int) -> bool:
        if self.used + size > self.limit:
            return False
        self.used += size
        return True

    def room(self, overhead: int, item: int) -> int:
        """Bytes of items guaranteed to fit from here, whatever their order, when no item is larger
        than ``item`` and each shard's file costs ``overhead``: next-fit leaves less than one item
        free in a shard it moves on from, so each shard holds at least ``room - overhead - item``."""
        free = (self.limit - self.used, *([self.limit] * (self.max_shards - self.count)))
        return sum(max(0, f - overhead - item) for f in free)
