"""Guards: what the function must never touch, and how much it may do.

Checks that need no I/O (protected namespaces, dedup, blast radius) come first in the
engine; checks on the pod and its namespace use what the engine already read. Every
guard returns a reason to skip, or None. Dedup and the rate limiter keep their counts in a
:mod:`~function.state` shared by every request that could act (one process, the pod's
processes, or every replica through the Kubernetes API), so concurrent requests never act
twice.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Optional, Tuple

from .alert import Alert, Target, parse_time
from .errors import InvalidAlert
from .policy import Guards
from .state import Claim, GuardState, MemoryState, Slot

FALCO_APPS = frozenset({"falco", "falcosidekick", "falcosidekick-ui", "falco-talon"})
_APP_LABELS = ("app.kubernetes.io/name", "app")

Clock = Callable[[], float]
DedupKey = Tuple[str, ...]


def protected_namespace(guards: Guards, target: Target, own_namespace: Optional[str]
                        ) -> Optional[str]:
    if target.namespace in guards.protected_namespaces:
        return f"namespace {target.namespace} is protected"
    if guards.protect_self and own_namespace and target.namespace == own_namespace:
        return f"namespace {target.namespace} is the function's own namespace"
    return None


def pod_guard(guards: Guards, pod: Mapping[str, Any], target: Target,
              own_pod: Optional[Tuple[str, str]]) -> Optional[str]:
    """Self, Falco's own pods and the opt-out mark on the pod itself."""
    metadata = pod.get("metadata", {})
    labels = metadata.get("labels") or {}
    if guards.protect_self and own_pod == (target.namespace, target.pod):
        return "the function's own pod"
    if guards.protect_falco:
        for key in _APP_LABELS:
            if labels.get(key) in FALCO_APPS:
                return f"a {labels[key]} pod ({key}={labels[key]})"
    return opted_out(guards, metadata, "pod")


def opted_out(guards: Guards, metadata: Mapping[str, Any], what: str) -> Optional[str]:
    key = guards.opt_out_key
    for kind in ("labels", "annotations"):
        value = (metadata.get(kind) or {}).get(key)
        if value is not None and str(value).lower() == "true":
            return f"{what} opted out ({kind[:-1]} {key}=true)"
    return None


def stale_target(guards: Guards, pod: Mapping[str, Any], alert: Alert) -> Optional[str]:
    """A pod that is not the one the alert saw: another UID, or created after the alert."""
    if not guards.stale_target:
        return None
    metadata = pod.get("metadata", {})
    target = alert.target
    if target is not None and target.uid:
        if metadata.get("uid") != target.uid:
            return "pod was replaced (UID differs): not the pod of the alert"
        return None
    # creationTimestamp has one-second precision: a pod created in the alert's own second
    # may be a replacement created just after it, so without a UID that is not enough.
    created_text = metadata.get("creationTimestamp")
    try:
        created = parse_time(created_text, "creationTimestamp")
    except InvalidAlert:
        return f"pod has no readable creationTimestamp ({created_text!r:.40}): cannot tell " \
               "it is the pod of the alert"
    alert_second = alert.time.replace(microsecond=0)
    if created > alert_second:
        return (f"pod was created at {created_text}, after the alert "
                f"({alert.summary()['time']}): not the pod of the alert")
    if created == alert_second:
        return (f"pod was created at {created_text}, the alert's own second, and the alert "
                "has no pod UID: cannot tell it is the pod of the alert")
    return None


class Dedup:
    """The same (rule, namespace, pod, UID, action) acts once per window, across every
    process and replica that shares the :mod:`~function.state`."""

    def __init__(self, window: float, clock: Clock = time.time,
                 state: Optional[GuardState] = None, stale_after: float = 60.0) -> None:
        self.window = window
        self.clock = clock
        self.state: GuardState = state or MemoryState()
        # A claim whose request died (a killed process or replica) stops blocking after
        # this long: no request outlives its deadline, so a claim older than that is dead.
        self.stale_after = stale_after

    def claim(self, key: DedupKey) -> Optional[str]:
        """Reserve the key for this request, or say why it is a duplicate."""
        if self.window <= 0:
            return None
        claim = self.state.claim("|".join(key), self.clock(), self.window, self.stale_after)
        if claim is Claim.IN_PROGRESS:
            return "duplicate: the same action on this pod is in progress"
        if claim is Claim.DONE:
            return f"duplicate: already acted within the last {self.window:g}s"
        return None

    def settled(self, key: DedupKey) -> bool:
        """Whether a claim would certainly answer "already acted", known without I/O."""
        return self.window > 0 and self.state.settled("|".join(key), self.clock())

    def release(self, key: DedupKey, acted: bool) -> None:
        """End a claim; only an action that acted starts the window."""
        if self.window <= 0:
            return
        self.state.release("|".join(key), self.clock(), acted, self.window)


class RateLimit:
    """At most ``limit`` destructive actions per sliding window, across every process and
    replica that shares the :mod:`~function.state`."""

    def __init__(self, limit: Optional[int], window: float, clock: Clock = time.time,
                 state: Optional[GuardState] = None) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.state: GuardState = state or MemoryState()

    def take(self, consume: bool = True) -> Tuple[Optional[str], Optional[Slot]]:
        """(why not, None), or (None, the slot taken); a dry run only looks
        (``consume=False``) and takes no slot."""
        if self.limit is None:
            return None, None
        ok, slot = self.state.take(self.clock(), self.limit, self.window, consume)
        if not ok:
            return (f"rate limit: {self.limit} destructive actions per "
                    f"{self.window:g}s reached"), None
        return None, slot

    def give_back(self, slot: Slot) -> None:
        """An action that did not act after all frees the very slot it took."""
        self.state.give_back(slot)

    def remaining(self) -> Optional[int]:
        """Slots left as last seen by this process (None: no limit)."""
        if self.limit is None:
            return None
        return self.state.remaining(self.clock(), self.limit, self.window)
