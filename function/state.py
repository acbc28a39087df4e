"""Where the guards keep their counts: in this process, or in a file shared by processes.

Dedup and the blast-radius limit only protect if every request sees the same counts. Most
runtimes serve every request from one process, and memory is enough. The Kubeless runtime
forks a child per request, which would start from empty counts each time; there the counts
live in a small JSON file, read and written under an exclusive ``flock``, so every child of
the pod sees them (FALCO_RESPONDER_STATE_FILE).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from typing import Any, Dict, Iterator

from .errors import SettingsError


class MemoryState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: Dict[str, Any] = {}

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Dict[str, Any]]:
        with self._lock:
            yield self._data


class FileState:
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


State = Any  # MemoryState or FileState: anything with transaction()


def state_for(path: str = "") -> State:
    return FileState(path) if path else MemoryState()
