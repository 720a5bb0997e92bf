"""HTTP rules sources against a real HTTP server on 127.0.0.1 (``http.server`` in a thread).

Covers ``padlock.sources`` with ``spec.http``: a ``.tar.gz`` in the upstream layout and a plain
``.yaml``, each with the right sha256 (round trip, verbatim text) and a wrong one (refused, nothing
returned); no sha256 (the body's digest is the identity); 404, 500 and a dead server.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from padlock import sources
from padlock.api.rulesource import RuleSourceSpec
from padlock.devenv.artifacts import build_layer
from padlock.sources.errors import IntegrityError, SourceUnavailable, VersionNotFound

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules"
TEXT = (EXAMPLES / "v2" / "padlock_example_rules.yaml").read_text(encoding="utf-8")


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/broken/"):
            self.send_error(500, "upstream exploded")
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "example-rules-1.1.0.tar.gz").write_bytes(build_layer({"padlock_example_rules.yaml": TEXT}))
    (tmp_path / "padlock_example_rules.yaml").write_text(TEXT, encoding="utf-8")

    def handler(*args: object, **kwargs: object) -> Handler:
        return Handler(*args, directory=str(tmp_path), **kwargs)  # type: ignore[arg-type]

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def http_spec(url: str, sha256: str | None) -> RuleSourceSpec:
    body: dict[str, str] = {"url": url}
    if sha256:
        body["sha256"] = sha256
    return RuleSourceSpec.model_validate({"http": body})


def test_tar_gz_with_right_sha256_round_trips(server: str) -> None:
    layer = build_layer({"padlock_example_rules.yaml": TEXT})
    spec = http_spec(f"{server}/example-rules-1.1.0.tar.gz", sha(layer))
    candidate = sources.resolve("web", spec)
    assert (candidate.version, candidate.digest) == ("1.1.0", f"sha256:{sha(layer)}")
    bundle = sources.fetch("web", spec, candidate)
    assert [(f.name, f.text) for f in bundle.files] == [("padlock_example_rules.yaml", TEXT)]
    assert bundle.engine_requirement == "0.50.0"


def test_yaml_with_right_sha256_round_trips(server: str) -> None:
    spec = http_spec(f"{server}/padlock_example_rules.yaml", sha(TEXT.encode()))
    bundle = sources.fetch("web", spec, sources.resolve("web", spec))
    assert bundle.files[0].text == TEXT
    assert bundle.version == f"sha256-{sha(TEXT.encode())[:12]}"


@pytest.mark.parametrize("path", ["example-rules-1.1.0.tar.gz", "padlock_example_rules.yaml"])
def test_wrong_sha256_is_refused(server: str, path: str) -> None:
    wrong = "0" * 64
    spec = http_spec(f"{server}/{path}", wrong)
    candidate = sources.resolve("web", spec)  # the cheap check trusts the spec's sha256
    with pytest.raises(IntegrityError, match=f"but spec.http.sha256 is {wrong}") as caught:
        sources.fetch("web", spec, candidate)
    assert not caught.value.retryable
    assert str(caught.value).startswith(f"RuleSource web: {server}/{path}: download has sha256 ")


def test_without_sha256_the_body_digest_is_the_identity(server: str) -> None:
    spec = http_spec(f"{server}/padlock_example_rules.yaml", None)
    candidate = sources.resolve("web", spec)
    assert candidate.digest == f"sha256:{sha(TEXT.encode())}"
    assert sources.fetch("web", spec, candidate).files[0].text == TEXT


def test_not_found_server_error_and_dead_server_are_classified(server: str) -> None:
    with pytest.raises(VersionNotFound, match=r"not found \(HTTP 404\)"):
        sources.resolve("web", http_spec(f"{server}/missing.yaml", None))
    with pytest.raises(SourceUnavailable, match="server answered HTTP 500") as broken:
        sources.resolve("web", http_spec(f"{server}/broken/rules.yaml", None))
    assert broken.value.retryable
    dead = server.rsplit(":", 1)[0] + ":9"  # discard port: nothing listens there
    with pytest.raises(SourceUnavailable, match=r"cannot reach 127\.0\.0\.1:9"):
        sources.resolve("web", http_spec(f"{dead}/rules.yaml", None), timeout=5)
