"""``padlock validate``: check Falco rules files like ``falco -V``, and padlock objects, offline.

Wiring only: reads the files (directories: every ``.yaml``/``.yml`` under them, sorted), picks a
validator by file content, and prints. ``VALIDATORS`` maps a file kind to its validator, and
``kind_of`` decides the kind from the content:

- Falco rules files are loaded in the order given into one ruleset by ``padlock.engine.loader.load``
  (later files may refer to, redefine and override earlier ones), on their own, as before;
- padlock objects (YAML with ``apiVersion: padlock.dev/...``, multi-document, ``kind: List`` too) go to
  ``padlock.cli.object_validation``: the CRD schema, then, when rules are given, the admission
  webhook's checks. The rules are the ``--source`` options (as in ``padlock render``) plus the Falco
  rules files given among FILES, which act as one more source (named ``files``, loaded last). Without
  any, only the schema is checked and a warning says the semantic checks were skipped.

Output: text (per file Ok/Invalid, one line per diagnostic) or ``-o json``
(``{"valid", "errors", "warnings"}``, the same diagnostic shape for both kinds of file).
Exit codes: 0 valid (warnings allowed), 1 invalid, 2 usage error (bad option, unreadable --source).
Only what Falco itself refuses is an error; Padlock's own extra checks are warnings, so they never fail a
load Falco accepts. ``--strict`` makes any warning fail (exit 1) for CI users who want that.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from padlock.cli import defaults, object_validation, objects
from padlock.engine import diagnostics, loader, versions
from padlock.engine.diagnostics import Diagnostic
from padlock.engine.model import RulesFile

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

# Top-level documents, List items ("- apiVersion: ...", indented) and flow maps ("{apiVersion: ...").
_PADLOCK_OBJECT = re.compile(r"(?:^|[\s{,-])apiVersion['\"]?\s*:\s*['\"]?padlock\.dev/", re.MULTILINE)


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
    sources: tuple[str, ...] = ()
    """``--source`` values, for padlock objects."""
    object_namespace: str = "default"
    """Namespace of PolicyExceptions that name none."""
    rules_files: tuple[RulesFile, ...] = ()
    """The Falco rules files among FILES (``run`` fills it): one more source for padlock objects."""


Validator = Callable[[Sequence[RulesFile], Options], Outcome]


def kind_of(text: str) -> str:
    """``"padlock-object"`` for YAML with ``apiVersion: padlock.dev/...``, else ``"falco-rules"``."""
    return "padlock-object" if _PADLOCK_OBJECT.search(text) else "falco-rules"


def validate_rules(files: Sequence[RulesFile], opts: Options) -> Outcome:
    res = loader.load(files, engine_version=opts.engine_version, plugins=opts.plugins)
    return Outcome([f.name for f in files], list(res.errors), list(res.warnings))


def validate_objects(files: Sequence[RulesFile], opts: Options) -> Outcome:
    """Padlock objects: schema, then the webhook's checks against the sources (``object_validation``)."""
    found = object_validation.check(
        files,
        source_specs=opts.sources,
        rules_files=opts.rules_files,
        engine_version=opts.engine_version,
        plugins=opts.plugins,
        object_namespace=opts.object_namespace,
    )
    errors, warnings = diagnostics.split(found)
    return Outcome([f.name for f in files], errors, warnings)


#: file kind -> validator. Files of one kind are validated together, in the order given.
VALIDATORS: dict[str, Validator] = {
    "falco-rules": validate_rules,
    "padlock-object": validate_objects,
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


def _expand(paths: Sequence[str]) -> list[str]:
    # A directory stands for its YAML files (a GitOps repository); files are taken as given.
    out: list[str] = []
    for p in paths:
        out.extend(str(f) for f in objects.yaml_files(Path(p))) if Path(p).is_dir() else out.append(p)
    return out


def run(paths: Sequence[str], opts: Options) -> Outcome:
    """Read ``paths`` and validate them; unreadable files become LOAD_ERR_FILE_READ diagnostics.

    Raises ``objects.InputError`` when a ``--source`` cannot be read.
    """
    groups: dict[str, list[RulesFile]] = {}
    unreadable: list[Diagnostic] = []
    paths = _expand(paths)
    for p in paths:
        try:
            text = objects.read_text(Path(p))
        except objects.InputError as exc:
            unreadable.append(Diagnostic("LOAD_ERR_FILE_READ", "file-read", f"Could not open file {exc}", p))
            continue
        groups.setdefault(kind_of(text), []).append(RulesFile(p, text))
    outcome = Outcome(list(paths), unreadable)
    opts = dataclasses.replace(opts, rules_files=tuple(groups.get("falco-rules", ())))
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
@click.option("--source", "sources", multiple=True, metavar="[NAME[@VERSION]=]PATH",
              help="Rules source for checking padlock objects: a rules file or a directory of them, as in "
                   "padlock render (repeatable). Without one, padlock objects get schema checks only.")
@click.option("--object-namespace", default="default", show_default=True,
              help="Namespace of PolicyExceptions that name none (as kubectl apply would use).")
@click.option("-o", "--output", type=click.Choice(defaults.OUTPUTS), default="text", show_default=True)
@click.option("--strict", is_flag=True, default=False,
              help="Fail (exit 1) on warnings too, for CI. Without it only what Falco refuses fails.")
@click.argument("files", nargs=-1, required=True)
def command(engine_version: str, plugins: tuple[str, ...], sources: tuple[str, ...], object_namespace: str,
            output: str, strict: bool, files: tuple[str, ...]) -> None:
    """Validate Falco rules FILES (loaded in the order given, like falco -V) and padlock objects.

    FILES may be directories (their .yaml/.yml files). Padlock objects are checked against the CRD
    schema and, with --source or rules files among FILES, as the admission webhook checks them.
    """
    engine = versions.normalise_engine_version(engine_version)
    if engine is None:
        raise click.BadParameter(f"'{engine_version}' is not a version (X.Y.Z)", param_hint="--engine-version")
    # No --plugin: the plugins the Falco chart's defaults load, as diff and render use (cli.defaults).
    opts = Options(engine, _parse_plugins(plugins) if plugins else defaults.plugins(()), sources, object_namespace)
    try:
        outcome = run(files, opts)
    except objects.InputError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    if output == "yaml":
        click.echo(defaults.dump(json.loads(to_json(outcome)), "yaml"))
    else:
        click.echo(to_json(outcome) if output == "json" else to_text(outcome))
    if strict and outcome.warnings and outcome.valid:
        click.echo(f"strict: {len(outcome.warnings)} warning(s) fail the validation", err=True)
    raise SystemExit(EXIT_VALID if outcome.valid and not (strict and outcome.warnings) else EXIT_INVALID)
