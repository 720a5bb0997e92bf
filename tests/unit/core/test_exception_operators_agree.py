"""The comparison operators a PolicyException may use are the ones Falco's rules loader accepts.

Covers: the CRD's ``match.comps`` enum (``padlock.api.exception.ExceptionComp``) equals the loader's
table (``padlock.core.collector.EXCEPTION_COMPS``), which the exception renderer checks against.
"""

from __future__ import annotations

from typing import get_args

from padlock.api.exception import ExceptionComp
from padlock.core import collector, exceptions_render


def test_crd_enum_and_loader_accept_the_same_operators():
    assert frozenset(get_args(ExceptionComp)) == collector.EXCEPTION_COMPS
    assert exceptions_render.COMPS is collector.EXCEPTION_COMPS
