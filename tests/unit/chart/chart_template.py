"""``helm template`` of charts/padlock with the real helm binary, for the chart unit tests.

One place for the isolated helm environment (a throwaway HOME, no repositories, no network) and for
turning the rendered stream into documents."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from padlock.devenv import tools

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "padlock"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with a throwaway HOME and cache, so nothing of the machine's helm setup counts."""
    with tempfile.TemporaryDirectory(prefix="padlock-helm-") as home:
        env = {"HOME": home, "HELM_CACHE_HOME": home, "HELM_CONFIG_HOME": home, "HELM_DATA_HOME": home,
               "PATH": "/usr/bin:/bin"}
        return subprocess.run([str(tools.find("helm")), *args], capture_output=True, text=True, env=env,
                              timeout=120, check=False)


def template_args(*sets: str, files: tuple[Path, ...] = (), template: str | None = None,
                  release: str = "padlock", namespace: str = "padlock-system") -> list[str]:
    args = ["template", release, str(CHART), "--namespace", namespace]
    for f in files:
        args += ["-f", str(f)]
    for s in sets:
        args += ["--set", s]
    if template:
        args += ["--show-only", template]
    return args


def render(*sets: str, files: tuple[Path, ...] = (), template: str | None = None, release: str = "padlock",
           namespace: str = "padlock-system") -> list[dict[str, Any]]:
    """The chart's documents for these values; a failed render fails the test with helm's message."""
    result = helm(*template_args(*sets, files=files, template=template, release=release, namespace=namespace))
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def of(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]
