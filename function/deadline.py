"""One deadline per alert, shared by every Kubernetes call and retry made for it.

A per-call retry budget alone lets an alert that makes five slow calls take five budgets.
The engine opens a :func:`scope` per alert; :mod:`function.kube` cuts each call's timeout
and its retries to what is left of it, and refuses to start a call once it has passed.
Outside any scope (start-up checks, the CLI) only the per-call budget applies.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from typing import Iterator, Optional

_current: contextvars.ContextVar[Optional[float]] = contextvars.ContextVar(
    "falco_responder_deadline", default=None)


@contextlib.contextmanager
def scope(seconds: float) -> Iterator[None]:
    """Everything inside shares one deadline, ``seconds`` from now."""
    token = _current.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _current.reset(token)


def remaining() -> Optional[float]:
    """Seconds left of the current alert's deadline (may be negative), or None."""
    deadline = _current.get()
    return None if deadline is None else deadline - time.monotonic()


def clamp(at: float) -> float:
    """A monotonic time ``at``, or the alert's deadline when that comes first."""
    deadline = _current.get()
    return at if deadline is None else min(at, deadline)
