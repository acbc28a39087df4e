"""Every form in which an alert reaches the function, turned into one :class:`Inbound`.

Falcosidekick's CloudEvents output (binary mode), structured CloudEvents, plain Falco
JSON (webhook, OpenFaaS, Fission, Kubeless, Falco's own http_output) and events already
decoded by a runtime all end here. Nothing in this module talks to Kubernetes or knows
a FaaS framework; runtimes hand over plain headers and bytes, or attributes and data.
"""

from __future__ import annotations

import base64
import binascii
import json

# isinstance against collections.abc, not typing: typing's check is several times slower.
from collections import abc
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .alert import Alert, parse_alert
from .errors import BadRequest, PayloadTooLarge
from .message import HTTPMessage

FALCO_TYPE = "falco.rule.output.v1"
# Falcosidekick sent "falco.org" before 2.29 and "https://falco.org" since.
FALCO_SOURCES = frozenset({"falco.org", "https://falco.org"})
STRUCTURED = "application/cloudevents+json"
_REQUIRED_CE = ("id", "source", "type")


@dataclass(frozen=True)
class Inbound:
    """An alert to decide on, or why the request is not one (a 200, not an error)."""

    transport: str
    alert: Optional[Alert] = None
    ignored: str = ""


def decode_json(raw: bytes, what: str = "body") -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise BadRequest(f"{what}: expected UTF-8 JSON, got invalid UTF-8 ({e.reason})",
                         field=what) from e
    except json.JSONDecodeError as e:
        detail = "empty" if not raw.strip() else f"{e.msg} at line {e.lineno} column {e.colno}"
        raise BadRequest(f"{what}: expected JSON, got invalid JSON ({detail})",
                         field=what) from e
    except RecursionError as e:
        raise BadRequest(f"{what}: JSON nested too deeply", field=what) from e
    except ValueError as e:  # e.g. an integer literal past Python's digit limit
        raise BadRequest(f"{what}: expected JSON, got a value Python cannot read ({e})"[:300],
                         field=what) from e


def check_size(size: int, limit: int) -> None:
    if size > limit:
        raise PayloadTooLarge(f"body: {size} bytes is over the limit of {limit} bytes",
                              field="body")


def from_http(msg: HTTPMessage, max_bytes: int) -> Inbound:
    check_size(len(msg.body), max_bytes)
    if "ce-specversion" in msg.headers:
        attributes = {k[3:]: v for k, v in msg.headers.items() if k.startswith("ce-")}
        return from_cloudevent(attributes, msg.body, transport="cloudevent-binary")
    document = decode_json(msg.body)
    if msg.media_type == STRUCTURED:
        return from_structured(document)
    return Inbound("json", alert=parse_alert(document))


def from_structured(document: Any) -> Inbound:
    if not isinstance(document, abc.Mapping):
        raise BadRequest("body: a structured CloudEvent must be a JSON object", field="body")
    if "data_base64" in document:
        encoded = document["data_base64"]
        try:
            data: Any = base64.b64decode(encoded, validate=True) if isinstance(
                encoded, str) else None
        except (binascii.Error, ValueError) as e:
            raise BadRequest("data_base64: expected base64", field="data_base64") from e
        if data is None:
            raise BadRequest("data_base64: expected a base64 string", field="data_base64")
    else:
        data = document.get("data")
    attributes = {k: v for k, v in document.items() if k not in ("data", "data_base64")}
    return from_cloudevent(attributes, data, transport="cloudevent-structured")


def from_cloudevent(
    attributes: Mapping[str, Any], data: Any, *, transport: str = "cloudevent"
) -> Inbound:
    """A CloudEvent already taken apart: context attributes (names without ``ce-``) + data."""
    spec = attributes.get("specversion")
    if spec is not None and str(spec) != "1.0":
        raise BadRequest(f"specversion: expected 1.0, got {spec!r:.40}", field="specversion")
    missing = [name for name in _REQUIRED_CE if not attributes.get(name)]
    if missing:
        raise BadRequest(
            f"{missing[0]}: required CloudEvent attribute is missing", field=missing[0]
        )
    ce_type, source = str(attributes["type"]), str(attributes["source"])
    if ce_type != FALCO_TYPE:
        return Inbound(transport, ignored=f"ignored: not a Falco alert (type {ce_type!r:.80})")
    if source not in FALCO_SOURCES:
        return Inbound(
            transport, ignored=f"ignored: not a Falco alert (source {source!r:.80})"
        )
    return Inbound(transport, alert=parse_alert(_data_document(data)))


def from_payload(data: Any) -> Inbound:
    """A body a runtime already decoded (Kubeless parses JSON for us) or left as bytes."""
    return Inbound("json", alert=parse_alert(_data_document(data)))


def _data_document(data: Any) -> Any:
    if data is None:
        raise BadRequest("data: the event carries no data (expected a Falco alert)",
                         field="data")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return decode_json(bytes(data), "data")
    if isinstance(data, str):
        return decode_json(data.encode("utf-8"), "data")
    return data
