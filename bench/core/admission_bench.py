"""Benchmark: admission of a CustomPolicy with ``falcoRules`` against the stable + incubating + sandbox rules.

Run: ``python bench/core/admission_bench.py [--repeat N]``. Times ``padlock.policy.admission.validate``
of one CustomPolicy whose ``falcoRules`` uses upstream macros, the way the webhook calls it: first on
a fresh view (the upstream load is prepared), then on views of the same upstream (what every later
request costs: ``falcoRules`` loaded on the prepared upstream), next to a full ``loader.load`` of
upstream + ``falcoRules`` (what each request cost before the prepared load was kept). Upstream files
come from the vendored ``tests/data/upstream-rules``. Prints figures only.
"""

from __future__ import annotations

import argparse
import platform
import timeit
from collections.abc import Callable

from padlock.devenv.paths import upstream_rules_dir
from padlock.engine import loader
from padlock.engine.model import RulesFile
from padlock.policy import admission

FILES = (
    "falco-rules-5.1.0/falco_rules.yaml",
    "falco-incubating-rules-6.0.1/falco-incubating_rules.yaml",
    "falco-sandbox-rules-6.1.0/falco-sandbox_rules.yaml",
)
PLUGINS = {"container": "0.4.0"}
FALCO_RULES = """\
- rule: Shell spawned by a web server
  desc: a web server process started a shell
  condition: spawned_process and container and proc.pname in (nginx, httpd) and proc.name in (shell_binaries)
  output: shell under a web server (cmd=%proc.cmdline image=%container.image.repository)
  priority: WARNING
  tags: [custom, shell]
"""
BODY = {"apiVersion": "padlock.dev/v1alpha1", "kind": "CustomPolicy", "metadata": {"name": "web"},
        "spec": {"falcoRules": FALCO_RULES}}


def best(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` single runs (stdlib timeit: the least disturbed run is the figure)."""
    # gc stays on, as in real use (timeit switches it off unless setup re-enables it).
    return min(timeit.repeat(fn, setup="gc.enable()", number=1, repeat=repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    root = upstream_rules_dir()
    files = [RulesFile(f"{i:02d}-falco-{p.split('/')[-1]}", (root / p).read_text()) for i, p in enumerate(FILES)]
    print(f"python {platform.python_version()} on {platform.machine()}, best of {args.repeat}; "
          f"{len(files)} upstream files, {sum(len(f.text) for f in files) // 1024} KiB")

    def full() -> None:  # what every request did before: all upstream files read again
        result = loader.load([*files, RulesFile(admission.CUSTOM_RULES_FILE, FALCO_RULES)], plugins=PLUGINS)
        assert not [d for d in result.errors if d.file == admission.CUSTOM_RULES_FILE]

    cache = admission.UpstreamCache()

    def cold() -> None:  # the first request after the upstream changed
        view = admission.AdmissionView.build(files, {}, plugins=PLUGINS, cache=admission.UpstreamCache())
        assert not [d for d in admission.validate(BODY, view) if d.severity == "error"]

    view = admission.AdmissionView.build(files, {}, plugins=PLUGINS, cache=cache)

    def warm() -> None:  # every later request, whatever else changed in the operator's state
        assert not [d for d in admission.validate(BODY, view) if d.severity == "error"]

    full()  # warm the field catalog, as a running webhook would have it
    warm()
    f, c, w = best(full, args.repeat), best(cold, args.repeat), best(warm, args.repeat)
    print(f"full load per request (before)       {f * 1000:8.2f} ms")
    print(f"first request after an upstream change {c * 1000:6.2f} ms (prepare + validate)")
    print(f"later requests (prepared upstream)   {w * 1000:8.2f} ms   {f / w:.0f}x faster than before")


if __name__ == "__main__":
    main()
