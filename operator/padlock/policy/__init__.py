"""Padlock's policy model: catalog, managed and custom policies, exceptions -> the ruleset to publish.

Selects managed policies from the catalog (``catalog``, ``managed``), parses policy objects
(``policy_objects``), builds the generated policy layer (``layer``, ``exceptions_render``,
``custom_rules``), renders the effective ruleset and its ConfigMap shards (``effective``,
``sharding``), says which rules run (``running``), tracks changes (``changes``), checks admission
(``admission``), holds the lock on Padlock's own objects (``lock``, ``lock_policy``), names MITRE
tactics (``mitre``) and suggests tuning from alerts (``tuning``). It checks every result with the
rules engine (``padlock.engine``), which never imports it.

Who calls it: the CLI, the webhook and the operator flows. What it must not do: import kopf, Kubernetes
or network clients, or read the clock (``now`` is passed in).
"""
