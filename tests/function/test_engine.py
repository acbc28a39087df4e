"""The engine without a cluster: decisions, status codes, token, rule order, dry run."""

from __future__ import annotations

import json
from typing import Any, Callable, Dict

import pytest

from function import Engine
from function.decision_log import DECISIONS

from .wire import fixture_paths, parse_wire

Make = Callable[..., Engine]
JSON = {"Content-Type": "application/json"}


def post(engine: Engine, alert: Any, headers: Dict[str, str] = JSON) -> Any:
    return engine.handle_http(headers, json.dumps(alert).encode())


def test_the_default_policy_would_terminate_the_shell_pod(offline_engine: Make,
                                                          shell_alert: Any) -> None:
    response = post(offline_engine(), shell_alert)
    assert response.status == 200
    body = response.body
    assert body["alert"] == {"rule": "Terminal shell in container", "priority": "Notice",
                             "source": "syscall", "time": "2024-04-03T11:36:27.670410771Z",
                             "target": "default/alpine"}
    assert body["matched_rules"] == ["terminate-terminal-shells"]
    assert body["dry_run"] is True
    assert body["cluster"] == "no cluster configured"
    (action,) = body["actions"]
    assert action["action"] == "terminate" and action["target"] == "default/alpine"
    assert action["status"] == "would"
    assert action["reason"].startswith("would delete pod (no cluster configured")
    assert body["duration_ms"] > 0


@pytest.mark.parametrize("path", fixture_paths("wire", "*.http"), ids=lambda p: p.name)
def test_every_wire_request_gets_the_same_decision(offline_engine: Make, path: Any) -> None:
    request = parse_wire(path)
    response = offline_engine().handle_http(request.headers, request.body)
    assert response.status == 200
    assert [a["status"] for a in response.body["actions"]] == ["would"]


def test_an_alert_no_rule_matches_is_handled_with_nothing_to_do(offline_engine: Make,
                                                               shell_alert: Any) -> None:
    response = post(offline_engine(), dict(shell_alert, rule="Write below etc"))
    assert response.status == 200
    assert response.body["message"] == "no policy rule matched"
    assert response.body["actions"] == []


def test_another_cloudevent_type_is_200_ignored(offline_engine: Make) -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/apis/v1/ping",
               "ce-type": "dev.knative.sources.ping"}
    response = offline_engine().handle_http(headers, b"{}")
    assert response.status == 200
    assert response.body["message"].startswith("ignored: not a Falco alert")
    assert response.body["actions"] == []


def test_alerts_without_a_pod_are_skipped_with_the_reason(offline_engine: Make,
                                                          shell_alert: Any) -> None:
    alert = json.loads(json.dumps(shell_alert))
    alert["output_fields"]["container.id"] = "host"
    (action,) = post(offline_engine(), alert).body["actions"]
    assert action["status"] == "skipped"
    assert "host event" in action["reason"]


@pytest.mark.parametrize("pod", ["../x", "UPPER", "a" * 300, ""])
def test_invalid_pod_names_are_skipped_never_acted_on(offline_engine: Make, shell_alert: Any,
                                                      pod: str) -> None:
    alert = json.loads(json.dumps(shell_alert))
    alert["output_fields"]["k8s.pod.name"] = pod
    response = post(offline_engine(), alert)
    assert response.status == 200
    (action,) = response.body["actions"]
    assert action["status"] == "skipped"
    assert "not a valid Kubernetes pod name" in action["reason"]


@pytest.mark.parametrize("namespace", ["kube-system", "falco", "openfaas-fn", "responder"])
def test_protected_namespaces_are_skipped(offline_engine: Make, shell_alert: Any,
                                          namespace: str) -> None:
    alert = json.loads(json.dumps(shell_alert))
    alert["output_fields"]["k8s.ns.name"] = namespace
    (action,) = post(offline_engine(pod_namespace="responder"), alert).body["actions"]
    assert action["status"] == "skipped"
    assert "protected" in action["reason"] or "own namespace" in action["reason"]


RULES = """
rules:
  - name: first
    match: {rules: ["Terminal*"]}
    continue: true
    actions: [{action: label, parameters: {labels: {seen: "true"}}}]
  - name: second
    match: {priority: ">=Notice"}
    actions: [{action: terminate}]
  - name: third
    match: {rules: ["*"]}
    actions: [{action: record}]
"""


def test_rules_run_in_order_and_stop_after_the_first_that_does_not_continue(
        offline_engine: Make, shell_alert: Any) -> None:
    body = post(offline_engine(RULES), shell_alert).body
    assert body["matched_rules"] == ["first", "second"]
    assert [(a["rule"], a["action"]) for a in body["actions"]] == [
        ("first", "label"), ("second", "terminate")]


@pytest.mark.parametrize("body,status,kind", [
    (b"{oops", 400, "bad_request"),
    (b'{"rule": "x"}', 400, "invalid_alert"),
    (b'{"rule":"x","priority":"Loud","time":"2024-04-03T11:36:27Z","output_fields":{"a":1}}',
     400, "invalid_alert"),
    (b" " * (1024 * 1024 + 1), 413, "payload_too_large"),
])
def test_bad_input_gets_a_clear_error_and_nothing_is_acted_on(
        offline_engine: Make, body: bytes, status: int, kind: str) -> None:
    response = offline_engine().handle_http(JSON, body)
    assert response.status == status
    assert response.body["error"]["type"] == kind
    assert response.body["error"]["message"]
    assert "actions" not in response.body


def test_the_body_limit_is_configurable(offline_engine: Make, shell_alert: Any) -> None:
    assert post(offline_engine(max_body_bytes=100), shell_alert).status == 413


TOKEN = "s3cr3t"


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer s3cr3t"},
    {"authorization": "bearer s3cr3t"},
    {"X-Falco-Token": "s3cr3t"},
])
def test_the_token_is_accepted_as_bearer_or_custom_header(
        offline_engine: Make, shell_alert: Any, headers: Dict[str, str]) -> None:
    response = post(offline_engine(token=TOKEN), shell_alert, {**JSON, **headers})
    assert response.status == 200
    assert response.body["actions"][0]["status"] == "would"


def test_a_bearer_token_of_someone_else_does_not_hide_ours(offline_engine: Make,
                                                           shell_alert: Any) -> None:
    headers = {**JSON, "Authorization": "Bearer broker-oidc-token", "X-Falco-Token": TOKEN}
    assert post(offline_engine(token=TOKEN), shell_alert, headers).status == 200


def test_a_token_set_with_a_trailing_newline_still_matches(offline_engine: Make,
                                                           shell_alert: Any) -> None:
    engine = offline_engine(token=TOKEN + "\n")
    assert post(engine, shell_alert, {**JSON, "X-Falco-Token": TOKEN}).status == 200


def test_the_token_is_accepted_as_a_cloudevent_extension(offline_engine: Make,
                                                        shell_alert: Any) -> None:
    engine = offline_engine(token=TOKEN)
    binary = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "https://falco.org",
              "ce-type": "falco.rule.output.v1", "ce-falcotoken": TOKEN, **JSON}
    assert post(engine, shell_alert, binary).status == 200
    structured = {"specversion": "1.0", "id": "1", "source": "https://falco.org",
                  "type": "falco.rule.output.v1", "falcotoken": TOKEN, "data": shell_alert}
    response = engine.handle_http({"Content-Type": "application/cloudevents+json"},
                                  json.dumps(structured).encode())
    assert response.status == 200
    attributes = {k: v for k, v in structured.items() if k != "data"}
    assert engine.handle_cloudevent(attributes, shell_alert).status == 200


def test_the_token_can_come_from_a_mounted_secret_file(offline_engine: Make, shell_alert: Any,
                                                       tmp_path: Any) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    engine = offline_engine(token_file=str(secret))
    assert post(engine, shell_alert, {**JSON, "X-Falco-Token": TOKEN}).status == 200
    assert post(engine, shell_alert).status == 401


@pytest.mark.parametrize("headers,message", [
    ({}, "missing token"),
    ({"X-Falco-Token": "wrong"}, "wrong token"),
    ({"Authorization": "Bearer wrong"}, "wrong token"),
    ({"X-Other": TOKEN}, "missing token"),
])
def test_a_missing_or_wrong_token_is_401_and_nothing_is_acted_on(
        offline_engine: Make, shell_alert: Any, headers: Dict[str, str], message: str) -> None:
    response = post(offline_engine(token=TOKEN), shell_alert, {**JSON, **headers})
    assert response.status == 401
    assert response.body["error"]["message"].startswith(message)
    assert "actions" not in response.body
    assert TOKEN not in json.dumps(response.body)


def test_a_kubeless_style_decoded_payload(offline_engine: Make, shell_alert: Any) -> None:
    response = offline_engine().handle_payload({"event-type": "falco"}, shell_alert)
    assert response.status == 200 and response.body["actions"][0]["status"] == "would"
    assert offline_engine().handle_payload({}, None).status == 400


def test_one_json_log_line_per_alert_without_the_token(
        offline_engine: Make, shell_alert: Any, caplog: Any, capsys: Any) -> None:
    caplog.set_level("INFO", logger="function")
    DECISIONS.flush()  # lines of earlier tests, still queued
    capsys.readouterr()
    post(offline_engine(token=TOKEN), shell_alert, {**JSON, "X-Falco-Token": TOKEN})
    DECISIONS.flush()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["alert"]["rule"] == "Terminal shell in container"
    assert line["status"] == 200
    assert line["matched_rules"] == ["terminate-terminal-shells"]
    assert line["actions"][0]["status"] == "would"
    assert line["duration_ms"] > 0
    assert TOKEN not in lines[0]


def test_the_log_line_follows_the_log_level(offline_engine: Make, shell_alert: Any,
                                            caplog: Any, capsys: Any) -> None:
    caplog.set_level("WARNING", logger="function")
    DECISIONS.flush()
    capsys.readouterr()
    post(offline_engine(), shell_alert)
    DECISIONS.flush()
    assert capsys.readouterr().err == ""
