"""``padlock diff``: what changed between two rules releases, as a changelog or JSON.

Wiring only: loads the OLD files and the NEW files (each set in the order given, like ``falco -V``) with
``padlock.engine.loader.load`` and compares them with ``padlock.engine.differ.diff``. Usage:
``padlock diff [options] OLD... -- NEW...`` or ``padlock diff OLD NEW``. Options go before the files.

Exit codes: 0 compared (changes or not), 1 a set does not load, 2 usage error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from padlock.cli import defaults, objects
from padlock.engine import differ, loader, versions
from padlock.engine.model import Ruleset, RulesFile

EXIT_OK = 0
EXIT_LOAD_FAILED = 1
EXIT_USAGE = 2
_NEW_FILES = "padlock.diff.new"


class _SplitOnDashes(click.Command):
    """Keep what follows ``--`` (the NEW files) before click swallows the separator."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            ctx.meta[_NEW_FILES] = list(args[i + 1 :])
            args = args[:i]
        return super().parse_args(ctx, args)


def _read(paths: Sequence[str]) -> list[RulesFile]:
    out = []
    for p in paths:
        try:
            out.append(RulesFile(p, objects.read_text(Path(p))))
        except objects.InputError as exc:
            raise click.UsageError(f"cannot read {exc}") from None
    return out


def _load(label: str, files: list[RulesFile], engine: str, plugins: dict[str, str]) -> Ruleset | None:
    res = loader.load(files, engine_version=engine, plugins=plugins)
    if not res.valid:
        click.echo(f"{label} rules do not load ({len(res.errors)} error(s)):", err=True)
        for d in res.errors:
            click.echo(f"  {d.one_line()} {d.code}", err=True)
        return None
    return res.ruleset


def changelog(result: differ.RulesetDiff, old: Ruleset, new: Ruleset) -> str:
    """The changelog a security engineer reads before adopting a release."""
    out: list[str] = []
    r = result.rules
    out.append(f"Rules: {len(r.added)} added, {len(r.removed)} removed, {len(r.modified)} modified")
    if r.added:
        out.append("")
        out.append("New rules:")
        for n in r.added:
            rule = new.rules[n]
            state = "" if rule.enabled else " (disabled by default)"
            out.append(f"  + {n} [{rule.priority}]{state}")
            if rule.tags:
                out.append(f"      tags: {', '.join(rule.tags)}")
    if r.removed:
        out.append("")
        out.append("Removed rules (BREAKING: per-rule choices naming them, e.g. disabledRules, no longer apply):")
        for n in r.removed:
            out.append(f"  - {n} [{old.rules[n].priority}]")
    if r.modified:
        out.append("")
        out.append("Modified rules:")
        for m in r.modified:
            a, b = old.rules[m.name], new.rules[m.name]
            details = []
            for k in m.keys:
                if k == "priority":
                    details.append(f"priority {a.priority} -> {b.priority}")
                elif k == "enabled":
                    details.append(f"enabled {str(a.enabled).lower()} -> {str(b.enabled).lower()}")
                elif k == "tags":
                    plus = [t for t in b.tags if t not in a.tags]
                    minus = [t for t in a.tags if t not in b.tags]
                    details.append("tags " + " ".join([*(f"+{t}" for t in plus), *(f"-{t}" for t in minus)]))
                else:
                    details.append(k)
            out.append(f"  ~ {m.name}: {', '.join(details)}")
    for title, section, affected in (
        ("Macros", result.macros, result.affected_by_macro),
        ("Lists", result.lists, result.affected_by_list),
    ):
        if not section.changed:
            continue
        out.append("")
        out.append(f"{title}: {len(section.added)} added, {len(section.removed)} removed, "
                   f"{len(section.modified)} modified")
        for sign, names in (("+", section.added), ("-", section.removed), ("~", [m.name for m in section.modified])):
            for n in names:
                line = f"  {sign} {n}"
                if title == "Lists" and sign == "~":
                    plus = [i for i in new.lists[n].items if i not in old.lists[n].items]
                    minus = [i for i in old.lists[n].items if i not in new.lists[n].items]
                    line += " (items " + " ".join([*(f"+{i}" for i in plus), *(f"-{i}" for i in minus)]) + ")"
                users = affected.get(n, ())
                if users:
                    line += f"; affects {len(users)} rule(s): {', '.join(users)}"
                out.append(line)
    if result.empty:
        out.append("No changes.")
    return "\n".join(out)


@click.command(name="diff", cls=_SplitOnDashes)
@click.option("-o", "--output", type=click.Choice(defaults.OUTPUTS), default="text", show_default=True)
@click.option("--engine-version", default=versions.NEWEST_ENGINE_VERSION, show_default=True,
              help="Falco engine version both sets are loaded for.")
@click.option("--plugin", "plugins", multiple=True, metavar="NAME=VERSION",
              help="Plugins loaded (default: those the Falco chart's default values load, e.g. container=0.7.1).")
@click.argument("old", nargs=-1, required=True)
@click.pass_context
def command(ctx: click.Context, output: str, engine_version: str, plugins: tuple[str, ...],
            old: tuple[str, ...]) -> None:
    """Show what changed from the OLD rules files to the NEW ones: padlock diff OLD... -- NEW..."""
    new_paths: list[str] | None = ctx.meta.get(_NEW_FILES)
    old_paths = list(old)
    if new_paths is None:
        if len(old_paths) != 2:
            raise click.UsageError("give OLD... -- NEW..., or exactly two files: OLD NEW")
        old_paths, new_paths = [old_paths[0]], [old_paths[1]]
    if not new_paths:
        raise click.UsageError("no NEW files after '--'")
    engine = versions.normalise_engine_version(engine_version)
    if engine is None:
        raise click.BadParameter(f"'{engine_version}' is not a version (X.Y.Z)", param_hint="--engine-version")
    plugin_map: dict[str, str] = {}
    for p in plugins:
        name, sep, ver = p.partition("=")
        if not sep or not name or versions.parse(ver) is None:
            raise click.BadParameter(f"'{p}' is not NAME=VERSION (e.g. container=0.4.0)", param_hint="--plugin")
        plugin_map[name] = ver
    if not plugins:  # the plugins the Falco chart's defaults load, as validate and render use
        plugin_map = defaults.plugins(())
    old_rs = _load("OLD", _read(old_paths), engine, plugin_map)
    new_rs = _load("NEW", _read(new_paths), engine, plugin_map)
    if old_rs is None or new_rs is None:
        raise SystemExit(EXIT_LOAD_FAILED)
    result = differ.diff(old_rs, new_rs)
    if output in ("json", "yaml"):
        doc: dict[str, Any] = result.to_json()
        click.echo(defaults.dump(doc, output))
    else:
        click.echo(changelog(result, old_rs, new_rs))
    raise SystemExit(EXIT_OK)
