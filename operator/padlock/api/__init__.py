"""Pydantic models of Padlock's custom resources (group ``padlock.dev``, version ``v1alpha1``).

They are the single source of truth for the CRDs in ``crds/``: ``padlock.api.schema`` generates the
OpenAPI schemas from them, and every other part builds typed objects with ``<Kind>.model_validate(body)``.
"""

from padlock.api.common import Condition, ObjectMeta, Scope
from padlock.api.custompolicy import CustomPolicy, CustomPolicySpec, CustomPolicyStatus
from padlock.api.exception import (
    ClusterPolicyException,
    ExceptionMatch,
    PolicyException,
    PolicyExceptionSpec,
    PolicyExceptionStatus,
    PolicyRef,
)
from padlock.api.managedpolicy import ManagedPolicy, ManagedPolicySpec, ManagedPolicyStatus, ManagedRule
from padlock.api.rulesource import RuleSource, RuleSourceSpec, RuleSourceStatus

__all__ = [
    "ClusterPolicyException",
    "Condition",
    "CustomPolicy",
    "CustomPolicySpec",
    "CustomPolicyStatus",
    "ExceptionMatch",
    "ManagedPolicy",
    "ManagedPolicySpec",
    "ManagedPolicyStatus",
    "ManagedRule",
    "ObjectMeta",
    "PolicyException",
    "PolicyExceptionSpec",
    "PolicyExceptionStatus",
    "PolicyRef",
    "RuleSource",
    "RuleSourceSpec",
    "RuleSourceStatus",
    "Scope",
]
