"""REST paths of the padlock kinds come from ``padlock.api.kinds`` (the table the CRDs are made from).

Covers: every kind of ``padlock.api.kinds.ALL`` has a path; namespaced kinds put the namespace in the
path, cluster-scoped kinds never do; subresource paths; names are quoted.
"""

from __future__ import annotations

from padlock.adapters.kube import resources
from padlock.api import kinds


def test_every_api_kind_has_a_resource_with_its_plural_and_scope():
    assert set(resources.KINDS) == {k.kind for k in kinds.ALL}
    for k in kinds.ALL:
        assert resources.KINDS[k.kind].path() == f"/apis/{k.group}/{k.version}/{k.plural}"
        assert resources.KINDS[k.kind].namespaced is k.namespaced


def test_namespace_only_in_paths_of_namespaced_kinds():
    pex = resources.POLICY_EXCEPTION.path("quiet", namespace="shop", sub="status")
    assert pex == "/apis/padlock.dev/v1alpha1/namespaces/shop/policyexceptions/quiet/status"
    cpex = resources.CLUSTER_POLICY_EXCEPTION.path("quiet", namespace="shop")
    assert cpex == "/apis/padlock.dev/v1alpha1/clusterpolicyexceptions/quiet"
    assert resources.MANAGED_POLICY.path("a b") == "/apis/padlock.dev/v1alpha1/managedpolicies/a%20b"
