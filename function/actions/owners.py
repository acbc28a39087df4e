"""Who owns a pod, and whether taking it away leaves its owner healthy enough.

Shared by the actions that remove pods (terminate, evict); reads go through Kube.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from .base import ActionContext, RbacRule

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# Reading the owner chain, for min_healthy_replicas.
OWNER_READS = (RbacRule("apps", ("replicasets", "deployments", "statefulsets", "daemonsets"),
                        ("get",)),)


@dataclass(frozen=True)
class MinHealthy:
    """At least ``count`` replicas, or ``percent`` % of the owner's desired replicas."""

    count: Optional[int] = None
    percent: Optional[int] = None

    def required(self, desired: int) -> int:
        if self.percent is not None:
            # Rounded up: "50% of 3" keeps 2, never 1.
            return math.ceil(desired * self.percent / 100)
        return self.count or 0

    def __str__(self) -> str:
        return f"{self.percent}%" if self.percent is not None else str(self.count)


_PERCENT = re.compile(r"^(\d{1,3})%$")


def parse_min_healthy(value: Any) -> Optional[MinHealthy]:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"expected a count >= 0 or a percent such as '50%', got {value}")
        return MinHealthy(count=value)
    m = _PERCENT.fullmatch(str(value).strip())
    if not m or int(m.group(1)) > 100:
        raise ValueError(f"expected a count >= 0 or a percent from 0% to 100%, got {value!r}")
    return MinHealthy(percent=int(m.group(1)))


def controller_of(pod: Mapping[str, Any]) -> Tuple[str, str]:
    """(kind, name) of the pod's controller: ('', '') standalone, ('Static', node) mirror."""
    metadata = pod.get("metadata", {})
    refs = metadata.get("ownerReferences") or []
    if MIRROR_ANNOTATION in (metadata.get("annotations") or {}):
        node = next((r.get("name", "") for r in refs if r.get("kind") == "Node"), "")
        return "Static", node
    controller = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if controller is None:
        return "", ""
    if controller.get("kind") == "Node":
        return "Static", controller.get("name", "")
    return str(controller.get("kind", "")), str(controller.get("name", ""))


def owner_skip_reason(pod: Mapping[str, Any], *, skip_daemonsets: bool, skip_static: bool,
                      skip_standalone: bool = False, skip_statefulsets: bool = False
                      ) -> Optional[str]:
    kind, name = controller_of(pod)
    if kind == "DaemonSet" and skip_daemonsets:
        return f"owned by DaemonSet {name}: it would be recreated at once (skip_daemonsets)"
    if kind == "Static" and skip_static:
        return f"static (mirror) pod of node {name}: the API cannot remove it (skip_static)"
    if kind == "" and skip_standalone:
        return "standalone pod: nothing would recreate it (skip_standalone)"
    if kind == "StatefulSet" and skip_statefulsets:
        return f"owned by StatefulSet {name} (skip_statefulsets)"
    return None


def _is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _top_owner(ctx: ActionContext, kind: str, name: str
               ) -> Tuple[str, str, Optional[Dict[str, Any]]]:
    namespace = ctx.target.namespace
    workload = ctx.api().get_workload(kind, namespace, name)
    if kind == "ReplicaSet" and workload is not None:
        up_kind, up_name = controller_of(workload)
        if up_kind == "Deployment":
            return up_kind, up_name, ctx.api().get_workload(up_kind, namespace, up_name)
    return kind, name, workload


def replicas_skip_reason(ctx: ActionContext, minimum: Optional[MinHealthy]) -> Optional[str]:
    """Skip when removing this pod would leave fewer ready replicas than required."""
    if minimum is None or ctx.pod is None:
        return None
    kind, name = controller_of(ctx.pod)
    if kind not in ("ReplicaSet", "StatefulSet", "DaemonSet"):
        # No replicas to keep: standalone and static pods are governed by skip_* instead.
        return None
    kind, name, workload = _top_owner(ctx, kind, name)
    if workload is None:
        return f"min_healthy_replicas: owner {kind} {name} not found"
    spec, status = workload.get("spec", {}), workload.get("status", {})
    if kind == "DaemonSet":
        desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
    else:
        desired, ready = spec.get("replicas", 1), status.get("readyReplicas", 0)
    required = minimum.required(int(desired or 0))
    left = int(ready or 0) - (1 if _is_ready(ctx.pod) else 0)
    if left < required:
        how = f" ({minimum} of {desired} desired)" if minimum.percent is not None else ""
        return (f"min_healthy_replicas: {kind} {name} would keep {left} ready replica(s), "
                f"{required} required{how}")
    return None
