"""Who owns a pod, and whether taking it away leaves its owner healthy enough.

Shared by the actions that remove pods (terminate, evict); reads go through Kube.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

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


class OwnerLedger:
    """Pods this process removed per owner, recently, and one lock per owner.

    An owner's ``readyReplicas`` lags behind deletions (its controller updates it later),
    so two alerts for two replicas would each see the full count and together go below
    the minimum. The check and the deletion run under the owner's lock, and removals made
    in the last ``window`` seconds are subtracted from the ready count. After the
    controller caught up a removal counts twice until it leaves the window: the error is
    on the side of keeping pods.
    """

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.window = window
        self.clock = clock
        self._guard = threading.Lock()
        self._locks: Dict[str, threading.Lock] = {}
        self._removed: Dict[str, List[float]] = {}

    @contextlib.contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(owner, threading.Lock())
        with lock:
            yield

    def recent(self, owner: str) -> int:
        with self._guard:
            now = self.clock()
            kept = [t for t in self._removed.get(owner, []) if t > now - self.window]
            self._removed[owner] = kept
            return len(kept)

    def record(self, owner: str) -> None:
        with self._guard:
            self._removed.setdefault(owner, []).append(self.clock())


LEDGER = OwnerLedger()


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
    return f"{ctx.target.namespace}/{kind}/{name}"


def replicas_skip_reason(ctx: ActionContext, minimum: Optional[MinHealthy]) -> Optional[str]:
    """Skip when removing this pod would leave fewer ready replicas than required."""
    if minimum is None:
        return None
    owner = replica_owner(ctx)
    if owner is None:
        return None
    kind, name, workload = owner
    return replicas_reason(ctx, minimum, kind, name, workload,
                           LEDGER.recent(owner_key(ctx, kind, name)))


def replicas_reason(ctx: ActionContext, minimum: MinHealthy, kind: str, name: str,
                    workload: Optional[Dict[str, Any]], removed: int) -> Optional[str]:
    assert ctx.pod is not None
    if workload is None:
        return f"min_healthy_replicas: owner {kind} {name} not found"
    spec, status = workload.get("spec", {}), workload.get("status", {})
    if kind == "DaemonSet":
        desired, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
    else:
        desired, ready = spec.get("replicas", 1), status.get("readyReplicas", 0)
    required = minimum.required(int(desired or 0))
    left = int(ready or 0) - removed - (1 if _is_ready(ctx.pod) else 0)
    if left < required:
        how = f" ({minimum} of {desired} desired)" if minimum.percent is not None else ""
        just = f", {removed} removed here moments ago" if removed else ""
        return (f"min_healthy_replicas: {kind} {name} would keep {left} ready replica(s), "
                f"{required} required{how}{just}")
    return None
