"""isolate: quarantine the pod instead of killing it.

Labels the pod, then creates (or updates) in its namespace one NetworkPolicy that
selects that label and allows nothing in or out. The label goes first: a policy that
exists before the label selects nothing, so a failure in between isolates nobody else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from ..alert import invalid_name_reason
from ..decision import Status
from ..errors import Conflict
from .base import ActionContext, ActionDefinition, RbacRule, check_key, param

_NAME_MAX = 253


def _policy_name(value: str) -> str:
    if invalid_name_reason("default", value) or len(value) > _NAME_MAX:
        raise ValueError(f"{value!r} is not a valid NetworkPolicy name")
    return value


def _label_value(value: str) -> str:
    if not value or len(value) > 63:
        raise ValueError(f"{value!r} is not a valid label value")
    return value


@dataclass(frozen=True)
class Params:
    label_key: str = param("falco-responder/isolated", "Label that marks isolated pods.",
                           check=check_key)
    label_value: str = param("true", "Value of that label.", check=_label_value)
    network_policy_name: str = param(
        "falco-responder-isolate", "Name of the deny-all NetworkPolicy in the pod's namespace.",
        check=_policy_name)


def network_policy(params: Params) -> Dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": params.network_policy_name,
                     "labels": {"app.kubernetes.io/managed-by": "falco-responder"}},
        "spec": {"podSelector": {"matchLabels": {params.label_key: params.label_value}},
                 # Both types with no rules: deny all ingress and all egress.
                 "policyTypes": ["Ingress", "Egress"]},
    }


def run(ctx: ActionContext, params: Params) -> Tuple[Status, str]:
    kube = ctx.api()
    try:
        found = kube.patch_pod_metadata(ctx.target.namespace, ctx.target.pod, ctx.uid,
                                        labels={params.label_key: params.label_value})
    except Conflict:
        return Status.SKIPPED, "pod was replaced (UID differs): not the pod of the alert"
    if not found:
        return Status.SKIPPED, "pod not found"
    how = kube.apply_network_policy(ctx.target.namespace, network_policy(params))
    return Status.DONE, f"{describe(params)}; NetworkPolicy {how}"


def describe(params: Params) -> str:
    return (f"isolate: label {params.label_key}={params.label_value}, deny-all "
            f"NetworkPolicy {params.network_policy_name}")


DEFINITION = ActionDefinition(
    name="isolate",
    description="Label the pod and deny all its ingress and egress with a NetworkPolicy. "
                "NetworkPolicies add up: another policy that allows traffic to or from the "
                "pod still does, so isolation is complete only where no other policy "
                "selects it (and only with a network plugin that enforces policies).",
    params=Params,
    rbac=(RbacRule("", ("pods",), ("patch",)),
          RbacRule("networking.k8s.io", ("networkpolicies",), ("create", "get", "update"))),
    run=run,
    describe=describe,
    destructive=True,
    example="- action: isolate",
)
