"""Development tooling: a real local control plane (kube-apiserver + etcd), an OCI registry, and the
official kubectl and helm binaries, found or fetched from package registries. Used by the test
fixtures in ``tests/conftest.py``, by ``padlock demo``, by ``bench/`` and by ``.ci/install``; the
operator itself never imports it.
"""
