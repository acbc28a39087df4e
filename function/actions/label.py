"""label: set or remove labels on the pod (null removes a label)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ..decision import Status
from ..errors import Conflict
from .base import ActionContext, ActionDefinition, RbacRule, check_labels


@dataclass(frozen=True)
class Params:
    labels: Dict[str, Optional[str]] = field(default_factory=dict, metadata={
        "doc": "Labels to set; a null value removes the label. Required.",
        "type": "mapping of strings", "check": check_labels, "required": True})


def run(ctx: ActionContext, params: Params) -> Tuple[Status, str]:
    try:
        found = ctx.api().patch_pod_metadata(ctx.target.namespace, ctx.target.pod, ctx.uid,
                                             labels=params.labels)
    except Conflict:
        return Status.SKIPPED, "pod was replaced (UID differs): not the pod of the alert"
    return (Status.DONE, describe(params)) if found else (Status.SKIPPED, "pod not found")


def describe(params: Params) -> str:
    return "labels " + ", ".join(f"{k}={v}" if v is not None else f"-{k}"
                                 for k, v in sorted(params.labels.items()))


DEFINITION = ActionDefinition(
    name="label",
    description="Set or remove labels on the pod.",
    params=Params,
    rbac=(RbacRule("", ("pods",), ("patch",)),),
    run=run,
    describe=describe,
    example="- action: label\n  parameters:\n    labels: {falco.org/suspicious: 'true'}",
)
