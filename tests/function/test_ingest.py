from __future__ import annotations

import base64
import json
from typing import Any, Dict

import pytest

from function.errors import BadRequest, PayloadTooLarge
from function.ingest import from_cloudevent, from_http, from_payload, from_structured
from function.message import HTTPMessage

from .wire import fixture_paths, parse_wire

LIMIT = 1024 * 1024


@pytest.mark.parametrize("path", fixture_paths("wire", "*.http"), ids=lambda p: p.name)
def test_every_wire_request_replayed_byte_for_byte_is_the_shell_alert(path: Any) -> None:
    request = parse_wire(path)
    inbound = from_http(HTTPMessage.of(request.headers, request.body), LIMIT)
    assert inbound.alert is not None
    assert inbound.alert.rule == "Terminal shell in container"
    assert str(inbound.alert.target) == "default/alpine"
    expected = "cloudevent-binary" if "cloudevents" in path.name else "json"
    assert inbound.transport == expected


def binary_headers(**overrides: str) -> Dict[str, str]:
    headers = {"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "https://falco.org",
               "Ce-Type": "falco.rule.output.v1", "Content-Type": "application/json"}
    headers.update(overrides)
    return headers


@pytest.mark.parametrize("source", ["falco.org", "https://falco.org"])
def test_both_cloudevent_source_spellings_are_falco(shell_alert: Any, source: str) -> None:
    msg = HTTPMessage.of(binary_headers(**{"Ce-Source": source}), json.dumps(shell_alert))
    assert from_http(msg, LIMIT).alert is not None


def test_cloudevent_header_names_are_case_insensitive(shell_alert: Any) -> None:
    headers = {k.upper(): v for k, v in binary_headers().items()}
    assert from_http(HTTPMessage.of(headers, json.dumps(shell_alert)), LIMIT).alert is not None


def test_another_cloudevent_type_is_ignored_not_refused(shell_alert: Any) -> None:
    msg = HTTPMessage.of(binary_headers(**{"Ce-Type": "dev.knative.sources.ping"}), b"{}")
    inbound = from_http(msg, LIMIT)
    assert inbound.alert is None
    assert inbound.ignored.startswith("ignored: not a Falco alert")


def test_a_foreign_source_with_falco_type_is_ignored(shell_alert: Any) -> None:
    msg = HTTPMessage.of(binary_headers(**{"Ce-Source": "https://evil.example"}),
                         json.dumps(shell_alert))
    assert from_http(msg, LIMIT).ignored.startswith("ignored: not a Falco alert (source")


def structured(shell_alert: Any, **extra: Any) -> Dict[str, Any]:
    event = {"specversion": "1.0", "id": "1", "source": "https://falco.org",
             "type": "falco.rule.output.v1", "datacontenttype": "application/json",
             "data": shell_alert}
    event.update(extra)
    return event


def test_structured_mode_with_json_data(shell_alert: Any) -> None:
    msg = HTTPMessage.of({"Content-Type": "application/cloudevents+json; charset=utf-8"},
                         json.dumps(structured(shell_alert)))
    inbound = from_http(msg, LIMIT)
    assert inbound.transport == "cloudevent-structured"
    assert inbound.alert is not None and inbound.alert.rule == "Terminal shell in container"


def test_structured_mode_with_base64_data(shell_alert: Any) -> None:
    event = structured(shell_alert)
    del event["data"]
    event["data_base64"] = base64.b64encode(json.dumps(shell_alert).encode()).decode()
    assert from_structured(event).alert is not None


def test_parsed_cloudevent_with_data_as_dict_bytes_or_text(shell_alert: Any) -> None:
    attributes = {"id": "1", "source": "falco.org", "type": "falco.rule.output.v1",
                  "specversion": "1.0"}
    for data in (shell_alert, json.dumps(shell_alert), json.dumps(shell_alert).encode()):
        assert from_cloudevent(attributes, data).alert is not None


def test_kubeless_event_data_as_dict_or_bytes(shell_alert: Any) -> None:
    assert from_payload(shell_alert).alert is not None
    assert from_payload(json.dumps(shell_alert).encode()).alert is not None


@pytest.mark.parametrize("headers,body,text", [
    ({}, b"", "body: expected JSON, got invalid JSON (empty)"),
    ({}, b"{not json", "body: expected JSON, got invalid JSON"),
    ({}, b"\xff\xfe", "body: expected UTF-8 JSON"),
    ({}, b"[" * 100000 + b"]" * 100000, "body: JSON nested too deeply"),
    (binary_headers(**{"Ce-Specversion": "0.3"}), b"{}", "specversion: expected 1.0"),
    ({k: v for k, v in binary_headers().items() if k != "Ce-Id"}, b"{}",
     "id: required CloudEvent attribute is missing"),
    (binary_headers(), b"", "data: expected JSON, got invalid JSON (empty)"),
    ({"Content-Type": "application/cloudevents+json"}, b"[]",
     "body: a structured CloudEvent must be a JSON object"),
    ({"Content-Type": "application/cloudevents+json"},
     b'{"specversion":"1.0","id":"1","source":"falco.org","type":"falco.rule.output.v1"}',
     "data: the event carries no data"),
    ({"Content-Type": "application/cloudevents+json"},
     b'{"specversion":"1.0","id":"1","source":"falco.org","type":"falco.rule.output.v1",'
     b'"data_base64":"***"}', "data_base64: expected base64"),
])
def test_malformed_requests_are_bad_requests_naming_what_was_expected(
        headers: Dict[str, str], body: bytes, text: str) -> None:
    with pytest.raises(BadRequest) as caught:
        from_http(HTTPMessage.of(headers, body), LIMIT)
    assert caught.value.message.startswith(text)
    assert caught.value.status == 400


def test_a_body_over_the_limit_is_413() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        from_http(HTTPMessage.of({}, b" " * 101), 100)
    assert caught.value.status == 413
    assert "101 bytes is over the limit of 100 bytes" in caught.value.message


def test_an_integer_past_pythons_digit_limit_is_a_bad_request() -> None:
    body = b'{"rule":"r","priority":"Notice","time":"2024-04-03T11:36:27Z","output_fields":{"a":' \
        + b"1" * 5000 + b"}}"
    with pytest.raises(BadRequest, match=r"^body: expected JSON"):
        from_http(HTTPMessage.of({}, body), LIMIT)
