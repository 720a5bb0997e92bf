#!/usr/bin/env python3
"""Write the field catalog of one Falco release from libs' field tables, checked against that Falco.

Usage::

    python tests/data/falco-golden/fields_catalog.py LIBS_GIT_DIR LIBS_TAG FALCO_BINARY OUT.json

Reads every ``{PT_<type>, <flags>, PF_..., "<name>", ...}`` entry of ``userspace/libsinsp/sinsp_filtercheck_*.cpp``
at ``LIBS_TAG`` (a bare clone of falcosecurity/libs), keeps the fields usable in rules (not table-only
or print-only), takes the argument kind and list flag from the entry's flags, reuses the curated entry of
``operator/padlock/engine/data/fields.json`` for the suffix form (``evt.arg.flags``), and checks the result
against ``FALCO_BINARY --list -N`` (every field that Falco lists must be there; what Falco does not list
must be deprecated or filter-only). Event types come from ``fields.json`` plus ``FALCO_BINARY --list-events``.
The output has the same shape as ``fields.json`` and records its provenance.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
NEWEST = REPO / "operator/padlock/engine/data/fields.json"
ENTRY = re.compile(r'\{\s*PT_(\w+)\s*,\s*([A-Z_|\s]+?)\s*,\s*PF_\w+\s*,\s*"([a-zA-Z0-9_.]+)"', re.S)


def libs_fields(git_dir: str, tag: str) -> dict[str, tuple[str, set[str]]]:
    git = ["git", f"--git-dir={git_dir}"]
    names = subprocess.run([*git, "ls-tree", "-r", "--name-only", tag, "userspace/libsinsp/"],
                           capture_output=True, text=True, check=True).stdout.split()
    out: dict[str, tuple[str, set[str]]] = {}
    for f in names:
        if not re.search(r"sinsp_filtercheck_\w+\.cpp$", f):
            continue
        text = subprocess.run([*git, "show", f"{tag}:{f}"], capture_output=True, text=True, check=True).stdout
        for m in ENTRY.finditer(text):
            flags = {x.strip() for x in m.group(2).split("|")}
            out.setdefault(m.group(3), (m.group(1), flags))
    return out


def main(argv: list[str]) -> int:
    git_dir, tag, falco, out_path = argv
    newest = json.loads(NEWEST.read_text())
    curated = {**newest["plugins"]["container"]["sources"]["syscall"], **newest["sources"]["syscall"]["fields"]}
    listed = set(subprocess.run([falco, "-c", "/dev/null", "--list=syscall", "-N"], capture_output=True, text=True,
                                check=True).stdout.split())
    version = subprocess.run([falco, "--version"], capture_output=True, text=True, check=True).stdout
    fields: dict[str, dict[str, object]] = {}
    for name, (ptype, flags) in sorted(libs_fields(git_dir, tag).items()):
        if flags & {"EPF_TABLE_ONLY", "EPF_PRINT_ONLY"} or name == "NA":
            continue
        entry: dict[str, object] = {"type": "IPADDR" if ptype == "IPV4ADDR" else ptype}
        if "EPF_ARG_REQUIRED" in flags:
            entry["arg"] = "required"
        elif "EPF_ARG_ALLOWED" in flags:
            entry["arg"] = "optional"
        if "EPF_IS_LIST" in flags:
            entry["list"] = True
        if curated.get(name, {}).get("suffix"):
            entry["suffix"] = True
            entry.setdefault("arg", curated[name].get("arg", "optional"))
        if "EPF_DEPRECATED" in flags:
            entry["libs_deprecated"] = True  # loads, but Falco --list does not show it
        fields[name] = entry
    # Fields whose table entries the pattern above does not read (syslog.*, evt.around ...): from the
    # newest catalog when Falco lists them.
    for name in sorted(listed - set(fields)):
        if name in curated:
            fields[name] = dict(curated[name])
    missing = sorted(listed - set(fields))
    if missing:
        print(f"fields Falco lists but the catalog lacks: {missing}", file=sys.stderr)
        return 1
    unlisted = sorted(n for n in set(fields) - listed if not fields[n].get("libs_deprecated"))
    doc = {
        "provenance": {
            "description": f"Fields of the syscall source for {version.splitlines()[0].strip()}",
            "falco": " ".join(version.split()),
            "sources_read": [
                f"falcosecurity/libs userspace/libsinsp/sinsp_filtercheck_*.cpp field tables at tag {tag}",
                f"{falco} --list=syscall -N: every field it lists is here ({len(listed)} fields)",
                "operator/padlock/engine/data/fields.json for the dotted-suffix forms (evt.arg.flags)",
            ],
            "not_listed_by_falco_but_accepted": unlisted,
            "generator": "tests/data/falco-golden/fields_catalog.py",
        },
        "types": newest["types"],
        "event_types": newest["event_types"],
        "sources": {"syscall": {"fields": fields}},
        "plugins": {k: v for k, v in newest["plugins"].items() if k != "container"},
    }
    Path(out_path).write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(fields)} fields to {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
