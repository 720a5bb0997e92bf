"""Padlock: managed Falco policies for Kubernetes.

The package flows down the page: ``api`` (typed CRD models) -> ``core`` (pure Falco rules and policy
logic) and ``sources`` / ``adapters`` (I/O) -> ``flows`` (use cases) -> entry points
(``controllers``, ``webhook``, ``cli``); ``devenv`` runs a local control plane for tests and the demo.
"""

__version__ = "0.1.0"
