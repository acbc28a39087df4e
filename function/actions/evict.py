"""evict: remove the pod through the Eviction API, so PodDisruptionBudgets are respected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ..decision import Status
from ..errors import Conflict
from .base import ActionContext, ActionDefinition, RbacRule, param
from .owners import owner_skip_reason
from .terminate import DONE_REASONS, _grace


@dataclass(frozen=True)
class Params:
    grace_period_seconds: Optional[int] = param(
        None, "Seconds the pod gets to stop; null: the pod's own setting.", check=_grace)
    skip_daemonsets: bool = param(True, "Leave DaemonSet pods alone.")
    skip_static: bool = param(True, "Leave static (mirror) pods alone.")


def check(ctx: ActionContext, params: Params) -> Optional[str]:
    if ctx.pod is None:
        return None
    return owner_skip_reason(ctx.pod, skip_daemonsets=params.skip_daemonsets,
                             skip_static=params.skip_static)


def run(ctx: ActionContext, params: Params) -> Tuple[Status, str]:
    try:
        result, detail = ctx.api().evict_pod(ctx.target.namespace, ctx.target.pod, ctx.uid,
                                             params.grace_period_seconds)
    except Conflict:
        return Status.SKIPPED, "pod was replaced (UID differs): not the pod of the alert"
    if result == "blocked":
        return Status.SKIPPED, f"blocked by PDB: {detail}"
    if result == "confirmed":
        return Status.DONE, "pod evicted (its answer was lost; the pod, read again, is gone)"
    return Status.DONE, DONE_REASONS[result]


def describe(params: Params) -> str:
    return "evict pod"


DEFINITION = ActionDefinition(
    name="evict",
    description="Evict the pod (Eviction API); a PodDisruptionBudget refusal is reported "
                "as 'blocked by PDB', not as an error.",
    params=Params,
    rbac=(RbacRule("", ("pods/eviction",), ("create",)),),
    check=check,
    run=run,
    describe=describe,
    destructive=True,
    gone_is_done=True,
    example="- action: evict",
)
