"""Errors raised by ``padlock.devenv`` when a real part of the test environment is missing.

Every message names the missing thing and the exact command that provides it, so a failing test run
tells its reader how to fix the machine rather than just that something is absent.
"""

from __future__ import annotations


class DevenvError(RuntimeError):
    """Base class: something the development environment needs is missing or broken."""


class MissingBinaryError(DevenvError):
    """A binary (kube-apiserver, etcd, kubectl, helm, docker-registry) could not be found or fetched."""

    def __init__(self, name: str, problem: str, remedy: str) -> None:
        self.name = name
        self.problem = problem
        self.remedy = remedy
        super().__init__(f"{name}: {problem}; to get it: {remedy}")


class MissingComponentError(DevenvError):
    """A project file the environment needs (e.g. the chart's RBAC template, the CRDs) does not exist yet."""


class StartupError(DevenvError):
    """A process (etcd, kube-apiserver, registry) did not become ready; the message carries its log tail."""
