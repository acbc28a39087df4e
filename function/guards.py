"""Guards: what the function must never touch, and how much it may do.

Checks that need no I/O (protected namespaces, dedup, blast radius) come first in the
engine; checks on the pod and its namespace use what the engine already read. Every
guard returns a reason to skip, or None. Dedup and the rate limiter hold per-process
state behind one lock each, so concurrent requests never act twice.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, Mapping, Optional, Tuple

from .alert import Alert, Target
from .policy import Guards

FALCO_APPS = frozenset({"falco", "falcosidekick", "falcosidekick-ui", "falco-talon"})
_APP_LABELS = ("app.kubernetes.io/name", "app")

Clock = Callable[[], float]
DedupKey = Tuple[str, str, str, str]


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
    from .alert import parse_time
    from .errors import InvalidAlert

    metadata = pod.get("metadata", {})
    target = alert.target
    if target is not None and target.uid:
        if metadata.get("uid") != target.uid:
            return "pod was replaced (UID differs): not the pod of the alert"
        return None
    created = metadata.get("creationTimestamp")
    if created:
        try:
            if parse_time(created) > alert.time:
                return (f"pod was created at {created}, after the alert "
                        f"({alert.summary()['time']}): not the pod of the alert")
        except InvalidAlert:
            return None
    return None


class Dedup:
    """The same (rule, namespace, pod, action) acts once per window, per process."""

    def __init__(self, window: float, clock: Clock = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._until: Dict[DedupKey, float] = {}
        self._in_flight: Dict[DedupKey, int] = {}

    def claim(self, key: DedupKey) -> Optional[str]:
        """Reserve the key for this request, or say why it is a duplicate."""
        if self.window <= 0:
            return None
        now = self.clock()
        with self._lock:
            if key in self._in_flight:
                return "duplicate: the same action on this pod is in progress"
            until = self._until.get(key)
            if until is not None and until > now:
                return f"duplicate: already acted within the last {self.window:g}s"
            self._in_flight[key] = 1
            if len(self._until) > 10000:
                self._until = {k: u for k, u in self._until.items() if u > now}
        return None

    def release(self, key: DedupKey, acted: bool) -> None:
        """End a claim; only an action that acted starts the window."""
        if self.window <= 0:
            return
        with self._lock:
            self._in_flight.pop(key, None)
            if acted:
                self._until[key] = self.clock() + self.window


class RateLimit:
    """At most ``limit`` destructive actions per sliding window, per process."""

    def __init__(self, limit: Optional[int], window: float, clock: Clock = time.monotonic
                 ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._times: Deque[float] = deque()

    def take(self, consume: bool = True) -> Optional[str]:
        """Take a slot, or say why not; a dry run only looks (``consume=False``)."""
        if self.limit is None:
            return None
        now = self.clock()
        with self._lock:
            while self._times and self._times[0] <= now - self.window:
                self._times.popleft()
            if len(self._times) >= self.limit:
                return (f"rate limit: {self.limit} destructive actions per "
                        f"{self.window:g}s reached")
            if consume:
                self._times.append(now)
        return None

    def give_back(self) -> None:
        """An action that did not act after all frees its slot."""
        with self._lock:
            if self._times:
                self._times.pop()
