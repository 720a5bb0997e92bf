"""Plain data of the rules core: input files and the loaded, ordered ruleset.

Built by ``padlock.engine.loader`` and read by the differ, the policy renderer, the CLI and the
operator flows. Everything here is frozen and holds only strings, bools, ints and tuples, so a
``Ruleset`` can be compared, hashed in parts and rendered deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Falco's priorities in severity order (index = Falco's numeric value, 0 is most severe).
PRIORITIES: tuple[str, ...] = (
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFORMATIONAL",
    "DEBUG",
)


@dataclass(frozen=True)
class RulesFile:
    """One rules file as input: its name as Falco would see it, and its text."""

    name: str
    text: str


@dataclass(frozen=True)
class RuleException:
    """One entry of a rule's ``exceptions`` (Falco calls these exceptions; the name avoids the builtin).

    ``fields`` and ``comps`` are tuples for the list form and single strings for the one-field form
    (``fields: proc.name``), as Falco distinguishes the two. ``values`` holds tuples of values; a value is
    a string or a tuple of strings (for ``in``/``pmatch``/``intersects``).
    """

    name: str
    fields: tuple[str, ...] | str = ()
    comps: tuple[str, ...] | str = ()
    values: tuple[object, ...] = ()


@dataclass(frozen=True)
class PluginRequirement:
    """A ``required_plugin_versions`` entry: the plugin and its alternatives (any one is enough)."""

    name: str
    version: str
    alternatives: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Rule:
    """A rule after all files, redefinitions and overrides are applied."""

    name: str
    condition: str
    output: str
    desc: str
    priority: str
    tags: tuple[str, ...] = ()
    enabled: bool = True
    source: str = "syscall"
    exceptions: tuple[RuleException, ...] = ()
    warn_evttypes: bool = True
    skip_if_unknown_filter: bool = False
    capture: bool = False
    capture_duration: int = 0
    file: str = ""
    line: int = 0
    column: int = 0
    #: The condition Falco compiles: ``condition`` with macros kept, exceptions appended as
    #: ``and not (...)``. Empty until compiled.
    compiled_condition: str = field(default="", compare=False)


@dataclass(frozen=True)
class Macro:
    """A macro after all files: its name, final condition text and first definition's position."""

    name: str
    condition: str
    file: str = ""
    line: int = 0
    column: int = 0


@dataclass(frozen=True)
class List:
    """A list after all files; items are strings (integers upstream become strings)."""

    name: str
    items: tuple[str, ...] = ()
    file: str = ""
    line: int = 0
    column: int = 0


@dataclass(frozen=True)
class Ruleset:
    """The loaded ruleset. Dicts keep the position of each item's first definition."""

    rules: dict[str, Rule] = field(default_factory=dict)
    macros: dict[str, Macro] = field(default_factory=dict)
    lists: dict[str, List] = field(default_factory=dict)
    required_engine_version: str | None = None
    required_plugins: tuple[PluginRequirement, ...] = ()
