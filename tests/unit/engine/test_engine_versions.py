"""``padlock.engine.versions``: the one engine-version comparison.

Covers: integer engine versions read as ``0.N.0``, Falco's compatibility rule (same major, at least as
new, numeric not textual), and ``highest`` picking the newest requirement as written.
"""

from __future__ import annotations

from padlock.engine import versions


def test_integer_engine_versions_mean_zero_n_zero_and_junk_is_none() -> None:
    assert [versions.normalise_engine_version(v) for v in (26, "26", " 0.57.0 ", "v1", True, -1, 0.5)] == [
        "0.26.0", "0.26.0", "0.57.0", None, None, None, None]


def test_compatible_needs_the_same_major_and_compares_numerically() -> None:
    assert versions.compatible("0.10.0", "0.9.0")
    assert not versions.compatible("0.9.0", "0.10.0")
    assert not versions.compatible("1.0.0", "0.57.0")
    assert not versions.compatible("junk", "0.1.0")


def test_highest_is_the_newest_as_written_and_skips_unreadable_ones() -> None:
    assert versions.highest(["0.9.0", "junk", "0.10.0", "0.10.0-rc1"]) == "0.10.0"
    assert versions.highest(["junk"]) is None and versions.highest([]) is None
