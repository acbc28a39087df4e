"""annotate: set or remove annotations on the pod (null removes an annotation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ..decision import Status
from ..errors import Conflict
from .base import ActionContext, ActionDefinition, RbacRule, check_annotations


@dataclass(frozen=True)
class Params:
    annotations: Dict[str, Optional[str]] = field(default_factory=dict, metadata={
        "doc": "Annotations to set; a null value removes the annotation. Required.",
        "type": "mapping of strings", "check": check_annotations,
        "required": True})


def run(ctx: ActionContext, params: Params) -> Tuple[Status, str]:
    try:
        found = ctx.api().patch_pod_metadata(ctx.target.namespace, ctx.target.pod, ctx.uid,
                                             annotations=params.annotations)
    except Conflict:
        return Status.SKIPPED, "pod was replaced (UID differs): not the pod of the alert"
    return (Status.DONE, describe(params)) if found else (Status.SKIPPED, "pod not found")


def describe(params: Params) -> str:
    return "annotations " + ", ".join(sorted(params.annotations))


DEFINITION = ActionDefinition(
    name="annotate",
    description="Set or remove annotations on the pod.",
    params=Params,
    rbac=(RbacRule("", ("pods",), ("patch",)),),
    run=run,
    describe=describe,
    example="- action: annotate\n  parameters:\n    annotations: {falco.org/last-alert: shell}",
)
