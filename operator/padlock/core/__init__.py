"""Pure core of Padlock: Falco rules and policies in, checked rulesets, diagnostics and renders out.

No I/O, clock, network, kopf or Kubernetes here: callers pass file contents and ``now``. Entry points are
``padlock.core.loader.load`` (rules files -> ``Ruleset`` + diagnostics) and ``padlock.core.differ.diff``.
"""
