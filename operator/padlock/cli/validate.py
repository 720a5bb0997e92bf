"""``padlock validate``: check Falco rules files like ``falco -V``, offline.

Wiring only: reads the files, picks a validator by file content, and prints. Falco rules files are
loaded in the order given into one ruleset by ``padlock.core.loader.load`` (later files may refer to,
redefine and override earlier ones). ``VALIDATORS`` maps a file kind to its validator, and ``kind_of``
decides the kind from the content; padlock objects (``apiVersion: padlock.dev/...``) get their own
entry there.

Exit codes: 0 valid (warnings allowed), 1 invalid, 2 usage error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import click

from padlock.core import loader, versions
from padlock.core.diagnostics import Diagnostic
from padlock.core.model import RulesFile

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

_PADLOCK_OBJECT = re.compile(r"^apiVersion:\s*['\"]?padlock\.dev/", re.MULTILINE)


@dataclass
class Outcome:
    """What a validator found, for printing: per-file diagnostics in input order."""

    files: list[str]
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Options:
    engine_version: str
    plugins: dict[str, str]


Validator = Callable[[Sequence[RulesFile], Options], Outcome]


def kind_of(text: str) -> str:
    """``"padlock-object"`` for YAML with ``apiVersion: padlock.dev/...``, else ``"falco-rules"``."""
    return "padlock-object" if _PADLOCK_OBJECT.search(text) else "falco-rules"


def validate_rules(files: Sequence[RulesFile], opts: Options) -> Outcome:
    res = loader.load(files, engine_version=opts.engine_version, plugins=opts.plugins)
    return Outcome([f.name for f in files], list(res.errors), list(res.warnings))


def _objects_unsupported(files: Sequence[RulesFile], opts: Options) -> Outcome:
    errors = [
        Diagnostic("LOAD_ERR_VALIDATE", "unsupported-file-kind",
                   "padlock objects cannot be validated by this build yet", f.name, 1, 1)
        for f in files
    ]
    return Outcome([f.name for f in files], errors)


#: file kind -> validator. Files of one kind are validated together, in the order given.
VALIDATORS: dict[str, Validator] = {
    "falco-rules": validate_rules,
    "padlock-object": _objects_unsupported,
}


def _parse_plugins(values: Sequence[str]) -> dict[str, str]:
    plugins: dict[str, str] = {}
    for v in values:
        name, sep, version = v.partition("=")
        if not sep or not name or versions.parse(version) is None:
            raise click.BadParameter(f"'{v}' is not NAME=VERSION with a semver version (e.g. container=0.4.0)",
                                     param_hint="--plugin")
        plugins[name] = version
    return plugins


def run(paths: Sequence[str], opts: Options) -> Outcome:
    """Read ``paths`` and validate them; unreadable files become LOAD_ERR_FILE_READ diagnostics."""
    groups: dict[str, list[RulesFile]] = {}
    unreadable: list[Diagnostic] = []
    for p in paths:
        try:
            with open(p, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            unreadable.append(Diagnostic("LOAD_ERR_FILE_READ", "file-read", f"Could not open file {p}: {exc}", p))
            continue
        groups.setdefault(kind_of(text), []).append(RulesFile(p, text))
    outcome = Outcome(list(paths), unreadable)
    for kind in VALIDATORS:
        if kind in groups:
            part = VALIDATORS[kind](groups[kind], opts)
            outcome.errors.extend(part.errors)
            outcome.warnings.extend(part.warnings)
    return outcome


def to_json(outcome: Outcome) -> str:
    doc = {
        "valid": outcome.valid,
        "errors": [d.to_json() for d in outcome.errors],
        "warnings": [d.to_json() for d in outcome.warnings],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def to_text(outcome: Outcome) -> str:
    lines: list[str] = []
    for name in outcome.files:
        errs = [d for d in outcome.errors if d.file == name]
        warns = [d for d in outcome.warnings if d.file == name]
        lines.append(f"{name}: {'Invalid' if errs else 'Ok'}")
        for d in errs + warns:
            lines.append(f"  {d.severity}: {d.one_line()} {d.code}")
            if d.snippet:
                lines.extend(f"    | {s}" for s in d.snippet.splitlines())
            if d.hint:
                lines.append(f"    hint: {d.hint}")
    others = [d for d in outcome.errors + outcome.warnings if d.file not in outcome.files]
    for d in others:
        lines.append(f"  {d.severity}: {d.one_line()} {d.code}")
    lines.append(f"{len(outcome.errors)} error(s), {len(outcome.warnings)} warning(s)")
    return "\n".join(lines)


@click.command(name="validate")
@click.option("--engine-version", default=versions.NEWEST_ENGINE_VERSION, show_default=True,
              help="Falco engine version to validate for (X.Y.Z; an integer N means 0.N.0).")
@click.option("--plugin", "plugins", multiple=True, metavar="NAME=VERSION",
              help="A plugin Falco loads, e.g. container=0.4.0 (repeatable).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("files", nargs=-1, required=True)
def command(engine_version: str, plugins: tuple[str, ...], output: str, files: tuple[str, ...]) -> None:
    """Validate Falco rules FILES, loaded in the order given, like falco -V."""
    engine = versions.normalise_engine_version(engine_version)
    if engine is None:
        raise click.BadParameter(f"'{engine_version}' is not a version (X.Y.Z)", param_hint="--engine-version")
    opts = Options(engine, _parse_plugins(plugins))
    outcome = run(files, opts)
    click.echo(to_json(outcome) if output == "json" else to_text(outcome))
    raise SystemExit(EXIT_VALID if outcome.valid else EXIT_INVALID)
