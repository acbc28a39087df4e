"""Every action the policy can name, one module each, collected in :data:`REGISTRY`."""

from __future__ import annotations

from . import annotate, evict, isolate, label, record, terminate
from .base import ActionContext, ActionDefinition, RbacRule
from .registry import ActionRegistry

REGISTRY = ActionRegistry()
for _module in (terminate, evict, label, annotate, isolate, record):
    REGISTRY.register(_module.DEFINITION)

# Reads every pod-targeted action needs before acting (the pod and its namespace,
# for guards such as opt-out and the stale-target check).
BASE_RBAC = (
    RbacRule("", ("pods",), ("get",)),
    RbacRule("", ("namespaces",), ("get",)),
)

__all__ = ["BASE_RBAC", "REGISTRY", "ActionContext", "ActionDefinition", "ActionRegistry",
           "RbacRule"]
