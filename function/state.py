"""Where the guards keep their counts: one interface, three places.

Dedup and the blast-radius limit only protect if every request that could act sees the same
counts. :class:`GuardState` is what the guards ask of a place; the places are

- :class:`MemoryState`: this process only (one replica, no cluster, or an explicit choice);
- :class:`FileState`: a JSON file under ``flock``, shared by the processes of one pod (the
  Kubeless runtime forks a child per request);
- :class:`~function.lease_state.LeaseState`: Leases in the function's own namespace, shared
  by every replica through the Kubernetes API (the default whenever a cluster is configured).

A state deals in facts (claimed, in progress, done; a slot taken or not); the guards turn
them into reasons. Times are wall-clock seconds, because shared places compare times taken
by different processes and machines.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import itertools
import json
import os
import threading
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Protocol, Tuple

from .errors import SettingsError
from .settings import PREFIX, Settings

if TYPE_CHECKING:
    from .kube import Kube


class Claim(enum.Enum):
    CLAIMED = "claimed"
    IN_PROGRESS = "in progress"
    DONE = "done"


# A slot of the rate limit: opaque to the guards, unique across replicas.
Slot = str


class GuardState(Protocol):
    """What dedup and the rate limit need from a place that holds their counts."""

    kind: str

    def claim(self, key: str, now: float, window: float, stale_after: float) -> Claim:
        """Reserve ``key`` for this request unless it is in progress (for less than
        ``stale_after`` seconds) or done (within its window)."""

    def release(self, key: str, now: float, acted: bool, window: float) -> None:
        """End a claim; an action that acted starts its ``window``."""

    def settled(self, key: str, now: float) -> bool:
        """Whether this process knows, without asking anyone, that ``key`` is done within
        its window (a claim would then certainly say so)."""

    #: Whether a claim is a round trip to another process (worth overlapping with reads).
    remote: bool

    def take(self, now: float, limit: int, window: float, consume: bool
             ) -> Tuple[bool, Optional[Slot]]:
        """(False, None) when ``limit`` slots are in use within ``window``; else (True, the
        slot taken, or None when only looking)."""

    def give_back(self, slot: Slot) -> None:
        """Free the very slot an action took and did not use."""

    def remaining(self, now: float, limit: int, window: float) -> Optional[int]:
        """Slots left as last seen here, without asking anyone (for metrics)."""


_SLOT_IDS = itertools.count()


def new_slot(now: float, owner: str) -> Slot:
    return f"{now:.6f}/{owner}/{next(_SLOT_IDS)}"


def slot_time(slot: Slot) -> float:
    try:
        return float(slot.split("/", 1)[0])
    except ValueError:
        return 0.0  # not one of ours: it has left every window


class _DictState:
    """The guard operations over a JSON-able dict, for places with a transaction()."""

    kind = "memory"
    owner = f"{os.getpid()}"
    #: A claim here is local: nothing to overlap it with.
    remote = False

    def settled(self, key: str, now: float) -> bool:
        return False  # knowing would take a read of the shared place

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Dict[str, Any]]:
        raise NotImplementedError
        yield {}  # pragma: no cover

    def claim(self, key: str, now: float, window: float, stale_after: float) -> Claim:
        with self.transaction() as data:
            in_flight = data.setdefault("in_flight", {})
            until = data.setdefault("until", {})
            started = in_flight.get(key)
            if started is not None and now - started < stale_after:
                return Claim.IN_PROGRESS
            if until.get(key, 0) > now:
                return Claim.DONE
            in_flight[key] = now
            if len(until) > 10000:
                data["until"] = {k: u for k, u in until.items() if u > now}
        return Claim.CLAIMED

    def release(self, key: str, now: float, acted: bool, window: float) -> None:
        with self.transaction() as data:
            data.setdefault("in_flight", {}).pop(key, None)
            if acted:
                data.setdefault("until", {})[key] = now + window

    def take(self, now: float, limit: int, window: float, consume: bool
             ) -> Tuple[bool, Optional[Slot]]:
        with self.transaction() as data:
            slots = _live(data.get("slots", []), now, window)
            data["slots"] = slots
            if len(slots) >= limit:
                return False, None
            if not consume:
                return True, None
            slot = new_slot(now, self.owner)
            slots.append(slot)
        return True, slot

    def give_back(self, slot: Slot) -> None:
        with self.transaction() as data:
            slots = data.get("slots", [])
            if slot in slots:
                slots.remove(slot)

    def remaining(self, now: float, limit: int, window: float) -> Optional[int]:
        with self.transaction() as data:
            return max(0, limit - len(_live(data.get("slots", []), now, window)))


def _live(slots: List[Slot], now: float, window: float) -> List[Slot]:
    return [s for s in slots if isinstance(s, str) and slot_time(s) > now - window]


class MemoryState(_DictState):
    kind = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: Dict[str, Any] = {}

    def settled(self, key: str, now: float) -> bool:
        with self._lock:
            return bool(self._data.get("until", {}).get(key, 0) > now)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Dict[str, Any]]:
        with self._lock:
            yield self._data


class FileState(_DictState):
    kind = "file"

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock_path = path + ".lock"
        try:
            directory = os.path.dirname(path)
            if directory:
                os.makedirs(directory, exist_ok=True)
            with open(self.lock_path, "a", encoding="utf-8"):
                pass
        except OSError as e:
            raise SettingsError(f"FALCO_RESPONDER_STATE_FILE={path!r}: cannot use it "
                                f"({e.strerror})", field="FALCO_RESPONDER_STATE_FILE") from e

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Dict[str, Any]]:
        # The lock lives in a file of its own, so the counts can be replaced atomically
        # (write a temporary file, rename it over): a process killed mid-write leaves the
        # old counts, never a torn file. One open file description per transaction: flock
        # then excludes other threads of this process as well as other processes.
        with open(self.lock_path, "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with open(self.path, encoding="utf-8") as f:
                    data = json.loads(f.read() or "{}")
            except (OSError, ValueError):
                data = {}  # none yet, or a foreign file: counts start empty
            if not isinstance(data, dict):
                data = {}
            yield data
            temporary = f"{self.path}.{os.getpid()}.tmp"
            with open(temporary, "w", encoding="utf-8") as f:
                f.write(json.dumps(data, separators=(",", ":")))
            os.replace(temporary, self.path)


def guard_state(settings: Settings, kube: Optional[Kube]) -> GuardState:
    """The place the settings ask for; ``auto`` shares through the cluster when there is
    one, else through the state file when one is set."""
    choice = settings.guard_state
    if choice == "auto":
        choice = "kubernetes" if kube is not None else "file" if settings.state_file \
            else "memory"
    if choice == "kubernetes":
        if kube is None:
            raise SettingsError(f"{PREFIX}GUARD_STATE=kubernetes needs a cluster, and none "
                                "is configured", field=PREFIX + "GUARD_STATE")
        from .lease_state import LeaseState  # imports kubernetes: only with a cluster

        return LeaseState(kube)
    if choice == "file":
        return FileState(settings.state_file or "")
    return MemoryState()
