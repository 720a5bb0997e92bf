"""Kubernetes adapters: ``client`` (REST over urllib3), ``resources`` (paths of padlock kinds),
``apply`` (server-side apply), ``status`` (the only status writer), ``events`` and ``publish``."""
