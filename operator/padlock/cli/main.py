"""The ``padlock`` command (also installed as ``kubectl-padlock``).

Subcommands live in one module each and are imported lazily from the table below, as pip does, so
``padlock --help`` stays fast and a broken optional dependency only breaks its own command.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> (module, attribute, one-line summary). Each module exposes a click.Command.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("padlock.cli.validate", "command", "Validate Falco rules files (like falco -V) or padlock objects."),
    "diff": ("padlock.cli.diff", "command", "Show what changed between two rules releases."),
    "render": ("padlock.cli.render", "command", "Render padlock objects and rules sources to the operator's ConfigMaps."),
    "copy": ("padlock.cli.copy", "command", "Copy a managed policy into a CustomPolicy."),
    "policies": ("padlock.cli.policies", "command", "List managed and custom policies in the cluster."),
    "operator": ("padlock.cli.operator", "command", "Run the Padlock operator."),
    "demo": ("padlock.cli.demo", "command", "Run the end-to-end story on a local control plane."),
    "explain": ("padlock.cli.explain", "command", "Explain a rule: text, MITRE names, history, who runs it and why."),
    "show": ("padlock.cli.show", "command", "Show a managed policy's rules with new/updated badges."),
    "tune": ("padlock.cli.tune", "command", "Suggest exceptions from Falco's alerts; accept or dismiss them."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, summary = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return _unavailable(cmd_name, summary)
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Summaries come from the table so that help never imports every subcommand.
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, summary: str) -> click.Command:
    @click.command(name=name, help=summary, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def stub(args: Any) -> None:
        raise click.UsageError(f"'padlock {name}' is not available in this build")

    return stub


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="padlock", prog_name="padlock")
def cli() -> None:
    """Padlock: managed Falco policies for Kubernetes."""


def main() -> None:
    cli(prog_name="padlock")
