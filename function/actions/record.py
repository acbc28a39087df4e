"""record: a Kubernetes Event on the pod, seen by `kubectl describe pod` and `get events`.

The engine also records an Event after every other action it takes (policy key
``record_events``); this action is for rules that only want the alert on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from ..decision import Status
from .base import ActionContext, ActionDefinition, RbacRule, param


def _reason(value: str) -> str:
    if not value or len(value) > 128 or not value.replace("_", "").isalnum():
        raise ValueError(f"expected a CamelCase word (letters and digits), got {value!r}")
    return value


@dataclass(frozen=True)
class Params:
    reason: str = param("FalcoAlert", "The Event's reason.", check=_reason)


def event_message(ctx: ActionContext, what: str) -> str:
    alert = ctx.alert
    return f"Falco rule '{alert.rule}' ({alert.priority.label}) -> {what}"


def event_key(ctx: ActionContext, action: str) -> str:
    """What makes an Event one of a kind: this alert, this rule, this action, this pod."""
    alert = ctx.alert
    return "|".join((alert.uuid, alert.time_text, alert.rule, ctx.rule_name, action,
                     ctx.target.namespace, ctx.target.pod, ctx.uid or ""))


def run(ctx: ActionContext, params: Params) -> Tuple[Status, str]:
    pod = {"name": ctx.target.pod, "uid": ctx.uid}
    ctx.api().create_event(ctx.target.namespace, pod, params.reason,
                           event_message(ctx, ctx.alert.output or "alert recorded"), "record",
                           event_key(ctx, "record"))
    return Status.DONE, "event recorded"


def describe(params: Params) -> str:
    return f"record an Event ({params.reason})"


DEFINITION = ActionDefinition(
    name="record",
    description="Record a Kubernetes Event on the pod with the Falco rule and output.",
    params=Params,
    rbac=(RbacRule("", ("events",), ("create",)),),
    run=run,
    describe=describe,
    example="- action: record",
)
