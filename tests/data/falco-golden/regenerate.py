#!/usr/bin/env python3
"""Regenerate the Falco golden corpus: build the cases, load each with a real Falco, record its verdict.

Usage::

    python tests/data/falco-golden/regenerate.py /path/to/falco [--plugin-config FILE]

Writes ``tests/data/falco-golden/<falco version>/cases.json``. The cases are built here, deterministically,
from the vendored upstream releases (``tests/data/upstream-rules``) and from small inline files (see
``cases()``); each case is then loaded in one Falco process exactly as Falco loads a rules directory:

    falco -c <config> -o json_output=true -V f1.yaml -V f2.yaml ...

with ``-L`` added, so that when it succeeds Falco also lists which rules run (and, for exception cases,
the condition it compiled). The verdict stored per case is Falco's: valid or not, each file's errors and
warnings (code, message, item), the rules that run with their ``enabled`` flag.

Falco is not needed to use the goldens: ``tests/unit/engine/test_falco_golden.py`` checks Padlock against
them. This script is only for producing them again (a new Falco version, new cases). It never builds
Falco; ``tests/data/falco-golden/README.md`` says how the oracle binary was built.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
UPSTREAM = HERE.parent / "upstream-rules"

# The upstream releases Falco 0.40.0 (engine 0.46.0, container fields built in) can judge, as stacks
# loaded in order. Newer releases need engine 0.50.0+ and the container plugin.
STACKS_040: dict[str, list[str]] = {
    "stable-1.0.2": ["falco-rules-1.0.2/falco_rules.yaml"],
    "stable-2.0.0": ["falco-rules-2.0.0/falco_rules.yaml"],
    "stable-3.0.1": ["falco-rules-3.0.1/falco_rules.yaml"],
    "stable-3.1.0": ["falco-rules-3.1.0/falco_rules.yaml"],
    "stable-3.2.0": ["falco-rules-3.2.0/falco_rules.yaml"],
    "all-2.0.0": [
        "falco-rules-2.0.0/falco_rules.yaml",
        "falco-incubating-rules-2.0.0/falco-incubating_rules.yaml",
        "falco-sandbox-rules-2.0.0/falco-sandbox_rules.yaml",
    ],
    "all-3.x": [
        "falco-rules-3.2.0/falco_rules.yaml",
        "falco-incubating-rules-3.0.1/falco-incubating_rules.yaml",
        "falco-sandbox-rules-3.0.1/falco-sandbox_rules.yaml",
        "falco-deprecated-rules-3.0.0/falco-deprecated_rules.yaml",
    ],
    "incubating-3.0.0": ["falco-rules-3.0.0/falco_rules.yaml", "falco-incubating-rules-3.0.0/falco-incubating_rules.yaml"],
    "sandbox-3.0.0": ["falco-rules-3.0.0/falco_rules.yaml", "falco-sandbox-rules-3.0.0/falco-sandbox_rules.yaml"],
}


def _base(paths: list[str]) -> list[dict[str, Any]]:
    return [{"name": p.split("/")[-1], "base": p} for p in paths]


def _mutant(name: str, group: str, stack: str, index: int, old: str, new: str, nth: int = 0) -> dict[str, Any]:
    """Replace the ``nth`` occurrence of ``old`` by ``new`` in file ``index`` of ``stack``."""
    files = _base(STACKS_040[stack])
    files[index] = {**files[index], "replace": [[old, new, nth]]}
    return {"name": name, "group": group, "files": files}


def _appended(name: str, group: str, stack: str, text: str) -> dict[str, Any]:
    """The stack, then one more file holding ``text`` (a user's overrides on top of upstream)."""
    return {"name": name, "group": group, "files": [*_base(STACKS_040[stack]), {"name": "zz-local.yaml", "text": text}]}


def _inline(name: str, group: str, text: str) -> dict[str, Any]:
    return {"name": name, "group": group, "files": [{"name": "rules.yaml", "text": text}]}


def _rule(cond: str, output: str = "o %proc.name", extra: str = "", name: str = "r") -> str:
    return (f"- rule: {name}\n  desc: d\n  condition: {cond}\n  output: {output}\n  priority: WARNING\n{extra}")


# -- the corpus ----------------------------------------------------------------------------------------


def upstream_cases() -> list[dict[str, Any]]:
    out = [{"name": f"upstream {s} loads", "group": "upstream", "files": _base(p)} for s, p in STACKS_040.items()]
    return out


#: (label, old, new) applied to the first occurrence in each stable release file: generic mutants.
GENERIC_MUTATIONS: list[tuple[str, str, str]] = [
    ("field typo proc.nmae", "proc.name", "proc.nmae"),
    ("field typo fd.nmae", "fd.name", "fd.nmae"),
    ("upper-case AND", " and ", " AND "),
    ("upper-case OR", " or ", " OR "),
    ("dangling operator", "evt.type in (", "evt.type in "),
    ("unbalanced parenthesis", "(evt.type in (", "((evt.type in ("),
    ("priority WARN", "priority: WARNING", "priority: WARN"),
    ("priority lower-case warning", "priority: WARNING", "priority: warning"),
    ("priority Info alias", "priority: NOTICE", "priority: Info"),
    ("priority number", "priority: WARNING", "priority: 4"),
    ("unknown event type", "evt.type in (", "evt.type in (opne, "),
    ("startswith on a numeric field", "proc.tty != 0", "proc.tty startswith 0"),
    ("contains on a numeric field", "proc.tty != 0", "proc.tty contains 0"),
    ("numeric field compared with a word", "proc.tty != 0", "proc.tty != abc"),
    ("numeric field compared with a float", "proc.tty != 0", "proc.tty != 1.5"),
    ("numeric field compared with hex", "proc.tty != 0", "proc.tty != 0x10"),
    ("numeric field compared with a signed number", "proc.tty != 0", "proc.tty != +5"),
    ("numeric field compared with a negative number", "proc.tty != 0", "proc.tty != -1"),
    ("numeric field compared with a quoted number", "proc.tty != 0", "proc.tty != \"0\""),
    ("numeric field compared with an empty quoted string", "proc.tty != 0", "proc.tty != \"\""),
    ("numeric field in a list of numbers", "proc.tty != 0", "proc.tty in (0, 1, 2)"),
    ("numeric field in a list with a word", "proc.tty != 0", "proc.tty in (0, one)"),
    ("numeric field greater than a float", "proc.tty != 0", "proc.tty > 1.5"),
    ("numeric field greater than a negative", "proc.tty != 0", "proc.tty > -1"),
    ("numeric field exists", "proc.tty != 0", "proc.tty exists"),
    ("output token with a trailing s", "%proc.cmdline", "%proc.cmdlines"),
    ("output token cut short", "%proc.cmdline", "%proc.cmdlin"),
    ("output token unknown", "%proc.cmdline", "%proc.commandline"),
    ("output percent at the end", "%proc.cmdline", "%proc.cmdline 100%"),
    ("output percent before a space", "%proc.cmdline", "%proc.cmdline 50% done"),
    ("output token with a number width", "%proc.cmdline", "%20proc.cmdline"),
    ("output token with a transformer", "%proc.cmdline", "%toupper(proc.cmdline)"),
    ("output transformer not closed", "%proc.cmdline", "%toupper(proc.cmdline"),
    ("output proc.aname with an index", "%proc.cmdline", "%proc.aname[2]"),
    ("output proc.aname with a word index", "%proc.cmdline", "%proc.aname[x]"),
    ("output evt.dir", "%proc.cmdline", "%proc.cmdline %evt.dir"),
    ("output container.info", "%proc.cmdline", "%proc.cmdline %container.info"),
    ("output unknown field glued to text", "%proc.cmdline", "%proc.cmdline(%user.nam)"),
    ("macro reference typo", "spawned_process and", "spawned_proces and"),
    ("desc removed", "  desc: ", "  dessc: "),
    ("condition removed", "  condition: ", "  conditio: "),
    ("output emptied", "  output: ", "  output: \"\"\n  xoutput: "),
    ("enabled: no", "  priority: WARNING", "  priority: WARNING\n  enabled: no"),
    ("enabled: off", "  priority: WARNING", "  priority: WARNING\n  enabled: off"),
    ("enabled: maybe", "  priority: WARNING", "  priority: WARNING\n  enabled: maybe"),
    ("enabled: False", "  priority: WARNING", "  priority: WARNING\n  enabled: False"),
    ("enabled twice, false then true", "  priority: WARNING", "  priority: WARNING\n  enabled: false\n  enabled: true"),
    ("priority twice, bad then good", "  priority: WARNING", "  priority: WARN\n  priority: WARNING"),
    ("tags not a sequence", "  tags: [", "  tags: x\n  xtags: ["),
    ("unknown key in a rule", "  priority: WARNING", "  priority: WARNING\n  colour: red"),
    ("capture key in a rule", "  priority: WARNING", "  priority: WARNING\n  capture: true"),
    ("source k8s_audit without plugin", "  priority: WARNING", "  priority: WARNING\n  source: k8s_audit"),
    ("source aws_cloudtrail without plugin", "  priority: WARNING", "  priority: WARNING\n  source: aws_cloudtrail"),
    ("skip-if-unknown-filter with a field typo", "  priority: WARNING",
     "  priority: WARNING\n  skip-if-unknown-filter: true"),
    ("proc.aname with a word index", "proc.aname[2]", "proc.aname[x]"),
    ("proc.aname with a negative index", "proc.aname[2]", "proc.aname[-1]"),
    ("proc.aname with a quoted index", "proc.aname[2]", "proc.aname[\"2\"]"),
    ("proc.name with an index", "proc.pname", "proc.pname[1]"),
    ("required engine version too new", "required_engine_version: ", "required_engine_version: 0.99.0\n- xrequired_engine_version: "),
    ("list used with =", "proc.name in (shell_binaries)", "proc.name = shell_binaries"),
    ("list used with in and no parentheses", "proc.name in (shell_binaries)", "proc.name in shell_binaries"),
    ("list name misspelt", "proc.name in (shell_binaries)", "proc.name in (shell_binarie)"),
]


def mutant_cases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for stack in ("stable-1.0.2", "stable-2.0.0", "stable-3.0.1", "stable-3.2.0"):
        text = (UPSTREAM / STACKS_040[stack][0]).read_text()
        for label, old, new in GENERIC_MUTATIONS:
            if old not in text:
                continue
            if label == "skip-if-unknown-filter with a field typo":
                # The skip flag on the rule holding the first proc.name, whose field is misspelt.
                at = text.index("proc.name")
                start = text.rfind("\n- rule:", 0, at)
                if start < 0 or "\n- " in text[start + 1:at]:
                    continue
                rule_text = text[start + 1:text.find("\n- ", at) if text.find("\n- ", at) > 0 else len(text)]
                mutated = rule_text.replace("proc.name", "proc.nmae", 1) + "\n  skip-if-unknown-filter: true"
                files = _base(STACKS_040[stack])
                files[0] = {**files[0], "replace": [[rule_text, mutated, 0]]}
                out.append({"name": f"{stack}: {label}", "group": "mutant", "files": files})
                continue
            out.append(_mutant(f"{stack}: {label}", "mutant", stack, 0, old, new))
    # The nth occurrence variants: the same edit further into the file reaches other rules and macros.
    text = (UPSTREAM / STACKS_040["stable-3.2.0"][0]).read_text()
    for label, old, new in GENERIC_MUTATIONS[:25]:
        count = text.count(old)
        for nth in sorted({count // 2, count - 1}):
            if nth > 0:
                out.append(_mutant(f"stable-3.2.0: {label} (occurrence {nth})", "mutant", "stable-3.2.0", 0, old, new, nth))
    # The stacked releases: a mutation in the incubating and the sandbox file.
    for index, label in ((1, "incubating"), (2, "sandbox"), (3, "deprecated")):
        for mlabel, old, new in GENERIC_MUTATIONS[:40]:
            path = STACKS_040["all-3.x"][index]
            if old in (UPSTREAM / path).read_text():
                out.append(_mutant(f"all-3.x {label}: {mlabel}", "mutant", "all-3.x", index, old, new))
    return out


def field_value_cases() -> list[dict[str, Any]]:
    """Values against field types: numbers, booleans, IPs, networks, ports, durations, buffers."""
    checks = [
        ("proc.pid = abc", "int64 word"), ("proc.pid = 12", "int64 number"), ("proc.pid = -12", "int64 negative"),
        ("proc.pid = 1.5", "int64 float"), ("proc.pid = 0x1f", "int64 hex"), ("proc.pid in (1, abc)", "int64 list with a word"),
        ("proc.pid > 1.5", "int64 greater than float"), ("proc.pid >= 10", "int64 greater than number"),
        ("evt.rawres >= -1.5", "rawres negative float"), ("evt.rawres >= -1", "rawres negative"),
        ("evt.rawres = \"1\"", "rawres quoted number"), ("evt.rawres = ''", "rawres empty"),
        ("evt.failed = maybe", "bool maybe"), ("evt.failed = true", "bool true"), ("evt.failed = false", "bool false"),
        ("evt.failed = True", "bool True"), ("evt.failed = 1", "bool 1"), ("evt.failed = yes", "bool yes"),
        ("evt.failed in (true, false)", "bool list"), ("evt.failed != false", "bool not equal"),
        ("fd.net = 10.0.0.0/8", "ipnet v4"), ("fd.net = 10.0.0.0/99", "ipnet v4 bad mask"),
        ("fd.net = 10.0.0.0", "ipnet v4 no mask"), ("fd.net = 10.0.0.300/8", "ipnet v4 bad address"),
        ("fd.net = 10.0.0.0/abc", "ipnet v4 word mask"), ("fd.net = 10.0.0.0/300", "ipnet v4 mask wraps past 255"),
        ("fd.net = \"fe80::/10\"", "ipnet v6"), ("fd.net = \"fe80::/0\"", "ipnet v6 zero mask"),
        ("fd.net = \"fe80::/129\"", "ipnet v6 mask too long"), ("fd.net = localnet", "ipnet word"),
        ("fd.snet in (not_a_list)", "ipnet undefined list"), ("fd.snet in (10.0.0.0/8, 192.168.0.0/16)", "ipnet list"),
        ("fd.sip = 10.0.0.1", "ip v4"), ("fd.sip = 10.0.0.256", "ip v4 out of range"), ("fd.sip = 10.0.0", "ip v4 short"),
        ("fd.sip = \"::1\"", "ip v6"), ("fd.sip = \"::g\"", "ip v6 bad"), ("fd.sip = localhost", "ip word"),
        ("fd.sip = 010.0.0.1", "ip v4 leading zero"), ("fd.sip in (10.0.0.1, 10.0.0.2)", "ip list"),
        ("fd.sip = 10.0.0.0/8", "ip given a network"),
        ("fd.sport = 22", "port number"), ("fd.sport = ssh", "port service name"), ("fd.sport = notaservice", "port unknown name"),
        ("fd.sport = -1", "port negative"), ("fd.sport in (22, 80, https)", "port list"),
        ("evt.latency > 1000", "reltime number"), ("evt.latency > 1s", "reltime duration 1s"),
        ("evt.latency > 10ms", "reltime duration 10ms"), ("proc.pid.ts > 100", "abstime number"),
        ("proc.pid.ts > 1h", "abstime duration"), ("thread.cpu > 0.5", "double float"), ("thread.cpu > 5", "double integer"),
        ("evt.buffer bcontains CAFEBABE", "bcontains hex"), ("evt.buffer bcontains CAFEBAB", "bcontains odd hex"),
        ("evt.buffer bcontains hello", "bcontains non hex"), ("evt.buffer bstartswith 7f454c46", "bstartswith hex"),
        ("evt.buffer contains hello", "buffer contains text"),
        ("fd.num = 3", "fd number"), ("fd.num = three", "fd word"), ("user.uid = 0", "uid number"),
        ("user.uid = root", "uid word"), ("proc.vpid = 1", "vpid number"), ("evt.count > 1", "count"),
        ("fd.typechar = f", "typechar"), ("evt.type = open and evt.arg.flags contains O_CREAT", "arg flags"),
        ("fd.l4proto = tcp", "l4proto"), ("proc.is_exe_writable = true", "bool exe writable"),
        ("proc.is_exe_writable = yes", "bool exe writable yes"),
        ("proc.aname[1] = bash", "aname index 1"), ("proc.aname[x] = bash", "aname word index"),
        ("proc.aname[-1] = bash", "aname negative index"), ("proc.aname = bash", "aname no index"),
        ("proc.aname[0] = bash", "aname index 0"), ("proc.apid[2] = 1", "apid index"), ("proc.apid[a] = 1", "apid word index"),
        ("proc.aexe[2] = /bin/sh", "aexe index"), ("proc.aexe[two] = /bin/sh", "aexe word index"),
        ("proc.env[HOME] = /root", "env name argument"), ("proc.env[1] = x", "env index"),
        ("proc.name[1] = bash", "argument on a field that takes none"), ("evt.arg[0] = x", "evt.arg index"),
        ("evt.arg.fd = 3", "evt.arg dotted"), ("evt.rawarg.fd = 3", "evt.rawarg dotted"),
        ("container.label[app] = x", "container label"), ("container.labels contains x", "container labels"),
        ("container.info = x", "container info in a condition"), ("container.id != host", "container id"),
        ("container.image.repository = nginx", "container image"), ("k8s.ns.name = default", "k8s namespace"),
        ("k8s.pod.label[app] = x", "k8s pod label"), ("container.mount.dest[/var/run/docker.sock] exists", "mount dest"),
        ("span.id = 1", "span id"), ("fd.types in (file)", "list field in"), ("fd.types = file", "list field equals"),
        ("proc.name regex bash", "regex plain"), ("proc.name regex 'ba(sh|zsh)'", "regex"),
        ("proc.name iglob 'BASH*'", "iglob"), ("proc.name = val(proc.pname)", "val transformer"),
        ("tolower(proc.name) = bash", "tolower"), ("proc.name contains anyof (a, b)", "anyof modifier (0.44)"),
        ("evt.type = opne", "evt.type unknown"), ("evt.type in (open, execve)", "evt.type list"),
        ("evt.type = container", "evt.type meta event"), ("evt.dir = <", "evt.dir"),
        ("evt.type = openat2", "evt.type openat2"), ("proc.name = bash and evt.type = execve", "string"),
        ("proc.name pmatch (/bin)", "pmatch on name"), ("fd.name pmatch (/etc, /usr/*)", "pmatch glob"),
        ("proc.pid pmatch (1)", "pmatch on a number"), ("evt.failed contains t", "contains on bool"),
        ("fd.sip startswith 10", "startswith on ip"), ("fd.net contains 10", "contains on ipnet"),
        ("proc.pid intersects (1, 2)", "intersects on a number"), ("proc.name > bash", "greater than on a string"),
        ("proc.name < 5", "less than number on a string"),
    ]
    out = []
    for cond, label in checks:
        full = cond if "evt.type" in cond else f"evt.type = execve and {cond}"
        out.append(_inline(f"value: {label}", "value", _rule(full)))
    return out


def output_cases() -> list[dict[str, Any]]:
    outputs = [
        "%proc.ttys", "%evt.types", "%proc.tty_name", "%proc.namex", "%proc.nam", "%fd.namee", "%user.names",
        "%evt.time.iso8601", "%evt.timestamp", "%evt.datetime", "%proc.aname[2]", "%proc.aname[x]", "%proc.aname",
        "%proc.aname[2", "%proc.env[HOME]", "%evt.arg.flags", "%evt.arg[0]", "%evt.args", "%container.info",
        "%container.id", "%k8s.pod.name", "% x", "100%", "%%", "%20proc.name", "%toupper(proc.name)",
        "%tolower(toupper(proc.name))", "%toupper(proc.name", "%b64(proc.name)", "%len(proc.name)",
        "%basename(proc.exe)", "%join(proc.name)", "%proc.name%fd.name", "%proc.name.x", "%evt.dir",
        "%evt.latency", "%span.id", "%custom.field", "%proc", "%thread.tid", "%thread.tidx", "(%proc.name)",
        "%proc.name,%proc.pid", "%evt.num%", "%proc.cmdline %container.info %k8s.ns.name",
    ]
    return [_inline(f"output: {o}", "output", _rule("evt.type = execve", f"'o {o}'")) for o in outputs]


def exception_value_cases() -> list[dict[str, Any]]:
    """Exceptions built into conditions: values with quotes, parentheses, commas, list names, exists."""
    def ex(fields: str, comps: str | None, values: str, label: str, name: str = "ex1") -> dict[str, Any]:
        comps_line = f"\n      comps: {comps}" if comps is not None else ""
        extra = f"  exceptions:\n    - name: {name}\n      fields: {fields}{comps_line}\n      values: {values}\n"
        return _inline(f"exception: {label}", "exception",
                       "- list: my_bins\n  items: [bash, sh]\n- list: empty_list\n  items: []\n"
                       + _rule("evt.type = execve and proc.name != x", extra=extra))
    values = [
        ("[proc.name]", None, "[[bash]]", "one field one value"),
        ("[proc.name]", None, "[[\"ba sh\"]]", "value with a space"),
        ("[proc.name]", None, "[['\"ba sh\"']]", "value already double quoted"),
        ("[proc.name]", None, "[[\"ba'sh\"]]", "value with an apostrophe"),
        ("[proc.name]", None, "[['ba\"sh']]", "value with a double quote"),
        ("[proc.name]", None, "[[\"ba(sh\"]]", "value with an open parenthesis"),
        ("[proc.name]", None, "[[\"ba)sh\"]]", "value with a close parenthesis"),
        ("[proc.name]", None, "[[\"(bash)\"]]", "value in parentheses"),
        ("[proc.name]", None, "[[\"ba,sh\"]]", "value with a comma"),
        ("[proc.name]", None, "[[\"=bash\"]]", "value starting with ="),
        ("[proc.name]", None, "[[\"ba=sh\"]]", "value with ="),
        ("[proc.name]", None, "[[\"\"]]", "empty value"),
        ("[proc.name]", None, "[[\"a b,c\"]]", "value with a space and a comma"),
        ("[proc.name]", None, "[[my_bins]]", "list name as a value with ="),
        ("[proc.name]", "[in]", "[[my_bins]]", "list name as a value with in"),
        ("[proc.name]", "[in]", "[[[my_bins, zsh]]]", "list name inside a value list"),
        ("[proc.name]", "[in]", "[[empty_list]]", "empty list name with in"),
        ("[proc.name]", "[in]", "[[[bash, \"a b\"]]]", "value list with a space"),
        ("[proc.name]", "[in]", "[[[\"a,b\", c]]]", "value list with a comma"),
        ("[proc.name]", "[in]", "[[not_a_list]]", "undefined list name with in"),
        ("[proc.name]", "[exists]", "[[bash]]", "exists with a value"),
        ("[proc.name]", "[exists]", "[[\"\"]]", "exists with an empty value"),
        ("[proc.name, fd.name]", "[exists, =]", "[[x, /etc]]", "exists first with a value"),
        ("[proc.name]", "[startswith]", "[[\"/usr/bin (x)\"]]", "startswith value with parentheses"),
        ("[proc.name]", "[pmatch]", "[[[/usr, /bin]]]", "pmatch list"),
        ("[proc.name]", "[contains]", "[[\"a'b\"]]", "contains with an apostrophe"),
        ("[proc.pid]", "[=]", "[[abc]]", "number field with a word"),
        ("[proc.pid]", "[=]", "[[12]]", "number field with a number"),
        ("[proc.pid]", "[in]", "[[[1, 2]]]", "number field in a list"),
        ("[fd.sip]", "[=]", "[[10.0.0.1]]", "ip field"),
        ("[fd.snet]", "[in]", "[[not_a_list]]", "network field with an undefined list"),
        ("[evt.failed]", "[=]", "[[maybe]]", "bool field with maybe"),
        ("proc.name", None, "[bash, sh]", "single field form"),
        ("proc.name", "in", "[my_bins]", "single field form with a list name"),
        ("proc.name", "pmatch", "[/usr]", "single field pmatch"),
        ("proc.name", "=", "[bash]", "single field with ="),
        ("proc.name", "startswith oneof", "[a, b]", "single field with a modifier (0.44)"),
        ("proc.name", None, "[[bash]]", "single field form with a list value"),
        ("[proc.name, proc.pname]", "[=, =]", "[[bash, sshd], [sh, \"a b\"]]", "two fields two tuples"),
        ("[proc.name, proc.pname]", "[=]", "[[bash, sshd]]", "comps shorter than fields"),
        ("[proc.name, proc.pname]", "[=, =]", "[[bash]]", "values shorter than fields"),
        ("[proc.name]", "[like]", "[[bash]]", "unsupported comparison"),
        ("[proc.nmae]", None, "[[bash]]", "unknown field"),
        ("[proc.name]", "[\" = \"]", "[[bash]]", "comp with blanks"),
        ("{a: proc.name}", None, "[[bash]]", "fields as a map"),
        ("[proc.name]", None, "bash", "values not a sequence"),
        ("[proc.name]", None, "[bash]", "value tuple not a list"),
        ("[\"proc.aname[2]\"]", None, "[[bash]]", "field with an argument"),
        ("[proc.name]", "[icontains]", "[[\"BASH\"]]", "icontains"),
        ("[proc.name]", "[glob]", "[[\"ba*\"]]", "glob"),
        ("[proc.name]", "[regex]", "[[\"ba.*\"]]", "regex"),
        ("[fd.name]", "[bcontains]", "[[CAFE]]", "bcontains on a string field"),
    ]
    out = [ex(f, c, v, label) for f, c, v, label in values]
    # Shapes around the exception entry itself.
    rule_head = _rule("evt.type = execve and proc.name != x")
    out.append(_inline("exception: no fields", "exception", rule_head + "  exceptions:\n    - name: e\n      values: [[bash]]\n"))
    out.append(_inline("exception: no name", "exception", rule_head + "  exceptions:\n    - fields: [proc.name]\n      values: [[bash]]\n"))
    out.append(_inline("exception: no values", "exception", rule_head + "  exceptions:\n    - name: e\n      fields: [proc.name]\n"))
    out.append(_inline("exception: two with the same name", "exception",
                       rule_head + "  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[a]]\n"
                       "    - name: e\n      fields: [proc.name]\n      values: [[b]]\n"))
    out.append(_inline("exception: exceptions not a sequence", "exception", rule_head + "  exceptions: x\n"))
    out.append(_inline("exception: an entry not a map", "exception", rule_head + "  exceptions: [x]\n"))
    return out


def override_cases() -> list[dict[str, Any]]:
    r = "- rule: Terminal shell in container\n"
    cases = [
        ("condition append", r + "  condition: and proc.name != zsh\n  override:\n    condition: append\n"),
        ("condition replace", r + "  condition: spawned_process and proc.name = zsh\n  override:\n    condition: replace\n"),
        ("output append", r + "  output: extra=%proc.pid\n  override:\n    output: append\n"),
        ("priority append", r + "  priority: ERROR\n  override:\n    priority: append\n"),
        ("priority replace", r + "  priority: ERROR\n  override:\n    priority: replace\n"),
        ("priority replace lower-case", r + "  priority: error\n  override:\n    priority: replace\n"),
        ("enabled replace", r + "  enabled: false\n  override:\n    enabled: replace\n"),
        ("enabled replace yes", r + "  enabled: no\n  override:\n    enabled: replace\n"),
        ("tags append", r + "  tags: [extra]\n  override:\n    tags: append\n"),
        ("capture replace", r + "  capture: true\n  override:\n    capture: replace\n"),
        ("capture_duration replace", r + "  capture_duration: 10\n  override:\n    capture_duration: replace\n"),
        ("warn_evttypes replace", r + "  warn_evttypes: false\n  override:\n    warn_evttypes: replace\n"),
        ("skip-if-unknown-filter replace", r + "  skip-if-unknown-filter: true\n  override:\n    skip-if-unknown-filter: replace\n"),
        ("source replace", r + "  source: syscall\n  override:\n    source: replace\n"),
        ("bad mode", r + "  condition: and x\n  override:\n    condition: prepend\n"),
        ("key listed but missing", r + "  override:\n    condition: append\n"),
        ("key present but not listed", r + "  condition: and x\n  output: o\n  override:\n    condition: append\n"),
        ("override with append true", r + "  condition: and x\n  append: true\n  override:\n    condition: append\n"),
        ("target missing", "- rule: No such rule\n  condition: and x\n  override:\n    condition: append\n"),
        ("replace target missing", "- rule: No such rule\n  enabled: false\n  override:\n    enabled: replace\n"),
        ("exceptions append to a rule with none", r + "  exceptions:\n    - name: e\n      fields: [proc.name]\n"
         "      values: [[bash]]\n  override:\n    exceptions: append\n"),
        ("exceptions replace on a rule with none", r + "  exceptions:\n    - name: e\n      fields: [proc.name]\n"
         "      values: [[bash]]\n  override:\n    exceptions: replace\n"),
        ("append true condition", r + "  condition: and proc.name != zsh\n  append: true\n"),
        ("append true enabled without condition", r + "  enabled: false\n  append: true\n"),
        ("enable-only item", r + "  enabled: false\n"),
        ("enable-only item on a missing rule", "- rule: No such rule\n  enabled: false\n"),
        ("macro override append", "- macro: spawned_process\n  condition: and proc.name != x\n  override:\n    condition: append\n"),
        ("list override append", "- list: shell_binaries\n  items: [fish]\n  override:\n    items: append\n"),
        ("list append true", "- list: shell_binaries\n  items: [fish]\n  append: true\n"),
        ("list override missing", "- list: no_such_list\n  items: [fish]\n  override:\n    items: append\n"),
        ("macro redefined", "- macro: spawned_process\n  condition: (evt.type in (execve))\n"),
        ("rule redefined with another source", r + "  desc: d\n  condition: evt.type = execve\n  output: o\n"
         "  priority: INFO\n  source: k8s_audit\n"),
        ("required_engine_version with another key", "- required_engine_version: 0.31.0\n  colour: red\n"),
        ("unknown top-level item", "- colour: red\n"),
        ("macro with an invalid name", "- macro: 1bad\n  condition: evt.type = execve\n"),
        ("unused macro", "- macro: my_unused\n  condition: evt.type = execve\n"),
        ("unused list", "- list: my_unused_list\n  items: [a]\n"),
    ]
    out = [_appended(f"override: {label}", "override", "stable-3.2.0", text) for label, text in cases]
    # Exceptions then replace: the rule has exceptions first, so Falco 0.40.0 does not crash.
    out.append(_appended("override: exceptions replace after append", "override", "stable-3.2.0",
                         r + "  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[bash]]\n"
                         "  override:\n    exceptions: append\n"
                         + r + "  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[zsh]]\n"
                         "  override:\n    exceptions: replace\n"))
    return out


def yaml_cases() -> list[dict[str, Any]]:
    texts = [
        ("not a sequence", "rule: r\n"),
        ("invalid yaml", "- rule: r\n  desc: [\n"),
        ("a scalar entry", "- x\n"),
        ("empty document", ""),
        ("two documents", _rule("evt.type = execve") + "---\n" + _rule("evt.type = open", name="r2")),
        ("null entry", "-\n" + _rule("evt.type = execve")),
        ("rule name with spaces and slash", _rule("evt.type = execve", name="A b/c")),
        ("empty condition", _rule("''")),
        ("tab in a folded condition", "- rule: r\n  desc: d\n  condition: >\n    evt.type = execve\n    and proc.name = bash\n"
                                      "  output: o\n  priority: INFO\n"),
        ("duplicate condition key", "- rule: r\n  desc: d\n  condition: evt.type = execve\n  condition: bad ((\n"
                                    "  output: o\n  priority: INFO\n"),
        ("list items integers", "- list: ports\n  items: [22, 80]\n" + _rule("evt.type = connect and fd.sport in (ports)")),
        ("list items with a space", "- list: cmds\n  items: [\"a b\", c]\n" + _rule("evt.type = execve and proc.cmdline in (cmds)")),
        ("list with an invalid name", "- list: 'a b'\n  items: [x]\n" + _rule("evt.type = execve")),
        ("list inside a list defined later", "- list: a\n  items: [b_list]\n- list: b_list\n  items: [x]\n"
                                             + _rule("evt.type = execve and proc.name in (a)")),
        ("macro using a later macro", "- macro: m1\n  condition: m2\n- macro: m2\n  condition: evt.type = execve\n"
                                      + _rule("m1")),
        ("rule using a later macro", _rule("m2") + "- macro: m2\n  condition: evt.type = execve\n"),
        ("no event type", _rule("proc.name = bash")),
        ("no event type silenced", _rule("proc.name = bash", extra="  warn_evttypes: false\n")),
        ("negated event type", _rule("not evt.type = execve")),
        ("NA comparison", _rule("evt.type = execve and proc.name = <NA>")),
        ("required_engine_version integer", "- required_engine_version: 10\n" + _rule("evt.type = execve")),
        ("required_engine_version bad", "- required_engine_version: abc\n" + _rule("evt.type = execve")),
        ("required_plugin_versions unmet", "- required_plugin_versions:\n  - name: container\n    version: 0.1.0\n"
                                           + _rule("evt.type = execve")),
        ("disabled broken rule", _rule("evt.type = execve and proc.nmae = x", extra="  enabled: false\n")),
        ("priority debug", "- rule: r\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: DEBUG\n"),
        ("tags with duplicates", _rule("evt.type = execve", extra="  tags: [a, a, b]\n")),
        ("enabled quoted no", _rule("evt.type = execve", extra="  enabled: 'no'\n")),
        ("enabled y", _rule("evt.type = execve", extra="  enabled: y\n")),
        ("enabled on", _rule("evt.type = execve", extra="  enabled: on\n")),
        ("warn_evttypes no", _rule("proc.name = bash", extra="  warn_evttypes: no\n")),
        ("skip-if-unknown-filter with unknown field", _rule("evt.type = execve and proc.nmae = x",
                                                            extra="  skip-if-unknown-filter: true\n")),
        ("skip-if-unknown-filter with unknown output field", _rule("evt.type = execve", "o %proc.nmae",
                                                                   extra="  skip-if-unknown-filter: true\n")),
        ("skip-if-unknown-filter with unknown event type", _rule("evt.type = opne",
                                                                 extra="  skip-if-unknown-filter: true\n")),
        ("skip-if-unknown-filter with a bad value", _rule("evt.type = execve and proc.pid = abc",
                                                          extra="  skip-if-unknown-filter: true\n")),
        ("source k8s_audit", _rule("ka.verb = create", "o %ka.verb", extra="  source: k8s_audit\n")),
        ("source syscall explicit", _rule("evt.type = execve", extra="  source: syscall\n")),
        ("field = list expansion", "- list: l1\n  items: [a, b]\n" + _rule("evt.type = execve and proc.name = l1")),
        ("field = one-item list", "- list: l1\n  items: [a]\n" + _rule("evt.type = execve and proc.name = l1")),
        ("field = empty list", "- list: l1\n  items: []\n" + _rule("evt.type = execve and proc.name = l1")),
        ("field in list without parentheses", "- list: l1\n  items: [a, b]\n" + _rule("evt.type = execve and proc.name in l1")),
        ("field in one-item list without parentheses", "- list: l1\n  items: [a]\n" + _rule("evt.type = execve and proc.name in l1")),
        ("empty list in parentheses", "- list: l1\n  items: []\n" + _rule("evt.type = execve and proc.name in (l1)")),
        ("empty list next to an item", "- list: l1\n  items: []\n" + _rule("evt.type = execve and proc.name in (l1, bash)")),
        ("list name inside a quoted string", "- list: l1\n  items: [a, b]\n"
                                             + _rule("evt.type = execve and proc.cmdline contains \"x l1 y\"")),
        ("list name as a bare value of startswith", "- list: l1\n  items: [a]\n"
                                                    + _rule("evt.type = execve and proc.name startswith l1")),
        ("numeric list on a numeric field", "- list: pids\n  items: [1, abc]\n" + _rule("evt.type = execve and proc.pid in (pids)")),
        ("ip list items quoted", "- list: nets\n  items: ['\"10.0.0.0/8\"']\n" + _rule("evt.type = connect and fd.snet in (nets)")),
        ("ip list items bad", "- list: nets\n  items: ['10.0.0.0/99']\n" + _rule("evt.type = connect and fd.snet in (nets)")),
    ]
    return [_inline(f"yaml: {label}", "shape", text) for label, text in texts]


def cases() -> list[dict[str, Any]]:
    out = [*upstream_cases(), *mutant_cases(), *field_value_cases(), *output_cases(), *exception_value_cases(),
           *override_cases(), *yaml_cases()]
    names = [c["name"] for c in out]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, dupes
    return out


# -- building the files and running Falco ----------------------------------------------------------------


def materialise(case: dict[str, Any]) -> list[tuple[str, str]]:
    """(file name, text) for each file of a case, in load order (also used by the test)."""
    out = []
    for f in case["files"]:
        if "text" in f:
            out.append((f["name"], f["text"]))
            continue
        text = (UPSTREAM / f["base"]).read_text()
        for old, new, nth in f.get("replace", []):
            start = -1
            for _ in range(nth + 1):
                start = text.index(old, start + 1)
            text = text[:start] + new + text[start + len(old):]
        out.append((f["name"], text))
    return out


def _run(falco: str, config: str, paths: list[str], extra: list[str]) -> tuple[int, str, str]:
    args = [falco, "-c", config, "-o", "json_output=true"]
    for p in paths:
        args += ["-V", p]
    proc = subprocess.run(args + extra, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _json_doc(text: str, key: str) -> dict[str, Any] | None:
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and key in line:
            try:
                doc: dict[str, Any] = json.loads(line)
                return doc
            except json.JSONDecodeError:
                continue
    return None


def _items(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        locs = e.get("context", {}).get("locations", [])
        first = locs[0] if locs else {}
        # The first location is the file ("rules content"); the item is the first named one after it.
        item = next((loc for loc in locs[1:] if loc.get("item_name")), locs[1] if len(locs) > 1 else {})
        out.append({
            "code": e["code"],
            "message": e["message"],
            "file": Path(first.get("position", {}).get("name", "")).name,
            "item_type": item.get("item_type", ""),
            "item_name": item.get("item_name", ""),
        })
    return out


def judge(falco: str, config: str, case: dict[str, Any], workdir: Path) -> dict[str, Any]:
    paths = []
    for i, (name, text) in enumerate(materialise(case)):
        p = workdir / f"{i:02d}-{name}"
        p.write_text(text)
        paths.append(str(p))
    rc, out, err = _run(falco, config, paths, ["-L"])
    doc = _json_doc(out, "falco_load_results")
    verdict: dict[str, Any] = {"exit_status": rc}
    if doc is None:
        verdict.update({"valid": False, "crashed": rc < 0 or rc > 128, "errors": [], "warnings": [],
                        "stderr": (err or out)[-400:]})
        return verdict
    errors, warnings = [], []
    for res in doc["falco_load_results"]:
        errors += _items(res.get("errors", []))
        warnings += _items(res.get("warnings", []))
    verdict.update({"valid": rc == 0 and not errors, "errors": errors, "warnings": warnings})
    listed = doc.get("falco_describe_results")
    if verdict["valid"] and isinstance(listed, dict):
        rules = {}
        for r in listed.get("rules", []):
            info = r.get("info", {})
            rules[info.get("name")] = {"enabled": info.get("enabled")}
            if case["group"] == "exception":
                rules[info.get("name")]["condition_compiled"] = r.get("details", {}).get("condition_compiled")
        verdict["rules"] = rules
    return verdict


def falco_version(falco: str) -> tuple[str, str]:
    out = subprocess.run([falco, "--version"], capture_output=True, text=True, timeout=60).stdout
    version = re.search(r"Falco version:\s*(\S+)", out)
    engine = re.search(r"Engine:\s*(\S+)", out)
    assert version and engine, out
    return version.group(1), engine.group(1)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("falco", help="path to a falco binary")
    ap.add_argument("--config", default="/dev/null", help="Falco configuration (default: none, /dev/null)")
    ap.add_argument("--jobs", type=int, default=2, help="Falco processes at a time (default 2)")
    ap.add_argument("--only", help="regex: regenerate only the cases whose name matches (for debugging)")
    args = ap.parse_args(argv)
    version, engine = falco_version(args.falco)
    todo = cases()
    if args.only:
        todo = [c for c in todo if re.search(args.only, c["name"])]
    with tempfile.TemporaryDirectory() as tmp:
        def one(n: int) -> dict[str, Any]:
            work = Path(tmp) / f"{n:04d}"
            work.mkdir()
            verdict = judge(args.falco, args.config, todo[n], work)
            print(f"[{n + 1}/{len(todo)}] {todo[n]['name']}: {'valid' if verdict['valid'] else 'invalid'}",
                  file=sys.stderr)
            return {**todo[n], "falco": verdict}

        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(one, range(len(todo))))
    out_dir = HERE / version
    out_dir.mkdir(exist_ok=True)
    doc = {"falco_version": version, "engine_version": engine,
           "command": "falco -c /dev/null -o json_output=true -V <file> ... -L", "cases": results}
    if args.only:
        print(json.dumps(doc, indent=1))
        return 0
    (out_dir / "cases.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(results)} cases to {out_dir / 'cases.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
