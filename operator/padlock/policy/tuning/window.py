"""Bounded counting for the tuner: sliding-window counters, an LRU of keys, per-client token buckets.

The window counter is the two-bucket estimate (the current fixed window plus the previous one weighted
by how much of it still overlaps the sliding window): three numbers per key instead of a timestamp per
alert, so a million distinct keys offered cost only what the LRU keeps. Pure: callers pass ``now``
(seconds, any monotonic or epoch origin, the same for every call).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class WindowCounter:
    """Events in the last ``window`` seconds, estimated from two fixed buckets."""

    __slots__ = ("current", "previous", "start")

    def __init__(self, now: float, window: float) -> None:
        self.start = now - (now % window)
        self.current = 0
        self.previous = 0

    def _roll(self, now: float, window: float) -> None:
        elapsed = now - self.start
        if elapsed < window:
            return
        if elapsed < 2 * window:
            self.previous, self.current = self.current, 0
            self.start += window
        else:
            self.previous = self.current = 0
            self.start = now - (now % window)

    def add(self, now: float, window: float, n: int = 1) -> None:
        self._roll(now, window)
        self.current += n

    def value(self, now: float, window: float) -> float:
        self._roll(now, window)
        overlap = max(0.0, 1.0 - (now - self.start) / window)
        return self.current + self.previous * overlap


class Lru(Generic[K, V]):
    """A dict holding at most ``capacity`` keys; the least recently used goes first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("an LRU needs a capacity of at least 1")
        self.capacity = capacity
        self._data: OrderedDict[K, V] = OrderedDict()
        self.evicted = 0

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def get_or_add(self, key: K, make: Callable[[], V]) -> V:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
            return value
        value = make()
        self._data[key] = value
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)
            self.evicted += 1
        return value

    def pop(self, key: K) -> V | None:
        return self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def items(self) -> Iterator[tuple[K, V]]:
        return iter(list(self._data.items()))


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Token buckets per client (``rate`` per second, ``burst`` at most), over a bounded set of clients."""

    def __init__(self, rate: float, burst: float, *, max_clients: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clients: Lru[str, _Bucket] = Lru(max_clients)

    def allow(self, client: str, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens from ``client``'s bucket; False (nothing taken) when it has too few."""
        bucket = self._clients.get_or_add(client, lambda: _Bucket(self.burst, now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens < cost:
            return False
        bucket.tokens -= cost
        return True
