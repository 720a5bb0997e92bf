"""Diagnostics: what the rules core reports about bad input, in Falco's terms.

The reader, loader and compiler return ``Diagnostic`` values (they never raise for bad input); the
CLI, the webhook and the operator print them. Each carries Falco's result code (so a Falco user
recognises it), a finer kebab-case id (stable, never reused), a severity following Falco's split of
codes into errors and warnings, and a location: file, 1-based line and column, item type and name.

Code tree (``falco_load_result.h`` at Falco 0.44.1)::

    error
    ├── LOAD_ERR_FILE_READ            file cannot be read
    ├── LOAD_ERR_YAML_PARSE           not YAML
    ├── LOAD_ERR_YAML_VALIDATE        YAML of the wrong shape: missing key, bad type, bad priority
    ├── LOAD_ERR_COMPILE_CONDITION    condition does not parse or uses unknown fields/operators
    ├── LOAD_ERR_COMPILE_OUTPUT       output uses unknown fields
    ├── LOAD_ERR_VALIDATE             undefined macro, missing override target, engine too old
    └── LOAD_ERR_EXTENSION            plugin requirements not met
    warning
    ├── LOAD_UNKNOWN_SOURCE LOAD_UNSAFE_NA_CHECK LOAD_NO_EVTTYPE LOAD_UNKNOWN_FILTER
    ├── LOAD_UNUSED_MACRO LOAD_UNUSED_LIST LOAD_UNKNOWN_ITEM LOAD_DEPRECATED_ITEM
    ├── LOAD_WARNING_EXTENSION LOAD_APPEND_NO_VALUES LOAD_EXCEPTION_NAME_NOT_UNIQUE
    └── LOAD_INVALID_MACRO_NAME LOAD_INVALID_LIST_NAME LOAD_COMPILE_CONDITION LOAD_UNKNOWN_KEY
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]

#: code -> (severity, title). Titles follow Falco's ``error_str`` / ``warning_str``.
CODES: dict[str, tuple[Severity, str]] = {
    "LOAD_ERR_FILE_READ": ("error", "File read error"),
    "LOAD_ERR_YAML_PARSE": ("error", "YAML parse error"),
    "LOAD_ERR_YAML_VALIDATE": ("error", "Error validating internal structure of YAML file"),
    "LOAD_ERR_COMPILE_CONDITION": ("error", "Error compiling condition"),
    "LOAD_ERR_COMPILE_OUTPUT": ("error", "Error compiling output"),
    "LOAD_ERR_VALIDATE": ("error", "Error validating rule/macro/list/exception objects"),
    "LOAD_ERR_EXTENSION": ("error", "Initialization error"),
    "LOAD_UNKNOWN_SOURCE": ("warning", "Unknown event source"),
    "LOAD_UNSAFE_NA_CHECK": ("warning", "Unsafe <NA> comparison in condition"),
    "LOAD_NO_EVTTYPE": ("warning", "Condition has no event-type restriction"),
    "LOAD_UNKNOWN_FILTER": ("warning", "Unknown field or event-type in condition or output"),
    "LOAD_UNUSED_MACRO": ("warning", "Unused macro"),
    "LOAD_UNUSED_LIST": ("warning", "Unused list"),
    "LOAD_UNKNOWN_ITEM": ("warning", "Unknown rules file item"),
    "LOAD_DEPRECATED_ITEM": ("warning", "Used deprecated item"),
    "LOAD_WARNING_EXTENSION": ("warning", "Extension warning"),
    "LOAD_APPEND_NO_VALUES": ("warning", "Overriding/appending exception with no values"),
    "LOAD_EXCEPTION_NAME_NOT_UNIQUE": ("warning", "Multiple exceptions defined with the same name"),
    "LOAD_INVALID_MACRO_NAME": ("warning", "Invalid macro name"),
    "LOAD_INVALID_LIST_NAME": ("warning", "Invalid list name"),
    "LOAD_COMPILE_CONDITION": ("warning", "Condition has possible issues"),
    "LOAD_UNKNOWN_KEY": ("warning", "Unknown key in item"),
}


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a rules file, located as precisely as the input allows."""

    code: str
    id: str
    message: str
    file: str = ""
    line: int = 0
    column: int = 0
    item_type: str = ""
    item_name: str = ""
    hint: str = ""
    snippet: str = ""

    @property
    def severity(self) -> Severity:
        return CODES[self.code][0]

    @property
    def title(self) -> str:
        return CODES[self.code][1]

    def one_line(self) -> str:
        """``file:line:col: rule "X": message [id]``, the form used in conditions, Events and logs."""
        where = f"{self.file}:{self.line}:{self.column}: " if self.file else ""
        what = f'{self.item_type} "{self.item_name}": ' if self.item_type else ""
        return f"{where}{what}{self.message} [{self.id}]"

    def to_json(self) -> dict[str, object]:
        """The dict shape of one diagnostic in ``padlock validate -o json``."""
        return {
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "item": {"type": self.item_type, "name": self.item_name},
        }

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.code, self.message)


def split(diags: list[Diagnostic]) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """Split diagnostics into (errors, warnings) by their code's severity, keeping order."""
    errors = [d for d in diags if d.severity == "error"]
    warnings = [d for d in diags if d.severity == "warning"]
    return errors, warnings
