"""Error answers fit in 768 bytes, whatever they echo or however many actions they stopped."""

from __future__ import annotations

import json

from function.bounded import ERROR_BODY_LIMIT, fit
from function.errors import BadRequest


def size(body: object) -> int:
    return len(json.dumps(body, separators=(",", ":")).encode())


def test_a_small_error_is_left_as_it_is() -> None:
    body = {"error": {"type": "bad_request", "message": "rule: expected a string"}}
    assert fit(body) is body


def test_an_echoed_900_kb_value_is_cut_and_the_type_and_field_kept() -> None:
    error = BadRequest("output_fields.proc.cmdline: expected at most 4096 characters, got "
                       + "x" * 900_000, field="output_fields.proc.cmdline")

    body = error.to_json()

    assert size(body) <= ERROR_BODY_LIMIT
    assert body["error"]["type"] == "bad_request"
    assert body["error"]["field"] == "output_fields.proc.cmdline"
    assert body["error"]["message"].startswith("output_fields.proc.cmdline: expected at most")
    assert body["error"]["message"].endswith("…")


def test_a_partial_decision_repeating_the_failure_is_cut_to_fit() -> None:
    failure = "get pod ns/p: failed after 3 attempt(s): NewConnectionError: " + "y" * 300
    body = {"error": {"type": "kubernetes_unavailable", "message": failure},
            "decision": {"outcome": "failed", "message": failure + "; retry",
                         "actions": [{"action": "terminate", "target": "ns/p",
                                      "status": "failed", "reason": failure}]}}

    cut = fit(body)

    assert size(cut) <= ERROR_BODY_LIMIT
    assert cut["decision"]["actions"][0]["status"] == "failed"
    assert cut["decision"]["outcome"] == "failed"


def test_too_many_actions_to_list_are_counted() -> None:
    actions = [{"action": "label", "target": f"ns/pod-{i}", "status": "failed",
                "reason": "forbidden"} for i in range(40)]
    body = {"error": {"type": "action_failed", "message": "1 action failed"},
            "decision": {"outcome": "failed", "actions": actions}}

    cut = fit(body)

    assert size(cut) <= ERROR_BODY_LIMIT
    assert cut == {"error": {"type": "action_failed", "message": "1 action failed"},
                   "decision": {"outcome": "failed", "actions": 40}}
