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
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Dict[str, Any]]:
        # One open file description per transaction: flock then excludes other threads
        # of this process as well as other processes.
        with open(self.path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read()
            try:
                data = json.loads(text) if text else {}
            except ValueError:
                data = {}  # a torn or foreign file: counts restart, nothing is acted on twice
            if not isinstance(data, dict):
                data = {}
            yield data
            f.seek(0)
            f.truncate()
            f.write(json.dumps(data, separators=(",", ":")))
            f.flush()


State = Any  # MemoryState or FileState: anything with transaction()


def state_for(path: str = "") -> State:
    return FileState(path) if path else MemoryState()
