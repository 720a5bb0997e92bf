"""``padlock demo``: the end-to-end story of PRODUCT.md section 6 on a local control plane.

Starts a real kube-apiserver + etcd and a real OCI registry (``padlock.devenv``), installs the CRDs, the
chart's operator RBAC and the chart's webhook configuration in url mode (``LocalWebhook``), pushes the
example rules v1, creates a RuleSource, starts ``padlock operator`` as the chart's ServiceAccount
identity serving its webhook, then walks the four steps and prints what a user would see (step 2's
refusals come from the operator's webhook); a fifth step stops the operator and shows the chart's
ValidatingAdmissionPolicy holding the lock. Everything it started is stopped on exit (also on Ctrl-C
or failure).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

REPOSITORY = "falcosecurity/rules/padlock-example"
GPG_RULE = "Search GPG Private Keys"
DISABLED_RULE = "Read cloud credentials file"
SHELL_RULE = "Terminal shell in container"
POLICY = "credential-access"


class DemoError(click.ClickException):
    exit_code = 1


def _say(title: str) -> None:
    click.echo("")
    click.secho(f"== {title}", bold=True)


def _show(command: str, text: str) -> None:
    click.secho(f"$ {command}", fg="cyan")
    click.echo(text.rstrip())


def _wait(what: str, check: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.3)
    raise DemoError(f"timed out waiting for {what}")


@click.command(name="demo")
@click.option("--keep", is_flag=True, help="Keep the work directory (logs, kubeconfigs) after the demo.")
@click.option("--interval", default="2s", show_default=True, help="RuleSource check interval used in the demo.")
def command(keep: bool, interval: str) -> None:
    """Run the end-to-end story (managed policies, choices, upstream update, broken release) locally."""
    from padlock.devenv import paths

    repo = paths.repo_root()
    if repo is None or not (repo / "examples" / "rules").is_dir():
        raise DemoError("the demo needs the padlock source checkout (examples/rules, crds/, charts/): "
                        "run it from the repository or set PADLOCK_REPO")
    workdir = Path(tempfile.mkdtemp(prefix="padlock-demo-"))
    try:
        _run(repo, workdir, interval)
    finally:
        if keep:
            click.echo(f"\nwork directory kept: {workdir}")
        else:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)


def _run(repo: Path, workdir: Path, interval: str) -> None:
    from padlock.controllers.local_webhook import LocalWebhook
    from padlock.controllers.process import OperatorProcess, free_port
    from padlock.devenv import artifacts, rbac, tools
    from padlock.devenv import registry as oci_registry
    from padlock.devenv.controlplane import ControlPlane
    from padlock.devenv.errors import DevenvError

    def push(release: str, version: str) -> None:
        assert registry is not None
        files = {p.name: p.read_text() for p in sorted((repo / "examples" / "rules" / release).glob("*.yaml"))}
        pushed = artifacts.push_rules_artifact(registry.address, REPOSITORY, version, files)
        click.echo(f"pushed {pushed.repository}:{version} ({pushed.digest[:19]}...) tags {', '.join(pushed.tags)}")

    def padlock(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "padlock", *args], capture_output=True, text=True)
        return done.stdout + done.stderr

    _say("Starting a local control plane (kube-apiserver + etcd) and an OCI registry")
    try:
        cp = ControlPlane(workdir=workdir / "control-plane").start()
    except DevenvError as exc:
        raise DemoError(f"{exc}\n(run `python -m padlock.devenv install` or .ci/install first)") from None
    registry = None
    operator = None
    try:
        registry = oci_registry.Registry(workdir=workdir / "registry").start()
        kubectl = tools.Runner(tools.find("kubectl"), cp.kubeconfig, workdir)
        helm = tools.Runner(tools.find("helm"), cp.kubeconfig, workdir)
        click.echo(f"API server {cp.url}; registry {registry.url}")
        kubectl("apply", "--server-side", "-f", str(repo / "crds"))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        rbac.install_operator_rbac(cp)
        hook = LocalWebhook(kubectl, helm, repo / "charts" / "padlock", port=free_port(), cert_dir=workdir / "tls")
        hook.install()
        click.echo("installed: CRDs, the chart's operator RBAC, the chart's webhook configuration "
                   f"(pointing at {hook.base_url})")

        _say("Step 1: a RuleSource points at rules v1; managed policies appear, locked, with timestamps")
        push("v1", "1.0.0")
        source = {"apiVersion": "padlock.dev/v1alpha1", "kind": "RuleSource", "metadata": {"name": "falco-rules"},
                  "spec": {"oci": {"repository": f"{registry.address}/{REPOSITORY}", "tag": "1", "plainHTTP": True},
                           "interval": interval}}
        kubectl("apply", "-f", "-", input=json.dumps(source))
        from padlock.cli import demo_tuning

        tuner_port = free_port()
        operator = OperatorProcess(cp.kubeconfig("operator"), workdir / "operator.log",
                                   extra=["--plugin", "container=0.4.0", "--engine-version", "0.62.0", "--tick", "0.5",
                                          "--drift-interval", "2", *hook.flags(),
                                          *demo_tuning.flags(workdir, tuner_port)])
        operator.start()
        operator.wait_ready(120)
        _wait("managed policies", lambda: _status(kubectl, "managedpolicy", POLICY).get("lastUpdated"))
        _wait("the operator's webhook", hook.ca_published)
        hook.wait_answering(POLICY)
        _show("kubectl get padlock", kubectl("get", "padlock").stdout)
        _show("padlock policies", padlock("policies", "--kubeconfig", str(cp.kubeconfig("admin"))))

        _say("Step 2: the user's own choices, an exception, a refused edit, a copy")
        kubeconfig = str(cp.kubeconfig("admin"))
        choice = json.dumps({"spec": {"disabledRules": [DISABLED_RULE]}})
        # Each upstream rule has one owner policy in the built-in catalog: one disable is enough.
        done = kubectl("patch", "managedpolicy", POLICY, "--type=merge", "-p", choice)
        _show(f"kubectl patch managedpolicy {POLICY} --type=merge -p '{choice}'", done.stdout)
        cp.create_namespace("shop")
        exception = {"apiVersion": "padlock.dev/v1alpha1", "kind": "PolicyException",
                     "metadata": {"name": "nginx-shell", "namespace": "shop"},
                     "spec": {"policies": [{"kind": "ManagedPolicy", "name": "execution", "rules": [SHELL_RULE]}],
                              "match": {"images": ["nginx"]}, "reason": "the nginx entrypoint runs a shell"}}
        _show("cat nginx-shell.yaml", yaml.safe_dump(exception, sort_keys=False))
        _show("kubectl apply -f nginx-shell.yaml", kubectl("apply", "-f", "-", input=json.dumps(exception)).stdout)
        _wait("the exception in force", lambda: _status(kubectl, "policyexception", "nginx-shell", "shop").get("active"))
        _show("kubectl get policyexceptions -n shop", kubectl("get", "policyexceptions", "-n", "shop").stdout)
        escape = json.loads(json.dumps(exception))
        escape["metadata"]["name"] = "nginx-shell-everywhere"
        escape["spec"]["match"] = {"fields": ["container.image.repository", "k8s.ns.name"], "comps": ["=", "="],
                                   "values": [["nginx", "payments"]]}
        refused = kubectl("apply", "-f", "-", input=json.dumps(escape), check=False)
        _show("kubectl apply -f nginx-shell-everywhere.yaml   # in namespace shop, naming namespace payments",
              _error_text(refused))
        edit = json.dumps([{"op": "replace", "path": "/spec/rules/0/condition", "value": "evt.num > 0"}])
        refused = kubectl("patch", "managedpolicy", POLICY, "--type=json", "-p", edit, check=False)
        _show(f"kubectl patch managedpolicy {POLICY} --type=json -p '{edit}'", _error_text(refused))
        _show(f"padlock copy managedpolicy/{POLICY} my-{POLICY}",
              padlock("copy", f"managedpolicy/{POLICY}", f"my-{POLICY}", "--kubeconfig", kubeconfig))
        _show(f"padlock copy managedpolicy/{POLICY} my-{POLICY} --apply",
              padlock("copy", f"managedpolicy/{POLICY}", f"my-{POLICY}", "--apply", "--kubeconfig", kubeconfig))
        _wait("the copy in force", lambda: any(c.get("reason") == "Rendered" for c in _status(
            kubectl, "custompolicy", f"my-{POLICY}").get("conditions") or []))
        _show("kubectl get custompolicies", kubectl("get", "custompolicies").stdout)
        # The copy carried the disabled rule over, so the switch holds everywhere: the status says so.
        _wait("the disabled rule off in status", lambda: DISABLED_RULE not in _status(
            kubectl, "managedpolicy", POLICY).get("runningRules", [DISABLED_RULE]))
        _show("padlock policies", padlock("policies", "--kubeconfig", kubeconfig))

        _say("Step 3: v2 adds a rule searching for GPG private keys (tagged mitre_credential_access)")
        before = _status(kubectl, "managedpolicy", POLICY).get("lastUpdated")
        time.sleep(1.1)
        push("v2", "1.1.0")
        _wait("the GPG rule in credential-access", lambda: GPG_RULE in {
            r["name"] for r in (_get(kubectl, "managedpolicy", POLICY).get("spec") or {}).get("rules") or []}
            and _status(kubectl, "managedpolicy", POLICY).get("sourceVersion") == "1.1.0")
        status = _status(kubectl, "managedpolicy", POLICY)
        _show("kubectl get managedpolicies", kubectl("get", "managedpolicies").stdout)
        click.echo(f"UPDATED moved: {before} -> {status.get('lastUpdated')}")
        _show(f"kubectl get managedpolicy {POLICY} -o jsonpath='{{.status.changes[0]}}'",
              json.dumps(status.get("changes", [{}])[0], indent=2))
        cm = _wait("ConfigMap with v2", lambda: (c := _get(kubectl, "configmap", "padlock-rules", "falco"))
                   and "falco-rules=1.1.0" in c["metadata"]["annotations"].get("padlock.dev/source-versions", "") and c)
        layer = cm["data"].get("padlock-policies.yaml", "")
        click.echo(f'in the published ConfigMap: GPG rule present: {any(GPG_RULE in v for v in cm["data"].values())}; '
                   f'"{DISABLED_RULE}" disabled: {_disabled(layer, DISABLED_RULE)}; nginx exception present: '
                   f'{"nginx" in layer}')

        _wait("the change recorded", lambda: (_status(kubectl, "managedpolicy", POLICY).get("changes") or [{}])[0]
              .get("added") == [GPG_RULE])
        _show(f"padlock show managedpolicy/{POLICY}",
              padlock("show", f"managedpolicy/{POLICY}", "--kubeconfig", kubeconfig))
        _show(f'padlock explain rule "{GPG_RULE}"', padlock("explain", "rule", GPG_RULE, "--kubeconfig", kubeconfig))

        _say("Step 4: v3 is broken (a condition that does not compile): not adopted, v2 stays")
        rv = cm["metadata"]["resourceVersion"]
        push("v3", "1.2.0")
        ready = _wait("the RuleSource to refuse v3", lambda: next(
            (c for c in _status(kubectl, "rulesource", "falco-rules").get("conditions") or []
             if c["type"] == "Ready" and c["status"] == "False"), None))
        _show("kubectl get rulesources", kubectl("get", "rulesources").stdout)
        click.echo(f"Ready=False reason={ready['reason']}: {ready['message']}")
        time.sleep(2)
        after = _get(kubectl, "configmap", "padlock-rules", "falco")
        click.echo(f"ConfigMap unchanged (resourceVersion {rv} -> {after['metadata']['resourceVersion']}), "
                   f"still running {_status(kubectl, 'rulesource', 'falco-rules').get('currentVersion')}")
        _say("Step 5: the tuner: Falco's alerts from a noisy workload become a suggested exception")
        demo_tuning.step(workdir, tuner_port, kubectl, padlock, kubeconfig, _show, _wait)

        _say("Step 6: the lock holds while the operator is down (the chart's ValidatingAdmissionPolicy)")
        operator.stop()
        lock = helm("template", "padlock", str(repo / "charts" / "padlock"), "--namespace", "padlock-system",
                    "--show-only", "templates/lock-policy.yaml").stdout
        kubectl("apply", "-f", "-", input=lock)
        click.echo("operator stopped; lock policy installed (helm install does this from the start)")
        refused = _wait("the lock policy to be enforced", lambda: (
            r := kubectl("patch", "managedpolicy", POLICY, "--type=json", "-p", edit, "--dry-run=server", check=False)
        ).returncode != 0 and "ValidatingAdmissionPolicy" in r.stderr and r)
        _show(f"kubectl patch managedpolicy {POLICY} --type=json -p '{edit}' --dry-run=server", _error_text(refused))
        _say("Done: stopping the operator, the registry and the control plane")
    finally:
        if operator is not None:
            operator.stop()
        if registry is not None:
            registry.stop()
        cp.stop()


def _get(kubectl: Any, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    done = kubectl(*args, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def _status(kubectl: Any, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    return _get(kubectl, kind, name, namespace).get("status") or {}


def _error_text(done: Any) -> str:
    """kubectl's refusal, one sentence per line so a long admission message stays readable."""
    text = str(done.stderr or done.stdout).strip()
    if done.returncode == 0:
        return f"(unexpectedly accepted) {text}"
    return re.sub(r"(?<=[.;]) (?=[A-Z(]|To |Only |padlock )", "\n  ", text)


def _disabled(layer: str, rule: str) -> bool:
    import yaml

    items = yaml.safe_load(layer) or []
    return any(isinstance(i, dict) and i.get("rule") == rule and i.get("enabled") is False for i in items)
