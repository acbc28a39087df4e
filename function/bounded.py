"""Error answers kept small enough for every sender and every log line.

An error answer can echo what it was given (a 900 KB field that failed a check) and repeats
the failure in each action it stopped. Knative Eventing's channel dispatcher (1.22) copies a
failed delivery's answer, base64-encoded, into a 1024-byte extension of the event it hands to
the dead-letter sink, and panics, taking the dispatcher down with every event in flight, when
the answer is over 768 bytes. So an error answer is cut to fit: long strings first, then the
partial decision's detail; its ``error.type`` and HTTP status are never cut. A 200 answer is
what was done and is left whole.
"""

from __future__ import annotations

import json
from typing import Any, Dict

#: Bytes of JSON an error answer may take: 1024 base64 characters hold 768 bytes.
ERROR_BODY_LIMIT = 768
_ELLIPSIS = "…"


def _size(body: Any) -> int:
    return len(json.dumps(body, separators=(",", ":")).encode("utf-8"))


def _cut(value: Any, width: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= width else value[: width - 1] + _ELLIPSIS
    if isinstance(value, dict):
        return {key: _cut(item, width) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut(item, width) for item in value]
    return value


def fit(body: Dict[str, Any], limit: int = ERROR_BODY_LIMIT) -> Dict[str, Any]:
    """``body`` itself when it fits in ``limit`` bytes, else a copy cut down to fit."""
    if _size(body) <= limit:
        return body
    for width in (256, 160, 96, 48):
        cut: Dict[str, Any] = _cut(body, width)
        if _size(cut) <= limit:
            return cut
    # Too many actions to list: keep what failed and the outcome, and count the rest.
    decision = body.get("decision")
    smaller: Dict[str, Any] = {"error": _cut(body.get("error", {}), 160)}
    if isinstance(decision, dict):
        smaller["decision"] = {"outcome": decision.get("outcome"),
                               "actions": len(decision.get("actions") or ())}
    return smaller if _size(smaller) <= limit else {"error": _cut(body.get("error", {}), 48)}
