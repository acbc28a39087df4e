"""The decision log: one JSON line per alert on stderr, written off the request path.

A request thread only appends its line to a queue; one writer thread writes what has
queued up, in one write. Writing from the request thread itself (stderr is often
unbuffered in containers) gives up the GIL on every alert, and under a threaded server
each give-up lets the other threads keep the GIL for up to a switch interval: that cost
more throughput than the whole decision. After each write the writer lets lines gather
for ``LINGER_SECONDS``: woken for every line, it cost a thread wake-up and a write per alert,
a seventh of a threaded server's CPU per request in a storm. Lines are flushed at exit, and
``flush()`` waits for everything queued so far.
"""

from __future__ import annotations

import atexit
import collections
import sys
import threading
import time
from typing import Deque

#: How long lines may wait to be written with the next ones.
LINGER_SECONDS = 0.01


class DecisionLog:
    def __init__(self) -> None:
        self._lines: Deque[str] = collections.deque()
        self._ready = threading.Condition()
        self._writer: threading.Thread = threading.Thread(
            target=self._run, name="decision-log", daemon=True)
        self._started = False
        self._start_lock = threading.Lock()
        # Held from taking a batch to having written it: lines keep their order.
        self._write_lock = threading.Lock()

    def emit(self, line: str) -> None:
        if not self._started:
            self._start()
        with self._ready:
            self._lines.append(line)
            self._ready.notify()

    def flush(self) -> None:
        """Write everything queued so far, from this thread."""
        self._drain()

    def _start(self) -> None:
        with self._start_lock:
            if not self._started:
                self._writer.start()
                atexit.register(self.flush)
                self._started = True

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._lines:
                    self._ready.wait()
            self._drain()
            time.sleep(LINGER_SECONDS)

    def _drain(self) -> None:
        with self._write_lock:
            with self._ready:
                batch = "".join(self._lines)
                self._lines.clear()
            if batch:
                stream = sys.stderr
                stream.write(batch)
                stream.flush()


DECISIONS = DecisionLog()
