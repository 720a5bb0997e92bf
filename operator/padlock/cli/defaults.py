"""Defaults every offline command shares, so ``validate``, ``diff``, ``render`` (and ``explain``,
``show``) judge the same rules the same way.

* plugins: the set the Falco chart's default values load (``tests/data/falco-chart``, chart 9.1.0,
  Falco 0.44.1: ``collectors.containerEngine`` is enabled with the container plugin 0.7.1; no other
  collector is on by default). A unit test reads the vendored chart and checks this table against it.
* output: ``-o text|json|yaml``; text for people, json and yaml the same data for programs.

Who calls it: the ``padlock`` subcommands. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Final

import click
import yaml

#: Plugins (name -> version) Falco loads with the Falco chart's default values.
CHART_PLUGINS: Final = {"container": "0.7.1"}
OUTPUTS: Final = ("text", "json", "yaml")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def engine_version(value: str | None) -> str | None:
    """``--engine-version`` checked (X.Y.Z) for every command that takes it."""
    if value is not None and not _VERSION.match(value):
        raise click.BadParameter(f'"{value}": expected X.Y.Z, e.g. 0.43.0', param_hint="--engine-version")
    return value


def plugins(values: Sequence[str]) -> dict[str, str]:
    """``--plugin NAME=X.Y.Z`` values as a map; none given: ``CHART_PLUGINS``."""
    if not values:
        return dict(CHART_PLUGINS)
    out: dict[str, str] = {}
    for value in values:
        name, sep, version = value.partition("=")
        if not sep or not name or not _VERSION.match(version):
            raise click.BadParameter(f'"{value}": expected NAME=X.Y.Z, e.g. container=0.7.1', param_hint="--plugin")
        out[name] = version
    return out


def dump(data: Any, output: str) -> str:
    """``data`` as JSON or YAML text (``output`` is ``json`` or ``yaml``)."""
    if output == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=4096).rstrip("\n")
    return json.dumps(data, indent=2, ensure_ascii=False)
