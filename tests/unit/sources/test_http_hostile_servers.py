"""``padlock.sources.http`` against hostile servers started on 127.0.0.1 by the test.

Covers: a server trickling one byte at a time is abandoned at the download's hard deadline (not
the per-read timeout) as SourceUnavailable; a redirect to another port is refused unless
``spec.http.allowedRedirectHosts`` lists it; a redirect loop is refused after ``max_redirects``;
a Content-Length over the cap is refused before the body is read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from padlock.api.rulesource import RuleSourceSpec
from padlock.sources import archives, http
from padlock.sources.errors import ArchiveRejected, SourceRejected, SourceUnavailable

RULES = b"- list: a\n  items: [x]\n"

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(handle: Handler) -> str:
        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def spec(url: str, **http_spec: Any) -> RuleSourceSpec:
    return RuleSourceSpec.model_validate({"http": {"url": url, **http_spec}})


def ok(req: BaseHTTPRequestHandler) -> None:
    req.send_response(200)
    req.send_header("Content-Length", str(len(RULES)))
    req.end_headers()
    req.wfile.write(RULES)


def test_a_trickling_server_is_abandoned_at_the_hard_deadline(serve: Callable[[Handler], str]) -> None:
    stop = threading.Event()

    def trickle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", "100000")
        req.end_headers()
        for _ in range(200):  # bounded: 200 bytes at most, one every 0.1 s
            if stop.is_set():
                return
            try:
                req.wfile.write(b"#")
                req.wfile.flush()
            except OSError:
                return
            time.sleep(0.1)

    base = serve(trickle)
    limits = archives.Limits(download_seconds=1.5)
    try:
        with pytest.raises(SourceUnavailable) as err:
            http.resolve("src", spec(f"{base}/rules.yaml"), limits=limits, timeout=30.0)
    finally:
        stop.set()
    assert "did not finish within 1.5 s" in err.value.problem


def test_a_redirect_to_another_server_is_refused_unless_allowed(serve: Callable[[Handler], str]) -> None:
    target = serve(ok)

    def redirect(req: BaseHTTPRequestHandler) -> None:
        req.send_response(302)
        req.send_header("Location", f"{target}/rules.yaml")
        req.send_header("Content-Length", "0")
        req.end_headers()

    base = serve(redirect)
    with pytest.raises(SourceRejected) as err:
        http.resolve("src", spec(f"{base}/rules.yaml"))
    assert "redirect to another server (127.0.0.1:" in err.value.problem
    assert "allowedRedirectHosts" in err.value.problem
    host_port = target.removeprefix("http://")
    candidate = http.resolve("src", spec(f"{base}/rules.yaml", allowedRedirectHosts=[host_port]))
    assert candidate.digest.startswith("sha256:")


def test_a_redirect_loop_is_refused(serve: Callable[[Handler], str]) -> None:
    def loop(req: BaseHTTPRequestHandler) -> None:
        req.send_response(302)
        req.send_header("Location", "/rules.yaml")
        req.send_header("Content-Length", "0")
        req.end_headers()

    base = serve(loop)
    with pytest.raises(SourceRejected) as err:
        http.resolve("src", spec(f"{base}/rules.yaml"))
    assert "more than 5 redirects" in err.value.problem


def test_a_content_length_over_the_cap_is_refused_before_reading(serve: Callable[[Handler], str]) -> None:
    def big(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", str(10 * 1024 * 1024 * 1024))
        req.end_headers()
        req.wfile.write(b"- x\n")

    base = serve(big)
    with pytest.raises(ArchiveRejected) as err:
        http.resolve("src", spec(f"{base}/rules.yaml"))
    assert "announces 10737418240 bytes" in err.value.problem
