"""The guards' counts in the Kubernetes API, shared by every replica of the function.

Leases (``coordination.k8s.io``) in the function's own namespace, because that needs no
permission on anything that matters (ConfigMaps there hold the policy; Leases elsewhere
elect leaders):

- **Dedup**: one Lease per key, ``falco-responder-dedup-<hash>``. Claiming is *creating*
  it: the API server lets exactly one create win, in one call. The loser reads it: done
  (within its window) or in progress. Releasing after acting marks it done until the window
  ends (written by a background thread, off the answer's path); releasing without acting
  deletes it (only the version we wrote). A claim left by a
  replica that died expires after ``stale_after``; taking it over is a replace conditioned
  on the ``resourceVersion`` read, so only one replica can. A key known done here is
  answered from memory until its window ends: that costs no call and cannot be wrong,
  because nothing shortens a window.
- **Rate limit**: one Lease per limit, ``falco-responder-rate-limit-<N>-per-<W>s``, whose
  annotation lists the
  slots taken in the window. Taking a slot is a replace conditioned on the
  ``resourceVersion``; a conflict (another replica wrote first) rereads and tries again
  until the alert's deadline. A slot is written before the action runs, so a replica that
  dies mid-action has already counted it: nothing is lost, at worst a slot is counted that
  was never used. The last version seen is kept to save the read in the common case.

Leases left done are swept now and then (list + delete of expired ones).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import random
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple

from .errors import Conflict, NotFound
from .kube import Kube
from .metrics import METRICS
from .state import Claim, Slot, new_slot, slot_time

log = logging.getLogger("function")

PREFIX = "falco-responder"
MANAGED = "app.kubernetes.io/managed-by"
_STATE = "falco-responder/state"
_UNTIL = "falco-responder/until"
_KEY = "falco-responder/key"
_SLOTS = "falco-responder/slots"
RATE_LEASE = f"{PREFIX}-rate-limit"


def rate_lease_name(limit: int, window: float) -> str:
    """One count per limit: replicas enforcing the same limit share it; another function
    (or a policy with another limit) in the namespace counts apart."""
    return f"{RATE_LEASE}-{limit}-per-{window:g}s"
SWEEP_EVERY = 300.0


def dedup_lease_name(key: str) -> str:
    return f"{PREFIX}-dedup-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:40]}"


def _micro(now: float) -> str:
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseState:
    kind = "kubernetes"
    remote = True

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.replica = f"{os.environ.get('POD_NAME') or socket.gethostname()}-{os.getpid()}"
        self._lock = threading.Lock()
        self._done: Dict[str, float] = {}          # key -> until, known here
        self._mine: Dict[str, Dict[str, Any]] = {}  # key -> the claim Lease we wrote
        self._rate: Optional[Dict[str, Any]] = None  # the rate-limit Lease last seen
        self._rate_lock = threading.Lock()
        self._rate_name = RATE_LEASE
        self._swept = time.monotonic()
        self._writes: queue.Queue[Dict[str, Any]] = queue.Queue()
        self._home_pid = os.getpid()
        self._start_writer()
        # Threads do not survive fork (Kubeless forks a child per request): start another.
        os.register_at_fork(after_in_child=self._start_writer)

    def _start_writer(self) -> None:
        self._writes = queue.Queue()
        threading.Thread(target=self._write_marks, name="dedup-marks", daemon=True).start()

    # -- dedup ---------------------------------------------------------------------------

    def claim(self, key: str, now: float, window: float, stale_after: float) -> Claim:
        with self._lock:
            if self._done.get(key, 0) > now:
                return Claim.DONE
        holder = f"{self.replica}/{random.getrandbits(48):012x}"
        body = self._marker(key, holder, "in-progress", now, stale_after)
        for _ in range(3):
            try:
                self._remember(key, self.kube.create_lease(body))
                return Claim.CLAIMED
            except Conflict:
                pass
            current = self.kube.get_lease(body["metadata"]["name"])
            if current is None:
                continue  # released between our create and our read: try again
            annotations = current["metadata"].get("annotations") or {}
            if current["spec"].get("holderIdentity") == holder:
                self._remember(key, current)  # our create went through; its answer was lost
                return Claim.CLAIMED
            until = float(annotations.get(_UNTIL) or 0)
            if until > now:
                if annotations.get(_STATE) == "done":
                    with self._lock:
                        self._done[key] = until
                    return Claim.DONE
                return Claim.IN_PROGRESS
            # Expired (done long ago, or a dead replica's claim): take it over, once.
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            try:
                self._remember(key, self.kube.replace_lease(body))
                return Claim.CLAIMED
            except (Conflict, NotFound):
                METRICS.conflicts.inc()
                return Claim.IN_PROGRESS  # another replica took it over first
        return Claim.IN_PROGRESS

    def settled(self, key: str, now: float) -> bool:
        with self._lock:
            return self._done.get(key, 0) > now

    def release(self, key: str, now: float, acted: bool, window: float) -> None:
        with self._lock:
            mine = self._mine.pop(key, None)
        if mine is None:
            return
        name = mine["metadata"]["name"]
        if not acted:
            self.kube.delete_lease(name, mine["metadata"]["resourceVersion"])
            return
        body = self._marker(key, mine["spec"]["holderIdentity"], "done", now, window)
        body["metadata"]["resourceVersion"] = mine["metadata"]["resourceVersion"]
        with self._lock:
            self._done[key] = now + window
            if len(self._done) > 10000:
                self._done = {k: u for k, u in self._done.items() if u > now}
        # Off the request's path: the answer need not wait for it. Until it is written
        # other replicas see the claim "in progress", which also skips; should this process
        # die first, the claim expires and whoever takes it over finds the pod gone.
        self._writes.put(body)
        if os.getpid() != self._home_pid:
            self.flush()  # a forked child (Kubeless) may exit right after answering
        self._maybe_sweep()

    def flush(self) -> None:
        """Wait until every "done" mark queued so far is written."""
        self._writes.join()

    def _write_marks(self) -> None:
        while True:
            body = self._writes.get()
            try:
                self.kube.replace_lease(body)
            except (Conflict, NotFound):
                # Taken over after our claim expired: only a request past its deadline
                # gets here, and the one that took it over decides from what it reads.
                METRICS.conflicts.inc()
            except Exception as e:  # the claim then expires: on the side of acting twice
                log.warning("dedup mark %s not written: %s", body["metadata"]["name"], e)
            finally:
                self._writes.task_done()

    def _remember(self, key: str, lease: Dict[str, Any]) -> None:
        with self._lock:
            self._mine[key] = lease

    def _marker(self, key: str, holder: str, state: str, now: float, seconds: float
                ) -> Dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": dedup_lease_name(key), "labels": {MANAGED: PREFIX},
                         "annotations": {_STATE: state, _UNTIL: f"{now + seconds:.6f}",
                                         _KEY: key[:1024]}},
            "spec": {"holderIdentity": holder, "acquireTime": _micro(now),
                     "renewTime": _micro(now),
                     "leaseDurationSeconds": max(1, int(seconds + 0.999))},
        }

    def _maybe_sweep(self) -> None:
        if time.monotonic() - self._swept < SWEEP_EVERY:
            return
        self._swept = time.monotonic()
        threading.Thread(target=self.sweep, name="lease-sweep", daemon=True).start()

    def sweep(self) -> int:
        """Delete the dedup Leases whose time is over; returns how many."""
        removed = 0
        try:
            now = time.time()
            for lease in self.kube.list_leases(f"{MANAGED}={PREFIX}"):
                meta = lease["metadata"]
                until = float((meta.get("annotations") or {}).get(_UNTIL) or 0)
                if not meta["name"].startswith(RATE_LEASE) and until and until < now:
                    self.kube.delete_lease(meta["name"], meta["resourceVersion"])
                    removed += 1
        except Exception as e:  # a sweep is housekeeping: never a request's failure
            log.warning("sweeping expired guard Leases failed: %s", e)
        return removed

    # -- rate limit ----------------------------------------------------------------------

    def take(self, now: float, limit: int, window: float, consume: bool
             ) -> Tuple[bool, Optional[Slot]]:
        slot = new_slot(now, self.replica)
        # One writer per process at a time: conflicts are then only between replicas.
        with self._rate_lock:
            self._rate_name = rate_lease_name(limit, window)
            fresh = self._rate is None
            while True:
                lease = self._rate if not fresh else self.kube.get_lease(self._rate_name)
                slots = _live(lease, now, window)
                if slot in slots:
                    self._rate = lease  # our write went through; its answer was lost
                    return True, slot
                if len(slots) >= limit:
                    if not fresh:  # slots may have been given back elsewhere: look again
                        fresh = True
                        continue
                    self._rate = lease
                    return False, None
                if not consume:
                    self._rate = lease
                    return True, None
                try:
                    self._rate = self._write(lease, [*slots, slot])
                    return True, slot
                except (Conflict, NotFound):
                    METRICS.conflicts.inc()
                    fresh = True
                    time.sleep(random.uniform(0, 0.005))

    def give_back(self, slot: Slot) -> None:
        with self._rate_lock:
            lease = self._rate
            for _ in range(20):
                if lease is None or slot not in _slots(lease):
                    lease = self.kube.get_lease(self._rate_name)
                    if lease is None or slot not in _slots(lease):
                        self._rate = lease
                        return
                try:
                    self._rate = self._write(lease, [s for s in _slots(lease) if s != slot])
                    return
                except (Conflict, NotFound):
                    METRICS.conflicts.inc()
                    lease = None

    def remaining(self, now: float, limit: int, window: float) -> Optional[int]:
        return max(0, limit - len(_live(self._rate, now, window)))

    def _write(self, lease: Optional[Dict[str, Any]], slots: List[Slot]) -> Dict[str, Any]:
        body: Dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self._rate_name, "labels": {MANAGED: PREFIX},
                         "annotations": {_SLOTS: json.dumps(slots, separators=(",", ":"))}},
            "spec": {"holderIdentity": self.replica, "renewTime": _micro(time.time())},
        }
        if lease is None:
            return self.kube.create_lease(body)
        body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
        return self.kube.replace_lease(body)


def _slots(lease: Optional[Dict[str, Any]]) -> List[Slot]:
    if lease is None:
        return []
    raw = (lease["metadata"].get("annotations") or {}).get(_SLOTS) or "[]"
    try:
        slots = json.loads(raw)
    except ValueError:
        return []  # a foreign value: start over rather than refuse every action
    return [s for s in slots if isinstance(s, str)] if isinstance(slots, list) else []


def _live(lease: Optional[Dict[str, Any]], now: float, window: float) -> List[Slot]:
    return [s for s in _slots(lease) if slot_time(s) > now - window]
