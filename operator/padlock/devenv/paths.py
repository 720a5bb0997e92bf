"""Where development files live: the per-user cache directory and the source checkout.

Called by the binary, tool and registry lookups. The cache matches ``tests/controlplane/build.sh``:
``$PADLOCK_CACHE``, else ``$XDG_CACHE_HOME/padlock``, else ``~/.cache/padlock``. It lives outside the
repository so fresh clones (CI) reuse built binaries.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from padlock.devenv.errors import MissingComponentError

# A file that only the padlock source checkout has, used to recognise its root.
_REPO_MARKER = Path("tests/controlplane/build.sh")


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The per-user cache directory (not created)."""
    env = os.environ if env is None else env
    if env.get("PADLOCK_CACHE"):
        return Path(env["PADLOCK_CACHE"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "padlock"


def repo_root(env: Mapping[str, str] | None = None) -> Path | None:
    """The root of the padlock source checkout, or None when running from an installed copy.

    ``$PADLOCK_REPO`` wins; otherwise the checkout this module was imported from (editable install),
    then the current directory and its parents.
    """
    env = os.environ if env is None else env
    candidates: list[Path] = []
    if env.get("PADLOCK_REPO"):
        candidates.append(Path(env["PADLOCK_REPO"]))
    # operator/padlock/devenv/paths.py -> parents[3] is the repository root in a source checkout.
    candidates.append(Path(__file__).resolve().parents[3])
    cwd = Path.cwd().resolve()
    candidates.extend([cwd, *cwd.parents])
    for candidate in candidates:
        if (candidate / _REPO_MARKER).is_file():
            return candidate
    return None


def upstream_rules_dir(env: Mapping[str, str] | None = None) -> Path:
    """The vendored upstream rules corpus (every falcosecurity/rules release and ``manifest.json``).

    ``tests/data/upstream-rules`` in the source checkout (with its license and provenance in
    ``tests/data/README.md``), so a clone alone runs every test and bench. Used by the tests and
    benchmarks that run on real upstream files; an installed copy has no corpus.
    """
    root = repo_root(env)
    path = (root or Path(__file__).resolve().parents[3]) / "tests" / "data" / "upstream-rules"
    if not (path / "manifest.json").is_file():
        raise MissingComponentError(
            f"upstream rules corpus not found at {path}: it is vendored in the source checkout under "
            "tests/data/upstream-rules (run from a clone of the repository)"
        )
    return path
