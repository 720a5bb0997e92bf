"""Falco's rules engine, in Python: rules files in, a checked ``Ruleset`` and Falco's diagnostics out.

Reads rules files (``reader`` over ``safe_yaml``), collects and compiles their items with Falco's
define/append/override semantics (``collector``, ``compiler``, ``exception_text``, the condition
language in ``condition``), checks fields and versions against the tables of the Falco release being
validated for (``fields``, ``versions``, ``data/``), and compares two rulesets (``differ``). Entry points
are ``padlock.engine.loader.load`` (rules files -> ``Ruleset`` + diagnostics) and
``padlock.engine.differ.diff``.

Who calls it: the policy model (``padlock.policy``), the CLI, the webhook and the operator flows.
What it must not do: import the policy model or any edge (flows, adapters, controllers, cli, webhook,
sources), or do I/O, read the clock or the network: callers pass file contents and versions
(import contracts in pyproject.toml, ``tests/unit/test_import_graph.py``).
"""
