"""Reading one HTTP response body within a size cap and a hard wall-clock deadline.

Called by ``padlock.sources.http`` (rules files and archives) and ``padlock.sources.registry`` (OCI
manifests and blobs). A request's ``timeout`` bounds each socket read only, so a server that trickles
one byte every few seconds is never abandoned by it; here a timer closes the response when the
deadline passes, which ends the blocked read, and the download is reported as too slow.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import requests


class TooLarge(Exception):
    """The body is over the cap."""


class TooSlow(Exception):
    """The body did not arrive before the deadline."""


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket under a streamed response (urllib3 2.x keeps it on the connection, or in the file
    object the response reads from)."""
    raw = getattr(response, "raw", None)
    conn = getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    fp = getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None)
    sock = getattr(fp, "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def read_capped(response: requests.Response, *, cap: int, deadline: float,
                chunk: int = 64 * 1024, clock: Callable[[], float] = time.monotonic) -> bytes:
    """The body of ``response`` (closed afterwards): ``TooLarge`` over ``cap`` bytes, ``TooSlow`` when
    it is not complete ``deadline`` seconds from now, ``requests.RequestException`` when it breaks off."""
    start = clock()
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        # close() alone does not wake a thread blocked in recv(); shutting the socket down does
        sock = _socket_of(response)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        response.close()

    timer = threading.Timer(deadline, expire)
    timer.daemon = True
    timer.start()
    chunks: list[bytes] = []
    size = 0
    try:
        for part in response.iter_content(chunk):
            size += len(part)
            if size > cap:
                raise TooLarge()
            chunks.append(part)
            if clock() - start > deadline:
                raise TooSlow()
    except (requests.exceptions.RequestException, OSError, ValueError, AttributeError) as exc:
        # a closed response raises one of these from inside urllib3, depending on where the read was
        if fired.is_set():
            raise TooSlow() from exc
        if isinstance(exc, requests.exceptions.RequestException):
            raise
        raise requests.exceptions.ConnectionError(str(exc)) from exc
    finally:
        timer.cancel()
        response.close()
    if fired.is_set():
        raise TooSlow()
    return b"".join(chunks)
