"""Adapters over an in-memory API (a fake ``KubeClient``, not a mock: it stores objects and moves
resourceVersions as the API server does). Covers: publishing skips the write when nothing changed,
writes each ConfigMap in one request, keeps other owners' labels, deletes stale shards only after all
shards are written; reads and writes only the names the Falco mount declares (no list), refuses a
render that needs more before writing anything; replaces an immutable or foreign ConfigMap (delete,
create) and removes a foreign one under an unused shard name, each with a Warning Event; the status writer skips equal statuses and removes vanished keys; the applied
ManagedPolicy body never carries user choices nor empty maps."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from padlock.adapters.kube import apply, publish, status
from padlock.adapters.kube.client import ApiError
from padlock.adapters.kube.resources import MANAGED_POLICY, configmap_path


class MemoryApi:
    """Objects by path; each write bumps a global resourceVersion; records every write."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.rv = 100

    def _stored(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj = copy.deepcopy(body)
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        self.objects[path] = obj
        return copy.deepcopy(obj)

    def get(self, path: str, **_: str) -> dict[str, Any]:
        if path not in self.objects:
            raise ApiError("GET", path, 404, "NotFound", "not found")
        return copy.deepcopy(self.objects[path])

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get(path))

    def list(self, path: str, labelSelector: str = "", **_: str) -> list[dict[str, Any]]:
        key, _, value = labelSelector.partition("=")
        return [copy.deepcopy(o) for p, o in sorted(self.objects.items()) if p.startswith(path + "/")
                and (not key or (o["metadata"].get("labels") or {}).get(key) == value)]

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"].get("name") or f"{body['metadata']['generateName']}{self.rv}"
        self.writes.append(("create", name))
        return self._stored(f"{path}/{name}", body)

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert body["metadata"]["resourceVersion"] == self.objects[path]["metadata"]["resourceVersion"]
        self.writes.append(("replace", body["metadata"]["name"]))
        return self._stored(path, body)

    def delete(self, path: str) -> None:
        self.writes.append(("delete", path.rsplit("/", 1)[-1]))
        self.objects.pop(path)

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        base = path.removesuffix("/status")
        obj = self.objects[base]
        for key, value in body["status"].items():
            if value is None:
                obj.setdefault("status", {}).pop(key, None)
            else:
                obj.setdefault("status", {})[key] = value
        self.writes.append(("status", base.rsplit("/", 1)[-1]))
        return self._stored(base, obj)


OWNER = [{"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "name": "src", "uid": "u1",
          "controller": False, "blockOwnerDeletion": False}]


def content(name: str, data: dict[str, str], digest: str = "sha256:1") -> publish.ConfigMapContent:
    return publish.ConfigMapContent(name, data, {"padlock.dev/content-hash": digest, "padlock.dev/source-versions": "src=1"})


def test_unchanged_content_is_not_written_again():
    api = MemoryApi()
    publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "x"})], OWNER)  # type: ignore[arg-type]
    rv = api.objects[configmap_path("falco", "padlock-rules")]["metadata"]["resourceVersion"]
    result = publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "x"})], OWNER)  # type: ignore[arg-type]
    assert result.written == () and result.unchanged == ("padlock-rules",)
    assert api.objects[configmap_path("falco", "padlock-rules")]["metadata"]["resourceVersion"] == rv
    assert api.writes == [("create", "padlock-rules")]


def test_changed_content_is_one_replace_that_keeps_foreign_labels():
    api = MemoryApi()
    publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "x"})], OWNER)  # type: ignore[arg-type]
    api.objects[configmap_path("falco", "padlock-rules")]["metadata"]["labels"]["team"] = "sec"
    publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "y"}, "sha256:2")], OWNER)  # type: ignore[arg-type]
    stored = api.objects[configmap_path("falco", "padlock-rules")]
    assert stored["data"] == {"a.yaml": "y"}
    assert stored["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "padlock", "padlock.dev/ruleset": "padlock-rules", "team": "sec"}
    assert stored["metadata"]["annotations"]["padlock.dev/content-hash"] == "sha256:2"
    assert stored["metadata"]["ownerReferences"] == OWNER
    assert api.writes == [("create", "padlock-rules"), ("replace", "padlock-rules")]


def test_edited_configmap_is_restored():
    api = MemoryApi()
    publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "x"})], OWNER)  # type: ignore[arg-type]
    api.objects[configmap_path("falco", "padlock-rules")]["data"]["a.yaml"] = "tampered"
    result = publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "x"})], OWNER)  # type: ignore[arg-type]
    assert result.written == ("padlock-rules",)
    assert api.objects[configmap_path("falco", "padlock-rules")]["data"] == {"a.yaml": "x"}


def test_stale_shards_are_deleted_after_all_shards_are_written():
    api = MemoryApi()
    three = [content(f"padlock-rules{s}", {f"{i}.yaml": "x"}) for i, s in enumerate(["", "-2", "-3"])]
    publish.publish(api, "falco", "padlock-rules", three, OWNER)  # type: ignore[arg-type]
    api.writes.clear()
    two = [content("padlock-rules", {"0.yaml": "y"}, "sha256:2"), content("padlock-rules-2", {"1.yaml": "y"}, "sha256:2")]
    result = publish.publish(api, "falco", "padlock-rules", two, OWNER)  # type: ignore[arg-type]
    assert result.deleted == ("padlock-rules-3",)
    assert api.writes == [("replace", "padlock-rules"), ("replace", "padlock-rules-2"), ("delete", "padlock-rules-3")]


def test_status_writer_skips_equal_status_and_removes_vanished_keys():
    api = MemoryApi()
    api._stored(MANAGED_POLICY.path("creds"), {"metadata": {"name": "creds"}, "status": {"a": 1, "old": True}})
    assert status.write_status(api, MANAGED_POLICY, "creds", {"a": 1, "old": True}) is False  # type: ignore[arg-type]
    assert api.writes == []
    assert status.write_status(api, MANAGED_POLICY, "creds", {"a": 2}) is True  # type: ignore[arg-type]
    assert api.objects[MANAGED_POLICY.path("creds")]["status"] == {"a": 2}


def test_status_of_a_vanished_object_is_not_an_error():
    assert status.write_status(MemoryApi(), MANAGED_POLICY, "gone", {"a": 1}) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["enabled", "disabledRules", "scope"])
def test_applied_body_refuses_user_choice_fields(field):
    with pytest.raises(apply.OwnedFieldError, match=f"spec.{field} is a user choice"):
        apply.managed_policy_body("creds", {"rules": [], field: None}, labels={}, annotations={})


def test_applied_body_leaves_out_empty_maps():
    # An empty map is stored as absent: applying it would count as a change every time.
    body = apply.managed_policy_body("creds", {"rules": []}, labels={"app.kubernetes.io/managed-by": "padlock"},
                                     annotations={})
    assert body["metadata"] == {"name": "creds", "labels": {"app.kubernetes.io/managed-by": "padlock"}}


def _events(api: MemoryApi) -> list[dict[str, Any]]:
    return [o for p, o in sorted(api.objects.items()) if "/events/" in p]


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda cm: cm.update(immutable=True), "immutable"),
        (lambda cm: cm["metadata"].update(labels={}), "not made by Padlock"),
    ],
    ids=["immutable", "foreign"],
)
def test_an_immutable_or_foreign_configmap_is_replaced_with_an_event(tamper: Any, why: str) -> None:
    api = MemoryApi()
    publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "x"})], OWNER)  # type: ignore[arg-type]
    tamper(api.objects[configmap_path("falco", "padlock-rules")])
    api.writes.clear()
    result = publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "x"})], OWNER)  # type: ignore[arg-type]
    assert api.writes[:2] == [("delete", "padlock-rules"), ("create", "padlock-rules")]
    stored = api.objects[configmap_path("falco", "padlock-rules")]
    assert "immutable" not in stored and stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "padlock"
    assert [name for name, _ in result.replaced] == ["padlock-rules"] and why in result.replaced[0][1]
    (event,) = _events(api)
    assert (event["reason"], event["type"], event["involvedObject"]["name"]) == ("Replaced", "Warning", "padlock-rules")
    assert why in event["message"]


def test_a_foreign_configmap_under_an_unused_shard_name_is_removed_with_an_event() -> None:
    api = MemoryApi()
    api._stored(configmap_path("falco", "padlock-rules-3"),
                {"metadata": {"name": "padlock-rules-3", "namespace": "falco"}, "data": {"evil.yaml": "- macro: x"}})
    api._stored(configmap_path("falco", "falco-config"), {"metadata": {"name": "falco-config"}, "data": {}})
    result = publish.publish(api, "falco", "padlock-rules", [content("padlock-rules", {"a.yaml": "x"})], OWNER)  # type: ignore[arg-type]
    assert result.deleted == ("padlock-rules-3",)
    assert configmap_path("falco", "falco-config") in api.objects  # not a reserved name: never touched
    (event,) = _events(api)
    assert event["reason"] == "RemovedForeign" and "padlock-rules-3" in event["message"]


def test_only_the_declared_names_are_read_and_a_render_needing_more_is_refused_before_any_write() -> None:
    api = MemoryApi()
    api.list = None  # type: ignore[assignment,method-assign]  # the operator has no list permission
    six = [content(f"padlock-rules{s}", {f"{i}.yaml": "x"}) for i, s in enumerate(["", "-1", "-2", "-3", "-4", "-5"])]
    with pytest.raises(publish.TooManyShards, match=r"needs 5 ConfigMaps .* declares 4 .*falco.rulesShards"):
        publish.publish(api, "falco", "padlock-rules", six[:5], OWNER)  # type: ignore[arg-type]
    assert api.writes == []
    publish.publish(api, "falco", "padlock-rules", six[:5], OWNER, shards=4)  # type: ignore[arg-type]
    published = publish.read_published(api, "falco", "padlock-rules", shards=4)  # type: ignore[arg-type]
    assert [cm["metadata"]["name"] for cm in published] == [c.name for c in six[:5]]
    result = publish.publish(api, "falco", "padlock-rules", six[:2], OWNER, shards=4)  # type: ignore[arg-type]
    assert result.deleted == ("padlock-rules-2", "padlock-rules-3", "padlock-rules-4")
