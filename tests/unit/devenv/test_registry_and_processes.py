"""The registry binary lookup (override, Debian's /usr/bin, the unpacked .deb in the cache, else an
error naming `apt-get install -y docker-registry`) and the process plumbing every server uses:
stop() escalates to SIGKILL for a process that ignores SIGTERM, and a server that dies during start
is reported with its log tail. Hermetic: shell scripts stand in for the servers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from padlock.devenv import processes, registry
from padlock.devenv.errors import MissingBinaryError, StartupError


def _exe(path: Path, body: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


def test_registry_override_variable_wins_over_system_binary(tmp_path: Path) -> None:
    mine = _exe(tmp_path / "registry")
    system = _exe(tmp_path / "usr-bin-docker-registry")
    assert (
        registry.find(env={"PADLOCK_DOCKER_REGISTRY": str(mine)}, system_binary=system, fetch=False) == mine
    )


def test_registry_system_binary_wins_over_cache(tmp_path: Path) -> None:
    system = _exe(tmp_path / "usr-bin-docker-registry")
    _exe(tmp_path / "cache/docker-registry/usr/bin/docker-registry")
    assert (
        registry.find(env={"PADLOCK_CACHE": str(tmp_path / "cache")}, system_binary=system, fetch=False)
        == system
    )


def test_registry_unpacked_deb_in_cache_is_used_without_system_binary(tmp_path: Path) -> None:
    unpacked = _exe(tmp_path / "cache/docker-registry/usr/bin/docker-registry")
    env = {"PADLOCK_CACHE": str(tmp_path / "cache")}
    assert registry.find(env=env, system_binary=tmp_path / "absent", fetch=False) == unpacked


def test_missing_registry_names_the_apt_command(tmp_path: Path) -> None:
    env = {"PADLOCK_CACHE": str(tmp_path / "cache")}
    with pytest.raises(MissingBinaryError) as raised:
        registry.find(env=env, system_binary=tmp_path / "absent", fetch=False)
    assert str(raised.value).startswith("docker-registry: not at ")
    assert "apt-get install -y docker-registry" in str(raised.value)


def test_registry_override_to_missing_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(MissingBinaryError, match=r"PADLOCK_DOCKER_REGISTRY=.* is not an executable file"):
        registry.find(env={"PADLOCK_DOCKER_REGISTRY": str(tmp_path / "nope")}, fetch=False)


def test_stop_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = _exe(
        tmp_path / "stubborn", "#!/bin/sh\ntrap '' TERM\necho started\nwhile :; do sleep 1; done\n"
    )
    server = processes.Server("stubborn", [str(stubborn)], tmp_path / "stubborn.log")
    server.start()
    assert server.process is not None
    pid = server.process.pid
    processes.wait_until(
        server, lambda: "started" in (tmp_path / "stubborn.log").read_text(), 10, "its banner"
    )
    server.stop(grace=0.5)
    assert not processes.pid_alive(pid)
    assert server.process.returncode == -9


def test_server_dying_during_start_is_reported_with_its_log_tail(tmp_path: Path) -> None:
    crash = _exe(
        tmp_path / "crash", "#!/bin/sh\necho 'listen tcp 127.0.0.1:1: bind: permission denied'\nexit 2\n"
    )
    server = processes.Server("crashy", [str(crash)], tmp_path / "crash.log")
    server.start()
    with pytest.raises(StartupError) as raised:
        processes.wait_until(server, lambda: False, 30, "GET /healthz")
    message = str(raised.value)
    assert message.startswith("crashy (exited 2): exited while waiting for GET /healthz")
    assert "bind: permission denied" in message
    assert str(tmp_path / "crash.log") in message


def test_port_in_use_is_recognised_for_a_retry(tmp_path: Path) -> None:
    busy = _exe(
        tmp_path / "busy", "#!/bin/sh\necho 'listen tcp 127.0.0.1:5000: bind: address already in use'\n"
    )
    server = processes.Server("busy", [str(busy)], tmp_path / "busy.log")
    server.start()
    assert server.process is not None
    server.process.wait(timeout=10)
    assert processes.port_in_use(server)
