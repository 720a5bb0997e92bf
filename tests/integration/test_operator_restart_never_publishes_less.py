"""A restart never publishes less: the operator is SIGKILLed at random points of a sync loop and
restarted, over and over, while every version of the published ConfigMap is watched.

Two RuleSources (``main`` and ``extra``, two repositories of the real OCI registry) are adopted;
then, ``PADLOCK_RESTART_ITERATIONS`` times (default 5; the acceptance run uses 50), a new release
of ``main`` is pushed, the operator is killed with SIGKILL after a random delay (seeded, printed)
and started again. A ``kubectl get -w`` watch records every version of ``padlock-rules`` written
meanwhile: each must hold the files of both sources (before the fix, an adoption right after a
restart published without the source not restored yet). At the end the system converges: the
last release of ``main`` is adopted and both sources are in the ConfigMap.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from padlock.devenv import artifacts
from support_operator import (
    RULES,
    ConfigMapWatch,
    RunningOperator,
    rule_source,
    running_operator,
    wait_for,
)

ITERATIONS = int(os.environ.get("PADLOCK_RESTART_ITERATIONS", "5"))
SEED = int(os.environ.get("PADLOCK_RESTART_SEED", str(random.randrange(1 << 30))))
EXTRA_RULES = ("- rule: Extra source rule\n  desc: from the extra source\n  condition: evt.type = execve and "
               "proc.name = extra-only\n  output: extra %proc.name\n  priority: INFO\n")


def sources_in(data: dict[str, str]) -> set[str]:
    return {name for name in ("main", "extra") if any(f"-{name}-" in key for key in data)}


def _written(obj: dict[str, Any]) -> tuple[str, set[str]]:
    """(resourceVersion, the sources whose files one version of the published ConfigMap holds)."""
    return obj["metadata"]["resourceVersion"], sources_in(obj.get("data") or {})


@pytest.fixture(scope="module")
def two_sources(control_plane: Any, kubectl: Any, registry: str, crds_installed: list[str], operator_rbac: Any,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOperator]:
    workdir = tmp_path_factory.mktemp("operator-restarts")
    extra_repo = f"rules/extra-{random.randrange(1 << 20):x}"
    artifacts.push_rules_artifact(registry, extra_repo, "1.0.0", {"extra_rules.yaml": EXTRA_RULES})
    with running_operator(control_plane, kubectl, registry, workdir, source="main",
                          cleanup=[("delete", "rulesource", "extra", "--wait=false"),
                                   ("patch", "rulesource", "extra", "--type=merge", "-p",
                                    '{"metadata":{"finalizers":null}}')]) as running:
        running.user.apply(rule_source("extra", registry, extra_repo, loadOrder=60))
        wait_for("both sources published", lambda: sources_in((running.user.configmap() or {}).get("data") or {})
                 == {"main", "extra"}, timeout=180)
        yield running


@pytest.mark.timeout(240 + 60 * ITERATIONS)  # one restart takes up to a minute on a loaded machine
def test_no_published_version_lacks_a_source_across_random_sigkill_restarts(
        two_sources: RunningOperator, kubectl: Any) -> None:
    running, user = two_sources, two_sources.user
    rng = random.Random(SEED)
    print(f"restart test: {ITERATIONS} iterations, seed {SEED}")
    watch = ConfigMapWatch(kubectl, str(running.control_plane.kubeconfig("admin")), _written)
    time.sleep(1.0)  # the watch lists the current version first
    last = ""
    try:
        for i in range(ITERATIONS):
            last = f"1.{i + 1}.0"
            release = "v2" if i % 2 == 0 else "v1"
            files = {p.name: p.read_text() for p in sorted((RULES / release).glob("*.yaml"))}
            artifacts.push_rules_artifact(running.registry, running.repository, last, files)
            time.sleep(rng.uniform(0.0, 4.0))
            assert running.op.proc is not None
            running.op.proc.kill()  # SIGKILL: no cleanup, wherever the sync was
            running.op.proc.wait(10)
            running.op = running._process(running.workdir / f"operator-{i}.log").start()
            running.op.wait_ready(180)
        wait_for(f"{last} adopted after the last restart",
                 lambda: user.status("rulesource", "main").get("currentVersion") == last, timeout=240)
        wait_for("both sources in the final ConfigMap",
                 lambda: sources_in((user.configmap() or {}).get("data") or {}) == {"main", "extra"})
        time.sleep(2.0)  # let the watch catch up with the last writes
    finally:
        watch.stop()
    assert watch.seen, "the watch saw the ConfigMap"
    lacking = [(rv, found) for rv, found in watch.seen if found != {"main", "extra"}]
    assert not lacking, f"published versions without a source (seed {SEED}): {lacking}"
