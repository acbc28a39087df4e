"""One error tree for the whole core.

Every error a caller can see is a :class:`ResponderError` whose class says what went
wrong and carries the HTTP status it maps to. The mapping lives here and nowhere else:
adapters only copy ``status`` into their runtime's reply. Outcomes such as "skipped" or
"would" are not errors; they are part of a :class:`~function.decision.Decision`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .bounded import fit


class ResponderError(Exception):
    """Base of every error the core raises on purpose."""

    status: int = 500
    kind: str = "internal"

    def __init__(self, message: str, *, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> Dict[str, Any]:
        """The answer's body, cut to fit (see ``bounded``)."""
        body: Dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return fit({"error": body})


class BadRequest(ResponderError):
    """The request cannot be an alert: nothing was acted on. A retry cannot help."""

    status = 400
    kind = "bad_request"


class InvalidAlert(BadRequest):
    """The body is a JSON document but not a valid Falco alert."""

    kind = "invalid_alert"


class PayloadTooLarge(BadRequest):
    status = 413
    kind = "payload_too_large"


class Unauthorized(ResponderError):
    status = 401
    kind = "unauthorized"


class Unavailable(ResponderError):
    """Something a retry could fix failed; the sender should retry (a Broker does on 503)."""

    status = 503
    kind = "unavailable"


class KubeError(ResponderError):
    """A Kubernetes call failed in a way a retry will not fix (403, 422, ...)."""

    status = 500
    kind = "kubernetes"

    def __init__(self, message: str, *, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.code = code


class TransientKubeError(Unavailable):
    """A Kubernetes call failed after bounded retries in a way a later retry could fix."""

    kind = "kubernetes_unavailable"


class DeadlineExceeded(TransientKubeError):
    """The alert's one deadline passed before its Kubernetes calls were done."""

    kind = "deadline_exceeded"


class AnswerLost(TransientKubeError):
    """A call that changes something went out and its answer never came: it may have
    happened. Callers find out (re-read) rather than send it again blindly."""

    kind = "answer_lost"


class OutcomeUnknown(TransientKubeError):
    """An answer was lost and finding out what happened failed too."""

    kind = "outcome_unknown"


class ActionFailed(ResponderError):
    """An action failed in a way a retry will not fix (e.g. 403: the ServiceAccount lacks a
    permission the policy needs). The alert was not handled: the answer says so."""

    status = 500
    kind = "action_failed"


class PolicyError(ResponderError):
    """The policy file is invalid. The function refuses to start rather than run part of it."""

    kind = "invalid_policy"

    def __init__(self, message: str, *, source: str = "<policy>", where: str = "") -> None:
        text = f"{source}: {where}: {message}" if where else f"{source}: {message}"
        super().__init__(text)
        self.source = source
        self.where = where


class SettingsError(ResponderError):
    """An environment setting has a value the function cannot use."""

    kind = "invalid_settings"


class NotFound(KubeError):
    """404: the object is not there (for a pod we meant to remove: already gone)."""


class Conflict(KubeError):
    """409: a precondition (the pod's UID) did not hold, or the object already exists."""


class Forbidden(KubeError):
    """403: the function's ServiceAccount lacks a permission the policy needs."""


def kube_error(code: int, message: str) -> KubeError:
    """API status code -> the error class that says what it means for us."""
    cls = {404: NotFound, 409: Conflict, 403: Forbidden}.get(code, KubeError)
    return cls(f"Kubernetes API {code}: {message}", code=code)
