"""Tables the core keeps for speed or typing agree with the ``padlock.api`` ones they stand for.

Covers: the comparison operators a PolicyException may use are the ones Falco's rules loader accepts
(the CRD's ``match.comps`` enum, ``padlock.api.exception.ExceptionComp``, equals
``padlock.engine.collector.EXCEPTION_COMPS``, which the exception renderer checks against); the core's
``Kind`` literal names exactly the rendered kinds of ``padlock.api.kinds``.
"""

from __future__ import annotations

from typing import get_args

from padlock.api import kinds
from padlock.api.exception import ExceptionComp
from padlock.engine import collector
from padlock.policy import exceptions_render, policy_objects


def test_crd_enum_and_loader_accept_the_same_operators():
    assert frozenset(get_args(ExceptionComp)) == collector.EXCEPTION_COMPS
    assert exceptions_render.COMPS is collector.EXCEPTION_COMPS


def test_core_kind_literal_names_the_api_kinds():
    assert set(get_args(policy_objects.Kind)) == {k.kind for k in kinds.RENDERED} == set(policy_objects.KINDS)
