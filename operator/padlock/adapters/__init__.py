"""Cluster I/O for the operator: a small Kubernetes REST client, server-side apply of managed policies,
the single status writer, Events and the publisher of rules ConfigMaps. Called by ``padlock.flows``;
nothing here decides anything (the decisions come from ``padlock.policy``)."""
