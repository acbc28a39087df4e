"""Who owns a pod, and whether taking it away leaves its owner healthy enough.

Shared by the actions that remove pods (terminate, evict); reads go through Kube. The
count and the removal happen under a claim on the owner in the guard state, so concurrent
alerts, on one replica of this function or several, never together go below the minimum.
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from ..deadline import remaining
from ..errors import DeadlineExceeded
from ..state import Claim
from .base import ActionContext, RbacRule

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# Reading the owner chain and counting its ready pods, for min_healthy_replicas.
OWNER_READS = (RbacRule("apps", ("replicasets", "deployments", "statefulsets", "daemonsets"),
                        ("get",)),
               RbacRule("", ("pods",), ("list",)))


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


def replica_owner(ctx: ActionContext) -> Optional[Tuple[str, str, Optional[Dict[str, Any]]]]:
    """(kind, name, object) of the workload whose replicas count, or None (no replicas)."""
    if ctx.pod is None:
        return None
    kind, name = controller_of(ctx.pod)
    if kind not in ("ReplicaSet", "StatefulSet", "DaemonSet"):
        # No replicas to keep: standalone and static pods are governed by skip_* instead.
        return None
    return _top_owner(ctx, kind, name)


def owner_key(ctx: ActionContext, kind: str, name: str) -> str:
    return f"owner/{ctx.target.namespace}/{kind}/{name}"


def label_selector(selector: Mapping[str, Any]) -> str:
    """A workload's ``spec.selector`` as the API's label selector string."""
    terms = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels")
                                                         or {}).items())]
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression["key"], expression["operator"]
        values = ",".join(expression.get("values") or ())
        terms.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[operator])
    return ",".join(terms)


def other_ready_pods(ctx: ActionContext, workload: Mapping[str, Any]) -> int:
    """Ready replicas of the workload besides the alert's pod, counted from the pods.

    The owner's ``readyReplicas`` lags behind deletions until its controller catches up,
    so two alerts for two replicas would each see the full count. The pods themselves do
    not lag: one being deleted is gone, or terminating, as soon as the delete returns.
    """
    assert ctx.pod is not None
    uid = ctx.pod.get("metadata", {}).get("uid")
    selector = label_selector(workload.get("spec", {}).get("selector") or {})
    pods = ctx.api().list_pods(ctx.target.namespace, selector) if selector else []
    return sum(1 for pod in pods if _is_ready(pod)
               and pod.get("metadata", {}).get("uid") != uid
               and not pod.get("metadata", {}).get("deletionTimestamp"))


def replicas_skip_reason(ctx: ActionContext, minimum: Optional[MinHealthy]) -> Optional[str]:
    """Skip when removing this pod would leave fewer ready replicas than required."""
    if minimum is None:
        return None
    owner = replica_owner(ctx)
    if owner is None:
        return None
    return replicas_reason(ctx, minimum, *owner)


def replicas_reason(ctx: ActionContext, minimum: MinHealthy, kind: str, name: str,
                    workload: Optional[Dict[str, Any]]) -> Optional[str]:
    if workload is None:
        return f"min_healthy_replicas: owner {kind} {name} not found"
    if kind == "DaemonSet":
        desired = workload.get("status", {}).get("desiredNumberScheduled", 0)
    else:
        desired = workload.get("spec", {}).get("replicas", 1)
    required = minimum.required(int(desired or 0))
    left = other_ready_pods(ctx, workload)
    if left < required:
        how = f" ({minimum} of {desired} desired)" if minimum.percent is not None else ""
        return (f"min_healthy_replicas: {kind} {name} would keep {left} ready replica(s), "
                f"{required} required{how}")
    return None


@contextlib.contextmanager
def owner_lock(ctx: ActionContext, key: str, poll: float = 0.02) -> Iterator[None]:
    """Hold the owner while its replicas are counted and one is removed, for every replica
    of this function (a claim in the guard state), until the alert's deadline."""
    state = ctx.state
    if state is None:
        yield
        return
    # A holder that died leaves its claim; it is taken over after the longest an alert lasts.
    stale_after = (remaining() or 5.0) + 5.0
    while state.claim(key, time.time(), 0.0, stale_after) is not Claim.CLAIMED:
        left = remaining()
        if left is not None and left <= poll:
            raise DeadlineExceeded(f"{key}: another request held it past the alert's "
                                   "deadline")
        time.sleep(poll)
    try:
        yield
    finally:
        state.release(key, time.time(), acted=False, window=0.0)
