"""Respond to Falco alerts in Kubernetes: the core every runtime adapter calls.

Public API only. ``new`` is what Knative func's scaffolding imports from the repo root.
"""

from __future__ import annotations

from .decision import Decision, Outcome, Status
from .engine import Engine, Response
from .errors import ResponderError
from .settings import Settings

__all__ = ["Decision", "Engine", "Outcome", "ResponderError", "Response", "Settings",
           "Status"]
