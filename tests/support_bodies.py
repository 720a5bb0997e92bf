"""Object bodies edited for a test: ``edited(body, "spec.reason", DELETE)`` and the like.

Used by the schema tests that feed one broken field to the models (tests/unit/api) and to the API
server (tests/integration/test_crds.py), so both sides get the same edit of the same example.
"""

from __future__ import annotations

import copy
from typing import Any

DELETE: Any = object()
"""Value for ``edited`` that removes the field instead of setting it."""


def edited(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``body`` with the dotted ``path`` set to ``value`` (removed when ``DELETE``)."""
    out = copy.deepcopy(body)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return out
