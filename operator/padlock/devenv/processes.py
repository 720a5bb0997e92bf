"""Child-process plumbing shared by the control plane and the registry: free ports, starting a
server with its log in a file, waiting for readiness, and stopping it without leaving it behind.

Called by ``padlock.devenv.controlplane`` and ``padlock.devenv.registry`` only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

from padlock.devenv.errors import StartupError

# Every server this process started and has not stopped yet; atexit stops them so an interrupted
# run (Ctrl-C, a crashing test session) leaves nothing running.
_LIVE: weakref.WeakSet[Server] = weakref.WeakSet()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the caller retries if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 40) -> str:
    """Last lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class Server:
    """One long-running child process whose stdout and stderr go to ``log``."""

    def __init__(self, name: str, argv: Sequence[str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = self.argv
        # If this Python process dies without running atexit (SIGKILL, OOM), the kernel kills the
        # child: setpriv sets PR_SET_PDEATHSIG before exec. KILL, not TERM: etcd and the apiserver
        # would both get it at once, and a terminating apiserver then waits ~30 s for the dead etcd.
        # preexec_fn could set it too, but is unsafe when other threads exist (kopf runs some).
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            argv = [setpriv, "--pdeathsig", "KILL", "--", *argv]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True
            )
        _LIVE.add(self)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL; always reaps the process."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=10)
        _LIVE.discard(self)

    def failure(self, problem: str) -> StartupError:
        """A startup error carrying the exit status and the log tail."""
        status = (
            ""
            if self.process is None or self.process.poll() is None
            else f" (exited {self.process.returncode})"
        )
        return StartupError(f"{self.name}{status}: {problem}; log {self.log}, last lines:\n{tail(self.log)}")


def wait_until(server: Server, ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``ready`` until it is true; fail early if the server exits, with its log tail."""
    deadline = time.monotonic() + timeout
    while True:
        if not server.running:
            raise server.failure(f"exited while waiting for {what}")
        try:
            if ready():
                return
        except OSError:
            pass  # not listening yet, or the connection was reset during start-up
        if time.monotonic() > deadline:
            raise server.failure(f"{what} not ready after {timeout:.0f}s")
        time.sleep(0.1)


def port_in_use(server: Server) -> bool:
    """True when the server exited because its port was taken (the free-port race); caller retries."""
    return not server.running and "address already in use" in tail(server.log, 200)


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop(grace=5.0)


def pid_alive(pid: int) -> bool:
    """Whether a process id still exists (tests use it to prove nothing was left behind)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone when /proc says so.
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/status").read_text()
        if "\nState:\tZ" in status:
            return False
    return True
