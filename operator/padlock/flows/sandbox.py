"""A new release is first read in a child process with memory and CPU limits, before the operator's
own process touches it.

``SandboxedSources`` wraps the operator's ``SourcePort``: ``fetch`` (a new candidate) downloads as
before, then loads the release's rules files with ``padlock.engine.loader.load`` in a child forked
from a small fork server (``multiprocessing`` forkserver, ``padlock.engine`` preloaded, so a check costs
a fork, not an interpreter start). The child runs under ``RLIMIT_AS`` (``MEMORY_BYTES``) and
``RLIMIT_CPU`` (``CPU_SECONDS``) and a wall-clock deadline. If it dies (a segfault in a C parser, the
memory or CPU limit, the deadline), the release is refused with a ``SandboxRejected`` naming why, and
the operator, its event loop, ``/healthz`` and admission never see the input that did it. The verdict
itself (diagnostics) still comes from the in-process render, which only ever reads a release the
child read to the end within the limits. ``fetch_current`` (recovering an adopted release after a
restart) is not checked again.

Used by ``padlock.controllers.run`` only; tests and the CLI use the plain port.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import resource
import signal
from typing import Any

from padlock.flows.ports import SourcePort
from padlock.sources.bundles import Bundle, Candidate
from padlock.sources.errors import SourceRejected

JSON = dict[str, Any]

MEMORY_BYTES = 768 * 1024 * 1024
"""Address space of the checking child (virtual: the interpreter itself maps about 100 MB)."""
CPU_SECONDS = 60
"""CPU time of the checking child."""
WALL_SECONDS = 120.0
"""Wall-clock deadline of one check (a loaded node may give the child little CPU)."""

_context: multiprocessing.context.ForkServerContext | None = None


def _ctx() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        # the child unpickles its target from padlock.flows.sandbox (which imports padlock.sources):
        # preloaded too, or every check pays those imports (about 0.4 s)
        ctx.set_forkserver_preload(["padlock.flows.sandbox", "padlock.flows.sandbox_warmup"])
        _context = ctx
    return _context


class SandboxRejected(SourceRejected):
    """Reading the release in the sandbox child failed: refused, never retried for this digest."""

    reason = "ValidationFailed"


def _check(files: list[tuple[str, str]], conn: multiprocessing.connection.Connection, memory: int,
           cpu: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    from padlock.engine import loader
    from padlock.engine.model import RulesFile

    try:
        result = loader.load([RulesFile(n, t) for n, t in files])
        conn.send(("ok", len(result.errors)))
    except MemoryError:
        conn.send(("memory", 0))
    except BaseException as exc:  # a bug, reported as such: the parent refuses the release
        conn.send(("error", f"{type(exc).__name__}: {str(exc)[:200]}"))
    finally:
        conn.close()


def check_files(source: str, reference: str, files: list[tuple[str, str]], *, memory: int = MEMORY_BYTES,
                cpu: int = CPU_SECONDS, wall: float = WALL_SECONDS) -> None:
    """Load ``files`` in the sandbox child; ``SandboxRejected`` if it does not finish within limits."""
    ctx = _ctx()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_check, args=(files, child, memory, cpu), daemon=True)
    proc.start()
    child.close()
    outcome = None
    try:
        if parent.poll(wall):
            outcome = parent.recv()
    except EOFError:  # the child died before answering: its exit code says how
        pass
    finally:
        proc.join(5 if outcome is not None or not proc.is_alive() else 0.1)
        timed_out = proc.is_alive()
        if timed_out:
            proc.kill()
            proc.join(10)
        parent.close()
    if outcome is not None and outcome[0] == "ok":
        return
    if outcome is not None and outcome[0] == "memory":
        problem = f"reading it needs more than {memory // (1024 * 1024)} MiB"
    elif outcome is not None:
        problem = f"reading it failed ({outcome[1]})"
    elif timed_out:
        problem = f"reading it did not finish within {wall:g} s"
    elif proc.exitcode is not None and proc.exitcode < 0:
        sig = -proc.exitcode
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        problem = {"SIGXCPU": f"reading it takes more than {cpu} s of CPU"}.get(
            name, f"reading it crashed the checking process ({name})")
    else:  # Python gave up on its own, most often out of memory outside any try (exit 1)
        problem = f"reading it failed in the checking process (exit {proc.exitcode}; limits {memory // (1024 * 1024)} MiB, {cpu} s CPU)"
    raise SandboxRejected(source, reference, problem)


class SandboxedSources:
    """``SourcePort`` whose ``fetch`` reads each new release in the sandbox before returning it."""

    def __init__(self, inner: SourcePort) -> None:
        self.inner = inner

    def resolve(self, source: JSON) -> Candidate:
        return self.inner.resolve(source)

    def fetch(self, source: JSON, candidate: Candidate) -> Bundle:
        bundle = self.inner.fetch(source, candidate)
        name = str((source.get("metadata") or {}).get("name"))
        check_files(name, "", [(f.name, f.text) for f in bundle.files])
        return bundle

    def fetch_current(self, source: JSON) -> Bundle | None:
        return self.inner.fetch_current(source)
