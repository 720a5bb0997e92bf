"""Alert bodies in the shapes Falco and falcosidekick post (tuner unit and integration tests, bench).

``falco_alert`` follows Falco's ``json_output: true`` object (formats.cpp: output, priority, rule,
time with nanoseconds, output_fields, source, tags, hostname, uuid); ``sidekick_alert`` follows
falcosidekick's ``types.FalcoPayload`` as its webhook output posts it (RFC 3339 time, priority as
falcosidekick prints it, custom fields merged into output_fields); ``reload_failure`` is Falco's
internal message from a refused hot reload (falco_outputs.cpp handle_msg: no tags, empty fields).
"""

from __future__ import annotations

import json
from typing import Any

SHELL = "Terminal shell in container"


def falco_alert(rule: str = SHELL, *, ns: str | None = "shop", image: str | None = "docker.io/library/nginx",
                container: str | None = "nginx", proc: str | None = "bash", parent: str | None = "runc",
                priority: str = "Notice", hostname: str = "node-1", time: str = "2024-12-02T14:33:20.123456789Z",
                **extra_fields: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "container.id": "8a4f2bb6c9d1", "container.image.repository": image, "container.name": container,
        "evt.time": 1733150000123456789, "evt.type": "execve", "k8s.ns.name": ns, "k8s.pod.name": "web-0",
        "proc.cmdline": f"{proc} -i", "proc.name": proc, "proc.pname": parent, "proc.tty": 34816,
        "user.loginuid": -1, "user.name": "root", **extra_fields,
    }
    return {
        "uuid": "5e2c1b6a-8f4d-4a3e-9c5e-0c1f7b2a9d10",
        "output": f"14:33:20.123456789: {priority} A shell was spawned in a container with an attached terminal "
                  f"(evt_type=execve user=root process={proc} parent={parent} container_id=8a4f2bb6c9d1 "
                  f"container_name={container} container_image_repository={image} k8s_ns={ns})",
        "priority": priority, "rule": rule, "time": time,
        "output_fields": fields, "source": "syscall", "tags": ["T1059", "container", "maturity_stable", "mitre_execution", "shell"],
        "hostname": hostname,
    }


def sidekick_alert(**kwargs: Any) -> dict[str, Any]:
    alert = falco_alert(**kwargs)
    alert["time"] = "2024-12-02T14:33:20.123456789Z"
    alert["priority"] = alert["priority"].capitalize()
    alert["output_fields"]["cluster"] = "prod"  # falcosidekick customfields land in output_fields
    del alert["uuid"]
    return alert


def reload_failure(message: str = "Error: could not load rules file /etc/falco/rules.d/padlock.yaml", *,
                   hostname: str = "node-2", time: str = "2024-12-02T14:40:00.000000000Z") -> dict[str, Any]:
    """Falco's restart handler (app/actions/create_signal_handlers.cpp) on a failed dry run: rule
    "Falco internal: hot restart failure", output "<rule>: <err>", PRIORITY_CRITICAL, empty fields;
    falco_outputs.cpp handle_msg adds time, hostname and source "internal" (no tags, no uuid)."""
    rule = "Falco internal: hot restart failure"
    return {"output": f"{rule}: {message}", "priority": "Critical", "rule": rule,
            "time": time, "output_fields": {}, "hostname": hostname, "source": "internal"}


def loader_report(path: str, rule: str, field: str) -> str:
    """The error Falco's dry run returns for a rules file it cannot load (load_rules_files.cpp returns
    ``res->as_string(true, rc)``: rule_loader.cpp ``as_verbose_string``), here for an unknown field."""
    return (f"{path}: Invalid\n1 Errors:\nIn rules content: ({path}:0:0)\n    rule '{rule}': ({path}:3:2)\n"
            f"    condition expression: (\"{field} = bash\":1:0)\n------\n- rule: {rule}\n  ^\n------\n"
            f"LOAD_ERR_COMPILE_CONDITION (Error compiling condition): filter_check called with nonexistent "
            f"field {field}\n")


def now_time(offset: float = 0.0) -> str:
    """The current time as Falco writes an alert's ``time`` (RFC 3339, nanoseconds, UTC)."""
    import datetime as dt

    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def body(*alerts: dict[str, Any]) -> bytes:
    """One alert as Falco posts it, or several newline-delimited."""
    return "\n".join(json.dumps(a) for a in alerts).encode()


class Poster:
    """Posts alert bodies to the tuner's intake on 127.0.0.1 over one keep-alive HTTPS connection,
    trusting only ``ca_file`` (as Falco's ``http_output.ca_cert`` would)."""

    def __init__(self, port: int, ca_file: str, token: str | None = None,
                 client_cert: tuple[str, str] | None = None) -> None:
        import http.client
        import ssl

        self.token = token
        context = ssl.create_default_context(cafile=ca_file)
        if client_cert is not None:
            context.load_cert_chain(*client_cert)
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)

    def post(self, data: bytes, *, token: str | None = None, path: str = "/") -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        bearer = self.token if token is None else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        self.conn.request("POST", path, body=data, headers=headers)
        resp = self.conn.getresponse()
        text = resp.read().decode()
        return resp.status, (json.loads(text) if text.strip().startswith("{") else {"text": text})

    def close(self) -> None:
        self.conn.close()


def client_pki(directory: Any, name: str = "falco") -> dict[str, str]:
    """A CA and a client certificate it signs (clientAuth), as PEM files in ``directory``, for mutual TLS
    the way Falco's ``http_output.mtls`` presents ``client_cert``/``client_key``. Returns the paths."""
    import datetime as dt
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-client-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": str(out / "ca.crt"), "cert": str(out / "client.crt"), "key": str(out / "client.key")}
    Path(paths["ca"]).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    Path(paths["cert"]).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(paths["key"]).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return paths
