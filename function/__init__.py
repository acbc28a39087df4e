"""Respond to Falco alerts in Kubernetes: the core every runtime adapter calls.

Public API only. ``new`` is what Knative func's scaffolding imports from the repo root.
"""

from __future__ import annotations

from typing import Any

from .decision import Decision, Outcome, Status
from .engine import Engine, Response
from .errors import ResponderError
from .settings import Settings

__all__ = ["Decision", "Engine", "Outcome", "ResponderError", "Response", "Settings",
           "Status", "new"]


def new() -> Any:
    """Knative func's entry point (``from function import new`` at the repo root)."""
    # The one import from the core into an adapter, and lazy: func-python and cloudevents 2.x
    # belong to that runtime only (other runtimes need cloudevents 1.x).
    from adapters.knative_func import new as make

    return make()
