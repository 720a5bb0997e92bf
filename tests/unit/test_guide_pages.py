"""The user guide in docs/guide stays whole and its commands stay real.

Covers:
- every task of the guide has its page, and both the guide's index and the top-level README link it;
- every relative link in docs/guide (pages and the documents they cite) resolves to an existing file;
- every ``padlock ...`` command in a ``bash`` code block of the guide names a real subcommand (down to
  ``padlock tune accept``) and only flags that subcommand's ``--help`` lists, read from the click
  command tree (no subprocess);
- the command checker itself rejects an unknown subcommand and an unknown flag, so the check above
  cannot pass vacuously.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from padlock.cli.main import cli

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "guide"

# The tasks the guide must cover (issue 10), each with its page.
TASKS: dict[str, str] = {
    "install the chart, CRDs and image; wire Falco": "install.md",
    "find and read a managed policy": "read-a-policy.md",
    "copy a managed policy": "copy-a-policy.md",
    "disable rules and scope": "disable-and-scope.md",
    "exceptions and the tenant model": "exceptions-and-tenants.md",
    "see what changed and when": "what-changed.md",
    "approve a release by hand": "approve-a-release.md",
    "pin and roll back": "pin-and-roll-back.md",
    "an air-gapped mirror": "air-gapped.md",
    "offline checks in CI": "ci-checks.md",
    "the tuner": "tuner.md",
    "troubleshooting from conditions and Events": "troubleshooting.md",
}

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\s*$")


def pages() -> list[Path]:
    return sorted(GUIDE.glob("*.md"))


def links(path: Path) -> list[str]:
    return LINK.findall(path.read_text(encoding="utf-8"))


def bash_lines(text: str) -> list[str]:
    """Lines of ```bash blocks (the commands a reader types; output blocks carry no language)."""
    lines: list[str] = []
    language: str | None = None
    for line in text.splitlines():
        fence = FENCE.match(line.strip())
        if fence:
            language = fence.group(1) if language is None else None
            continue
        if language == "bash":
            lines.append(line)
    return lines


def padlock_commands(line: str) -> list[list[str]]:
    """The ``padlock`` invocations of one shell line, as argument lists (pipes and && split it)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = []
    current: list[str] = []
    for token in lexer:
        if token and set(token) <= set(";&|"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return [c[1:] for c in commands if c and c[0] == "padlock"]


def option_names(command: click.Command, ctx: click.Context) -> set[str]:
    names = set()
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def check(args: list[str]) -> list[str]:
    """Problems with ``padlock <args>``: an unknown subcommand, or a flag its --help does not list."""
    if not args:
        return ["bare 'padlock'"]
    problems: list[str] = []
    ctx = click.Context(cli, info_name="padlock")
    command: click.Command | None = cli.get_command(ctx, args[0])
    if command is None:
        return [f"'padlock {args[0]}' is not a subcommand"]
    path = ["padlock", args[0]]
    ctx = click.Context(command, info_name=args[0], parent=ctx)
    for token in args[1:]:
        if token == "--":
            break  # what follows are operands (padlock diff OLD -- NEW)
        if token.startswith("-") and token != "-":
            flag = token.split("=", 1)[0]
            if flag not in option_names(command, ctx):
                problems.append(f"'{' '.join(path)}' has no option {flag}")
        elif isinstance(command, click.Group):
            sub = command.get_command(ctx, token)
            if sub is not None:
                command = sub
                path.append(token)
                ctx = click.Context(sub, info_name=token, parent=ctx)
    return problems


def test_every_task_has_its_page() -> None:
    missing = [f"{task}: {page}" for task, page in TASKS.items() if not (GUIDE / page).is_file()]
    assert missing == []
    assert (GUIDE / "README.md").is_file()


def test_the_guide_index_links_every_page() -> None:
    linked = set(links(GUIDE / "README.md"))
    assert sorted(set(TASKS.values()) - linked) == []


def test_the_top_level_readme_links_every_page_and_keeps_its_quick_start() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    linked = set(links(REPO / "README.md"))
    assert sorted(f"docs/guide/{page}" for page in TASKS.values() if f"docs/guide/{page}" not in linked) == []
    assert "make demo" in text and "make test" in text


@pytest.mark.parametrize("page", [p.name for p in pages()])
def test_every_relative_link_in_the_guide_resolves(page: str) -> None:
    path = GUIDE / page
    broken: list[str] = []
    for target in links(path):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if not (path.parent / file).exists():
            broken.append(target)
    assert broken == []


@pytest.mark.parametrize("page", [p.name for p in pages()])
def test_every_padlock_command_in_the_guide_is_real(page: str) -> None:
    problems: list[str] = []
    for line in bash_lines((GUIDE / page).read_text(encoding="utf-8")):
        for args in padlock_commands(line):
            problems.extend(f"{page}: {line.strip()}: {p}" for p in check(args))
    assert problems == []


def test_the_guide_runs_every_command_of_the_cli_it_documents() -> None:
    # The pages together use each user-facing subcommand (operator and demo are not user tasks).
    used = {args[0] for p in pages() for line in bash_lines(p.read_text(encoding="utf-8"))
            for args in padlock_commands(line) if args}
    assert sorted({"validate", "render", "diff", "copy", "policies", "explain", "show", "tune"} - used) == []


def test_the_checker_rejects_an_unknown_subcommand_and_an_unknown_flag() -> None:
    assert check(["frobnicate"]) == ["'padlock frobnicate' is not a subcommand"]
    assert check(["validate", "--strict", "--no-such-flag", "x.yaml"]) == [
        "'padlock validate' has no option --no-such-flag"]
    # A subcommand's own flags are checked against the subcommand, not its group.
    assert check(["tune", "accept", "NAME", "--expires", "30d", "-n", "shop"]) == []
    assert check(["tune", "dismiss", "NAME", "--expires", "30d"]) == [
        "'padlock tune dismiss' has no option --expires"]
    # Operands after -- are not flags; pipes and && separate commands.
    assert check(["diff", "a.yaml", "--", "-b.yaml"]) == []
    assert padlock_commands('padlock render x -o out/ && ls out/ | head -2') == [["render", "x", "-o", "out/"]]
