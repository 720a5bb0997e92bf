"""``padlock.flows.sandbox``: a new release is read in a forked child with memory and CPU limits.

Covers: a good upstream file passes; a release whose reading needs more memory than the child may
use is refused naming the limit (a real child, a real RLIMIT_AS); ``SandboxedSources.fetch`` returns
the bundle only after the check and leaves ``resolve``/``fetch_current`` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from padlock.devenv.paths import upstream_rules_dir
from padlock.flows import sandbox

UPSTREAM = (upstream_rules_dir() / "falco-rules-3.2.0" / "falco_rules.yaml").read_text()


def test_a_good_release_passes_the_sandbox() -> None:
    sandbox.check_files("src", "ref", [("falco_rules.yaml", UPSTREAM)])


def test_a_release_that_needs_more_memory_than_the_child_may_use_is_refused() -> None:
    # 240k list items: well over 100 MB to read; the child may map only 60 MB in all.
    big = "- list: l\n  items: [" + ",".join(f"item{i}" for i in range(240_000)) + "]\n"
    with pytest.raises(sandbox.SandboxRejected) as err:
        sandbox.check_files("src", "ref", [("big.yaml", big)], memory=60 * 1024 * 1024)
    assert err.value.reason == "ValidationFailed"
    assert "60 MiB" in err.value.problem


@dataclass
class _File:
    name: str
    text: str


@dataclass
class _Bundle:
    files: tuple[_File, ...]


class _Inner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[str] = []

    def resolve(self, source: dict[str, Any]) -> str:
        self.calls.append("resolve")
        return "candidate"

    def fetch(self, source: dict[str, Any], candidate: Any) -> _Bundle:
        self.calls.append("fetch")
        return _Bundle((_File("r.yaml", self.text),))

    def fetch_current(self, source: dict[str, Any]) -> None:
        self.calls.append("fetch_current")


def test_sandboxed_sources_check_only_new_releases() -> None:
    inner = _Inner(UPSTREAM)
    port = sandbox.SandboxedSources(inner)
    src = {"metadata": {"name": "src"}}
    assert port.resolve(src) == "candidate"
    assert port.fetch(src, "candidate").files[0].text == UPSTREAM
    assert port.fetch_current(src) is None
    assert inner.calls == ["resolve", "fetch", "fetch_current"]
