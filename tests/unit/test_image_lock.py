"""The operator image's lock (image/requirements.lock) matches pyproject.toml.

Covers: every runtime dependency declared in ``[project.dependencies]`` is pinned in the lock with
``==`` at a version its specifier allows, every lock line carries a sha256, and no distribution is
pinned twice; so a dependency added or tightened without `make image-lock` fails here, not in the
image at run time. (The lock's transitive pins come from pip's resolver, run by image/lock.py.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK_LINE = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+) --hash=sha256:(?P<sha>[0-9a-f]{64})$")


def locked() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "image" / "requirements.lock").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        match = LOCK_LINE.match(line)
        assert match, f"image/requirements.lock: not `name==version --hash=sha256:<64 hex>`: {line!r}"
        name = canonicalize_name(match["name"])
        assert name not in pins, f"image/requirements.lock pins {name} twice"
        pins[name] = Version(match["version"])
    return pins


def test_every_declared_dependency_is_pinned_in_the_image_lock_within_its_specifier() -> None:
    pins = locked()
    for dependency in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is declared in pyproject.toml but not in image/requirements.lock: make image-lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"image/requirements.lock pins {name}=={pins[name]}, outside pyproject.toml's {requirement.specifier}:"
            " make image-lock")


def test_the_image_lock_does_not_pin_padlock_itself() -> None:
    assert "padlock" not in locked(), "the padlock wheel is built from the checkout by image/build.sh"
