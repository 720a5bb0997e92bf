"""The operator image, built by ``image/build.sh`` (``make image``), run in-cluster style against the real
test API server, as the chart's Deployment runs it; the story's v1 publishes.

Covers:
- the image is built (or reused from its cache) from this checkout and pushed to the test registry under
  the chart's default tag (the package version = the chart's appVersion); its labels name the source,
  the revision and the version, and its user is 65532;
- the container gets exactly what ``helm template charts/padlock`` renders for the Deployment: command,
  args, literal env and the downward-API namespace, the volumes (emptyDir /tmp, the webhook's emptyDir
  cert dir), the user and group, a read-only root filesystem; plus what the kubelet adds: the
  service-account token, CA and namespace at /var/run/secrets/kubernetes.io/serviceaccount and
  KUBERNETES_SERVICE_HOST/PORT (here the test API server on 127.0.0.1). The token is the control
  plane's ``operator`` identity, ``system:serviceaccount:padlock-system:padlock``, bound to exactly
  the chart's RBAC; nothing else (no kubeconfig) tells the operator where the cluster is;
- the operator in the container becomes ready, writes its webhook certificate into the emptyDir, serves
  it, and patches its CA into the chart's webhook configuration (applied from ``helm template``); and
  the story's v1 (examples/rules/v1 pushed as 1.0.0) publishes: the ManagedPolicies appear and the
  rules ConfigMap carries ``story=1.0.0``.

How it runs: Debian's podman with runc (a containers.conf without default ulimits, cgroupfs, host
network, private storage under the test's tmp dir; see docs/image.md). Where podman is missing, the
image's root filesystem runs with ``unshare`` (fresh PID and mount namespaces, chroot as 65532:65532,
root read-only, the same mounts, args and env; ``PADLOCK_IMAGE_RUNTIME=unshare`` forces it). The test
prints which one it used; it never skips.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from padlock import __version__
from padlock.controllers.process import free_port
from padlock.devenv.controlplane import OPERATOR_USER, ControlPlane
from support_operator import (
    CHART,
    CONFIGMAP,
    FALCO_NS,
    User,
    push_release,
    remove_story,
    rule_source,
    wait_for,
)

pytestmark = pytest.mark.timeout(2400)  # a cold image build (Debian packages, wheels) takes minutes

REPO = Path(__file__).resolve().parents[2]
SOURCE = "image-story"
NAMESPACE = "padlock-system"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
WEBHOOK_CONFIGURATION = "padlock.dev"


def _build(registry: str) -> dict[str, str]:
    """``image/build.sh --push <registry>/padlock``: its ``key=value`` summary."""
    done = subprocess.run(["bash", str(REPO / "image" / "build.sh"), "--push", f"{registry}/padlock"],
                          capture_output=True, text=True, timeout=2200, cwd=REPO)
    assert done.returncode == 0, f"image/build.sh failed:\n{done.stderr[-4000:]}"
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


@pytest.fixture(scope="module")
def image(registry: str) -> dict[str, str]:
    built = _build(registry)
    print(f"image {built['digest']} ({built['size']} bytes compressed, cached={built['cached']}, "
          f"built in {built['build_seconds']}s)")
    return built


def _render(helm: Any, registry: str, ports: dict[str, int], template: str) -> str:
    """One template of the chart, rendered with the image repository in the test registry and free
    ports (the pod would own its network namespace; this container shares the host's)."""
    return str(helm("template", "padlock", str(CHART), "--namespace", NAMESPACE,
                    "--set", f"image.repository={registry}/padlock",
                    "--set", f"operator.healthPort={ports['health']}",
                    "--set", f"operator.metricsPort={ports['metrics']}",
                    "--set", f"webhook.port={ports['webhook']}",
                    "--show-only", template).stdout)


def _deployment(helm: Any, registry: str, ports: dict[str, int]) -> dict[str, Any]:
    """The chart's Deployment (see ``_render``)."""
    manifest = _render(helm, registry, ports, "templates/deployment.yaml")
    (deploy,) = [d for d in yaml.safe_load_all(manifest) if d]
    assert deploy["kind"] == "Deployment"
    return dict(deploy)


class PodSpec:
    """What the kubelet would give the operator container, from the rendered Deployment."""

    def __init__(self, deploy: dict[str, Any], cp: ControlPlane, workdir: Path) -> None:
        pod = deploy["spec"]["template"]["spec"]
        (self.container,) = pod["containers"]
        self.pod_security = pod.get("securityContext") or {}
        security = self.container.get("securityContext") or {}
        self.user = int({**self.pod_security, **security}["runAsUser"])
        self.group = int({**self.pod_security, **security}["runAsGroup"])
        self.fs_group = int(self.pod_security.get("fsGroup", self.group))
        self.read_only = bool(security.get("readOnlyRootFilesystem"))
        self.image = self.container["image"]
        self.command = list(self.container.get("command") or [])
        self.args = list(self.container.get("args") or [])
        assert pod["serviceAccountName"] == "padlock" and pod.get("automountServiceAccountToken", True)
        # Env: literal values, and the downward API's metadata.namespace (all the chart uses).
        self.env: dict[str, str] = {}
        for var in self.container.get("env") or []:
            if "value" in var:
                self.env[var["name"]] = str(var["value"])
            else:
                field = var["valueFrom"]["fieldRef"]["fieldPath"]
                assert field == "metadata.namespace", f"downward API field {field} not provided by this test"
                self.env[var["name"]] = NAMESPACE
        # What the kubelet adds for the in-cluster configuration.
        self.env["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
        self.env["KUBERNETES_SERVICE_PORT"] = str(cp.port)
        sa = workdir / "serviceaccount"
        sa.mkdir(parents=True)
        (sa / "token").write_text(cp.token("operator"))
        (sa / "ca.crt").write_bytes(cp.ca_file.read_bytes())
        (sa / "namespace").write_text(NAMESPACE)
        for f in sa.iterdir():
            f.chmod(0o644)
        # Volumes: emptyDirs are fresh directories group-owned by fsGroup (as the kubelet makes them).
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        self.mounts: list[tuple[Path, str, bool]] = [(sa, SA_DIR, True)]
        self.empty_dirs: dict[str, Path] = {}
        for mount in self.container.get("volumeMounts") or []:
            volume = volumes[mount["name"]]
            assert "emptyDir" in volume, f"volume {mount['name']} is not an emptyDir: {volume}"
            host = workdir / "volumes" / mount["name"]
            host.mkdir(parents=True)
            os.chown(host, 0, self.fs_group)
            host.chmod(0o2777 if mount["mountPath"] == "/tmp" else 0o2775)
            self.mounts.append((host, mount["mountPath"], bool(mount.get("readOnly"))))
            self.empty_dirs[mount["mountPath"]] = host


class Container:
    """The operator container, run by podman (or, without podman, its root filesystem by unshare)."""

    def __init__(self, spec: PodSpec, image: dict[str, str], registry: str, workdir: Path) -> None:
        self.spec, self.image, self.registry, self.workdir = spec, image, registry, workdir
        self.log_path = workdir / "container.log"
        self.name = f"padlock-image-{os.getpid()}"
        # PADLOCK_IMAGE_RUNTIME=unshare exercises the fallback on a machine that has podman.
        self.podman = None if os.environ.get("PADLOCK_IMAGE_RUNTIME") == "unshare" else shutil.which("podman")
        self.runtime = "podman (runc)" if self.podman else "unshare + chroot of the image's root filesystem"
        self.proc: subprocess.Popen[bytes] | None = None
        conf = workdir / "containers.conf"
        # Podman's default ulimits cannot be set here, and crun refuses this cgroup layout (docs/image.md).
        conf.write_text('[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\n')
        self._podman_base = [self.podman or "podman", "--runtime", "runc", "--storage-driver", "vfs",
                             "--root", str(workdir / "storage"), "--runroot", str(workdir / "run")]
        self._env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def podman_cmd(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["nice", "-n", "10", *self._podman_base, *args], capture_output=True, text=True,
                              env=self._env, timeout=timeout)
        assert not check or done.returncode == 0, f"podman {' '.join(args)} failed:\n{done.stderr[-3000:]}"
        return done

    def pull(self) -> dict[str, Any]:
        """Pull the chart's image reference from the test registry; returns ``podman image inspect``."""
        self.podman_cmd("pull", "--tls-verify=false", "--quiet", self.spec.image)
        (inspected,) = json.loads(self.podman_cmd("image", "inspect", self.spec.image).stdout)
        return dict(inspected)

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        argv = self._podman_argv() if self.podman else self._unshare_argv()
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self._env)
        log.close()

    def _podman_argv(self) -> list[str]:
        spec = self.spec
        argv = ["nice", "-n", "10", *self._podman_base, "run", "--rm", "--name", self.name, "--network", "host",
                "--user", f"{spec.user}:{spec.group}", "--group-add", str(spec.fs_group), "--cap-drop", "ALL",
                "--security-opt", "no-new-privileges"]
        if spec.read_only:
            argv.append("--read-only")
        for host, path, read_only in spec.mounts:
            argv += ["-v", f"{host}:{path}:{'ro' if read_only else 'rw'}"]
        for key, value in sorted(spec.env.items()):
            argv += ["-e", f"{key}={value}"]
        if spec.command:
            argv += ["--entrypoint", json.dumps(spec.command)]
        return [*argv, spec.image, *spec.args]

    def _unshare_argv(self) -> list[str]:
        """No container runtime: the image's layer unpacked, run in new PID and mount namespaces."""
        rootfs = self.workdir / "rootfs"
        layout = Path(self.image["layout"])
        index = json.loads((layout / "index.json").read_text())
        manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]).read_text())
        config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())["config"]
        rootfs.mkdir()
        for layer in manifest["layers"]:
            with tarfile.open(_blob(layout, layer["digest"])) as tar:
                tar.extractall(rootfs, numeric_owner=True, filter="fully_trusted")
        spec = self.spec
        env = {e.split("=", 1)[0]: e.split("=", 1)[1] for e in config.get("Env") or []} | spec.env
        # Mount points resolved inside the root (/var/run is a symlink to /run there, not the host's).
        targets = [_inside(rootfs, path) for _, path, _ in spec.mounts]
        for target in targets:
            target.mkdir(parents=True, exist_ok=True)
        binds = "".join(f"mount --bind '{host}' '{target}' && "
                        + (f"mount -o remount,bind,ro '{target}' && " if ro else "")
                        for (host, _, ro), target in zip(spec.mounts, targets, strict=True))
        script = (f"mount --bind '{rootfs}' '{rootfs}' && mount --make-private '{rootfs}' && "
                  + binds + f"mount -t proc proc '{rootfs}/proc' && "
                  + (f"mount -o remount,bind,ro '{rootfs}' && " if spec.read_only else "")
                  + "exec \"$@\"")
        command = spec.command or list(config.get("Entrypoint") or [])
        return ["unshare", "-pfm", "--propagation", "private", "sh", "-c", script, "sh",
                "chroot", f"--userspec={spec.user}:{spec.group}", f"--groups={spec.fs_group}", str(rootfs),
                "env", "-i", *(f"{k}={v}" for k, v in sorted(env.items())), *command, *spec.args]

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.podman:
            self.podman_cmd("stop", "--time", "20", self.name, check=False, timeout=60)
        else:
            self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _inside(rootfs: Path, path: str) -> Path:
    """``path`` of the container resolved within ``rootfs``: absolute symlinks point into it, never at
    the host's directories."""
    current = rootfs
    for part in Path(path).parts[1:]:
        current = current / part
        for _ in range(16):
            if not current.is_symlink():
                break
            target = os.readlink(current)
            current = rootfs / target.lstrip("/") if target.startswith("/") else current.parent / target
        assert rootfs == current or rootfs in current.resolve().parents, f"{path} leaves the root filesystem"
    return current


def _blob(layout: Path, digest: str) -> Path:
    algorithm, hexdigest = digest.split(":")
    return layout / "blobs" / algorithm / hexdigest


def _http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def _served_certificate(port: int, ca: Path) -> bool:
    """The webhook port completes a TLS handshake with a certificate signed by ``ca``."""
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as raw, \
                context.wrap_socket(raw) as tls:
            return tls.getpeercert() is not None
    except (OSError, ssl.SSLError):
        return False


@pytest.fixture(scope="module")
def running(control_plane: ControlPlane, kubectl: Any, helm: Any, registry: str, crds_installed: list[str],
            operator_rbac: Any, image: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
            ) -> Iterator[tuple[Container, User, dict[str, int]]]:
    workdir = tmp_path_factory.mktemp("operator-image")
    ports = {"health": free_port(), "metrics": free_port(), "webhook": free_port()}
    spec = PodSpec(_deployment(helm, registry, ports), control_plane, workdir)
    container = Container(spec, image, registry, workdir)
    print(f"running the image with {container.runtime}")
    repository = f"rules/{SOURCE}"
    push_release(registry, repository, "v1", "1.0.0")
    user = User(kubectl, control_plane.kubeconfig("admin"))
    user.apply(rule_source(SOURCE, registry, repository))
    # The chart's webhook configuration (service mode, failurePolicy Ignore): the operator keeps its
    # caBundle current. The API server here cannot reach a Service, so admission itself is not exercised.
    kubectl("apply", "-f", "-", input=_render(helm, registry, ports, "templates/webhook.yaml"))
    try:
        if container.podman:
            container.pull()
        container.start()
        yield container, user, ports
    finally:
        kubectl("delete", "validatingwebhookconfiguration", WEBHOOK_CONFIGURATION, "--ignore-not-found")
        container.stop()
        print(f"--- container log ({container.runtime}) ---\n{container.tail(80)}")
        remove_story(kubectl, SOURCE)
        shutil.rmtree(workdir / "storage", ignore_errors=True)  # the unpacked image (~300 MB with vfs)
        shutil.rmtree(workdir / "rootfs", ignore_errors=True)


def test_the_chart_default_image_is_the_built_one_with_its_labels_and_user(
    helm: Any, registry: str, image: dict[str, str], running: tuple[Container, User, dict[str, int]],
) -> None:
    container, _, _ = running
    assert container.spec.image == f"{registry}/padlock:{__version__}", "chart tag defaults to appVersion"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__ == image["version"]
    # The registry serves, under the chart's reference, the manifest build.sh made.
    request = urllib.request.Request(f"http://{registry}/v2/padlock/manifests/{__version__}", headers={
        "Accept": "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Docker-Content-Digest"] == image["digest"]
    layout = Path(image["layout"])
    manifest = json.loads(_blob(layout, image["digest"]).read_text())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())["config"]
    if container.podman:  # and what podman pulled from there is that image
        (inspected,) = json.loads(container.podman_cmd("image", "inspect", container.spec.image).stdout)
        assert inspected["Digest"] == image["digest"]
        assert inspected["Config"]["Labels"] == config["Labels"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.source"] == "https://github.com/padlock-dev/padlock"
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"] == image["revision"] != "unknown"
    assert labels["org.opencontainers.image.created"] == image["created"]
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["padlock"]


def test_the_container_runs_in_cluster_style_and_the_storys_v1_publishes(
    control_plane: ControlPlane, running: tuple[Container, User, dict[str, int]],
) -> None:
    container, user, ports = running
    spec = container.spec
    assert spec.user == 65532 and spec.group == 65532 and spec.read_only
    assert spec.env["PADLOCK_OPERATOR_USERNAME"] == OPERATOR_USER
    assert not any(arg.startswith("--kubeconfig") for arg in spec.args), "in-cluster configuration only"

    def ready() -> bool:
        code = container.exited()
        assert code is None, f"the container exited with {code}:\n{container.tail()}"
        return _http_status(ports["health"], "/readyz") == 200

    wait_for("the operator in the container ready", ready, timeout=240)
    # The webhook generated its certificate into the emptyDir (the root filesystem is read-only) and serves it.
    ca = spec.empty_dirs["/etc/padlock/webhook-tls"] / "ca.crt"
    wait_for("the webhook's CA in its emptyDir", ca.exists, timeout=60)
    assert wait_for("the webhook serving TLS", lambda: _served_certificate(ports["webhook"], ca), timeout=60)
    # ... and, with the ServiceAccount's identity, patched that CA into the chart's webhook configuration.
    bundle = base64.b64encode(ca.read_bytes()).decode()
    wait_for("the caBundle in the chart's webhook configuration", lambda: all(
        hook.get("clientConfig", {}).get("caBundle") == bundle
        for hook in (user.get("validatingwebhookconfiguration", WEBHOOK_CONFIGURATION) or {}).get("webhooks") or [{}]),
        timeout=60)

    policy = wait_for("ManagedPolicy credential-access from v1", lambda: (
        (p := user.get("managedpolicy", "credential-access")) and (p.get("status") or {}).get("lastUpdated") and p),
        timeout=240)
    assert policy["spec"]["source"] == {"ruleSource": SOURCE, "version": "1.0.0"}
    cm = wait_for("the published ConfigMap", lambda: (
        (c := user.get("configmap", CONFIGMAP, "-n", FALCO_NS))
        and f"{SOURCE}=1.0.0" in c["metadata"]["annotations"].get("padlock.dev/source-versions", "") and c),
        timeout=240)
    assert f"50-{SOURCE}-padlock_example_rules.yaml" in cm["data"]
    status = (user.get("rulesource", SOURCE) or {})["status"]
    assert status["currentVersion"] == "1.0.0"
    metrics = _metrics(ports["metrics"])
    assert f'padlock_source_syncs_total{{result="adopted",source="{SOURCE}"}} 1.0' in metrics
    assert container.exited() is None, container.tail()


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())
