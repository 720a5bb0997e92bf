"""Use cases of the running operator: sync a RuleSource, reconcile policies, render and publish.

Flows wire ``padlock.sources`` (pull), ``padlock.engine`` and ``padlock.policy`` (decide) and ``padlock.adapters`` (write)
through small ports, so they are unit-tested with fakes and called unchanged by the kopf handlers in
``padlock.controllers`` and by the CLI. Flows never import kopf.
"""
