"""Spread the published files over ConfigMaps that one projected volume mounts together.

A ConfigMap is limited to 1 MiB; Padlock keeps each one under ``DEFAULT_LIMIT`` (900 KiB of keys and
values) so metadata always fits. Whole files are packed greedily in key order into ``padlock-rules``,
``padlock-rules-1``, ... and never split, so key order (Falco's load order inside ``rules.d``) is
the same across shards: every key of shard i sorts before every key of shard i+1. Each shard is
annotated with its index, the shard count and the content hash of the whole set, so a consumer can
tell that all shards belong to one render (docs/falco-integration.md shows the projected volume).

Who calls it: ``padlock.core.effective.render``. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Default bytes of data (keys + values, UTF-8) per ConfigMap: well under the 1 MiB object limit.
DEFAULT_LIMIT = 900 * 1024
SHARD_INDEX = "padlock.dev/shard-index"
SHARD_COUNT = "padlock.dev/shard-count"


class FileTooLarge(ValueError):
    """A single file exceeds the per-ConfigMap limit: it cannot be published without splitting it."""


@dataclass(frozen=True)
class Shard:
    name: str
    index: int
    data: dict[str, str]


def shard_name(base: str, index: int) -> str:
    return base if index == 0 else f"{base}-{index}"


def size_of(key: str, value: str) -> int:
    return len(key.encode()) + len(value.encode())


def shard(files: Mapping[str, str], base: str = "padlock-rules", limit: int = DEFAULT_LIMIT) -> list[Shard]:
    """Pack files (in sorted key order) into as few shards as the limit allows; one shard at least."""
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
    return [Shard(shard_name(base, i), i, data) for i, data in enumerate(shards)]
