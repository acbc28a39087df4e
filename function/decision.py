"""The decision the function returns for every alert: it explains itself.

A decision is built up by the engine and rendered once as JSON. Skipped and would are
outcomes here, never exceptions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


class Status(str, enum.Enum):
    DONE = "done"
    SKIPPED = "skipped"
    WOULD = "would"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    action: str
    target: Optional[str]
    status: Status
    reason: str
    rule: str = ""

    def to_json(self) -> Dict[str, Any]:
        return {"action": self.action, "target": self.target, "status": self.status.value,
                "reason": self.reason, "rule": self.rule}


@dataclass
class Decision:
    alert: Optional[Dict[str, Any]] = None
    matched_rules: List[str] = field(default_factory=list)
    actions: List[Outcome] = field(default_factory=list)
    dry_run: bool = False
    message: str = ""
    transport: str = ""
    duration_ms: float = 0.0
    cluster: str = ""

    @property
    def outcome(self) -> str:
        """One word for the whole alert: failed if any action failed, else done if any
        acted, else would (dry run), skipped, or no_match / ignored when nothing applied."""
        statuses = {o.status for o in self.actions}
        for status in (Status.FAILED, Status.DONE, Status.WOULD, Status.SKIPPED):
            if status in statuses:
                return str(status.value)
        return "ignored" if self.alert is None else "no_match"

    def to_json(self) -> Dict[str, Any]:
        body: Dict[str, Any] = {
            "outcome": self.outcome,
            "message": self.message,
            "alert": self.alert,
            "matched_rules": self.matched_rules,
            "actions": [o.to_json() for o in self.actions],
            "dry_run": self.dry_run,
            "duration_ms": round(self.duration_ms, 3),
        }
        if self.cluster:
            body["cluster"] = self.cluster
        return body
