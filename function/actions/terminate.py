"""terminate: delete the pod, owner-aware, never a same-named replacement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

from ..decision import Status
from ..errors import Conflict
from .base import ActionContext, ActionDefinition, RbacRule, param
from .owners import (
    OWNER_READS,
    MinHealthy,
    owner_key,
    owner_lock,
    owner_skip_reason,
    parse_min_healthy,
    replica_owner,
    replicas_reason,
    replicas_skip_reason,
)


def _grace(value: Optional[int]) -> Optional[int]:
    if value is not None and value < 0:
        raise ValueError(f"expected a number of seconds >= 0, got {value}")
    return value


@dataclass(frozen=True)
class Params:
    grace_period_seconds: Optional[int] = param(
        None, "Seconds the pod gets to stop; null: the pod's own setting; 0: at once.",
        check=_grace)
    skip_daemonsets: bool = param(True, "Leave DaemonSet pods alone (recreated at once).")
    skip_static: bool = param(True, "Leave static (mirror) pods alone (the API cannot "
                                    "remove them).")
    skip_standalone: bool = param(False, "Leave pods without a controller alone.")
    skip_statefulsets: bool = param(False, "Leave StatefulSet pods alone.")
    min_healthy_replicas: Optional[Union[int, str, MinHealthy]] = param(
        None, "Skip unless the owner keeps at least this many ready replicas after the "
              "deletion: a count (2) or a percent of its desired replicas ('50%').",
        type="integer or percent", check=parse_min_healthy)


def check(ctx: ActionContext, params: Params) -> Optional[str]:
    if ctx.pod is None:
        return None
    return owner_skip_reason(
        ctx.pod, skip_daemonsets=params.skip_daemonsets, skip_static=params.skip_static,
        skip_standalone=params.skip_standalone, skip_statefulsets=params.skip_statefulsets,
    ) or replicas_skip_reason(ctx, params.min_healthy_replicas)  # type: ignore[arg-type]


def run(ctx: ActionContext, params: Params) -> Tuple[Status, str]:
    minimum = params.min_healthy_replicas
    owner = replica_owner(ctx) if minimum is not None else None
    if owner is None:
        return _delete(ctx, params)
    kind, name, workload = owner
    # Counted again under the owner's claim, right before the delete: concurrent alerts for
    # several replicas must not together go below the minimum.
    with owner_lock(ctx, owner_key(ctx, kind, name)):
        reason = replicas_reason(ctx, minimum, kind, name, workload)  # type: ignore[arg-type]
        if reason:
            return Status.SKIPPED, reason
        return _delete(ctx, params)


def _delete(ctx: ActionContext, params: Params) -> Tuple[Status, str]:
    try:
        deleted = ctx.api().delete_pod(ctx.target.namespace, ctx.target.pod, ctx.uid,
                                       params.grace_period_seconds)
    except Conflict:
        return Status.SKIPPED, "pod was replaced (UID differs): not the pod of the alert"
    return Status.DONE, DONE_REASONS[deleted]


DONE_REASONS = {
    "deleted": "pod deleted",
    "evicted": "pod evicted",
    "gone": "already gone",
    # The call's answer was lost; the pod, read again, was gone: it happened.
    "confirmed": "pod deleted (its answer was lost; the pod, read again, is gone)",
}


def describe(params: Params) -> str:
    grace = params.grace_period_seconds
    return "delete pod" + (f" (grace {grace}s)" if grace is not None else "")


DEFINITION = ActionDefinition(
    name="terminate",
    description="Delete the pod. The delete is conditioned on the pod's UID. With "
                "min_healthy_replicas it also reads the owner chain (apps replicasets, "
                "deployments, statefulsets, daemonsets: get) and counts the owner's ready "
                "pods (pods: list), and only then needs that.",
    params=Params,
    rbac=(RbacRule("", ("pods",), ("delete",)),),
    rbac_if=lambda params: OWNER_READS if params.min_healthy_replicas is not None else (),
    check=check,
    run=run,
    describe=describe,
    destructive=True,
    gone_is_done=True,
    example="- action: terminate\n  parameters:\n    grace_period_seconds: 0\n"
            "    min_healthy_replicas: 50%",
)
