"""Benchmark: peak memory and time to refusal for the worst hostile rules files of issue 11.

Run: ``python bench/core/hostile_bench.py``. Each case runs in a fresh process (``multiprocessing``
spawn), which reads the file with ``padlock.engine.loader.load`` as the operator does for a release;
printed per case: the verdict (error id), wall time to the refusal, and the process's peak RSS
(``ru_maxrss``) next to the same process's RSS before loading. A good upstream file is measured the
same way as the reference. Prints figures only; tests never assert timings.
"""

from __future__ import annotations

import multiprocessing
import platform
import resource
import time
from collections.abc import Callable

CaseFn = Callable[[], str]


def rule(condition: str) -> str:
    return f"- rule: r\n  desc: d\n  output: o\n  priority: INFO\n  condition: {condition}\n"


def cases() -> dict[str, CaseFn]:
    def laughs() -> str:
        lines = ['- &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
        lines += [f"- &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
        return "\n".join(lines) + "\n"

    def chain() -> str:
        text = "- macro: m0\n  condition: evt.type = open\n"
        text += "".join(f"- macro: m{i}\n  condition: m{i - 1} and proc.name = x\n" for i in range(1, 3000))
        return text + rule("m2999")

    def upstream() -> str:
        from padlock.devenv.paths import upstream_rules_dir

        return (upstream_rules_dir() / "falco-rules-5.1.0" / "falco_rules.yaml").read_text()

    return {
        "upstream falco-rules 5.1.0 (reference)": upstream,
        "100k nested [": lambda: "[" * 100_000,
        "1,000 nested [ ]": lambda: "[" * 1000 + "]" * 1000,
        "chain of 3,000 macros": chain,
        "billion laughs": laughs,
        "40 doubling alias levels": lambda: "- &l0 [x, x]\n" + "".join(
            f"- &l{i} [*l{i - 1}, *l{i - 1}]\n" for i in range(1, 40)),
        "condition: 100k-letter identifier": lambda: rule("a" * 100_000 + " = 1"),
        "200k-letter macro name": lambda: f"- macro: {'m' * 200_000}-\n  condition: evt.type = open\n",
        "700k unknown event types (5.5 MB)": lambda: rule(
            "evt.type in (" + ",".join(f"z{i}" for i in range(700_000)) + ")"),
        "30k unknown event types (under the limit)": lambda: rule(
            "evt.type in (" + ",".join(f"z{i}" for i in range(30_000)) + ")"),
        "list of 240k items": lambda: "- list: l\n  items: [" + ",".join(f"i{i}" for i in range(240_000)) + "]\n",
        "8 MB + 1 byte file": lambda: "#" * (8 * 1024 * 1024 + 1),
    }


def _run(name: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from padlock.engine import loader
    from padlock.engine.model import RulesFile

    text = cases()[name]()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    res = loader.load([RulesFile("hostile.yaml", text)], plugins={"container": "0.4.0"})
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    verdict = res.errors[0].id if res.errors else "valid"
    out.put((verdict, took, base, peak))


def main() -> None:
    ctx = multiprocessing.get_context("spawn")
    print(f"python {platform.python_version()} on {platform.machine()}; one fresh process per case")
    print(f"{'case':40} {'verdict':22} {'time':>9} {'RSS before':>11} {'peak RSS':>9}")
    for name in cases():
        q = ctx.Queue()
        p = ctx.Process(target=_run, args=(name, q))
        p.start()
        p.join(600)
        if p.exitcode != 0:
            print(f"{name:40} {'CRASHED exit ' + str(p.exitcode):22}")
            continue
        verdict, took, base, peak = q.get()
        print(f"{name:40} {verdict:22} {took * 1000:7.1f} ms {base / 1024:8.1f} MB {peak / 1024:6.1f} MB")


if __name__ == "__main__":
    main()
